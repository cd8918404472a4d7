"""Rules prepared for fast evaluation: regexes compiled, rules indexed by event
type, fit matchers built once. Made on first use and kept on the Rules object."""

import re
from collections.abc import Callable
from dataclasses import dataclass

from services.scorer.rules import EngagementRule, EventMatch, FitRule, Rules, Trigger


@dataclass(frozen=True, slots=True)
class Match:
    patterns: tuple[tuple[str, re.Pattern[str]], ...]

    def __call__(self, fields: dict[str, str]) -> bool:
        for name, pattern in self.patterns:
            value = fields.get(name)
            if not value or pattern.search(value) is None:
                return False
        return True


def _match(spec: EventMatch) -> Match:
    return Match(
        tuple((name, re.compile(pattern, re.IGNORECASE)) for name, pattern in spec.field_patterns())
    )


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
    return Compiled(
        fit_groups=fit_groups,
        engagement_by_type={k: tuple(v) for k, v in engagement.items()},
        triggers_by_type={k: tuple(v) for k, v in triggers.items()},
        engagement_by_name={r.name: r for r in rules.engagement},
        decaying=frozenset(r.name for r in rules.engagement if r.decay),
        engagement_caps=caps,
        engagement_cap_by_group=dict(caps),
    )


_CACHE: dict[int, tuple[Rules, Compiled]] = {}


def compiled(rules: Rules) -> Compiled:
    """The compiled form of `rules` (made once per Rules object)."""
    hit = _CACHE.get(id(rules))
    if hit is not None and hit[0] is rules:
        return hit[1]
    result = compile_rules(rules)
    if len(_CACHE) > 64:
        _CACHE.clear()
    _CACHE[id(rules)] = (rules, result)
    return result
