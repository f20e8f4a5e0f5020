"""F1 breast cancer, F2 metastatic disease and its date, F3 metastatic sites."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from cds.fhir.records import ConditionRecord, Excluded, ObservationRecord
from cds.terminology import Terminology

# A grade written in the condition's severity, text or notes ("grade 2", "CTCAE grade 1", "G2").
_GRADE = re.compile(r"\b(?:ctcae\s+)?(?:grade\s*|g)([1-5])\b")
# Stage IV and M1, read from the value's text or display (their SNOMED codes are UNVERIFIED,
# terminology.md §2b); the AJCC system codes "4", "4A", "4B" as Synthea emits them.
_STAGE_IV = re.compile(
    r"^(?:(?:ajcc\s+)?(?:clinical\s+|pathologic(?:al)?\s+)?stage\s+)?(?:[cp]?\s*)?(?:iv[abc]?|4[abc]?)$"
)
_M1 = re.compile(r"^(?:[cpy]{0,2}m1[abcd]?)(?:\b.*)?$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """A condition-derived fact: present, when it was first dated, and the records behind it."""

    present: bool
    since: date | None = None
    refs: tuple[str, ...] = ()


ABSENT = Finding(present=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class GradedCondition:
    """One ILD/pneumonitis record, of any clinical status (it outlives its resolution: C3)."""

    onset: date | None
    grade: int | None
    active: bool
    ref: str


def _found(dates: list[date | None], refs: tuple[str, ...]) -> Finding:
    """Present since the earliest known date (None when no evidence is dated)."""
    known = [d for d in dates if d is not None]
    return Finding(present=True, since=min(known) if known else None, refs=refs)


def _finding(conditions: list[ConditionRecord]) -> Finding:
    if not conditions:
        return ABSENT
    return _found([c.date for c in conditions], tuple(f"Condition/{c.id}" for c in conditions))


@dataclass(frozen=True, slots=True, kw_only=True)
class Disease:
    """Condition-derived facts. A finding is present only when a Condition shows it; a rule never
    reads its absence as a negative finding."""

    breast_cancer: Finding
    metastatic: Finding
    bone: Finding
    bone_marrow_only: Finding
    vertebral: Finding
    brain: Finding
    leptomeningeal: Finding
    cord_compression: Finding
    visceral: Finding
    heart_failure: Finding
    interstitial_lung_disease: Finding
    mronj: Finding
    dialysis: Finding
    # Each distinct metastatic site with its first date, for F7(c) "a new site".
    site_onsets: tuple[tuple[str, date | None, str], ...] = ()
    ild_history: tuple[GradedCondition, ...] = ()

    @property
    def metastatic_date(self) -> date | None:
        return self.metastatic.since


def _staged_metastatic(observations: tuple[ObservationRecord, ...], t: Terminology) -> Finding:
    """F2(b)/(c), C8: stage IV, M1, or a history of metastatic cancer recorded as Observations."""
    stage, m_cat = t["stage-group"], t["m-category"]
    history, site_history = t["history-of-metastatic-cancer"], t["history-of-metastatic-site"]
    hits: list[ObservationRecord] = []
    wanted = frozenset(vs.id for vs in (stage, m_cat, history, site_history))
    for o in observations:
        in_sets = t.codes.sets_of(o.code)
        if wanted.isdisjoint(in_sets) and (
            in_sets  # coded in a known system, which decides (D11): most labs and vital signs
            or t.codes.deciding_codes(o.code)
            or not (stage.matches(o.code) or m_cat.matches(o.code))  # nor staging in words
        ):
            continue
        if history.matches_code(o.code):
            if o.value.boolean is True:  # mCODE HistoryOfMetastaticCancer: valueBoolean true
                hits.append(o)
            continue
        if site_history.matches_code(o.code):
            if o.value.boolean is not False:  # a site-specific code: its presence says it
                hits.append(o)
            continue
        values = [o.value.string or ""]
        if o.value.concept is not None:
            values += [o.value.concept.text or ""]
            values += [c.display or "" for c in o.value.concept.codings]
            values += [c.code for c in o.value.concept.codings if "cancerstaging" in c.system]
        words = [v.strip().lower() for v in values if v and v.strip()]
        if (stage.matches(o.code) and any(_STAGE_IV.match(w) for w in words)) or (
            m_cat.matches(o.code) and any(_M1.match(w) for w in words)
        ):
            hits.append(o)
    if not hits:
        return ABSENT
    return _found([o.effective for o in hits], tuple(f"Observation/{o.id}" for o in hits))


def _merge(a: Finding, b: Finding) -> Finding:
    if not b.present:
        return a
    if not a.present:
        return b
    dates = [d for d in (a.since, b.since) if d is not None]
    return Finding(present=True, since=min(dates) if dates else None, refs=a.refs + b.refs)


def ild_grade(text: str) -> int | None:
    m = _GRADE.search(text)
    return int(m.group(1)) if m else None


def extract_disease(
    conditions: tuple[ConditionRecord, ...],
    t: Terminology,
    observations: tuple[ObservationRecord, ...] = (),
) -> Disease:
    active = [c for c in conditions if c.active and c.abated is None]

    def having(vs_id: str) -> list[ConditionRecord]:
        vs = t[vs_id]
        return [c for c in active if vs.matches(c.code)]

    secondary = having("secondary-neoplasm")
    regional = {id(c) for c in having("regional-nodes")}
    distant = [c for c in secondary if id(c) not in regional]
    breast = _breast_cancer(conditions, active, having("breast-cancer"), distant, t)
    bone = having("bone-metastasis")
    vertebral_site = t["vertebral-body-site"]
    # A secondary neoplasm whose bodySite is the vertebral column is a vertebral (bone) metastasis.
    vertebral = having("vertebral-metastasis") + [
        c for c in distant if any(vertebral_site.matches(s) for s in c.body_sites)
    ]
    bone_all = bone + [c for c in vertebral if c not in bone]
    marrow = having("bone-marrow-metastasis")
    brain = having("brain-metastasis")
    cord = having("cord-compression")

    sites = tuple(
        (name, c.date, f"Condition/{c.id}")
        for name, group in (
            ("bone", bone_all),
            ("bone marrow", marrow),
            ("brain", brain),
            ("leptomeningeal", having("leptomeningeal-metastasis")),
            ("visceral", having("visceral-metastasis")),
        )
        for c in group
    )
    return Disease(
        breast_cancer=_finding(breast),
        metastatic=_merge(_finding(distant), _staged_metastatic(observations, t)),
        bone=_finding(bone_all),
        bone_marrow_only=_finding(marrow if not bone_all else []),
        vertebral=_finding(vertebral),
        brain=_finding(brain),
        leptomeningeal=_finding(having("leptomeningeal-metastasis")),
        # Cord compression counts only alongside bone or vertebral metastasis (F3).
        cord_compression=_finding(cord if bone_all else []),
        visceral=_finding(having("visceral-metastasis")),
        heart_failure=_finding(having("heart-failure")),
        interstitial_lung_disease=_finding(having("interstitial-lung-disease")),
        mronj=_finding(having("mronj")),
        dialysis=_finding(having("dialysis")),
        site_onsets=sites,
        ild_history=_ild_history(conditions, t),
    )


_BREAST_SITE = re.compile(r"\bbreast\b")


def _breast_cancer(
    conditions: tuple[ConditionRecord, ...],
    active: list[ConditionRecord],
    coded: list[ConditionRecord],
    distant: list[ConditionRecord],
    t: Terminology,
) -> list[ConditionRecord]:
    """F1: a breast cancer condition (a), the mCODE PrimaryCancerCondition profile with a
    breast body site (b), or - with a distant metastasis - a history of breast cancer (D11)."""
    mcode_breast = [
        c
        for c in active
        if c.primary_cancer_profile and any(_BREAST_SITE.search(s.all_text()) for s in c.body_sites)
    ]
    breast = coded + [c for c in mcode_breast if c not in coded]
    if not breast and distant:
        # D11: a personal history of breast cancer (Z85.3) with a distant metastasis is
        # recurrent breast cancer; a history entry is often not 'active', so any status counts.
        # So does the primary itself, marked resolved, in remission, inactive or abated after
        # its treatment years before: the same history, coded as the cancer. With the
        # metastasis active, F1 used to fail on it, and no card at all was shown.
        history, primary = t["breast-cancer-history"], t["breast-cancer"]
        breast = [c for c in conditions if history.matches(c.code) or primary.matches(c.code)]
    return breast


def _ild_history(
    conditions: tuple[ConditionRecord, ...], t: Terminology
) -> tuple[GradedCondition, ...]:
    """Every ILD/pneumonitis condition, of any status, with its grade (C3, D18)."""
    ild = t["interstitial-lung-disease"]
    return tuple(
        GradedCondition(
            onset=c.date,
            grade=ild_grade(c.grade_text),
            active=c.active and c.abated is None,
            ref=f"Condition/{c.id}",
        )
        for c in conditions
        if ild.matches(c.code)
    )


def breast_cancer_left_out(
    excluded: tuple[Excluded, ...],
    conditions: tuple[ConditionRecord, ...],
    t: Terminology,
    *,
    metastatic: bool,
) -> tuple[str, ...]:
    """The Conditions left out without which F1 may have failed, which R0b must say: one coded
    as breast cancer; a history of breast cancer beside a metastasis; a metastasis beside a
    history (D11 needs both). A history alone is not this service's patient, left out or not."""
    history, primary = t["breast-cancer-history"], t["breast-cancer"]
    sets = [primary]
    if metastatic:
        sets.append(history)
    # A history, or a primary of any status (one that is over counts only beside a metastasis).
    if any(history.matches(c.code) or primary.matches(c.code) for c in conditions):
        sets.append(t["secondary-neoplasm"])
    return tuple(
        e.ref
        for e in excluded
        if e.resource_type == "Condition" and any(vs.matches(e.code) for vs in sets)
    )
