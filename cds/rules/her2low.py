"""R15: HER2-low and HER2-ultralow disease - trastuzumab deruxtecan by DESTINY-Breast04/-06."""

from __future__ import annotations

from cds.facts import PatientFacts
from cds.facts.marker_results import MarkerResult
from cds.facts.orders import DraftOrders
from cds.fhir.screening import STAGING_SETS
from cds.parameters import Parameters
from cds.rules import (
    ORDER_HOOKS,
    PATIENT_VIEW,
    Decision,
    NoteKey,
    Order,
    Proposal,
    RegimenOrder,
    rule,
)
from cds.rules.echo import echo_actions, echo_lines
from cds.rules.ild import ild_on_record
from cds.rules.lab_orders import lab_lines
from cds.rules.receptors import MARKER_PARAMETERS, MARKER_VALUESETS
from cds.said import Said, say

R15_VALUESETS = (
    *MARKER_VALUESETS,
    *STAGING_SETS,
    "breast-cancer",
    "secondary-neoplasm",
    "lvef",
    "treatment-intent-curative",
)
R15_PARAMETERS = (
    *MARKER_PARAMETERS,
    "metastatic_setting_agents",
    "metastatic_setting_pairs",
    "regimen_group_days",
    "adjuvant_cutoff_days",
    "adjuvant_chemo_window_days",
    "lvef_interval_days",
    "lab_freshness_days",
    "active_window_days",
)
CHEMO_AND_ENDOCRINE = (
    "capecitabine",
    "docetaxel",
    "paclitaxel",
    "paclitaxel protein-bound",
    "vinorelbine",
    "doxorubicin",
    "epirubicin",
    "eribulin",
    "letrozole",
    "anastrozole",
    "exemestane",
    "fulvestrant",
    "tamoxifen",
    "abemaciclib",
    "palbociclib",
    "ribociclib",
)


def criteria(f: PatientFacts) -> tuple[bool, bool]:
    """(DESTINY-Breast04, DESTINY-Breast06) criteria from HR status and metastatic lines.

    DB-04: ≥1 chemotherapy line in the metastatic setting, or recurrence within 6 months of
    adjuvant chemotherapy; if HR-positive, also endocrine-refractory (read here as ≥1 endocrine
    line in the metastatic setting). DB-06: HR-positive, ≥1 endocrine line in the metastatic
    setting, no chemotherapy in the metastatic setting. An unknown HR status meets a criterion
    only when it is met whatever the status (DB-04 after chemotherapy and endocrine therapy).
    """
    hr = f.receptors.hr_positive
    recent = bool(f.systemic.adjuvant_chemo_within_6_months)
    met = [_criteria_if(f, status, recent) for status in ((True, False) if hr is None else (hr,))]
    return all(db04 for db04, _ in met), all(db06 for _, db06 in met)


def _criteria_if(f: PatientFacts, hr_positive: bool, recent_chemo: bool) -> tuple[bool, bool]:
    s = f.systemic
    chemo = s.chemotherapy >= 1 or recent_chemo
    db04 = chemo and (not hr_positive or s.endocrine >= 1)
    db06 = hr_positive and s.endocrine >= 1 and s.chemotherapy == 0
    return db04, db06


def undecided(f: PatientFacts, category: str) -> tuple[Said, ...]:
    """What is missing that decides whether a criterion is met: the IHC score (HER2 known only
    as negative), the HR status, or when (neo)adjuvant chemotherapy ended, each when a value it
    could have would meet one; () when none would. Missing data is never read as a criterion
    not met."""
    hr = f.receptors.hr_positive
    recent = f.systemic.adjuvant_chemo_within_6_months
    unknown_end = recent is None and f.systemic.adjuvant_chemo.last is not None
    met: dict[tuple[bool, bool], bool] = {}
    for status in (True, False) if hr is None else (hr,):
        for chemo in (True, False) if unknown_end else (bool(recent),):
            db04, db06 = _criteria_if(f, status, chemo)
            met[status, chemo] = (category in ("unknown", "low") and db04) or (
                category in ("unknown", "low", "ultralow") and db06
            )
    if not any(met.values()):
        return ()
    hr_decides = hr is None and any(met[True, c] != met[False, c] for _, c in met)
    end_decides = unknown_end and any(met[h, True] != met[h, False] for h, _ in met)
    return (
        *((say("missing-her2-ihc-score"),) if category == "unknown" else ()),
        *((say("missing-hr-status"),) if hr_decides else ()),
        *((say("missing-adjuvant-chemo-end"),) if end_decides else ()),
    )


def negative_her2(f: PatientFacts) -> MarkerResult | None:
    """The HER2 result of metastatic, HER2-negative disease; None otherwise."""
    her2 = f.receptors.her2
    if not (f.disease.breast_cancer.present and f.disease.metastatic.present):
        return None
    return her2 if her2 is not None and her2.status == "negative" else None


def _data(f: PatientFacts) -> tuple[Said, ...]:
    her2 = f.receptors.her2
    out = []
    if her2 is not None and her2.from_diagnosis:
        out.append(her2.diagnosis_line)
    elif her2 is not None:
        out.append(
            say(
                "her2-negative-result",
                category=her2.category_words,
                how=her2.how,
                score=say("ihc-score", words=her2.ihc_words),
                site=her2.specimen_site,
                reported=her2.reported,
            )
        )
    # F4: the discordance is shown on every therapy card - a primary HER2-low against a
    # metastatic HER2-0 is what an order for T-DXd may rest on.
    out.extend(say("receptor-discordance", finding=d) for d in f.receptors.discordances())
    hr = f.receptors.hr_positive
    if hr is None:
        out.append(say("hr-unknown"))
    else:
        out.append(say("hr-positive") if hr else say("hr-negative"))
    s = f.systemic
    out.append(
        say(
            "metastatic-setting-lines",
            chemotherapy=s.chemotherapy,
            endocrine=s.endocrine,
            confidence=s.confidence,
        )
    )
    out += [
        say(
            "systemic-line",
            kind=line.kind.capitalize(),
            start=line.start,
            drugs=", ".join(sorted(line.drugs)),
        )
        for line in s.lines
    ]
    if s.adjuvant_chemo_within_6_months:
        if s.adjuvant_chemo.recorded:
            out.append(say("adjuvant-chemo-recent", when=s.adjuvant_chemo.last))
        else:
            out.append(say("adjuvant-chemo-recent-unrecorded", when=s.adjuvant_chemo.last))
    elif s.adjuvant_chemo_within_6_months is None and s.adjuvant_chemo.last is not None:
        out.append(say("adjuvant-chemo-end-unrecorded", when=s.adjuvant_chemo.last))
    return tuple(out)


@rule(
    "R15",
    hooks=(*PATIENT_VIEW, *ORDER_HOOKS),
    variants=("db04", "db06", "ihc-score-needed", "order-not-indicated", "order-undecided"),
    bindings=("category",),
    valuesets=(
        *R15_VALUESETS,
        "interstitial-lung-disease",
        "echocardiogram",
        "her2-ihc-score-request",
    ),
    ingredients=("trastuzumab deruxtecan", *CHEMO_AND_ENDOCRINE),
    parameters=R15_PARAMETERS,
    orders=("echocardiogram", "her2-ihc-score-request"),
    regimens=("tdxd",),
    suggestions=("ask-pathology-ihc-score",),
    notes=(
        "tdxd-ild",
        "lvef-baseline",
        "fda-approved-test",
        "ild-recorded",
        "ild-history",
        "not-her2-positive",
    ),
)
def r15_her2_low(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """HER2-low (IHC 1+, or 2+ with ISH not amplified) or HER2-ultralow (IHC 0 with faint or
    incomplete membrane staining in ≤10% of cells), metastatic → T-DXd when a trial criterion is
    met; the IHC score decides, not "negative" alone.

    DESTINY-Breast04 (ASCO rapid recommendation update 2022): HER2-low, previously treated with
    chemotherapy in the metastatic setting (or recurrence within 6 months of adjuvant
    chemotherapy), HR-positive disease also endocrine-refractory. DESTINY-Breast06 (FDA approval
    2025-01-27): HR-positive HER2-low or -ultralow after ≥1 endocrine therapy in the metastatic
    setting, no chemotherapy for metastatic disease, "as determined by an FDA-approved test".
    ASCO/CAP 2023: no "HER2-low" result category, but distinguishing IHC 0 from 1+ now matters.
    No card for HER2-0, before a criterion is met, while the current line goes on without
    progression (C6), or after T-DXd was received (C10); a T-DXd
    order that meets neither criterion gets a warning, which names the IHC score or HR status
    when what is missing decides (missing data is never a negative finding). Sequencing cards
    are info.
    """
    her2 = negative_her2(f)
    if her2 is None:
        return []
    category = her2.her2_category or "unknown"
    db04, db06 = criteria(f)
    meets = (category == "low" and db04) or (category in ("low", "ultralow") and db06)
    bindings: dict[str, str | Said] = {"category": her2.category_words}
    ordered = drafts.with_ingredient("trastuzumab deruxtecan")
    if ordered:
        if meets:
            return []
        missing = undecided(f, category)
        return [
            Decision(
                variant="order-undecided" if missing else "order-not-indicated",
                indicator="warning",
                bindings=bindings,
                data=(*(say("draft-order-ref", ref=o.ref) for o in ordered), *_data(f)),
                missing=missing,
                refs=(*(o.ref for o in ordered), *her2.refs),
            )
        ]
    if drafts.medications or drafts.services or drafts.unreadable:
        return []  # order hooks speak only of the orders
    if f.meds.ever("HER2_ADC_TDXD"):
        return []  # already received: the T-DXd safety rules take over
    if meets and not _current_line_working(f):
        return [_tdxd_indicated(f, p, her2.refs, bindings, db04=category == "low" and db04)]
    if category == "unknown" and (db04 or db06):
        return [_ihc_score_needed(f, p, her2.refs, bindings)]
    return []


def _current_line_working(f: PatientFacts) -> bool:
    """C6: "no next-line card while the current line is active and not progressing on it,
    whatever happened on earlier lines" - fulvestrant or paclitaxel going on with the disease
    stable is no time to offer T-DXd, though a criterion was met on an earlier line."""
    s = f.systemic
    if not s.lines:
        return False
    last = s.lines[-1]
    return (last.active or bool(last.unknown_refs)) and s.progression != "high"


def _tdxd_indicated(
    f: PatientFacts,
    p: Parameters,
    refs: tuple[str, ...],
    bindings: dict[str, str | Said],
    *,
    db04: bool,
) -> Decision:
    """A DESTINY-Breast04 (HER2-low) or -06 (HR-positive HER2-low/-ultralow) criterion is met:
    T-DXd proposed, with its boxed ILD warning and a baseline LVEF (an echocardiogram when none
    is recent); with interstitial lung disease recorded, named and not proposed. DB-06 needs an
    FDA-approved test result."""
    ild = f.disease.interstitial_lung_disease.present
    variant = "db04" if db04 else "db06"
    echo = echo_actions(f, p)
    notes = [NoteKey("not-her2-positive"), NoteKey("tdxd-ild"), NoteKey("lvef-baseline")]
    if variant == "db06":
        notes.append(NoteKey("fda-approved-test"))
    if ild:
        notes.append(NoteKey("ild-recorded"))
    elif f.disease.ild_history:
        notes.append(NoteKey("ild-history"))  # offered, its history named (the order: R12)
    proposals = () if ild else (Proposal(key="tdxd", actions=(RegimenOrder(key="tdxd"), *echo)),)
    return Decision(
        variant=variant,
        indicator="info",
        bindings=bindings,
        data=_data(f) + ild_on_record(f) + echo_lines(f, p),
        note_keys=tuple(notes),
        refs=refs,
        proposals=proposals,
    )


def _ihc_score_needed(
    f: PatientFacts, p: Parameters, refs: tuple[str, ...], bindings: dict[str, str | Said]
) -> Decision:
    """A criterion would be met but the IHC score is not known: HER2-0 never qualifies, so the
    score decides (ASCO/CAP 2023) - ask pathology for it; missing data is never a pass. Once
    asked (the request still open), the card names it instead of asking again (§3c D20)."""
    her2 = f.receptors.her2
    asked = lab_lines(
        f,
        ("her2-ihc-score-request",),
        p.lab_freshness_days,
        after=her2.when if her2 is not None else None,
    )
    return Decision(
        variant="ihc-score-needed",
        indicator="info",
        bindings=bindings,
        data=_data(f) + asked,
        missing=(say("missing-her2-ihc-score"),),
        note_keys=(NoteKey("not-her2-positive"),),
        refs=refs,
        proposals=()
        if asked
        else (
            Proposal(
                key="ask-pathology-ihc-score",
                actions=(Order(key="her2-ihc-score-request"),),
            ),
        ),
    )
