"""`hotlead token`, run as the sending side runs it."""

import os
import subprocess
import sys
from pathlib import Path

from services.ingest.tokens import Keyring, TokenKind, verify

HOTLEAD = str(Path(sys.executable).parent / "hotlead")
KEYS = "mail1:a-secret-for-the-cli-test-000,old:an-older-secret-for-tests-000"


def hotlead(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOTLEAD_TOKEN_KEYS": KEYS, "HOTLEAD_PUBLIC_BASE_URL": "https://t.example"}
    return subprocess.run(
        [HOTLEAD, *args], capture_output=True, text=True, timeout=60, check=False, env=env
    )


def test_token_click_prints_a_verifiable_tracked_link() -> None:
    result = hotlead(
        "token",
        "click",
        "--lead",
        "lead-9",
        "--campaign-id",
        "q3",
        "--target",
        "https://example.com/a",
    )
    assert result.returncode == 0, result.stderr
    url = result.stdout.strip()
    assert url.startswith("https://t.example/c/v1.mail1.")
    claims = verify(url.rsplit("/", 1)[1], Keyring.parse(KEYS), TokenKind.CLICK)
    assert (claims.lead_id, claims.campaign_id, claims.target) == (
        "lead-9",
        "q3",
        "https://example.com/a",
    )


def test_token_open_prints_a_pixel_url() -> None:
    result = hotlead("token", "open", "--lead", "lead-9", "--base-url", "https://other.example/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("https://other.example/o/v1.mail1.")
    assert result.stdout.strip().endswith(".gif")


def test_token_refuses_a_javascript_target_and_an_email_as_lead() -> None:
    bad_target = hotlead("token", "click", "--lead", "lead-9", "--target", "javascript:alert(1)")
    assert bad_target.returncode == 2
    assert "http://" in bad_target.stderr
    assert bad_target.stdout == ""
    email_lead = hotlead("token", "open", "--lead", "ann@example.com")
    assert email_lead.returncode == 2
    assert "never an email address" in email_lead.stderr
