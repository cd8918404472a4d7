"""A lead's scoring state: plain data, serialised to JSON bytes for the table
(one JSON object, then one line per history entry; see `LeadState.to_bytes`).

Times are event times in epoch seconds (floats); nothing here reads a clock.
Floats survive the JSON round trip exactly (orjson writes the shortest repr),
so a state restored from the changelog scores bit for bit like the original.
"""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import orjson

from services.scorer.native import check_fresh

check_fresh(__file__)  # compiled by mypyc: refuse to run a stale build (native.py)


class HandoffStatus(StrEnum):
    ARMED = "armed"
    """May be handed off when it qualifies (and the cooldown has passed)."""
    HANDED_OFF = "handed_off"
    """Handed off; re-armed when the score falls below `rearm_below` or the CRM recycles it."""
    HELD = "held"
    """Sales accepted it: no new hand-off until the CRM recycles it."""
    CLOSED = "closed"
    """An opportunity or a customer: no new hand-off until the CRM recycles it."""


_STATUS: Final = {status.value: status for status in HandoffStatus}
"""By value: a dict lookup, where HandoffStatus(value) runs the enum machinery."""


NO_KEYS: Final[list[str]] = []
NO_TIMES: Final[list[float]] = []
"""The `keys` and `times` of the rule states that have none: shared, never changed
(empty, so clear() leaves them as they are); the core gives a rule state its own
list when it first adds to one (most rules repeat neither once per asset nor in a
window: two lists fewer per rule state to make, and for the collector to scan)."""


@dataclass(slots=True, init=False)
class RuleState:
    """One engagement rule's part of a lead's score."""

    value: float
    """Points, decayed to the lead's `as_of` (rules with `decay: false` keep their points)."""
    count: int
    events: list[str]
    """The most recent events that earned points (at most EVENTS_PER_RULE)."""
    keys: list[str]
    """once_per_asset: the assets already scored."""
    times: list[float]
    """window repeat: when it scored, within the window."""
    spec: tuple[float | None, int, bool] | None = field(compare=False, repr=False)
    """Not stored: the rule's compiled.RuleInfo in `spec_for` (the core's cache of
    a dict lookup per rule, several times per event)."""
    spec_for: Any = field(compare=False, repr=False)

    def __init__(
        self,
        value: float = 0.0,
        count: int = 0,
        events: list[str] | None = None,
        keys: list[str] | None = None,
        times: list[float] | None = None,
    ) -> None:
        # written out (init=False): compiled by mypyc, this __init__ is native code,
        # where the one dataclass generates is interpreted Python
        self.value = value
        self.count = count
        self.events = events if events is not None else []
        self.keys = keys if keys is not None else NO_KEYS
        self.times = times if times is not None else NO_TIMES
        self.spec = None
        self.spec_for = None


Entry = tuple[float, str | None, float, float, str | None]
"""A history entry as recorded: (time, event id or None (sweep), score, fit, segment)."""


@dataclass(slots=True, eq=False)
class LeadState:
    lead_id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    attribute_events: dict[str, str] = field(default_factory=dict)
    """Which event last set each attribute (fit breakdown)."""
    as_of: float | None = None
    """The latest event time seen; engagement values are decayed to it."""
    rules: dict[str, RuleState] = field(default_factory=dict)
    triggers: dict[str, list[list[Any]]] = field(default_factory=dict)
    """Per trigger, the matching events [time, asset key] still inside its window
    (lists, as JSON gives them back: a loaded state needs no conversion)."""
    seen: dict[str, float] = field(default_factory=dict)
    """Applied event ids -> the lead's `as_of` when applied, in arrival order (dedupe)."""
    segment: str | None = None
    segment_changes: int = 0
    handoff_status: HandoffStatus = HandoffStatus.ARMED
    handoffs: int = 0
    """Qualification sequence: the number of hand-offs requested so far."""
    last_handoff_at: float | None = None
    last_handoff_id: str | None = None
    crm_status: str | None = None
    recent: list[bytes] = field(default_factory=list)
    """Recent scores, oldest first, each kept as the JSON array [time, event id or
    None (sweep), score, fit, segment]: only the lead view reads them (`history`),
    so loading and storing a state never parses or rebuilds them. The entries
    recorded since the state was last stored are in `pending` until then."""
    events_applied: int = 0
    last_event_id: str | None = None
    position: int | None = None
    """The log position (source offset) of the last event read; redeliveries are at or before it."""
    fit_cache: tuple[object, float] | None = field(default=None, compare=False, repr=False)
    """Not stored: (compiled rules, fit of the current attributes), kept by the core
    between events; reset whenever an event changes the attributes."""
    pending: list[Entry] = field(default_factory=list, repr=False)
    """History entries recorded since the state was last stored, not yet JSON (the
    latest last): `to_bytes` (and `history`, and `==`) moves them into `recent`.

    Serialising an entry when it is recorded cost the core ~10 % of its time (on
    top of orjson's work, each result is a fresh 1 KB allocation shrunk in place);
    serialised when the state is stored, each entry is still written once, and
    kept as a copy the size of its text (`_line`)."""

    @property
    def history(self) -> list[list[Any]]:
        """Recent scores, oldest first: [time, event id or None (sweep), score, fit, segment]."""
        return [orjson.loads(entry) for entry in self.lines()]

    def record(self, entry: Entry, keep: int) -> None:
        """Append a history entry; keep the latest `keep`."""
        pending = self.pending
        pending.append(entry)
        excess = len(self.recent) + len(pending) - keep
        if excess > 0:
            recent = self.recent
            if excess > len(recent):
                del pending[: excess - len(recent)]
                recent.clear()
            else:
                del recent[:excess]

    def lines(self) -> list[bytes]:
        """The history as stored (one JSON array per entry), the pending entries
        serialised first."""
        pending = self.pending
        if pending:
            recent = self.recent
            for entry in pending:
                recent.append(_line(entry))
            pending.clear()
        return self.recent

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LeadState):
            return NotImplemented
        return self._fields() == other._fields()

    def _fields(self) -> tuple[object, ...]:
        """What `==` compares: every field but the caches, the history as stored."""
        return (
            self.lead_id,
            self.attributes,
            self.attribute_events,
            self.as_of,
            self.rules,
            self.triggers,
            self.seen,
            self.segment,
            self.segment_changes,
            self.handoff_status,
            self.handoffs,
            self.last_handoff_at,
            self.last_handoff_id,
            self.crm_status,
            self.lines(),
            self.events_applied,
            self.last_event_id,
            self.position,
        )

    def to_bytes(self) -> bytes:
        """One JSON object (the state), then each history entry on a line of its own."""
        recent = self.lines()
        head = orjson.dumps(
            {
                "lead_id": self.lead_id,
                "attributes": self.attributes,
                "attribute_events": self.attribute_events,
                "as_of": self.as_of,
                "rules": {
                    name: [r.value, r.count, r.events, r.keys, r.times]
                    for name, r in self.rules.items()
                },
                "triggers": self.triggers,
                "seen": self.seen,
                "segment": self.segment,
                "segment_changes": self.segment_changes,
                "handoff_status": self.handoff_status,  # a StrEnum: orjson writes its value
                "handoffs": self.handoffs,
                "last_handoff_at": self.last_handoff_at,
                "last_handoff_id": self.last_handoff_id,
                "crm_status": self.crm_status,
                "events_applied": self.events_applied,
                "last_event_id": self.last_event_id,
                "position": self.position,
            }
        )
        return b"\n".join((head, *recent)) if recent else head

    @classmethod
    def from_bytes(cls, raw: bytes) -> "LeadState":
        if type(raw) is not bytes:
            raw = bytes(raw)  # a memoryview or bytearray from a store
        head, _, tail = raw.partition(b"\n")  # orjson never writes a raw newline
        doc = orjson.loads(head)
        if tail:
            recent = tail.split(b"\n")
        elif "history" in doc:  # written before the history had lines of its own
            recent = [orjson.dumps(entry) for entry in doc["history"]]
        else:
            recent = []
        return cls(
            lead_id=doc["lead_id"],
            attributes=doc["attributes"],
            attribute_events=doc["attribute_events"],
            as_of=doc["as_of"],
            rules={
                name: RuleState(value, count, events, keys, times)
                for name, (value, count, events, keys, times) in doc["rules"].items()
            },
            triggers=doc["triggers"],
            seen=doc["seen"],
            segment=doc["segment"],
            segment_changes=doc["segment_changes"],
            handoff_status=_STATUS[doc["handoff_status"]],
            handoffs=doc["handoffs"],
            last_handoff_at=doc["last_handoff_at"],
            last_handoff_id=doc["last_handoff_id"],
            crm_status=doc["crm_status"],
            recent=recent,
            events_applied=doc["events_applied"],
            last_event_id=doc["last_event_id"],
            position=doc.get("position"),
        )

    def copy(self) -> "LeadState":
        return LeadState.from_bytes(self.to_bytes())


_dumps: Final = orjson.dumps
_bytes: Final = bytes
_memoryview: Final = memoryview


def _line(entry: Entry) -> bytes:
    """`entry` as its JSON array: what orjson writes, copied out of orjson's buffer
    (which starts at 1 KB and is shrunk in place: kept as it is, each line would hold
    a fresh system allocation)."""
    return _bytes(_memoryview(_dumps(entry)))
