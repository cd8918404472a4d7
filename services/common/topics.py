"""Create and check hotlead's topics, idempotently.

`topic_specs` turns settings into the wanted layout (pure); `ensure_topics`
makes the cluster match it: missing topics are created, existing ones are
checked, and a partition count that differs is an error, never ignored.
"""

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, NoError, TopicAlreadyExistsError, for_code

from schemas.topics import EVENTS, TOPICS, Retention, TopicInfo
from services.common.errors import KafkaUnavailableError, TopicCreationError, TopicMismatchError
from services.common.kafka_settings import KafkaSettings


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class TopicReport:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)


def topic_specs(settings: KafkaSettings, topics: Iterable[TopicInfo] = TOPICS) -> list[TopicSpec]:
    """The layout `settings` asks for, one spec per hotlead topic."""
    retention_ms = {
        Retention.EVENT_LOG: settings.events_retention_ms,
        Retention.STREAM: settings.stream_retention_ms,
        Retention.EVIDENCE: settings.evidence_retention_ms,
    }
    specs = []
    for info in topics:
        if info.compacted:
            configs = {"cleanup.policy": "compact"}
        else:
            configs = {
                "cleanup.policy": "delete",
                "retention.ms": str(retention_ms[info.retention]),
            }
        partitions = settings.events_partitions if info.name == EVENTS else settings.partitions
        specs.append(
            TopicSpec(settings.topic(info.name), partitions, settings.replication_factor, configs)
        )
    return specs


async def ensure_topics(
    bootstrap: str, specs: list[TopicSpec], *, timeout_s: float = 30.0
) -> TopicReport:
    """Create the missing topics and check the existing ones.

    Raises TopicMismatchError when an existing topic has another partition
    count, and KafkaUnavailableError when the cluster does not answer.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
    except (KafkaError, OSError, TimeoutError) as exc:
        await admin.close()
        raise KafkaUnavailableError(bootstrap, exc) from exc
    try:
        report = TopicReport()
        existing = set(await admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        if missing:
            report.created = await _create(admin, missing)
        partitions = await _partition_counts(admin, [spec.name for spec in specs], timeout_s)
        problems = [
            f"{spec.name} has {partitions[spec.name]} partitions, configured {spec.partitions}"
            for spec in specs
            if partitions[spec.name] != spec.partitions
        ]
        if problems:
            raise TopicMismatchError(problems)
        report.existing = [spec.name for spec in specs if spec.name not in report.created]
        return report
    finally:
        await admin.close()


async def _create(admin: AIOKafkaAdminClient, specs: list[TopicSpec]) -> list[str]:
    """Create `specs`; returns the names this call created. A topic that another
    process created meanwhile is not an error (it is checked like the others)."""
    response = await admin.create_topics(
        [
            NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=s.configs)
            for s in specs
        ]
    )
    created, failures = [], []
    for name, code, message, *_ in response.topic_errors:
        error = for_code(code)
        if error is NoError:
            created.append(name)
        elif error is not TopicAlreadyExistsError:
            failures.append(f"{name}: {message or error.__name__}")
    if failures:
        raise TopicCreationError(failures)
    return created


async def delete_topics(bootstrap: str, names: list[str]) -> None:
    """Delete topics (tests and resets); names that do not exist are ignored."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        present = set(await admin.list_topics())
        doomed = [name for name in names if name in present]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


async def _partition_counts(
    admin: AIOKafkaAdminClient, names: list[str], timeout_s: float
) -> dict[str, int]:
    """Partition count per topic, once every partition has a leader (a new topic
    has none for a moment, and writes to it would fail)."""
    deadline = time.monotonic() + timeout_s
    while True:
        described = await admin.describe_topics(names)
        counts: dict[str, int] = {}
        leaderless = []
        for topic in described:
            name = topic["topic"]
            counts[name] = len(topic["partitions"])
            if topic["error_code"] or any(p["leader"] < 0 for p in topic["partitions"]):
                leaderless.append(name)
        if not leaderless and len(counts) == len(names):
            return counts
        if time.monotonic() > deadline:
            raise KafkaUnavailableError(
                ",".join(leaderless), TimeoutError("partitions without a leader")
            )
        await asyncio.sleep(0.1)


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """Every partition of `topic`, in order, as a started consumer sees it; metadata is
    refreshed once when the consumer does not know the topic yet (empty if it does not
    exist)."""
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic)
    return [TopicPartition(topic, p) for p in sorted(partitions or ())]
