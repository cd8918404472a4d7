"""Finding the external tools the operations tests run (promtool, prometheus)."""

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"


def require_tool(name: str, package: str) -> str:
    """The tool's path; a missing tool fails the test (never a skip), saying how to get it."""
    path = shutil.which(name)
    if not path:
        pytest.fail(
            f"{name} is not installed: apt-get install {package} (.ci/run installs it)",
            pytrace=False,
        )
    return path
