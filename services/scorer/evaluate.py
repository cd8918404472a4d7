"""From a lead's state to its score: fit, decayed engagement, caps and floor.

Pure functions. The breakdown lists every rule's points and every cap or
floor adjustment, so that its items always add up to the score.
"""

import math
from dataclasses import dataclass

from schemas.data import BreakdownItem, Segment
from services.scorer.compiled import compiled
from services.scorer.rules import Rules
from services.scorer.state import LeadState


@dataclass(frozen=True, slots=True)
class Item:
    rule: str
    group: str | None
    points: float
    events: tuple[str, ...]

    def to_model(self) -> BreakdownItem:
        return BreakdownItem(
            rule=self.rule, group=self.group, points=self.points, events=list(self.events)
        )


@dataclass(frozen=True, slots=True)
class Score:
    score: float
    fit: float
    engagement: float
    items: tuple[Item, ...]


def decay_factor(rules: Rules, elapsed: float) -> float:
    """How much of a decaying value remains after `elapsed` seconds (1.0 without decay)."""
    if rules.half_life is None or elapsed <= 0:
        return 1.0
    return math.pow(2.0, -elapsed / rules.half_life)


def attribute_value(attributes: dict[str, object], name: str) -> object:
    if name.startswith("custom."):
        custom = attributes.get("custom")
        return custom.get(name.removeprefix("custom.")) if isinstance(custom, dict) else None
    return attributes.get(name)


def fit_items(state: LeadState, rules: Rules) -> tuple[Item, ...]:
    """The fit part of the breakdown: a function of the current attributes only."""
    cached: tuple[Item, ...] | None = state.fit_cache
    if cached is not None:
        return cached
    items: list[Item] = []
    for group in compiled(rules).fit_groups:
        matched = []
        for matcher in group.matchers:
            rule = matcher.rule
            if matcher.test(attribute_value(state.attributes, rule.field)):
                matched.append(rule)
                if group.exclusive:
                    break
        for rule in matched:
            source = state.attribute_events.get(rule.field.split(".")[0])
            items.append(Item(rule.name, group.label, rule.points, (source,) if source else ()))
        if group.cap is not None:
            items.extend(
                _cap(group.name, group.cap, [i.points for i in items if i.group == group.label])
            )
    result = tuple(items)
    state.fit_cache = result
    return result


def _cap(group: str | None, cap: float, points: list[float]) -> list[Item]:
    total = math.fsum(points)
    if total <= cap:
        return []
    return [Item(f"cap:{group}", group, cap - total, ())]


def evaluate(state: LeadState, rules: Rules, at: float | None = None) -> Score:
    """The score of `state` at time `at` (default: its latest event time)."""
    factor = 1.0
    if at is not None and state.as_of is not None and at > state.as_of:
        factor = decay_factor(rules, at - state.as_of)
    prepared = compiled(rules)
    fit_part = fit_items(state, rules)
    engagement_items: list[Item] = []
    by_name = prepared.engagement_by_name
    decaying = prepared.decaying
    for name, rule_state in state.rules.items():
        rule = by_name.get(name)
        if rule is None or rule_state.count == 0:
            continue
        value = rule_state.value * factor if name in decaying else rule_state.value
        engagement_items.append(Item(name, rule.group, value, tuple(rule_state.events)))
    for group, cap in prepared.engagement_caps:
        points = [i.points for i in engagement_items if i.group == group]
        if points:
            engagement_items.extend(_cap(group, cap, points))
    fit = math.fsum(i.points for i in fit_part)
    raw = math.fsum([fit, *(i.points for i in engagement_items)])
    score = raw
    limits = rules.total
    if limits.cap is not None and score > limits.cap:
        score = limits.cap
    if limits.floor is not None and score < limits.floor:
        score = limits.floor
    if score != raw:
        name = "cap:total" if score < raw else "floor"
        engagement_items.append(Item(name, None, score - raw, ()))
    return Score(
        score=score,
        fit=fit,
        engagement=score - fit,
        items=(*fit_part, *engagement_items),
    )


def segment_of(score: float, rules: Rules) -> Segment:
    if score >= rules.segments.high:
        return Segment.HIGH
    if score >= rules.segments.mid:
        return Segment.MID
    return Segment.LOW
