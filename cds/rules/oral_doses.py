"""An oral drug drafted above its label dose, a dose at a time or over a day (its dose times how
often the draft gives it): R6l's HER2 kinase inhibitors in mg, R6m's capecitabine in mg/m².

A label's dose may depend on the drug given with it (Tykerb: lapatinib 1,250 mg with
capecitabine, 1,500 mg with letrozole; capecitabine 750 mg/m² with neratinib by the Nerlynx
label), and where the drug's US label gives the pair no dose, a trial's does (lapatinib
1,000 mg with trastuzumab, EGF104900): the partner counts when it is drafted in the same order
or possibly in use (F5), and the card names its record. A dose at least `unit_error_factor`
times the label's reads as a unit error. A draft whose dose is in another unit or whose dose
is not given is not judged (one given but not read is named, with the dose that applies);
capecitabine's flat dose in mg, whose patient's body surface area
is not read, is judged against its label dose at the largest area the check allows
(`capecitabine_max_bsa_m2`).
"""

from __future__ import annotations

from typing import NamedTuple

from cds.facts import PatientFacts
from cds.facts.orders import DraftMedication, DraftOrders
from cds.fhir.elements import finite
from cds.parameters import OralDose, PartnerDose
from cds.rules import Decision
from cds.said import Said, say
from cds.terminology import MedClass

# The classes a partner that changes a dose belongs to (capecitabine, the kinase inhibitors and
# trastuzumab); card_book checks every partner of the dose tables is in one.
DOSE_PARTNER_CLASSES: tuple[MedClass, ...] = (
    "CAPE",
    "HER2_MAB",
    "HER2_TKI_TUC",
    "HER2_TKI_NER",
    "HER2_TKI_LAP",
)
ORAL_DOSE_BINDINGS = ("drug", "dose", "label", "label_dose")


def above_label(
    f: PatientFacts,
    drafts: DraftOrders,
    table: OralDose,
    unit_error_factor: float,
    max_area_m2: float | None = None,
) -> list[Decision]:
    """Each draft of the table's drug above its label dose → warning ('above-label', or
    'above-label-unless-inducer' for a label that raises the dose for a strong CYP3A4 inducer,
    or 'above-trial-dose' for a partner the US label gives no dose with); at least
    `unit_error_factor` times it → critical ('unit-error'). A dose per m² written as a
    flat dose in mg is judged, given `max_area_m2`, against the label's at that body surface
    area ('above-label-flat'): above it, it is above the label for any patient up to it. A
    drug the label gives once daily, its day's dose within the label but divided → warning
    ('divided-daily-dose'). A dose given but not read → information ('dose-unread')."""
    drafted = drafts.with_ingredient(table.drug)
    if not drafted:
        return []
    limit, limit_text, label, trial = table.dose, table.dose_text, table.label, None
    partner, partner_line, partner_ref = _partner(f, drafts, table)
    if partner is not None:
        limit, limit_text, trial = partner.dose, partner.dose_text, partner.trial
        label = partner.trial or partner.label or table.label
    out = []
    for o in drafted:
        d = _draft_dose(o, table, max_area_m2)
        if d is None and o.dose_note is not None:
            out.append(
                _unread(o, o.dose_note, table, (label, limit_text), partner_line, partner_ref)
            )
            continue
        variant = None if d is None else _variant(d, limit, table, trial, unit_error_factor)
        if d is None or variant is None:
            continue
        out.append(
            Decision(
                variant=variant,
                indicator="critical" if variant == "unit-error" else "warning",
                bindings={
                    "drug": table.drug,
                    "dose": d.text,
                    # The label that says once daily, whatever dose applies.
                    "label": table.label if variant == "divided-daily-dose" else label,
                    "label_dose": limit_text,
                },
                # The partner's record beside the draft: the dose judged rests on it; and how
                # a dose not written in mg was read.
                data=(
                    say("draft-order-ref", ref=o.ref),
                    *((o.dose_basis,) if o.dose_basis else ()),
                    *partner_line,
                ),
                refs=(o.ref, *partner_ref),
            )
        )
    return out


def _unread(
    o: DraftMedication,
    note: Said,
    table: OralDose,
    applies: tuple[str, str],
    partner_line: tuple[Said, ...],
    partner_ref: tuple[str, ...],
) -> Decision:
    """A draft whose dose is given but not read (a unit that is no mass, tablets of a product
    whose strength its code does not give, a range) → information: the dose that applies, so
    that the order is not passed as checked."""
    label, label_dose = applies
    return Decision(
        variant="dose-unread",
        indicator="info",
        bindings={"drug": table.drug, "dose": note, "label": label, "label_dose": label_dose},
        data=(
            say("draft-order-ref", ref=o.ref),
            say("draft-dose-unknown", why=note),
            *partner_line,
        ),
        refs=(o.ref, *partner_ref),
    )


class _DraftDose(NamedTuple):
    dose: float  # a dose at a time, in the table's unit or, `scale` not 1, flat in mg
    per_day: float | None  # over the day, when the draft's schedule says
    scale: float  # what the label dose is multiplied by to compare (a body surface area)
    text: str | Said  # as the card shows it


def _draft_dose(
    o: DraftMedication, table: OralDose, max_area_m2: float | None
) -> _DraftDose | None:
    """The draft's dose in the table's unit with a scale of 1; for a dose per m² written flat in
    mg, the mg dose with the largest area allowed as its scale; for a day's total per m² written
    alone ("2,000 mg/m2/day"), the dose as if taken in the label's doses a day. None: no dose
    to judge."""
    if table.unit == "mg":
        dose, unit, scale = o.dose_mg, "mg", 1.0
    elif o.dose_mg_per_m2 is not None or max_area_m2 is None:
        dose, unit, scale = o.dose_mg_per_m2, table.unit, 1.0
    else:
        dose, unit, scale = o.dose_mg, "mg", max_area_m2
    shown = "mg/m²" if unit == "mg/m2" else unit
    if dose is None and table.unit == "mg/m2" and o.day_mg_per_m2 is not None:
        day = o.day_mg_per_m2
        text = say("dose-a-day", per_day=f"{day:g} mg/m²")
        return _DraftDose(day / table.doses_per_day, day, 1.0, text)
    if dose is None:
        return None
    per_day = finite(dose / (o.every_weeks * 7)) if o.every_weeks else None
    if per_day is not None and per_day > dose:
        text = say("dose-per-day", dose=f"{dose:g} {shown}", per_day=f"{per_day:g} {shown}")
        return _DraftDose(dose, per_day, scale, text)
    return _DraftDose(dose, per_day, scale, f"{dose:g} {shown}")


def _variant(
    d: _DraftDose, limit: float, table: OralDose, trial: str | None, unit_error_factor: float
) -> str | None:
    """Which card the draft's dose gets, or None when it is within the label."""
    ceiling = limit * d.scale
    if d.dose > ceiling or (
        d.per_day is not None and d.per_day > ceiling * table.doses_per_day + 1e-6
    ):
        if d.dose >= ceiling * unit_error_factor:
            return "unit-error"
        if d.scale != 1.0:
            return "above-label-flat"
        if trial is not None:
            return "above-trial-dose"
        return "above-label-unless-inducer" if table.raised_for_cyp3a4_inducers else "above-label"
    if table.once_daily_only and d.per_day is not None and d.per_day > d.dose + 1e-6:
        return "divided-daily-dose"  # the day's dose within the label, divided
    return None


def _partner(
    f: PatientFacts, drafts: DraftOrders, table: OralDose
) -> tuple[PartnerDose | None, tuple[Said, ...], tuple[str, ...]]:
    """The partner whose dose applies, with the line and reference of its record: one drafted
    in this order first (the regimen being ordered: capecitabine drafted with tucatinib is
    HER2CLIMB's, whatever an old neratinib record says), else one possibly in use; the table's
    order decides between several; none, the drug's own dose."""
    for pd in table.with_partner:
        for o in drafts.medications:
            if o.has(pd.partner):
                return pd, (say("draft-order", drug=pd.partner, ref=o.ref),), (o.ref,)
    in_use = f.meds.possibly_in_use(*DOSE_PARTNER_CLASSES)
    for pd in table.with_partner:
        for e in in_use:
            if e.ingredient == pd.partner:
                line = say("drug-last-recorded", drug=e.ingredient, when=e.last_shown, ref=e.ref)
                return pd, (line,), (e.ref,)
    return None, (), ()
