"""An oral drug drafted above its label dose, a dose at a time or over a day (its dose times how
often the draft gives it): R6l's HER2 kinase inhibitors in mg, R6m's capecitabine in mg/m².

A label's dose may depend on the drug given with it (Tykerb: lapatinib 1,250 mg with
capecitabine, 1,500 mg with letrozole; capecitabine 750 mg/m² with neratinib by the Nerlynx
label), and where the drug's US label gives the pair no dose, a trial's does (lapatinib
1,000 mg with trastuzumab, EGF104900): the partner counts when it is drafted in the same order
or possibly in use (F5), and the card names its record. A dose at least `unit_error_factor`
times the label's reads as a unit error. A draft whose dose is in another unit or whose dose
is not given is not judged; capecitabine's flat dose in mg, whose patient's body surface area
is not read, is judged against its label dose at the largest area the check allows
(`capecitabine_max_bsa_m2`).
"""

from __future__ import annotations

from cds.facts import PatientFacts
from cds.facts.orders import DraftMedication, DraftOrders
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
    ('divided-daily-dose')."""
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
        dose, unit, scale = _dose_of(o, table, max_area_m2)
        per_day = dose / (o.every_weeks * 7) if dose is not None and o.every_weeks else None
        day_only = False
        if dose is None and table.unit == "mg/m2" and o.day_mg_per_m2 is not None:
            # Only the day's total written ("2,000 mg/m2/day"): judged against the label's day,
            # as if taken in the label's doses a day.
            day_only, per_day, unit, scale = True, o.day_mg_per_m2, table.unit, 1.0
            dose = o.day_mg_per_m2 / table.doses_per_day
        if dose is None:
            continue
        ceiling = limit * scale
        if dose > ceiling or (
            per_day is not None and per_day > ceiling * table.doses_per_day + 1e-6
        ):
            if dose >= ceiling * unit_error_factor:
                variant = "unit-error"
            elif scale != 1.0:
                variant = "above-label-flat"
            elif trial is not None:
                variant = "above-trial-dose"
            elif table.raised_for_cyp3a4_inducers:
                variant = "above-label-unless-inducer"
            else:
                variant = "above-label"
            named = label
        elif table.once_daily_only and per_day is not None and per_day > dose + 1e-6:
            # The day's dose within the label, divided: the label's own advice is once daily.
            variant, named = "divided-daily-dose", table.label
        else:
            continue
        out.append(
            Decision(
                variant=variant,
                indicator="critical" if variant == "unit-error" else "warning",
                bindings={
                    "drug": table.drug,
                    "dose": _dose_text(dose, per_day, unit, day_only=day_only),
                    "label": named,
                    "label_dose": limit_text,
                },
                # The partner's record beside the draft: the dose judged rests on it.
                data=(say("draft-order-ref", ref=o.ref), *partner_line),
                refs=(o.ref, *partner_ref),
            )
        )
    return out


def _dose_of(
    o: DraftMedication, table: OralDose, max_area_m2: float | None
) -> tuple[float | None, str, float]:
    """The draft's dose in the table's unit with a scale of 1, or, for a dose per m² written
    flat in mg, the mg dose with the largest area allowed as its scale."""
    if table.unit == "mg":
        return o.dose_mg, "mg", 1.0
    if o.dose_mg_per_m2 is not None or max_area_m2 is None:
        return o.dose_mg_per_m2, table.unit, 1.0
    return o.dose_mg, "mg", max_area_m2


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
                line = say("drug-last-recorded", drug=e.ingredient, when=e.last, ref=e.ref)
                return pd, (line,), (e.ref,)
    return None, (), ()


def _dose_text(
    dose: float, per_day: float | None, unit: str, *, day_only: bool = False
) -> str | Said:
    """The draft's dose, with the day's total when it is taken more than once a day; the day's
    total alone when that is all the draft wrote."""
    unit = "mg/m²" if unit == "mg/m2" else unit
    if day_only and per_day is not None:
        return say("dose-a-day", per_day=f"{per_day:g} {unit}")
    if per_day is not None and per_day > dose:
        return say("dose-per-day", dose=f"{dose:g} {unit}", per_day=f"{per_day:g} {unit}")
    return f"{dose:g} {unit}"
