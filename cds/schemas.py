"""CDS Hooks 2.0.1 wire models. Inbound tolerant (unknown fields kept), outbound strict.

Validators are named after the CDS Hooks invariants (HL7 cds-hooks input/fsh/invariants):
cds-r-1..2 on requests, cds-resp-1..7 on responses, cds-fb-1..3 on feedback. Outbound JSON never
carries null or empty values except `cards: []` (spec "Use of JSON").
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from cds.errors import Issue as ErrorIssue
from cds.errors import RequestInvalid

Extension = dict[str, Any]
# FHIR id datatype (R4): [A-Za-z0-9\-\.]{1,64}; an id of dots alone would be a path segment.
# Matched whole with fullmatch: `$` also matches before a trailing newline, which let
# "p1\n" through as a patient id (fetched as Patient/p1%0A, snoozed under another key).
FHIR_ID = re.compile(r"(?!\.+\Z)[A-Za-z0-9\-.]{1,64}")
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def fhir_id(value: str, what: str) -> str:
    """Context ids are put into FHIR queries: only the FHIR id characters, never a path."""
    if not FHIR_ID.fullmatch(value):
        raise ValueError(f"{what} must be a FHIR id ([A-Za-z0-9-.], at most 64 characters)")
    return value


def fhir_reference(value: str, what: str) -> str:
    """A relative reference Type/id, as userId is."""
    rtype, slash, rid = value.partition("/")
    if not slash or not rtype.isalpha() or not FHIR_ID.fullmatch(rid):
        raise ValueError(f"{what} must be a relative reference such as Practitioner/<id>")
    return value


class Inbound(BaseModel):
    """Requests from CDS clients: unknown fields and extensions are accepted and kept."""

    model_config = ConfigDict(extra="allow")


class Outbound(BaseModel):
    """What we send: unknown fields are a bug."""

    model_config = ConfigDict(extra="forbid")

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    def wire_json(self) -> bytes:
        """`wire()` as JSON bytes, serialized in one pass by pydantic-core (no dict between)."""
        return self.__pydantic_serializer__.to_json(self, exclude_none=True)


# --- requests ----------------------------------------------------------------------------------


class FhirAuthorization(Inbound):
    access_token: str = Field(min_length=1)
    token_type: str = Field(min_length=1)
    expires_in: int
    scope: str
    subject: str
    patient: str | None = None

    def __repr__(self) -> str:  # never print the token
        return f"FhirAuthorization(token_type={self.token_type!r}, scope={self.scope!r}, …)"


class HookRequest(Inbound):
    hook: str = Field(min_length=1)
    hookInstance: str = Field(min_length=1)
    fhirServer: str | None = None
    fhirAuthorization: FhirAuthorization | None = None
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None
    extension: Extension | None = None

    @field_validator("hookInstance")
    @classmethod
    def _uuid(cls, value: str) -> str:
        # The spec: "A universally unique identifier (UUID) for this particular hook call".
        if not UUID.fullmatch(value):
            raise ValueError("hookInstance must be a UUID")
        return value

    @field_validator("fhirServer")
    @classmethod
    def _absolute_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("fhirServer must be an absolute http(s) URL")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _cds_r_1(self) -> HookRequest:
        # cds-r-1: if fhirAuthorization details are provided, a fhirServer SHALL be specified.
        if self.fhirAuthorization is not None and self.fhirServer is None:
            raise ValueError("cds-r-1: fhirAuthorization is present, so fhirServer is required")
        return self


class PatientViewContext(Inbound):
    userId: str = Field(min_length=1)
    patientId: str = Field(min_length=1)
    encounterId: str | None = None

    @field_validator("patientId", "encounterId")
    @classmethod
    def _ids(cls, value: str | None, info: Any) -> str | None:
        return None if value is None else fhir_id(value, info.field_name)

    @field_validator("userId")
    @classmethod
    def _user(cls, value: str) -> str:
        return fhir_reference(value, "userId")


class OrderSignContext(PatientViewContext):
    draftOrders: dict[str, Any]

    @field_validator("draftOrders")
    @classmethod
    def _bundle(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("resourceType") != "Bundle":
            raise ValueError("draftOrders must be a FHIR Bundle")
        return value


class OrderSelectContext(OrderSignContext):
    selections: list[str] = Field(min_length=1)


CONTEXT_MODELS: dict[str, type[Inbound]] = {
    "patient-view": PatientViewContext,
    "order-select": OrderSelectContext,
    "order-sign": OrderSignContext,
}


# --- responses ---------------------------------------------------------------------------------


class Coding(Outbound):
    system: str = Field(min_length=1)
    code: str = Field(min_length=1)
    display: str | None = Field(default=None, min_length=1)


class OverrideReason(Coding):
    display: str = Field(min_length=1)  # cds-resp-4: display is required on override reasons


class Source(Outbound):
    label: str = Field(min_length=1)
    url: str | None = Field(default=None, min_length=1)
    icon: str | None = Field(default=None, min_length=1)
    topic: Coding | None = None


class Action(Outbound):
    type: Literal["create", "update", "delete"]
    description: str = Field(min_length=1)  # cds-resp-5
    resource: dict[str, Any] | None = None
    resourceId: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _cds_resp_2(self) -> Action:
        # cds-resp-2: a delete names resourceId, not resource; create/update carry the resource.
        if self.type == "delete" and (self.resourceId is None or self.resource is not None):
            raise ValueError("cds-resp-2: a delete action needs resourceId and no resource")
        if self.type != "delete" and not self.resource:
            raise ValueError(f"a {self.type} action needs the whole resource")
        return self


class Suggestion(Outbound):
    label: str = Field(min_length=1)
    uuid: str | None = None
    isRecommended: bool | None = None
    actions: list[Action] | None = Field(default=None, min_length=1)


class Link(Outbound):
    label: str = Field(min_length=1)
    url: str = Field(min_length=1)
    type: Literal["absolute", "smart"]
    appContext: str | None = Field(default=None, min_length=1)
    autolaunchable: bool | None = None

    @model_validator(mode="after")
    def _cds_resp_3(self) -> Link:
        if self.type != "smart" and self.appContext is not None:
            raise ValueError("cds-resp-3: appContext is only for smart links")
        return self


class Card(Outbound):
    uuid: str | None = None
    summary: str = Field(min_length=1, max_length=139)  # "<140-character" summary
    detail: str | None = Field(default=None, min_length=1)
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[Suggestion] | None = Field(default=None, min_length=1)
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[OverrideReason] | None = Field(default=None, min_length=1)
    links: list[Link] | None = Field(default=None, min_length=1)
    extension: Extension | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _cds_resp_1_and_6(self) -> Card:
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("cds-resp-6: suggestions require selectionBehavior")
        if self.selectionBehavior == "at-most-one" and self.suggestions:
            recommended = sum(1 for s in self.suggestions if s.isRecommended)
            if recommended > 1:
                raise ValueError("cds-resp-1: at most one recommended suggestion with at-most-one")
        return self


class CDSResponse(Outbound):
    cards: list[Card]  # always present, [] means "no guidance"
    systemActions: list[Action] | None = Field(default=None, min_length=1)

    def wire(self) -> dict[str, Any]:
        body = super().wire()
        body.setdefault("cards", [])
        return body


class ServiceDescription(Outbound):
    hook: str = Field(min_length=1)
    title: str | None = None
    description: str = Field(min_length=1)
    id: str = Field(min_length=1)
    prefetch: dict[str, str] | None = None
    usageRequirements: str | None = None
    extension: dict[str, Any] | None = None


class Discovery(Outbound):
    services: list[ServiceDescription]


# --- feedback ----------------------------------------------------------------------------------


# Feedback is stored: every part of it is bounded (issue 28 item 5: 20,000-35,000 items and
# megabyte comments in one post). A card carries a handful of suggestions; a clinician's comment
# is a sentence or two.
MAX_FEEDBACK_ITEMS = 100
MAX_COMMENT_CHARS = 2000
MAX_ID_CHARS = 128


class AcceptedSuggestion(Inbound):
    id: str = Field(min_length=1, max_length=MAX_ID_CHARS)


class ReasonCoding(Inbound):
    code: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    system: str | None = Field(default=None, max_length=1024)
    display: str | None = Field(default=None, max_length=1024)


class OverrideReasonFeedback(Inbound):
    reason: ReasonCoding | None = None
    userComment: str | None = Field(default=None, max_length=MAX_COMMENT_CHARS)

    @model_validator(mode="after")
    def _cds_fb_3(self) -> OverrideReasonFeedback:
        if self.reason is None and not self.userComment:
            raise ValueError("cds-fb-3: an overrideReason needs a reason, a userComment, or both")
        return self


class FeedbackItem(Inbound):
    card: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    outcome: Literal["accepted", "overridden"]  # cds-fb-1
    acceptedSuggestions: list[AcceptedSuggestion] | None = Field(default=None, max_length=20)
    overrideReason: OverrideReasonFeedback | None = None
    outcomeTimestamp: AwareDatetime

    @field_validator("outcomeTimestamp")
    @classmethod
    def _in_range(cls, value: datetime) -> datetime:
        # 0001-01-01T00:00:00+14:00 is a valid instant that is not representable in UTC.
        try:
            utc = value.astimezone(UTC)
        except (OverflowError, ValueError):
            raise ValueError("outcomeTimestamp is out of range") from None
        if not 1970 <= utc.year <= 9999:
            raise ValueError("outcomeTimestamp must lie between 1970 and 9999")
        return value

    @model_validator(mode="after")
    def _cds_fb_2(self) -> FeedbackItem:
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError("cds-fb-2: accepted feedback must list acceptedSuggestions")
        return self


class FeedbackRequest(Inbound):
    feedback: list[FeedbackItem] = Field(min_length=1, max_length=MAX_FEEDBACK_ITEMS)


class Issue(Outbound):
    severity: Literal["fatal", "error", "warning", "information"]
    code: str
    diagnostics: str | None = None
    expression: list[str] | None = None


class OperationOutcome(Outbound):
    resourceType: Literal["OperationOutcome"] = "OperationOutcome"
    issue: list[Issue] = Field(min_length=1)


def _paths(exc: ValidationError, prefix: str = "") -> tuple[ErrorIssue, ...]:
    out = []
    for e in exc.errors()[:20]:
        where = ".".join(str(p) for p in e["loc"])
        where = f"{prefix}.{where}" if prefix and where else (prefix or where or "(body)")
        out.append(ErrorIssue("invalid", f"{where}: {e['msg']}", where))
    return tuple(out)


def parse(model: type[BaseModel], data: Any, prefix: str = "") -> Any:
    """`data` validated into `model`, or RequestInvalid naming each problem by its path (at
    most 20), prefixed with where `data` sits in the request."""
    if not isinstance(data, dict):
        raise RequestInvalid(f"{prefix or 'the body'} must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestInvalid("invalid request", issues=_paths(exc, prefix)) from None
