"""F1 breast cancer, F2 metastatic disease and its date, F3 metastatic sites."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from cds.facts.records import ConditionRecord
from cds.terminology import Terminology


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """A condition-derived fact: present, when it was first dated, and the records behind it."""

    present: bool
    since: date | None = None
    refs: tuple[str, ...] = ()


ABSENT = Finding(present=False)


def _finding(conditions: list[ConditionRecord]) -> Finding:
    if not conditions:
        return ABSENT
    dates = [c.date for c in conditions if c.date is not None]
    return Finding(
        present=True,
        since=min(dates) if dates else None,
        refs=tuple(f"Condition/{c.id}" for c in conditions),
    )


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

    @property
    def metastatic_date(self) -> date | None:
        return self.metastatic.since


def extract_disease(conditions: tuple[ConditionRecord, ...], t: Terminology) -> Disease:
    active = [c for c in conditions if c.active]

    def having(vs_id: str) -> list[ConditionRecord]:
        vs = t[vs_id]
        return [c for c in active if vs.matches(c.code)]

    breast_site = re.compile(r"\bbreast\b")
    # F1(b): the mCODE PrimaryCancerCondition profile with a breast body site.
    mcode_breast = [
        c
        for c in active
        if c.primary_cancer_profile and any(breast_site.search(s.all_text()) for s in c.body_sites)
    ]
    breast = having("breast-cancer") + [c for c in mcode_breast if c not in having("breast-cancer")]
    secondary = having("secondary-neoplasm")
    regional = {id(c) for c in having("regional-nodes")}
    distant = [c for c in secondary if id(c) not in regional]
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

    sites: list[tuple[str, date | None, str]] = []
    for name, group in (
        ("bone", bone_all),
        ("bone marrow", marrow),
        ("brain", brain),
        ("leptomeningeal", having("leptomeningeal-metastasis")),
        ("visceral", having("visceral-metastasis")),
    ):
        for c in group:
            sites.append((name, c.date, f"Condition/{c.id}"))
    return Disease(
        breast_cancer=_finding(breast),
        metastatic=_finding(distant),
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
        site_onsets=tuple(sites),
    )
