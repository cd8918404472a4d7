"""Writing what a request brought: good events to the event log, refused ones
to hotlead.rejected.v1 with the reason, duplicates nowhere, and one answer per item."""

import asyncio
import operator
from collections import OrderedDict
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
from fastapi import Response
from pydantic import BaseModel

from schemas.envelope import CloudEvent
from schemas.topics import EVENTS, REJECTED
from services.ingest.context import IngestContext
from services.ingest.incoming import Invalid, as_text, rejected_event
from services.ingest.records import Record

_BUILT, _ID = operator.itemgetter(1), operator.attrgetter("id")


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


@dataclass(slots=True)
class Answer:
    """What `accept` did, item by item; serialized like `BatchResult` (its
    documented shape) without a model per item."""

    accepted: int
    duplicates: int
    rejected: int
    ignored: int
    results: list[dict[str, Any]]

    def json(self) -> bytes:
        return orjson.dumps(
            {
                "accepted": self.accepted,
                "duplicates": self.duplicates,
                "rejected": self.rejected,
                "ignored": self.ignored,
                "results": self.results,
            }
        )


def as_json(answer: Answer) -> Response:
    """The answer, serialized once (FastAPI would validate the 100s of items again)."""
    return Response(answer.json(), media_type="application/json")


class ErrorBody(BaseModel):
    error: str
    errors: list[str] | None = None


async def accept(
    ctx: IngestContext,
    *,
    route: str,
    source: str,
    items: Sequence[tuple[Any, CloudEvent | Record | Invalid | None]],
    received_at: datetime,
) -> Answer:
    """Write the built items; `None` marks an item acknowledged but not written (ignored)."""
    recent = ctx.sink.recent.ids
    records: list[Record] = []
    rejections: list[Record] = []
    results: list[dict[str, Any]]
    duplicates = ignored = 0
    ids = _new_ids(items, recent)
    if ids is not None:  # the common case: all records, no id seen before
        records = [built for _, built in items]  # type: ignore[misc]
        results = [
            {"index": index, "status": "accepted", "id": event_id}
            for index, event_id in enumerate(ids)
        ]
    else:
        results = []
        seen: set[str] = set()
        for index, (raw, built) in enumerate(items):
            if not isinstance(built, Record) and isinstance(built, CloudEvent):
                built = Record.of(built)  # (pydantic's isinstance is slow: Records first)
            if isinstance(built, Record):
                event_id = built.id
                if event_id in seen or event_id in recent:
                    duplicates += 1
                    results.append({"index": index, "status": "duplicate", "id": event_id})
                else:
                    seen.add(event_id)
                    records.append(built)
                    results.append({"index": index, "status": "accepted", "id": event_id})
            elif built is None:
                ignored += 1
                results.append({"index": index, "status": "ignored"})
            else:
                rejection = rejected_event(
                    built,
                    route=route,
                    source=source,
                    payload=as_text(raw),
                    received_at=received_at,
                )
                rejections.append(Record.of(rejection))
                results.append(
                    {
                        "index": index,
                        "status": "rejected",
                        "reason": built.reason,
                        "errors": built.errors,
                    }
                )
    if records and rejections:
        await asyncio.gather(
            ctx.sink.write(ctx.kafka.topic(EVENTS), records),
            ctx.sink.write(ctx.kafka.topic(REJECTED), rejections),
        )
    elif records or rejections:  # one write: no tasks for gather to make
        await ctx.sink.write(
            ctx.kafka.topic(EVENTS if records else REJECTED), records or rejections
        )
    if rejections:
        ctx.metrics.events_rejected.labels(route).inc(len(rejections))
    if duplicates:
        ctx.metrics.events_duplicate.labels(route).inc(duplicates)
    return Answer(
        accepted=len(records),
        duplicates=duplicates,
        rejected=len(rejections),
        ignored=ignored,
        results=results,
    )


def _new_ids(
    items: Sequence[tuple[Any, CloudEvent | Record | Invalid | None]], recent: Container[str]
) -> list[str] | None:
    """The ids of `items` when every one is a `Record` with an id seen neither
    before (`recent`) nor earlier in `items`; otherwise None (then `accept`
    goes item by item). (map and set: loops in C.)"""
    if len(items) == 1:  # one event per request: what beacons and webhooks send
        only = items[0][1]
        if type(only) is Record and only.id not in recent:
            return [only.id]
        return None
    built = list(map(_BUILT, items))
    if set(map(type, built)) != {Record}:
        return None
    ids: list[str] = list(map(_ID, built))
    if len(set(ids)) != len(ids):
        return None
    if type(recent) is OrderedDict or isinstance(recent, Mapping):  # (type(): ABCs are slow)
        if not recent.keys().isdisjoint(ids):
            return None
    elif any(event_id in recent for event_id in ids):
        return None
    return ids


async def reject_whole(
    ctx: IngestContext, *, route: str, source: str, body: bytes, invalid: Invalid, at: datetime
) -> None:
    """Keep a body that could not be read at all as evidence."""
    event = rejected_event(
        invalid, route=route, source=source, payload=as_text(body), received_at=at
    )
    await ctx.sink.write(ctx.kafka.topic(REJECTED), [Record.of(event)])
    ctx.metrics.events_rejected.labels(route).inc()
