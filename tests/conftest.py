"""Fixtures shared by every test: the real broker, unique topics per test."""

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from services.common.kafka_settings import KafkaSettings
from services.common.topics import TopicSpec, delete_topics, ensure_topics, topic_specs
from tests.kafka_harness import BrokerUnavailable, TestBroker, broker_for_tests, broker_log_tail

_broker: TestBroker | None = None


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A Kafka broker that answers; started for the session when none runs."""
    global _broker
    try:
        _broker = broker_for_tests()
    except BrokerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    yield _broker.bootstrap
    _broker.stop()


@pytest.fixture
def unique() -> str:
    """A short id that no other test (or run) uses."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
async def kafka_settings(kafka_bootstrap: str, unique: str) -> AsyncIterator[KafkaSettings]:
    """Settings whose topics are this test's own: created before, deleted after."""
    settings = KafkaSettings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"test-{unique}.",
        events_partitions=3,
        partitions=3,
    )
    specs = topic_specs(settings)
    await ensure_topics(kafka_bootstrap, specs)
    yield settings
    await delete_topics(kafka_bootstrap, [spec.name for spec in specs])


@pytest.fixture
async def topic_factory(kafka_bootstrap: str, unique: str) -> AsyncIterator[Callable[..., Any]]:
    """Make topics with unique names: `name = await topic_factory("raw", partitions=2)`."""
    made: list[str] = []

    async def make(base: str = "topic", partitions: int = 1) -> str:
        name = f"test-{unique}.{base}.{len(made)}"
        await ensure_topics(kafka_bootstrap, [TopicSpec(name, partitions, 1)])
        made.append(name)
        return name

    yield make
    await delete_topics(kafka_bootstrap, made)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int) -> None:
    """After a failing run that used the broker, show the end of its log."""
    if exitstatus == 0 or _broker is None:
        return
    tail = broker_log_tail()
    if tail:
        terminalreporter.section("tail of the Kafka broker log (deploy/kafka/var/broker.log)")
        terminalreporter.write_line(tail)
