"""The `hotlead` console script, run as a user runs it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.common.kafka_settings import KafkaSettings
from services.common.topics import delete_topics, topic_specs

HOTLEAD = str(Path(sys.executable).parent / "hotlead")


def hotlead(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HOTLEAD, *args], capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, **env},
    )  # fmt: skip


def test_topics_list_shows_the_configured_layout() -> None:
    result = hotlead("topics", "list", HOTLEAD_EVENTS_PARTITIONS="24")
    assert result.returncode == 0, result.stderr
    assert (
        "hotlead.events.v1\tpartitions=24\treplicas=1\tcleanup.policy=delete retention.ms=-1"
        in result.stdout
    )
    assert (
        "hotlead.handoff-progress.v1\tpartitions=12\treplicas=1\tcleanup.policy=compact"
        in result.stdout
    )


@pytest.mark.kafka
async def test_topics_create_twice_changes_nothing_the_second_time(
    kafka_bootstrap: str, unique: str
) -> None:
    env = {"HOTLEAD_KAFKA_BOOTSTRAP": kafka_bootstrap, "HOTLEAD_TOPIC_PREFIX": f"test-{unique}."}
    try:
        first = hotlead("topics", "create", **env)
        second = hotlead("topics", "create", **env)
        assert first.returncode == 0, first.stderr
        assert second.returncode == 0, second.stderr
        assert f"created  test-{unique}.hotlead.events.v1 (12 partitions)" in first.stdout
        assert "created" not in second.stdout
        assert f"ok       test-{unique}.hotlead.events.v1 (12 partitions)" in second.stdout

        mismatch = hotlead("topics", "create", HOTLEAD_EVENTS_PARTITIONS="6", **env)
        assert mismatch.returncode == 1
        assert "hotlead.events.v1 has 12 partitions, configured 6" in mismatch.stderr
    finally:
        settings = KafkaSettings(kafka_bootstrap=kafka_bootstrap, topic_prefix=f"test-{unique}.")
        await delete_topics(kafka_bootstrap, [spec.name for spec in topic_specs(settings)])


def test_an_unreachable_cluster_is_one_clear_line() -> None:
    result = hotlead("topics", "create", "--timeout", "3", HOTLEAD_KAFKA_BOOTSTRAP="127.0.0.1:9")
    assert result.returncode == 1
    assert result.stderr.startswith("hotlead: Kafka at 127.0.0.1:9 does not answer")
    assert "make kafka-up" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_the_commands() -> None:
    result = hotlead("--help")
    assert result.returncode == 0
    assert "topics" in result.stdout
