"""R6-R7: the next line of HER2-targeted therapy, and progression that is not documented;
what the HER2 therapy rules share (eligibility, excluded agents, regimen proposals, data)."""

from __future__ import annotations

from datetime import date, timedelta

from cds.facts import PatientFacts
from cds.facts.lines import Line
from cds.facts.medications import HER2_CLASSES, Exposure
from cds.facts.orders import DraftOrders
from cds.fhir.screening import STAGING_SETS
from cds.parameters import Parameters
from cds.rules import PATIENT_VIEW, Decision, NoteKey, Proposal, RegimenOrder, rule
from cds.rules.bone import renal_line
from cds.rules.chemo_orders import (
    CAPECITABINE_PARAMETERS,
    CAPECITABINE_VALUESETS,
    capecitabine_left_out,
    capecitabine_renal,
)
from cds.rules.echo import echo_actions, echo_due, echo_lines, echo_ordered
from cds.rules.ild import ild_on_record
from cds.rules.receptors import MARKER_PARAMETERS, MARKER_VALUESETS
from cds.said import Said, say

# Regimens by key (cards/regimens.yaml holds their drugs, doses and label criteria). The order
# and content follow clinical-logic R6; lists are never a ranking.
LINE_1 = ("thp-docetaxel", "thp-paclitaxel", "phesgo-docetaxel", "tdxd-pertuzumab")
LINE_2 = ("tdxd", "tdm1")
TUCATINIB = "tucatinib-trastuzumab-capecitabine"
LINE_3 = (
    "tdm1",
    "tdxd",
    "neratinib-capecitabine",
    "neratinib-escalation-capecitabine",
    "lapatinib-capecitabine",
    "lapatinib-trastuzumab",
    "trastuzumab-vinorelbine",
    "trastuzumab-capecitabine",
)
LINE_3_HR_POSITIVE = ("abemaciclib-trastuzumab-fulvestrant",)
ALL_REGIMENS = (*LINE_1, *LINE_2, TUCATINIB, *LINE_3, *LINE_3_HR_POSITIVE)
# What the HER2 facts read: receptors, lines and progression, metastatic sites, ILD, LVEF.
HER2_VALUESETS = (
    *MARKER_VALUESETS,
    *CAPECITABINE_VALUESETS,
    *STAGING_SETS,
    "breast-cancer",
    "secondary-neoplasm",
    "regional-nodes",
    "brain-metastasis",
    "leptomeningeal-metastasis",
    "bone-metastasis",
    "visceral-metastasis",
    "disease-status",
    "status-worsened",
    "status-not-progressed",
    "stop-progression",
    "stop-toxicity",
    "stop-other",
    "treatment-intent-curative",
)
LINE_PARAMETERS = (
    *MARKER_PARAMETERS,
    *CAPECITABINE_PARAMETERS,
    "metastatic_setting_agents",
    "metastatic_setting_pairs",
    "regimen_group_days",
    "adjuvant_cutoff_days",
    "adjuvant_window_days",
    "adjuvant_tdxd_label_days",
    "brain_status_window_days",
    "active_window_days",
)
HER2_INGREDIENTS = (
    "trastuzumab",
    "pertuzumab",
    "trastuzumab deruxtecan",
    "trastuzumab emtansine",
    "tucatinib",
    "neratinib",
    "lapatinib",
    "capecitabine",
)


def eligible(f: PatientFacts) -> bool:
    """F1 ∧ F2 ∧ HER2 positive (the metastatic result when there is one; F4)."""
    return (
        f.disease.breast_cancer.present
        and f.disease.metastatic.present
        and f.receptors.her2_positive is True
    )


def excluded_agents(f: PatientFacts) -> dict[str, Said]:
    """Agents not to suggest, with why (R6 common exclusions).

    A HER2 agent of an ended metastatic line (progression or a change of unknown cause), of a
    line with documented progression, any ADC ever received ("if either not previously
    administered", ASCO-HER2-2022 Rec 3.1), a drug stopped for toxicity, an allergy, or an
    order not to give it.
    """
    out: dict[str, Said] = {}
    for line in f.lines.lines:
        if not line.active and line.end_reason not in ("toxicity", "other"):
            for drug in line.anchor:
                out.setdefault(drug, say("agent-used-in-line", line=line.number))
    last = f.lines.last
    if f.lines.progression == "high" and last is not None:
        for drug in last.anchor:
            out.setdefault(drug, say("agent-progression-on-line", line=last.number))
    for drug, given in _adcs_received(f).items():
        # The day it was last given, so the reader can weigh an adjuvant course years ago.
        received = say("agent-previously-received-on", last=given) if given else None
        out.setdefault(drug, received or say("agent-previously-received"))
    if tdxd_ild(f):
        # C3: after T-DXd was stopped for ILD/pneumonitis it is not suggested again.
        out["trastuzumab deruxtecan"] = say("agent-ild-on-it")
    for drug in f.meds.ingredients_stopped_for("toxicity"):
        out[drug] = say("agent-stopped-for-toxicity")
    for drug in f.allergies:
        out[drug] = say("agent-allergy")
    for e in f.meds.prohibitions():
        out[e.ingredient] = say("agent-prohibited", ref=e.ref)
    return out


def _adcs_received(f: PatientFacts) -> dict[str, date | str | None]:
    """Each HER2 ADC ever received, with the last day it is known to have been given, as
    charted: a dose given, or a course's recorded end (None: still given, or no end known)."""
    out: dict[str, date | str | None] = {}
    for e in sorted(f.meds.ever("HER2_ADC_TDM1", "HER2_ADC_TDXD"), key=_last_given):
        known = e.record.end is not None or e.record.resource_type == "MedicationAdministration"
        out[e.ingredient] = e.last_shown if known and not e.active else None
    return out


def _last_given(e: Exposure) -> date:
    return e.last or date.min


def tdxd_ild(f: PatientFacts) -> bool:
    """ILD/pneumonitis recorded (of any status) after T-DXd was first given (C3)."""
    starts = [e.start for e in f.meds.ever("HER2_ADC_TDXD") if e.start is not None]
    if not starts:
        return False
    first = min(starts)
    return any(g.onset is None or g.onset >= first for g in f.disease.ild_history)


# A stop for toxicity, an allergy or an order not to give excludes even the HER2 antibody
# backbone of a regimen.
_HARD_STOPS = frozenset({"agent-stopped-for-toxicity", "agent-allergy", "agent-prohibited"})


def regimen_proposals(
    f: PatientFacts, p: Parameters, keys: tuple[str, ...]
) -> tuple[tuple[Proposal, ...], tuple[Said, ...]]:
    """Proposals for the regimens not excluded; the reasons for the ones left out."""
    excluded = excluded_agents(f)
    # Trastuzumab and pertuzumab continue beyond progression (ASCO Rec 4.0; seed 000), so only
    # the newly added agent of a regimen excludes it, never the HER2 antibody backbone.
    backbone = {"trastuzumab", "pertuzumab"}
    ild = f.disease.interstitial_lung_disease.present
    prior = f.lines.metastatic_her2_regimens
    proposals: list[Proposal] = []
    left_out: list[Said] = []
    echo = echo_actions(f, p)
    for key in keys:
        regimen = p.regimens[key]
        drugs = regimen.ingredients
        name = " + ".join(drugs)
        blockers = [
            d
            for d in drugs
            if d in excluded and (d not in backbone or excluded[d].key in _HARD_STOPS)
        ]
        if blockers:
            why = tuple(say("agent-excluded", drug=d, reason=excluded[d]) for d in blockers)
            left_out.append(say("regimen-left-out", regimen=name, why=why))
            continue
        if (line := _progressed_on(f, drugs)) is not None:
            left_out.append(say("regimen-left-out-progressed", regimen=name, line=line))
            continue
        if ild and "trastuzumab deruxtecan" in drugs:
            left_out.append(say("regimen-left-out-ild", regimen=name))
            continue
        if regimen.hr_positive_only and not f.receptors.hr_positive:
            continue
        if prior < regimen.min_prior_her2_regimens:
            left_out.append(
                say(
                    "regimen-left-out-prior-lines",
                    regimen=name,
                    needed=regimen.min_prior_her2_regimens,
                    prior=prior,
                )
            )
            continue
        renal = capecitabine_renal(f, p) if "capecitabine" in drugs else "full"
        if renal in ("contraindicated", "unknown"):
            why = (capecitabine_left_out(renal, p),)
            left_out.append(say("regimen-left-out", regimen=name, why=why))
            continue
        order = RegimenOrder(key=key, renal_reduced=renal == "reduced")
        proposals.append(Proposal(key=key, actions=(order, *echo)))
    # Two regimens of the same drugs (neratinib + capecitabine with loperamide, and with the
    # label's dose escalation) left out for one reason are one line, not the same line twice.
    return tuple(proposals), tuple(dict.fromkeys(left_out))


def _progressed_on(f: PatientFacts, drugs: tuple[str, ...]) -> int | None:
    """The metastatic line whose drugs include all of a regimen's and on which the disease
    progressed (it ended for progression, or it is the last line and progression on it is
    documented): the same regimen is not offered again (R6 common exclusions: an agent used
    in a line that ended by progression). Trastuzumab going on with a new partner (Rec 4.0)
    is another regimen."""
    lines = f.lines
    for line in lines.lines:
        progressed = line.end_reason == "progression" or (
            line is lines.last and lines.progression == "high"
        )
        if progressed and line.drugs.issuperset(drugs):
            return line.number
    return None


def capecitabine_reduced(proposals: tuple[Proposal, ...]) -> bool:
    """Whether any proposal carries capecitabine at its renal-reduced dose (D8)."""
    return any(
        isinstance(a, RegimenOrder) and a.renal_reduced for x in proposals for a in x.actions
    )


def her2_result_lines(f: PatientFacts) -> tuple[Said, ...]:
    """The HER2 result in use (F4): status, how it was read, specimen and date."""
    her2 = f.receptors.her2
    if her2 is None:
        return ()
    if her2.from_diagnosis:
        return (her2.diagnosis_line,)
    score = say("ihc-score", words=her2.ihc_words) if her2.ihc_score is not None else ""
    return (
        say(
            "her2-result",
            status=her2.status,
            how=her2.how,
            score=score,
            site=her2.specimen_site,
            reported=her2.reported,
        ),
    )


def therapy_data(f: PatientFacts) -> tuple[Said, ...]:
    """What every HER2 therapy card shows: HER2 result, HR status, lines, agents used (R6)."""
    out = list(her2_result_lines(f))
    hr = f.receptors.hr_positive
    if hr is None:
        out.append(say("hr-unknown"))
    else:
        out.append(say("hr-positive") if hr else say("hr-negative"))
    for line in f.lines.lines:
        out.append(
            say(
                "her2-line",
                number=line.number,
                drugs=", ".join(sorted(line.drugs)),
                start=line.start,
                state=_line_state(line),
                reason=say("line-stopped-for", reason=line.end_reason) if line.end_reason else "",
            )
        )
    if not f.lines.lines:
        # D15: chemotherapy alone is not HER2-targeted therapy (and never "stopped" as one).
        out.extend(
            say(
                "line-without-her2",
                kind=line.kind,
                drugs=", ".join(sorted(line.drugs)),
                start=line.start,
            )
            for line in f.systemic.lines
        )
    if (adjuvant := f.lines.adjuvant_her2).last is not None:
        if adjuvant.recorded:
            out.append(say("adjuvant-her2-ended", when=adjuvant.last))
        else:
            out.append(say("adjuvant-her2-end-unrecorded", when=adjuvant.last))
    out.extend(say("dates-conflict", conflict=c) for c in f.lines.setting_conflicts)
    if f.disease.metastatic_date is None and not f.lines.setting_conflicts and f.lines.lines:
        out.append(say("metastasis-undated"))  # D14: say which dates the count rests on
    # Only evidence of progression goes under "Progression" (C9); other findings have their own.
    out.extend(say("progression", reason=r) for r in f.lines.progression_reasons)
    out.extend(say("receptor-discordance", finding=d) for d in f.receptors.discordances())
    return tuple(out)


def _line_state(line: Line) -> Said:
    """'ongoing', 'ended <date>', or its records of unknown status named."""
    if line.active:
        return say("line-ongoing")
    if line.unknown_refs:
        return say("line-status-unknown", refs=", ".join(line.unknown_refs))
    if line.end_by_next:
        return say("line-ended-by-next", when=line.end)
    return say("line-ended", when=line.end_shown or line.end)


def cardiac_notes(f: PatientFacts, p: Parameters) -> tuple[NoteKey, ...]:
    notes = []
    latest = f.lvef.latest
    if f.disease.heart_failure.present or (
        latest is not None and latest.value < p.lvef_lln_percent
    ):
        notes.append(NoteKey("cardiac-case-by-case"))
    if echo_due(f, p):
        # With an echocardiogram ordered and not yet done, no regimen carries another (D20).
        notes.append(NoteKey("lvef-due-echo-ordered" if echo_ordered(f, p) else "lvef-due"))
    return tuple(notes)


def _line_options(f: PatientFacts, number: int) -> tuple[str, tuple[str, ...], list[NoteKey]]:
    """The card variant, the regimens listed and the line's notes (ASCO-HER2-2022): line 1
    THP (T-DXd + pertuzumab noted as newly approved); line 2 T-DXd, never skipped for brain
    metastases, with HER2CLIMB added for them (C5), adjuvant relapse counted (Rec 5.0); line 3+
    unranked, tucatinib listed first with brain metastases (order only, not rank)."""
    lines, brain = f.lines, f.disease.brain.present
    notes: list[NoteKey] = []
    if lines.adjuvant_within_12_months is None and lines.adjuvant_her2.last is not None:
        notes.append(NoteKey("adjuvant-end-unrecorded"))  # this line, or the next (Rec 5.0)
    if number == 1:
        notes.append(NoteKey("line-1-currency"))
        if f.receptors.hr_positive:
            notes.append(NoteKey("hr-positive-line-1"))
        return "line-1", LINE_1, notes
    if number == 2:
        if lines.adjuvant_within_12_months:
            notes.append(NoteKey("adjuvant-relapse"))
            if lines.adjuvant_within_label_window:
                notes.append(NoteKey("adjuvant-relapse-label"))
        return "line-2", LINE_2 + ((TUCATINIB,) if brain else ()), notes
    tail = LINE_3 + LINE_3_HR_POSITIVE
    notes.append(NoteKey("line-3-unranked"))
    if f.receptors.hr_positive:
        notes.append(NoteKey("hr-positive-line-3"))
    return "line-3-plus", (TUCATINIB, *tail) if brain else (*tail, TUCATINIB), notes


def _offers(proposals: tuple[Proposal, ...], p: Parameters, drug: str) -> bool:
    return any(drug in p.regimens[prop.key].ingredients for prop in proposals)


def _proposal_notes(proposals: tuple[Proposal, ...], p: Parameters) -> list[NoteKey]:
    """What the proposed regimens call for: T-DXd's boxed ILD warning, capecitabine reduced
    for renal function (D8), the subcutaneous trastuzumab alternatives (D17)."""
    notes: list[NoteKey] = []
    if _offers(proposals, p, "trastuzumab deruxtecan"):
        notes.append(NoteKey("tdxd-ild"))
    if capecitabine_reduced(proposals):
        notes.append(NoteKey("capecitabine-renal"))
    if any("trastuzumab" in p.regimens[prop.key].ingredients for prop in proposals):
        notes.append(NoteKey("trastuzumab-sc"))
    return notes


@rule(
    "R6",
    hooks=PATIENT_VIEW,
    variants=("line-1", "line-2", "line-3-plus"),
    bindings=("line", "confidence"),
    valuesets=(
        *HER2_VALUESETS,
        "interstitial-lung-disease",
        "heart-failure",
        "lvef",
        "echocardiogram",
    ),
    ingredients=HER2_INGREDIENTS,
    parameters=(*LINE_PARAMETERS, "lvef_interval_days", "lvef_lln_percent"),
    orders=("echocardiogram",),
    regimens=ALL_REGIMENS,
    notes=(
        "cardiac-case-by-case",
        "lvef-due",
        "lvef-due-echo-ordered",
        "active-regimen-review",
        "leptomeningeal",
        "line-1-currency",
        "hr-positive-line-1",
        "adjuvant-relapse",
        "adjuvant-relapse-label",
        "adjuvant-end-unrecorded",
        "line-3-unranked",
        "hr-positive-line-3",
        "tdxd-ild",
        "ild-history",
        "brain-metastases-systemic",
        "capecitabine-renal",
        "trastuzumab-sc",
    ),
)
def r6_next_line(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """HER2-positive metastatic disease with progression (or no line yet) → next-line options.

    ASCO-HER2-2022: Rec 1.1 first line taxane + trastuzumab + pertuzumab; Rec 2.1 (updated) T-DXd
    second line after progression on first-line HER2 therapy; Recs 3.0/3.1 third line and beyond
    with no preferred regimen; Rec 4.0 continue HER2 blockade; Recs 5.0/5.1 relapse ≤12 months
    after trastuzumab-based adjuvant therapy counts as second line; Recs 6-8 HR-positive options.
    FDA approval of T-DXd + pertuzumab first line (DESTINY-Breast09, December 2025). Sequencing
    cards are always info: options are never ranked (clinical-logic indicator policy). No card
    while the current line works (C6); a new brain metastasis with stable systemic disease is
    not a change of line, and brain metastases never skip T-DXd second line (C5). Doses are the
    regimen's own (C1); label criteria (≥2 prior anti-HER2 regimens) are counted (C6).
    """
    if not eligible(f):
        return []
    lines = f.lines
    if lines.lines and lines.progression != "high":
        return []  # C6: the current (or last) line is not progressing
    number = lines.next_line_number() if lines.lines or lines.adjuvant_within_12_months else 1
    notes: list[NoteKey] = list(cardiac_notes(f, p))
    if lines.current is not None and lines.current.active:
        # Conflicting signals: worsened while on therapy.
        notes.append(NoteKey("active-regimen-review"))
    if f.disease.leptomeningeal.present:
        notes.append(NoteKey("leptomeningeal"))
    if f.disease.brain.present:
        notes.append(NoteKey("brain-metastases-systemic"))
    variant, regimens, line_notes = _line_options(f, number)
    notes += line_notes
    proposals, left_out = regimen_proposals(f, p, regimens)
    notes += _proposal_notes(proposals, p)
    ild = ild_on_record(f) if _offers(proposals, p, "trastuzumab deruxtecan") else ()
    notes += [NoteKey("ild-history")] if ild else []
    data = therapy_data(f) + ild + echo_lines(f, p, drafts)
    with_cape = any("capecitabine" in p.regimens[k].ingredients for k in regimens)
    if with_cape and capecitabine_renal(f, p) != "full":
        data += (renal_line(f),)  # it shaped the capecitabine options
    return [
        Decision(
            variant=variant,
            indicator="info",
            bindings={"line": str(number), "confidence": lines.confidence},
            data=data,
            notes=tuple(say("not-suggested", regimen=x) for x in left_out),
            note_keys=tuple(dict.fromkeys(notes)),
            refs=(*(f.receptors.her2.refs if f.receptors.her2 else ()), *lines.progression_refs),
            proposals=proposals,
        )
    ]


@rule(
    "R7",
    hooks=PATIENT_VIEW,
    variants=("undocumented",),
    valuesets=HER2_VALUESETS,
    ingredients=HER2_INGREDIENTS,
    parameters=(*LINE_PARAMETERS, "her2_stopped_days"),
)
def r7_progression_undocumented(
    f: PatientFacts, drafts: DraftOrders, p: Parameters
) -> list[Decision]:
    """HER2-targeted therapy stopped without a documented reason → confirm progression first.

    clinical-logic F7 ambiguity table and R7: list the options as text only, 'if progression is
    confirmed'; never create an Observation (the service must not invent a clinical assertion).
    """
    if not eligible(f) or f.lines.progression != "undetermined" or f.lines.current is not None:
        return []
    last = f.lines.last
    if last is None:
        return []
    stopped = any(
        e.record.status in ("stopped", "completed", "cancelled") and e.stop_reason is None
        for e in f.meds.ever(*HER2_CLASSES)
        if e.ingredient in last.anchor
    )
    long_ago = last.end is not None and f.as_of - last.end > timedelta(days=p.her2_stopped_days)
    if not (stopped or long_ago):
        return []
    return [
        Decision(
            variant="undocumented",
            indicator="info",
            data=therapy_data(f) + tuple(say("found", finding=r) for r in f.lines.findings),
            refs=last.refs,
        )
    ]
