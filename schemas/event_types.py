"""Event type names.

In Kafka the CloudEvents `type` carries the full name (`hotlead.email.opened`);
the public HTTP API accepts the short name (`email.opened`).
"""

from enum import StrEnum

TYPE_PREFIX = "hotlead."


class EventType(StrEnum):
    # lead-scoped inputs, on hotlead.events.v1
    EMAIL_SENT = "hotlead.email.sent"
    EMAIL_DELIVERED = "hotlead.email.delivered"
    EMAIL_OPENED = "hotlead.email.opened"
    EMAIL_CLICKED = "hotlead.email.clicked"
    EMAIL_BOUNCED = "hotlead.email.bounced"
    EMAIL_UNSUBSCRIBED = "hotlead.email.unsubscribed"
    EMAIL_SPAM_REPORTED = "hotlead.email.spam_reported"
    ASSET_DOWNLOADED = "hotlead.asset.downloaded"
    PAGE_VIEWED = "hotlead.page.viewed"
    FORM_SUBMITTED = "hotlead.form.submitted"
    LEAD_UPDATED = "hotlead.lead.updated"
    CRM_STATUS_CHANGED = "hotlead.crm.status_changed"
    # outputs of the scorer and the hand-off service
    SEGMENT_CHANGED = "hotlead.segment.changed"
    HANDOFF_REQUESTED = "hotlead.handoff.requested"
    HANDOFF_OUTCOME = "hotlead.handoff.outcome"
    HANDOFF_DEAD_LETTERED = "hotlead.handoff.dead_lettered"
    # invalid input kept as evidence, on hotlead.rejected.v1
    EVENT_REJECTED = "hotlead.event.rejected"

    @property
    def short(self) -> str:
        """The name used in the public API, without the `hotlead.` prefix."""
        return self.value.removeprefix(TYPE_PREFIX)

    @classmethod
    def from_name(cls, name: str) -> "EventType":
        """Accept the short (`email.opened`) or the full (`hotlead.email.opened`) name."""
        full = name if name.startswith(TYPE_PREFIX) else TYPE_PREFIX + name
        try:
            return cls(full)
        except ValueError:
            known = ", ".join(sorted(t.short for t in INPUT_TYPES))
            raise ValueError(f"unknown event type {name!r}; known types: {known}") from None


INPUT_TYPES: frozenset[EventType] = frozenset(
    {
        EventType.EMAIL_SENT,
        EventType.EMAIL_DELIVERED,
        EventType.EMAIL_OPENED,
        EventType.EMAIL_CLICKED,
        EventType.EMAIL_BOUNCED,
        EventType.EMAIL_UNSUBSCRIBED,
        EventType.EMAIL_SPAM_REPORTED,
        EventType.ASSET_DOWNLOADED,
        EventType.PAGE_VIEWED,
        EventType.FORM_SUBMITTED,
        EventType.LEAD_UPDATED,
        EventType.CRM_STATUS_CHANGED,
    }
)
"""The types that belong on hotlead.events.v1 (the lead's event log)."""
