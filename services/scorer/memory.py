"""In-memory LeadTable and OutputSink: for tests, the benchmark's bare loop and
backtests (`BatchScorer` without Kafka or faust)."""

import asyncio
from collections.abc import Awaitable, Iterable

from services.scorer.outputs import Output
from services.scorer.state import LeadState
from services.scorer.write_back import Encoded, encode_states


class MemoryTable:
    def __init__(self) -> None:
        self.states: dict[str, tuple[bytes, int]] = {}

    def load(self, lead_id: str, partition: int | None = None) -> LeadState | None:
        stored = self.states.get(lead_id)
        return LeadState.from_bytes(stored[0]) if stored else None

    async def save_all(self, states: Iterable[tuple[LeadState, int]]) -> None:
        await self.save_encoded(encode_states(states))

    async def save_encoded(self, records: list[Encoded]) -> None:
        for key, raw, partition in records:
            self.states[key.decode()] = (raw, partition)

    async def flush(self) -> None:
        """Nothing to wait for: a dict is as durable as it gets here."""

    def leads(self) -> Iterable[tuple[LeadState, int]]:
        for raw, partition in list(self.states.values()):
            yield LeadState.from_bytes(raw), partition


class MemorySink:
    def __init__(self) -> None:
        self.emitted: list[Output] = []

    async def emit(self, outputs: list[Output]) -> None:
        self.emitted.extend(outputs)

    async def send(self, outputs: list[Output]) -> Awaitable[object]:
        await self.emit(outputs)
        acked: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        acked.set_result(None)
        return acked
