"""The pure scoring core: `score_event(state, event, rules) -> (state, outputs)`.

Deterministic on event time: no clock, no Kafka, no faust. The same function
runs in the faust agent, in backtests and in the crash test's reference run.

Per event, in order:
1. bot-flagged events and event ids already applied change nothing;
2. a lead that was handed off is re-armed if its score has decayed below
   `handoff.rearm_below` by the time of this event;
3. engagement values are decayed to the event time (the lead's `as_of` only
   moves forward; a late event earns its points decayed to `as_of`);
4. the event applies: attributes (fit), CRM feedback, engagement rules;
5. the score is evaluated; a segment change emits SegmentChanged; a lead
   that is armed, past its cooldown and at the threshold (or firing a special
   trigger) emits one HandoffRequested with id `ho-<lead>-<sequence>`.
"""

import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

from schemas.data import CrmStatusChangedData, LeadUpdatedData
from schemas.envelope import CloudEvent
from schemas.event_types import EventType
from services.scorer.compiled import (
    ONCE_PER_ASSET,
    ONCE_PER_LEAD,
    WINDOW,
    Compiled,
    Matched,
    compiled,
    match_data,
)
from services.scorer.evaluate import (
    Score,
    evaluate,
    fit_total,
    rule_spec,
    score_of,
    segment_of,
    total_of,
)
from services.scorer.native import check_fresh
from services.scorer.outputs import (
    HandoffOutput,
    Output,
    Reason,
    handoff_reason,
    handoff_requested,
    segment_changed,
)
from services.scorer.rules import CrmAction, Rules, Trigger
from services.scorer.state import NO_KEYS, HandoffStatus, LeadState, RuleState

check_fresh(__file__)  # compiled by mypyc: refuse to run a stale build (native.py)

NOTHING: Final[Matched] = ("", (), ())
EVENTS_PER_RULE: Final = 10
KEYS_PER_RULE: Final = 1000


class Outcome(StrEnum):
    SCORED = "scored"
    """Applied: at least one rule earned points, or attributes / CRM status changed."""
    NO_RULE = "no_rule"
    """Applied (remembered for dedupe) but no rule gave points."""
    DUPLICATE = "duplicate"
    BOT = "bot"


# Enum members as module constants: `Enum.MEMBER` is looked up through the enum
# metaclass (~0.3 us each on the development machine), several times per event.
# Final: compiled, each is a C static, read without a lookup in the module's dict.
_BOT: Final = Outcome.BOT
_DUPLICATE: Final = Outcome.DUPLICATE
_SCORED: Final = Outcome.SCORED
_NO_RULE: Final = Outcome.NO_RULE
_ARMED: Final = HandoffStatus.ARMED
_HANDED_OFF: Final = HandoffStatus.HANDED_OFF
_HELD: Final = HandoffStatus.HELD
_CLOSED: Final = HandoffStatus.CLOSED
_HOLD: Final = CrmAction.HOLD
_CLOSE: Final = CrmAction.CLOSE
_LEAD_UPDATED: Final = EventType.LEAD_UPDATED
_CRM_STATUS_CHANGED: Final = EventType.CRM_STATUS_CHANGED


class Result:
    """What applying one event did. A plain class, not a dataclass: compiled by
    mypyc, its own __init__ is native code (a dataclass's is generated Python)."""

    __slots__ = ("_score", "outcome", "outputs", "rules", "state")

    def __init__(
        self,
        state: LeadState,
        outcome: Outcome,
        outputs: list[Output] | None = None,
        rules: Rules | None = None,
        score: Score | None = None,
    ) -> None:
        self.state = state
        self.outcome = outcome
        self.outputs: list[Output] = outputs if outputs is not None else []
        """The events it emits, as plain values (outputs.py): `encode()` gives a
        record's bytes, `model()` the pydantic model."""
        self.rules = rules
        """Set when the event was applied: `score` is then evaluated on first access."""
        self._score = score

    @property
    def score(self) -> Score | None:
        """The score with its breakdown, right after the event (None if nothing applied)."""
        if self._score is None and self.rules is not None:
            self._score = evaluate(self.state, self.rules)
        return self._score

    def __repr__(self) -> str:
        return f"Result(outcome={self.outcome!r}, outputs={self.outputs!r}, state={self.state!r})"


def score_event(
    state: LeadState | None, event: CloudEvent, rules: Rules, position: int | None = None
) -> Result:
    """Apply one event to a copy of `state` (None: a new lead).

    `position` is the event's place in the lead's log (its Kafka offset; the
    partition of a lead never changes): an event at or before the last applied
    position is a redelivery and changes nothing, however old. Event ids catch
    the other duplicates (client retries, webhook resends) within the
    `dedupe` window of the rules."""
    lead_id = event.subject or ""
    working = state.copy() if state is not None else LeadState(lead_id=lead_id)
    return apply_event(working, event, rules, position)


def apply_event(
    state: LeadState, event: CloudEvent, rules: Rules, position: int | None = None
) -> Result:
    """Like score_event, but updates `state` in place (the faust agent owns its copy)."""
    # The envelope's fields, read once from the model's __dict__: each attribute
    # read on a pydantic model goes through its __getattr__ hook (~0.1 us).
    values = event.__dict__
    if values.get("bot") is not None:
        return Result(state, _BOT, [], None, None)  # changes nothing, not even the position
    if position is not None:
        last = state.position
        if last is not None and position <= last:
            return Result(state, _DUPLICATE, [], None, None)
        state.position = position
    event_id: str = values["id"]
    if event_id in state.seen:
        return Result(state, _DUPLICATE, [], None, None)
    prepared = compiled(rules)
    when: datetime = values["time"]
    t = timestamp(when)
    before = 0.0
    known = False
    """Whether `before` is the score at `t` before the event (for a handed-off lead)."""
    if state.handoff_status is _HANDED_OFF:
        as_of = state.as_of
        factor = _decay(prepared, t - as_of) if as_of is not None else 1.0
        before = total_of(state, prepared, _fit_of(state, rules, prepared), factor)
        known = True
        if before < prepared.rearm_below:
            state.handoff_status = _ARMED
    _advance(state, prepared, t)
    event_type: str = values["type"]
    data = values.get("data")
    plan = prepared.plans.get(event_type)
    matched = match_data(plan, data, event_type) if plan is not None else NOTHING
    earned = _apply(state, event_id, event_type, data, matched, rules, prepared, t)
    _remember(state, event_id, prepared)
    state.events_applied += 1
    state.last_event_id = event_id

    fit = _fit_of(state, rules, prepared)
    # nothing earned: only the decay to `t` changed the values, which `before`
    # already applied (_advance multiplies each by the same factor): the same sum
    value = total_of(state, prepared, fit, 1.0) if earned or not known else before
    outputs: list[Output] = []
    segment = (
        "high"
        if value >= prepared.segment_high
        else "mid"
        if value >= prepared.segment_mid
        else "low"
    )
    if segment != state.segment:
        outputs.append(segment_changed(state, segment, value, rules, event))
    if state.handoff_status is _HANDED_OFF and value < prepared.rearm_below:
        state.handoff_status = _ARMED
    fired = _fire_triggers(state, matched, t, value) if matched[2] else None
    score = None
    if state.handoff_status is _ARMED:
        reason = _qualifies(state, rules, prepared, t, value, fired)
        if reason is not None:
            score = evaluate(state, rules)
            outputs.append(_handoff(state, reason, score, rules, event, t))
    state.record((t, event_id, value, fit, state.segment), prepared.history)
    return Result(state, _SCORED if earned else _NO_RULE, outputs, rules, score)


_EPOCH_DAY: Final = 719_163
"""date(1970, 1, 1).toordinal()"""
_EXACT_S: Final = 9_007_199_253.0
"""Seconds below which seconds * 10**6 + microseconds stays below 2**53 (exact)."""
_UTC: Final = UTC


def timestamp(when: datetime) -> float:
    """`when.timestamp()`, the same float, without its timedeltas for a UTC datetime
    (the events' times are UTC): the microseconds since the epoch, an integer
    exact as a float (each step is), divided once by 10**6, as datetime does (its
    total_seconds); other time zones, or times outside years 1685-2255, ask datetime."""
    if when.tzinfo is _UTC:
        seconds = float(
            (when.toordinal() - _EPOCH_DAY) * 86_400
            + when.hour * 3_600
            + when.minute * 60
            + when.second
        )
        if -_EXACT_S < seconds < _EXACT_S:
            return (seconds * 1e6 + when.microsecond) / 1e6
    return when.timestamp()


def _decay(prepared: Compiled, elapsed: float) -> float:
    """As evaluate.decay_factor: what remains of a decaying value after `elapsed` s."""
    half_life = prepared.half_life
    if half_life is None or elapsed <= 0:
        return 1.0
    return math.pow(2.0, -elapsed / half_life)


def _fit_of(state: LeadState, rules: Rules, prepared: Compiled) -> float:
    """The fit of the current attributes, kept on the state until they change."""
    cache = state.fit_cache
    if cache is not None and cache[0] is prepared:
        return cache[1]
    fit = fit_total(state, rules)
    state.fit_cache = (prepared, fit)
    return fit


def sweep(state: LeadState, now: datetime, rules: Rules) -> Result:
    """Decay a quiet lead to `now`; emit SegmentChanged if it cooled into another segment.

    Only the segment (and the history) change: the score components stay as of
    the last event, so scores remain a function of the event log alone."""
    at = now.timestamp()
    if state.as_of is None or at <= state.as_of:
        return Result(state, Outcome.NO_RULE)
    value, fit = score_of(state, rules, at=at)
    segment = segment_of(value, rules)
    if segment.value == state.segment:
        return Result(state, Outcome.NO_RULE)
    output = segment_changed(state, segment.value, value, rules, None, now)
    _record_history(state, rules, at, value, fit, None)
    return Result(state, Outcome.SCORED, [output])


def _advance(state: LeadState, prepared: Compiled, t: float) -> None:
    as_of = state.as_of
    if as_of is None:
        state.as_of = t
        return
    if t <= as_of:
        return
    factor = _decay(prepared, t - as_of)
    if factor != 1.0:
        for name, rule_state in state.rules.items():
            if rule_state.spec_for is prepared:
                spec = rule_state.spec
            else:
                spec = rule_spec(rule_state, name, prepared)
            if spec is not None and spec[2]:
                rule_state.value *= factor
    state.as_of = t


def _apply(
    state: LeadState,
    event_id: str,
    event_type: str,
    data: object,
    matched: Matched,
    rules: Rules,
    prepared: Compiled,
    t: float,
) -> bool:
    if event_type == _LEAD_UPDATED and isinstance(data, LeadUpdatedData):
        # the model's own values (str, int, a dict for custom): what model_dump gives
        update = data.attributes.__dict__
        custom = update.get("custom")
        for name, value in update.items():
            if value is not None and name != "custom":
                state.attributes[name] = value
                state.attribute_events[name] = event_id
        if custom:
            merged = dict(state.attributes.get("custom") or {})
            merged.update(custom)
            state.attributes["custom"] = merged
            state.attribute_events["custom"] = event_id
        state.fit_cache = None
        return True
    earned = False
    if event_type == _CRM_STATUS_CHANGED and isinstance(data, CrmStatusChangedData):
        _crm_feedback(state, data, rules)
        earned = True
    asset, rule_plans, _ = matched
    if not rule_plans:
        return earned
    as_of = state.as_of
    late = _decay(prepared, as_of - t) if as_of is not None else 1.0
    rule_states = state.rules
    for rule_plan in rule_plans:
        _, name, _, points, decays, kind, window, at_most = rule_plan
        rule_state = rule_states.get(name)
        if rule_state is None:
            rule_state = rule_states[name] = RuleState()
        elif kind == ONCE_PER_LEAD:
            if rule_state.count:
                continue
        elif kind == ONCE_PER_ASSET:
            if asset in rule_state.keys:
                continue
        elif kind == WINDOW:
            low = t - window
            if sum(1 for s in rule_state.times if low < s <= t) >= at_most:
                continue
        rule_state.value += points * late if decays else points
        rule_state.count += 1
        events = rule_state.events
        events.append(event_id)
        if len(events) > EVENTS_PER_RULE:
            del events[:-EVENTS_PER_RULE]
        if kind == ONCE_PER_ASSET:
            keys = rule_state.keys
            if keys is NO_KEYS:  # shared: a list of its own
                rule_state.keys = [asset]
            else:
                keys.append(asset)
                if len(keys) > KEYS_PER_RULE:
                    del keys[:-KEYS_PER_RULE]
        elif kind == WINDOW:
            horizon = (as_of or t) - window
            rule_state.times = [s for s in rule_state.times if s > horizon]
            rule_state.times.append(t)
        earned = True
    return earned


def _crm_feedback(state: LeadState, data: CrmStatusChangedData, rules: Rules) -> None:
    state.crm_status = data.status.value
    effect = rules.crm.get(data.status)
    if effect is None:
        return
    if effect.reset_engagement:
        for rule_state in state.rules.values():
            rule_state.value = 0.0
            rule_state.events.clear()
            rule_state.count = 0
            rule_state.times.clear()
        state.triggers.clear()
    action = effect.action
    if action is _HOLD:
        state.handoff_status = _HELD
    elif action is _CLOSE:
        state.handoff_status = _CLOSED
    else:
        state.handoff_status = _ARMED


def _remember(state: LeadState, event_id: str, prepared: Compiled) -> None:
    watermark = state.as_of or 0.0
    seen = state.seen
    seen[event_id] = watermark
    horizon = watermark - prepared.dedupe_window
    excess = len(seen) - prepared.dedupe_max_ids
    # the oldest first (arrival order; their watermarks never decrease): forget
    # those past the window, and any beyond the limit
    forget: list[str] | None = None
    for old_id, at in seen.items():
        if at >= horizon and excess <= 0:
            break
        if forget is None:
            forget = [old_id]
        else:
            forget.append(old_id)
        excess -= 1
    if forget is not None:
        for old_id in forget:
            del seen[old_id]


def _fire_triggers(state: LeadState, matched: Matched, t: float, score: float) -> Trigger | None:
    fired: Trigger | None = None
    asset = matched[0]
    for trigger_plan in matched[2]:
        trigger, name, _, window, count, distinct, min_score, keep = trigger_plan
        hits = state.triggers.get(name)
        if hits is None:
            hits = state.triggers[name] = []
        hits.append([t, asset])
        if window is not None:
            horizon = (state.as_of or t) - window
            hits[:] = [hit for hit in hits if hit[0] > horizon]
        if len(hits) > keep:
            del hits[:-keep]
        if window is not None:
            low = t - window
            inside = [hit for hit in hits if low < hit[0] <= t]
        else:
            inside = hits
        seen = len({key for _, key in inside}) if distinct else len(inside)
        if fired is None and seen >= count and score >= min_score:
            fired = trigger
    return fired


def _qualifies(
    state: LeadState,
    rules: Rules,
    prepared: Compiled,
    t: float,
    score: float,
    fired: Trigger | None,
) -> Reason | None:
    cooldown = prepared.cooldown
    if (
        cooldown is not None
        and state.last_handoff_at is not None
        and t < state.last_handoff_at + cooldown
    ):
        return None
    if score >= prepared.threshold:
        return handoff_reason(
            rules,
            "threshold",
            "threshold",
            f"score {score:.1f} reached the hand-off threshold {prepared.threshold:g}",
        )
    if fired is not None:
        detail = fired.detail or f"special trigger {fired.name}"
        return handoff_reason(rules, "trigger", fired.name, f"{detail} (score {score:.1f})")
    return None


def _handoff(
    state: LeadState,
    reason: Reason,
    score: Score,
    rules: Rules,
    event: CloudEvent,
    t: float,
) -> HandoffOutput:
    state.handoffs += 1
    state.handoff_status = _HANDED_OFF
    state.last_handoff_at = t
    handoff_id = handoff_id_for(state.lead_id, state.handoffs)
    state.last_handoff_id = handoff_id
    return handoff_requested(state, handoff_id, reason, score, rules, event)


def handoff_id_for(lead_id: str, sequence: int) -> str:
    """The hand-off id of a lead's `sequence`-th qualification (deterministic)."""
    return f"ho-{lead_id}-{sequence}"


def _record_history(
    state: LeadState, rules: Rules, t: float, score: float, fit: float, event_id: str | None
) -> None:
    state.record((t, event_id, score, fit, state.segment), rules.history)
