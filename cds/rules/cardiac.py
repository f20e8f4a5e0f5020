"""R10-R12: anthracycline with HER2 therapy, LVEF monitoring, T-DXd lung safety."""

from __future__ import annotations

from datetime import timedelta

from cds.facts import PatientFacts
from cds.facts.medications import HER2_ANTIBODY_CLASSES
from cds.facts.orders import DraftOrders
from cds.parameters import Parameters
from cds.rules import ORDER_HOOKS, PATIENT_VIEW, Decision, DeleteDraft, Order, Proposal, on, rule

HER2_AB = tuple(HER2_ANTIBODY_CLASSES)
ORDER_ECHO = Proposal(key="echocardiogram", actions=(Order(key="echocardiogram"),))


@rule("R10", hooks=ORDER_HOOKS, variants=("concurrent", "washout"))
def r10_anthracycline_order(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """Anthracycline ordered with trastuzumab-based therapy (or the reverse) → avoid (critical).

    Herceptin SmPC: trastuzumab and anthracyclines should not be used concurrently outside a
    monitored trial; avoid anthracyclines for up to 25 weeks after stopping (EU) - the US label's
    7 months is UNVERIFIED; the longer window is the configurable default. Seed 000 (27% cardiac
    dysfunction with AC + trastuzumab).
    """
    anthra = drafts.with_class("ANTHRACYCLINE")
    her2_drafts = drafts.any_with_class(*HER2_AB)
    her2_active = f.meds.active(*HER2_AB)
    out: list[Decision] = []
    if anthra and (her2_active or her2_drafts):
        data = [f"Draft order: anthracycline ({a.ref})" for a in anthra]
        data += [f"On {e.ingredient} ({e.ref})" for e in her2_active]
        data += [f"Draft order: HER2 therapy ({h.ref})" for h in her2_drafts]
        out.append(
            Decision(
                rule="R10",
                variant="concurrent",
                indicator="critical",
                data=tuple(data),
                refs=tuple(a.ref for a in anthra) + tuple(e.ref for e in her2_active),
                proposals=tuple(
                    Proposal(key="remove-anthracycline", actions=(DeleteDraft(draft_ref=a.ref),))
                    for a in anthra
                ),
            )
        )
        return out
    reverse = drafts.with_class(*HER2_AB)
    anthra_active = f.meds.active("ANTHRACYCLINE")
    if reverse and anthra_active:
        out.append(
            Decision(
                rule="R10",
                variant="concurrent",
                indicator="critical",
                data=tuple(f"Draft order: HER2 therapy ({h.ref})" for h in reverse)
                + tuple(f"On {e.ingredient} ({e.ref})" for e in anthra_active),
                refs=tuple(h.ref for h in reverse) + tuple(e.ref for e in anthra_active),
            )
        )
        return out
    if anthra:
        last = max(
            (e.last for e in f.meds.ever("HER2_MAB") if e.ingredient == "trastuzumab" and e.last),
            default=None,
        )
        if last is not None and f.as_of - last <= timedelta(days=p.anthracycline_washout_days):
            out.append(
                Decision(
                    rule="R10",
                    variant="washout",
                    indicator="warning",
                    data=(
                        f"Last trastuzumab {on(last)}",
                        *(f"Draft order: {a.ref}" for a in anthra),
                    ),
                    refs=tuple(a.ref for a in anthra),
                )
            )
    return out


@rule("R10pv", hooks=PATIENT_VIEW, variants=("both-active",))
def r10_both_active(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """An anthracycline and a HER2 antibody/ADC both active → review the regimen (warning).

    R10 patient-view variant. Herceptin SmPC: trastuzumab and anthracyclines should not be used
    concurrently except in a well-controlled trial with cardiac monitoring; seed 000.
    """
    anthra, her2 = f.meds.active("ANTHRACYCLINE"), f.meds.active(*HER2_AB)
    if not anthra or not her2:
        return []
    return [
        Decision(
            rule="R10pv",
            variant="both-active",
            indicator="warning",
            data=tuple(f"On {e.ingredient} ({e.ref})" for e in anthra + her2),
            refs=tuple(e.ref for e in anthra + her2),
        )
    ]


def _lvef_recent(f: PatientFacts, days: int) -> bool:
    latest = f.lvef.latest
    return (
        latest is not None
        and latest.when is not None
        and f.as_of - latest.when <= timedelta(days=days)
    )


def _lvef_data(f: PatientFacts) -> tuple[str, ...]:
    out = []
    if f.lvef.baseline is not None:
        out.append(f"LVEF baseline {f.lvef.baseline.value:g}% on {on(f.lvef.baseline.when)}")
    if f.lvef.latest is not None:
        out.append(f"LVEF latest {f.lvef.latest.value:g}% on {on(f.lvef.latest.when)}")
    else:
        out.append("No LVEF result on record")
    return tuple(out)


@rule("R11a", hooks=PATIENT_VIEW, variants=("lvef-due",))
def r11a_lvef_due(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """On a HER2 antibody/ADC with no LVEF in 3 months (+14 days grace) → echocardiogram.

    Herceptin US label: LVEF every 3 months during and on completion of trastuzumab. T-DM1,
    T-DXd and margetuximab labels also carry LV-dysfunction warnings.
    """
    her2 = f.meds.active(*HER2_AB)
    if not her2 or _lvef_recent(f, p.lvef_interval_days + p.lvef_grace_days):
        return []
    return [
        Decision(
            rule="R11a",
            variant="lvef-due",
            indicator="warning",
            data=tuple(f"On {e.ingredient} ({e.ref})" for e in her2) + _lvef_data(f),
            refs=tuple(e.ref for e in her2),
            proposals=(ORDER_ECHO,),
        )
    ]


@rule("R11b", hooks=ORDER_HOOKS, variants=("baseline-lvef",))
def r11b_baseline_lvef(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """A HER2 antibody/ADC ordered with no LVEF in 3 months → baseline LVEF (Herceptin label)."""
    orders = drafts.with_class(*HER2_AB)
    if not orders or _lvef_recent(f, p.lvef_interval_days):
        return []
    return [
        Decision(
            rule="R11b",
            variant="baseline-lvef",
            indicator="warning",
            data=tuple(f"Draft order: {o.ref}" for o in orders) + _lvef_data(f),
            refs=tuple(o.ref for o in orders),
            proposals=(ORDER_ECHO,),
        )
    ]


def lvef_hold(baseline: float, latest: float, p: Parameters) -> bool:
    """Herceptin label: ≥16-point absolute drop, or below LLN with a ≥10-point drop."""
    drop = baseline - latest
    return drop >= p.lvef_drop_absolute or (
        latest < p.lvef_lln_percent and drop >= p.lvef_drop_below_lln
    )


@rule("R11c", hooks=PATIENT_VIEW, variants=("hold", "low-no-baseline"), bindings=("drop",))
def r11c_lvef_drop(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """LVEF fell past the label thresholds on HER2 therapy → withhold and repeat in 4 weeks.

    Herceptin US label: withhold for a ≥16% absolute decrease from pre-treatment, or an LVEF below
    the institutional lower limit of normal with a ≥10% absolute decrease; repeat LVEF at 4-week
    intervals while withheld. An LVEF under the LLN with no baseline is a warning.
    """
    her2 = f.meds.active(*HER2_AB)
    latest, baseline = f.lvef.latest, f.lvef.baseline
    if not her2 or latest is None:
        return []
    refs = tuple(m.ref for m in (baseline, latest) if m is not None)
    if baseline is not None and baseline.ref != latest.ref:
        if lvef_hold(baseline.value, latest.value, p):
            return [
                Decision(
                    rule="R11c",
                    variant="hold",
                    indicator="critical",
                    data=_lvef_data(f) + tuple(f"On {e.ingredient} ({e.ref})" for e in her2),
                    bindings={"drop": f"{baseline.value - latest.value:g}"},
                    refs=refs,
                    proposals=(ORDER_ECHO,),
                )
            ]
        return []
    if baseline is None and latest.value < p.lvef_lln_percent:
        return [
            Decision(
                rule="R11c",
                variant="low-no-baseline",
                indicator="warning",
                data=_lvef_data(f),
                refs=refs,
            )
        ]
    return []


@rule(
    "R12",
    hooks=(*PATIENT_VIEW, *ORDER_HOOKS),
    variants=("ild-active", "ild-order", "start-monitoring"),
)
def r12_tdxd_lung(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """T-DXd with interstitial lung disease/pneumonitis → boxed warning; starting it → monitor.

    Enhertu label boxed warning (ILD/pneumonitis); DB-09 ILD rate 12.1%. The ILD code set is
    UNVERIFIED: recognised by text.
    """
    ild = f.disease.interstitial_lung_disease
    ordered = drafts.with_ingredient("trastuzumab deruxtecan")
    active = list(f.meds.active("HER2_ADC_TDXD"))
    if ordered:
        return [
            Decision(
                rule="R12",
                variant="ild-order" if ild.present else "start-monitoring",
                indicator="critical" if ild.present else "info",
                data=tuple(f"Draft order: {o.ref}" for o in ordered)
                + ((f"ILD/pneumonitis recorded {on(ild.since)}",) if ild.present else ()),
                refs=tuple(o.ref for o in ordered) + ild.refs,
            )
        ]
    if active and ild.present:
        return [
            Decision(
                rule="R12",
                variant="ild-active",
                indicator="warning",
                data=(
                    f"ILD/pneumonitis recorded {on(ild.since)}",
                    *tuple(f"On trastuzumab deruxtecan ({e.ref})" for e in active),
                ),
                refs=ild.refs + tuple(e.ref for e in active),
            )
        ]
    return []
