import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.handoff.errors import (
    AuthenticationError,
    MultipleMatchError,
    PermanentDeliveryError,
    RateLimitedError,
    TransientDeliveryError,
    classify_status,
    parse_retry_after,
)
from services.handoff.retry import GiveUp, RetryAfter, RetryPolicy, backoff_delay, decide

POLICY = RetryPolicy(max_attempts=4, base_delay_s=1.0, multiplier=2.0, max_delay_s=8.0)


def test_transient_errors_back_off_exponentially() -> None:
    error = TransientDeliveryError("slack", "boom", status=503)
    delays = [decide(POLICY, attempt, error, rand=1.0) for attempt in (1, 2, 3)]
    assert delays == [RetryAfter(1.0), RetryAfter(2.0), RetryAfter(4.0)]
    assert decide(POLICY, 4, error, rand=0.5) == GiveUp("gave up after 4 attempts")


def test_retry_after_is_honoured_even_when_backoff_is_shorter() -> None:
    error = RateLimitedError("slack", "slow down", retry_after=2.0)
    assert decide(POLICY, 1, error, rand=0.0) == RetryAfter(2.0)


def test_a_huge_retry_after_is_capped() -> None:
    error = RateLimitedError("slack", "slow down", retry_after=86400.0)
    assert decide(POLICY, 1, error, rand=0.0) == RetryAfter(POLICY.max_retry_after_s)


@pytest.mark.parametrize(
    "error",
    [
        PermanentDeliveryError("hubspot", "bad property", status=400),
        AuthenticationError("salesforce", "invalid_client", status=401),
        MultipleMatchError("salesforce", "2 leads match", status=300),
        ValueError("a bug"),
    ],
)
def test_permanent_errors_are_not_retried(error: Exception) -> None:
    decision = decide(POLICY, 1, error, rand=0.3)
    assert isinstance(decision, GiveUp)
    assert "permanent" in decision.reason


@given(st.integers(min_value=1, max_value=30), st.floats(min_value=0, max_value=0.999))
def test_jitter_stays_within_half_and_full_step(attempt: int, rand: float) -> None:
    delay = backoff_delay(POLICY, attempt, rand)
    step = min(POLICY.max_delay_s, POLICY.base_delay_s * 2 ** (attempt - 1))
    assert step / 2 <= delay <= step


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (429, RateLimitedError),
        (500, TransientDeliveryError),
        (503, TransientDeliveryError),
        (408, TransientDeliveryError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (400, PermanentDeliveryError),
        (404, PermanentDeliveryError),
    ],
)
def test_http_statuses_map_to_the_error_tree(status: int, kind: type) -> None:
    error = classify_status("crm", status, "x", "3")
    assert type(error) is kind
    assert error.status == status


def test_retry_after_header_forms() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert parse_retry_after(None) is None
