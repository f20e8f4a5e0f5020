"""R2b: a bone-agent (or HER2 antibody-drug conjugate) order against its label's dose and
interval. One agent at a time (R2c) is `cds.rules.bma_overlap`.

Clinical-logic §3c D1 (dose and schedule ceilings at every renal function), D2 (hypercalcaemia of
malignancy: no renal reduction of zoledronic acid). The predicates here are shared with R1
(cds/rules/bone.py) and R2 (cds/rules/bisphosphonates.py), which choose and check the dose.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from cds.facts import PatientFacts
from cds.facts.medications import Exposure
from cds.facts.orders import DraftMedication, DraftOrders
from cds.parameters import DoseLimit, Parameters
from cds.rules import (
    ORDER_HOOKS,
    Decision,
    DeleteDraft,
    Indicator,
    NoteKey,
    Proposal,
    RegimenOrder,
    UpdateDraft,
    rule,
)
from cds.rules.doses import (
    SAME_LEVEL,
    interval_words,
    label_with_level,
    mg_per_kg_text,
    mg_text,
    unread_dose,
)
from cds.said import Said, say

# Drugs whose label dose and interval R2b checks; zoledronic acid and pamidronate doses are R2's.
CEILING_DRUGS = (
    "denosumab",
    "trastuzumab deruxtecan",
    "trastuzumab emtansine",
    "zoledronic acid",
    "pamidronate",
)
# The bisphosphonates that hypercalcaemia of malignancy may repeat sooner than their interval.
HCM_RETREATABLE = ("zoledronic acid", "pamidronate")
# A reduced zoledronic acid dose is ordered at ingredient level, not as the 4 mg product (D9).
ZOLEDRONIC_REDUCED = "zoledronic-acid-reduced"


def dose_update(draft: DraftMedication, drug: str, dose_mg: float, p: Parameters) -> UpdateDraft:
    """Change only the draft's dose; below the 4 mg product's strength, recode it (D9)."""
    full = p.dose_limits[drug].dose_mg
    recode = drug == "zoledronic acid" and full is not None and dose_mg < full
    return UpdateDraft(
        draft_ref=draft.ref, dose_mg=dose_mg, recode_order=ZOLEDRONIC_REDUCED if recode else None
    )


def hcm_dosing(f: PatientFacts, p: Parameters) -> bool:
    """Hypercalcaemia of malignancy with creatinine below 4.5 mg/dL and no dialysis (D2): the
    Zometa label gives 4 mg with no renal reduction, so the MBC renal table does not apply."""
    ca, cr = f.calcium.corrected, f.renal.creatinine
    return (
        ca is not None
        and ca >= p.hypercalcaemia_of_malignancy_mg_dl
        and cr is not None
        and cr.value < p.hcm_creatinine_below_mg_dl
        and not f.on_dialysis
    )


def first_course(f: PatientFacts, p: Parameters, drug: str) -> bool:
    """No dose of this bisphosphonate in the treatment the order continues: the dose table
    applies (to the baseline CrCl). Adjuvant zoledronic acid that ended more than
    `new_treatment_gap_days` before is another treatment - read as this one, the table never
    applied again, and 4 mg at CrCl 45 mL/min went without a card. A dose given on no known
    day may be this treatment's."""
    return f.meds.begins_treatment(drug, p.new_treatment_gap_days, on=f.as_of)


def renal_band_dose(f: PatientFacts, p: Parameters, drug: str) -> float | None:
    """The reduced zoledronic acid dose of the Zometa renal table for this patient, when the
    table applies: a first course, Cockcroft-Gault CrCl 30-60 mL/min, and no hypercalcaemia of
    malignancy (D2). None when the full label dose (or no dose) applies."""
    crcl = f.renal.crcl
    if drug != "zoledronic acid" or crcl is None or crcl > p.crcl_dose_adjust_upto:
        return None
    if not first_course(f, p, drug) or hcm_dosing(f, p):
        return None
    return p.zoledronic_dose(crcl)


def unit_error(draft: DraftMedication, label_mg: float, p: Parameters) -> bool:
    """A dose so far above the patient's label dose (4 g for 4 mg) that it reads as a wrong
    unit (D1)."""
    return draft.dose_mg is not None and draft.dose_mg >= label_mg * p.unit_error_factor


@rule(
    "R2b",
    hooks=ORDER_HOOKS,
    variants=(
        "unit-error",
        "above-label",
        "not-label-dose",
        "dose-unread",
        "dose-unread-by-weight",
        "weight-unknown",
        "too-frequent",
        "too-soon",
        "drafted-twice",
        "above-label-per-kg",
        "above-label-by-weight",
        "below-lowest-level",
        "below-lowest-level-by-weight",
        "not-a-dose-level",
    ),
    bindings=(
        "drug",
        "dose",
        "dose_per_kg",
        "label_dose",
        "label",
        "interval",
        "min_interval",
        "days",
        "min_days",
        "lowest_dose",
        "levels",
        "other_label",
    ),
    valuesets=("creatinine", "body-weight", "calcium", "albumin", "dialysis"),
    ingredients=CEILING_DRUGS,
    parameters=(
        "dose_limits",
        "unit_error_factor",
        "crcl_dose_adjust_upto",
        "crcl_not_recommended",
        "zoledronic_dose_by_crcl",
        "hypercalcaemia_of_malignancy_mg_dl",
        "hcm_creatinine_below_mg_dl",
        "hcm_retreatment_min_days",
        "weight_freshness_days",
        "lab_read_ranges",
        "weight_dose_tolerance_percent",
        "trastuzumab_doses_mg_per_kg",
        "reloading",
    ),
    medications=(ZOLEDRONIC_REDUCED,),
    regimens=("denosumab",),
    suggestions=("adjust-dose", "replace-with-xgeva", "remove-duplicate"),
    notes=("xgeva-loading-doses", "hcm-retreatment", "another-drugs-level"),
)
def r2b_dose_and_schedule(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """A bone-modifying agent, T-DXd or T-DM1 drafted above its label dose or more often than its
    label interval (clinical-logic §3c D1).

    Zometa label 4 mg every 3-4 weeks (reduced at CrCl 30-60 before the first dose: R2 checks the
    band, this rule the ceiling above it); pamidronate label 90 mg every 3-4 weeks; Xgeva label
    120 mg every 4 weeks (60 mg is the Prolia osteoporosis dose); Enhertu label 5.4 mg/kg every 3
    weeks for breast cancer, Kadcyla label 3.6 mg/kg every 3 weeks ("do not administer at doses
    greater than 3.6 mg/kg"; 6 mg/kg is trastuzumab's dose, and the label warns not to
    substitute one for the other): a draft dose by weight above either is named, and a dose in
    mg more than 10% above the label's at the latest weight within 90 days (HOPA's position
    statement on dose rounding accepts rounding within 10%). A dose ten times the label's or
    more is a unit error (critical). A dose in a unit that is not a mass (100 mL of the
    premixed bag, one vial), or a range, cannot be checked: the card says so rather than pass
    it in silence (§3c C2: never assumed to be mg); in the reduced renal band R2 names it
    instead; for T-DXd and T-DM1, dosed by weight, the card gives the dose by weight. A draft
    with no dose at all is not named: at order-select the dose is often not yet entered. A
    draft sooner after the last charted dose than the label interval is named too
    (`_too_soon`).
    """
    out: list[Decision] = []
    for draft in drafts.with_ingredient(*CEILING_DRUGS):
        drug = next(d.ingredient for d in draft.drugs if d.ingredient in CEILING_DRUGS)
        limit = p.dose_limits[drug]
        base: dict[str, str | Said] = {
            "drug": limit.drug,
            "dose": mg_text(draft.dose_mg) if draft.dose_mg is not None else say("dose-as-ordered"),
            "label": limit.label,
            "label_dose": mg_text(limit.dose_mg) if limit.dose_mg is not None else "",
            "interval": interval_words(draft.every_weeks) if draft.every_weeks else "",
            "min_interval": f"{limit.min_interval_weeks:g}",
        }
        data = [say("draft-order", drug=limit.drug, ref=draft.ref)]
        if (dose := _dose_decision(f, p, draft, drug, (limit, base, data))) is not None:
            out.append(dose)
        out += _schedule(f, p, draft, drug, (limit, base, data))
        out += _drafted_twice(drafts, draft, drug, (base, data))
    return out


def _dose_decision(
    f: PatientFacts,
    p: Parameters,
    draft: DraftMedication,
    drug: str,
    card: tuple[DoseLimit, dict[str, str | Said], list[Said]],
) -> Decision | None:
    """The draft's dose against the label's: above it by mass (with the label dose as the
    suggestion), above it by weight, or in a unit the check cannot read."""
    limit, base, data = card
    found = _dose_finding(f, p, draft, drug, limit)
    if found is not None:
        variant, indicator, target = found
        return Decision(
            variant=variant,
            indicator=indicator,
            bindings={**base, "label_dose": mg_text(target)},
            data=tuple(data),
            refs=(draft.ref,),
            proposals=(_to_label_dose(draft, drug, target, p),),
        )
    if (by_weight := _by_weight_finding(f, p, draft, limit)) is not None:
        return replace(
            by_weight,
            bindings={**base, **by_weight.bindings},
            data=(*data, *by_weight.data),
            refs=(draft.ref, *by_weight.refs),
        )
    if _dose_unread(f, p, draft, drug, limit):
        return Decision(
            variant="dose-unread",
            indicator="info",
            bindings=base,
            data=(*data, say("draft-dose-unknown", why=draft.dose_note)),
            refs=(draft.ref,),
        )
    if limit.dose_mg_per_kg is not None and (unread := unread_dose(draft)) is not None:
        return Decision(
            variant="dose-unread-by-weight",
            indicator="info",
            bindings={**base, "label_dose": mg_per_kg_text(limit.dose_mg_per_kg)},
            data=(*data, say("draft-dose-unknown", why=unread)),
            refs=(draft.ref,),
        )
    return None


def _drafted_twice(
    drafts: DraftOrders,
    draft: DraftMedication,
    drug: str,
    card: tuple[dict[str, str | Said], list[Said]],
) -> list[Decision]:
    """The same agent drafted twice in one order (two doses where the label gives one): one
    card, on the first of them being checked, naming the others."""
    twins = [o for o in drafts.medications if o is not draft and o.has(drug)]
    focus = drafts.focus()
    if not twins or any(focus.index(o) < focus.index(draft) for o in twins if o in focus):
        return []
    base, data = card
    return [
        Decision(
            variant="drafted-twice",
            indicator="warning",
            bindings=base,
            data=(*data, *(say("also-drafted", ref=o.ref) for o in twins)),
            refs=(draft.ref, *(o.ref for o in twins)),
            proposals=(
                Proposal(
                    key="remove-duplicate",
                    actions=tuple(DeleteDraft(draft_ref=o.ref) for o in twins),
                ),
            ),
        )
    ]


def _schedule(
    f: PatientFacts,
    p: Parameters,
    draft: DraftMedication,
    drug: str,
    card: tuple[DoseLimit, dict[str, str | Said], list[Said]],
) -> list[Decision]:
    """D1 schedules: the order's own interval, and the time since the last charted dose."""
    limit, base, data = card
    out = []
    if draft.every_weeks is not None and draft.every_weeks < limit.min_interval_weeks:
        out.append(
            Decision(
                variant="too-frequent",
                indicator="warning",
                bindings=base,
                data=(*data, say("interval-on-order", interval=base["interval"])),
                refs=(draft.ref,),
                # Xgeva's loading doses are its own label's: said on denosumab cards only.
                note_keys=(NoteKey("xgeva-loading-doses"),) if drug == "denosumab" else (),
            )
        )
    if (soon := _too_soon(f, p, drug, limit, draft.start)) is not None:
        last, days, min_days = soon
        out.append(
            Decision(
                variant="too-soon",
                indicator="warning",
                bindings={**base, "days": str(days), "min_days": str(min_days)},
                data=(
                    *data,
                    say("last-dose-given", drug=drug, when=last.last, days=days, ref=last.ref)
                    if last.last_shown == last.last
                    # a dose charted by its month: counted from the month's last day
                    else say(
                        "last-dose-in-month",
                        drug=drug,
                        when=last.last_shown,
                        days=days,
                        ref=last.ref,
                    ),
                ),
                refs=(draft.ref, last.ref),
                # The early retreatment of hypercalcaemia is the bisphosphonates' alone.
                note_keys=(NoteKey("hcm-retreatment"),) if drug in HCM_RETREATABLE else (),
            )
        )
    return out


def _too_soon(
    f: PatientFacts, p: Parameters, drug: str, limit: DoseLimit, start: date | None
) -> tuple[Exposure, int, int] | None:
    """The drug drafted sooner after its last charted dose than its label interval: a dose
    given at another visit, or charted twice. Only a MedicationAdministration dates a dose; a
    statement's or an order's dates are a course's. A draft that starts later (the next
    cycle's order, signed on the day of this one) is judged at its start. In hypercalcaemia of
    malignancy (corrected calcium at the threshold) zoledronic acid and pamidronate may be
    repeated after 7 days (Zometa label; pamidronate, NCI PDQ hypercalcaemia). Returns the last
    dose, the days from it to this one, and the fewest days the label allows."""
    doses = [
        (e.last, e)
        for e in f.meds.ever("BMA", "HER2_ADC_TDXD")
        if e.ingredient == drug
        and e.record.resource_type == "MedicationAdministration"
        and e.last is not None
    ]
    if not doses:
        return None
    given, last = max(doses, key=lambda pair: pair[0])
    days = max((max(f.as_of, start or f.as_of) - given).days, 0)
    ca = f.calcium.corrected
    bisphosphonate = drug in ("zoledronic acid", "pamidronate")
    hcm = bisphosphonate and ca is not None and ca >= p.hypercalcaemia_of_malignancy_mg_dl
    min_days = p.hcm_retreatment_min_days if hcm else round(limit.min_interval_weeks * 7)
    return (last, days, min_days) if days < min_days else None


def _to_label_dose(draft: DraftMedication, drug: str, target: float, p: Parameters) -> Proposal:
    """The draft at its label dose: a dose change, except for denosumab, where a dose-only
    change would leave Prolia's product and 6-monthly interval - the Xgeva regimen takes the
    draft's place, created before the draft is removed so that a client applying actions in
    order never holds an empty order (D19)."""
    if drug == "denosumab":
        return Proposal(
            key="replace-with-xgeva",
            actions=(RegimenOrder(key="denosumab"), DeleteDraft(draft_ref=draft.ref)),
        )
    return Proposal(
        key="adjust-dose",
        actions=(dose_update(draft, drug, target, p),),
        label_bindings={"dose": mg_text(target)},
    )


def _dose_finding(
    f: PatientFacts, p: Parameters, draft: DraftMedication, drug: str, limit: DoseLimit
) -> tuple[str, Indicator, float] | None:
    """(variant, indicator, the dose to change to) when the draft's dose is not the label's."""
    if limit.dose_mg is None or draft.dose_mg is None:
        return None
    band = renal_band_dose(f, p, drug)
    target = band if band is not None else limit.dose_mg
    if unit_error(draft, target, p):
        return "unit-error", "critical", target
    if band is not None:
        return None  # at CrCl 30-60 on a first course, R2 asks for the band dose
    if limit.exact and draft.dose_mg != limit.dose_mg:
        return "not-label-dose", "warning", target
    if draft.dose_mg > limit.dose_mg:
        return "above-label", "warning", target
    return None


def _by_weight_finding(
    f: PatientFacts, p: Parameters, draft: DraftMedication, limit: DoseLimit
) -> Decision | None:
    """A drug dosed by weight (Enhertu 5.4 mg/kg for breast cancer, Kadcyla 3.6 mg/kg) drafted
    above its label dose: a dose by weight as written, or a dose in mg against the label's
    mg/kg at the latest fresh weight, more than the rounding tolerance above it (HOPA accepts
    rounding within 10%). Ten times the label dose or more reads as a unit error. Below the
    label's lowest dose level (Enhertu 3.2, Kadcyla 2.4 mg/kg), or a dose in mg more than the
    tolerance below it, is named too: both labels discontinue treatment when a further
    reduction would be needed; so is a dose by weight between the levels (`_per_kg_finding`).
    No suggestion: the dose to give is a weight-based calculation the pharmacist makes. A dose
    in mg with no fresh weight cannot be judged: information that says so, with the label's
    dose by weight and the weight missing."""
    label = limit.dose_mg_per_kg
    if label is None:
        return None
    lowest = limit.dose_levels_mg_per_kg[-1] if limit.dose_levels_mg_per_kg else None
    levels = {"levels": ", ".join(mg_per_kg_text(x) for x in limit.dose_levels_mg_per_kg)}
    if draft.dose_mg_per_kg is not None:
        return _per_kg_finding(p, draft.dose_mg_per_kg, limit, levels)
    weight = f.weight
    if draft.dose_mg is None:
        return None
    if weight is None:
        return Decision(
            variant="weight-unknown",
            indicator="info",
            bindings={"label_dose": mg_per_kg_text(label)},
            missing=(say("missing-weight", days=p.weight_freshness_days),),
        )
    tolerance = p.weight_dose_tolerance_percent / 100
    bindings: dict[str, str | Said] = {
        "dose_per_kg": mg_per_kg_text(round(draft.dose_mg / weight.value, 1))
    }
    if draft.dose_mg >= label * weight.value * p.unit_error_factor:
        variant, key, per_kg = "unit-error", "label_dose", label
    elif draft.dose_mg > label * weight.value * (1 + tolerance):
        variant, key, per_kg = "above-label-by-weight", "label_dose", label
    elif lowest is not None and draft.dose_mg < lowest * weight.value * (1 - tolerance):
        variant, key, per_kg = "below-lowest-level-by-weight", "lowest_dose", lowest
        bindings.update(levels)
    else:
        return None
    mg = mg_text(per_kg * weight.value)
    bindings[key] = say("dose-by-weight", per_kg=mg_per_kg_text(per_kg), mg=mg, kg=weight.value)
    said = say("weight-read", kg=weight.value, when=weight.when, ref=weight.ref)
    return _by_weight_decision(variant, bindings, (said,), (weight.ref,))


def _per_kg_finding(
    p: Parameters, dose: float, limit: DoseLimit, levels: dict[str, str]
) -> Decision | None:
    """A dose written by weight against the label's: above it, below its lowest level, or
    between its levels (a dose no label step gives); one that is another drug's level is
    named as that drug's (the labels: do not substitute one for the other)."""
    label = limit.dose_mg_per_kg or 0.0
    steps = limit.dose_levels_mg_per_kg
    bindings = {"dose": mg_per_kg_text(dose), **levels}
    if steps and dose < steps[-1]:
        return _by_weight_decision(
            "below-lowest-level", {**bindings, "lowest_dose": mg_per_kg_text(steps[-1])}
        )
    if dose > label:
        if dose >= label * p.unit_error_factor:
            return _by_weight_decision(
                "unit-error", {"dose": mg_per_kg_text(dose), "label_dose": mg_per_kg_text(label)}
            )
        above: dict[str, str | Said] = {
            "dose": mg_per_kg_text(dose),
            "label_dose": mg_per_kg_text(label),
        }
        return _naming_other_drug(p, dose, limit, _by_weight_decision("above-label-per-kg", above))
    if not steps or any(abs(dose - x) <= SAME_LEVEL for x in steps):
        return None
    between: dict[str, str | Said] = {**bindings, "label_dose": mg_per_kg_text(label)}
    return _naming_other_drug(p, dose, limit, _by_weight_decision("not-a-dose-level", between))


def _naming_other_drug(p: Parameters, dose: float, limit: DoseLimit, d: Decision) -> Decision:
    """The decision with a note when its dose is another HER2 drug's (T-DM1 at trastuzumab's 6
    mg/kg, T-DXd at Kadcyla's 3.6 mg/kg)."""
    other = label_with_level(p, dose, but=limit)
    if other is None:
        return d
    return replace(
        d,
        bindings={**d.bindings, "other_label": other},
        note_keys=(NoteKey("another-drugs-level"),),
    )


def _by_weight_decision(
    variant: str,
    bindings: dict[str, str | Said],
    data: tuple[Said, ...] = (),
    refs: tuple[str, ...] = (),
) -> Decision:
    """The card of a dose above the label's by weight; the caller adds the draft."""
    indicator: Indicator = "critical" if variant == "unit-error" else "warning"
    return Decision(variant=variant, indicator=indicator, bindings=bindings, data=data, refs=refs)


def _dose_unread(
    f: PatientFacts, p: Parameters, draft: DraftMedication, drug: str, limit: DoseLimit
) -> bool:
    """A dose stated in a unit that is not a mass, for a drug with a label dose in mg, outside
    the renal band where R2 names it."""
    return (
        draft.dose_note is not None
        and limit.dose_mg is not None
        and renal_band_dose(f, p, drug) is None
    )
