"""Properties of the scoring core, over generated event sequences (hypothesis)."""

import itertools
import math
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.envelope import CloudEvent
from services.scorer.core import Outcome, apply_event, score_event, sweep
from services.scorer.evaluate import evaluate, score_of
from services.scorer.rules import load_rules, parse_rules
from services.scorer.state import LeadState
from tests.scorer.events import T0, make_event

RULES = load_rules()
EXAMPLES = 60
# A stricter file for caps: a small total cap and negative-heavy rules.
CAPPED = parse_rules(
    """
    name: capped
    half_life: 3d
    total: {cap: 40, floor: -5}
    groups: {email: {cap: 6}, neg: {}}
    fit: [{name: mgr, field: role, points: 10, in: [manager]}]
    engagement:
      - {name: open, group: email, event: email.opened, points: 2}
      - {name: click, group: email, event: email.clicked, points: 4}
      - {name: dl, event: asset.downloaded, points: 15, repeat: once_per_asset}
      - {name: page, event: page.viewed, points: 3, repeat: {at_most: 2, window: 1d}, cap: 5}
      - {name: unsub, group: neg, event: email.unsubscribed, points: -30, decay: false}
    """
)

TITLES = ["代表取締役", "営業部長", "情報システム担当", "Manager", "Engineer", "intern"]
URLS = [
    "https://x.example/pricing",
    "https://x.example/cases/a",
    "https://x.example/cases/b",
    "https://x.example/cases/c",
    "https://x.example/careers",
    "https://x.example/blog/1",
]


@st.composite
def events(draw: st.DrawFn, count: int = 25) -> list[CloudEvent]:
    n = draw(st.integers(min_value=1, max_value=count))
    out: list[CloudEvent] = []
    hours = 0.0
    for i in range(n):
        hours += draw(st.sampled_from([0.0, 0.5, 3.0, 30.0, 24 * 20.0]))
        late = draw(st.sampled_from([0.0, 0.0, 0.0, -12.0]))  # some arrive late
        bot = draw(st.sampled_from([None, None, None, None, "link_scanner"]))
        kind = draw(
            st.sampled_from(["update", "open", "click", "dl", "page", "form", "unsub", "crm"])
        )
        if kind == "update":
            data: dict[str, object] = {
                "attributes": {
                    "job_title": draw(st.sampled_from(TITLES)),
                    "role": draw(st.sampled_from(["manager", "staff", "executive"])),
                    "company_size": draw(st.integers(min_value=1, max_value=5000)),
                }
            }
            short = "lead.updated"
        elif kind in ("open", "click"):
            short = "email.opened" if kind == "open" else "email.clicked"
            data = {"email_id": f"m{i % 3}"} | (
                {"url": draw(st.sampled_from(URLS))} if kind == "click" else {}
            )
        elif kind == "dl":
            short = "asset.downloaded"
            data = {
                "asset_id": f"a{draw(st.integers(0, 3))}",
                "asset_type": draw(st.sampled_from(["whitepaper", "case_study", "ebook"])),
            }
        elif kind == "page":
            short, data = "page.viewed", {"url": draw(st.sampled_from(URLS))}
        elif kind == "form":
            short = "form.submitted"
            data = {
                "form_id": f"f{i % 2}",
                "form_type": draw(st.sampled_from(["contact", "newsletter"])),
            }
        elif kind == "unsub":
            short, data = "email.unsubscribed", {}
        else:
            short = "crm.status_changed"
            data = {
                "status": draw(
                    st.sampled_from(["accepted", "rejected", "won", "lost", "opportunity"])
                )
            }
        out.append(make_event(f"e{i}", short, data, hours=max(0.0, hours + late), bot=bot))
    return out


def replay(evs: list[CloudEvent], rules=RULES) -> LeadState:  # type: ignore[no-untyped-def]
    state = LeadState(lead_id="lead-1")
    for event in evs:
        apply_event(state, event, rules)
    return state


@settings(max_examples=EXAMPLES, deadline=None)
@given(events(), st.data())
def test_a_duplicate_never_changes_anything(evs: list[CloudEvent], data: st.DataObject) -> None:
    """A repeated event id (a client retry) within the dedupe memory, at any later
    position in the log, changes nothing; the memory covers >= 24h of event time."""
    state = replay(evs)
    if state.as_of is None:
        return  # only bot events
    day_ago = state.as_of - 24 * 3600
    for applied in evs:
        if applied.bot is None and applied.time.timestamp() >= day_ago:
            assert applied.id in state.seen
    remembered = [e for e in evs if e.id in state.seen or e.bot is not None]
    again = data.draw(st.sampled_from(remembered))
    result = score_event(state, again, RULES)
    assert result.outputs == []
    assert result.outcome in (Outcome.DUPLICATE, Outcome.BOT)
    assert result.state.to_bytes() == state.to_bytes()


@settings(max_examples=EXAMPLES, deadline=None)
@given(events(), st.integers(min_value=0, max_value=24))
def test_redelivering_a_suffix_of_the_log_changes_nothing(evs: list[CloudEvent], cut: int) -> None:
    """After a crash the log is read again from the last committed position:
    however old those events are, nothing changes and nothing is emitted."""
    once = LeadState(lead_id="lead-1")
    for offset, event in enumerate(evs):
        apply_event(once, event, RULES, position=offset)
    for offset in range(min(cut, len(evs)), len(evs)):
        result = apply_event(once, evs[offset], RULES, position=offset)
        assert result.outcome in (Outcome.DUPLICATE, Outcome.BOT)
        assert result.outputs == []
    fresh = LeadState(lead_id="lead-1")
    for offset, event in enumerate(evs):
        apply_event(fresh, event, RULES, position=offset)
    assert once.to_bytes() == fresh.to_bytes()


@settings(max_examples=EXAMPLES, deadline=None)
@given(events())
def test_caps_and_floor_hold_and_the_breakdown_sums_to_the_score(evs: list[CloudEvent]) -> None:
    for rules in (RULES, CAPPED):
        state = LeadState(lead_id="lead-1")
        for event in evs:
            result = apply_event(state, event, rules)
            score = result.score or evaluate(state, rules)
            assert score_of(state, rules) == (score.score, score.fit)  # the fast path agrees
            assert rules.total.floor is None or score.score >= rules.total.floor
            assert rules.total.cap is None or score.score <= rules.total.cap
            assert math.isclose(math.fsum(i.points for i in score.items), score.score, abs_tol=1e-9)
            assert math.isclose(score.fit + score.engagement, score.score, abs_tol=1e-9)
            for rule in rules.engagement:
                if rule.cap is not None:
                    assert all(i.points <= rule.cap for i in score.items if i.rule == rule.name)
            for group, spec in rules.groups.items():
                if spec.cap is not None:
                    in_group = math.fsum(i.points for i in score.items if i.group == group)
                    assert in_group <= spec.cap + 1e-9
            for output in result.outputs:
                data = output.model().data  # type: ignore[attr-defined]
                if hasattr(data, "breakdown"):
                    assert math.isclose(
                        math.fsum(i.points for i in data.breakdown), data.score, abs_tol=1e-9
                    )


@settings(max_examples=EXAMPLES, deadline=None)
@given(events(), st.lists(st.floats(min_value=0, max_value=24 * 400), min_size=2, max_size=6))
def test_decay_never_increases_a_score(evs: list[CloudEvent], offsets: list[float]) -> None:
    """Without new events, a score only goes down (or stays) as time passes."""
    for rules in (RULES, CAPPED):
        state = replay(evs, rules)
        if state.as_of is None:
            continue  # only bot events: nothing to decay
        scores = [evaluate(state, rules, at=state.as_of + h * 3600).score for h in sorted(offsets)]
        assert all(later <= earlier for earlier, later in itertools.pairwise(scores))


@settings(max_examples=EXAMPLES, deadline=None)
@given(events(), st.sampled_from(TITLES), st.sampled_from(TITLES))
def test_fit_depends_only_on_current_attributes(
    evs: list[CloudEvent], original: str, other: str
) -> None:
    state = replay(evs)
    last = state.as_of or T0.timestamp()
    title_now = make_event("t0", "lead.updated", {"attributes": {"job_title": original}})
    apply_event(
        state,
        title_now.model_copy(update={"time": T0 + timedelta(seconds=last - T0.timestamp())}),
        RULES,
    )
    before = evaluate(state, RULES).fit
    for i, title in enumerate((other, original)):
        event = make_event(f"t{i + 1}", "lead.updated", {"attributes": {"job_title": title}})
        event = event.model_copy(update={"time": T0 + timedelta(seconds=last - T0.timestamp())})
        apply_event(state, event, RULES)
    assert evaluate(state, RULES).fit == before


@settings(max_examples=EXAMPLES, deadline=None)
@given(events(), st.data())
def test_bot_flagged_events_never_score_or_trigger(
    evs: list[CloudEvent], data: st.DataObject
) -> None:
    humans = [e for e in evs if e.bot is None]
    with_bots = replay(evs)
    without = replay(humans)
    assert with_bots.to_bytes() == without.to_bytes()
    extra = data.draw(st.sampled_from(evs)).model_copy(
        update={"id": "bot-extra", "bot": "apple_mpp"}
    )
    result = score_event(without, extra, RULES)
    assert result.outcome is Outcome.BOT
    assert result.outputs == []
    assert result.state.to_bytes() == without.to_bytes()


@settings(max_examples=50, deadline=None)
@given(events())
def test_sweep_never_changes_the_score_components(evs: list[CloudEvent]) -> None:
    state = replay(evs)
    before = evaluate(state, RULES)
    if state.as_of is None:
        return
    swept = sweep(state.copy(), T0 + timedelta(days=900), RULES).state
    after = evaluate(swept, RULES)
    assert (after.score, after.fit) == (before.score, before.fit)
