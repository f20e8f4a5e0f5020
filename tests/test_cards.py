"""The card renderer's own text and uuid helpers give exactly what the standard library gives:
every card's uuid and every line of its text depend on them."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from string import Template
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from cds.cards import SUMMARY_LIMIT, _fill, _summary_within_limit, _uuid5, _uuid_text
from cds.tools.validation import check
from tests.conftest import ROOT


@given(namespace=st.binary(min_size=16, max_size=16), name=st.text())
def test_uuid5_is_the_standard_librarys(namespace: bytes, name: str) -> None:
    try:
        expected = uuid.uuid5(uuid.UUID(bytes=namespace), name)
    except UnicodeEncodeError:  # a lone surrogate: neither can hash it
        with pytest.raises(UnicodeEncodeError):
            _uuid5(namespace, name)
        return
    assert _uuid5(namespace, name) == expected.bytes
    assert _uuid_text(_uuid5(namespace, name)) == str(expected)


# Template texts built from the pieces that matter: literal text, $$, $name, ${name}, names
# with and without a value, and ill-formed dollars.
_PIECES = st.sampled_from(
    ["Dose ", "$dose", "${dose}", "$$", "$drug", "${drug}s", " mg", "$", "$1", "${", "{x}", "é"]
)
_VALUES = st.dictionaries(st.sampled_from(["dose", "drug", "other"]), st.text(max_size=5))


@given(pieces=st.lists(_PIECES, max_size=8), values=_VALUES, safe=st.booleans())
def test_fill_is_string_templates(pieces: list[str], values: dict[str, str], safe: bool) -> None:
    text = "".join(pieces)
    template = Template(text)
    try:
        expected = template.safe_substitute(values) if safe else template.substitute(values)
    except (KeyError, ValueError) as exc:
        with pytest.raises(type(exc)):
            _fill(text, values, safe=safe)
        return
    assert _fill(text, values, safe=safe) == expected


def test_fill_names_the_missing_value() -> None:
    with pytest.raises(KeyError, match="dose"):
        _fill("Give $dose of $drug", {"drug": "zoledronic acid"})
    assert _fill("Give $dose of $drug", {"drug": "x"}, safe=True) == "Give $dose of x"


@given(text=st.text(alphabet=st.sampled_from("ab ,:-"), max_size=300))
def test_a_summary_is_cut_under_140_characters_at_a_word(text: str) -> None:
    """CDS Hooks: summary SHALL be under 140 characters. A short one is kept as it is; a long
    one is a prefix of itself, cut at a space where there is one, with an ellipsis."""
    out = _summary_within_limit(text)
    assert len(out) <= SUMMARY_LIMIT
    if len(text) <= SUMMARY_LIMIT:
        assert out == text
    else:
        assert out.endswith("\u2026")
        assert text.startswith(out[:-1])


_R6C = Path(__file__).resolve().parent.parent / "fixtures" / "mbc-bone-order-sign"
_R6C_REQUEST = _R6C / "trastuzumab-and-pertuzumab-drafted-for-her2-negative-disease/request.json"


def test_a_card_listing_seven_drugs_keeps_its_summary_under_140(client: TestClient) -> None:
    """Seven HER2 drugs drafted for HER2-negative disease filled R6c's summary to 202
    characters, a card the spec forbids; it is cut, and the detail opens with all of it."""
    request: dict[str, Any] = json.loads(_R6C_REQUEST.read_text())
    entries = request["context"]["draftOrders"]["entry"]
    for i, name in enumerate(["Kadcyla", "tucatinib", "neratinib", "lapatinib", "margetuximab"]):
        extra = copy.deepcopy(entries[0])
        extra["resource"]["id"] = f"extra-{i}"
        extra["resource"]["medicationCodeableConcept"] = {"text": name}
        entries.append(extra)
    r = client.post("/cds-services/mbc-bone-order-sign", json=request)
    assert r.status_code == 200
    cards = r.json()["cards"]
    assert all(len(c["summary"]) <= SUMMARY_LIMIT for c in cards)
    [r6c] = [c for c in cards if c["summary"].startswith("Lapatinib and margetuximab")]
    assert r6c["summary"].endswith("\u2026")
    whole = r6c["detail"].split("\n\n")[0]
    assert whole.startswith("**Lapatinib and margetuximab and neratinib and pertuzumab")
    assert whole.endswith("indicated for HER2-positive breast cancer**")


@pytest.mark.parametrize(
    ("scenario", "label"),
    [
        ("tucatinib-drafted-at-600-mg-twice-daily", "Tukysa"),
        ("neratinib-drafted-in-grams", "Nerlynx"),
        ("lapatinib-drafted-at-its-letrozole-dose-with-capecitabine", "Tykerb"),
    ],
)
def test_a_card_about_one_drug_of_several_cites_that_drugs_label(
    client: TestClient, scenario: str, label: str
) -> None:
    """R6l judges three kinase inhibitors: each card's source is its own drug's label, and the
    other labels are not linked."""
    request = json.loads((_R6C / scenario / "request.json").read_text())
    r = client.post("/cds-services/mbc-bone-order-sign", json=request)
    [card] = [c for c in r.json()["cards"] if c["extension"]["org.cds-mbc-bone.rule"] == "R6l"]
    assert card["source"]["label"].startswith(label)
    assert card["source"]["url"].endswith(f"query={label.upper()}")
    assert "links" not in card


def test_a_variant_resting_on_a_trial_cites_the_trial(client: TestClient) -> None:
    """The US label gives lapatinib no dose with trastuzumab: the card about EGF104900's dose
    cites the trial's publication, not the Tykerb label its other cards cite."""
    scenario = _R6C / "lapatinib-drafted-with-trastuzumab-at-its-letrozole-dose"
    r = client.post(
        "/cds-services/mbc-bone-order-sign",
        json=json.loads((scenario / "request.json").read_text()),
    )
    [card] = [c for c in r.json()["cards"] if c["extension"]["org.cds-mbc-bone.rule"] == "R6l"]
    assert card["extension"]["org.cds-mbc-bone.variant"] == "above-trial-dose"
    assert card["source"]["label"].startswith("EGF104900")
    assert card["source"]["url"] == "https://doi.org/10.1200/JCO.2011.35.6725"
    assert card["source"]["topic"]["code"] == "her2-tki-dose"
    assert "- Draft order: trastuzumab (MedicationRequest/draft-tras)" in card["detail"]


def test_every_card_and_suggestion_of_an_answer_has_its_own_uuid(client: TestClient) -> None:
    """The spec's suggestion uuid 'uniquely identifies the suggestion that was accepted': every
    answer of the scenario library, each uuid once. (R6d offered 'keep-one' for each of two
    products drafted together, both under one uuid: feedback could not tell which was kept.)"""
    answers = 0
    for path in sorted((ROOT / "fixtures").rglob("request.json")):
        r = client.post(
            f"/cds-services/{path.parent.parent.name}", json=json.loads(path.read_text())
        )
        if r.status_code != 200:
            continue
        cards = r.json()["cards"]
        ids = [c["uuid"] for c in cards]
        ids += [s["uuid"] for c in cards for s in c.get("suggestions", [])]
        assert len(ids) == len(set(ids)), path.parent.name
        answers += 1
    assert answers > 250


def _draft_problems(request: dict[str, Any]) -> dict[str, set[str]]:
    """Each draft's own R4B problems, by its reference: an update carries the draft as sent."""
    entries = (request.get("context") or {}).get("draftOrders", {}).get("entry") or []
    resources = [e["resource"] for e in entries if isinstance(e.get("resource"), dict)]
    return {f"{r['resourceType']}/{r.get('id')}": set(check(r)) for r in resources}


def test_every_resource_a_card_suggests_is_valid_r4b(client: TestClient) -> None:
    """Every resource a suggestion creates or updates, over the scenario library, is valid
    fhir.resources R4B, but for what its draft already had (a client's own errors stay in the
    draft it gets back). A dose update of a draft that named its medicine by reference carried
    both medicationReference and medicationCodeableConcept, which R4 forbids."""
    checked = 0
    for path in sorted((ROOT / "fixtures").rglob("request.json")):
        request = json.loads(path.read_text())
        r = client.post(f"/cds-services/{path.parent.parent.name}", json=request)
        if r.status_code != 200:
            continue
        drafts = _draft_problems(request)
        for card in r.json()["cards"]:
            for action in (a for s in card.get("suggestions", []) for a in s["actions"]):
                if (resource := action.get("resource")) is None:
                    continue
                own = drafts.get(f"{resource['resourceType']}/{resource.get('id')}", set())
                assert set(check(resource)) <= own, (path.parent.name, action["description"])
                checked += 1
    assert checked > 500


@pytest.mark.parametrize("contained", [False, True])
def test_a_dose_update_names_the_medicine_once(client: TestClient, contained: bool) -> None:
    """A draft naming its medicine by reference - to a Medication of the Bundle, or contained
    in the draft - gets back a dose update naming it by the reduced order's code alone, and
    without the contained Medication nothing else refers to (R4 dom-3)."""
    scenario = (
        ROOT / "fixtures/mbc-bone-order-sign/zoledronic-order-medication-by-urn-in-the-draft-bundle"
    )
    request = json.loads((scenario / "request.json").read_text())
    entries = request["context"]["draftOrders"]["entry"]
    draft, medicine = entries[0]["resource"], entries[1]["resource"]
    if contained:
        draft["contained"] = [{**medicine, "id": "m"}]
        draft["medicationReference"] = {"reference": "#m"}
        del entries[1]
    r = client.post("/cds-services/mbc-bone-order-sign", json=request)
    [card] = [c for c in r.json()["cards"] if c["suggestions"][0]["actions"][0]["type"] == "update"]
    [action] = card["suggestions"][0]["actions"]
    update = action["resource"]
    assert action["type"] == "update"
    assert "medicationReference" not in update
    assert "contained" not in update
    assert update["medicationCodeableConcept"]["coding"][0]["code"] == "77655"
    assert check(update) == ()
