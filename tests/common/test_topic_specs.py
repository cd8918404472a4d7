"""The topic layout that settings ask for (pure, no broker)."""

from schemas.topics import ASSIGNMENTS, DLQ, EVENTS, HANDOFF_PROGRESS, SEGMENTS, TOPICS
from services.common.kafka_settings import DAY_MS, KafkaSettings
from services.common.topics import topic_specs


def test_every_topic_of_the_architecture_gets_a_spec() -> None:
    names = {spec.name for spec in topic_specs(KafkaSettings())}
    assert names == {info.name for info in TOPICS}
    assert {
        "hotlead.events.v1", "hotlead.rejected.v1", "hotlead.segments.v1",
        "hotlead.handoffs.v1", "hotlead.handoff-outcomes.v1", "hotlead.dlq.v1",
    } <= names  # fmt: skip


def test_defaults_keep_the_event_log_forever_in_12_partitions() -> None:
    specs = {spec.name: spec for spec in topic_specs(KafkaSettings())}
    assert specs[EVENTS].partitions == 12
    assert specs[EVENTS].configs == {"cleanup.policy": "delete", "retention.ms": "-1"}
    assert specs[SEGMENTS].configs["retention.ms"] == str(7 * DAY_MS)
    assert specs[DLQ].configs["retention.ms"] == str(30 * DAY_MS)


def test_keyed_state_topics_are_compacted() -> None:
    specs = {spec.name: spec for spec in topic_specs(KafkaSettings())}
    for name in (ASSIGNMENTS, HANDOFF_PROGRESS):
        assert specs[name].configs == {"cleanup.policy": "compact"}


def test_settings_come_from_hotlead_environment_variables(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HOTLEAD_EVENTS_PARTITIONS", "24")
    monkeypatch.setenv("HOTLEAD_TOPIC_PREFIX", "acme.")
    monkeypatch.setenv("HOTLEAD_EVENTS_RETENTION_MS", "86400000")
    specs = {spec.name: spec for spec in topic_specs(KafkaSettings())}
    events = specs["acme." + EVENTS]
    assert events.partitions == 24
    assert events.configs["retention.ms"] == "86400000"
