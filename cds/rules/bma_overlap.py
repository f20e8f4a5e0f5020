"""R2c: one bone-modifying agent at a time (clinical-logic §3c D3): an agent drafted while another
is still acting is a switch, not an addition."""

from __future__ import annotations

from cds.facts import PatientFacts
from cds.facts.days import within
from cds.facts.medications import Exposure
from cds.facts.orders import DraftOrders
from cds.parameters import Parameters
from cds.rules import ORDER_HOOKS, Decision, rule
from cds.rules.in_use import on_drug_line, unknown_status_line
from cds.rules.switch import drafted_beside, drafted_together, switch_not_add
from cds.said import Said, say


def _still_acting(e: Exposure, f: PatientFacts, p: Parameters) -> bool:
    """Its last dose within the agent's own dosing interval, or (with no dose date to go by,
    as a course still recorded active) active by F5 (D3). An oral bisphosphonate has no
    interval here (D3: "while taken"): F5's activity decides, for a dose charted too."""
    days = p.bma_overlap_days.get(e.ingredient)
    last = e.last
    recent = (
        days is not None and last is not None and within(last, f.as_of, days, p.clock_lead_days)
    )
    if e.record.resource_type == "MedicationAdministration" and days is not None:
        return recent  # a dose given on a date: its interval decides
    return recent or e.active


def _acting_line(f: PatientFacts, e: Exposure) -> Said:
    """'On alendronate since <its course's start>' for a course recorded as going on (its
    start is no dose's date); '<drug>: last recorded <day>' for a dose or a course that ended."""
    if e.active and e.record.resource_type != "MedicationAdministration" and e.record.end is None:
        return on_drug_line(f.meds, e)
    return say("drug-last-recorded", drug=e.ingredient, when=e.last_shown, ref=e.ref)


@rule(
    "R2c",
    hooks=ORDER_HOOKS,
    variants=("switch-not-add", "drafted-together", "other-status-unknown"),
    bindings=("drug", "other", "drugs"),
    ingredients=(
        "denosumab",
        "zoledronic acid",
        "pamidronate",
        "ibandronate",
        "alendronate",
        "risedronate",
    ),
    parameters=(
        "bma_overlap_days",
        "active_window_days",
        "zoledronic_window_days",
        "clock_lead_days",
    ),
    suggestions=("remove-draft", "keep-one"),
)
def r2c_one_bma_at_a_time(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """A bone-modifying agent drafted while another is acting → switch, do not add (§3c D3).

    ASCO-BMA-2017 and the Xgeva and Zometa labels give one agent, never two together (Xgeva: do
    not give with other denosumab products or with bisphosphonates' effects overlapping). An
    agent is still acting while active, or within its interval of the last dose: denosumab 4
    weeks, zoledronic acid and pamidronate 12 weeks, an oral bisphosphonate (ibandronate,
    alendronate, risedronate) while taken. Two different agents drafted together, with none
    given yet, are one card for the order: keep one (a suggestion for each); in order-select, a
    selected draft beside any other draft of the order, selected or not, since they are signed
    together. Another agent recorded with status 'unknown' (open-ended) may be acting: a
    warning asks to confirm it stopped, with no suggestion, since whether to switch or add is
    not known; beside an agent that is acting, it is named on that card.
    """
    out: list[Decision] = []
    drafted = drafts.with_class("BMA")
    # Beside the drafts checked (order-select's selections), every draft of the order: the
    # ones not selected are signed with them.
    in_order = drafts.any_with_class("BMA")
    for draft in drafted:
        mine = {d.ingredient for d in draft.drugs if d.med_class == "BMA"}
        acting = [
            e for e in f.meds.ever("BMA") if e.ingredient not in mine and _still_acting(e, f, p)
        ]
        unknown = [
            e
            for e in f.meds.of_unknown_status("BMA")
            if e.ingredient not in mine and e not in acting
        ]
        together = drafted_beside(draft, in_order, mine)
        if not acting and not unknown:
            if together and not any(d.variant == "drafted-together" for d in out):
                out.append(drafted_together(in_order, ("BMA",)))
            continue
        confirmed = bool(acting or together)
        others = {e.ingredient for e in (acting if confirmed else unknown)} | {
            d.ingredient for o in together for d in o.drugs if d.med_class == "BMA"
        }
        data = [say("draft-order", drug=", ".join(sorted(mine)), ref=draft.ref)]
        data += [_acting_line(f, e) for e in acting]
        data += [unknown_status_line(e) for e in unknown]
        data += [say("also-drafted", ref=o.ref) for o in together]
        refs = (*(e.ref for e in (*acting, *unknown)), *(o.ref for o in together))
        out.append(switch_not_add(draft, mine, others, data, refs, confirmed=confirmed))
    return out
