"""The people the demo simulates, as scripts of steps (pure: no I/O, no clock).

Each cycle brings a new set of people (lead ids carry the run and the cycle),
so a long-running or restarted demo keeps producing fresh hand-offs:

- an executive who reads the newsletter, clicks through and views the
  pricing page: qualifies at once (pricing page with a score of 50 or more);
- a researcher who has been downloading whitepapers and case studies for
  weeks: qualifies on the third distinct case study within 14 days;
- a competitor who studies the pricing and the careers pages: never
  qualifies (a competitor domain costs 50 points);
- a corporate mail gateway whose link scanner fetches every link of an
  email within a second, and Apple Mail Privacy Protection opening it: all
  flagged as bots, never scored;
- an unsubscriber who opens, clicks, then unsubscribes;
- anonymous visitors browsing the site (no lead id, only a browser id).
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

BROWSER_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0 Safari/537.36"
)
SCANNER_UA = "Mozilla/5.0 (compatible; Barracuda Sentinel (EE))"
APPLE_MPP_UA = "Mozilla/5.0"
SITE = "https://www.example.com"


class StepKind(StrEnum):
    LEAD = "lead"  # PUT /v1/leads/{lead_id}
    OPEN = "open"  # GET the signed open pixel
    CLICK = "click"  # GET the signed click redirect
    BEACON = "beacon"  # POST /b, as hotlead.js does
    EVENT = "event"  # POST /v1/events, as a backend system does


@dataclass(frozen=True, slots=True)
class Step:
    persona: str
    kind: StepKind
    lead_id: str | None
    body: dict[str, Any] = field(default_factory=dict)
    """Lead attributes, a /v1/events item or a beacon document."""
    target: str | None = None
    """The click's target URL."""
    email_id: str | None = None
    campaign_id: str | None = None
    user_agent: str = BROWSER_UA
    head: bool = False
    together: bool = False
    """Sent right after this persona's previous step, without the feed's pause
    (a link scanner fetches every link of an email within a second)."""


def _email(persona: str, lead: str, kind: StepKind, email: str, **extra: Any) -> Step:
    return Step(persona, kind, lead, email_id=email, campaign_id="demo-nurture", **extra)


def _event(
    persona: str, lead: str, type_: str, data: dict[str, Any], at: datetime, eid: str
) -> Step:
    body = {"id": eid, "type": type_, "lead_id": lead, "time": at.isoformat(), "data": data}
    return Step(persona, StepKind.EVENT, lead, body=body)


def executive(batch: str, now: datetime) -> list[Step]:
    lead, who = f"demo-{batch}-exec", "executive"
    email = f"nl-{batch}"
    return [
        Step(
            who,
            StepKind.LEAD,
            lead,
            body={
                "first_name": "Haruka",
                "last_name": "Sato",
                "company": "Sato Manufacturing",
                "company_domain": "sato-mfg.example",
                "job_title": "取締役 営業本部長",
                "industry": "manufacturing",
                "company_size": 1200,
                "country": "JP",
            },
        ),
        _email(who, lead, StepKind.OPEN, email),
        _email(who, lead, StepKind.CLICK, email, target=f"{SITE}/blog/ma-nurturing?utm_source=nl"),
        Step(
            who,
            StepKind.BEACON,
            lead,
            body={
                "url": f"{SITE}/pricing",
                "title": "料金プラン",
                "referrer": f"{SITE}/blog/ma-nurturing",
                "anonymous_id": f"anon-exec-{batch}",
                "lead_id": lead,
            },
        ),
    ]


def researcher(batch: str, now: datetime) -> list[Step]:
    lead, who = f"demo-{batch}-research", "researcher"
    steps = [
        Step(
            who,
            StepKind.LEAD,
            lead,
            body={
                "first_name": "Ken",
                "last_name": "Suzuki",
                "company": "Suzuki Devices",
                "company_domain": "suzuki-devices.example",
                "job_title": "技術企画 担当",
                "industry": "manufacturing",
                "company_size": 300,
                "country": "JP",
            },
        ),
    ]
    downloads = [
        (21, "whitepaper", "wp-scoring", "/resources/lead-scoring.pdf"),
        (16, "whitepaper", "wp-nurturing", "/resources/nurturing.pdf"),
        (10, "case_study", "case-acme", "/cases/acme"),
        (6, "case_study", "case-globex", "/cases/globex"),
        (0, "case_study", "case-initech", "/cases/initech"),
    ]
    for days_ago, kind, asset, path in downloads:
        data = {"asset_id": asset, "asset_type": kind, "url": SITE + path}
        at = now - timedelta(days=days_ago)
        steps.append(_event(who, lead, "asset.downloaded", data, at, f"demo-{batch}-dl-{asset}"))
    return steps


def competitor(batch: str, now: datetime) -> list[Step]:
    lead, who = f"demo-{batch}-rival", "competitor"
    return [
        Step(
            who,
            StepKind.LEAD,
            lead,
            body={
                "company": "Rival Inc.",
                "company_domain": "rival.example",
                "job_title": "Director of Marketing",
                "industry": "software",
                "company_size": 800,
            },
        ),
        Step(
            who,
            StepKind.BEACON,
            lead,
            body={
                "url": f"{SITE}/pricing",
                "title": "料金プラン",
                "anonymous_id": f"anon-rival-{batch}",
                "lead_id": lead,
            },
        ),
        Step(
            who,
            StepKind.BEACON,
            lead,
            body={
                "url": f"{SITE}/careers",
                "title": "採用情報",
                "anonymous_id": f"anon-rival-{batch}",
                "lead_id": lead,
            },
        ),
    ]


def scanned_corporate(batch: str, now: datetime) -> list[Step]:
    lead, who = f"demo-{batch}-gateway", "scanner"
    email = f"nl-{batch}"
    links = ["/pricing", "/cases/acme", "/resources/nurturing.pdf", "/contact"]
    steps = [
        Step(
            who,
            StepKind.LEAD,
            lead,
            body={
                "company": "Big Bank",
                "company_domain": "bigbank.example",
                "job_title": "部長",
                "industry": "finance",
                "company_size": 20000,
            },
        ),
        _email(who, lead, StepKind.OPEN, email, user_agent=APPLE_MPP_UA),
    ]
    for n, path in enumerate(links):
        steps.append(
            _email(
                who,
                lead,
                StepKind.CLICK,
                email,
                target=SITE + path,
                user_agent=SCANNER_UA,
                together=n > 0,
            )
        )
    steps.append(
        _email(who, lead, StepKind.CLICK, email, target=SITE + "/pricing", head=True, together=True)
    )
    return steps


def unsubscriber(batch: str, now: datetime) -> list[Step]:
    lead, who = f"demo-{batch}-unsub", "unsubscriber"
    email = f"nl-{batch}"
    return [
        Step(
            who,
            StepKind.LEAD,
            lead,
            body={
                "job_title": "Marketing Manager",
                "industry": "retail",
                "company_size": 40,
            },
        ),
        _email(who, lead, StepKind.OPEN, email),
        _email(who, lead, StepKind.CLICK, email, target=f"{SITE}/blog/email-tips"),
        _event(
            who,
            lead,
            "email.unsubscribed",
            {"email_id": email, "campaign_id": "demo-nurture", "scope": "all"},
            now,
            f"demo-{batch}-unsub",
        ),
    ]


def anonymous_visitors(batch: str, now: datetime) -> list[Step]:
    pages = [
        ("/", "ホーム"),
        ("/features", "機能"),
        ("/blog/ma-nurturing", "ブログ"),
        ("/pricing", "料金"),
    ]
    return [
        Step(
            "anonymous",
            StepKind.BEACON,
            None,
            body={
                "url": SITE + path,
                "title": title,
                "anonymous_id": f"anon-{batch}-{n % 2}",
            },
        )
        for n, (path, title) in enumerate(pages)
    ]


PERSONAS = (executive, researcher, competitor, scanned_corporate, unsubscriber, anonymous_visitors)


def _bursts(script: list[Step]) -> list[list[Step]]:
    bursts: list[list[Step]] = []
    for step in script:
        if step.together and bursts:
            bursts[-1].append(step)
        else:
            bursts.append([step])
    return bursts


def cycle_steps(cycle: int, now: datetime, run: str = "r") -> list[list[Step]]:
    """One cycle: the personas' scripts interleaved, each kept in its own order.
    Each item is a burst: steps sent at once; the feed paces bursts. Lead and
    event ids carry `run` and `cycle`, so every run and cycle meets new people."""
    batch = f"{run}-{cycle}"
    scripts = [_bursts(persona(batch, now)) for persona in PERSONAS]
    bursts: list[list[Step]] = []
    for position in range(max(len(script) for script in scripts)):
        bursts.extend(script[position] for script in scripts if position < len(script))
    return bursts
