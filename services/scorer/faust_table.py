"""The scorer's table on faust: `FaustLeadTable`, the LeadTable of the worker.

Key: lead id, value: LeadState JSON, in faust's table store (RocksDB per
partition via rocksdict, or memory) and its changelog topic.
"""

import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2
from faust.exceptions import PartitionsMismatch
from faust.streams import _current_event
from faust.types import TP
from rocksdict import WriteBatch

from services.scorer.changelog import ChangelogWriter
from services.scorer.state import LeadState
from services.scorer.write_back import Encoded, encode_states

TABLE_NAME = "leads"


@dataclass(frozen=True, slots=True)
class _Message:
    topic: str
    partition: int


def kafka_producer(app: faust.App) -> AIOKafkaProducer:
    """The aiokafka producer under the app's producer (acks=all, started
    with the app). Sending with it directly skips faust's per-record wrapper (sensor
    callbacks, header and timestamp conversion), ~3 % of the worker's CPU; faust's
    producer flush still covers these records (it flushes this producer)."""
    producer: AIOKafkaProducer = app.producer._ensure_producer()  # type: ignore[attr-defined]
    return producer


class _PartitionContext:
    """Stands in for faust's current event where the table needs one: the RocksDB
    store picks the partition's database, and the changelog its partition, from it."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, topic: str, partition: int) -> None:
        self.message = _Message(topic, partition)


class FaustLeadTable:
    """LeadTable on a faust table of raw bytes (key: lead id, value: LeadState JSON).

    States are written straight to the table's store and to its changelog, a
    commit at a time (the scorer's `drain` calls `save_encoded` with the states
    changed since the last commit, `write_back.py`; `flush` sends them to the
    changelog, `ChangelogWriter`): faust's `table[key] = value` would park each
    changelog record in the producer buffer, drained one record per task switch,
    and write the changelog offset to RocksDB once per record.
    """

    def __init__(self, app: faust.App, table: Any, source_topic: str, partitions: int) -> None:
        self._app = app
        self._table = table
        self._topic = source_topic
        self._partitions = partitions
        self._changelog = ChangelogWriter(lambda: kafka_producer(app))
        self._failed: BaseException | None = None
        self._changelog_verified = False

    def _in(self, partition: int) -> tuple[_PartitionContext, Any]:
        context = _PartitionContext(self._topic, partition)
        return context, _current_event.set(weakref.ref(context))  # type: ignore[arg-type]

    def partition_of(self, lead_id: str) -> int:
        """The event log partition of a lead (Kafka's default partitioner)."""
        hashed: int = murmur2(lead_id.encode())
        return (hashed & 0x7FFFFFFF) % self._partitions

    def _partition_db(self, partition: int) -> Any:
        """The RocksDB database of a partition (faust's rocksdb store keeps one per
        partition), or None for a store without (memory://). Reading and writing it
        directly skips faust's per-key serializer, current-event and key-index work."""
        db_for = getattr(self._table.data, "_db_for_partition", None)
        return db_for(partition) if db_for is not None else None

    def load(self, lead_id: str, partition: int | None = None) -> LeadState | None:
        if partition is None:
            partition = self.partition_of(lead_id)
        key = lead_id.encode()
        db = self._partition_db(partition)
        if db is not None:
            raw = db.get(key)
        else:
            context, token = self._in(partition)
            try:
                raw = self._table.data.get(key)
            finally:
                _current_event.reset(token)
                del context
        return LeadState.from_bytes(raw) if raw is not None else None

    async def save_all(self, states: Iterable[tuple[LeadState, int]]) -> None:
        """Write the states to the store, and to the changelog by the next commit.

        `flush`, which the consumer runs before every offset commit, sends them to
        the changelog (acks=all) and waits for the acks: no offset is committed
        before the states its events produced are in the changelog, without a
        produce request and a round trip per batch."""
        await self.save_encoded(encode_states(states))

    async def save_encoded(self, records: list[Encoded]) -> None:
        """As save_all, for states already encoded (lead id, state bytes, partition)."""
        changelog = self._changelog_name()
        if not self._changelog_verified:
            self._verify_changelog_partitions(changelog)
        self._store(records)
        await self._changelog.add(changelog, records)

    def _store(self, records: list[tuple[bytes, bytes, int]]) -> None:
        batches: dict[int, WriteBatch] = {}
        for key, raw, partition in records:
            batch = batches.get(partition)
            if batch is None:
                if self._partition_db(partition) is None:
                    self._store_in_context(key, raw, partition)
                    continue
                batch = batches[partition] = WriteBatch(raw_mode=True)
            batch.put(key, raw)
        for partition, batch in batches.items():
            self._partition_db(partition).write(batch)

    def _store_in_context(self, key: bytes, raw: bytes, partition: int) -> None:
        context, token = self._in(partition)
        try:
            self._table.data[key] = raw
        finally:
            _current_event.reset(token)
            del context

    def fail(self, error: BaseException) -> None:
        """A batch failed: refuse every later commit (see `flush`)."""
        self._failed = error

    async def flush(self) -> None:
        """Send the states waiting for the changelog and wait for every changelog record
        sent so far; raise if one failed. Then note the changelog offsets the store holds
        (recovery reads the changelog from there), once per partition rather than once
        per record as faust's table does.

        Runs before every offset commit: raises, so nothing is committed, once a
        batch has failed (`fail`), whatever faust acked on the way out."""
        if self._failed is not None:
            raise RuntimeError(
                f"a batch of events failed ({self._failed!r}): no offsets are committed"
                " after it; restart the worker to score it again from the last commit"
            )
        changelog = self._changelog_name()
        try:
            persisted = await self._changelog.flush(changelog)
        except Exception as exc:
            self.fail(exc)  # no later commit either, whatever faust acks meanwhile
            raise
        store = self._table.data
        for partition, offset in persisted.items():
            store.set_persisted_offset(TP(changelog, partition), offset)

    def _verify_changelog_partitions(self, changelog: str) -> None:
        """The check faust's table makes at its first write, without its start-up race:
        the group's metadata snapshot can hold 0 partitions for a changelog faust has
        only just created (seen once as PartitionsMismatch, "changelog has 0
        partitions", crashing a starting worker). A count not known yet (None or 0)
        is checked again at the next batch; a different count is an error."""
        consumer = self._app.consumer
        counts = {
            f"changelog {changelog}": consumer.topic_partitions(changelog),
            f"event log {self._topic}": consumer.topic_partitions(self._topic),
        }
        if not all(counts.values()):
            return
        if set(counts.values()) != {self._partitions}:
            found = ", ".join(f"{name}: {count}" for name, count in counts.items())
            raise PartitionsMismatch(
                f"table {TABLE_NAME!r}: {found} partitions, HOTLEAD_EVENTS_PARTITIONS:"
                f" {self._partitions}; they must be equal"
            )
        self._changelog_verified = True

    def _changelog_name(self) -> str:
        name: str = self._table.changelog_topic.get_topic_name()
        return name

    def leads(self) -> Iterable[tuple[LeadState, int]]:
        for key, raw in list(self._table.items()):
            if raw is not None:
                state = LeadState.from_bytes(raw)
                yield state, self.partition_of(key.decode())
