"""From a lead's state to its score: fit, decayed engagement, caps and floor.

Pure functions. The breakdown lists every rule's points and every cap or
floor adjustment, so that its items always add up to the score.
"""

import math
from math import fsum as _fsum
from typing import Final, Literal, NamedTuple

import orjson

from schemas.data import BreakdownItem, Segment
from services.scorer.compiled import Compiled, RuleInfo, compiled
from services.scorer.native import check_fresh
from services.scorer.rules import Rules
from services.scorer.state import LeadState, RuleState

check_fresh(__file__)  # compiled by mypyc: refuse to run a stale build (native.py)

_FSUM: Final = _fsum
"""math.fsum (Final: compiled, a C static, not a lookup in the module's dict)."""

Part = Literal["fit", "engagement", "limit"]


class Item:
    """One line of the breakdown. A plain class, not a named tuple: compiled by
    mypyc, making one is a native call (a named tuple's took ~0.4 us, ~10 per
    hand-off). Never changed once made (outputs keep them)."""

    __slots__ = ("events", "group", "part", "points", "rule")

    def __init__(
        self,
        rule: str,
        group: str | None,
        points: float,
        events: tuple[str, ...],
        part: Part = "engagement",
    ) -> None:
        self.rule = rule
        self.group = group
        self.points = points
        self.events = events
        self.part: Part = part

    def to_dict(self) -> dict[str, object]:
        """The fields of its BreakdownItem, to validate with the event that carries it."""
        return {
            "rule": self.rule,
            "group": self.group,
            "part": self.part,
            "points": self.points,
            "events": list(self.events),
        }

    def to_model(self) -> BreakdownItem:
        return BreakdownItem(
            rule=self.rule,
            group=self.group,
            part=self.part,
            points=self.points,
            events=list(self.events),
        )

    def _fields(self) -> tuple[str, str | None, float, tuple[str, ...], str]:
        return (self.rule, self.group, self.points, self.events, self.part)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Item):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (
            f"Item(rule={self.rule!r}, group={self.group!r}, points={self.points!r}, "
            f"events={self.events!r}, part={self.part!r})"
        )


class Score(NamedTuple):
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


FitMatch = tuple[tuple[str, str, float, str], ...]
"""(rule, group label, points, attribute) of every fit rule that matches, cap lines included."""

_FIT_CACHE: dict[tuple[int, object], tuple[FitMatch, float]] = {}


def _attributes_key(attributes: dict[str, object]) -> object:
    """A hashable key equal for equal attributes: each (name, type, value) in order
    when the values are plain strings and integers (what LeadAttributes holds), else
    (a `custom` dict) their JSON, keys sorted."""
    key: list[object] = []
    for name, value in attributes.items():
        kind = type(value)
        if kind is not str and kind is not int:
            return orjson.dumps(attributes, option=orjson.OPT_SORT_KEYS)
        key.append(name)
        key.append(kind)
        key.append(value)
    return tuple(key)


def _fit(state: LeadState, rules: Rules) -> tuple[FitMatch, float]:
    """The fit rules matching the current attributes and their total (cached by attributes)."""
    key = (id(rules), _attributes_key(state.attributes))
    hit = _FIT_CACHE.get(key)
    if hit is not None:
        return hit
    matches: list[tuple[str, str, float, str]] = []
    for group in compiled(rules).fit_groups:
        in_group: list[tuple[str, str, float, str]] = []
        for matcher in group.matchers:
            rule = matcher.rule
            if matcher.test(attribute_value(state.attributes, rule.field)):
                in_group.append((rule.name, group.label, rule.points, rule.field.split(".")[0]))
                if group.exclusive:
                    break
        matches.extend(in_group)
        if group.cap is not None:
            total = math.fsum(m[2] for m in in_group)
            if total > group.cap:
                matches.append((f"cap:{group.name}", group.label, group.cap - total, ""))
    result = (tuple(matches), math.fsum(m[2] for m in matches))
    if len(_FIT_CACHE) > 50_000:
        _FIT_CACHE.clear()
    _FIT_CACHE[key] = result
    return result


def fit_total(state: LeadState, rules: Rules) -> float:
    """The fit points of the current attributes (caps included)."""
    return _fit(state, rules)[1]


def fit_items(state: LeadState, rules: Rules) -> tuple[Item, ...]:
    """The fit part of the breakdown: a function of the current attributes only."""
    return tuple(_fit_items(state, _fit(state, rules)[0]))


def _fit_items(state: LeadState, matches: FitMatch) -> list[Item]:
    items = []
    for name, label, points, field in matches:
        source = state.attribute_events.get(field) if field else None
        part: Part = "limit" if name.startswith("cap:") else "fit"
        items.append(_item(name, label, points, (source,) if source else (), part))
    return items


_new_tuple: Final = tuple.__new__


def _item(rule: str, group: str | None, points: float, events: tuple[str, ...], part: Part) -> Item:
    return Item(rule, group, points, events, part)


def _factor(state: LeadState, rules: Rules, at: float | None) -> float:
    if at is not None and state.as_of is not None and at > state.as_of:
        return decay_factor(rules, at - state.as_of)
    return 1.0


def score_of(state: LeadState, rules: Rules, at: float | None = None) -> tuple[float, float]:
    """(score, fit) without the breakdown: the fast path; equal to evaluate()'s."""
    prepared = compiled(rules)
    fit = _fit(state, rules)[1]
    return total_of(state, prepared, fit, _factor(state, rules, at)), fit


def total_of(state: LeadState, prepared: Compiled, fit: float, factor: float) -> float:
    """The score: `fit` plus the engagement values decayed by `factor`, caps and floor applied.

    The same parts as `evaluate`'s, summed exactly (as `fsum`: so
    independent of order), without the intermediate items. The sum of two floats
    is the exact sum rounded once, as fsum rounds it: groups of at most two rules
    (the capped groups of the default rules) are added in unboxed locals, and
    fsum runs once, on the parts, when there are more than two."""
    parts: list[float] | None = None
    first = fit
    # the capped groups 0-3, as (count, running sum) in locals; more, or a group
    # with three rules scoring, takes the general way (_total_of_lists)
    c0 = c1 = c2 = c3 = 0
    s0 = s1 = s2 = s3 = 0.0
    for name, rule_state in state.rules.items():
        if not rule_state.count:
            continue
        if rule_state.spec_for is prepared:
            spec = rule_state.spec
        else:
            spec = rule_spec(rule_state, name, prepared)
        if spec is None:
            continue
        cap, group, decays = spec
        value = rule_state.value * factor if decays else rule_state.value
        if cap is not None and value > cap:
            value = cap
        if group < 0:
            if parts is None:
                parts = [first, value]
            else:
                parts.append(value)
        elif group == 0 and c0 < 2:
            s0 = value if c0 == 0 else _add(s0, value)
            c0 += 1
        elif group == 1 and c1 < 2:
            s1 = value if c1 == 0 else _add(s1, value)
            c1 += 1
        elif group == 2 and c2 < 2:
            s2 = value if c2 == 0 else _add(s2, value)
            c2 += 1
        elif group == 3 and c3 < 2:
            s3 = value if c3 == 0 else _add(s3, value)
            c3 += 1
        else:
            return _total_of_lists(state, prepared, fit, factor)
    if c0 or c1 or c2 or c3:
        caps = prepared.group_caps
        if parts is None:
            parts = [first]
        if c0:
            cap0 = caps[0]
            parts.append(s0 if s0 < cap0 else cap0)
        if c1:
            cap1 = caps[1]
            parts.append(s1 if s1 < cap1 else cap1)
        if c2:
            cap2 = caps[2]
            parts.append(s2 if s2 < cap2 else cap2)
        if c3:
            cap3 = caps[3]
            parts.append(s3 if s3 < cap3 else cap3)
    if parts is None:
        raw = first if first != 0.0 else 0.0  # as fsum([first])
    elif len(parts) == 2:
        raw = _add(parts[0], parts[1])
    else:
        raw = _FSUM(parts)
    return _limited(raw, prepared)


def rule_spec(rule_state: RuleState, name: str, prepared: Compiled) -> RuleInfo | None:
    """The compiled info of the rule `name`, kept on its state for `prepared`."""
    spec = prepared.rule_info.get(name)
    rule_state.spec = spec
    rule_state.spec_for = prepared
    return spec


def _add(a: float, b: float) -> float:
    """fsum([a, b]): a + b (one rounding of the exact sum), a zero always +0.0."""
    total = a + b
    return total if total != 0.0 else 0.0


def _limited(raw: float, prepared: Compiled) -> float:
    high = prepared.total_cap
    if high is not None and raw > high:
        return high
    low = prepared.total_floor
    if low is not None and raw < low:
        return low
    return raw


def _total_of_lists(state: LeadState, prepared: Compiled, fit: float, factor: float) -> float:
    """total_of for any number of groups and rules per group."""
    info = prepared.rule_info
    parts = [fit]
    grouped: list[list[float]] | None = None
    for name, rule_state in state.rules.items():
        spec = info.get(name)
        if spec is None or not rule_state.count:
            continue
        cap, group, decays = spec
        value = rule_state.value * factor if decays else rule_state.value
        if cap is not None and value > cap:
            value = cap
        if group < 0:
            parts.append(value)
        else:
            if grouped is None:
                grouped = [[] for _ in prepared.group_caps]
            grouped[group].append(value)
    if grouped is not None:
        caps = prepared.group_caps
        for group, values in enumerate(grouped):
            if values:
                # fsum of one value is that value: the call is skipped, not the rounding
                total = values[0] if len(values) == 1 else _FSUM(values)
                cap = caps[group]
                parts.append(total if total < cap else cap)
    return _limited(_FSUM(parts), prepared)


def evaluate(state: LeadState, rules: Rules, at: float | None = None) -> Score:
    """The score of `state` at time `at` (default: its latest event time), with the
    breakdown: every rule's points, and cap and floor adjustments as their own lines.

    One pass over the rules; its score is `total_of`'s (the same parts, summed by
    fsum: exact, so in any order)."""
    prepared = compiled(rules)
    fit_matches, fit = _fit(state, rules)
    factor = _factor(state, rules, at)
    info = prepared.rule_info
    groups = prepared.rule_groups
    items = _fit_items(state, fit_matches)
    parts = [fit]
    grouped: list[list[float]] | None = None
    for name, rule_state in state.rules.items():
        spec = info.get(name)
        if spec is None or not rule_state.count:
            continue
        cap, group, decays = spec
        value = rule_state.value * factor if decays else rule_state.value
        if cap is not None and value > cap:
            value = cap
        items.append(_item(name, groups[name], value, tuple(rule_state.events), "engagement"))
        if group < 0:
            parts.append(value)
        else:
            if grouped is None:
                grouped = [[] for _ in prepared.group_caps]
            grouped[group].append(value)
    if grouped is not None:
        for (group_name, cap), values in zip(prepared.engagement_caps, grouped, strict=True):
            if values:
                total = _FSUM(values)
                parts.append(min(cap, total))
                if total > cap:
                    items.append(_item(f"cap:{group_name}", group_name, cap - total, (), "limit"))
    raw = _FSUM(parts)
    score = _limited(raw, prepared)
    if score != raw:
        name = "cap:total" if score < raw else "floor"
        items.append(_item(name, None, score - raw, (), "limit"))
    result: Score = _new_tuple(Score, (score, fit, score - fit, tuple(items)))
    return result


_HIGH: Final = Segment.HIGH
_MID: Final = Segment.MID
_LOW: Final = Segment.LOW


def segment_of(score: float, rules: Rules) -> Segment:
    if score >= rules.segments.high:
        return _HIGH
    if score >= rules.segments.mid:
        return _MID
    return _LOW
