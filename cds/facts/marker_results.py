"""What one tumour-marker result says (clinical-logic §5): its status as coded or written, its
number judged against the ASCO/CAP cut-offs, the HER2 IHC score and ISH group, and the HER2
interpretation of one test event; and a marker's status as the facts carry it (MarkerResult).
`cds.facts.receptors` groups the results into events."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

from cds.fhir.elements import number_from_text
from cds.fhir.records import ObservationRecord
from cds.fhir.values import Value
from cds.said import Said, say
from cds.terminology import Concept, Terminology

Status = Literal["positive", "negative", "equivocal", "unknown"]
Her2Category = Literal["positive", "equivocal", "low", "ultralow", "0", "unknown"]

# An IHC score 0-3, optionally followed by '+'; never the "2" of "HER2", nor the first digit of
# "10%" or "2.0".
_IHC_SCORE = re.compile(r"(?<![\w.])([0-3])(?:\s*\+|(?![\w.%]))")
_ULTRALOW = re.compile(r"ultralow|ultra-low|faint|incomplete|barely perceptible")
_NO_STAINING = re.compile(r"no (membrane )?staining|null|absent staining|without staining")

# The cut-offs each number is judged by - ASCO/CAP 2018 ISH groups (HER2/CEP17 ratio 2.0, HER2
# copies 4 and 6), ASCO/CAP 2020 ER/PR (>= 1% positive, 1-10% low positive) - once, for the
# interpretation and for reading a bound ("<1%") against them.
RATIO_AMPLIFIED = 2.0
COPIES_LOW, COPIES_HIGH = 4.0, 6.0
PERCENT_POSITIVE, PERCENT_LOW_UPTO = 1.0, 10.0


def value_status(value: Value, code: Concept, t: Terminology) -> Status | None:
    if value.concept is not None:
        if t["result-positive"].matches_code(value.concept):
            return "positive"
        if t["result-negative"].matches_code(value.concept):
            return "negative"
        if t["er-negative-ichom"].matches_code(value.concept) and any(
            c.code == "445028008" for c in code.codings
        ):
            return "negative"
        if t["result-equivocal"].matches_code(value.concept):
            return "equivocal"
        if t["result-unknown"].matches_code(value.concept):
            return "unknown"
    for text in value.texts():
        low = text.lower()
        if "equivocal" in low or "borderline" in low:
            return "equivocal"
        if "not amplified" in low or "non-amplified" in low or "negative" in low:
            return "negative"
        if "amplified" in low or "positive" in low:
            return "positive"
        if "inconclusive" in low or "indeterminate" in low:
            return "unknown"
    return None


_STRING_NUMBER = re.compile(r"(<=|>=|≤|≥|<|>)?\s*(\d+(?:\.\d+)?)")
_SYMBOLS = {"≤": "<=", "≥": ">="}


def result_number(value: Value, cutoffs: tuple[float, ...]) -> float | None:
    """The number a result gives. A bound ("<1%", "< 2.0", as results below a cut-off are
    reported) stands for a number only when the true value lies beyond every cut-off it is
    judged by, and then for one on that side - never the cut-off itself: read as 2.0, "< 2.0"
    made a HER2-negative ratio positive. A bound with a cut-off inside it ("<10%" against 1%)
    gives nothing."""
    comparator: str | None = None
    if value.quantity is not None:
        number, comparator = value.quantity.value, value.quantity.comparator
    elif value.ratio is not None:
        number = value.ratio
    elif value.integer is not None:
        number = float(value.integer)
    elif value.string and (m := _STRING_NUMBER.search(value.string)):
        if (read := number_from_text(m.group(2))) is None:
            return None
        number, comparator = read, _SYMBOLS.get(m.group(1) or "", m.group(1))
    else:
        return None
    if comparator is None:
        return number
    lowest, highest = min(cutoffs), max(cutoffs)
    if comparator in ("<", "<="):
        if number < lowest:
            return number  # beyond every cut-off, on the same side as the true value
        if comparator == "<" and number == lowest:
            return number / 2  # "< 2.0": any number under 2.0 is judged alike
    elif number > highest:
        return number
    elif comparator == ">" and number == highest:
        return number * 2
    return None


def ihc_texts(obs: ObservationRecord) -> list[str]:
    texts = list(obs.value.texts())
    if (score := _score_number(obs.value)) is not None:
        texts.insert(0, score)
    texts += [i.all_text() for i in obs.interpretation]
    for comp in obs.components:
        texts += list(comp.value.texts())
        if (score := _score_number(comp.value)) is not None:
            texts.append(score)
    texts += list(obs.notes)
    return texts


# A score sent as a number: valueInteger, or a valueQuantity without a unit or with a score's
# (a laboratory's numeric result mapped from HL7 v2 NM arrives so): never a percent or a bound.
_SCORE_UNITS = frozenset({"", "1", "{score}", "score"})


def _score_number(value: Value) -> str | None:
    if value.integer is not None:
        return str(value.integer)
    q = value.quantity
    if (
        q is not None
        and q.comparator is None
        and q.unit_text().lower() in _SCORE_UNITS
        and q.value in (0, 1, 2, 3)
    ):
        return str(int(q.value))
    return None


def ihc_score(obs: ObservationRecord) -> int | None:
    """The IHC score from coded text, string, integer, interpretation, component or note."""
    for text in ihc_texts(obs):
        m = _IHC_SCORE.search(text)
        if m:
            return int(m.group(1))
    return None


def ish_group(ratio: float | None, copies: float | None) -> int | None:
    """ASCO/CAP 2018 dual-probe ISH groups 1-5; None without both numbers."""
    if ratio is None or copies is None:
        return None
    if ratio >= RATIO_AMPLIFIED:
        return 1 if copies >= COPIES_LOW else 2
    if copies >= COPIES_HIGH:
        return 3
    if copies >= COPIES_LOW:
        return 4
    return 5


def interpret_her2(
    *,
    final: Status | None,
    ihc: int | None,
    ihc_status: Status | None,
    ish_qualitative: Status | None,
    group: int | None,
    ihc_text: str = "",
) -> tuple[Status, Her2Category, bool, bool, bool]:
    """(status, category, derived, needs reflex ISH, needs concurrent IHC) per §5."""
    low_category = _low_category(ihc, ihc_text)
    if final is not None and final != "unknown":
        # Step 1: a reported interpretation wins; keep the IHC score for HER2-low.
        category: Her2Category = low_category
        if final == "positive":
            category = "positive"
        elif final == "equivocal":
            category = "equivocal"
        return final, category, False, False, False

    amplified: bool | None = None
    if group is not None:
        amplified = {1: True, 5: False}.get(group)
    elif ish_qualitative in ("positive", "negative"):
        amplified = ish_qualitative == "positive"
    ish_known = group is not None or ish_qualitative in ("positive", "negative")
    ish_unusual = group in (2, 3, 4)

    if ihc is None and ihc_status is not None:
        # A qualitative IHC result with no score: positive counts as 3+, equivocal as 2+.
        ihc = {"positive": 3, "equivocal": 2}.get(ihc_status)
        if ihc_status == "negative" and not ish_known:
            return "negative", "unknown", True, False, False
    if ihc is not None and amplified:
        # ISH group 1 (or an amplified qualitative ISH) is positive whatever the IHC (C7).
        return "positive", "positive", True, False, False
    if ihc == 3:
        return "positive", "positive", True, False, False
    if ihc == 2:
        if not ish_known:
            return "equivocal", "equivocal", True, True, False
        if group == 3:
            return "positive", "positive", True, False, False  # C7: group 3 with IHC 2+
        # Group 5, a non-amplified qualitative ISH, or groups 2 and 4 (C7: negative after the
        # lab's recount by a second observer): HER2-low.
        return "negative", "low", True, False, False
    if ihc in (0, 1):
        # Groups 2-4 with IHC 0/1+ are negative (ASCO/CAP 2018, with a lab comment).
        return "negative", low_category, True, False, False
    # No IHC.
    if ish_unusual:
        return "unknown", "unknown", True, False, True
    if amplified is True:
        return "positive", "positive", True, False, False
    if amplified is False:
        return "negative", "unknown", True, False, False
    return "unknown", "unknown", True, False, False


def _low_category(ihc: int | None, ihc_text: str) -> Her2Category:
    """The HER2-negative category an IHC score gives: 1+ and 2+ low; 0 with faint, incomplete
    membrane staining ultralow, else 0 (ASCO/CAP 2023; DESTINY-Breast06)."""
    if ihc in (1, 2):
        return "low"
    if ihc == 0:
        low = ihc_text.lower()
        ultralow = bool(_ULTRALOW.search(low)) and not _NO_STAINING.search(low)
        return "ultralow" if ultralow else "0"
    return "unknown"


SpecimenSite = Literal["metastatic", "primary", "unknown"]


def her2_category_words(category: str) -> Said:
    """A HER2-negative category as the card names it (ASCO/CAP 2023; DB-04, DB-06)."""
    if category == "low":
        return say("her2-low")
    if category == "ultralow":
        return say("her2-ultralow")
    if category == "0":
        return say("her2-0")
    if category == "unknown":
        return say("her2-negative-score-unknown")
    return say("her2-negative")


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkerResult:
    marker: Literal["HER2", "ER", "PR"]
    status: Status
    when: date | None
    specimen_site: SpecimenSite
    derived: bool
    refs: tuple[str, ...]
    # No test result in the chart: the status is a Condition's code ("HER2 positive carcinoma
    # of breast"), and the cards say so.
    from_diagnosis: bool = False
    # Every date a result of this testing event was reported on (D13: a reflex ISH can follow
    # the IHC by days); the card names them.
    report_dates: tuple[date, ...] = ()
    her2_category: Her2Category | None = None
    ihc_score: int | None = None
    ish_group: int | None = None
    percent: float | None = None
    # Findings that need action before status is known (R14a, R14b).
    needs_reflex_ish: bool = False
    needs_concurrent_ihc: bool = False
    # An ISH result of this event that gives no ASCO/CAP reading, and why: the IHC 2+ it
    # follows stays equivocal, but the ISH was done (R14 asks for its report, not a new test).
    ish_unread: Said | None = None

    @property
    def ihc_words(self) -> Said:
        """'IHC 0', 'IHC 2+', or 'no IHC score', as a pathologist writes it."""
        if self.ihc_score is None:
            return say("ihc-none")
        return say("ihc-positive", score=self.ihc_score) if self.ihc_score else say("ihc-0")

    @property
    def how(self) -> Said:
        """How the status is known: a reported result, or derived from IHC/ISH."""
        return say("derived") if self.derived else say("reported")

    @property
    def diagnosis_line(self) -> Said:
        """The card's line for a status known only from a diagnosis code (no test result)."""
        return say("her2-from-diagnosis", status=self.status, ref=self.refs[0], when=self.when)

    @property
    def reported(self) -> Said | date | None:
        """The date(s) the result stands on, as the card says them (D13)."""
        if len(self.report_dates) > 1:
            days = " and ".join(d.isoformat() for d in self.report_dates)
            return say("one-testing-event", days=days)
        return self.when

    @property
    def category_words(self) -> Said:
        """The HER2-negative category as the card names it (ASCO/CAP 2023; DB-04, DB-06)."""
        return her2_category_words(self.her2_category or "unknown")

    @property
    def scored_category(self) -> Said:
        """'HER2-low (IHC 1+)': the category with the score it rests on, where one does."""
        if self.her2_category != "low":
            return self.category_words
        return say("her2-category-scored", category=self.category_words, score=self.ihc_words)

    @property
    def low_positive(self) -> bool:
        """ER/PR 1-10% (ASCO/CAP 2020 'low positive')."""
        return self.percent is not None and PERCENT_POSITIVE <= self.percent <= PERCENT_LOW_UPTO
