"""Each HER2 drug's label LVEF rule as the R11 cards apply it: which drugs are in use or
ordered with a rule, from when (the pre-treatment LVEF), what the label does at an LVEF, and
the lines that name the values (clinical-logic F9, §3b C4)."""

from __future__ import annotations

from datetime import date
from typing import Literal, NamedTuple

from cds.facts import PatientFacts
from cds.facts.medications import HER2_ANTIBODY_CLASSES
from cds.facts.orders import DraftMedication
from cds.parameters import LvefRule, Parameters
from cds.said import Said, say

HER2_AB = tuple(HER2_ANTIBODY_CLASSES)
ANTIBODIES = ("trastuzumab", "pertuzumab", "trastuzumab emtansine", "trastuzumab deruxtecan")
# What needs an LVEF before it starts: the antibodies and conjugates, and lapatinib, which lowers
# LVEF too (Tykerb 5.1); tucatinib's and neratinib's labels ask for none.
BASELINE_CLASSES = (*HER2_AB, "HER2_TKI_LAP")


class LvefDrug(NamedTuple):
    """A HER2 drug with a label LVEF rule, and when its first course began."""

    ingredient: str
    rule: LvefRule
    start: date | None  # the first day it may have begun (heart failure since then is on it)
    # The last day it may have begun: an LVEF up to then is its pre-treatment value, as one of
    # the start's own day is (a start charted by month: that month's echo, C4).
    started_by: date | None


def lvef_data(f: PatientFacts) -> tuple[Said, ...]:
    out = []
    base, latest = f.lvef.baseline, f.lvef.latest
    if base is not None:
        out.append(say("lvef-baseline", percent=base.value, when=base.when))
    if latest is not None:
        out.append(say("lvef-latest", percent=latest.value, when=latest.when))
    # An LVEF that could not be read is named where it would have counted: in place of none,
    # or when newer than the latest read (the echo that is due may be done).
    if latest is None:
        refs = tuple(ref for ref, _ in f.lvef.unread)
        out.append(say("lvef-none-readable", refs=refs) if refs else say("lvef-none"))
    elif latest.when is not None:
        newer = [(ref, w) for ref, w in f.lvef.unread if w is not None and w > latest.when]
        if newer:
            refs, when = tuple(ref for ref, _ in newer), max(w for _, w in newer)
            out.append(say("lvef-newer-unread", refs=refs, when=when))
    return tuple(out)


LvefAction = Literal["withhold", "repeat"]


def lvef_action(
    r: LvefRule, baseline: float | None, latest: float, lln: float
) -> LvefAction | None:
    """One drug's label action for an LVEF result (clinical-logic §3b C4); None = continue.

    Without a baseline, only the thresholds that need no drop can act.
    """
    if r.withhold_below is not None and latest < r.withhold_below:
        return "withhold"
    if baseline is None:
        return None
    drop = baseline - latest
    if r.withhold_drop_at_least is not None and drop >= r.withhold_drop_at_least:
        return "withhold"
    if r.withhold_drop_over is not None and drop > r.withhold_drop_over:
        return "withhold"
    if r.below_lln_drop is not None and latest < lln and drop >= r.below_lln_drop:
        return "withhold"
    if r.band_low is not None and r.band_high is not None and r.band_low <= latest <= r.band_high:
        if r.band_withhold_drop is not None and drop >= r.band_withhold_drop:
            return "withhold"
        if r.band_repeat:
            return "repeat"
    return None


def lvef_drugs(
    f: PatientFacts, p: Parameters, *, ordered: tuple[DraftMedication, ...] | None = None
) -> list[LvefDrug]:
    """Each HER2 antibody/ADC possibly in use (F5, or of unknown status) that has a label LVEF
    rule, with the start of the treatment now given (`Medications.treatment_start`); or, given
    `ordered`, each one being ordered, with the start of the treatment the order continues
    (none: a first order, or one after a long gap, begins a treatment - its latest LVEF is its
    pre-treatment value). Clinical-logic F9: the LVEF before the current antibody started; an
    adjuvant course years before is another treatment (it had no LVEF on record: a drop on the
    metastatic course was read as 'no pre-treatment value')."""
    gap = p.new_treatment_gap_days
    in_use = [e.ingredient for e in f.meds.possibly_in_use(*HER2_AB)]
    ingredients = in_use if ordered is None else [d.ingredient for o in ordered for d in o.drugs]
    present = {*in_use, *ingredients}
    out: dict[str, LvefDrug] = {}
    for ingredient in ingredients:
        r = p.lvef_by_drug.get(ingredient)
        if ingredient in out or r is None:
            continue
        if r.partner is not None and r.partner not in present:
            r = r.without_partner
        ongoing_by = None if ordered is None else f.as_of
        span = f.meds.treatment_start(ingredient, gap, ongoing_by=ongoing_by)
        if span is not None:
            out[ingredient] = LvefDrug(ingredient, r, *span)
        elif ordered is not None:  # begins a treatment: the latest LVEF is its pre-treatment one
            out[ingredient] = LvefDrug(ingredient, r, f.as_of, f.as_of)
        else:
            out[ingredient] = LvefDrug(ingredient, r, None, None)
    return list(out.values())


def drug_names(rules: list[LvefRule]) -> str:
    """'pertuzumab and trastuzumab', 'T-DM1': each drug once, even when one label names two."""
    names = list(dict.fromkeys(r.drug for r in rules))
    names = [n for n in names if not any(n != m and n in m.split(" and ") for m in names)]
    return " and ".join(names)
