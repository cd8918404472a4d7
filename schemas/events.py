"""One CloudEvent model per event type, and the union of them all."""

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from schemas.data import (
    AssetDownloadedData,
    CrmStatusChangedData,
    EmailBouncedData,
    EmailClickedData,
    EmailDeliveredData,
    EmailOpenedData,
    EmailSentData,
    EmailSpamReportedData,
    EmailUnsubscribedData,
    EventRejectedData,
    FormSubmittedData,
    HandoffDeadLetteredData,
    HandoffOutcomeData,
    HandoffRequestedData,
    LeadUpdatedData,
    PageViewedData,
    SegmentChangedData,
)
from schemas.envelope import CloudEvent, LeadId
from schemas.event_types import EventType


class LeadEvent(CloudEvent):
    """An event about one lead: `subject` (the Kafka key) is required."""

    subject: LeadId


class EmailSent(LeadEvent):
    type: Literal[EventType.EMAIL_SENT] = EventType.EMAIL_SENT
    data: EmailSentData


class EmailDelivered(LeadEvent):
    type: Literal[EventType.EMAIL_DELIVERED] = EventType.EMAIL_DELIVERED
    data: EmailDeliveredData


class EmailOpened(LeadEvent):
    type: Literal[EventType.EMAIL_OPENED] = EventType.EMAIL_OPENED
    data: EmailOpenedData


class EmailClicked(LeadEvent):
    type: Literal[EventType.EMAIL_CLICKED] = EventType.EMAIL_CLICKED
    data: EmailClickedData


class EmailBounced(LeadEvent):
    type: Literal[EventType.EMAIL_BOUNCED] = EventType.EMAIL_BOUNCED
    data: EmailBouncedData


class EmailUnsubscribed(LeadEvent):
    type: Literal[EventType.EMAIL_UNSUBSCRIBED] = EventType.EMAIL_UNSUBSCRIBED
    data: EmailUnsubscribedData


class EmailSpamReported(LeadEvent):
    type: Literal[EventType.EMAIL_SPAM_REPORTED] = EventType.EMAIL_SPAM_REPORTED
    data: EmailSpamReportedData


class AssetDownloaded(LeadEvent):
    type: Literal[EventType.ASSET_DOWNLOADED] = EventType.ASSET_DOWNLOADED
    data: AssetDownloadedData


class PageViewed(LeadEvent):
    type: Literal[EventType.PAGE_VIEWED] = EventType.PAGE_VIEWED
    data: PageViewedData


class FormSubmitted(LeadEvent):
    type: Literal[EventType.FORM_SUBMITTED] = EventType.FORM_SUBMITTED
    data: FormSubmittedData


class LeadUpdated(LeadEvent):
    type: Literal[EventType.LEAD_UPDATED] = EventType.LEAD_UPDATED
    data: LeadUpdatedData


class CrmStatusChanged(LeadEvent):
    type: Literal[EventType.CRM_STATUS_CHANGED] = EventType.CRM_STATUS_CHANGED
    data: CrmStatusChangedData


class SegmentChanged(LeadEvent):
    type: Literal[EventType.SEGMENT_CHANGED] = EventType.SEGMENT_CHANGED
    data: SegmentChangedData


class HandoffRequested(LeadEvent):
    type: Literal[EventType.HANDOFF_REQUESTED] = EventType.HANDOFF_REQUESTED
    data: HandoffRequestedData


class HandoffOutcome(LeadEvent):
    type: Literal[EventType.HANDOFF_OUTCOME] = EventType.HANDOFF_OUTCOME
    data: HandoffOutcomeData


class HandoffDeadLettered(LeadEvent):
    type: Literal[EventType.HANDOFF_DEAD_LETTERED] = EventType.HANDOFF_DEAD_LETTERED
    data: HandoffDeadLetteredData


class EventRejected(CloudEvent):
    """Input that failed validation; `subject` is set when a lead id could be read."""

    type: Literal[EventType.EVENT_REJECTED] = EventType.EVENT_REJECTED
    data: EventRejectedData


EVENT_MODELS: dict[EventType, type[CloudEvent]] = {
    EventType.EMAIL_SENT: EmailSent,
    EventType.EMAIL_DELIVERED: EmailDelivered,
    EventType.EMAIL_OPENED: EmailOpened,
    EventType.EMAIL_CLICKED: EmailClicked,
    EventType.EMAIL_BOUNCED: EmailBounced,
    EventType.EMAIL_UNSUBSCRIBED: EmailUnsubscribed,
    EventType.EMAIL_SPAM_REPORTED: EmailSpamReported,
    EventType.ASSET_DOWNLOADED: AssetDownloaded,
    EventType.PAGE_VIEWED: PageViewed,
    EventType.FORM_SUBMITTED: FormSubmitted,
    EventType.LEAD_UPDATED: LeadUpdated,
    EventType.CRM_STATUS_CHANGED: CrmStatusChanged,
    EventType.SEGMENT_CHANGED: SegmentChanged,
    EventType.HANDOFF_REQUESTED: HandoffRequested,
    EventType.HANDOFF_OUTCOME: HandoffOutcome,
    EventType.HANDOFF_DEAD_LETTERED: HandoffDeadLettered,
    EventType.EVENT_REJECTED: EventRejected,
}

AnyEvent = Annotated[
    EmailSent
    | EmailDelivered
    | EmailOpened
    | EmailClicked
    | EmailBounced
    | EmailUnsubscribed
    | EmailSpamReported
    | AssetDownloaded
    | PageViewed
    | FormSubmitted
    | LeadUpdated
    | CrmStatusChanged
    | SegmentChanged
    | HandoffRequested
    | HandoffOutcome
    | HandoffDeadLettered
    | EventRejected,
    Field(discriminator="type"),
]
"""Any hotlead event, told apart by its `type`."""

ANY_EVENT: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


def event_model(event_type: EventType) -> type[CloudEvent]:
    """The model class of one event type."""
    return EVENT_MODELS[event_type]
