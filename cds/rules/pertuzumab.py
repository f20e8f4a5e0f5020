"""Pertuzumab with its partner and in its line.

R6e: pertuzumab drafted with no trastuzumab or T-DXd to go with it; R6epv: pertuzumab in use
when the trastuzumab or T-DXd it went with has ended. R6i: T-DXd with pertuzumab, the
first-line combination, after a prior metastatic regimen.
"""

from __future__ import annotations

from collections.abc import Sequence

from cds.facts import PatientFacts
from cds.facts.medications import Exposure
from cds.facts.orders import DraftMedication, DraftOrders
from cds.parameters import Parameters
from cds.rules import ORDER_HOOKS, PATIENT_VIEW, Decision, rule
from cds.rules.her2 import HER2_VALUESETS, LINE_PARAMETERS, therapy_data
from cds.rules.in_use import in_use_lines, on_drug_line
from cds.said import say
from cds.terminology import MedClass

# What pertuzumab is given with: trastuzumab (CLEOPATRA, Phesgo) or T-DXd (DESTINY-Breast09).
PERTUZUMAB_PARTNERS = ("trastuzumab", "trastuzumab deruxtecan")


@rule(
    "R6e",
    hooks=ORDER_HOOKS,
    variants=("without-trastuzumab",),
    ingredients=("pertuzumab", *PERTUZUMAB_PARTNERS),
    parameters=("active_window_days",),
)
def r6e_pertuzumab_alone(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """Pertuzumab drafted while no trastuzumab or T-DXd is drafted in the order, in use, or of
    unknown status in the record → warning.

    The Perjeta label: pertuzumab is given with trastuzumab, and PERJETA should be discontinued
    if trastuzumab is discontinued; the Enhertu DESTINY-Breast09 dosing: pertuzumab is not to be
    administered as a single agent. The usual cause is trastuzumab stopped (for a fall in LVEF,
    say) with pertuzumab left in the plan, or trastuzumab left out of the order. Phesgo carries
    both. The latest trastuzumab or T-DXd record, when there is one, is named.
    """
    alone = [o for o in drafts.with_ingredient("pertuzumab") if not o.has(*PERTUZUMAB_PARTNERS)]
    if not alone or any(o.has(*PERTUZUMAB_PARTNERS) for o in drafts.medications):
        return []
    classes: tuple[MedClass, ...] = ("HER2_MAB", "HER2_ADC_TDXD")
    if any(e.ingredient in PERTUZUMAB_PARTNERS for e in f.meds.possibly_in_use(*classes)):
        return []
    last = f.meds.last_recorded(*classes, ingredients=PERTUZUMAB_PARTNERS)
    data = [say("draft-order", drug="pertuzumab", ref=o.ref) for o in alone]
    if last is not None:
        data.append(
            say("drug-last-recorded", drug=last.ingredient, when=last.last_shown, ref=last.ref)
        )
    return [
        Decision(
            variant="without-trastuzumab",
            indicator="warning",
            data=tuple(data),
            refs=(*(o.ref for o in alone), *((last.ref,) if last else ())),
        )
    ]


@rule(
    "R6epv",
    hooks=PATIENT_VIEW,
    variants=("without-trastuzumab",),
    bindings=("partner",),
    ingredients=("pertuzumab", *PERTUZUMAB_PARTNERS),
    parameters=("active_window_days",),
)
def r6e_pertuzumab_recorded_alone(
    f: PatientFacts, drafts: DraftOrders, p: Parameters
) -> list[Decision]:
    """R6e's patient-view variant: pertuzumab in use (F5: a record open by its status, or a
    dose within the active window, as a chart kept dose by dose says it) while no trastuzumab or
    T-DXd is in use or of unknown status, and the latest one recorded has ended → warning,
    naming both records with their dates.

    The Perjeta label: PERJETA should be discontinued if trastuzumab is discontinued; the
    Enhertu DESTINY-Breast09 dosing: pertuzumab is not administered as a single agent. No
    record of trastuzumab or T-DXd at all is missing data, not a finding: no card. Phesgo
    carries both, so its record never leaves pertuzumab alone."""
    classes: tuple[MedClass, ...] = ("HER2_MAB", "HER2_ADC_TDXD")
    if any(e.ingredient in PERTUZUMAB_PARTNERS for e in f.meds.possibly_in_use(*classes)):
        return []
    last = f.meds.last_recorded(*classes, ingredients=PERTUZUMAB_PARTNERS)
    if last is None:
        return []
    pertuzumab = [e for e in f.meds.active("HER2_MAB") if e.ingredient == "pertuzumab"]
    if not pertuzumab:
        return []
    return [
        Decision(
            variant="without-trastuzumab",
            indicator="warning",
            bindings={"partner": last.ingredient},
            data=(
                *(on_drug_line(f.meds, e) for e in pertuzumab),
                say("drug-last-recorded", drug=last.ingredient, when=last.last_shown, ref=last.ref),
            ),
            refs=(*(e.ref for e in pertuzumab), last.ref),
        )
    ]


@rule(
    "R6i",
    hooks=ORDER_HOOKS,
    variants=("not-first-line", "pertuzumab-in-use", "added-to-tdxd"),
    bindings=("prior",),
    valuesets=HER2_VALUESETS,
    ingredients=("trastuzumab deruxtecan", "pertuzumab"),
    parameters=(*LINE_PARAMETERS, "active_window_days"),
)
def r6i_tdxd_pertuzumab_after_first_line(
    f: PatientFacts, drafts: DraftOrders, p: Parameters
) -> list[Decision]:
    """T-DXd and pertuzumab drafted together while an anti-HER2 regimen in the metastatic setting
    is already on record as ended or progressing (F6) → warning.

    The Enhertu label gives T-DXd with pertuzumab as first-line treatment only (DESTINY-
    Breast09; its dosing page: 'intended exclusively for the ... 1L HER2+ mBC indication');
    after a prior anti-HER2 regimen in the metastatic setting T-DXd is given alone (DESTINY-
    Breast03). The card shows the lines and the dates it counted, as R6 does; a count that
    rests on conflicting dates says so. T-DXd drafted alone while the pertuzumab of the line
    before is still recorded as given (a record open by its status, as the trastuzumab of
    R6d's switch card) would give the same combination: its own variant asks to stop it; so
    does pertuzumab drafted beside the T-DXd in use (Phesgo, which carries trastuzumab too, is
    R6d's).
    """
    together = drafts.with_ingredient("trastuzumab deruxtecan", "pertuzumab")
    tdxd = [o for o in drafts.medications if o.has("trastuzumab deruxtecan")]
    pert = [o for o in drafts.medications if o.has("pertuzumab")]
    prior = f.lines.metastatic_her2_regimens
    if not together or prior < 1:
        return []
    if not tdxd:  # pertuzumab (not as Phesgo: R6d's) drafted beside the T-DXd in use
        added = [o for o in drafts.with_ingredient("pertuzumab") if not o.has("trastuzumab")]
        in_use = f.meds.possibly_in_use("HER2_ADC_TDXD")
        return _later_line(f, "added-to-tdxd", prior, added, in_use) if added and in_use else []
    if not pert:  # T-DXd drafted while pertuzumab's record is still open
        drafted_tdxd = drafts.with_ingredient("trastuzumab deruxtecan")
        left = [
            e
            for e in f.meds.active("HER2_MAB")
            if e.ingredient == "pertuzumab" and e.recorded_ongoing
        ]
        if not drafted_tdxd or not left:
            return []
        return _later_line(f, "pertuzumab-in-use", prior, drafted_tdxd, left)
    return _later_line(f, "not-first-line", prior, (*tdxd, *(o for o in pert if o not in tdxd)))


def _later_line(
    f: PatientFacts,
    variant: str,
    prior: int,
    drafted: Sequence[DraftMedication],
    records: Sequence[Exposure] = (),
) -> list[Decision]:
    """R6i's card: the drafts, the records in use beside them, the lines and their dates."""
    return [
        Decision(
            variant=variant,
            indicator="warning",
            bindings={"prior": str(prior)},
            data=(
                *(say("draft-order-ref", ref=o.ref) for o in drafted),
                *in_use_lines(f.meds, records),
                *therapy_data(f),
            ),
            refs=(*(o.ref for o in drafted), *(e.ref for e in records)),
        )
    ]
