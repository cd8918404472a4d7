"""The `data` payload of each event type."""

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from schemas.envelope import EventId, LeadId, Model, ShortText, Url, UtcDatetime

Ref = Annotated[str, StringConstraints(min_length=1, max_length=256)]


# --- lead-scoped inputs -------------------------------------------------------------


class EmailRef(Model):
    """Which email (and campaign) an email event is about."""

    email_id: Ref | None = None
    campaign_id: Ref | None = None


class EmailSentData(EmailRef):
    pass


class EmailDeliveredData(EmailRef):
    pass


class EmailOpenedData(EmailRef):
    pass


class EmailClickedData(EmailRef):
    url: Url = Field(description="The link's target.")


class EmailBouncedData(EmailRef):
    bounce: Literal["hard", "soft"] = "hard"
    reason: ShortText | None = None


class EmailUnsubscribedData(EmailRef):
    scope: Literal["list", "all"] = Field(
        default="all", description="`list`: from one list or group; `all`: from everything."
    )


class EmailSpamReportedData(EmailRef):
    pass


class AssetDownloadedData(Model):
    asset_id: Ref
    asset_type: Ref | None = Field(
        default=None, description="e.g. whitepaper, case_study, ebook, price_list."
    )
    url: Url | None = None
    title: ShortText | None = None


class PageViewedData(Model):
    url: Url
    referrer: Url | None = None
    title: ShortText | None = None
    anonymous_id: Ref | None = Field(
        default=None, description="The browser's first-party anonymous id."
    )


class FormSubmittedData(Model):
    form_id: Ref
    form_type: Ref | None = Field(
        default=None, description="e.g. contact, demo_request, newsletter, webinar."
    )
    url: Url | None = None


class LeadAttributes(Model):
    """What hotlead knows about a lead. Every field is optional; an update
    replaces the fields it carries and leaves the others as they were."""

    email: (
        Annotated[str, StringConstraints(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")] | None
    ) = None
    first_name: ShortText | None = None
    last_name: ShortText | None = None
    company: ShortText | None = None
    company_domain: ShortText | None = None
    job_title: ShortText | None = None
    role: ShortText | None = Field(
        default=None, description="e.g. executive, manager, staff (fit rules match on it)."
    )
    industry: ShortText | None = None
    company_size: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="Number of employees."
    )
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] | None = Field(
        default=None, description="ISO 3166-1 alpha-2 code."
    )
    region: ShortText | None = None
    custom: dict[Ref, str | int | float | bool] | None = Field(
        default=None, description="Attributes of your own, for fit rules."
    )


class LeadUpdatedData(Model):
    attributes: LeadAttributes


class CrmStatus(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    OPPORTUNITY = "opportunity"
    WON = "won"
    LOST = "lost"


class CrmStatusChangedData(Model):
    status: CrmStatus
    crm: Ref | None = Field(default=None, description="e.g. salesforce, hubspot.")
    record_id: Ref | None = None
    owner_id: Ref | None = None
    handoff_id: Ref | None = None
    reason: ShortText | None = None


# --- outputs ---------------------------------------------------------------------------


class Segment(StrEnum):
    LOW = "low"
    MID = "mid"
    HIGH = "high"


class SegmentChangedData(Model):
    lead_id: LeadId
    previous: Segment | None = Field(
        default=None, description="The segment before; none for a lead's first segment."
    )
    segment: Segment
    score: float
    rules_version: Ref
    cause_event_id: EventId | None = Field(
        default=None, description="The event that moved the score; none for a decay sweep."
    )


class BreakdownItem(Model):
    """One rule's part of the score."""

    rule: Ref
    group: Ref | None = None
    part: Literal["fit", "engagement", "limit"] | None = Field(
        default=None,
        description="Which part of the score: fit (attributes), engagement (behaviour), "
        "or limit (a cap or floor adjustment).",
    )
    points: float
    events: list[EventId] = Field(description="The events that earned these points.")


class HandoffReason(Model):
    kind: Literal["threshold", "trigger"]
    name: Ref = Field(description="`threshold`, or the special trigger's name.")
    detail: ShortText


class HandoffRequestedData(Model):
    handoff_id: Ref = Field(description="Deterministic: lead id + qualification sequence.")
    lead_id: LeadId
    sequence: Annotated[int, Field(ge=1)]
    reason: HandoffReason
    score: float
    fit: float
    engagement: float
    segment: Segment
    breakdown: list[BreakdownItem]
    lead: LeadAttributes
    trigger_event_id: EventId
    trigger_event_time: UtcDatetime
    rules_version: Ref


class OutcomeStep(StrEnum):
    ASSIGNED = "assigned"
    CRM_SYNCED = "crm_synced"
    NOTIFIED = "notified"
    FAILED = "failed"
    DEAD_LETTERED = "dead_lettered"


class HandoffOutcomeData(Model):
    handoff_id: Ref
    lead_id: LeadId
    step: OutcomeStep
    attempt: Annotated[int, Field(ge=1)] = 1
    duration_ms: Annotated[float, Field(ge=0)]
    detail: ShortText | None = None
    owner_id: Ref | None = None
    crm_record_id: Ref | None = None
    since_trigger_ms: Annotated[float, Field(ge=0)] | None = Field(
        default=None, description="From the triggering event's time to this step (notified)."
    )


class HandoffDeadLetteredData(Model):
    handoff: HandoffRequestedData
    error: ShortText
    error_type: Ref
    attempts: Annotated[int, Field(ge=1)]
    first_attempt_at: UtcDatetime
    last_attempt_at: UtcDatetime


class EventRejectedData(Model):
    reason: ShortText
    errors: list[ShortText]
    route: Ref = Field(description="The HTTP route that received it.")
    payload: str = Field(description="The original input, as received (UTF-8, replaced).")
