"""R6j: an oral HER2 kinase inhibitor drafted before its label's count of prior regimens;
R6k: drafted without the drugs its label gives it with (neratinib's first dose: loperamide too);
R6l: drafted above its label dose.

The Tukysa label indicates tucatinib, with trastuzumab and capecitabine, after one or more prior
anti-HER2-based regimens in the metastatic setting (HER2CLIMB; clinical-logic §3c D16); the
Nerlynx label indicates neratinib, with capecitabine, after two or more (NALA; §3b C1). The
counts are the regimens' own (`min_prior_her2_regimens` in cards/regimens.yaml), the ones the
next-line card applies to its options; the line count is F6's, with the dates it used. Each
label gives its inhibitor in combination: tucatinib with trastuzumab and capecitabine,
neratinib with capecitabine (its single-agent use is extended adjuvant therapy of early
breast cancer, not these labels' metastatic setting).
"""

from __future__ import annotations

from cds.facts import PatientFacts
from cds.facts.medications import HER2_CLASSES, Exposure
from cds.facts.orders import DraftMedication, DraftOrders
from cds.parameters import Parameters
from cds.rules import ORDER_HOOKS, Decision, Proposal, RegimenOrder, rule
from cds.rules.endocrine import ENDOCRINE
from cds.rules.her2 import HER2_VALUESETS, LINE_PARAMETERS, eligible, therapy_data
from cds.rules.in_use import ACTIVE_PARAMETERS
from cds.rules.oral_doses import ORAL_DOSE_BINDINGS, above_label
from cds.said import Said, say
from cds.terminology import MedClass

# The regimens whose label criterion gates each inhibitor's order.
TKI_REGIMENS = (
    "tucatinib-trastuzumab-capecitabine",
    "neratinib-capecitabine",
    "neratinib-escalation-capecitabine",
)
TKIS = ("tucatinib", "neratinib")
# What each label gives its inhibitor with in the metastatic setting (Tukysa: HER2CLIMB; Nerlynx:
# NALA); a product carrying trastuzumab (Phesgo, Herceptin Hylecta) carries it.
PARTNERS = {"tucatinib": ("trastuzumab", "capecitabine"), "neratinib": ("capecitabine",)}
PARTNER_CLASSES: tuple[MedClass, ...] = ("HER2_MAB", "HER2_ADC_TDM1", "CAPE", "ANTIDIARRHEAL")
# Lapatinib's: the Tykerb label gives it with capecitabine or, for hormone receptor-positive
# disease, letrozole; ASCO 2022 also with trastuzumab (EGF104900) or endocrine therapy.
LAPATINIB_PARTNERS = ("capecitabine", "trastuzumab")


@rule(
    "R6j",
    hooks=ORDER_HOOKS,
    variants=("before-label-line", "no-line-on-record", "lapatinib-before-trastuzumab"),
    bindings=("drug", "needed", "prior"),
    valuesets=HER2_VALUESETS,
    ingredients=(*TKIS, "lapatinib", "capecitabine", "trastuzumab"),
    parameters=(*LINE_PARAMETERS, *ACTIVE_PARAMETERS),
    regimens=TKI_REGIMENS,
)
def r6j_kinase_inhibitor_before_its_line(
    f: PatientFacts, drafts: DraftOrders, p: Parameters
) -> list[Decision]:
    """Tucatinib or neratinib drafted for HER2-positive metastatic disease while fewer prior
    anti-HER2 regimens in the metastatic setting are on record than its label asks → warning,
    with the lines and their dates (F6 counts a line once it has ended, not for toxicity alone,
    or once progression on it is documented: a first line still working is no prior regimen,
    nor is (neo)adjuvant therapy one in the metastatic setting). With no HER2-targeted therapy on
    record at all the count cannot be read (the history may be kept elsewhere; missing data is
    not a first line) → information that says so. Lapatinib with capecitabine before any
    trastuzumab → information (`_lapatinib_before_trastuzumab`)."""
    if not eligible(f):
        return []  # HER2 not positive: R6c's; not metastatic: not these labels' setting
    prior = f.lines.metastatic_her2_regimens
    recorded = bool(f.meds.ever(*HER2_CLASSES))  # in any setting, of any status
    out = _lapatinib_before_trastuzumab(f, drafts)
    for drug, needed in label_counts(p).items():
        drafted = drafts.with_ingredient(drug)
        if not drafted or prior >= needed:
            continue
        out.append(
            Decision(
                variant="before-label-line" if recorded else "no-line-on-record",
                indicator="warning" if recorded else "info",
                bindings={"drug": drug, "needed": str(needed), "prior": str(prior)},
                data=(
                    *(say("draft-order-ref", ref=o.ref) for o in drafted),
                    *therapy_data(f),
                ),
                refs=tuple(o.ref for o in drafted),
            )
        )
    return out


# What carries trastuzumab: the antibody (Herceptin Hylecta and Phesgo read as it), T-DM1, T-DXd.
TRASTUZUMAB_BASED: tuple[MedClass, ...] = ("HER2_MAB", "HER2_ADC_TDM1", "HER2_ADC_TDXD")


def _lapatinib_before_trastuzumab(f: PatientFacts, drafts: DraftOrders) -> list[Decision]:
    """Tykerb label: lapatinib with capecitabine for patients who have received prior therapy
    including an anthracycline, a taxane and trastuzumab. Lapatinib drafted with capecitabine
    (drafted or possibly in use) and nothing carrying trastuzumab on record, in any setting →
    information with the lines on record: the history may be kept elsewhere (missing data is no
    negative finding), and a chemotherapy-only history is offered first-line HER2-targeted
    therapy (§3c D15, D16). A conjugate counts (it carries the antibody); the anthracycline and
    the taxane, often adjuvant years before, are not checked."""
    drafted = drafts.with_ingredient("lapatinib")
    if not drafted or not _with(f, drafts, "capecitabine"):
        return []
    given = f.meds.ever(*TRASTUZUMAB_BASED)
    if any(e.med_class != "HER2_MAB" or e.ingredient == "trastuzumab" for e in given):
        return []
    return [
        Decision(
            variant="lapatinib-before-trastuzumab",
            indicator="info",
            bindings={"drug": "lapatinib"},
            data=(*(say("draft-order-ref", ref=o.ref) for o in drafted), *therapy_data(f)),
            refs=tuple(o.ref for o in drafted),
        )
    ]


def label_counts(p: Parameters) -> dict[str, int]:
    """Each inhibitor's fewest prior regimens over the regimens that carry it."""
    regimens = [p.regimens[key] for key in TKI_REGIMENS]
    return {
        drug: min((r.min_prior_her2_regimens for r in regimens if drug in r.ingredients), default=0)
        for drug in TKIS
    }


@rule(
    "R6k",
    hooks=ORDER_HOOKS,
    variants=("without-partner", "with-tdm1", "lapatinib-alone", "no-loperamide"),
    bindings=("drug", "missing"),
    valuesets=HER2_VALUESETS,
    ingredients=(
        *TKIS,
        "lapatinib",
        "trastuzumab",
        "capecitabine",
        "loperamide",
        "trastuzumab emtansine",
    ),
    parameters=(*LINE_PARAMETERS, "neratinib_escalation_mg", "new_treatment_gap_days"),
    regimens=("loperamide-prophylaxis",),
    suggestions=("loperamide-prophylaxis",),
)
def r6k_kinase_inhibitor_without_its_partners(
    f: PatientFacts, drafts: DraftOrders, p: Parameters
) -> list[Decision]:
    """Tucatinib drafted with no trastuzumab or no capecitabine, or neratinib with no
    capecitabine, drafted in the order or possibly in use (F5: a record open by its status, a
    dose within the active window, or of unknown status) → warning naming what is missing and
    its last record, if any. The Tukysa label gives tucatinib in combination with trastuzumab and
    capecitabine, the Nerlynx label neratinib with capecitabine, for HER2-positive metastatic
    disease: an inhibitor signed alone is a regimen left incomplete (a partner ordered elsewhere
    is named by its record once it is there). Neratinib's first dose drafted with no loperamide
    drafted or possibly in use → warning with loperamide to add (`_no_loperamide`). Lapatinib
    with none of its partners → warning (`_lapatinib_alone`). Tucatinib with T-DM1 (drafted or
    possibly in use) in place of its partners is HER2CLIMB-02's combination, a trial's and not
    the label's: information that says so, not a regimen missing its trastuzumab."""
    if not eligible(f):
        return []
    out = _no_loperamide(f, drafts, p) + _lapatinib_alone(f, drafts)
    for drug, partners in PARTNERS.items():
        drafted = drafts.with_ingredient(drug)
        if not drafted:
            continue
        missing = [x for x in partners if not _with(f, drafts, x)]
        if not missing:
            continue
        if drug == "tucatinib" and _with(f, drafts, "trastuzumab emtansine"):
            out.append(_with_tdm1(drafted))
            continue
        last = [
            e
            for x in missing
            if (e := f.meds.last_recorded(*PARTNER_CLASSES, ingredients=(x,))) is not None
        ]
        out.append(
            Decision(
                variant="without-partner",
                indicator="warning",
                bindings={"drug": drug, "missing": " or ".join(missing)},
                data=(
                    *(say("draft-order-ref", ref=o.ref) for o in drafted),
                    *(_last_line(e) for e in last),
                ),
                refs=(*(o.ref for o in drafted), *(e.ref for e in last)),
            )
        )
    return out


def _no_loperamide(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """Nerlynx label 2.3: antidiarrheal prophylaxis with loperamide during the first 56 days,
    from the first dose - unless neratinib starts with the label's dose escalation (2.2: 120 mg,
    then 160 mg; loperamide as needed). A first dose of unknown strength is no escalation;
    loperamide is often bought over the counter and never recorded: the card says so."""
    first = [
        o for o in drafts.with_ingredient("neratinib") if o.dose_mg not in p.neratinib_escalation_mg
    ]
    # Given before, long ago (a year of extended adjuvant neratinib), it begins again: the
    # first 56 days are this treatment's.
    gap = p.new_treatment_gap_days
    if not first or _with(f, drafts, "loperamide"):
        return []
    if not f.meds.begins_treatment("neratinib", gap, on=f.as_of):
        return []
    return [
        Decision(
            variant="no-loperamide",
            indicator="warning",
            bindings={"drug": "neratinib", "missing": "loperamide"},
            data=tuple(say("draft-order-ref", ref=o.ref) for o in first),
            refs=tuple(o.ref for o in first),
            proposals=(
                Proposal(
                    key="loperamide-prophylaxis",
                    actions=(RegimenOrder(key="loperamide-prophylaxis"),),
                ),
            ),
        )
    ]


def _with_tdm1(drafted: tuple[DraftMedication, ...]) -> Decision:
    """HER2CLIMB-02 (Hurvitz et al., Ann Oncol 2025): tucatinib added to T-DM1 after
    trastuzumab and a taxane lengthened progression-free survival (9.5 against 7.4 months),
    with no overall survival benefit at its interim analysis and more grade 3 or worse adverse
    events (liver enzymes most of all); the Tukysa label does not include it."""
    return Decision(
        variant="with-tdm1",
        indicator="info",
        bindings={"drug": "tucatinib"},
        data=tuple(say("draft-order-ref", ref=o.ref) for o in drafted),
        refs=tuple(o.ref for o in drafted),
    )


def _lapatinib_alone(f: PatientFacts, drafts: DraftOrders) -> list[Decision]:
    """Lapatinib drafted with no capecitabine, trastuzumab or endocrine therapy drafted or
    possibly in use: no label or guideline gives it alone in metastatic disease (Tykerb: with
    capecitabine, or with letrozole; ASCO 2022: with trastuzumab, or endocrine therapy)."""
    drafted = drafts.with_ingredient("lapatinib")
    if (
        not drafted
        or any(_with(f, drafts, x) for x in LAPATINIB_PARTNERS)
        or any(o.has_class(*ENDOCRINE) for o in drafts.medications)
        or f.meds.possibly_in_use(*ENDOCRINE)
    ):
        return []
    return [
        Decision(
            variant="lapatinib-alone",
            indicator="warning",
            bindings={"drug": "lapatinib"},
            data=tuple(say("draft-order-ref", ref=o.ref) for o in drafted),
            refs=tuple(o.ref for o in drafted),
        )
    ]


def _with(f: PatientFacts, drafts: DraftOrders, ingredient: str) -> bool:
    """The partner drafted anywhere in the order, or possibly in use on the chart."""
    return any(o.has(ingredient) for o in drafts.medications) or any(
        e.ingredient == ingredient for e in f.meds.possibly_in_use(*PARTNER_CLASSES)
    )


def _last_line(e: Exposure) -> Said:
    return say("drug-last-recorded", drug=e.ingredient, when=e.last_shown, ref=e.ref)


@rule(
    "R6l",
    hooks=ORDER_HOOKS,
    variants=(
        "above-label",
        "above-label-unless-inducer",
        "above-trial-dose",
        "divided-daily-dose",
        "unit-error",
        "dose-unread",
    ),
    bindings=ORAL_DOSE_BINDINGS,
    ingredients=(*TKIS, "lapatinib", "capecitabine", "trastuzumab"),
    parameters=("kinase_inhibitor_doses", "unit_error_factor"),
)
def r6l_kinase_inhibitor_above_its_dose(
    f: PatientFacts, drafts: DraftOrders, p: Parameters
) -> list[Decision]:
    """An oral HER2 kinase inhibitor drafted above its label dose, a dose at a time or over a
    day → warning; at least `unit_error_factor` times the dose → critical (a unit error;
    `cds.rules.oral_doses`). Tukysa 2.1: 300 mg twice daily (reductions 250, 200, 150 mg);
    Nerlynx 2.2: 240 mg once daily (§3b C1); Tykerb 2.1-2.2: 1,250 mg once daily with
    capecitabine, 1,500 mg with letrozole - a label that raises the dose for a strong CYP3A4
    inducer, which the card names as the one reason to keep it (the chart's inducers are not
    read: dexamethasone is one). With trastuzumab, which the US label does not pair it with,
    EGF104900's 1,000 mg (Blackwell et al., J Clin Oncol 2012; the EU label, Tyverb, gives the
    same; §3b C1). Lapatinib's day's dose divided → warning: Tykerb 2.1 gives it once daily and
    advises against dividing it. A dose given but not read (no mass unit, tablets of a product
    whose strength its code does not give, a range) → information with the dose that applies:
    an order the service was asked to check is not passed over in silence (clinical-logic
    §3b)."""
    return [
        d
        for table in p.kinase_inhibitor_doses.values()
        for d in above_label(f, drafts, table, p.unit_error_factor)
    ]
