"""Finding the external tools the operations tests run (promtool, prometheus)."""

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"


def require_tool(name: str, package: str) -> str:
    """The tool's path; without it: a failure under CI=true, else a skip that says how."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} not found: apt-get install -y {package}"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
