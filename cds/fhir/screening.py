"""Which resources a rule could read: a cheap pass over raw JSON before any check.

Most of a chart (vital signs, other labs, unrelated medications) is never read; screening by
resource type, status and the codes our value sets name lets it pass without a check or a record.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from cds.fhir.elements import as_text, concept
from cds.fhir.medication_names import medication_concept
from cds.fhir.records import allergens
from cds.terminology import Concept, Terminology

RELEVANT_TYPES = frozenset(
    {
        "Patient",
        "Condition",
        "Observation",
        "MedicationStatement",
        "MedicationRequest",
        "MedicationAdministration",
        "Medication",
        "Procedure",
        "ServiceRequest",
        "Encounter",
        "AllergyIntolerance",
        "Specimen",
    }
)
MEDICATION_TYPES = ("MedicationStatement", "MedicationRequest", "MedicationAdministration")
FINAL_OBSERVATION = frozenset({"final", "amended", "corrected"})
# Results not known to be final: 'preliminary', and 'unknown' (FHIR: the source does not know
# which status applies). Never used; a lab among them is read to be named when newer.
NOT_YET_FINAL_OBSERVATION = frozenset({"preliminary", "unknown"})

CONDITION_SETS = (
    "breast-cancer",
    "breast-cancer-history",
    "secondary-neoplasm",
    "cord-compression",
    "heart-failure",
    "interstitial-lung-disease",
    "mronj",
    "dialysis",
)
# Tumour markers (F4) and the labs of F8/F9; the prefetch templates use the same lists.
MARKER_SETS = (
    "her2-interpretation",
    "her2-ihc",
    "her2-ish",
    "her2-ish-ratio",
    "her2-ish-copies",
    "her2-serum",
    "er-status",
    "er-percent",
    "pr-status",
    "pr-percent",
)
# The answer sets the receptor interpretation reads (F4, §5).
RESULT_SETS = ("result-positive", "result-negative", "result-equivocal", "result-unknown")
LAB_SETS = ("creatinine", "calcium", "albumin", "body-weight", "creatinine-clearance", "egfr")
# Staging and history of metastatic cancer (F2 b/c, clinical-logic C8).
STAGING_SETS = (
    "stage-group",
    "m-category",
    "history-of-metastatic-cancer",
    "history-of-metastatic-site",
)
OBSERVATION_SETS = (*MARKER_SETS, "disease-status", *LAB_SETS, "lvef", *STAGING_SETS)
# Lab and pathology tests the cards suggest, read when ordered and not yet resulted (§3c D20).
ORDERED_LAB_SETS = (
    "creatinine",
    "calcium",
    "albumin",
    "her2-ihc",
    "her2-ish",
    "her2-ihc-score-request",
)
SERVICE_SETS = (
    *ORDERED_LAB_SETS,
    "dental-evaluation",
    "radiation-oncology",
    "echocardiogram",
    "biopsy",
    "dialysis",
    "invasive-dental",
    "spine-surgery",
)


_WITHDRAWN = frozenset({"entered-in-error", "refuted"})


def entered_in_error(raw: Mapping[str, Any]) -> bool:
    if raw.get("status") == "entered-in-error":
        return True
    status = raw.get("verificationStatus")
    if not isinstance(status, dict) or not isinstance(codings := status.get("coding"), list):
        return False
    # A code that is not a string (a list) is no status: looked up in a set, it raised.
    return any(
        isinstance(c, dict) and isinstance(code := c.get("code"), str) and code in _WITHDRAWN
        for c in codings
    )


class Screening:
    def __init__(self, terminology: Terminology) -> None:
        self.t = terminology
        self.conditions = terminology.screen(CONDITION_SETS)
        self.observations = terminology.screen(OBSERVATION_SETS)
        self.labs = terminology.screen((*LAB_SETS, "lvef"))
        self.markers = terminology.screen(MARKER_SETS)
        self.services = terminology.screen(SERVICE_SETS)
        condition_sets = [terminology[v] for v in CONDITION_SETS]
        self._confirmed_only = tuple(vs for vs in condition_sets if vs.confirmed_only)
        self._suspicion_counts = tuple(vs for vs in condition_sets if not vs.confirmed_only)

    def needs_confirmation(self, code: Concept) -> bool:
        """A Condition read only once confirmed: a diagnosis a treatment card starts from
        (breast cancer, a metastasis), and nothing else the rules read. A suspected ILD, cord
        compression or heart failure still counts: the cards they raise are safety checks."""
        return any(vs.matches(code) for vs in self._confirmed_only) and not any(
            vs.matches(code) for vs in self._suspicion_counts
        )

    def relevant(
        self,
        raw: Mapping[str, Any],
        medications: Mapping[str, Any],
        unmatched: list[Mapping[str, Any]],
    ) -> bool:
        """Whether a rule could read the resource. A medication record that matches no drug
        the rules know goes into `unmatched`: it may name no medicine at all (the reader names
        those), and the test is made here, where only medication records arrive."""
        rtype = raw["resourceType"]
        if rtype in {"Patient", "Specimen"}:
            return True
        if rtype == "Condition":
            return self.conditions.matches(concept(raw.get("code")))
        if rtype == "Observation":
            status = as_text(raw.get("status"))
            if status in FINAL_OBSERVATION:
                return self.observations.matches(concept(raw.get("code")))
            # A preliminary lab is read only to be named when it is newer than the final one,
            # a preliminary tumour marker to be named (and to say a result is on its way).
            if status not in NOT_YET_FINAL_OBSERVATION:
                return False
            code = concept(raw.get("code"))
            return self.labs.matches(code) or self.markers.matches(code)
        if rtype in MEDICATION_TYPES:
            if self.t.medications.match(medication_concept(raw, medications), self.t.rxnorm):
                return True
            unmatched.append(raw)
            return False
        if rtype in {"Procedure", "ServiceRequest", "Encounter"}:
            codes = [raw.get("code")] if rtype != "Encounter" else []
            types = raw.get("type")
            codes += (types if isinstance(types, list) else [types]) + [raw.get("serviceType")]
            # An element not sent matches nothing: only the ones sent are looked up.
            return any(self.services.matches(concept(c)) for c in codes if c is not None)
        if rtype == "AllergyIntolerance":
            return bool(allergens(concept(raw.get("code")), self.t))
        return False


@functools.lru_cache(maxsize=4)
def screening(terminology: Terminology) -> Screening:
    """One screening index per loaded terminology, built on first use, not per call."""
    return Screening(terminology)
