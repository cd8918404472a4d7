"""Writing what a request brought: good events to the event log, refused ones
to hotlead.rejected.v1 with the reason, duplicates nowhere, and one answer per item."""

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from fastapi import Response
from pydantic import BaseModel

from schemas.envelope import CloudEvent
from schemas.topics import EVENTS, REJECTED
from services.ingest.context import IngestContext
from services.ingest.incoming import Invalid, as_text, rejected_event


class ItemResult(BaseModel):
    index: int
    status: Literal["accepted", "duplicate", "rejected", "ignored"]
    id: str | None = None
    reason: str | None = None
    errors: list[str] | None = None


class BatchResult(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    ignored: int = 0
    results: list[ItemResult]


def as_json(result: BatchResult) -> Response:
    """The answer, serialized once (FastAPI would validate the 100s of items again)."""
    return Response(result.model_dump_json(exclude_none=True), media_type="application/json")


class ErrorBody(BaseModel):
    error: str
    errors: list[str] | None = None


async def accept(
    ctx: IngestContext,
    *,
    route: str,
    source: str,
    items: Sequence[tuple[Any, CloudEvent | Invalid | None]],
    received_at: datetime,
) -> BatchResult:
    """Write the built items; `None` marks an item acknowledged but not written (ignored)."""
    results: list[ItemResult] = []
    events: list[CloudEvent] = []
    rejections: list[CloudEvent] = []
    seen: set[str] = set()
    for index, (raw, built) in enumerate(items):
        if built is None:
            results.append(ItemResult(index=index, status="ignored"))
        elif isinstance(built, Invalid):
            rejections.append(
                rejected_event(
                    built, route=route, source=source, payload=as_text(raw), received_at=received_at
                )
            )
            results.append(
                ItemResult(index=index, status="rejected", reason=built.reason, errors=built.errors)
            )
        elif built.id in seen or ctx.sink.is_duplicate(built.id):
            results.append(ItemResult(index=index, status="duplicate", id=built.id))
        else:
            seen.add(built.id)
            events.append(built)
            results.append(ItemResult(index=index, status="accepted", id=built.id))
    await asyncio.gather(
        ctx.sink.write(ctx.kafka.topic(EVENTS), events),
        ctx.sink.write(ctx.kafka.topic(REJECTED), rejections),
    )
    counts = {status: 0 for status in ("accepted", "duplicate", "rejected", "ignored")}
    for result in results:
        counts[result.status] += 1
    if counts["rejected"]:
        ctx.metrics.events_rejected.labels(route).inc(counts["rejected"])
    if counts["duplicate"]:
        ctx.metrics.events_duplicate.labels(route).inc(counts["duplicate"])
    return BatchResult(
        accepted=counts["accepted"],
        duplicates=counts["duplicate"],
        rejected=counts["rejected"],
        ignored=counts["ignored"],
        results=results,
    )


async def reject_whole(
    ctx: IngestContext, *, route: str, source: str, body: bytes, invalid: Invalid, at: datetime
) -> None:
    """Keep a body that could not be read at all as evidence."""
    event = rejected_event(
        invalid, route=route, source=source, payload=as_text(body), received_at=at
    )
    await ctx.sink.write(ctx.kafka.topic(REJECTED), [event])
    ctx.metrics.events_rejected.labels(route).inc()
