"""The rules file: validation names the rule and the field; the default file loads."""

import textwrap
from pathlib import Path

import pytest

from services.scorer.errors import RulesError
from services.scorer.rules import DEFAULT_RULES_PATH, RepeatKind, load_rules, parse_rules


def test_default_rules_load_and_carry_a_content_version() -> None:
    rules = load_rules()
    text = DEFAULT_RULES_PATH.read_text(encoding="utf-8")
    assert rules.name == "default"
    assert rules.version.startswith("default@")
    assert parse_rules(text + "\n# changed\n").version != rules.version
    assert parse_rules(text).version == rules.version
    assert (rules.segments.mid, rules.segments.high, rules.handoff.threshold) == (50, 70, 70)
    assert {t.name for t in rules.triggers} == {"pricing_page", "case_studies"}


def _problems(text: str) -> list[str]:
    with pytest.raises(RulesError) as caught:
        parse_rules(textwrap.dedent(text))
    return caught.value.problems


def test_an_error_names_the_rule_and_the_field() -> None:
    problems = _problems(
        """
        name: bad
        engagement:
          - {name: ok, event: email.opened, points: 1}
          - {name: pricing, event: page.viewed, url: "(unclosed", points: 10}
        """
    )
    assert len(problems) == 1
    assert problems[0].startswith("engagement rule 'pricing': url: not a valid regular expression")


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        (
            "fit: [{name: f1, field: shoe_size, points: 1, equals: 3}]",
            "fit rule 'f1': field: unknown attribute",
        ),
        ("fit: [{name: f2, field: role, points: 1}]", "fit rule 'f2': give exactly one of"),
        (
            "engagement: [{name: e1, event: email.teleported, points: 1}]",
            "engagement rule 'e1': event: unknown event type",
        ),
        (
            "engagement: [{name: e2, event: email.opened, points: 1, repeat: {at_most: 2}}]",
            "engagement rule 'e2': repeat: a window repeat needs",
        ),
        (
            "engagement: [{name: e3, event: email.opened, points: 1,"
            " repeat: {at_most: 2, window: 3 weeks}}]",
            "engagement rule 'e3': repeat.window: '3 weeks' is not a duration",
        ),
        (
            "engagement: [{name: e4, event: email.opened, points: x}]",
            "engagement rule 'e4': points: Input should be a valid number",
        ),
        (
            "engagement: [{name: e5, event: email.opened, points: 1, group: nope}]",
            "engagement rule 'e5': group 'nope' is not declared",
        ),
        (
            "triggers: [{name: t1, event: page.viewed, count: 0}]",
            "trigger 't1': count: Input should be greater than or equal to 1",
        ),
        (
            "handoff: {threshold: 40, rearm_below: 50}",
            "handoff: rearm_below must not be above threshold",
        ),
        ("crm: {maybe: {action: hold}}", "crm.maybe.[key]"),
        ("dedupe: {window: 1h}", "dedupe.window: keep event ids for at least 24h"),
        (
            "fit: [{name: a, field: role, points: 1, equals: x},"
            " {name: a, field: role, points: 1, equals: y}]",
            "rule 'a': the name is used twice",
        ),
    ],
)
def test_invalid_rules_are_refused_with_a_clear_message(snippet: str, expected: str) -> None:
    problems = _problems(f"name: bad\n{snippet}\n")
    assert any(expected in problem for problem in problems), problems


def test_yaml_errors_and_unreadable_files_are_rules_errors(tmp_path: Path) -> None:
    assert "not valid YAML" in _problems("name: [unclosed\n")[0]
    with pytest.raises(RulesError, match="cannot read it"):
        load_rules(tmp_path / "missing.yaml")


def test_short_forms_and_durations() -> None:
    rules = parse_rules(
        """
        name: forms
        half_life: 12h
        engagement:
          - {name: a, event: email.opened, points: 1, repeat: once_per_asset}
          - {name: b, event: [email.clicked, page.viewed], points: 2,
             repeat: {at_most: 3, window: 7d}}
        """
    )
    assert rules.half_life == 12 * 3600
    a, b = rules.engagement
    assert a.repeat.kind is RepeatKind.ONCE_PER_ASSET
    assert b.repeat.kind is RepeatKind.WINDOW
    assert (b.repeat.at_most, b.repeat.window) == (3, 7 * 86400)
    assert b.event == ["hotlead.email.clicked", "hotlead.page.viewed"]
