"""Which medicine a medication record names: its code and text, or the Medication its
reference names (contained, or sent beside it); and why none is named, when none is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cds.fhir.elements import NO_CONCEPT, concept, display_of, json_list, reference_of
from cds.said import Said, say
from cds.terminology import Coding, Concept


def medication_concept(
    raw: Mapping[str, Any], medications: Mapping[str, Mapping[str, Any]]
) -> Concept:
    if "medicationCodeableConcept" in raw:
        return concept(raw["medicationCodeableConcept"])
    if "medicationReference" not in raw:
        return NO_CONCEPT
    # A Reference may be a display alone: the medicine is then named by it.
    target = referenced_medication(raw, medications)
    if target is None:
        return Concept(text=display_of(raw.get("medicationReference")))
    base = concept(target.get("code"))
    extra: list[Coding] = []
    texts = [base.text or ""]
    for ing in json_list(target.get("ingredient")):
        if isinstance(ing, dict):
            item = concept(ing.get("itemCodeableConcept"))
            extra.extend(item.codings)
            texts.append(item.text or "")
    return Concept(
        codings=base.codings + tuple(extra), text=" ".join(t for t in texts if t) or None
    )


def referenced_medication(
    raw: Mapping[str, Any], medications: Mapping[str, Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The Medication a record's medicationReference names: contained in the record (#id), or
    sent beside it (by its reference, relative, absolute or to a version, or its id alone);
    None when it did not come."""
    ref = reference_of(raw.get("medicationReference"))
    if ref is None:
        return None
    if ref.startswith("#"):
        found = None
        for c in json_list(raw.get("contained")):
            if isinstance(c, dict) and c.get("id") == ref[1:]:
                found = c
        return found
    return medications.get(ref) or medications.get(f"Medication/{ref}")


def why_unnamed(medication: Concept, rxnorm: str, *, referenced: bool) -> Said | None:
    """Why nothing says which medicine a record is (a chart record is named on R0b, a draft on
    R0: never passed over as some other drug), or None when its name or an RxNorm code does
    (an RxNorm code the knowledge does not list is another drug: the code decides)."""
    if medication.all_text():
        return None
    if not medication.codings:
        return say("medication-reference-missing") if referenced else say("medication-none")
    if any(c.system == rxnorm for c in medication.codings):
        return None
    # Only codes of a system the rules do not read (NDC, a local code, an RxNorm URI misspelt
    # beyond https or a closing slash).
    systems = ", ".join(sorted({c.system for c in medication.codings if c.system}))
    return (
        say("medication-code-unread", systems=systems)
        if systems
        else say("medication-code-no-system")
    )
