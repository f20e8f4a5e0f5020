"""R6n: one HER2 kinase inhibitor at a time - tucatinib, neratinib or lapatinib drafted while
another is drafted or possibly in use is a switch, not an addition (as R2c for bone agents).

No label or guideline regimen gives two of them together: the Tukysa label gives tucatinib with
trastuzumab and capecitabine, the Nerlynx label neratinib with capecitabine, the Tykerb label
lapatinib with capecitabine or letrozole, and ASCO-HER2-2022 lists each in its own regimen;
each label warns of severe diarrhoea and of hepatotoxicity, which add. The switch after
progression is where it happens: the new inhibitor is ordered and the old one's record is left
open.
"""

from __future__ import annotations

from cds.facts import PatientFacts
from cds.facts.orders import DraftOrders
from cds.parameters import Parameters
from cds.rules import ORDER_HOOKS, Decision, rule
from cds.rules.in_use import in_use_lines
from cds.rules.switch import drafted_beside, drafted_together, switch_not_add
from cds.said import say
from cds.terminology import MedClass

TKI_CLASSES: tuple[MedClass, ...] = ("HER2_TKI_TUC", "HER2_TKI_NER", "HER2_TKI_LAP")


@rule(
    "R6n",
    hooks=ORDER_HOOKS,
    variants=("switch-not-add", "drafted-together", "other-status-unknown"),
    bindings=("drug", "other", "drugs"),
    ingredients=("tucatinib", "neratinib", "lapatinib"),
    parameters=("active_window_days",),
    suggestions=("remove-draft", "keep-one"),
)
def r6n_one_kinase_inhibitor_at_a_time(
    f: PatientFacts, drafts: DraftOrders, p: Parameters
) -> list[Decision]:
    """A HER2 kinase inhibitor drafted while another is drafted in the order or possibly in use
    (F5: open by its status or dosed within the active window) → warning, switch rather than
    add, with the draft's removal suggested. When every other record is of unknown status the
    warning asks to confirm it stopped, with no suggestion (whether to switch is not known).
    Two drafted together with none in use are one card for the order: keep one, a suggestion
    for each (as R2c's bone agents); in order-select, a selected draft beside any other draft
    of the order, selected or not.
    The Tukysa, Nerlynx and Tykerb labels and ASCO-HER2-2022 give each in its own regimen."""
    out: list[Decision] = []
    drafted = drafts.with_class(*TKI_CLASSES)
    in_order = drafts.any_with_class(*TKI_CLASSES)  # selected or not, signed together
    for draft in drafted:
        mine = {d.ingredient for d in draft.drugs if d.med_class in TKI_CLASSES}
        in_use = [e for e in f.meds.possibly_in_use(*TKI_CLASSES) if e.ingredient not in mine]
        together = drafted_beside(draft, in_order, mine)
        if not in_use:
            if together and not any(d.variant == "drafted-together" for d in out):
                out.append(drafted_together(in_order, TKI_CLASSES))
            continue
        known = [e for e in in_use if not e.status_unknown]
        confirmed = bool(together or known)  # else only records of unknown status
        others = {e.ingredient for e in (known if confirmed else in_use)} | {
            d.ingredient for o in together for d in o.drugs if d.med_class in TKI_CLASSES
        }
        data = (
            say("draft-order", drug=", ".join(sorted(mine)), ref=draft.ref),
            *in_use_lines(f.meds, in_use),
            *(say("also-drafted", ref=o.ref) for o in together),
        )
        refs = (*(e.ref for e in in_use), *(o.ref for o in together))
        out.append(switch_not_add(draft, mine, others, data, refs, confirmed=confirmed))
    return out
