"""Prefetch or fetch: token rendering, key classification, fetching with respx, 412."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from cds import schemas
from cds.errors import PrefetchUnavailable
from cds.fhir_fetch import FetchLimits, server_allowed
from cds.prefetch import TokenMissing, render_template, resolve

BASE = "http://127.0.0.1:8090/fhir"
LIMITS = FetchLimits(timeout_s=0.5, deadline_s=2.0, max_pages=3, max_resources=100)
ALLOW = ("http://127.0.0.1",)
TEMPLATES = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
}
CONTEXT = {"patientId": "p1", "userId": "Practitioner/u1"}


def request(prefetch: dict[str, Any] | None = None, **over: Any) -> schemas.HookRequest:
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": "6f1c3a52-8c1e-4a57-9a77-3f1d1f0a9b21",
        "fhirServer": BASE,
        "fhirAuthorization": {
            "access_token": "tok-123",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "cds",
            "patient": "p1",
        },
        "context": CONTEXT,
    }
    if prefetch is not None:
        body["prefetch"] = prefetch
    return schemas.HookRequest.model_validate(body | over)


def bundle(*resources: dict[str, Any], next_url: str | None = None) -> dict[str, Any]:
    b: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }
    if next_url:
        b["link"] = [{"relation": "next", "url": next_url}]
    return b


PATIENT = {"resourceType": "Patient", "id": "p1"}
COND = {"resourceType": "Condition", "id": "c1"}


async def run(req: schemas.HookRequest, templates: dict[str, str] = TEMPLATES) -> Any:
    async with httpx.AsyncClient() as client:
        return await resolve(templates, req, CONTEXT, client, LIMITS, ALLOW)


class TestTokens:
    def test_context_and_user_tokens(self) -> None:
        assert render_template("Patient/{{context.patientId}}", CONTEXT) == "Patient/p1"
        assert render_template("Practitioner/{{userPractitionerId}}", CONTEXT) == "Practitioner/u1"

    def test_missing_context_field(self) -> None:
        with pytest.raises(TokenMissing):
            render_template("Encounter/{{context.encounterId}}", CONTEXT)

    def test_user_token_of_another_type(self) -> None:
        with pytest.raises(TokenMissing):
            render_template("{{userPatientId}}", CONTEXT)


@pytest.mark.anyio
class TestClassification:
    async def test_prefetched_and_null_keys_are_not_fetched(self) -> None:
        with respx.mock(assert_all_called=False) as mock:
            route = mock.route(host="127.0.0.1")
            resolved = await run(request({"patient": PATIENT, "conditions": None}))
        assert resolved.data == {"patient": PATIENT, "conditions": None}
        assert not route.called

    async def test_omitted_key_is_fetched_with_the_bearer_token(self) -> None:
        with respx.mock() as mock:
            route = mock.get(f"{BASE}/Condition", params={"patient": "p1"}).respond(
                json=bundle(COND)
            )
            resolved = await run(request({"patient": PATIENT}))
        assert route.calls.last.request.headers["Authorization"] == "Bearer tok-123"
        assert resolved.data["conditions"]["entry"][0]["resource"] == COND
        assert resolved.fetched == ("conditions",)

    async def test_operation_outcome_prefetch_is_refetched(self) -> None:
        oo = {"resourceType": "OperationOutcome", "issue": []}
        with respx.mock() as mock:
            mock.get(f"{BASE}/Condition").respond(json=bundle(COND))
            resolved = await run(request({"patient": PATIENT, "conditions": oo}))
        assert resolved.data["conditions"]["resourceType"] == "Bundle"

    async def test_all_keys_fetched_in_parallel(self) -> None:
        with respx.mock() as mock:
            mock.get(f"{BASE}/Patient/p1").respond(json=PATIENT)
            mock.get(f"{BASE}/Condition").respond(json=bundle())
            resolved = await run(request())
        assert set(resolved.fetched) == {"patient", "conditions"}

    async def test_no_token_means_no_authorization_header(self) -> None:
        with respx.mock() as mock:
            route = mock.get(f"{BASE}/Condition").respond(json=bundle())
            await run(request({"patient": PATIENT}, fhirAuthorization=None))
        assert "Authorization" not in route.calls.last.request.headers


@pytest.mark.anyio
class TestFailures:
    @pytest.mark.parametrize(
        ("status", "words"),
        [(401, "401"), (403, "403"), (404, "404"), (500, "HTTP 500")],
    )
    async def test_server_errors_are_412_naming_the_key(self, status: int, words: str) -> None:
        with respx.mock() as mock:
            mock.get(f"{BASE}/Condition").respond(status_code=status)
            with pytest.raises(PrefetchUnavailable) as info:
                await run(request({"patient": PATIENT}))
        issue = info.value.issues[0]
        assert issue.expression == "prefetch.conditions"
        assert words in issue.diagnostics

    async def test_read_of_missing_resource_is_no_data(self) -> None:
        with respx.mock() as mock:
            mock.get(f"{BASE}/Patient/p1").respond(status_code=404)
            resolved = await run(request({"conditions": None}))
        assert resolved.data["patient"] is None

    async def test_timeout(self) -> None:
        with respx.mock() as mock:
            mock.get(f"{BASE}/Condition").mock(side_effect=httpx.ReadTimeout("slow"))
            with pytest.raises(PrefetchUnavailable, match="could not be prefetched") as info:
                await run(request({"patient": PATIENT}))
        assert "in time" in info.value.issues[0].diagnostics

    async def test_connection_refused(self) -> None:
        with respx.mock() as mock:
            mock.get(f"{BASE}/Condition").mock(side_effect=httpx.ConnectError("down"))
            with pytest.raises(PrefetchUnavailable) as info:
                await run(request({"patient": PATIENT}))
        assert "could not be reached" in info.value.issues[0].diagnostics

    async def test_malformed_json(self) -> None:
        with respx.mock() as mock:
            mock.get(f"{BASE}/Condition").respond(content=b"<html>oops")
            with pytest.raises(PrefetchUnavailable) as info:
                await run(request({"patient": PATIENT}))
        assert "not JSON" in info.value.issues[0].diagnostics

    async def test_json_that_is_not_fhir(self) -> None:
        with respx.mock() as mock:
            mock.get(f"{BASE}/Condition").respond(json={"hello": 1})
            with pytest.raises(PrefetchUnavailable):
                await run(request({"patient": PATIENT}))

    async def test_redirect_is_not_followed(self) -> None:
        with respx.mock() as mock:
            mock.get(f"{BASE}/Condition").respond(
                status_code=302, headers={"Location": "http://169.254.169.254/"}
            )
            with pytest.raises(PrefetchUnavailable) as info:
                await run(request({"patient": PATIENT}))
        assert "redirect" in info.value.issues[0].diagnostics

    async def test_deadline_bounds_the_whole_fetch(self) -> None:
        import anyio

        async def slow(request: httpx.Request) -> httpx.Response:
            await anyio.sleep(5)
            return httpx.Response(200, json=bundle())

        limits = FetchLimits(timeout_s=10, deadline_s=0.2, max_pages=3, max_resources=100)
        # The cancelled call is not recorded as made, so do not insist on it.
        with respx.mock(assert_all_called=False) as mock:
            mock.get(f"{BASE}/Condition").mock(side_effect=slow)
            async with httpx.AsyncClient() as client:
                with anyio.fail_after(2):
                    with pytest.raises(PrefetchUnavailable) as info:
                        await resolve(
                            TEMPLATES, request({"patient": PATIENT}), CONTEXT, client, limits, ALLOW
                        )
        assert "within 0.2 s" in info.value.issues[0].diagnostics

    async def test_no_fhir_server(self) -> None:
        with pytest.raises(PrefetchUnavailable, match="could not"):
            await run(request({"patient": PATIENT}, fhirServer=None, fhirAuthorization=None))

    async def test_server_not_on_allowlist(self) -> None:
        req = request({"patient": PATIENT}, fhirServer="https://ehr.example.org/fhir")
        with pytest.raises(PrefetchUnavailable) as info:
            await run(req)
        assert "allowlist" in info.value.issues[0].diagnostics


@pytest.mark.anyio
class TestPaging:
    async def test_next_links_are_followed(self) -> None:
        with respx.mock() as mock:
            mock.get(f"{BASE}/Condition", params={"patient": "p1"}).respond(
                json=bundle(COND, next_url=f"{BASE}/page2")
            )
            mock.get(f"{BASE}/page2").respond(
                json=bundle({"resourceType": "Condition", "id": "c2"})
            )
            resolved = await run(request({"patient": PATIENT}))
        ids = [e["resource"]["id"] for e in resolved.data["conditions"]["entry"]]
        assert ids == ["c1", "c2"]

    async def test_paging_forever_stops_at_the_page_limit(self) -> None:
        with respx.mock() as mock:
            mock.get(f"{BASE}/Condition").respond(json=bundle(COND, next_url=f"{BASE}/more"))
            mock.get(f"{BASE}/more").respond(json=bundle(COND, next_url=f"{BASE}/more"))
            with pytest.raises(PrefetchUnavailable) as info:
                await run(request({"patient": PATIENT}))
        assert "pages" in info.value.issues[0].diagnostics

    async def test_next_link_to_another_host_is_not_followed(self) -> None:
        with respx.mock() as mock:
            mock.get(f"{BASE}/Condition").respond(
                json=bundle(COND, next_url="http://evil.example/steal")
            )
            with pytest.raises(PrefetchUnavailable) as info:
                await run(request({"patient": PATIENT}))
        assert "outside the FHIR server's base" in info.value.issues[0].diagnostics

    async def test_the_pages_after_a_sent_first_page_are_fetched(self) -> None:
        """A client MAY paginate prefetch (spec 2.0.1): the rest is fetched, with the token."""
        sent = {"patient": PATIENT, "conditions": bundle(COND, next_url=f"{BASE}/page2")}
        with respx.mock() as mock:
            page2 = mock.get(f"{BASE}/page2").respond(
                json=bundle({"resourceType": "Condition", "id": "c2"}, next_url=f"{BASE}/page3")
            )
            mock.get(f"{BASE}/page3").respond(
                json=bundle({"resourceType": "Condition", "id": "c3"})
            )
            resolved = await run(request(sent))
        assert page2.calls.last.request.headers["Authorization"] == "Bearer tok-123"
        whole = resolved.data["conditions"]
        assert [e["resource"]["id"] for e in whole["entry"]] == ["c1", "c2", "c3"]
        assert whole["link"] == []
        assert resolved.fetched == ("conditions",)

    @pytest.mark.parametrize(
        ("over", "why"),
        [
            ({"fhirServer": None, "fhirAuthorization": None}, "no fhirServer was given"),
            ({"fhirServer": "https://ehr.example.org/fhir"}, "not on this service's allowlist"),
        ],
    )
    async def test_a_sent_first_page_with_no_way_to_the_rest_is_412(
        self, over: dict[str, Any], why: str
    ) -> None:
        """Read as if it were all of the chart, a first page could hide a bone agent on the
        next: the call is refused, naming the key, as an omitted key would be."""
        sent = {"patient": PATIENT, "conditions": bundle(COND, next_url=f"{BASE}/page2")}
        with pytest.raises(PrefetchUnavailable) as info:
            await run(request(sent, **over))
        [issue] = info.value.issues
        assert issue.expression == "prefetch.conditions"
        assert issue.diagnostics.startswith("prefetch conditions was sent as the first page")
        assert why in issue.diagnostics

    @pytest.mark.parametrize(
        ("next_url", "words"),
        [
            ("http://evil.example/steal", "outside the FHIR server's base"),
            (f"{BASE}/page2", "HTTP 500"),
        ],
    )
    async def test_a_sent_first_page_whose_rest_fails_is_412(
        self, next_url: str, words: str
    ) -> None:
        sent = {"patient": PATIENT, "conditions": bundle(COND, next_url=next_url)}
        with respx.mock(assert_all_called=False) as mock:
            mock.get(f"{BASE}/page2").respond(status_code=500)
            with pytest.raises(PrefetchUnavailable) as info:
                await run(request(sent))
        assert info.value.issues[0].expression == "prefetch.conditions"
        assert words in info.value.issues[0].diagnostics

    async def test_a_sent_first_page_counts_against_the_page_limit(self) -> None:
        sent = {"patient": PATIENT, "conditions": bundle(COND, next_url=f"{BASE}/more")}
        with respx.mock() as mock:
            more = mock.get(f"{BASE}/more").respond(json=bundle(COND, next_url=f"{BASE}/more"))
            with pytest.raises(PrefetchUnavailable) as info:
                await run(request(sent))
        assert "more than 3 pages" in info.value.issues[0].diagnostics
        assert more.call_count == 2  # pages 2 and 3; the sent one was the first

    async def test_a_sent_bundle_without_a_next_link_is_not_fetched(self) -> None:
        sent = {
            "patient": PATIENT,
            "conditions": bundle(COND) | {"link": [{"relation": "self", "url": f"{BASE}/x"}]},
        }
        with respx.mock():  # any request would fail: nothing is mocked
            resolved = await run(request(sent))
        assert resolved.data == sent
        assert resolved.fetched == ()

    async def test_a_sent_bundle_holding_fewer_results_than_its_total_is_fetched_whole(
        self,
    ) -> None:
        """Bundle.total 3, one result sent and no next link (the pages after the first, or
        the links, dropped on the way): the key is fetched whole, as if it were not sent."""
        short = bundle(COND) | {"total": 3}
        c2, c3 = ({"resourceType": "Condition", "id": i} for i in ("c2", "c3"))
        with respx.mock() as mock:
            mock.get(f"{BASE}/Condition", params={"patient": "p1"}).respond(
                json=bundle(COND, c2, c3) | {"total": 3}
            )
            resolved = await run(request({"patient": PATIENT, "conditions": short}))
        assert [e["resource"]["id"] for e in resolved.data["conditions"]["entry"]] == [
            "c1",
            "c2",
            "c3",
        ]
        assert resolved.fetched == ("conditions",)

    async def test_a_sent_bundle_short_of_its_total_with_no_server_is_412(self) -> None:
        short = bundle(COND) | {"total": 3}
        req = request(
            {"patient": PATIENT, "conditions": short}, fhirServer=None, fhirAuthorization=None
        )
        with pytest.raises(PrefetchUnavailable) as info:
            await run(req)
        [issue] = info.value.issues
        assert issue.diagnostics == (
            "prefetch conditions holds 1 of the 3 results its Bundle.total counts, and no "
            "fhirServer was given to fetch them all"
        )

    @pytest.mark.parametrize(
        "sent",
        [
            bundle(COND) | {"total": 1},
            bundle() | {"total": 0},
            # Included resources are not results: total counts the matches only.
            {
                "resourceType": "Bundle",
                "type": "searchset",
                "total": 1,
                "entry": [
                    {"resource": COND, "search": {"mode": "match"}},
                    {"resource": PATIENT, "search": {"mode": "include"}},
                ],
            },
            bundle(COND) | {"total": "3"},  # not a number: read as sent
        ],
    )
    async def test_a_sent_bundle_holding_its_total_is_read_as_sent(
        self, sent: dict[str, Any]
    ) -> None:
        with respx.mock():  # any request would fail: nothing is mocked
            resolved = await run(request({"patient": PATIENT, "conditions": sent}))
        assert resolved.data["conditions"] == sent
        assert resolved.fetched == ()

    async def test_a_page_whose_entry_is_not_a_list_is_412(self) -> None:
        """Read as no entries, it would lose the page's resources without a word."""
        with respx.mock() as mock:
            mock.get(f"{BASE}/Condition").respond(
                json={"resourceType": "Bundle", "type": "searchset", "entry": {"resource": COND}}
            )
            with pytest.raises(PrefetchUnavailable) as info:
                await run(request({"patient": PATIENT}))
        assert "entry that is not a list" in info.value.issues[0].diagnostics

    async def test_patient_reference_form_fallback(self) -> None:
        """Servers differ on patient=<id> versus patient=Patient/<id>."""
        with respx.mock() as mock:
            mock.get(f"{BASE}/Condition", params={"patient": "p1"}).respond(status_code=400)
            mock.get(f"{BASE}/Condition", params={"patient": "Patient/p1"}).respond(
                json=bundle(COND)
            )
            resolved = await run(request({"patient": PATIENT}))
        assert resolved.data["conditions"]["entry"][0]["resource"]["id"] == "c1"


def outcome(severity: str) -> dict[str, Any]:
    """A searchset entry in which the server says how its search went."""
    issue = {"severity": severity, "code": "timeout", "diagnostics": "one shard did not answer"}
    return {
        "resource": {"resourceType": "OperationOutcome", "issue": [issue]},
        "search": {"mode": "outcome"},
    }


@pytest.mark.anyio
class TestSearchOutcomes:
    """A searchset that says, in an OperationOutcome entry, that its search failed is not the
    whole chart (CDS Hooks 2.0.1: services SHOULD check prefetched data for OperationOutcomes);
    read as sent, the part left out could hide a bone agent."""

    @pytest.mark.parametrize("severity", ["error", "fatal"])
    async def test_a_sent_bundle_reporting_a_failed_search_is_fetched_whole(
        self, severity: str
    ) -> None:
        failed = bundle(COND) | {"entry": [{"resource": COND}, outcome(severity)]}
        c2 = {"resourceType": "Condition", "id": "c2"}
        with respx.mock() as mock:
            mock.get(f"{BASE}/Condition", params={"patient": "p1"}).respond(json=bundle(COND, c2))
            resolved = await run(request({"patient": PATIENT, "conditions": failed}))
        assert [e["resource"]["id"] for e in resolved.data["conditions"]["entry"]] == ["c1", "c2"]
        assert resolved.fetched == ("conditions",)

    async def test_a_sent_bundle_reporting_a_failed_search_with_no_server_is_412(self) -> None:
        failed = bundle(COND) | {"entry": [{"resource": COND}, outcome("error")]}
        req = request(
            {"patient": PATIENT, "conditions": failed}, fhirServer=None, fhirAuthorization=None
        )
        with pytest.raises(PrefetchUnavailable) as info:
            await run(req)
        [issue] = info.value.issues
        assert issue.expression == "prefetch.conditions"
        assert issue.diagnostics == (
            "prefetch conditions holds an OperationOutcome saying its search failed (an error "
            "issue), and no fhirServer was given to fetch it again"
        )

    @pytest.mark.parametrize("severity", ["warning", "information", None])
    async def test_a_sent_bundle_with_an_outcome_that_is_no_failure_is_read_as_sent(
        self, severity: str | None
    ) -> None:
        sent = bundle(COND) | {"entry": [{"resource": COND}, outcome(str(severity))]}
        if severity is None:  # an issue without a severity says no failure either
            del sent["entry"][1]["resource"]["issue"][0]["severity"]
        with respx.mock():  # any request would fail: nothing is mocked
            resolved = await run(request({"patient": PATIENT, "conditions": sent}))
        assert resolved.data["conditions"] == sent
        assert resolved.fetched == ()

    @pytest.mark.parametrize("page", [1, 2])
    async def test_a_fetched_page_reporting_a_failed_search_is_412(self, page: int) -> None:
        failed = bundle(COND) | {"entry": [{"resource": COND}, outcome("error")]}
        with respx.mock(assert_all_called=False) as mock:
            first = failed if page == 1 else bundle(COND, next_url=f"{BASE}/page2")
            mock.get(f"{BASE}/Condition").respond(json=first)
            page2 = mock.get(f"{BASE}/page2").respond(json=failed)
            with pytest.raises(PrefetchUnavailable) as info:
                await run(request({"patient": PATIENT}))
        [issue] = info.value.issues
        assert issue.expression == "prefetch.conditions"
        assert "search reported an error (an OperationOutcome)" in issue.diagnostics
        assert page2.call_count == page - 1  # the first page's failure asks for no more


MEDS = {"medications": "MedicationStatement?patient={{context.patientId}}"}
XGEVA = {"resourceType": "Medication", "id": "m1", "code": {"text": "Xgeva 120 mg"}}


def statement(sid: str, reference: str, **ref: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationStatement",
        "id": sid,
        "status": "active",
        "subject": {"reference": "Patient/p1"},
        "medicationReference": {"reference": reference, **ref},
    }


@pytest.mark.anyio
class TestReferencedMedications:
    """A server may ignore `_include`: the Medications the records name without a display are
    fetched in one search, and their absence never fails the call."""

    async def test_the_medications_not_sent_are_searched_once(self) -> None:
        statements = bundle(
            statement("s1", "Medication/m1"),
            statement("s2", f"{BASE}/Medication/m2"),
            statement("s3", "Medication/m3", display="Herceptin"),  # read by its name
            statement("s4", "#contained"),
            statement("s5", "Medication/m1"),
        )
        with respx.mock() as mock:
            mock.get(f"{BASE}/MedicationStatement").respond(json=statements)
            search = mock.get(f"{BASE}/Medication", params={"_id": "m1,m2"}).respond(
                json=bundle(XGEVA)
            )
            resolved = await run(request({}), MEDS)
        assert search.call_count == 1
        assert resolved.data["referencedMedications"]["entry"][0]["resource"] == XGEVA
        assert resolved.fetched == ("medications",)

    async def test_medications_sent_beside_their_records_are_not_searched(self) -> None:
        sent = {"medications": bundle(statement("s1", "Medication/m1"), XGEVA)}
        with respx.mock(assert_all_called=False) as mock:
            route = mock.route(host="127.0.0.1")
            resolved = await run(request(sent), MEDS)
        assert not route.called
        assert "referencedMedications" not in resolved.data

    async def test_a_medication_sent_under_another_key_is_not_searched(self) -> None:
        sent = {
            "medications": bundle(statement("s1", "Medication/m1")),
            "conditions": bundle(COND, XGEVA),
        }
        with respx.mock(assert_all_called=False) as mock:
            route = mock.route(host="127.0.0.1")
            await run(request(sent), MEDS | {"conditions": TEMPLATES["conditions"]})
        assert not route.called

    async def test_a_draft_orders_medication_is_searched_for_too(self) -> None:
        draft = statement("d1", "Medication/m1") | {
            "resourceType": "MedicationRequest",
            "status": "draft",
            "intent": "order",
        }
        context = CONTEXT | {"draftOrders": bundle(draft)}
        req = request({"medications": bundle()}, context=context)
        with respx.mock() as mock:
            search = mock.get(f"{BASE}/Medication", params={"_id": "m1"}).respond(
                json=bundle(XGEVA)
            )
            async with httpx.AsyncClient() as client:
                resolved = await resolve(MEDS, req, context, client, LIMITS, ALLOW)
        assert search.call_count == 1
        assert resolved.data["referencedMedications"]["entry"][0]["resource"] == XGEVA

    async def test_no_search_once_the_calls_fetch_deadline_is_spent(self) -> None:
        """CDS_FETCH_DEADLINE_S bounds both rounds: with none of it left, nothing is searched."""
        sent = {"medications": bundle(statement("s1", "Medication/m1"))}
        spent = FetchLimits(timeout_s=0.5, deadline_s=0.0, max_pages=3, max_resources=100)
        with respx.mock(assert_all_called=False) as mock:
            route = mock.route(host="127.0.0.1")
            async with httpx.AsyncClient() as client:
                resolved = await resolve(MEDS, request(sent), CONTEXT, client, spent, ALLOW)
        assert not route.called
        assert "referencedMedications" not in resolved.data

    async def test_a_failed_search_leaves_the_records_to_be_named(self) -> None:
        sent = {"medications": bundle(statement("s1", "Medication/m1"))}
        with respx.mock() as mock:
            mock.get(f"{BASE}/Medication").respond(status_code=403)
            resolved = await run(request(sent), MEDS)
        assert "referencedMedications" not in resolved.data
        assert resolved.data["medications"] == sent["medications"]

    async def test_no_search_without_an_allowed_server(self) -> None:
        sent = {"medications": bundle(statement("s1", "Medication/m1"))}
        with respx.mock(assert_all_called=False) as mock:
            route = mock.route(host="127.0.0.1")
            resolved = await run(request(sent, fhirServer="http://127.0.0.2:9/fhir"), MEDS)
        assert not route.called
        assert "referencedMedications" not in resolved.data


@pytest.mark.parametrize(
    ("server", "allowed"),
    [
        ("http://127.0.0.1:8090/fhir", True),
        ("http://127.0.0.1/fhir", True),
        ("http://localhost:@evil.example/fhir", False),
        ("http://127.0.0.1.evil.example/fhir", False),
        ("http://user:pw@127.0.0.1/fhir", False),
        ("https://127.0.0.1/fhir", False),
        ("not a url", False),
    ],
)
def test_server_allowlist_compares_parsed_urls(server: str, allowed: bool) -> None:
    assert server_allowed(server, ("http://127.0.0.1",)) is allowed


def test_allowlist_entry_with_path_and_port() -> None:
    entry = ("https://ehr.example.org:8443/fhir",)
    assert server_allowed("https://ehr.example.org:8443/fhir/R4", entry)
    assert not server_allowed("https://ehr.example.org:8443/fhirx", entry)
    assert not server_allowed("https://ehr.example.org/fhir", entry)
