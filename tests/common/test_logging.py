"""Logs: one JSON object per line on stderr, lines below the level dropped."""

import logging

import orjson
import pytest

from services.common.logging import configure_logging, get_logger


def _lines(err: str) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in err.splitlines() if line.strip()]


def test_lines_are_json_and_below_the_level_dropped(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")
    log = get_logger("hotlead.test", service="test")
    log.debug("not_written", n=1)
    log.info("written", n=2)
    # a logger of its own: the CLIs set the "aiokafka" logger's level, and tests run them
    logging.getLogger("stdlib.test").warning("from the standard library")
    lines = _lines(capsys.readouterr().err)
    assert [line["event"] for line in lines] == ["written", "from the standard library"]
    assert lines[0]["n"] == 2
    assert lines[0]["service"] == "test"
    assert lines[0]["level"] == "info"
    assert lines[0]["logger"] == "hotlead.test"
    assert lines[1]["level"] == "warning"


def test_debug_level_writes_debug_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("DEBUG")
    get_logger("hotlead.test").debug("now_written", n=3)
    lines = _lines(capsys.readouterr().err)
    assert [line["event"] for line in lines] == ["now_written"]
    configure_logging("INFO")
