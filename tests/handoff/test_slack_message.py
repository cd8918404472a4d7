import re

from hypothesis import given
from hypothesis import strategies as st

from schemas.data import BreakdownItem
from services.handoff.slack_message import (
    build_alert,
    build_escalation,
    build_reminder,
    escape,
    lead_summary,
    link,
    points,
    safe_url,
    top_behaviours,
)
from tests.handoff.samples import handoff_data

CONTROL = re.compile(r"<[^>]*>")


def all_text(blocks: list[dict], kinds: tuple[str, ...] = ("mrkdwn",)) -> str:
    """The text Slack parses for mentions and links: mrkdwn (plain_text is shown as is)."""
    parts: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") in kinds:
                parts.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(blocks)
    return "\n".join(parts)


def test_alert_carries_lead_company_title_score_reason_behaviours_link_and_mention() -> None:
    message = build_alert(
        handoff_data(),
        rep_slack_id="U0AIKO",
        crm_url="https://example.my.salesforce.com/00Q5g00000XYZ",
        crm_name="Salesforce",
    )
    text = all_text(message.blocks)
    for expected in ("Yamada Taro", "Example KK", "営業部長", "72", "high", "score 72 &gt;= 70"):
        assert expected in text
    assert "<@U0AIKO>" in text
    assert "<https://example.my.salesforce.com/00Q5g00000XYZ|Open in Salesforce>" in text
    # top behaviours: engagement only, biggest first
    assert text.index("whitepaper") < text.index("pricing_page") < text.index("webinar")
    assert "role_manager" not in text
    assert message.handoff_id == "ho-lead-1-1"


def test_outside_text_cannot_ping_or_forge_links() -> None:
    hostile = handoff_data(
        first_name="<!channel>",
        last_name="<@U0BOSS>",
        company="<https://evil.example|Salesforce>",
        job_title="<!here> & <!subteam^S123>",
    )
    message = build_alert(hostile, rep_slack_id="U0AIKO", crm_url="javascript:alert(1)")
    text = all_text(message.blocks) + message.text
    controls = set(CONTROL.findall(text))
    assert controls == {"<@U0AIKO>"}  # the only control sequence is the one we made
    assert "&lt;!channel&gt;" in text
    assert "javascript" not in text
    header = message.blocks[0]
    assert header["type"] == "header"
    assert header["text"]["type"] == "plain_text"


def test_links_cannot_break_out() -> None:
    assert safe_url("https://x.example/a|b>c") == "https://x.example/a%7Cb%3Ec"
    assert safe_url("ftp://x.example") is None
    assert link("https://x.example/", "a|<b>") == "<https://x.example/|a¦&lt;b&gt;>"
    assert link(None, "<!channel>") == "&lt;!channel&gt;"


def test_a_bad_rep_id_is_not_mentioned() -> None:
    text = all_text(build_alert(handoff_data(), rep_slack_id="<!channel>", crm_url=None).blocks)
    assert "<!channel>" not in text
    assert "unassigned" in text


def test_reminder_and_escalation() -> None:
    reminder = build_reminder("ho-1", "U0AIKO", "4h")
    assert reminder.text.startswith("<@U0AIKO>")
    assert "4h" in reminder.text
    summary = lead_summary(handoff_data(company="<!channel>"))
    escalation = build_escalation("ho-1", summary, "U0AIKO", "8h", "https://slack.example/p1")
    assert "&lt;!channel&gt;" in escalation.text
    assert "<https://slack.example/p1|Alert>" in escalation.text


@given(st.text())
def test_escaped_text_has_no_control_characters(text: str) -> None:
    escaped = escape(text)
    assert "<" not in escaped
    assert ">" not in escaped
    assert escaped.replace("&amp;", "").count("&") == escaped.count("&lt;") + escaped.count("&gt;")


def test_the_console_shows_the_alert_as_plain_lines() -> None:
    from services.handoff.notify import blocks_as_text

    message = build_alert(
        handoff_data(job_title="<!channel> CEO & founder"),
        rep_slack_id="U0REPA",
        crm_url="https://crm.example/lead/1",
        crm_name="Salesforce",
    )
    lines = blocks_as_text(message.blocks)
    assert lines[0].startswith("Hot lead: ")
    assert any("Title: <!channel> CEO & founder" in line for line in lines)
    assert any("Open in Salesforce (https://crm.example/lead/1)" in line for line in lines)
    assert not any("&lt;" in line or "*" in line for line in lines)


def test_scores_are_shown_with_one_decimal_at_most() -> None:
    assert points(75.0) == "75"
    assert points(56.3865) == "56.4"
    assert points(2.25) == "2.2"


def test_top_behaviours_leave_out_attributes_and_limits_by_part() -> None:
    def item(rule: str, part: str, points: float) -> BreakdownItem:
        return BreakdownItem.model_validate(
            {"rule": rule, "group": "g", "part": part, "points": points, "events": []}
        )

    breakdown = [
        item("title_executive", "fit", 30),
        item("download", "engagement", 10),
        item("pricing_page", "engagement", 12),
        item("cap:total", "limit", -2),
    ]
    data = handoff_data().model_copy(update={"breakdown": breakdown})
    assert top_behaviours(data) == [("pricing_page", 12), ("download", 10)]
