"""The retry policy: exponential backoff with jitter that honours Retry-After (pure).

`decide(policy, attempt, error, rand)` says whether attempt number `attempt`
(1-based, the one that just failed) is followed by another after a delay, or
ends in the dead-letter topic. The error's type says whether it is retriable;
`rand` is a number in [0, 1) so tests pass their own and the shell passes
`random.random()`.
"""

from dataclasses import dataclass

from services.common.errors import HotleadError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay_s: float = 0.5
    multiplier: float = 2.0
    max_delay_s: float = 60.0
    max_retry_after_s: float = 300.0
    """A Retry-After longer than this is capped (a misbehaving server cannot park us for days)."""


@dataclass(frozen=True, slots=True)
class RetryAfter:
    delay_s: float


@dataclass(frozen=True, slots=True)
class GiveUp:
    reason: str


Decision = RetryAfter | GiveUp


def backoff_delay(policy: RetryPolicy, attempt: int, rand: float) -> float:
    """Equal jitter: half the exponential step fixed, half random, so retries of
    many hand-offs spread out but never come back sooner than half the step."""
    step = min(policy.max_delay_s, policy.base_delay_s * policy.multiplier ** max(attempt - 1, 0))
    return step / 2 + step / 2 * rand


def is_retriable(error: BaseException) -> bool:
    """Our own errors say it on their type; anything else (a bug) is not retried."""
    return isinstance(error, HotleadError) and type(error).retriable


def decide(policy: RetryPolicy, attempt: int, error: BaseException, rand: float) -> Decision:
    if not is_retriable(error):
        return GiveUp(f"permanent error: {type(error).__name__}")
    if attempt >= policy.max_attempts:
        return GiveUp(f"gave up after {attempt} attempts")
    delay = backoff_delay(policy, attempt, rand)
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        delay = max(delay, min(float(retry_after), policy.max_retry_after_s))
    return RetryAfter(delay)
