"""Topic creation against the real broker."""

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from services.common.errors import KafkaUnavailableError, TopicCreationError, TopicMismatchError
from services.common.kafka_settings import KafkaSettings
from services.common.topics import delete_topics, ensure_topics, topic_specs

pytestmark = pytest.mark.kafka


async def topic_config(bootstrap: str, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        [resource] = response.resources
        return {entry[0]: entry[1] for entry in resource[4]}
    finally:
        await admin.close()


async def test_create_is_idempotent_and_applies_the_layout(
    kafka_bootstrap: str, unique: str
) -> None:
    settings = KafkaSettings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"test-{unique}.",
        events_partitions=4,
        partitions=2,
    )
    specs = topic_specs(settings)
    try:
        first = await ensure_topics(kafka_bootstrap, specs)
        second = await ensure_topics(kafka_bootstrap, specs)
        assert sorted(first.created) == sorted(spec.name for spec in specs)
        assert first.existing == []
        assert second.created == []
        assert sorted(second.existing) == sorted(spec.name for spec in specs)

        events = await topic_config(kafka_bootstrap, settings.topic("hotlead.events.v1"))
        assert events["retention.ms"] == "-1"
        assert events["cleanup.policy"] == "delete"
        progress = await topic_config(
            kafka_bootstrap, settings.topic("hotlead.handoff-progress.v1")
        )
        assert progress["cleanup.policy"] == "compact"
    finally:
        await delete_topics(kafka_bootstrap, [spec.name for spec in specs])


async def test_a_topic_with_another_partition_count_is_an_error(
    kafka_settings: KafkaSettings,
) -> None:
    wrong = kafka_settings.model_copy(update={"events_partitions": 5})
    with pytest.raises(
        TopicMismatchError, match=r"hotlead\.events\.v1 has 3 partitions, configured 5"
    ):
        await ensure_topics(kafka_settings.kafka_bootstrap, topic_specs(wrong))


async def test_concurrent_creators_agree(kafka_bootstrap: str, unique: str) -> None:
    settings = KafkaSettings(
        kafka_bootstrap=kafka_bootstrap, topic_prefix=f"test-{unique}.", partitions=2
    )
    specs = topic_specs(settings)
    try:
        reports = await asyncio.gather(*(ensure_topics(kafka_bootstrap, specs) for _ in range(3)))
        created = [name for report in reports for name in report.created]
        assert sorted(created) == sorted(spec.name for spec in specs)
    finally:
        await delete_topics(kafka_bootstrap, [spec.name for spec in specs])


async def test_an_unreachable_cluster_says_what_to_do() -> None:
    with pytest.raises(KafkaUnavailableError, match=r"make kafka-up.*HOTLEAD_KAFKA_BOOTSTRAP"):
        await ensure_topics("127.0.0.1:9", topic_specs(KafkaSettings()), timeout_s=3)


async def test_a_layout_the_cluster_cannot_hold_is_refused_with_the_reason(
    kafka_bootstrap: str, unique: str
) -> None:
    settings = KafkaSettings(
        kafka_bootstrap=kafka_bootstrap, topic_prefix=f"test-{unique}.", replication_factor=3
    )
    with pytest.raises(TopicCreationError, match=r"replication factor of 3 cannot be reached"):
        await ensure_topics(kafka_bootstrap, topic_specs(settings))
