"""R11: LVEF monitoring on HER2 therapy, each drug's label thresholds."""

from __future__ import annotations

from dataclasses import replace

from cds.facts import PatientFacts
from cds.facts.labs import Measurement
from cds.facts.medications import as_charted
from cds.facts.orders import DraftMedication, DraftOrders
from cds.parameters import LvefRule, Parameters
from cds.rules import (
    ORDER_HOOKS,
    PATIENT_VIEW,
    Decision,
    Indicator,
    NoteKey,
    rule,
)
from cds.rules.echo import echo_due, echo_on_record, echo_proposal
from cds.rules.in_use import (
    ACTIVE_PARAMETERS,
    held,
    held_line,
    in_use_lines,
    unknown_status_line,
)
from cds.rules.lvef_labels import (
    ANTIBODIES,
    BASELINE_CLASSES,
    HER2_AB,
    LvefAction,
    LvefDrug,
    drug_names,
    lvef_action,
    lvef_data,
    lvef_drugs,
)
from cds.said import Said, say


@rule(
    "R11a",
    hooks=PATIENT_VIEW,
    variants=("lvef-due", "lvef-unread"),
    bindings=("drugs",),
    valuesets=("lvef", "echocardiogram"),
    ingredients=ANTIBODIES,
    parameters=("lvef_interval_days", "lvef_grace_days", "lvef_by_drug", *ACTIVE_PARAMETERS),
    orders=("echocardiogram",),
    suggestions=("echocardiogram",),
)
def r11a_lvef_due(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """On trastuzumab, pertuzumab or T-DM1 with no LVEF in 3 months (+14 days grace) → echo;
    when an LVEF of those months could not be read (a range '55-60%', a bound '<45%'), the
    echo was done: the card asks to read its report, and suggests no second one.

    Herceptin, Perjeta and Kadcyla labels: LVEF every 3 months during treatment. The Enhertu
    label asks for LVEF "at regular intervals as clinically indicated", so T-DXd alone never
    makes an LVEF-due card (C4).
    """
    monitored = [(d.ingredient, d.rule) for d in lvef_drugs(f, p) if d.rule.monitor_every_3_months]
    if not monitored or f.lvef.measured_within(f.as_of, p.lvef_interval_days + p.lvef_grace_days):
        return []
    on_them = [
        e for e in f.meds.possibly_in_use(*HER2_AB) if e.ingredient in {i for i, _ in monitored}
    ]
    # The LVEF stays due until it is read; an echocardiogram already ordered is named, not
    # ordered twice (§3c D20).
    ordered = echo_on_record(f, p, drafts)
    window = p.lvef_interval_days + p.lvef_grace_days
    done = [ref for ref, w in f.lvef.unread if w is not None and (f.as_of - w).days <= window]
    return [
        Decision(
            variant="lvef-unread" if done else "lvef-due",
            indicator="warning",
            bindings={"drugs": drug_names([r for _, r in monitored])},
            data=in_use_lines(f.meds, on_them) + lvef_data(f) + ordered,
            refs=(*(e.ref for e in on_them), *done),
            proposals=() if done else echo_proposal(f, p, drafts),
        )
    ]


@rule(
    "R11b",
    hooks=ORDER_HOOKS,
    variants=("baseline-lvef", "baseline-lvef-lapatinib"),
    valuesets=("lvef", "echocardiogram"),
    ingredients=(*ANTIBODIES, "lapatinib"),
    parameters=("lvef_interval_days",),
    orders=("echocardiogram",),
    suggestions=("echocardiogram",),
)
def r11b_baseline_lvef(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """A HER2 antibody/ADC or lapatinib ordered with no LVEF in 3 months → baseline LVEF
    (Herceptin label; Enhertu and Kadcyla labels: assess LVEF before starting; Tykerb 5.1:
    evaluate LVEF before starting lapatinib and during treatment; a card about lapatinib alone
    cites its label)."""
    orders = drafts.with_class(*BASELINE_CLASSES)
    if not orders or not echo_due(f, p):
        return []
    lapatinib_only = all(o.has_class("HER2_TKI_LAP") and not o.has_class(*HER2_AB) for o in orders)
    # Needed before the first dose however it is ordered; one ordered or being ordered with
    # the drug is named, not ordered twice (§3c D20).
    ordered = echo_on_record(f, p, drafts)
    return [
        Decision(
            variant="baseline-lvef-lapatinib" if lapatinib_only else "baseline-lvef",
            indicator="warning",
            data=tuple(say("draft-order-ref", ref=o.ref) for o in orders) + lvef_data(f) + ordered,
            refs=tuple(o.ref for o in orders),
            proposals=echo_proposal(f, p, drafts),
        )
    ]


def _slug(ingredient: str) -> str:
    return ingredient.replace(" ", "-")


def _note(ingredient: str, r: LvefRule, action: str) -> NoteKey:
    """The label action's note for the drug, worded for it given without its partner when so."""
    return NoteKey(f"lvef-{_slug(ingredient)}{'-alone' if r.alone else ''}-{action}")


@rule(
    "R11c",
    hooks=(*PATIENT_VIEW, *ORDER_HOOKS),
    variants=(
        "withhold",
        "withhold-no-baseline",
        "withhold-before-start",
        "held",
        "repeat",
        "heart-failure",
        "heart-failure-undated",
        "low-no-baseline",
        "low-before-start",
        "lapatinib-below-lln",
        "lapatinib-low-before-start",
    ),
    bindings=("drugs", "latest", "drop", "weeks"),
    valuesets=("lvef", "heart-failure"),
    ingredients=(*ANTIBODIES, "lapatinib"),
    parameters=(
        "lvef_by_drug",
        "lvef_lln_percent",
        "new_treatment_gap_days",
        *ACTIVE_PARAMETERS,
    ),
    orders=("echocardiogram",),
    suggestions=("echocardiogram",),
    notes=tuple(
        f"lvef-{_slug(i)}-{a}"
        for i in (*ANTIBODIES, "pertuzumab-alone")
        for a in ("withhold", "repeat", "heart-failure")
    ),
)
def r11c_lvef_drop(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """LVEF past a label threshold for a drug the patient is on → that drug's label action.

    Each drug's own label (C4): Herceptin - withhold for a ≥16-point drop, or below the LLN with
    a ≥10-point drop, repeat in 4 weeks; Perjeta (metastatic) - withhold pertuzumab and
    trastuzumab below 40%, or 40-45% with a ≥10-point drop; Kadcyla - do not administer below 40%
    or at 40-45% with a ≥10-point drop, continue and repeat within 3 weeks at 40-45% with a
    smaller drop; Enhertu - interrupt below 40% or for a drop over 20 points, or at 40-45% with
    a 10-20-point drop, continue and repeat within 3 weeks at 40-45% with a smaller drop, continue
    above 45%; symptomatic heart failure on T-DM1 or T-DXd - discontinue. The card names the drug
    whose label it applies and never a drug the patient is not on. On the order hooks the same
    label actions apply to the drugs being ordered (the dose the label says to hold), and to
    nothing else: the chart's own cards come when it is opened. Lapatinib has its own card
    (`_lapatinib_below_lln`).
    """
    lapatinib = _lapatinib_below_lln(f, drafts, p)
    return _antibody_actions(f, drafts, p) + ([lapatinib] if lapatinib is not None else [])


def _antibody_actions(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """The antibodies' and conjugates' label actions (r11c_lvef_drop)."""
    drafted: tuple[DraftMedication, ...] = ()
    if drafts.ordering:
        drafted = drafts.with_ingredient(*ANTIBODIES)
        drugs = lvef_drugs(f, p, ordered=drafted)
        # A first order has no heart failure "on" the drug (R6 notes heart failure).
        given = {e.ingredient for e in f.meds.ever(*HER2_AB)}
        treated = [d for d in drugs if d.ingredient in given]
    else:
        drugs = treated = lvef_drugs(f, p)
    if not drugs:
        return []
    out = [d for d in (_heart_failure_on_drug(f, treated),) if d is not None]
    latest = f.lvef.latest
    if latest is not None:
        starting = bool(drafted) and not treated
        out += _label_actions(f, p, drugs, latest, drafts, starting=starting)
        low = _low_without_baseline(
            f,
            p,
            drugs,
            latest,
            withheld=any(d.variant in _HOLDS for d in out),
            starting=starting,
        )
        out += [low] if low is not None else []
    out = [_naming_drafts(d, drafted) for d in out]
    return [_naming_unknown(f, d) for d in out]


def _naming_drafts(d: Decision, drafted: tuple[DraftMedication, ...]) -> Decision:
    """The orders a card is about, named with their references first."""
    lines = tuple(say("draft-order-ref", ref=o.ref) for o in drafted)
    return replace(d, data=(*lines, *d.data), refs=(*(o.ref for o in drafted), *d.refs))


def _lapatinib_below_lln(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> Decision | None:
    """Lapatinib (possibly) in use, or being ordered, with the latest LVEF below the lower limit
    of normal (Tykerb label 2.2 and 5.1: a normal LVEF before starting and during treatment;
    discontinue lapatinib for an LVEF below the institution's lower limit of normal, or a
    decrease of grade 2 or more, which is said on the card and not graded here).

    Measured on the treatment in use (at or after its first dose, or either date unknown) it is
    the label's discontinue threshold (critical); measured before it - a first order, a restart
    after a stop, or a course with no LVEF since it began - it is a value to review before
    lapatinib goes on (warning). No LVEF at all is R11b's.
    """
    latest = f.lvef.latest
    if latest is None or latest.value >= p.lvef_lln_percent:
        return None
    # On the order hooks the card is about the lapatinib being ordered; the records in use are
    # named on either hook, with their dates.
    drafted = drafts.with_class("HER2_TKI_LAP") if drafts.ordering else ()
    in_use = f.meds.possibly_in_use("HER2_TKI_LAP")
    if not (drafted if drafts.ordering else in_use):
        return None
    # The treatment in use began at its first dose, a hold and its resumption being one
    # treatment (F9, as for the antibodies: `Medications.treatment_start`); no start known, the
    # LVEF is read as on it. An LVEF on the day of the first dose is its pre-treatment value
    # (and one in the month a start is charted by).
    span = f.meds.treatment_start("lapatinib", p.new_treatment_gap_days) if in_use else None
    before_start = not in_use or (
        span is not None and latest.when is not None and latest.when <= span[1]
    )
    started = span if span is not None and not before_start else None
    base = f.lvef.baseline_before(started[1]) if started is not None else None
    base = None if base == latest else base  # the same result (ids may be missing)
    pretreatment = (
        ()
        if base is None or started is None
        else (
            say(
                "lvef-pretreatment",
                drug="lapatinib",
                label="Tykerb",
                percent=base.value,
                when=base.when,
                since=as_charted(*started),
            ),
        )
    )
    decision = Decision(
        variant="lapatinib-low-before-start" if before_start else "lapatinib-below-lln",
        indicator="warning" if before_start else "critical",
        bindings={"latest": f"{latest.value:g}"},
        data=in_use_lines(f.meds, in_use)
        + pretreatment
        + lvef_data(f)
        + (echo_on_record(f, p, drafts) if before_start else ()),
        refs=(*(e.ref for e in in_use), *(() if base is None else (base.ref,)), latest.ref),
        proposals=echo_proposal(f, p, drafts) if before_start else (),
    )
    return _naming_drafts(decision, drafted)


def _naming_unknown(f: PatientFacts, d: Decision) -> Decision:
    """A card that a record of unknown status helped raise names it (`possibly_in_use`)."""
    unknown = f.meds.of_unknown_status(*HER2_AB)
    if not unknown:
        return d
    lines = tuple(unknown_status_line(e) for e in unknown)
    return replace(d, data=(*d.data, *lines), refs=(*d.refs, *(e.ref for e in unknown)))


def _heart_failure_on_drug(f: PatientFacts, drugs: list[LvefDrug]) -> Decision | None:
    """Kadcyla and Enhertu labels: symptomatic congestive heart failure on treatment -
    discontinue. Heart failure dated on the drug is the label's case (critical); an earlier
    diagnosis is not "on treatment" (R6 notes heart failure case by case). Recorded with no
    date at all, whether it began on treatment is not known: a warning that says so, never
    silence (missing data is no negative finding)."""
    hf = f.disease.heart_failure
    failing = [
        (i, r)
        for i, r, start, _ in drugs
        if r.chf_discontinue
        and hf.present
        and (hf.since is None or start is None or hf.since >= start)
    ]
    if not failing:
        return None
    undated = hf.since is None
    return Decision(
        variant="heart-failure-undated" if undated else "heart-failure",
        indicator="warning" if undated else "critical",
        bindings={"drugs": drug_names([r for _, r in failing])},
        data=(say("heart-failure", when=hf.since), *lvef_data(f)),
        note_keys=tuple(_note(i, r, "heart-failure") for i, r in failing),
        refs=hf.refs,
    )


# The cards that hold a drug, or find it held.
_HOLDS = frozenset({"withhold", "withhold-no-baseline", "withhold-before-start", "held"})
# The label actions, the most urgent first, and the card each makes.
_LEVELS: tuple[tuple[LvefAction, Indicator], ...] = (
    ("withhold", "critical"),
    ("repeat", "warning"),
)


# Each drug whose label acts: the drug, its rule, and its decline (None: no pre-treatment LVEF).
_Hits = dict[LvefAction, list[tuple[str, LvefRule, float | None]]]


def _label_actions(
    f: PatientFacts,
    p: Parameters,
    drugs: list[LvefDrug],
    latest: Measurement,
    drafts: DraftOrders,
    *,
    starting: bool,
) -> list[Decision]:
    """Each drug's own label thresholds against its pre-treatment LVEF (lvef_action): withhold
    (critical) before repeat (warning), each card naming only the drugs it applies to. A hold
    that needs no decline (below 40%) with none known says so: before a first dose
    (`starting`), that the treatment is not to begin as ordered; on treatment, that no
    pre-treatment value was there to measure one. Drugs the chart already holds get the
    label's repeat LVEF (`_all_held`)."""
    hits, data, refs = _thresholds_met(f, p, drugs, latest)
    on_record = echo_on_record(f, p, drafts)
    out = []
    for action, indicator in _LEVELS:
        found = hits[action]
        if not found:
            continue
        drops = [d for _, _, d in found if d is not None]
        variant: str = action
        if action == "withhold" and not drops:
            variant = "withhold-before-start" if starting else "withhold-no-baseline"
        holds: tuple[Said, ...] = ()
        if action == "withhold" and _all_held(f, drafts, [i for i, _, _ in found], latest):
            # C9: the hold is on record; the label's repeat LVEF is what remains (information
            # once that echocardiogram is ordered too).
            variant, indicator = "held", "info" if on_record else "warning"
            holds = tuple(held_line(f.meds, i, r.drug_alone or r.drug) for i, r, _ in found)
        out.append(
            Decision(
                variant=variant,
                indicator=indicator,
                bindings={
                    "drugs": drug_names([r for _, r, _ in found]),
                    "latest": f"{latest.value:g}",
                    "drop": f"{max(drops):g}" if drops else "unknown",
                    "weeks": f"{min(r.repeat_weeks for _, r, _ in found)}",
                },
                data=(*data, *holds, *on_record),
                note_keys=tuple(_note(i, r, action) for i, r, _ in found),
                refs=refs,
                proposals=echo_proposal(f, p, drafts),
            )
        )
    return out


def _thresholds_met(
    f: PatientFacts, p: Parameters, drugs: list[LvefDrug], latest: Measurement
) -> tuple[_Hits, tuple[Said, ...], tuple[str, ...]]:
    """Each drug's label action for the latest LVEF against its pre-treatment value, with the
    lines that name the values and the references they come from."""
    hits: _Hits = {"withhold": [], "repeat": []}
    data: list[Said] = []
    refs: list[str] = [latest.ref]
    for ingredient, r, start, started_by in drugs:
        base = f.lvef.baseline_before(started_by)
        if base is not None and base == latest:  # the same result (ids may be missing)
            base = None
        action = lvef_action(r, base.value if base else None, latest.value, p.lvef_lln_percent)
        if base is not None:
            data.append(
                say(
                    "lvef-pretreatment",
                    drug=r.drug,
                    label=r.label,
                    percent=base.value,
                    when=base.when,
                    since=as_charted(start, started_by),
                )
            )
            refs.append(base.ref)
        if action is not None:
            hits[action].append((ingredient, r, base.value - latest.value if base else None))
    data.append(say("lvef-latest", percent=latest.value, when=latest.when))
    return hits, tuple(data), tuple(dict.fromkeys(refs))


def _all_held(
    f: PatientFacts, drafts: DraftOrders, ingredients: list[str], latest: Measurement
) -> bool:
    """Each drug the label holds is on hold on the chart (`in_use.held`); an order for one
    being signed is no hold."""
    return not drafts.ordering and all(held(f.meds, i, latest.when) for i in ingredients)


def _low_without_baseline(
    f: PatientFacts,
    p: Parameters,
    drugs: list[LvefDrug],
    latest: Measurement,
    *,
    withheld: bool,
    starting: bool = False,
) -> Decision | None:
    """An LVEF below the lower limit of normal with no pre-treatment value to measure a drop
    from: the label thresholds cannot be applied, and missing data is never a pass. Before a
    first dose (`starting`: drugs being ordered that were never given) it is that value."""
    no_baseline = all(f.lvef.baseline_before(d.started_by) in (None, latest) for d in drugs)
    if withheld or not no_baseline or latest.value >= p.lvef_lln_percent:
        return None
    return Decision(
        variant="low-before-start" if starting else "low-no-baseline",
        indicator="warning",
        bindings={"drugs": drug_names([d.rule for d in drugs]), "latest": f"{latest.value:g}"},
        data=lvef_data(f),
        refs=(latest.ref,),
    )
