"""FHIR elements as the rules read them: CodeableConcepts and their codings."""

from __future__ import annotations

from datetime import date

import pytest

from cds.fhir.elements import (
    as_number,
    choice_period,
    concept,
    fhir_date,
    local_reference,
    month_end,
    period_end,
)
from cds.fhir.records import allergens
from cds.terminology import Terminology

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"


def icd(code: str, display: str | None = None) -> dict[str, object]:
    coding: dict[str, object] = {"system": ICD10CM, "code": code}
    if display is not None:
        coding["display"] = display
    return {"coding": [coding]}


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        ("C79.51", "C79.51"),  # as the code system writes it
        ("C7951", "C79.51"),  # the period dropped, as billing feeds do
        ("c79.51", "C79.51"),
        ("c7951", "C79.51"),
        ("C50911", "C50.911"),
        ("Z992", "Z99.2"),
        ("C50", "C50"),  # a category: no period to restore
        ("C7951X12", "C7951X12"),  # too long for ICD-10-CM: left as sent, matching nothing
        ("79.51", "79.51"),
    ],
)
def test_an_icd10cm_code_is_read_with_its_period(sent: str, read: str) -> None:
    [coding] = concept(icd(sent)).codings
    assert coding.code == read


def test_other_systems_codes_are_read_as_sent() -> None:
    raw = {"coding": [{"system": "http://snomed.info/sct", "code": "94222008"}]}
    assert concept(raw).codings[0].code == "94222008"
    local = {"coding": [{"system": "urn:oid:1.2.3", "code": "c7951"}]}
    assert concept(local).codings[0].code == "c7951"


@pytest.mark.parametrize(
    ("code", "value_set"),
    [
        ("C7951", "bone-metastasis"),
        ("C50911", "breast-cancer"),
        ("G9520", "cord-compression"),
        ("z992", "dialysis"),
    ],
)
def test_a_dotless_icd10cm_code_is_in_the_value_sets_of_its_code(
    t: Terminology, code: str, value_set: str
) -> None:
    """Codes decide before text: read as an unknown code, a dotless bone metastasis or cord
    compression was passed over (no R1, no R9b), its words never read."""
    assert t[value_set].matches(concept(icd(code)))


@pytest.mark.parametrize(
    "system",
    [
        "http://loinc.org",
        "http://loinc.org/",
        "https://loinc.org",
        "https://loinc.org/",
        "urn:oid:2.16.840.1.113883.6.1",
    ],
)
def test_a_system_the_rules_read_is_known_however_it_is_written(
    t: Terminology, system: str
) -> None:
    """A creatinine under LOINC written with https or a closing slash is a creatinine: read as
    an unknown system, 137 of 154 scenarios' cards changed."""
    raw = {"coding": [{"system": system, "code": "2160-0"}]}
    [coding] = concept(raw).codings
    assert coding.system == "http://loinc.org"
    assert t["creatinine"].matches(concept(raw))


def test_another_system_is_not_taken_for_one_the_rules_read() -> None:
    raw = {"coding": [{"system": "http://loinc.org/fhir", "code": "2160-0"}]}
    assert concept(raw).codings[0].system == "http://loinc.org/fhir"


@pytest.mark.parametrize(
    ("allergy", "drugs"),
    [
        ({"text": "Bisphosphonates"}, ("zoledronic acid", "pamidronate", "ibandronate")),
        ({"text": "aminobisphosphonate"}, ("zoledronic acid", "pamidronate", "ibandronate")),
        (
            {"text": "Taxanes (anaphylaxis)"},
            ("docetaxel", "paclitaxel", "paclitaxel protein-bound"),
        ),
        ({"text": "Zometa"}, ("zoledronic acid",)),
        ({"text": "Bisphosphonate-related osteonecrosis"}, ()),  # a hyphenated word: no class
        ({"text": "Penicillin"}, ()),
    ],
)
def test_an_allergy_names_its_drugs_or_its_drug_class(
    t: Terminology, allergy: dict[str, object], drugs: tuple[str, ...]
) -> None:
    """Allergies are often recorded to a drug class: 'Bisphosphonates' is zoledronic acid,
    pamidronate and ibandronate (it was read as naming no drug, and both were offered)."""
    assert allergens(concept(allergy), t) == drugs


def test_a_class_name_on_a_medication_record_names_no_drug(t: Terminology) -> None:
    """Which bisphosphonate a record of 'bisphosphonates' was is unknown: no exposure."""
    assert t.medications.match(concept({"text": "Bisphosphonates"}), t.rxnorm) == ()


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        (4, 4.0),
        (2.5, 2.5),
        ("120", 120.0),
        (" 4.0 ", 4.0),
        (True, None),
        ("four", None),
        ("NaN", None),
        ("Infinity", None),
        ("-Infinity", None),
        ("1e400", None),
        ("9" * 400, None),
        (10**400, None),  # an int beyond a double: not from orjson, never a crash
        (None, None),
        ([4], None),
    ],
)
def test_a_number_is_read_only_when_finite(raw: object, number: float | None) -> None:
    assert as_number(raw) == number


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        ("2024-05-01", date(2024, 5, 1)),
        ("2024-05-01T10:00:00+02:00", date(2024, 5, 1)),
        ("2024-05", date(2024, 5, 1)),
        ("0011-01-01", date(11, 1, 1)),
        ("9989-12-31", date(9989, 12, 31)),
        # Placeholders for "unknown" and "no end": no date (the rules' day arithmetic ran off
        # the calendar with them, a 500).
        ("9999-12-31", None),
        ("9999-12-31T23:59:59Z", None),
        ("9999", None),
        ("0001-01-01", None),
        ("0001-01", None),
        ("2024-02-30", None),
    ],
)
def test_a_date_at_the_calendars_ends_is_a_placeholder(sent: str, read: date | None) -> None:
    assert fhir_date(sent) == read


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        # FHIR R4 Period: the end includes any matching date/time, so a partial end falls on
        # the last day it may be.
        ("2026-04", date(2026, 4, 30)),
        ("2024-02", date(2024, 2, 29)),
        ("2023-02", date(2023, 2, 28)),
        ("2026", date(2026, 12, 31)),
        ("2026-04-03", date(2026, 4, 3)),
        ("2026-04-03T23:00:00-05:00", date(2026, 4, 3)),
        ("2026-13", None),
        ("9999-12", None),
        ("0001", None),
        ("April 2026", None),
        (None, None),
    ],
)
def test_a_periods_partial_end_is_its_last_day(sent: str | None, read: date | None) -> None:
    assert period_end(sent) == read


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        ("2026-04", date(2026, 4, 30)),
        ("2024-02", date(2024, 2, 29)),
        # a year is too long a span to count a dose's day from at either end: not read so
        ("2026", None),
        ("2026-04-03", None),
        ("2026-04-03T10:00:00Z", None),
        ("2026-13", None),
        (None, None),
    ],
)
def test_only_a_date_charted_by_its_month_has_a_month_end(
    sent: str | None, read: date | None
) -> None:
    assert month_end(sent) == read


def test_a_partial_period_spans_the_whole_of_its_month() -> None:
    sent = {"effectivePeriod": {"start": "2026-04", "end": "2026-04"}}
    assert choice_period(sent, "effective") == (date(2026, 4, 1), date(2026, 4, 30))
    # A single dateTime is a point, not a period: read on its first day, as before.
    assert choice_period({"effectiveDateTime": "2026-04"}, "effective") == (
        date(2026, 4, 1),
        date(2026, 4, 1),
    )


@pytest.mark.parametrize(
    ("reference", "local"),
    [
        ("Medication/m1", "Medication/m1"),
        ("https://ehr.example.org/fhir/Medication/m1", "Medication/m1"),
        ("https://ehr.example.org/fhir/Specimen/s.2/_history/4", "Specimen/s.2"),
        ("Medication/m1/_history/2", "Medication/m1"),
        ("#med", "#med"),
        (
            "urn:uuid:5f3c1c52-7f1e-4f5e-9a1e-1d2c3b4a5f6e",
            "urn:uuid:5f3c1c52-7f1e-4f5e-9a1e-1d2c3b4a5f6e",
        ),
        ("m1", "m1"),
        ("https://ehr.example.org/fhir/", "https://ehr.example.org/fhir/"),
        (
            "https://ehr.example.org/fhir/medication/m1",
            "https://ehr.example.org/fhir/medication/m1",
        ),
    ],
)
def test_a_reference_is_read_as_type_and_id(reference: str, local: str) -> None:
    """Absolute and versioned references name the resource sent as `Type/id`; the forms that
    name no such resource (contained, urn, a bare id, no type) are kept as written."""
    assert local_reference(reference) == local
