"""The one interface every CRM connector implements, and an in-memory one for tests.

A connector upserts the lead (never creates a second record for the same
lead: the upsert key is the lead id or the email) and records the score
breakdown as an activity on it (Salesforce Task, HubSpot note, or part of
the webhook). Errors are the DeliveryError tree, so the retry policy can
tell throttling and outages from requests that can never succeed.
"""

from dataclasses import dataclass, field
from typing import Protocol

from schemas.data import HandoffRequestedData


@dataclass(frozen=True, slots=True)
class CrmRecord:
    record_id: str
    created: bool
    url: str | None = None


class CrmClient(Protocol):
    name: str
    """Shown to people: Salesforce, HubSpot, webhook."""

    async def upsert_lead(self, handoff: HandoffRequestedData, owner_id: str | None) -> CrmRecord:
        """Create the lead, or update it when it exists (same key, same record)."""
        ...

    async def record_breakdown(
        self, handoff: HandoffRequestedData, record: CrmRecord, owner_id: str | None
    ) -> str:
        """Attach why the lead is hot (score, reason, breakdown); returns the activity id.
        Calling it again for the same hand-off returns the same activity where the CRM
        lets us find it."""
        ...


def breakdown_text(handoff: HandoffRequestedData) -> str:
    """The breakdown as plain text for CRM activities (no markup: CRMs show it as is)."""
    lines = [
        f"hotlead hand-off {handoff.handoff_id}",
        f"Score {handoff.score:g} (fit {handoff.fit:g}, engagement {handoff.engagement:g}), "
        f"segment {handoff.segment.value}",
        f"Why: {handoff.reason.detail}",
        "",
        "Breakdown:",
    ]
    for item in sorted(handoff.breakdown, key=lambda i: -i.points):
        events = ", ".join(item.events[:5])
        lines.append(f"- {item.rule} ({item.group or '-'}): {item.points:+g}  [{events}]")
    lines.append(f"Rules version: {handoff.rules_version}")
    return "\n".join(lines)


@dataclass
class MemoryCrm:
    """Records by lead id, activities by hand-off id; for tests of the delivery logic."""

    name: str = "memory"
    records: dict[str, CrmRecord] = field(default_factory=dict)
    activities: dict[str, str] = field(default_factory=dict)
    upserts: int = 0

    async def upsert_lead(self, handoff: HandoffRequestedData, owner_id: str | None) -> CrmRecord:
        self.upserts += 1
        existing = self.records.get(handoff.lead_id)
        if existing is not None:
            return CrmRecord(existing.record_id, created=False, url=existing.url)
        record = CrmRecord(f"rec-{len(self.records) + 1}", created=True, url=None)
        self.records[handoff.lead_id] = record
        return record

    async def record_breakdown(
        self, handoff: HandoffRequestedData, record: CrmRecord, owner_id: str | None
    ) -> str:
        return self.activities.setdefault(handoff.handoff_id, f"act-{len(self.activities) + 1}")
