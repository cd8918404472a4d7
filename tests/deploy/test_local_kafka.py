"""deploy/kafka/kafka.sh: a second, independent broker on other ports is
started, used, stopped and wiped exactly as `make kafka-*` does it."""

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import UnknownTopicOrPartitionError

from tests.kafka_harness import KAFKA_SH, answers

pytestmark = pytest.mark.kafka

PORT, CONTROLLER_PORT = 19092, 19093
BOOTSTRAP = f"127.0.0.1:{PORT}"


def kafka_sh(var_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KAFKA_VAR_DIR": str(var_dir),
        "KAFKA_PORT": str(PORT),
        "KAFKA_CONTROLLER_PORT": str(CONTROLLER_PORT),
        "KAFKA_HEAP": "256m",
    }
    return subprocess.run(
        [str(KAFKA_SH), *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def broker_processes(var_dir: Path) -> list[str]:
    found = subprocess.run(
        ["pgrep", "-f", f"kafka.Kafka {var_dir}"], capture_output=True, text=True, check=False
    )
    return found.stdout.split()


@pytest.fixture
def var_dir(tmp_path: Path, kafka_bootstrap: str) -> Iterator[Path]:
    """A broker directory of this test's own; its broker is stopped whatever happens.
    (Depends on kafka_bootstrap so the jars are fetched once, by the main broker.)"""
    yield tmp_path
    kafka_sh(tmp_path, "down")


def test_up_down_reset(var_dir: Path) -> None:
    started = kafka_sh(var_dir, "up")
    assert started.returncode == 0, started.stderr
    assert "running (pid" in started.stdout
    assert answers(BOOTSTRAP)
    assert "Kafka Server started" in (var_dir / "broker.log").read_text()
    assert kafka_sh(var_dir, "up").stdout.startswith("kafka.sh: broker already running")
    assert kafka_sh(var_dir, "status").returncode == 0

    stopped = kafka_sh(var_dir, "down")
    assert stopped.returncode == 0, stopped.stderr
    assert broker_processes(var_dir) == []
    assert not answers(BOOTSTRAP, timeout_s=2)
    assert kafka_sh(var_dir, "status").returncode == 3
    assert (var_dir / "data" / "meta.properties").exists()

    wiped = kafka_sh(var_dir, "reset")
    assert wiped.returncode == 0, wiped.stderr
    assert not (var_dir / "data").exists()


async def test_topics_are_never_created_by_accident(var_dir: Path) -> None:
    assert kafka_sh(var_dir, "up").returncode == 0
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, request_timeout_ms=1000)
    await producer.start()
    try:
        with pytest.raises(UnknownTopicOrPartitionError):
            await producer.send_and_wait("hotlead.typo.v1", b"x")
    finally:
        await producer.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        assert "hotlead.typo.v1" not in await admin.list_topics()
    finally:
        await admin.close()


def test_a_taken_port_is_reported(var_dir: Path, kafka_bootstrap: str) -> None:
    env_port = kafka_bootstrap.rsplit(":", 1)[1]
    result = subprocess.run(
        [str(KAFKA_SH), "up"], capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "KAFKA_VAR_DIR": str(var_dir), "KAFKA_PORT": env_port,
             "KAFKA_CONTROLLER_PORT": str(CONTROLLER_PORT)},
    )  # fmt: skip
    assert result.returncode == 1
    assert f"127.0.0.1:{env_port} is taken by another process" in result.stderr
