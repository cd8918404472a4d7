"""The real Kafka broker for the tests.

`broker_for_tests()` returns a bootstrap address that answers:
- HOTLEAD_KAFKA_BOOTSTRAP, when set, must answer; nothing is started;
- otherwise 127.0.0.1:9092 is used when a broker answers there;
- otherwise deploy/kafka/kafka.sh starts one, and `stop()` stops it again
  (only what the tests started is stopped).

It never skips: when no broker can be had the tests that need one fail, with
a message that says what to do.
"""

import asyncio
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

REPO = Path(__file__).resolve().parents[1]
KAFKA_SH = REPO / "deploy" / "kafka" / "kafka.sh"
BROKER_LOG = REPO / "deploy" / "kafka" / "var" / "broker.log"
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"

WHAT_TO_DO = (
    "The Kafka tests need a real broker. Either install Java 17+ and Maven so that "
    "deploy/kafka/kafka.sh can start the bundled one ('make kafka-up' shows why it cannot), "
    "or set HOTLEAD_KAFKA_BOOTSTRAP to a running cluster. To run only the tests that need "
    "no broker: make test-unit."
)


class BrokerUnavailable(Exception):
    pass


@dataclass
class TestBroker:
    bootstrap: str
    started_here: bool

    def stop(self) -> None:
        if self.started_here:
            subprocess.run([str(KAFKA_SH), "down"], check=False, capture_output=True, timeout=120)


def answers(bootstrap: str, timeout_s: float = 5.0) -> bool:
    async def probe() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await asyncio.wait_for(admin.start(), timeout_s)
            await asyncio.wait_for(admin.describe_cluster(), timeout_s)
            return True
        except (KafkaError, OSError, TimeoutError):
            return False
        finally:
            await admin.close()

    return asyncio.run(probe())


def broker_for_tests() -> TestBroker:
    configured = os.environ.get("HOTLEAD_KAFKA_BOOTSTRAP")
    if configured:
        if answers(configured):
            return TestBroker(configured, started_here=False)
        raise BrokerUnavailable(
            f"HOTLEAD_KAFKA_BOOTSTRAP={configured} does not answer. " + WHAT_TO_DO
        )
    if answers(DEFAULT_BOOTSTRAP, timeout_s=2.0):
        return TestBroker(DEFAULT_BOOTSTRAP, started_here=False)
    try:
        started = subprocess.run(
            [str(KAFKA_SH), "up"], capture_output=True, text=True, timeout=600, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BrokerUnavailable(f"starting the local broker failed: {exc}. " + WHAT_TO_DO) from exc
    if started.returncode != 0:
        raise BrokerUnavailable(
            f"the local broker did not start:\n{started.stderr.strip()[-3000:]}\n" + WHAT_TO_DO
        )
    if not answers(DEFAULT_BOOTSTRAP, timeout_s=30.0):
        raise BrokerUnavailable("the local broker started but does not answer. " + WHAT_TO_DO)
    return TestBroker(DEFAULT_BOOTSTRAP, started_here=True)


def broker_log_tail(lines: int = 40) -> str | None:
    if not BROKER_LOG.exists():
        return None
    return "\n".join(BROKER_LOG.read_text(errors="replace").splitlines()[-lines:])
