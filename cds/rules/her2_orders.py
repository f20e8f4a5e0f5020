"""R6c: a HER2-targeted drug other than T-DXd drafted while the HER2 result in use is negative.
R6d: two products carrying the same HER2 antibody drafted together, or a conjugate drafted while
another trastuzumab product is still recorded as given (or the other way round); R6dpv: a
conjugate and another trastuzumab product both in use on the chart.
(Pertuzumab's partner and line, R6e, R6epv and R6i, are rules/pertuzumab.py's.)

Trastuzumab (Herceptin: "HER2-overexpressing breast cancer"; select patients by an FDA-approved
companion diagnostic), pertuzumab (Perjeta), T-DM1 (Kadcyla), margetuximab, tucatinib
(Tukysa), neratinib (Nerlynx) and lapatinib (Tykerb) are indicated for HER2-positive breast
cancer only. T-DXd is also given for HER2-low and -ultralow disease: its orders are R15's.
"""

from __future__ import annotations

from datetime import date

from cds.facts import PatientFacts
from cds.facts.medications import HER2_ANTIBODY_CLASSES, Exposure
from cds.facts.orders import SUBCUTANEOUS_TRASTUZUMAB, DraftMedication, DraftOrders
from cds.parameters import Parameters
from cds.rules import ORDER_HOOKS, PATIENT_VIEW, Decision, DeleteDraft, Proposal, rule
from cds.rules.her2 import HER2_VALUESETS, her2_result_lines
from cds.rules.in_use import on_drug_line, unknown_status_line
from cds.rules.switch import listed
from cds.said import say
from cds.terminology import MedClass

HER2_POSITIVE_ONLY: tuple[MedClass, ...] = (
    "HER2_MAB",
    "HER2_ADC_TDM1",
    "HER2_TKI_TUC",
    "HER2_TKI_NER",
    "HER2_TKI_LAP",
)


@rule(
    "R6c",
    hooks=ORDER_HOOKS,
    variants=("her2-negative", "her2-equivocal"),
    bindings=("drugs",),
    valuesets=HER2_VALUESETS,
    ingredients=(
        "trastuzumab",
        "pertuzumab",
        "margetuximab",
        "trastuzumab emtansine",
        "tucatinib",
        "neratinib",
        "lapatinib",
    ),
)
def r6c_her2_drug_for_her2_negative(
    f: PatientFacts, drafts: DraftOrders, p: Parameters
) -> list[Decision]:
    """A drug indicated for HER2-positive breast cancer only (each drug's US label), drafted
    while the HER2 result the service uses (F4: the metastatic specimen's when there is one) is
    negative → warning, with that result and any discordance named. Equivocal (IHC 2+ with no
    ISH read) → warning too: HER2-positive therapy waits for ISH (ASCO/CAP 2018). An unknown
    HER2 status is no negative finding: no card (R13 and R14 ask for the testing it needs)."""
    her2 = f.receptors.her2
    equivocal = her2 is not None and her2.status == "equivocal"
    if f.receptors.her2_positive is not False and not equivocal:
        return []
    ordered = drafts.with_class(*HER2_POSITIVE_ONLY)
    if not ordered:
        return []
    drugs = sorted(
        {d.ingredient for o in ordered for d in o.drugs if d.med_class in HER2_POSITIVE_ONLY}
    )
    return [
        Decision(
            variant="her2-equivocal" if equivocal else "her2-negative",
            indicator="warning",
            bindings={"drugs": " and ".join(drugs)},
            data=(
                *(say("draft-order-ref", ref=o.ref) for o in ordered),
                *her2_result_lines(f),
                *(say("receptor-discordance", finding=d) for d in f.receptors.discordances()),
            ),
            refs=(*(o.ref for o in ordered), *(her2.refs if her2 else ())),
        )
    ]


# The antibody each HER2 drug carries: both conjugates are trastuzumab with a payload (the
# Enhertu and Kadcyla labels: do not substitute for or with trastuzumab), and Phesgo is
# pertuzumab and trastuzumab in one injection.
ANTIBODY_OF: dict[str, str] = {
    "trastuzumab": "trastuzumab",
    "trastuzumab deruxtecan": "trastuzumab",
    "trastuzumab emtansine": "trastuzumab",
    "pertuzumab": "pertuzumab",
}


# A product is the antibodies and conjugates it carries, each as (name, antibody).
Product = frozenset[tuple[str, str]]


def _product(draft: DraftMedication) -> Product:
    """The HER2 antibodies and conjugates in one draft: Phesgo is one product of two, and
    Herceptin Hylecta one of its own beside IV trastuzumab (the Hylecta label: dosage and
    administration different from intravenous trastuzumab products)."""
    found = frozenset(
        (d.ingredient, ANTIBODY_OF[d.ingredient])
        for d in draft.drugs
        if d.ingredient in ANTIBODY_OF
    )
    if draft.form is not None and found == {("trastuzumab", "trastuzumab")}:
        return frozenset({(draft.form, "trastuzumab")})
    return found


def _clash(a: Product, b: Product) -> frozenset[str]:
    """The antibodies two different products would both give (none for the same product twice,
    as a loading and a maintenance dose, or for trastuzumab with pertuzumab, or T-DXd with
    pertuzumab: the CLEOPATRA and DESTINY-Breast09 combinations)."""
    if a == b:
        return frozenset()
    return frozenset(antibody for _, antibody in a) & frozenset(antibody for _, antibody in b)


# The conjugates: a switch to or from one of them is a change of drug (a new line), whose
# start the record of the drug before it must not outlive. A switch of formulation (IV
# trastuzumab, Hylecta, Phesgo; F6 (c)) is the same antibodies going on, and is not judged here.
CONJUGATES = frozenset({"trastuzumab deruxtecan", "trastuzumab emtansine"})


def _clashes(mine: frozenset[str], other: str) -> bool:
    """A drafted product and a recorded one carry the same antibody and one is a conjugate."""
    antibody = ANTIBODY_OF.get(other)
    return any(ANTIBODY_OF[m] == antibody for m in mine) and bool((mine | {other}) & CONJUGATES)


def _switch_from(f: PatientFacts, drafts: DraftOrders) -> list[Decision]:
    """A conjugate drafted while another trastuzumab product is recorded as given - an order
    or statement still open, not a dose given on a day - or the other way round; with none, a
    record of unknown status that may be (§3c: never read as stopped). One card for the order,
    however many drafts clash. A product drafted in the same order is the drafted-together
    card's."""
    ongoing = [e for e in f.meds.active(*HER2_ANTIBODY_CLASSES) if e.recorded_ongoing]
    unknown = list(f.meds.of_unknown_status(*HER2_ANTIBODY_CLASSES))
    for variant, pool in (("switch-in-use", ongoing), ("other-status-unknown", unknown)):
        hits, shown = _clashing(drafts, pool)
        if hits:
            return [
                Decision(
                    variant=variant,
                    indicator="warning",
                    bindings={
                        "drug": listed(sorted({name for _, name in hits})),
                        "other": listed(sorted({e.ingredient for e in shown})),
                    },
                    data=(
                        *(say("draft-order", drug=name, ref=draft.ref) for draft, name in hits),
                        *(
                            unknown_status_line(e) if e.status_unknown else on_drug_line(f.meds, e)
                            for e in shown
                        ),
                    ),
                    refs=(*(draft.ref for draft, _ in hits), *(e.ref for e in shown)),
                )
            ]
    return []


def _clashing(
    drafts: DraftOrders, pool: list[Exposure]
) -> tuple[list[tuple[DraftMedication, str]], list[Exposure]]:
    """The focus drafts that clash with records of `pool` (each with its products' names), and
    those records, each once."""
    drafted = {d.ingredient for o in drafts.medications for d in o.drugs}
    hits: list[tuple[DraftMedication, str]] = []
    records: dict[tuple[str, str], Exposure] = {}
    for draft in drafts.focus():
        mine = frozenset(d.ingredient for d in draft.drugs if d.ingredient in ANTIBODY_OF)
        found = [e for e in pool if e.ingredient not in drafted and _clashes(mine, e.ingredient)]
        if found:
            hits.append((draft, " + ".join(sorted(mine))))
            records.update(((e.ref, e.ingredient), e) for e in found)
    return hits, list(records.values())


@rule(
    "R6d",
    hooks=ORDER_HOOKS,
    variants=("drafted-together", "switch-in-use", "other-status-unknown"),
    bindings=("drugs", "antibody", "drug", "other"),
    valuesets=(SUBCUTANEOUS_TRASTUZUMAB,),
    ingredients=tuple(ANTIBODY_OF),
    parameters=("active_window_days",),
    suggestions=("keep-one",),
)
def r6d_one_trastuzumab_product(
    f: PatientFacts, drafts: DraftOrders, p: Parameters
) -> list[Decision]:
    """Two different products carrying the same HER2 antibody drafted together (trastuzumab
    with T-DXd or T-DM1, T-DXd with T-DM1, Phesgo with IV trastuzumab or pertuzumab, Herceptin
    Hylecta with IV trastuzumab or any of these) → one warning, with a suggestion per product
    to keep it and remove the drafts that clash with it.

    The Enhertu label: do not substitute ENHERTU for or with trastuzumab or ado-trastuzumab
    emtansine; the Kadcyla label: do not substitute KADCYLA for or with trastuzumab; Phesgo's:
    different dosing from IV pertuzumab and trastuzumab, not substituted for or with them or
    the conjugates; Herceptin Hylecta's: dosage and administration different from intravenous
    trastuzumab products. Each has its own dose and schedule; signed together, the patient
    would get the antibody twice. In order-select the card needs a selected draft among them.
    A conjugate drafted while another trastuzumab product is still recorded as given, or the
    other way round, is the same double dose by way of an order nobody closed: one warning for
    the order, naming the record to stop (`_switch_from`).
    """
    return _drafted_together(drafts) + _switch_from(f, drafts)


def _drafted_together(drafts: DraftOrders) -> list[Decision]:
    her2 = [(o, _product(o)) for o in drafts.medications]
    her2 = [(o, prod) for o, prod in her2 if prod]
    clashing = [(o, prod) for o, prod in her2 if any(_clash(prod, other) for _, other in her2)]
    focus = drafts.focus()
    if not any(o in focus for o, _ in clashing):
        return []
    products = sorted({prod for _, prod in clashing}, key=sorted)
    antibodies = sorted({a for x in products for y in products for a in _clash(x, y)})
    names = {prod: " + ".join(sorted(name for name, _ in prod)) for prod in products}
    keep = tuple(
        Proposal(
            key="keep-one",
            actions=tuple(
                DeleteDraft(draft_ref=o.ref) for o, other in clashing if _clash(prod, other)
            ),
            label_bindings={"drug": names[prod]},
        )
        for prod in products
    )
    return [
        Decision(
            variant="drafted-together",
            indicator="warning",
            bindings={
                "drugs": listed([names[prod] for prod in products]),
                "antibody": listed(antibodies),
            },
            data=tuple(say("draft-order", drug=names[prod], ref=o.ref) for o, prod in clashing),
            refs=tuple(o.ref for o, _ in clashing),
            proposals=keep,
        )
    ]


@rule(
    "R6dpv",
    hooks=PATIENT_VIEW,
    variants=("both-in-use",),
    bindings=("drug", "other"),
    ingredients=tuple(ANTIBODY_OF),
    parameters=("active_window_days",),
)
def r6d_two_trastuzumab_products_in_use(
    f: PatientFacts, drafts: DraftOrders, p: Parameters
) -> list[Decision]:
    """R6d's patient-view rule: a conjugate (T-DXd or T-DM1) in use by F5, and another
    trastuzumab product recorded as given since its course started - a record still open by
    its status, or a dose given on or after the conjugate's first → warning naming both.

    The Enhertu and Kadcyla labels: do not substitute for or with trastuzumab. Either both are
    being given (trastuzumab twice) or the record of the one stopped was never closed, and the
    other checks read it as given. A switch charted dose by dose - the last trastuzumab dose
    before the first of the conjugate, both still within F5's window - is no finding."""
    for conjugate in f.meds.active("HER2_ADC_TDXD", "HER2_ADC_TDM1"):
        started = f.meds.course_start(conjugate)
        others = [
            e
            for e in f.meds.active(*HER2_ANTIBODY_CLASSES)
            if ANTIBODY_OF.get(e.ingredient) == "trastuzumab"
            and e.ingredient != conjugate.ingredient
            and (e.recorded_ongoing or _given_since(e, started))
        ]
        if others:
            return [
                Decision(
                    variant="both-in-use",
                    indicator="warning",
                    bindings={
                        "drug": conjugate.ingredient,
                        "other": listed(sorted({e.ingredient for e in others})),
                    },
                    data=tuple(on_drug_line(f.meds, e) for e in (conjugate, *others)),
                    refs=tuple(e.ref for e in (conjugate, *others)),
                )
            ]
    return []


def _given_since(e: Exposure, started: date | None) -> bool:
    """A dose or record of `e` dated on or after the day a course `started`."""
    return e.last is not None and started is not None and e.last >= started
