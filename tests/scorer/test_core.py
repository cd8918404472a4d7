"""The scoring core on the default rules: the article's model, event by event."""

import math
from datetime import timedelta

from schemas.data import HandoffRequestedData, SegmentChangedData
from schemas.envelope import CloudEvent
from schemas.event_types import EventType
from services.scorer.core import Outcome, Result, score_event, sweep
from services.scorer.evaluate import evaluate, fit_items
from services.scorer.rules import Rules, load_rules, parse_rules
from services.scorer.state import HandoffStatus, LeadState
from tests.scorer.events import T0, make_event

RULES = load_rules()


def run(
    events: list[CloudEvent], rules: Rules = RULES, state: LeadState | None = None
) -> list[Result]:
    results = []
    for event in events:
        result = score_event(state, event, rules)
        state = result.state
        results.append(result)
    return results


def manager_in_software(event_id: str = "u1", hours: float = 0) -> CloudEvent:
    return make_event(
        event_id,
        "lead.updated",
        {"attributes": {"job_title": "営業部長", "industry": "software", "company_size": 300}},
        hours=hours,
    )


def handoffs(results: list[Result]) -> list[HandoffRequestedData]:
    return [
        o.model().data  # type: ignore[attr-defined]
        for r in results
        for o in r.outputs
        if o.type == EventType.HANDOFF_REQUESTED
    ]


def test_fit_from_japanese_titles() -> None:
    for title, points in (
        ("代表取締役社長", 30),
        ("営業部長", 20),
        ("マーケティング担当", 5),
        ("", 0),
    ):
        event = make_event("u", "lead.updated", {"attributes": {"job_title": title or "x"}})
        assert score_event(None, event, RULES).score.fit == points, title  # type: ignore[union-attr]


def test_segments_and_one_handoff_at_the_threshold() -> None:
    events = [
        manager_in_software(),  # 20 + 15 + 10 = 45: low
        make_event("f1", "form.submitted", {"form_id": "news", "form_type": "newsletter"}, hours=1),
        make_event(
            "d1", "asset.downloaded", {"asset_id": "wp-1", "asset_type": "whitepaper"}, hours=2
        ),
        make_event(
            "d2", "asset.downloaded", {"asset_id": "wp-2", "asset_type": "whitepaper"}, hours=3
        ),
    ]
    results = run(events)
    segments = [
        o.model().data.segment.value  # type: ignore[attr-defined]
        for r in results
        for o in r.outputs
        if o.type == EventType.SEGMENT_CHANGED
    ]
    assert segments == ["low", "mid", "high"]
    [handoff] = handoffs(results)
    assert handoff.handoff_id == "ho-lead-1-1"
    assert handoff.reason.kind == "threshold"
    assert handoff.trigger_event_id == "d2"
    assert handoff.rules_version == RULES.version
    assert handoff.lead.job_title == "営業部長"
    assert math.isclose(math.fsum(i.points for i in handoff.breakdown), handoff.score)
    assert {i.rule for i in handoff.breakdown} >= {"title_manager", "form_other", "download"}
    assert results[-1].state.handoff_status is HandoffStatus.HANDED_OFF


def test_pricing_page_hands_off_at_50_but_not_below() -> None:
    low = run([make_event("p1", "page.viewed", {"url": "https://x.example/pricing"})])
    assert handoffs(low) == []
    results = run(
        [
            manager_in_software(),
            make_event("p1", "page.viewed", {"url": "https://x.example/pricing"}, hours=1),
        ]
    )
    [handoff] = handoffs(results)
    assert handoff.reason.name == "pricing_page"
    assert 50 <= handoff.score < 70


def test_three_distinct_case_studies_within_14_days() -> None:
    def case(event_id: str, slug: str, days: float) -> CloudEvent:
        return make_event(
            event_id, "page.viewed", {"url": f"https://x.example/cases/{slug}"}, hours=24 * days
        )

    spread = run([case("c1", "a", 0), case("c2", "b", 10), case("c3", "c", 20)])
    assert handoffs(spread) == []
    same = run([case("c1", "a", 0), case("c2", "a", 1), case("c3", "b", 2)])
    assert handoffs(same) == []
    [handoff] = handoffs(run([case("c1", "a", 0), case("c2", "b", 5), case("c3", "c", 13)]))
    assert handoff.reason.name == "case_studies"


def test_hysteresis_rearm_below_level_and_cooldown() -> None:
    base = [
        manager_in_software(),
        make_event(
            "f1", "form.submitted", {"form_id": "demo", "form_type": "demo_request"}, hours=1
        ),
    ]
    # 70 -> handed off; more points while handed off: no second hand-off
    results = run([*base, make_event("k1", "email.clicked", {"url": "https://x/1"}, hours=2)])
    assert len(handoffs(results)) == 1
    state = results[-1].state
    # 90 days later the engagement has decayed below 50: re-armed; qualifying again hands off #2
    later = 24 * 90
    again = run(
        [
            make_event(
                "f2", "form.submitted", {"form_id": "demo2", "form_type": "contact"}, hours=later
            ),
            make_event(
                "d9",
                "asset.downloaded",
                {"asset_id": "wp-9", "asset_type": "ebook"},
                hours=later + 1,
            ),
        ],
        state=state,
    )
    assert [h.handoff_id for h in handoffs(again)] == ["ho-lead-1-2"]


def test_cooldown_blocks_a_quick_second_handoff_after_recycle() -> None:
    results = run(
        [
            manager_in_software(),
            make_event(
                "f1", "form.submitted", {"form_id": "demo", "form_type": "demo_request"}, hours=1
            ),
            make_event("r1", "crm.status_changed", {"status": "lost"}, hours=2),
            make_event("f2", "form.submitted", {"form_id": "c2", "form_type": "contact"}, hours=3),
        ]
    )
    assert len(handoffs(results)) == 1  # re-armed by the CRM, but inside the 7-day cooldown
    state = results[-1].state
    assert state.handoff_status is HandoffStatus.ARMED
    more = run(
        [
            make_event(
                "f3", "form.submitted", {"form_id": "c3", "form_type": "contact"}, hours=24 * 8
            )
        ],
        state=state,
    )
    assert [h.sequence for h in handoffs(more)] == [2]


def test_crm_feedback_hold_close_and_recycle_with_reset() -> None:
    results = run(
        [
            manager_in_software(),
            make_event(
                "f1", "form.submitted", {"form_id": "demo", "form_type": "demo_request"}, hours=1
            ),
            make_event("a1", "crm.status_changed", {"status": "accepted"}, hours=2),
        ]
    )
    assert results[-1].state.handoff_status is HandoffStatus.HELD
    rejected = run(
        [make_event("x1", "crm.status_changed", {"status": "rejected"}, hours=3)],
        state=results[-1].state,
    )
    assert rejected[-1].state.handoff_status is HandoffStatus.ARMED
    assert rejected[-1].score.engagement == 0  # type: ignore[union-attr]
    assert rejected[-1].score.fit == 45  # type: ignore[union-attr]
    won = run(
        [make_event("w1", "crm.status_changed", {"status": "won"}, hours=4)],
        state=rejected[-1].state,
    )
    assert won[-1].state.handoff_status is HandoffStatus.CLOSED


def test_unsubscribe_is_negative_and_the_floor_holds() -> None:
    [result] = run([make_event("u1", "email.unsubscribed", {"campaign_id": "c"})])
    assert result.score is not None
    assert result.score.score == 0
    assert {i.rule: i.points for i in result.score.items}["unsubscribe"] == -20


def test_repeat_policies() -> None:
    opens = [make_event(f"o{i}", "email.opened", {"email_id": f"m{i}"}, hours=i) for i in range(30)]
    results = run(opens)
    # at most 1 open per day: hours 0..29 span two days
    assert results[-1].state.rules["email_open"].count == 2
    downloads = [
        make_event(
            f"d{i}", "asset.downloaded", {"asset_id": "wp-1", "asset_type": "whitepaper"}, hours=i
        )
        for i in range(3)
    ]
    assert run(downloads)[-1].state.rules["download"].count == 1
    careers = [
        make_event(f"j{i}", "page.viewed", {"url": f"https://x/careers/{i}"}, hours=i)
        for i in range(3)
    ]
    assert run(careers)[-1].state.rules["careers_page"].count == 1


def test_group_cap() -> None:
    clicks = [make_event(f"k{i}", "email.clicked", {"url": f"https://x/{i}"}) for i in range(20)]
    score = run(clicks)[-1].score
    assert score is not None
    assert score.score == 15  # email group capped at 15


def test_decay_halves_engagement_after_the_half_life_and_fit_stays() -> None:
    rules = parse_rules(
        """
        name: decay
        half_life: 10d
        fit: [{name: mgr, field: role, points: 20, equals: manager}]
        engagement: [{name: dl, event: asset.downloaded, points: 40}]
        """
    )
    first = run(
        [
            make_event("u", "lead.updated", {"attributes": {"role": "manager"}}),
            make_event("d", "asset.downloaded", {"asset_id": "a"}),
            make_event("v", "page.viewed", {"url": "https://x/"}, hours=240),
        ],
        rules,
    )
    score = first[-1].score
    assert score is not None
    assert (score.fit, score.engagement) == (20, 20)


def test_bot_and_duplicate_events_change_nothing() -> None:
    [first] = run([manager_in_software()])
    bot = score_event(
        first.state,
        make_event("b1", "email.clicked", {"url": "https://x"}, bot="link_scanner"),
        RULES,
    )
    assert bot.outcome is Outcome.BOT
    assert bot.outputs == []
    assert bot.state.to_bytes() == first.state.to_bytes()
    dup = score_event(first.state, manager_in_software(), RULES)
    assert dup.outcome is Outcome.DUPLICATE
    assert dup.state.to_bytes() == first.state.to_bytes()


def test_sweep_emits_the_segment_change_of_a_cooling_lead() -> None:
    results = run(
        [
            manager_in_software(),
            make_event(
                "f1", "form.submitted", {"form_id": "demo", "form_type": "demo_request"}, hours=1
            ),
            make_event(
                "d1", "asset.downloaded", {"asset_id": "wp", "asset_type": "ebook"}, hours=1
            ),
        ]
    )
    state = results[-1].state
    assert state.segment == "high"
    quiet = sweep(state, T0 + timedelta(days=2), RULES)
    assert quiet.outputs == []
    cooled = sweep(state, T0 + timedelta(days=60), RULES)
    [change] = cooled.outputs
    assert isinstance(change.model().data, SegmentChangedData)  # type: ignore[attr-defined]
    assert change.model().data.previous == "high"  # type: ignore[attr-defined]
    assert change.model().data.cause_event_id is None  # type: ignore[attr-defined]
    assert cooled.state.segment == change.model().data.segment.value  # type: ignore[attr-defined]
    assert sweep(cooled.state, T0 + timedelta(days=61), RULES).outputs == []


def test_state_round_trips_exactly() -> None:
    state = run(
        [manager_in_software(), make_event("k", "email.clicked", {"url": "https://x/"}, hours=5)]
    )[-1].state
    assert LeadState.from_bytes(state.to_bytes()) == state
    assert len(state.history) == 2
    assert state.history[-1][1] == "k"


def test_breakdown_items_say_which_part_of_the_score_they_are() -> None:
    rules = load_rules(None)
    state = LeadState(lead_id="lead-part", attributes={"job_title": "取締役", "company_size": 5000})
    parts = {item.rule: item.part for item in fit_items(state, rules)}
    assert parts == {"title_executive": "fit", "size_enterprise": "fit"}
    assert all(item.to_model().part == item.part for item in evaluate(state, rules).items)
