"""The core's fast paths give exactly what the plain computations give: the event
time, the score sum, and the history as stored."""

from datetime import UTC, datetime, timedelta, timezone

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from services.scorer import matching
from services.scorer.compiled import compiled
from services.scorer.core import apply_event, timestamp
from services.scorer.evaluate import _total_of_lists, evaluate, fit_total, total_of
from services.scorer.rules import DEFAULT_RULES_PATH, load_rules, parse_rules
from services.scorer.state import NO_KEYS, NO_TIMES, LeadState, RuleState
from tests.scorer.corpus import build_corpus

RULES = load_rules()


@settings(max_examples=500, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(1, 1, 2),  # noqa: DTZ001 - hypothesis takes naive bounds
        max_value=datetime(9999, 12, 30),  # noqa: DTZ001
        timezones=st.sampled_from(
            [
                UTC,
                timezone(timedelta(hours=9)),
                timezone(timedelta(0), "Z"),
                timezone(-timedelta(hours=5)),
            ]
        ),
    )
)
def test_timestamp_is_datetimes_own(when: datetime) -> None:
    assert repr(timestamp(when)) == repr(when.timestamp())


def _corpus_states(leads: int = 300) -> list[LeadState]:
    states: dict[str, LeadState] = {}
    for offset, event in enumerate(build_corpus(leads, 12, seed=5)):
        lead = event.subject or ""
        state = states.setdefault(lead, LeadState(lead_id=lead))
        apply_event(state, event, RULES, position=offset)
    return list(states.values())


def test_total_of_equals_the_sum_of_every_part() -> None:
    prepared = compiled(RULES)
    checked = 0
    for state in _corpus_states():
        fit = fit_total(state, RULES)
        assert total_of(state, prepared, fit, 1.0) == evaluate(state, RULES).score
        for factor in (1.0, 0.999, 0.5, 0.123456789, 1e-9):
            fast = total_of(state, prepared, fit, factor)
            slow = _total_of_lists(state, prepared, fit, factor)
            assert repr(fast) == repr(slow)
            checked += 1
    assert checked > 1000


MANY_GROUPS = """
name: many
segments: {mid: 50, high: 70}
handoff: {threshold: 70, rearm_below: 50}
groups:
  g0: {cap: 7}
  g1: {cap: 9}
  g2: {cap: 11}
  g3: {cap: 13}
  g4: {cap: 15}
engagement:
"""


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=5),  # group (5: none)
            st.floats(min_value=-40, max_value=40, allow_nan=False),
            st.integers(min_value=0, max_value=3),  # count
        ),
        min_size=1,
        max_size=12,
    ),
    st.floats(min_value=0.0, max_value=1.0, exclude_min=True),
    st.floats(min_value=-50, max_value=60, allow_nan=False),
)
def test_total_of_with_any_groups_equals_the_exact_sum(
    rules_values: list[tuple[int, float, int]], factor: float, fit: float
) -> None:
    lines = []
    state = LeadState(lead_id="lead-g")
    for n, (group, value, count) in enumerate(rules_values):
        where = f", group: g{group}" if group < 5 else ""
        cap = ", cap: 12" if n % 3 == 0 else ""
        decay = ", decay: false" if n % 4 == 1 else ""
        lines.append(f"  - {{name: r{n}, event: email.opened, points: 1{where}{cap}{decay}}}")
        state.rules[f"r{n}"] = RuleState(value, count)
    rules = parse_rules(MANY_GROUPS + "\n".join(lines) + "\n")
    prepared = compiled(rules)
    fast = total_of(state, prepared, fit, factor)
    assert repr(fast) == repr(_total_of_lists(state, prepared, fit, factor))
    assert total_of(state, prepared, 0.0, 1.0) == evaluate(state, rules).score


def test_history_entries_are_stored_as_orjson_writes_them() -> None:
    state = LeadState(lead_id="lead-h")
    entries = [
        (1772438400.0 + n * 60.5, f"e{n}" if n % 3 else None, n * 1.1, 45.0, "mid" if n else None)
        for n in range(9)
    ]
    for entry in entries[:5]:
        state.record(entry, keep=7)
    stored = LeadState.from_bytes(state.to_bytes())  # the first five go to `recent`
    for entry in entries[5:]:
        state.record(entry, keep=7)
        stored.record(entry, keep=7)
    assert state.pending
    assert stored.pending
    assert state == stored  # pending entries compare as stored ones
    assert state.history == [list(entry) for entry in entries[-7:]]
    assert state.lines() == [orjson.dumps(entry) for entry in entries[-7:]]
    assert not state.pending
    assert stored.to_bytes() == state.to_bytes()
    assert stored.to_bytes().split(b"\n")[1:] == [orjson.dumps(e) for e in entries[-7:]]


def test_more_pending_entries_than_kept() -> None:
    state = LeadState(lead_id="lead-k")
    state.record((1.0, "a", 1.0, 1.0, "low"), keep=2)
    state.to_bytes()
    for n in range(5):
        state.record((2.0 + n, f"b{n}", 1.0, 1.0, "low"), keep=2)
    assert [entry[1] for entry in state.history] == ["b3", "b4"]


def test_rule_info_kept_on_a_rule_state_follows_the_rules_used() -> None:
    """The core keeps each rule's compiled info on its state: scoring the same
    state under other rules (another cap, no decay) must use theirs."""
    text = DEFAULT_RULES_PATH.read_text(encoding="utf-8")
    other = parse_rules(
        text.replace("email: {cap: 15}", "email: {cap: 2}").replace(
            "points: 3}", "points: 3, decay: false}"
        )
    )
    states = _corpus_states(60)
    for rules in (RULES, other, RULES, other):
        prepared = compiled(rules)
        for state in states:
            fit = fit_total(state, rules)
            for factor in (1.0, 0.5):
                assert repr(total_of(state, prepared, fit, factor)) == repr(
                    _total_of_lists(state, prepared, fit, factor)
                )
    assert compiled(other).rule_info["email_click"][2] is False


def test_match_keys_read_from_the_payload_dict_are_its_attributes() -> None:
    seen = set()
    for event in build_corpus(200, 10):
        data = event.data  # type: ignore[attr-defined]
        pairs = matching._BY_MODEL.get(type(data)) or matching._pairs(type(data))
        values = tuple(getattr(data, attribute) for _, attribute in pairs)
        # as attrgetter gives them (no fields: no key)
        expected = None if not values else values[0] if len(values) == 1 else values
        assert matching.data_key(data) == expected
        assert matching.data_key(data) == matching.data_key(data.model_copy())
        seen.add(type(data))
    assert len(seen) >= 5


def test_rule_states_share_empty_keys_and_times_and_never_change_them() -> None:
    states = _corpus_states(300)
    rule_states = [rule for state in states for rule in state.rules.values()]
    own = [rule for rule in rule_states if rule.keys is not NO_KEYS]
    assert own  # once_per_asset rules got lists of their own
    assert all(rule.keys for rule in own)
    assert any(rule.times is NO_TIMES for rule in rule_states)
    assert NO_KEYS == []
    assert NO_TIMES == []
    # stored and loaded, a state scores the same (the shared lists are written as [])
    for state in states[:50]:
        assert LeadState.from_bytes(state.to_bytes()) == state
