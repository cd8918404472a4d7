"""A lead's scoring state: plain data, serialised to JSON bytes for the table
(format 2: one JSON array, the fields by position, then one line per history
entry; see `LeadState.to_bytes`; format 1, an object by field name, still loads).

Times are event times in epoch seconds (floats); nothing here reads a clock.
Floats survive the JSON round trip exactly (orjson writes the shortest repr),
so a state restored from the changelog scores bit for bit like the original.

`LeadState` and `RuleState` are mypyc `acyclic` classes: compiled, the cyclic
garbage collector does not track them (nor a dict holding only rule states), so
a worker holding 20,000 states has ~half the containers for it to scan. That is
sound only because no reference cycle can run through them: they hold plain data
(str, numbers, lists and dicts of those) and the compiled rules, which never
refer to a state. Keep it so (a cycle through an untracked object is never
collected). `mypyc_attr` does nothing when the module runs as plain Python;
mypy_extensions is a dependency of faust-streaming.
"""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import orjson
from mypy_extensions import mypyc_attr

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


@mypyc_attr(acyclic=True)
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

NO_ENTRIES: Final[list[Entry]] = []
"""The `pending` of a state with no history entries waiting to be stored: shared,
never changed (`record` gives a state its own list)."""

FORMAT: Final = 2
"""The stored layout's version, the first item of its head array (see `to_bytes`)."""


@mypyc_attr(acyclic=True)
@dataclass(slots=True, eq=False, init=False)
class LeadState:
    lead_id: str
    attributes: dict[str, Any]
    attribute_events: dict[str, str]
    """Which event last set each attribute (fit breakdown)."""
    as_of: float | None
    """The latest event time seen; engagement values are decayed to it."""
    rules: dict[str, RuleState]
    triggers: dict[str, list[list[Any]]]
    """Per trigger, the matching events [time, asset key] still inside its window
    (lists, as JSON gives them back: a loaded state needs no conversion)."""
    seen: dict[str, float]
    """Applied event ids -> the lead's `as_of` when applied, in arrival order (dedupe)."""
    segment: str | None
    segment_changes: int
    handoff_status: HandoffStatus
    handoffs: int
    """Qualification sequence: the number of hand-offs requested so far."""
    last_handoff_at: float | None
    last_handoff_id: str | None
    crm_status: str | None
    recent: bytes = field(repr=False)
    """Recent scores, oldest first, as stored: one JSON array [time, event id or
    None (sweep), score, fit, segment] per line (b"": none). Only the lead view
    reads them (`history`), so loading and storing a state never parses or
    rebuilds them, and one bytes object is nothing for the cyclic collector to
    scan. The entries recorded since the state was last stored are in `pending`
    until then."""
    events_applied: int
    last_event_id: str | None
    position: int | None
    """The log position (source offset) of the last event read; redeliveries are at or before it."""
    fit_cache: tuple[object, float] | None = field(compare=False, repr=False)
    """Not stored: (compiled rules, fit of the current attributes), kept by the core
    between events; reset whenever an event changes the attributes."""
    pending: list[Entry] = field(compare=False, repr=False)
    """History entries recorded since the state was last stored, not yet JSON (the
    latest last; NO_ENTRIES: none): storing the state (and `history`, and `==`)
    moves them into `recent`.

    Serialising an entry when it is recorded cost the core ~10 % of its time (on
    top of orjson's work, each result is a fresh 1 KB allocation shrunk in place);
    serialised when the state is stored, each entry is still written once."""
    recent_lines: int = field(compare=False, repr=False)
    """The lines in `recent` (stored with it; -1: not counted yet, a state loaded
    from format 1)."""
    keep: int = field(compare=False, repr=False)
    """Not stored: the history entries to keep, as last given to `record`; `recent`
    is cut to it when the pending entries join it."""

    def __init__(
        self,
        lead_id: str,
        attributes: dict[str, Any] | None = None,
        attribute_events: dict[str, str] | None = None,
        as_of: float | None = None,
        rules: dict[str, RuleState] | None = None,
        triggers: dict[str, list[list[Any]]] | None = None,
        seen: dict[str, float] | None = None,
        segment: str | None = None,
        segment_changes: int = 0,
        handoff_status: HandoffStatus = HandoffStatus.ARMED,
        handoffs: int = 0,
        last_handoff_at: float | None = None,
        last_handoff_id: str | None = None,
        crm_status: str | None = None,
        recent: bytes = b"",
        events_applied: int = 0,
        last_event_id: str | None = None,
        position: int | None = None,
        recent_lines: int = -1,
    ) -> None:
        # written out (init=False): compiled by mypyc, this __init__ is native code
        # (`from_bytes` calls it for every state loaded)
        self.lead_id = lead_id
        self.attributes = attributes if attributes is not None else {}
        self.attribute_events = attribute_events if attribute_events is not None else {}
        self.as_of = as_of
        self.rules = rules if rules is not None else {}
        self.triggers = triggers if triggers is not None else {}
        self.seen = seen if seen is not None else {}
        self.segment = segment
        self.segment_changes = segment_changes
        self.handoff_status = handoff_status
        self.handoffs = handoffs
        self.last_handoff_at = last_handoff_at
        self.last_handoff_id = last_handoff_id
        self.crm_status = crm_status
        self.recent = recent
        self.events_applied = events_applied
        self.last_event_id = last_event_id
        self.position = position
        self.recent_lines = recent_lines if recent else 0
        self.fit_cache = None
        self.pending = NO_ENTRIES
        self.keep = 0

    @property
    def history(self) -> list[list[Any]]:
        """Recent scores, oldest first: [time, event id or None (sweep), score, fit, segment]."""
        return [orjson.loads(line) for line in self.lines()]

    def record(self, entry: Entry, keep: int) -> None:
        """Append a history entry; keep the latest `keep` (`recent` is cut to them
        when the pending entries join it)."""
        self.keep = keep
        pending = self.pending
        if pending is NO_ENTRIES:
            self.pending = [entry]
        else:
            pending.append(entry)
            if len(pending) > keep:
                del pending[: len(pending) - keep]

    def stored_history(self) -> bytes:
        """`recent`, the pending entries serialised onto it first (the oldest beyond
        `keep` dropped)."""
        pending = self.pending
        if not pending:
            return self.recent
        recent = self.recent
        count = self.recent_lines
        if count < 0:  # loaded from format 1: counted once
            count = recent.count(b"\n") + 1 if recent else 0
        excess = count + len(pending) - self.keep
        if excess > 0:  # (`record` keeps at most `keep` pending: they all stay)
            if excess >= count:
                recent = b""
                count = 0
            else:
                cut = -1
                for _ in range(excess):
                    cut = recent.find(b"\n", cut + 1)
                recent = recent[cut + 1 :]
                count -= excess
        if len(pending) == 1:
            new = _dumps(pending[0])
        else:
            new = b"\n".join([_dumps(entry) for entry in pending])
        self.recent = recent = b"\n".join((recent, new)) if recent else new
        self.recent_lines = count + len(pending)
        self.pending = NO_ENTRIES
        return recent

    def lines(self) -> list[bytes]:
        """The history as stored, one JSON array per entry (the pending ones serialised first)."""
        recent = self.stored_history()
        return recent.split(b"\n") if recent else []

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
            self.stored_history(),
            self.events_applied,
            self.last_event_id,
            self.position,
        )

    def to_bytes(self) -> bytes:
        """The state as stored (FORMAT 2): one JSON array on the first line, then the
        history, one entry per line (`recent`, as it is).

        The array: [2, lead_id, attributes, attribute_events, as_of, rules, triggers,
        seen, segment, segment_changes, handoff_status, handoffs, last_handoff_at,
        last_handoff_id, crm_status, events_applied, last_event_id, position, the
        number of history lines], where
        rules is one flat array of (name, value, count, events, keys, times) per rule.
        By position, not by name: orjson writes no key and `from_bytes` looks none up
        (format 1, a JSON object with each field by name, still loads)."""
        recent = self.stored_history()  # (first: it counts the lines)
        rules: list[Any] = []
        for name, r in self.rules.items():
            rules += (name, r.value, r.count, r.events, r.keys, r.times)
        head = _dumps(
            (
                FORMAT,
                self.lead_id,
                self.attributes,
                self.attribute_events,
                self.as_of,
                rules,
                self.triggers,
                self.seen,
                self.segment,
                self.segment_changes,
                self.handoff_status,  # a StrEnum: orjson writes its value
                self.handoffs,
                self.last_handoff_at,
                self.last_handoff_id,
                self.crm_status,
                self.events_applied,
                self.last_event_id,
                self.position,
                self.recent_lines,
            )
        )
        return b"\n".join((head, recent)) if recent else head

    @classmethod
    def from_bytes(cls, raw: bytes) -> "LeadState":
        """A state as `to_bytes` wrote it, in this format or an earlier one."""
        if type(raw) is not bytes:
            raw = bytes(raw)  # a memoryview or bytearray from a store
        end = raw.find(b"\n")  # orjson never writes a raw newline
        if end < 0:
            doc = orjson.loads(raw)
            recent = b""
        else:
            doc = orjson.loads(_memoryview(raw)[:end])
            recent = raw[end + 1 :]
        if type(doc) is dict:
            return _from_object(doc, recent)
        if doc[0] != FORMAT:  # before unpacking: another format may have other fields
            raise ValueError(f"lead state format {doc[0]!r}: this code reads {FORMAT}")
        (
            _,
            lead_id,
            attributes,
            attribute_events,
            as_of,
            flat,
            triggers,
            seen,
            segment,
            segment_changes,
            handoff_status,
            handoffs,
            last_handoff_at,
            last_handoff_id,
            crm_status,
            events_applied,
            last_event_id,
            position,
            recent_lines,
        ) = doc
        rules: dict[str, RuleState] = {}
        for i in range(0, len(flat), 6):
            keys = flat[i + 4]
            times = flat[i + 5]
            rules[flat[i]] = RuleState(
                flat[i + 1],
                flat[i + 2],
                flat[i + 3],
                keys if keys else NO_KEYS,
                times if times else NO_TIMES,
            )
        return LeadState(
            lead_id,
            attributes,
            attribute_events,
            as_of,
            rules,
            triggers,
            seen,
            segment,
            segment_changes,
            _STATUS[handoff_status],
            handoffs,
            last_handoff_at,
            last_handoff_id,
            crm_status,
            recent,
            events_applied,
            last_event_id,
            position,
            recent_lines,
        )

    def copy(self) -> "LeadState":
        return LeadState.from_bytes(self.to_bytes())


def _from_object(doc: dict[str, Any], recent: bytes) -> LeadState:
    """A state stored in format 1: a JSON object (each field by name), then the
    history lines; before those, the history was inside the object."""
    if not recent and "history" in doc:
        recent = b"\n".join([_dumps(entry) for entry in doc["history"]])
    return LeadState(
        doc["lead_id"],
        doc["attributes"],
        doc["attribute_events"],
        doc["as_of"],
        {
            name: RuleState(
                value, count, events, keys if keys else NO_KEYS, times if times else NO_TIMES
            )
            for name, (value, count, events, keys, times) in doc["rules"].items()
        },
        doc["triggers"],
        doc["seen"],
        doc["segment"],
        doc["segment_changes"],
        _STATUS[doc["handoff_status"]],
        doc["handoffs"],
        doc["last_handoff_at"],
        doc["last_handoff_id"],
        doc["crm_status"],
        recent,
        doc["events_applied"],
        doc["last_event_id"],
        doc.get("position"),
    )


_dumps: Final = orjson.dumps
_memoryview: Final = memoryview
