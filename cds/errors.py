"""The service's errors, each mapped to an HTTP status and a FHIR OperationOutcome.

Our exception hierarchy:

* CDSError
  + RequestInvalid ........ 400  malformed body, hook does not match the service
  + AuthFailed ............ 401  client JWT missing or invalid (no details are given)
  + UnknownService ........ 404
  + PayloadTooLarge ....... 413
  + UnsupportedMediaType .. 415
  + FeedbackRefused ....... 422  feedback for a card not issued to this caller by this service
  + BodyTimeout ........... 408  the request body did not arrive within its deadline
  + PrefetchUnavailable ... 412  data the rules need was neither prefetched nor fetchable
  + StoreUnavailable ...... 503  the database did not answer within its bounded wait
  + Busy .................. 503  request bodies in flight are at their memory budget
* ConfigError ............. start-up only: knowledge files or settings are inconsistent
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem, as a FHIR OperationOutcome.issue: severity, code, text and where."""

    code: str
    diagnostics: str
    expression: str | None = None
    severity: Literal["fatal", "error", "warning", "information"] = "error"


class CDSError(Exception):
    http_status: ClassVar[int] = 400
    issue_code: ClassVar[str] = "invalid"

    def __init__(self, message: str, *, issues: tuple[Issue, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.issues = issues or (Issue(code=self.issue_code, diagnostics=message),)

    def __str__(self) -> str:
        return self.message


class RequestInvalid(CDSError):
    http_status = 400
    issue_code = "invalid"


class AuthFailed(CDSError):
    http_status = 401
    issue_code = "login"


class UnknownService(CDSError):
    http_status = 404
    issue_code = "not-found"


class PayloadTooLarge(CDSError):
    http_status = 413
    issue_code = "too-costly"


class UnsupportedMediaType(CDSError):
    http_status = 415
    issue_code = "not-supported"


class FeedbackRefused(CDSError):
    http_status = 422
    issue_code = "not-found"


class PrefetchUnavailable(CDSError):
    http_status = 412
    issue_code = "incomplete"


class StoreUnavailable(CDSError):
    http_status = 503
    issue_code = "transient"


class BodyTimeout(CDSError):
    http_status = 408
    issue_code = "timeout"


class Busy(CDSError):
    http_status = 503
    issue_code = "transient"


class ConfigError(Exception):
    """Knowledge files or settings are inconsistent; the service refuses to start."""
