"""HER2 antibody doses: R6f, a maintenance dose drafted long after the last charted dose; R6g,
pertuzumab at a dose that is not the label's; R6h, trastuzumab by weight at a dose that is not.

R6f: the Herceptin label (missed doses): a dose missed by more than one week is given as a
re-loading dose, then the maintenance dose; the Perjeta label (delayed or missed doses, with
trastuzumab): 6 weeks or more between two doses - re-load both. A maintenance dose after such a
gap leaves the antibody below its steady level for weeks. R6g and R6h: the labels' fixed and
by-weight doses, and the conjugates' doses by weight written into a trastuzumab order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from cds.facts import PatientFacts
from cds.facts.medications import Exposure
from cds.facts.orders import (
    PHESGO_INITIAL,
    PHESGO_MAINTENANCE,
    SUBCUTANEOUS_TRASTUZUMAB,
    DraftMedication,
    DraftOrders,
)
from cds.parameters import Parameters, Reloading
from cds.rules import ORDER_HOOKS, Decision, Indicator, NoteKey, rule
from cds.rules.doses import (
    SAME_LEVEL,
    interval_words,
    label_with_level,
    mg_per_kg_text,
    mg_text,
    unread_dose,
)
from cds.said import Said, say

# A drafted flat dose is a label dose within this much (420 mg, 840 mg); by weight: SAME_LEVEL.
_SAME_MG = 1.0


def _at_dose(draft: DraftMedication, per_kg: float | None, mg: float | None) -> bool:
    """The draft's dose is this one: by weight as written (a dose in mg of trastuzumab could
    be Herceptin Hylecta's fixed 600 mg, which has no loading dose), or pertuzumab's flat
    dose."""
    if per_kg is not None:
        dose = draft.dose_mg_per_kg
        return dose is not None and abs(dose - per_kg) <= SAME_LEVEL
    dose = draft.dose_mg
    return dose is not None and mg is not None and abs(dose - mg) <= _SAME_MG


def _last_dose(f: PatientFacts, drug: str) -> Exposure | None:
    """The latest record of the drug, when it is a dose charted as given: a statement or an
    order dated later says a course went on whose doses are not charted, and nothing is
    judged."""
    records = [e for e in f.meds.ever("HER2_MAB") if e.ingredient == drug and e.last]
    # On the same day a dose charted as given outweighs a statement or order ending then.
    last = max(
        records,
        key=lambda e: (e.last or f.as_of, e.record.resource_type == "MedicationAdministration"),
        default=None,
    )
    if last is None or last.record.resource_type != "MedicationAdministration":
        return None
    return last


@rule(
    "R6f",
    hooks=ORDER_HOOKS,
    variants=("reload", "loading-too-soon"),
    bindings=("drugs", "loading", "maintenance", "labels", "weeks", "days"),
    valuesets=(SUBCUTANEOUS_TRASTUZUMAB, PHESGO_MAINTENANCE, PHESGO_INITIAL),
    ingredients=("trastuzumab", "pertuzumab"),
    parameters=("reloading", "phesgo_doses", "reload_after_days"),
)
def r6f_reload_after_a_gap(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """Trastuzumab at its 3-weekly maintenance dose (6 mg/kg as written), pertuzumab at 420
    mg, or Phesgo's maintenance-dose package, drafted 6 weeks or more after the last dose
    charted as given → one warning for the order: the labels give a re-loading dose
    (trastuzumab 8 mg/kg, pertuzumab 840 mg, Phesgo 1,200 mg pertuzumab with 600 mg
    trastuzumab; its initial dose read by its package's code or as 1,200 mg, its maintenance
    dose by its package's code). From 6 weeks the Perjeta and Phesgo tables and the Herceptin
    label's missed-dose advice agree; Phesgo's last dose is pertuzumab's, given as Phesgo or IV (its
    label: from IV pertuzumab 6 weeks or more before, start with the first dose). The other
    way round, a loading dose drafted while the maintenance dose is due (trastuzumab up to a
    week late, where both labels give it; pertuzumab and Phesgo under 6 weeks) repeats the
    first dose - a first-cycle order set used again → one warning. A draft that starts later is
    judged at its start. A drug with no dose charted as given, or whose latest record is not a
    dose, is not judged; nor is Herceptin Hylecta (no loading dose: its label gives a missed
    dose as the next 600 mg)."""
    late: list[_Gap] = []
    early: list[_Gap] = []
    for draft in drafts.with_ingredient(*p.reloading):
        for kind in ("maintenance", "loading"):
            judged = _reloading(draft, p, kind)
            last = _last_dose(f, judged[1]) if judged else None
            if judged is None or last is None or last.last is None:
                continue
            r = judged[0]
            days = (max(f.as_of, draft.start or f.as_of) - last.last).days
            if kind == "maintenance" and days >= p.reload_after_days:
                late.append(_Gap(draft, r, last, days))
            elif kind == "loading" and days <= _due_until(r):
                early.append(_Gap(draft, r, last, days))
    return [
        _gap_card(v, gaps) for v, gaps in (("reload", late), ("loading-too-soon", early)) if gaps
    ]


def _due_until(r: Reloading) -> int:
    """The longest gap at which the maintenance dose is due (-1: never judged)."""
    return -1 if r.maintenance_up_to_days is None else r.maintenance_up_to_days


class _Gap(NamedTuple):
    draft: DraftMedication
    doses: Reloading
    last: Exposure  # the last dose charted as given
    days: int  # from it to the draft


def _gap_card(variant: str, gaps: list[_Gap]) -> Decision:
    data = []
    for g in gaps:
        data.append(say("draft-order", drug=g.doses.drug, ref=g.draft.ref))
        data.append(
            say(
                "drug-last-recorded", drug=g.last.ingredient, when=g.last.last_shown, ref=g.last.ref
            )
        )
    return Decision(
        variant=variant,
        indicator="warning",
        bindings={
            "drugs": " and ".join(dict.fromkeys(g.doses.drug for g in gaps)),
            "loading": _each(gaps, lambda r: _dose_text(r.loading_mg_per_kg, r.loading_mg)),
            "maintenance": _each(
                gaps, lambda r: _dose_text(r.maintenance_mg_per_kg, r.maintenance_mg)
            ),
            "labels": " and ".join(dict.fromkeys(g.doses.label for g in gaps)),
            "weeks": f"{min(g.days for g in gaps) // 7}",
            "days": f"{max(g.days for g in gaps)}",
        },
        data=tuple(data),
        refs=tuple(ref for g in gaps for ref in (g.draft.ref, g.last.ref)),
    )


def _reloading(
    draft: DraftMedication, p: Parameters, kind: Literal["maintenance", "loading"]
) -> tuple[Reloading, str] | None:
    """The doses of a draft at its maintenance dose (or its loading dose), and the drug whose
    last dose counts; None for a draft not at such a dose the check reads."""
    if _is_phesgo(draft):
        # Phesgo by its packages' codes; by a dose in mg only at the initial dose's 1,200 mg
        # (pertuzumab), as 600 mg is both its maintenance dose and its first dose's trastuzumab.
        r = p.phesgo_doses
        package = "maintenance" if kind == "maintenance" else "initial"
        by_mg = kind == "loading" and draft.phesgo_dose is None and draft.dose_mg == r.loading_mg
        return (r, "pertuzumab") if draft.phesgo_dose == package or by_mg else None
    if len(draft.drugs) != 1 or draft.form is not None:
        return None  # Herceptin Hylecta: no loading dose
    r = p.reloading[draft.drugs[0].ingredient]
    if kind == "maintenance":
        at = _at_dose(draft, r.maintenance_mg_per_kg, r.maintenance_mg)
    else:
        at = _at_dose(draft, r.loading_mg_per_kg, r.loading_mg)
    return (r, r.drug) if at else None


def _each(gaps: list[_Gap], dose: Callable[[Reloading], str]) -> str:
    """Each drug with its dose, once: "trastuzumab 6 mg/kg, pertuzumab 420 mg"."""
    return ", ".join(dict.fromkeys(f"{g.doses.drug} {dose(g.doses)}" for g in gaps))


def _dose_text(per_kg: float | None, mg: float | None) -> str:
    """A label dose as the card shows it: by weight, else flat."""
    return mg_per_kg_text(per_kg) if per_kg is not None else mg_text(mg or 0)


def _is_phesgo(draft: DraftMedication) -> bool:
    """Pertuzumab and trastuzumab in one product: Phesgo."""
    return {d.ingredient for d in draft.drugs} == {"pertuzumab", "trastuzumab"}


@rule(
    "R6g",
    hooks=ORDER_HOOKS,
    variants=(
        "not-label-dose",
        "unit-error",
        "phesgo-dose",
        "phesgo-unit-error",
        "too-frequent",
        "dose-unread",
    ),
    bindings=("dose", "loading", "maintenance", "drug", "label", "interval", "min_interval"),
    ingredients=("pertuzumab", "trastuzumab"),
    parameters=(
        "reloading",
        "phesgo_doses",
        "phesgo_trastuzumab_mg",
        "unit_error_factor",
        "reload_after_days",
    ),
)
def r6g_pertuzumab_dose(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """Pertuzumab drafted at a dose that is neither its first dose (840 mg) nor its maintenance
    dose (420 mg every 3 weeks), or written per kg → warning; ten times the first dose or more
    → critical (a unit error). Phesgo the same way by its own doses (1,200 mg pertuzumab
    first, then 600 mg; 600 mg trastuzumab in both, so 600 mg is either). Either drafted more
    often than every 3 weeks → warning (weekly: the weekly paclitaxel or trastuzumab schedule
    of the same order set, most often).

    The Perjeta label: a fixed dose regardless of body weight, 840 mg then 420 mg every 3
    weeks; dose reductions are not recommended. A dose per kg is trastuzumab's way of dosing,
    written into the pertuzumab order. The Phesgo label: fixed doses every 3 weeks, no
    adjustment for body weight, not substituted for or with IV pertuzumab or trastuzumab. A
    draft with no dose is not judged (at order-select the dose is often not entered), nor one
    with no interval; one whose dose is given but not read (a volume, a count of vials, a
    range) → information with the label's doses, unless it is a Phesgo package whose code says
    its dose - an order is not passed as checked (clinical-logic §3b).
    """
    out = []
    for draft in drafts.with_ingredient("pertuzumab"):
        phesgo = _is_phesgo(draft)
        r = p.phesgo_doses if phesgo else p.reloading["pertuzumab"]
        if (
            r.loading_mg is None
            or r.maintenance_mg is None
            or (len(draft.drugs) != 1 and not phesgo)
        ):
            continue
        bindings: dict[str, str | Said] = {
            "loading": mg_text(r.loading_mg),
            "maintenance": mg_text(r.maintenance_mg),
            "drug": r.drug,
            "label": r.label,
            "interval": interval_words(draft.every_weeks) if draft.every_weeks else "",
            "min_interval": f"{r.min_interval_weeks or 0:g}",
        }
        data = (say("draft-order", drug=r.drug, ref=draft.ref),)
        if draft.phesgo_dose is None and (unread := unread_dose(draft)) is not None:
            out.append(_unread(bindings, data, unread, draft.ref))
        judged = _fixed_dose(draft, (r.loading_mg, r.maintenance_mg), p.unit_error_factor)
        if judged is not None:
            error, dose = judged
            if phesgo:
                variant = "phesgo-unit-error" if error else "phesgo-dose"
            else:
                variant = "unit-error" if error else "not-label-dose"
            out.append(
                Decision(
                    variant=variant,
                    indicator="critical" if error else "warning",
                    bindings={**bindings, "dose": dose},
                    data=data,
                    refs=(draft.ref,),
                )
            )
        out.extend(_too_frequent(draft, r, bindings, data))
    return out


def _unread(
    bindings: Mapping[str, str | Said], data: tuple[Said, ...], note: Said, ref: str
) -> Decision:
    """A draft's dose given but not read → information: the label's doses, and why."""
    return Decision(
        variant="dose-unread",
        indicator="info",
        bindings={**bindings, "dose": note},
        data=(*data, say("draft-dose-unknown", why=note)),
        refs=(ref,),
    )


def _too_frequent(
    draft: DraftMedication, r: Reloading, bindings: dict[str, str | Said], data: tuple[Said, ...]
) -> list[Decision]:
    """A fixed dose drafted more often than its label interval: more than the label dose."""
    every, least = draft.every_weeks, r.min_interval_weeks
    if every is None or least is None or every >= least:
        return []
    interval = say("interval-on-order", interval=bindings["interval"])
    return [
        Decision(
            variant="too-frequent",
            indicator="warning",
            bindings={**bindings, "dose": ""},
            data=(*data, interval),
            refs=(draft.ref,),
        )
    ]


def _fixed_dose(
    draft: DraftMedication, doses: tuple[float, float], factor: float
) -> tuple[bool, str] | None:
    """(a unit error?, the dose as the card shows it) for a drug of fixed doses (first,
    maintenance) drafted at none of them or by weight; None when it is one of them, or no dose
    is given. Ten times the first dose or more is a unit error."""
    if draft.dose_mg_per_kg is not None:
        dose = mg_per_kg_text(draft.dose_mg_per_kg)
    elif draft.dose_mg is not None:
        if any(abs(draft.dose_mg - x) <= _SAME_MG for x in doses):
            return None
        dose = mg_text(draft.dose_mg)
    else:
        return None
    return draft.dose_mg is not None and draft.dose_mg >= doses[0] * factor, dose


@rule(
    "R6h",
    hooks=ORDER_HOOKS,
    variants=(
        "not-label-dose",
        "unit-error",
        "subcutaneous-dose",
        "above-label-by-weight",
        "dose-unread",
        "weight-unknown",
    ),
    bindings=("dose", "doses", "other_label", "product", "sc_dose", "dose_per_kg", "label_dose"),
    valuesets=(SUBCUTANEOUS_TRASTUZUMAB, "body-weight"),
    ingredients=("trastuzumab",),
    parameters=(
        "trastuzumab_doses_mg_per_kg",
        "subcutaneous_trastuzumab_mg",
        "unit_error_factor",
        "weight_dose_tolerance_percent",
        "weight_freshness_days",
        "lab_read_ranges",
        "dose_limits",
        "reloading",
    ),
    notes=("another-drugs-level", "subcutaneous-dose-as-iv"),
)
def r6h_trastuzumab_dose(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """Trastuzumab written per kg at a dose that is none of the Herceptin label's (8 or 6
    mg/kg every 3 weeks, 4 or 2 mg/kg weekly) → warning; when it is T-DXd's or T-DM1's dose
    level (5.4, 3.6 mg/kg...) a note names that label: the drug meant may be the conjugate (the
    labels: do not substitute one for the other). Ten times the largest dose or more →
    critical (a unit error). A dose in mg of IV trastuzumab is judged by the latest weight, as
    R2b judges T-DXd's: above the largest dose (8 mg/kg) by more than the rounding tolerance →
    warning, with a note when it is Herceptin Hylecta's 600 mg; below it, a dose in mg is
    rounded to the vial and not judged. Herceptin Hylecta at any dose but its fixed 600 mg, or
    by weight → warning (ten times 600 mg: critical); Phesgo is R6g's. A dose given but not
    read (a volume, a count of vials, a range), or in mg with no body weight within
    `weight_freshness_days` → information with the label's doses.
    """
    doses = p.trastuzumab_doses_mg_per_kg
    out = []
    for draft in drafts.with_ingredient("trastuzumab"):
        if len(draft.drugs) != 1:
            continue
        if (unread := unread_dose(draft)) is not None:
            unknown = say("draft-dose-unknown", why=unread)
            decided: _Judged | None = _Judged("dose-unread", "", data=(unknown,))
        else:
            decided = _subcutaneous_dose(draft, p) if draft.form else _iv_dose(f, draft, p)
        if decided is None:
            continue
        notes = (NoteKey("another-drugs-level"),) if decided.other_label else ()
        out.append(
            Decision(
                variant=decided.variant,
                indicator=_INDICATOR.get(decided.variant, "warning"),
                bindings={
                    "dose": decided.dose,
                    # Herceptin Hylecta's one dose, or IV trastuzumab's by weight.
                    "doses": mg_text(p.subcutaneous_trastuzumab_mg)
                    if draft.form
                    else ", ".join(mg_per_kg_text(x) for x in doses),
                    "other_label": decided.other_label or "",
                    "product": draft.form or "trastuzumab",
                    "sc_dose": mg_text(p.subcutaneous_trastuzumab_mg),
                    "dose_per_kg": "",
                    "label_dose": "",
                    **decided.bindings,
                },
                data=(
                    say("draft-order", drug=draft.form or "trastuzumab", ref=draft.ref),
                    *decided.data,
                ),
                missing=decided.missing,
                refs=(draft.ref, *decided.refs),
                note_keys=notes + decided.notes,
            )
        )
    return out


_INDICATOR: dict[str, Indicator] = {
    "unit-error": "critical",
    "dose-unread": "info",
    "weight-unknown": "info",
}


@dataclass(frozen=True, slots=True)
class _Judged:
    variant: str
    dose: str  # as the card shows it
    other_label: str | None = None  # the conjugate whose dose level it is
    bindings: Mapping[str, str | Said] = field(default_factory=dict)
    data: tuple[Said, ...] = ()  # the weight a dose in mg was judged by
    refs: tuple[str, ...] = ()
    notes: tuple[NoteKey, ...] = ()
    missing: tuple[Said, ...] = ()


def _iv_dose(f: PatientFacts, draft: DraftMedication, p: Parameters) -> _Judged | None:
    """IV trastuzumab by weight: none of the label's doses, or a unit error; in mg, above the
    largest by the latest weight."""
    doses = p.trastuzumab_doses_mg_per_kg
    dose = draft.dose_mg_per_kg
    if dose is None:
        return _iv_dose_in_mg(f, draft, p)
    error = dose >= max(doses) * p.unit_error_factor
    if not error and any(abs(dose - x) <= SAME_LEVEL for x in doses):
        return None
    if error:
        return _Judged("unit-error", mg_per_kg_text(dose))
    return _Judged("not-label-dose", mg_per_kg_text(dose), label_with_level(p, dose))


def _iv_dose_in_mg(f: PatientFacts, draft: DraftMedication, p: Parameters) -> _Judged | None:
    """A dose in mg above the largest label dose (8 mg/kg) at the latest fresh weight, by more
    than rounding to the vial (HOPA's tolerance); ten times it is a unit error. Herceptin
    Hylecta's fixed 600 mg written for the IV product is named. Below the largest dose nothing
    is judged; with no fresh weight nothing can be: information that says so."""
    weight, dose = f.weight, draft.dose_mg
    largest = max(p.trastuzumab_doses_mg_per_kg)
    if dose is None:
        return None
    if weight is None:
        return _Judged(
            "weight-unknown",
            mg_text(dose),
            bindings={"label_dose": mg_per_kg_text(largest)},
            missing=(say("missing-weight", days=p.weight_freshness_days),),
        )
    if dose >= largest * weight.value * p.unit_error_factor:
        return _Judged("unit-error", mg_text(dose))
    if dose <= largest * weight.value * (1 + p.weight_dose_tolerance_percent / 100):
        return None
    hylecta = abs(dose - p.subcutaneous_trastuzumab_mg) <= _SAME_MG
    return _Judged(
        "above-label-by-weight",
        mg_text(dose),
        bindings={
            "dose_per_kg": mg_per_kg_text(round(dose / weight.value, 1)),
            "label_dose": say(
                "dose-by-weight",
                per_kg=mg_per_kg_text(largest),
                mg=mg_text(largest * weight.value),
                kg=weight.value,
            ),
        },
        data=(say("weight-read", kg=weight.value, when=weight.when, ref=weight.ref),),
        refs=(weight.ref,),
        notes=(NoteKey("subcutaneous-dose-as-iv"),) if hylecta else (),
    )


def _subcutaneous_dose(draft: DraftMedication, p: Parameters) -> _Judged | None:
    """Herceptin Hylecta: 600 mg flat (its label: no loading dose, no adjustment for body
    weight); a dose by weight is IV trastuzumab's way of dosing, written into it."""
    fixed = p.subcutaneous_trastuzumab_mg
    if draft.dose_mg_per_kg is not None:
        return _Judged("subcutaneous-dose", mg_per_kg_text(draft.dose_mg_per_kg))
    if draft.dose_mg is None or abs(draft.dose_mg - fixed) <= _SAME_MG:
        return None
    error = draft.dose_mg >= fixed * p.unit_error_factor
    return _Judged("unit-error" if error else "subcutaneous-dose", mg_text(draft.dose_mg))
