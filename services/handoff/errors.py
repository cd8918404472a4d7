"""Errors of the hand-off service. `retriable` on the type is the retry policy's input.

HotleadError (services.common.errors)
├── AssignmentConfigError     the assignment file is wrong (names the place)
└── DeliveryError             talking to a CRM, Slack or a webhook failed; `target` says which
    ├── TransientDeliveryError   5xx, timeout, connection reset (retriable)
    │   └── RateLimitedError     429
    (every DeliveryError carries `retry_after` seconds when the server sent Retry-After)
    └── PermanentDeliveryError   the request itself is wrong: retrying cannot help
        ├── AuthenticationError  credentials refused (fix the secret, then redrive)
        └── MultipleMatchError   Salesforce 300: the external id matches several records
"""

from typing import ClassVar

from services.common.errors import ConfigurationError, HotleadError


class AssignmentConfigError(ConfigurationError):
    pass


class DeliveryError(HotleadError):
    retriable: ClassVar[bool] = False

    def __init__(
        self,
        target: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        prefix = f"{target}: HTTP {status}: " if status is not None else f"{target}: "
        super().__init__(prefix + message)
        self.target = target
        self.status = status
        self.retry_after = retry_after


class TransientDeliveryError(DeliveryError):
    retriable = True


class RateLimitedError(TransientDeliveryError):
    pass


class PermanentDeliveryError(DeliveryError):
    retriable = False


class AuthenticationError(PermanentDeliveryError):
    pass


class MultipleMatchError(PermanentDeliveryError):
    pass


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds form); None when absent or a date."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return max(seconds, 0.0)


def classify_status(
    target: str, status: int, message: str, retry_after: str | None = None
) -> DeliveryError:
    """The error for a non-success HTTP status, the same way for every connector."""
    wait = parse_retry_after(retry_after)
    if status == 429:
        return RateLimitedError(target, message, status=status, retry_after=wait)
    if status in (401, 403):
        return AuthenticationError(target, message, status=status)
    if status == 408 or status >= 500:
        return TransientDeliveryError(target, message, status=status, retry_after=wait)
    return PermanentDeliveryError(target, message, status=status)
