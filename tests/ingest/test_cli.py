"""`hotlead token`, run as the sending side runs it."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

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


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.kafka
def test_hotlead_ingest_serves_and_logs_json_without_addresses(kafka_bootstrap: str) -> None:
    port = free_port()
    env = {
        **os.environ,
        "HOTLEAD_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "HOTLEAD_TOPIC_PREFIX": "cli-test-never-created.",
    }
    process = subprocess.Popen(
        [HOTLEAD, "ingest", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        assert httpx.get(f"{base}/readyz", timeout=10).json() == {"status": "ready", "kafka": True}
        refused = httpx.post(
            f"{base}/v1/leads/lead-1",
            json={"email": "ann@example.com"},
            headers={
                "Authorization": "Bearer wrong-key-but-long-enough",
                "X-Forwarded-For": "203.0.113.77",
            },
        )
        assert refused.status_code == 405  # PUT only
        unauthorized = httpx.put(
            f"{base}/v1/leads/lead-1",
            json={"email": "ann@example.com"},
            headers={"X-Forwarded-For": "203.0.113.77"},
        )
        assert unauthorized.status_code == 401
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "no log lines"
    records = [json.loads(line) for line in lines]  # every line is JSON
    assert any(r.get("event") == "request_refused" and r.get("status") == 401 for r in records)
    assert "ann@example.com" not in stderr
    assert "203.0.113.77" not in stderr
