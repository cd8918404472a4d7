"""The test harness itself: without a broker, Kafka tests fail (never skip)
and say what to do."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PROBE_TEST = """
import pytest

@pytest.mark.kafka
def test_needs_the_broker(kafka_bootstrap):
    assert kafka_bootstrap
"""


def test_kafka_tests_fail_with_instructions_when_no_broker_answers(tmp_path: Path) -> None:
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE_TEST)
    config = ["--rootdir", str(REPO), "-c", str(REPO / "pyproject.toml")]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(probe), "-p", "tests.conftest",
         "-p", "no:cacheprovider", "-q", *config],
        capture_output=True, text=True, timeout=120, check=False, cwd=REPO,
        env={**os.environ, "CI": "true", "HOTLEAD_KAFKA_BOOTSTRAP": "127.0.0.1:9"},
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "1 error" in output
    assert "skipped" not in output
    assert "HOTLEAD_KAFKA_BOOTSTRAP=127.0.0.1:9 does not answer" in output
    assert "install Java 17+ and Maven" in output
