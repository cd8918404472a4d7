"""Rules prepared for fast evaluation: regexes compiled, rules indexed by event
type, fit matchers built once, thresholds as plain floats. Made once per Rules
object (on first use) and shared: the scoring core reads only this in its hot path."""

import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Final

from schemas.envelope import CloudEvent
from services.scorer.matching import data_fields, data_key
from services.scorer.native import check_fresh
from services.scorer.rules import EngagementRule, EventMatch, FitRule, RepeatKind, Rules, Trigger

check_fresh(__file__)  # compiled by mypyc: refuse to run a stale build (native.py)

Patterns = tuple[tuple[str, re.Pattern[str]], ...]
"""(event field, regex) pairs that must all match (searched, case-insensitive)."""

EVERY: Final = 0
ONCE_PER_LEAD: Final = 1
ONCE_PER_ASSET: Final = 2
WINDOW: Final = 3
_KIND = {
    RepeatKind.EVERY: EVERY,
    RepeatKind.ONCE_PER_LEAD: ONCE_PER_LEAD,
    RepeatKind.ONCE_PER_ASSET: ONCE_PER_ASSET,
    RepeatKind.WINDOW: WINDOW,
}

RulePlan = tuple[EngagementRule, str, Patterns, float, bool, int, float, int]
"""(rule, name, patterns, points, decays, repeat kind, repeat window, repeat at_most)."""
TriggerPlan = tuple[Trigger, str, Patterns, float | None, int, bool, float, int]
"""(trigger, name, patterns, window, count, distinct, min_score, hits kept)."""
RuleInfo = tuple[float | None, int, bool]
"""(rule cap, index of its capped group or -1, decays) of an engagement rule."""


@dataclass(frozen=True, slots=True)
class TypePlan:
    """What an event of one type can do: its rules and triggers, in file order."""

    engagement: tuple[RulePlan, ...]
    triggers: tuple[TriggerPlan, ...]
    needs_any: bool
    """A rule or trigger of this type matches on `any`."""
    needs_key: bool
    """A once-per-asset rule or a trigger of this type needs the event's asset key."""
    memo: dict[Hashable, "Matched"] = field(default_factory=dict, compare=False)
    """match_key(event) -> what matched: the matching is a function of those fields."""


Matched = tuple[str, tuple[RulePlan, ...], tuple[TriggerPlan, ...]]
"""(the event's asset key, the engagement rules and the triggers it matches)."""
MEMO_SIZE: Final = 20_000
"""Distinct payloads remembered per event type (the memo is emptied when full)."""


def match_event(plan: TypePlan, event: CloudEvent) -> Matched:
    """The rules and triggers of `plan` that `event` matches, and its asset key.

    Memoised on the event's matchable fields: many events share their page,
    email or asset, and the regular expressions then run once per distinct payload."""
    return match_data(plan, getattr(event, "data", None), event.type)


def match_data(plan: TypePlan, data: object, event_type: str) -> Matched:
    """match_event, given the event's payload and type (what it reads of the event)."""
    key = data_key(data)
    memo = plan.memo
    hit = memo.get(key)
    if hit is not None:
        return hit
    fields = data_fields(data, event_type, with_any=plan.needs_any, with_key=plan.needs_key)
    matched = (
        fields.get("key", ""),
        tuple(rule for rule in plan.engagement if matches(rule[2], fields)),
        tuple(trigger for trigger in plan.triggers if matches(trigger[2], fields)),
    )
    if len(memo) >= MEMO_SIZE:
        memo.clear()
    memo[key] = matched
    return matched


@dataclass(frozen=True, slots=True)
class Match:
    patterns: tuple[tuple[str, re.Pattern[str]], ...]

    def __call__(self, fields: dict[str, str]) -> bool:
        for name, pattern in self.patterns:
            value = fields.get(name)
            if not value or pattern.search(value) is None:
                return False
        return True


def _patterns(spec: EventMatch) -> Patterns:
    return tuple(
        (name, re.compile(pattern, re.IGNORECASE)) for name, pattern in spec.field_patterns()
    )


def _match(spec: EventMatch) -> Match:
    return Match(_patterns(spec))


def matches(patterns: Patterns, fields: dict[str, str]) -> bool:
    for name, pattern in patterns:
        value = fields.get(name)
        if not value or pattern.search(value) is None:
            return False
    return True


@dataclass(frozen=True, slots=True)
class FitMatcher:
    rule: FitRule
    test: Callable[[object], bool]


def _fit_test(rule: FitRule) -> Callable[[object], bool]:
    if rule.in_ is not None:
        folded = {str(v).casefold() for v in rule.in_}
        values = set(rule.in_)

        def test_in(value: object) -> bool:
            if isinstance(value, str):
                return value.casefold() in folded
            return value in values

        return test_in
    if rule.pattern is not None:
        compiled = re.compile(rule.pattern, re.IGNORECASE)
        return lambda value: value is not None and compiled.search(str(value)) is not None
    return rule.matches


@dataclass(frozen=True, slots=True)
class FitGroup:
    name: str | None
    label: str
    exclusive: bool
    cap: float | None
    matchers: tuple[FitMatcher, ...]


@dataclass(frozen=True, slots=True)
class Compiled:
    fit_groups: tuple[FitGroup, ...]
    engagement_by_type: dict[str, tuple[tuple[EngagementRule, Match], ...]]
    triggers_by_type: dict[str, tuple[tuple[Trigger, Match], ...]]
    engagement_by_name: dict[str, EngagementRule]
    decaying: frozenset[str]
    engagement_caps: tuple[tuple[str, float], ...]
    engagement_cap_by_group: dict[str, float]
    plans: dict[str, TypePlan]
    """Per event type (str value): what it can score and trigger."""
    rule_info: dict[str, RuleInfo]
    rule_groups: dict[str, str | None]
    """The group of each engagement rule."""
    group_caps: tuple[float, ...]
    """The caps of the capped engagement groups, indexed as in `rule_info`."""
    half_life: float | None
    segment_mid: float
    segment_high: float
    threshold: float
    rearm_below: float
    cooldown: float | None
    total_cap: float | None
    total_floor: float | None
    history: int
    dedupe_window: float
    dedupe_max_ids: int
    plain_outputs: bool
    """Every value the rules put into an output is valid as it is (see outputs.py)."""


def _plain_outputs(rules: Rules) -> bool:
    """Whether the outputs' fields from the rules fit their schema without validation:
    the version (a Ref: 1-256 characters), group names (also as `cap:<group>`), and
    trigger details (with a score appended, within ShortText's 1024)."""
    groups = {
        *rules.groups,
        *(rule.group for rule in rules.fit),
        *(rule.group for rule in rules.engagement),
    }
    return (
        0 < len(rules.version) <= 256
        and all(group is None or 0 < len(group) <= 200 for group in groups)
        and all(t.detail is None or len(t.detail) <= 512 for t in rules.triggers)
    )


def compile_rules(rules: Rules) -> Compiled:
    groups: dict[str | None, list[FitMatcher]] = {}
    for rule in rules.fit:
        groups.setdefault(rule.group, []).append(FitMatcher(rule, _fit_test(rule)))
    fit_groups = tuple(
        FitGroup(
            name,
            name or "fit",
            bool(name is not None and rules.groups[name].exclusive),
            rules.groups[name].cap if name is not None else None,
            tuple(matchers),
        )
        for name, matchers in groups.items()
    )
    engagement: dict[str, list[tuple[EngagementRule, Match]]] = {}
    for erule in rules.engagement:
        for event_type in erule.event:
            engagement.setdefault(event_type, []).append((erule, _match(erule)))
    triggers: dict[str, list[tuple[Trigger, Match]]] = {}
    for trigger in rules.triggers:
        for event_type in trigger.event:
            triggers.setdefault(event_type, []).append((trigger, _match(trigger)))
    engaged_groups = {r.group for r in rules.engagement if r.group is not None}
    caps = tuple(
        (name, spec.cap)
        for name, spec in rules.groups.items()
        if spec.cap is not None and name in engaged_groups
    )
    group_index = {name: i for i, (name, _) in enumerate(caps)}
    rule_info: dict[str, RuleInfo] = {
        r.name: (r.cap, group_index.get(r.group, -1) if r.group else -1, r.decay)
        for r in rules.engagement
    }
    event_types = {*engagement, *triggers}
    plans = {
        event_type: _type_plan(
            [rule for rule, _ in engagement.get(event_type, ())],
            [trigger for trigger, _ in triggers.get(event_type, ())],
        )
        for event_type in event_types
    }
    return Compiled(
        plans=plans,
        rule_info=rule_info,
        rule_groups={r.name: r.group for r in rules.engagement},
        group_caps=tuple(cap for _, cap in caps),
        half_life=rules.half_life,
        segment_mid=rules.segments.mid,
        segment_high=rules.segments.high,
        threshold=rules.handoff.threshold,
        rearm_below=rules.handoff.rearm_below,
        cooldown=rules.handoff.cooldown,
        total_cap=rules.total.cap,
        total_floor=rules.total.floor,
        history=rules.history,
        dedupe_window=rules.dedupe.window,
        dedupe_max_ids=rules.dedupe.max_ids,
        plain_outputs=_plain_outputs(rules),
        fit_groups=fit_groups,
        engagement_by_type={k: tuple(v) for k, v in engagement.items()},
        triggers_by_type={k: tuple(v) for k, v in triggers.items()},
        engagement_by_name={r.name: r for r in rules.engagement},
        decaying=frozenset(r.name for r in rules.engagement if r.decay),
        engagement_caps=caps,
        engagement_cap_by_group=dict(caps),
    )


def _type_plan(rules: list[EngagementRule], triggers: list[Trigger]) -> TypePlan:
    engagement = tuple(
        (
            rule,
            rule.name,
            _patterns(rule),
            rule.points,
            rule.decay,
            _KIND[rule.repeat.kind],
            rule.repeat.window or 0.0,
            rule.repeat.at_most or 0,
        )
        for rule in rules
    )
    trigger_plans = tuple(
        (
            trigger,
            trigger.name,
            _patterns(trigger),
            trigger.window,
            trigger.count,
            trigger.distinct,
            trigger.min_score,
            max(trigger.count * 4, 16),
        )
        for trigger in triggers
    )
    specs: list[EventMatch] = [*rules, *triggers]
    return TypePlan(
        engagement=engagement,
        triggers=trigger_plans,
        needs_any=any(spec.any is not None for spec in specs),
        needs_key=bool(triggers)
        or any(rule.repeat.kind is RepeatKind.ONCE_PER_ASSET for rule in rules),
    )


_CACHE: dict[int, tuple[Rules, Compiled]] = {}


class _Last:
    """The Rules object asked for last and its compiled form: a process scores with
    one Rules object, asked for several times per event (no id(), no dict lookup)."""

    __slots__ = ("compiled", "rules")

    def __init__(self) -> None:
        self.rules: Rules | None = None
        self.compiled: Compiled | None = None


_LAST: Final = _Last()


def compiled(rules: Rules) -> Compiled:
    """The compiled form of `rules` (made once per Rules object)."""
    last = _LAST
    known = last.compiled
    if last.rules is rules and known is not None:
        return known
    hit = _CACHE.get(id(rules))
    if hit is not None and hit[0] is rules:
        result = hit[1]
    else:
        result = compile_rules(rules)
        if len(_CACHE) > 64:
            _CACHE.clear()
        _CACHE[id(rules)] = (rules, result)
    last.rules = rules
    last.compiled = result
    return result
