import pytest

from schemas.event_types import INPUT_TYPES, EventType


def test_short_and_full_names_name_the_same_type() -> None:
    assert EventType.from_name("email.opened") is EventType.EMAIL_OPENED
    assert EventType.from_name("hotlead.email.opened") is EventType.EMAIL_OPENED
    assert EventType.EMAIL_OPENED.short == "email.opened"


def test_an_unknown_type_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown event type 'email\.read'.*email\.opened"):
        EventType.from_name("email.read")


def test_every_type_of_the_architecture_is_an_input_type() -> None:
    documented = {
        "email.sent", "email.delivered", "email.opened", "email.clicked", "email.bounced",
        "email.unsubscribed", "asset.downloaded", "page.viewed", "form.submitted",
        "lead.updated", "crm.status_changed",
    }  # fmt: skip
    assert documented <= {t.short for t in INPUT_TYPES}
    assert EventType.SEGMENT_CHANGED not in INPUT_TYPES
