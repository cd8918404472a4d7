"""LeadState as stored: the current layout (format 2) round trips exactly, states
stored by the previous code (format 1, bytes in tests/scorer/data/) load and go on
scoring bit for bit like states never stored, and the history is cut as before."""

import dataclasses
import gc
import json
import math
import types
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.scorer.core import apply_event, sweep
from services.scorer.evaluate import evaluate
from services.scorer.rules import load_rules
from services.scorer.state import FORMAT, NO_ENTRIES, NO_KEYS, NO_TIMES, LeadState, RuleState
from tests.scorer.corpus import START, build_corpus

RULES = load_rules()
FORMAT_1 = Path(__file__).parent / "data" / "states_v1.json"
"""States written by `LeadState.to_bytes` at commit 77f2477 (format 1: a JSON object,
then the history lines), over the first half of a seeded corpus and a sweep: what
RocksDB stores and changelogs written by that code hold."""


def scored(corpus: list[Any], states: dict[str, LeadState], first: int = 0) -> None:
    for offset, event in enumerate(corpus, first):
        lead = event.subject or ""
        state = states.get(lead)
        if state is None:
            state = states[lead] = LeadState(lead_id=lead)
        apply_event(state, event, RULES, position=offset)


def exact(state: LeadState) -> tuple[str, ...]:
    """The score and every rule value as their exact repr (floats compared bit for bit)."""
    score = evaluate(state, RULES)
    values = (f"{name}={rule.value!r}" for name, rule in sorted(state.rules.items()))
    return (repr(score.score), repr(score.fit), *values)


def test_states_stored_by_format_1_load_and_score_exactly_like_states_never_stored() -> None:
    fixture = json.loads(FORMAT_1.read_text(encoding="utf-8"))
    spec = fixture["corpus"]
    corpus = build_corpus(spec["leads"], spec["events_per_lead"], seed=spec["seed"])
    cut = spec["cut"]
    swept = START + timedelta(days=spec["sweep_days"])

    live: dict[str, LeadState] = {}  # never stored: the reference
    scored(corpus[:cut], live)
    for state in live.values():
        sweep(state, swept, RULES)
    restored = {lead: LeadState.from_bytes(raw.encode()) for lead, raw in fixture["states"].items()}
    assert restored == live  # what the old code stored is what this code computes
    assert sum(1 for s in restored.values() if s.triggers) >= 5
    assert sum(1 for s in restored.values() if s.crm_status) >= 3

    scored(corpus[cut:], live, cut)
    scored(corpus[cut:], restored, cut)
    assert restored == live
    for lead, state in live.items():
        assert exact(restored[lead]) == exact(state), lead
        assert restored[lead].to_bytes() == state.to_bytes()
        assert restored[lead].history == state.history


def test_a_format_1_state_stored_again_is_format_2_and_loads_equal() -> None:
    fixture = json.loads(FORMAT_1.read_text(encoding="utf-8"))
    for raw in fixture["states"].values():
        old = LeadState.from_bytes(raw.encode())
        new = old.to_bytes()
        assert orjson.loads(new.partition(b"\n")[0])[0] == FORMAT
        assert new.partition(b"\n")[2] == raw.encode().partition(b"\n")[2]  # history as it was
        again = LeadState.from_bytes(new)
        assert again == old
        assert exact(again) == exact(old)
        assert again.to_bytes() == new


def test_the_format_before_history_lines_still_loads() -> None:
    """Format 1 began with the history inside the JSON object."""
    raw = next(iter(json.loads(FORMAT_1.read_text(encoding="utf-8"))["states"].values())).encode()
    head, _, lines = raw.partition(b"\n")
    older = orjson.dumps(
        {**orjson.loads(head), "history": [orjson.loads(line) for line in lines.split(b"\n")]}
    )
    assert LeadState.from_bytes(older) == LeadState.from_bytes(raw)
    assert LeadState.from_bytes(older).to_bytes() == LeadState.from_bytes(raw).to_bytes()


def test_every_corpus_state_round_trips_bit_for_bit() -> None:
    states: dict[str, LeadState] = {}
    scored(build_corpus(300, 12, seed=3), states)
    for state in states.values():
        raw = state.to_bytes()
        loaded = LeadState.from_bytes(raw)
        assert loaded == state
        assert loaded.to_bytes() == raw
        assert exact(loaded) == exact(state)


def test_floats_round_trip_exactly() -> None:
    awkward = [0.1 + 0.2, 1e-310, 5e-324, 1.7976931348623157e308, -0.0, 2.0**53 + 1, math.pi]
    state = LeadState(lead_id="lead-f", as_of=awkward[0])
    for n, value in enumerate(awkward):
        state.rules[f"r{n}"] = RuleState(value, n, [f"e{n}"], [f"a{n}"], [value])
        state.seen[f"e{n}"] = value
        state.record((value, f"e{n}", value, value, None), keep=50)
    loaded = LeadState.from_bytes(state.to_bytes())
    for n, value in enumerate(awkward):
        rule = loaded.rules[f"r{n}"]
        assert repr(rule.value) == repr(value)
        assert repr(rule.times[0]) == repr(value)
        assert repr(loaded.seen[f"e{n}"]) == repr(value)
    assert [repr(entry[2]) for entry in loaded.history] == [repr(v) for v in awkward]


def test_empty_keys_and_times_load_as_the_shared_lists() -> None:
    state = LeadState(lead_id="lead-e", rules={"a": RuleState(1.0, 1, ["e1"])})
    loaded = LeadState.from_bytes(state.to_bytes())
    assert loaded.rules["a"].keys is NO_KEYS
    assert loaded.rules["a"].times is NO_TIMES
    assert loaded.pending is NO_ENTRIES


def test_an_unknown_format_is_refused() -> None:
    raw = LeadState(lead_id="lead-x").to_bytes()
    assert raw.startswith(b"[2,")
    with pytest.raises(ValueError, match="format 3"):
        LeadState.from_bytes(b"[3," + raw[3:])
    # a later format with other fields: the same clear error, not an unpacking one
    with pytest.raises(ValueError, match="format 3: this code reads 2"):
        LeadState.from_bytes(b'[3,"lead-x",{}]')


@pytest.mark.parametrize("keep", [1, 2, 5, 50])
def test_the_history_keeps_the_latest_entries_across_stores_and_loads(keep: int) -> None:
    entries = [(1.0 + n, f"e{n}", n * 0.1, 1.0, "low") for n in range(40)]
    state = LeadState(lead_id="lead-h")
    recorded: list[tuple[Any, ...]] = []
    n = 0
    for burst in (1, 3, 1, 7, 2, 1, 9, 4, 1, 11):  # entries between two stores
        for entry in entries[n : n + burst]:
            state.record(entry, keep)
            recorded.append(entry)
        n += burst
        raw = state.to_bytes()
        expected = [list(entry) for entry in recorded[-keep:]]
        assert state.history == expected
        assert raw.split(b"\n")[1:] == [orjson.dumps(entry) for entry in recorded[-keep:]]
        state = LeadState.from_bytes(raw)
        assert state.history == expected
        assert state.recent_lines == len(expected)


def test_a_format_1_state_counts_its_history_lines_once_recorded_to() -> None:
    raw = next(iter(json.loads(FORMAT_1.read_text(encoding="utf-8"))["states"].values())).encode()
    state = LeadState.from_bytes(raw)
    lines = raw.split(b"\n")[1:]
    assert state.recent_lines == -1  # not counted at load
    state.record((2e9, "later", 1.0, 1.0, "low"), keep=len(lines))
    assert state.lines() == [*lines[1:], orjson.dumps((2e9, "later", 1.0, 1.0, "low"))]
    assert state.recent_lines == len(lines)


def test_states_are_not_tracked_by_the_cyclic_collector_when_compiled() -> None:
    """Compiled (mypyc, `acyclic`), a state and its rule states are no containers for
    the collector to scan; plain Python (`make pure`), they are ordinary objects."""
    state = LeadState(lead_id="lead-gc", rules={"a": RuleState(1.0)})
    compiled = _compiled()
    assert gc.is_tracked(state) is not compiled
    assert gc.is_tracked(state.rules["a"]) is not compiled
    assert gc.is_tracked(state.rules) is not compiled  # a dict holding only those
    assert not gc.is_tracked(state.attributes)  # str -> str/int dicts never are
    assert not gc.is_tracked(state.seen)


def _compiled() -> bool:
    import services.scorer.state as module

    return not (module.__file__ or "").endswith(".py")


def test_nothing_a_state_holds_leads_back_to_a_state() -> None:
    """What makes `acyclic` sound: no cycle can pass through a state, because nothing
    reachable from a state's fields (its rule states', the compiled rules kept on
    them, the fit cache) is a state or a rule state again. Walks every object
    reachable from the fields of states scored over a corpus (hand-offs, sweeps,
    CRM feedback included)."""
    corpus = build_corpus(300, 10)
    states: dict[str, LeadState] = {}
    scored(corpus, states)
    for state in states.values():
        sweep(state, START + timedelta(days=120), RULES)
    lead_fields = [field.name for field in dataclasses.fields(LeadState)]
    rule_fields = [field.name for field in dataclasses.fields(RuleState)]
    assert {"fit_cache", "pending", "rules"} <= set(lead_fields)
    assert {"spec", "spec_for"} <= set(rule_fields)
    seen: set[int] = set()  # shared: the compiled rules are walked once
    for state in states.values():
        roots: list[object] = [getattr(state, name) for name in lead_fields if name != "rules"]
        for rule_state in state.rules.values():
            roots.extend(getattr(rule_state, name) for name in rule_fields)
        while roots:
            item = roots.pop()
            if id(item) in seen or isinstance(item, type | types.ModuleType):
                continue
            seen.add(id(item))
            assert not isinstance(item, LeadState | RuleState), (state.lead_id, item)
            roots.extend(gc.get_referents(item))
    assert len(seen) > 1000  # it did walk (the compiled rules alone hold many objects)
