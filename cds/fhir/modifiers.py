"""Modifier elements: what can turn a resource's meaning around, so it is never read as if it
did not.

FHIR R4 marks some elements as modifiers: `MedicationRequest.doNotPerform` and
`ServiceRequest.doNotPerform` (true: the request is *not* to give the medicine, *not* to do the
service) and every `modifierExtension` ("Applications processing a resource are required to
check for modifier extensions", R4 BackboneElement). Read as ordinary, an order not to give
zoledronic acid was an oncologic BMA on course (no R1, a calcium card for a drug not given),
and a creatinine under an extension saying its result is not valid set a renal dose. The
service understands no modifier extension, so a resource carrying one, at its root or in an
element the records read, is left out and named (R0b; a draft order: R0, not checked); so is
a request not to do a service, and any draft not to perform. The chart's orders not to give a
medicine are read as such (`MedicationRecord.do_not_perform`): never a course of it, and its
medicine is not offered while the order is in force.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cds.fhir.elements import display_of, json_list
from cds.fhir.medication_names import referenced_medication
from cds.said import Said, say

# The backbone elements `cds.fhir.records` reads, by resource type: a modifier extension on
# one changes what the record would say. Dosage.timing is a Timing, a BackboneElement in R4.
_READ_BACKBONES: dict[str, tuple[str, ...]] = {
    "Observation": ("component", "referenceRange"),
    "MedicationRequest": ("dosageInstruction", "dispenseRequest"),
    "MedicationStatement": ("dosage",),
    "MedicationAdministration": ("dosage",),
    "Specimen": ("collection",),
}
_NONE: tuple[str, ...] = ()
_DOSAGES = frozenset({"dosageInstruction", "dosage"})
_UNCONFIRMED = frozenset({"unconfirmed", "provisional", "differential"})
# Only requests can be requests not to act (R4: MedicationRequest and ServiceRequest).
_REQUESTS = frozenset({"MedicationRequest", "ServiceRequest"})


def modifier_of(
    raw: Mapping[str, Any],
    *,
    orders_not_to_give_read: bool = False,
    medications: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[str, Said] | None:
    """Where the resource carries a modifier that changes what it means, and what it says; None
    when it carries none the records would read past. The chart's reader reads an order not to
    give a medicine (`orders_not_to_give_read`): its medicine is then not offered. With the
    Medications sent (`medications`), the one a record references is checked too: it says what
    the record's medicine is."""
    rtype = raw["resourceType"]
    # A draft order is not field-checked: "true" as text is taken at its word, not as false.
    if (
        "doNotPerform" in raw
        and rtype in _REQUESTS
        and raw["doNotPerform"] is not False
        and not (orders_not_to_give_read and rtype == "MedicationRequest")
    ):
        what = _named(raw)
        said = (
            say("request-not-to-perform", what=what)
            if what
            else say("request-not-to-perform-unnamed")
        )
        return "doNotPerform", said
    if "modifierExtension" in raw:
        return "modifierExtension", _extension(raw["modifierExtension"])
    # Inline: this runs for every resource read, and most send none of these elements.
    for name in _READ_BACKBONES.get(rtype, _NONE):
        if name in raw and (found := _in_backbone(name, raw[name])) is not None:
            return found[0], _extension(found[1])
    if medications is not None and "medicationReference" in raw:
        medicine = referenced_medication(raw, medications)
        if medicine is not None and (hit := _extension_at(medicine)) is not None:
            return "medicationReference", _extension(hit[1], of_medication=True)
    return None


def _extension_at(medicine: Mapping[str, Any]) -> tuple[str, object] | None:
    """Where a modifier extension stands in what the records read of a Medication, and it."""
    if "modifierExtension" in medicine:
        return "modifierExtension", medicine["modifierExtension"]
    if "ingredient" in medicine:
        return _in_backbone("ingredient", medicine["ingredient"])
    return None


def _in_backbone(name: str, value: object) -> tuple[str, object] | None:
    """A modifier extension in a backbone element (or, in a dosage, its timing): where, and it."""
    many = isinstance(value, list)
    elements: list[object] = value if isinstance(value, list) else [value]
    for i, element in enumerate(elements):
        if not isinstance(element, dict):
            continue
        if "modifierExtension" in element:
            found, where = element, ""
        else:
            timing = element.get("timing") if name in _DOSAGES else None
            if not (isinstance(timing, dict) and "modifierExtension" in timing):
                continue
            found, where = timing, ".timing"
        at = f"{name}[{i}]" if many else name
        return f"{at}{where}.modifierExtension", found["modifierExtension"]
    return None


def unconfirmed_status(raw: Mapping[str, Any]) -> str | None:
    """A Condition's verificationStatus when it says the condition is not established. The
    element is a modifier too: 'refuted' and 'entered-in-error' withdraw the record (the screen
    drops it); 'unconfirmed', 'provisional' and 'differential' leave it a possibility."""
    status = raw.get("verificationStatus")
    if not isinstance(status, dict):
        return None
    for coding in json_list(status.get("coding")):
        code = coding.get("code") if isinstance(coding, dict) else None
        if isinstance(code, str) and code in _UNCONFIRMED:  # a list is no status (unhashable)
            return code
    return None


def _named(raw: Mapping[str, Any]) -> str | None:
    """What a request names, as sent: its text, else a coding's display, else its reference's."""
    for key in ("medicationCodeableConcept", "code"):
        element = raw.get(key)
        if not isinstance(element, dict):
            continue
        if isinstance(element.get("text"), str):
            return str(element["text"])
        for coding in json_list(element.get("coding")):
            if isinstance(coding, dict) and isinstance(coding.get("display"), str):
                return str(coding["display"])
    return display_of(raw.get("medicationReference"))


def _extension(extensions: object, *, of_medication: bool = False) -> Said:
    """The modifier extensions' URLs, for the integrator who must map them (never PHI)."""
    urls = sorted(
        {
            e["url"]
            for e in (extensions if isinstance(extensions, list) else [extensions])
            if isinstance(e, dict) and isinstance(e.get("url"), str)
        }
    )
    if not urls:
        if of_medication:
            return say("medication-modifier-extension-no-url")
        return say("modifier-extension-no-url")
    if of_medication:
        return say("medication-modifier-extension", urls=", ".join(urls))
    return say("modifier-extension", urls=", ".join(urls))
