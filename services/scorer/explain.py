"""What a rules file means, in words (`hotlead rules check`), and why a lead has its score."""

from datetime import UTC, datetime
from typing import Any

from services.scorer.evaluate import Score, segment_of
from services.scorer.rules import EngagementRule, EventMatch, FitRule, Rules
from services.scorer.state import LeadState


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _fit_condition(rule: FitRule) -> str:
    if rule.equals is not None:
        return f"{rule.field} = {rule.equals!r}"
    if rule.in_ is not None:
        return f"{rule.field} in {', '.join(map(str, rule.in_))}"
    if rule.range is not None:
        low, high = rule.range
        parts = [
            f">= {low:g}" if low is not None else "",
            f"< {high:g}" if high is not None else "",
        ]
        return f"{rule.field} {' and '.join(p for p in parts if p)}"
    return f"{rule.field} matches /{rule.pattern}/"


def _match(spec: EventMatch) -> str:
    types = " or ".join(name.removeprefix("hotlead.") for name in spec.event)
    where = [f"{name} ~ /{pattern}/" for name, pattern in spec.field_patterns()]
    return types + (f" where {' and '.join(where)}" if where else "")


def _repeat(rule: EngagementRule) -> str:
    repeat = rule.repeat
    if repeat.kind == "window":
        assert repeat.window is not None  # noqa: S101
        return f"at most {repeat.at_most} per {_duration(repeat.window)}"
    return repeat.kind.value.replace("_", " ")


def describe_rules(rules: Rules) -> list[str]:
    """The rules file, one statement per line."""
    lines = [f"rules {rules.version}"]
    if rules.description:
        lines.append(f"  {rules.description}")
    seg = rules.segments
    lines.append(f"segments: low < {seg.mid:g} <= mid < {seg.high:g} <= high")
    total = rules.total
    lines.append(
        "score: fit + engagement"
        + (f", capped at {total.cap:g}" if total.cap is not None else "")
        + (f", never below {total.floor:g}" if total.floor is not None else "")
    )
    lines.append(
        f"engagement decay: half-life {_duration(rules.half_life)} of event time; fit never decays"
        if rules.half_life
        else "engagement decay: none"
    )
    ho = rules.handoff
    lines.append(
        f"hand-off: at score >= {ho.threshold:g}, once per qualification; re-armed when the score "
        f"falls below {ho.rearm_below:g} or the CRM recycles the lead"
        + (f"; cooldown {_duration(ho.cooldown)}" if ho.cooldown else "")
    )
    for name, spec in rules.groups.items():
        traits = []
        if spec.cap is not None:
            traits.append(f"at most {spec.cap:g} points")
        if spec.exclusive:
            traits.append("first matching rule only")
        lines.append(f"group {name}: {', '.join(traits) or 'no limit'}")
    lines.append(f"fit ({len(rules.fit)} rules, from current attributes):")
    for rule in rules.fit:
        group = f" [{rule.group}]" if rule.group else ""
        lines.append(f"  {rule.name}{group}: {rule.points:+g} if {_fit_condition(rule)}")
    lines.append(f"engagement ({len(rules.engagement)} rules, every matching rule scores):")
    for erule in rules.engagement:
        group = f" [{erule.group}]" if erule.group else ""
        decay = "" if erule.decay else ", never decays"
        if erule.cap is not None:
            decay += f", at most {erule.cap:g} in total"
        lines.append(
            f"  {erule.name}{group}: {erule.points:+g} on {_match(erule)} ({_repeat(erule)}{decay})"
        )
    lines.append(f"special triggers ({len(rules.triggers)}):")
    for trigger in rules.triggers:
        distinct = " distinct" if trigger.distinct else ""
        window = f" within {_duration(trigger.window)}" if trigger.window else ""
        lines.append(
            f"  {trigger.name}: {trigger.count}{distinct} x {_match(trigger)}{window}"
            f", with score >= {trigger.min_score:g}"
        )
    lines.append("CRM feedback:")
    for status, effect in rules.crm.items():
        reset = ", engagement reset to 0" if effect.reset_engagement else ""
        lines.append(f"  {status.value}: {effect.action.value}{reset}")
    lines.append(
        f"dedupe: event ids kept {_duration(rules.dedupe.window)} of event time, "
        f"at most {rules.dedupe.max_ids} per lead"
    )
    return lines


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def lead_view(state: LeadState, score: Score, rules: Rules, at: float | None) -> dict[str, Any]:
    """The JSON answer of GET /leads/{lead_id}."""
    by_rule: dict[str, str] = {r.name: f"{r.points:+g} if {_fit_condition(r)}" for r in rules.fit}
    by_rule.update(
        {r.name: f"{r.points:+g} on {_match(r)} ({_repeat(r)})" for r in rules.engagement}
    )
    explanation = []
    for item in score.items:
        why = by_rule.get(item.rule, "cap or floor adjustment")
        events = f" from events {', '.join(item.events)}" if item.events else ""
        explanation.append(f"{item.rule}: {item.points:+.2f} ({why}){events}")
    return {
        "lead_id": state.lead_id,
        "score": score.score,
        "segment": segment_of(score.score, rules).value,
        "fit": score.fit,
        "engagement": score.engagement,
        "as_of": _iso(at if at is not None else state.as_of or 0.0),
        "last_event_at": _iso(state.as_of) if state.as_of is not None else None,
        "breakdown": [item.to_model().model_dump() for item in score.items],
        "explanation": explanation,
        "handoff": {
            "status": state.handoff_status.value,
            "sequence": state.handoffs,
            "last_handoff_id": state.last_handoff_id,
            "last_handoff_at": _iso(state.last_handoff_at) if state.last_handoff_at else None,
        },
        "crm_status": state.crm_status,
        "attributes": state.attributes,
        "events_applied": state.events_applied,
        "history": [
            {
                "at": _iso(at_time),
                "event_id": event_id,
                "score": value,
                "fit": fit,
                "engagement": value - fit,
                "segment": segment,
            }
            for at_time, event_id, value, fit, segment in state.history
        ],
        "rules_version": rules.version,
    }
