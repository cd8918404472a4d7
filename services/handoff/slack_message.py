"""Slack Block Kit messages for a hand-off (pure).

Everything that came from outside hotlead (names, company, job title, URLs,
reasons) is escaped before it reaches mrkdwn: `&`, `<` and `>` become
entities, so `<!channel>`, `<@U123>` or `<https://evil|click>` in a lead's
name print as text and never ping or link. Links hotlead builds itself use
only http(s) URLs with `|` and `>` percent-encoded. Mentions come from the
assignment file (validated Slack user ids), never from lead data.
"""

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from schemas.data import BreakdownItem, HandoffRequestedData

Block = dict[str, Any]
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,30}$")
_MAX_TEXT = 2900  # a section's text may hold 3000 characters


@dataclass(frozen=True, slots=True)
class SlackMessage:
    text: str
    """Fallback text (notifications, screen readers); escaped like the blocks."""
    blocks: list[Block]
    handoff_id: str


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: the only three characters with control meaning."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def safe_url(url: str | None) -> str | None:
    """An http(s) URL that cannot break out of `<url|label>`; None for anything else."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return quote(url.strip(), safe=":/?#[]@!$&'()*+,;=%~-._")


def link(url: str | None, label: str) -> str:
    """`<url|label>` when the URL is safe, else the escaped label alone."""
    target = safe_url(url)
    text = escape(label).replace("|", "¦")
    return f"<{escape(target)}|{text}>" if target else text


def mention(slack_id: str | None) -> str | None:
    return f"<@{slack_id}>" if slack_id and _SLACK_USER.match(slack_id) else None


def _clip(text: str, limit: int = _MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _lead_name(handoff: HandoffRequestedData) -> str:
    lead = handoff.lead
    name = " ".join(part for part in (lead.last_name, lead.first_name) if part)
    return name or lead.email or handoff.lead_id


def points(value: float) -> str:
    """A score or points as people read them: one decimal at most (75, 56.4, +2.5)."""
    return f"{round(value, 1):g}"


def _is_behaviour(item: BreakdownItem) -> bool:
    if item.part is not None:
        return item.part == "engagement" and item.points > 0
    return (item.group or "") != "fit" and not item.rule.startswith("cap:")


def top_behaviours(handoff: HandoffRequestedData, limit: int = 3) -> list[tuple[str, float]]:
    """The behaviours that earned most, biggest first (attributes and limits left out)."""
    items = [item for item in handoff.breakdown if _is_behaviour(item)]
    items.sort(key=lambda item: -item.points)
    return [(item.rule, item.points) for item in items[:limit]]


def build_alert(
    handoff: HandoffRequestedData,
    *,
    rep_slack_id: str | None,
    crm_url: str | None,
    crm_name: str | None = None,
) -> SlackMessage:
    lead = handoff.lead
    who = escape(_lead_name(handoff))
    company = escape(lead.company or "(company unknown)")
    title = escape(lead.job_title or "-")
    owner = mention(rep_slack_id) or "_unassigned: team, please pick it up_"
    behaviours = top_behaviours(handoff)
    behaviour_lines = (
        "\n".join(f"• {escape(rule)} (+{points(earned)})" for rule, earned in behaviours) or "• -"
    )
    record = link(crm_url, f"Open in {crm_name or 'CRM'}") if crm_url else "_no CRM record_"
    blocks: list[Block] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _clip(f"Hot lead: {_lead_name(handoff)}", 150)},
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": _clip(f"*Lead*\n{who}")},
                {"type": "mrkdwn", "text": _clip(f"*Company*\n{company}")},
                {"type": "mrkdwn", "text": _clip(f"*Title*\n{title}")},
                {
                    "type": "mrkdwn",
                    "text": f"*Score*\n{points(handoff.score)} ({escape(handoff.segment.value)})",
                },
            ],
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _clip(
                    f"*Why now*\n{escape(handoff.reason.detail)}\n"
                    f"*Top behaviours*\n{behaviour_lines}"
                ),
            },
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Owner* {owner}   {record}"}},
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": escape(
                        f"hand-off {handoff.handoff_id} · rules {handoff.rules_version}"
                    ),
                }
            ],
        },
    ]
    text = _clip(
        f"Hot lead {who} ({company}), score {points(handoff.score)}: "
        f"{escape(handoff.reason.detail)}"
    )
    return SlackMessage(text=text, blocks=blocks, handoff_id=handoff.handoff_id)


def build_reminder(handoff_id: str, rep_slack_id: str | None, waited: str) -> SlackMessage:
    who = mention(rep_slack_id) or "Team"
    text = (
        f"{who}: no CRM status for this lead after {escape(waited)}. Accept or reject it, please."
    )
    return SlackMessage(
        text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}], handoff_id
    )


def lead_summary(handoff: HandoffRequestedData) -> str:
    """`name (company)`, unescaped: kept in the progress record for later follow-ups."""
    return f"{_lead_name(handoff)} ({handoff.lead.company or '-'})"


def build_escalation(
    handoff_id: str, summary: str, rep_slack_id: str | None, waited: str, permalink: str | None
) -> SlackMessage:
    owner = mention(rep_slack_id) or "nobody"
    where = f" {link(permalink, 'Alert')}" if permalink else ""
    text = (
        f"Escalation: hot lead {escape(summary)} "
        f"assigned to {owner} has no CRM status after {escape(waited)}.{where}"
    )
    block = {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text)}}
    return SlackMessage(text, [block], handoff_id)
