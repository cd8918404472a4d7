"""A fixed, seeded corpus of lead events for the crash test and the benchmarks:
attribute updates, email, downloads, page views (pricing, case studies),
forms, CRM feedback, bot-flagged events and repeated event ids."""

import random
from datetime import UTC, datetime, timedelta

from schemas.envelope import CloudEvent
from schemas.event_types import EventType
from schemas.events import event_model

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
TITLES = [
    "代表取締役",
    "営業部長",
    "情報システム部 課長",
    "マーケティング担当",
    "CTO",
    "Engineer",
    "Intern",
]
INDUSTRIES = ["software", "manufacturing", "retail", "製造業", "finance"]


def _event(
    event_id: str,
    lead: str,
    short: str,
    when: datetime,
    data: dict[str, object],
    bot: str | None = None,
) -> CloudEvent:
    event_type = EventType.from_name(short)
    return event_model(event_type).model_validate(
        {
            "id": event_id,
            "source": "/corpus",
            "type": event_type.value,
            "subject": lead,
            "time": when,
            "data": data,
            "bot": bot,
        }
    )


def build_corpus(
    leads: int, events_per_lead: int, seed: int = 7, duplicate_rate: float = 0.03
) -> list[CloudEvent]:
    """`leads * events_per_lead` events (plus repeats), interleaved across leads."""
    rng = random.Random(seed)
    per_lead: list[list[CloudEvent]] = []
    for n in range(leads):
        lead = f"lead-{n:06d}"
        when = START + timedelta(minutes=rng.randrange(0, 60 * 24 * 30))
        events: list[CloudEvent] = [
            _event(
                f"{lead}-0",
                lead,
                "lead.updated",
                when,
                {
                    "attributes": {
                        "job_title": rng.choice(TITLES),
                        "industry": rng.choice(INDUSTRIES),
                        "company_size": rng.choice([5, 40, 250, 800, 3000]),
                    }
                },
            ),
        ]
        for i in range(1, events_per_lead):
            when += timedelta(minutes=rng.choice([1, 5, 30, 240, 1440, 1440 * 10]))
            roll = rng.random()
            event_id = f"{lead}-{i}"
            bot = "link_scanner" if rng.random() < 0.03 else None
            if roll < 0.25:
                ev = _event(
                    event_id, lead, "email.opened", when, {"email_id": f"m{rng.randrange(20)}"}, bot
                )
            elif roll < 0.40:
                ev = _event(
                    event_id,
                    lead,
                    "email.clicked",
                    when,
                    {"url": f"https://x.example/p/{rng.randrange(9)}"},
                    bot,
                )
            elif roll < 0.55:
                page = rng.choice(
                    ["/", "/blog/1", "/pricing", "/cases/a", "/cases/b", "/cases/c", "/careers"]
                )
                ev = _event(
                    event_id, lead, "page.viewed", when, {"url": f"https://x.example{page}"}, bot
                )
            elif roll < 0.70:
                kind = rng.choice(["whitepaper", "case_study", "ebook"])
                ev = _event(
                    event_id,
                    lead,
                    "asset.downloaded",
                    when,
                    {"asset_id": f"{kind}-{rng.randrange(4)}", "asset_type": kind},
                    bot,
                )
            elif roll < 0.78:
                form = rng.choice(["contact", "newsletter", "demo_request"])
                ev = _event(
                    event_id,
                    lead,
                    "form.submitted",
                    when,
                    {"form_id": form, "form_type": form},
                    bot,
                )
            elif roll < 0.84:
                ev = _event(
                    event_id,
                    lead,
                    "lead.updated",
                    when,
                    {"attributes": {"job_title": rng.choice(TITLES)}},
                )
            elif roll < 0.88:
                status = rng.choice(["accepted", "rejected", "lost", "won", "opportunity"])
                ev = _event(event_id, lead, "crm.status_changed", when, {"status": status})
            elif roll < 0.90:
                ev = _event(event_id, lead, "email.unsubscribed", when, {})
            else:
                ev = _event(
                    event_id, lead, "page.viewed", when, {"url": "https://x.example/pricing"}, bot
                )
            events.append(ev)
            if rng.random() < duplicate_rate:  # a client retry: same id, later in the log
                events.append(ev)
        per_lead.append(events)
    # interleave: round-robin over leads keeps each lead's order
    out: list[CloudEvent] = []
    cursors = [0] * leads
    remaining = list(range(leads))
    while remaining:
        nxt = []
        for n in remaining:
            events = per_lead[n]
            out.append(events[cursors[n]])
            cursors[n] += 1
            if cursors[n] < len(events):
                nxt.append(n)
        remaining = nxt
    return out
