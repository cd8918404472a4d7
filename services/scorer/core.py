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

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from schemas.data import (
    CrmStatusChangedData,
    HandoffReason,
    HandoffRequestedData,
    LeadAttributes,
    LeadUpdatedData,
    Segment,
    SegmentChangedData,
)
from schemas.envelope import CloudEvent
from schemas.event_types import EventType
from schemas.events import HandoffRequested, SegmentChanged
from services.scorer.compiled import compiled
from services.scorer.evaluate import Score, decay_factor, evaluate, score_of, segment_of
from services.scorer.matching import event_fields
from services.scorer.rules import CrmAction, EngagementRule, RepeatKind, Rules, Trigger
from services.scorer.state import HandoffStatus, LeadState, RuleState

SOURCE = "/scorer"
EVENTS_PER_RULE = 10
KEYS_PER_RULE = 1000


class Outcome(StrEnum):
    SCORED = "scored"
    """Applied: at least one rule earned points, or attributes / CRM status changed."""
    NO_RULE = "no_rule"
    """Applied (remembered for dedupe) but no rule gave points."""
    DUPLICATE = "duplicate"
    BOT = "bot"


@dataclass(slots=True)
class Result:
    state: LeadState
    outcome: Outcome
    outputs: list[CloudEvent] = field(default_factory=list)
    rules: Rules | None = None
    """Set when the event was applied: `score` is then evaluated on first access."""
    _score: Score | None = None

    @property
    def score(self) -> Score | None:
        """The score with its breakdown, right after the event (None if nothing applied)."""
        if self._score is None and self.rules is not None:
            self._score = evaluate(self.state, self.rules)
        return self._score


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
    if event.bot is not None:
        return Result(state, Outcome.BOT)  # changes nothing, not even the position
    if position is not None:
        if state.position is not None and position <= state.position:
            return Result(state, Outcome.DUPLICATE)
        state.position = position
    if event.id in state.seen:
        return Result(state, Outcome.DUPLICATE)
    t = event.time.timestamp()
    if state.handoff_status is HandoffStatus.HANDED_OFF:
        before, _ = score_of(state, rules, at=t)
        if before < rules.handoff.rearm_below:
            state.handoff_status = HandoffStatus.ARMED
    _advance(state, rules, t)
    fields = event_fields(event)
    earned = _apply(state, event, fields, rules, t)
    _remember(state, event.id, rules)
    state.events_applied += 1
    state.last_event_id = event.id

    value, fit = score_of(state, rules)
    outputs: list[CloudEvent] = []
    segment = segment_of(value, rules)
    if segment.value != state.segment:
        outputs.append(_segment_changed(state, segment, value, rules, event))
    if state.handoff_status is HandoffStatus.HANDED_OFF and value < rules.handoff.rearm_below:
        state.handoff_status = HandoffStatus.ARMED
    fired = _fire_triggers(state, event, fields, rules, t, value)
    reason = _qualifies(state, rules, t, value, fired)
    score = None
    if reason is not None:
        score = evaluate(state, rules)
        outputs.append(_handoff(state, reason, score, rules, event))
    _record_history(state, rules, t, value, fit, event.id)
    outcome = Outcome.SCORED if earned else Outcome.NO_RULE
    return Result(state, outcome, outputs, rules, score)


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
    output = _segment_changed(state, segment, value, rules, None, now)
    _record_history(state, rules, at, value, fit, None)
    return Result(state, Outcome.SCORED, [output])


def _advance(state: LeadState, rules: Rules, t: float) -> None:
    if state.as_of is None:
        state.as_of = t
        return
    if t <= state.as_of:
        return
    factor = decay_factor(rules, t - state.as_of)
    if factor != 1.0:
        decaying = compiled(rules).decaying
        for name, rule_state in state.rules.items():
            if name in decaying:
                rule_state.value *= factor
    state.as_of = t


def _apply(
    state: LeadState, event: CloudEvent, fields: dict[str, str], rules: Rules, t: float
) -> bool:
    data = getattr(event, "data", None)
    if event.type == EventType.LEAD_UPDATED and isinstance(data, LeadUpdatedData):
        update = data.attributes.model_dump(exclude_none=True)
        custom = update.pop("custom", None)
        for name, value in update.items():
            state.attributes[name] = value
            state.attribute_events[name] = event.id
        if custom:
            merged = dict(state.attributes.get("custom") or {})
            merged.update(custom)
            state.attributes["custom"] = merged
            state.attribute_events["custom"] = event.id
        return True
    earned = False
    if event.type == EventType.CRM_STATUS_CHANGED and isinstance(data, CrmStatusChangedData):
        _crm_feedback(state, data, rules)
        earned = True
    late = decay_factor(rules, state.as_of - t) if state.as_of is not None else 1.0
    for rule, match in compiled(rules).engagement_by_type.get(event.type, ()):
        if match(fields) and _may_score(state, rule, fields, t):
            _earn(state, rule, event.id, fields, t, late)
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
    if effect.action is CrmAction.HOLD:
        state.handoff_status = HandoffStatus.HELD
    elif effect.action is CrmAction.CLOSE:
        state.handoff_status = HandoffStatus.CLOSED
    else:
        state.handoff_status = HandoffStatus.ARMED


def _may_score(state: LeadState, rule: EngagementRule, fields: dict[str, str], t: float) -> bool:
    rule_state = state.rules.get(rule.name)
    if rule_state is None:
        return True
    repeat = rule.repeat
    if repeat.kind is RepeatKind.EVERY:
        return True
    if repeat.kind is RepeatKind.ONCE_PER_LEAD:
        return rule_state.count == 0
    if repeat.kind is RepeatKind.ONCE_PER_ASSET:
        return fields["key"] not in rule_state.keys
    assert repeat.window is not None  # noqa: S101 - guaranteed by the Repeat model
    assert repeat.at_most is not None  # noqa: S101
    recent = [s for s in rule_state.times if t - repeat.window < s <= t]
    return len(recent) < repeat.at_most


def _earn(
    state: LeadState,
    rule: EngagementRule,
    event_id: str,
    fields: dict[str, str],
    t: float,
    late: float,
) -> None:
    rule_state = state.rules.setdefault(rule.name, RuleState())
    rule_state.value += rule.points * late if rule.decay else rule.points
    rule_state.count += 1
    rule_state.events.append(event_id)
    del rule_state.events[:-EVENTS_PER_RULE]
    if rule.repeat.kind is RepeatKind.ONCE_PER_ASSET:
        rule_state.keys.append(fields["key"])
        del rule_state.keys[:-KEYS_PER_RULE]
    elif rule.repeat.kind is RepeatKind.WINDOW:
        assert rule.repeat.window is not None  # noqa: S101
        horizon = (state.as_of or t) - rule.repeat.window
        rule_state.times = [s for s in rule_state.times if s > horizon]
        rule_state.times.append(t)


def _remember(state: LeadState, event_id: str, rules: Rules) -> None:
    watermark = state.as_of or 0.0
    state.seen[event_id] = watermark
    horizon = watermark - rules.dedupe.window
    seen = state.seen
    limit = rules.dedupe.max_ids
    while seen:
        old_id, applied_at = next(iter(seen.items()))
        if applied_at >= horizon and len(seen) <= limit:
            break
        del seen[old_id]


def _fire_triggers(
    state: LeadState,
    event: CloudEvent,
    fields: dict[str, str],
    rules: Rules,
    t: float,
    score: float,
) -> Trigger | None:
    fired: Trigger | None = None
    for trigger, match in compiled(rules).triggers_by_type.get(event.type, ()):
        if not match(fields):
            continue
        hits = state.triggers.setdefault(trigger.name, [])
        hits.append((t, fields["key"]))
        if trigger.window is not None:
            horizon = (state.as_of or t) - trigger.window
            hits[:] = [hit for hit in hits if hit[0] > horizon]
        del hits[: -max(trigger.count * 4, 16)]
        inside = [hit for hit in hits if trigger.window is None or t - trigger.window < hit[0] <= t]
        count = len({key for _, key in inside}) if trigger.distinct else len(inside)
        if fired is None and count >= trigger.count and score >= trigger.min_score:
            fired = trigger
    return fired


def _qualifies(
    state: LeadState, rules: Rules, t: float, score: float, fired: Trigger | None
) -> HandoffReason | None:
    if state.handoff_status is not HandoffStatus.ARMED:
        return None
    cooldown = rules.handoff.cooldown
    if (
        cooldown is not None
        and state.last_handoff_at is not None
        and t < state.last_handoff_at + cooldown
    ):
        return None
    if score >= rules.handoff.threshold:
        return HandoffReason(
            kind="threshold",
            name="threshold",
            detail=f"score {score:.1f} reached the hand-off threshold {rules.handoff.threshold:g}",
        )
    if fired is not None:
        detail = fired.detail or f"special trigger {fired.name}"
        return HandoffReason(
            kind="trigger", name=fired.name, detail=f"{detail} (score {score:.1f})"
        )
    return None


def _segment_changed(
    state: LeadState,
    segment: Segment,
    score: float,
    rules: Rules,
    event: CloudEvent | None,
    now: datetime | None = None,
) -> SegmentChanged:
    previous = Segment(state.segment) if state.segment is not None else None
    state.segment = segment.value
    state.segment_changes += 1
    time = event.time if event is not None else (now or datetime.fromtimestamp(0, UTC))
    return SegmentChanged(
        id=f"seg-{state.lead_id}-{state.segment_changes}",
        source=SOURCE,
        subject=state.lead_id,
        time=time,
        data=SegmentChangedData(
            lead_id=state.lead_id,
            previous=previous,
            segment=segment,
            score=score,
            rules_version=rules.version,
            cause_event_id=event.id if event is not None else None,
        ),
    )


def _handoff(
    state: LeadState, reason: HandoffReason, score: Score, rules: Rules, event: CloudEvent
) -> HandoffRequested:
    state.handoffs += 1
    state.handoff_status = HandoffStatus.HANDED_OFF
    state.last_handoff_at = event.time.timestamp()
    handoff_id = handoff_id_for(state.lead_id, state.handoffs)
    state.last_handoff_id = handoff_id
    return HandoffRequested(
        id=handoff_id,
        source=SOURCE,
        subject=state.lead_id,
        time=event.time,
        data=HandoffRequestedData(
            handoff_id=handoff_id,
            lead_id=state.lead_id,
            sequence=state.handoffs,
            reason=reason,
            score=score.score,
            fit=score.fit,
            engagement=score.engagement,
            segment=segment_of(score.score, rules),
            breakdown=[item.to_model() for item in score.items],
            lead=LeadAttributes.model_validate(state.attributes),
            trigger_event_id=event.id,
            trigger_event_time=event.time,
            rules_version=rules.version,
        ),
    )


def handoff_id_for(lead_id: str, sequence: int) -> str:
    """The hand-off id of a lead's `sequence`-th qualification (deterministic)."""
    return f"ho-{lead_id}-{sequence}"


def _record_history(
    state: LeadState, rules: Rules, t: float, score: float, fit: float, event_id: str | None
) -> None:
    state.history.append([t, event_id, score, fit, state.segment])
    del state.history[: -rules.history]
