"""Errors of the ingest service.

    HotleadError (services.common.errors)
    └── IngestError                   base of this service's errors
        ├── TokenError                a pixel/click token is malformed, tampered or unknown
        ├── MintError                 a token cannot be minted (bad target URL, bad ids)
        ├── SignatureError            a webhook signature is missing, wrong or stale
        ├── AuthenticationError       no or an unknown API key
        ├── PayloadTooLargeError      the body or batch is over the documented limit
        ├── RateLimitedError          too many requests from one client or source (retriable)
        ├── BadRequestError           the body cannot be read at all (not JSON, wrong shape)
        └── PublishUnavailableError   Kafka did not acknowledge in time (retriable)

`KafkaUnavailableError` from services.common.errors is mapped like
PublishUnavailableError. Each error carries the HTTP status a route answers
with; the message tells the caller what to fix.
"""

from typing import ClassVar

from services.common.errors import HotleadError


class IngestError(HotleadError):
    status_code: ClassVar[int] = 400


class TokenError(IngestError):
    status_code = 404


class MintError(IngestError):
    pass


class SignatureError(IngestError):
    status_code = 401


class AuthenticationError(IngestError):
    status_code = 401


class PayloadTooLargeError(IngestError):
    status_code = 413


class RateLimitedError(IngestError):
    status_code = 429
    retriable = True

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class BadRequestError(IngestError):
    status_code = 400


class PublishUnavailableError(IngestError):
    status_code = 503
    retriable = True
