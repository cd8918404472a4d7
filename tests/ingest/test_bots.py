import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ingest.bots import (
    BotReason,
    ClickBurstDetector,
    RequestFacts,
    classify_click,
    classify_open,
)

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
OUTLOOK = "Microsoft Outlook 16.0.17928; Microsoft Outlook 16.0.17928; ms-office; MSOffice 16"
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        (RequestFacts(user_agent=CHROME), None),
        (RequestFacts(user_agent=OUTLOOK), None),
        (RequestFacts(user_agent=GMAIL_PROXY, client_ip="66.249.84.1"), None),
        (RequestFacts(user_agent="YahooMailProxy; https://help.yahoo.com/"), None),
        (RequestFacts(user_agent="Mozilla/5.0"), BotReason.APPLE_MPP),
        (RequestFacts(user_agent=CHROME, client_ip="17.58.100.3"), BotReason.APPLE_MPP),
        (RequestFacts(user_agent=CHROME, client_ip="not-an-ip"), None),
        (RequestFacts(method="HEAD", user_agent=CHROME), BotReason.HEAD_REQUEST),
        (
            RequestFacts(user_agent=CHROME, headers={"sec-purpose": "prefetch;prerender"}),
            BotReason.PREFETCH,
        ),
        (RequestFacts(user_agent=CHROME, headers={"x-moz": "prefetch"}), BotReason.PREFETCH),
        (RequestFacts(user_agent="curl/8.5.0"), BotReason.LINK_SCANNER),
        (RequestFacts(user_agent=None), BotReason.LINK_SCANNER),
        (RequestFacts(user_agent="  "), BotReason.LINK_SCANNER),
    ],
)
def test_classify_open(facts: RequestFacts, reason: BotReason | None) -> None:
    assert classify_open(facts) == reason


@pytest.mark.parametrize(
    ("facts", "in_burst", "reason"),
    [
        (RequestFacts(user_agent=CHROME), False, None),
        (RequestFacts(user_agent=CHROME), True, BotReason.CLICK_BURST),
        (RequestFacts(method="HEAD", user_agent=CHROME), False, BotReason.HEAD_REQUEST),
        (
            RequestFacts(user_agent="Mozilla/5.0 (compatible; Barracuda Sentinel)"),
            False,
            BotReason.LINK_SCANNER,
        ),
        (RequestFacts(user_agent="Proofpoint URL Defense"), False, BotReason.LINK_SCANNER),
        (RequestFacts(user_agent="python-requests/2.32"), False, BotReason.LINK_SCANNER),
        (
            RequestFacts(user_agent="Mozilla/5.0 (compatible; bingbot/2.0)"),
            False,
            BotReason.LINK_SCANNER,
        ),
        (
            RequestFacts(user_agent=CHROME, headers={"purpose": "prefetch"}),
            False,
            BotReason.PREFETCH,
        ),
        # Apple's proxy only fetches images; a click from 17/8 is a person on Apple's network.
        (RequestFacts(user_agent=CHROME, client_ip="17.1.1.1"), False, None),
    ],
)
def test_classify_click(facts: RequestFacts, in_burst: bool, reason: BotReason | None) -> None:
    assert classify_click(facts, in_burst=in_burst) == reason


def test_all_links_of_one_email_within_a_second_is_a_burst() -> None:
    detector = ClickBurstDetector()
    assert not detector.observe("lead-1", "em-1", "https://a.example/1", now_s=100.0)
    assert detector.observe("lead-1", "em-1", "https://a.example/2", now_s=100.3)
    assert detector.observe("lead-1", "em-1", "https://a.example/3", now_s=100.6)
    # another email of the same lead is its own story
    assert not detector.observe("lead-1", "em-2", "https://a.example/1", now_s=100.6)


def test_a_person_clicking_links_seconds_apart_is_no_burst() -> None:
    detector = ClickBurstDetector()
    assert not detector.observe("lead-1", "em-1", "https://a.example/1", now_s=10.0)
    assert not detector.observe("lead-1", "em-1", "https://a.example/2", now_s=14.0)
    assert not detector.observe("lead-1", "em-1", "https://a.example/2", now_s=14.2)  # same link


@given(st.lists(st.tuples(st.text(max_size=3), st.text(max_size=3)), max_size=300))
def test_detector_memory_is_bounded(pairs: list[tuple[str, str]]) -> None:
    detector = ClickBurstDetector(max_emails=10)
    for index, (lead, email) in enumerate(pairs):
        detector.observe(lead, email, "https://x.example/", now_s=float(index))
    assert len(detector._recent) <= 10
