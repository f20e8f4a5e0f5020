"""F5 medication normalisation: every Medication* record as ingredient exposures with a class."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

from cds.facts import units
from cds.facts.days import within
from cds.facts.stale_statuses import set_aside_stale
from cds.fhir.records import MedicationRecord, Records
from cds.terminology import DrugMatch, MedClass, Terminology

BmaDose = Literal["onc", "osteo", "unknown"]
StopReason = Literal["progression", "toxicity", "other"]

HER2_CLASSES: frozenset[MedClass] = frozenset(
    {"HER2_MAB", "HER2_ADC_TDM1", "HER2_ADC_TDXD", "HER2_TKI_TUC", "HER2_TKI_NER", "HER2_TKI_LAP"}
)
HER2_ANTIBODY_CLASSES: frozenset[MedClass] = frozenset(
    {"HER2_MAB", "HER2_ADC_TDM1", "HER2_ADC_TDXD"}
)
_ACTIVE = frozenset({"active", "intended", "on-hold", "in-progress"})
_NEVER_GIVEN = frozenset({"not-taken", "not-done", "cancelled", "draft", "entered-in-error"})
# F5's "intent order/plan", with the kinds of order FHIR R4 nests under 'order' (request-intent):
# original-, reflex- and filler-order, and instance-order under filler-order (a pharmacy's
# verified order, one administration's order). 'proposal' and 'option' are not orders.
_ORDER_INTENTS = frozenset(
    {"order", "plan", "original-order", "reflex-order", "filler-order", "instance-order"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Exposure:
    """One medication record for one ingredient."""

    ingredient: str
    med_class: MedClass
    record: MedicationRecord
    active: bool
    given: bool  # ever exposed (not a not-taken statement, a draft or a cancelled order)
    stop_reason: StopReason | None
    bma_dose: BmaDose | None
    by_text: bool
    window_days: int = 0  # F5: a dose keeps the agent active this long (the course's longest gap)
    prohibits: bool = False  # an order not to give it, in force on the day (never `given`)
    declined: bool = False  # a recorded decision not to take it (see `declined`)
    # An open-ended record whose status is 'unknown' (FHIR: the state of the medication use is
    # not known): not in use by F5, and not absent either - it may still be given.
    status_unknown: bool = False
    # An active status set aside (`set_aside_stale`): the agent's last charted dose, long ago.
    last_dose: Exposure | None = None

    @property
    def ref(self) -> str:
        return self.record.reference

    @property
    def start(self) -> date | None:
        return self.record.start

    @property
    def last(self) -> date | None:
        return self.record.end or self.record.start

    @property
    def last_shown(self) -> date | str | None:
        """`last` as a card shows it: a dose charted by its month as charted ('2026-10'), where
        the checks count from its last day (`cds.fhir.elements.month_end`)."""
        record = self.record
        if record.end_charted is not None:  # set only when the end was read
            return record.end_charted  # an end charted by its month: '2026-11', not the 30th
        if record.start_through is not None and record.resource_type == "MedicationAdministration":
            return _month(record.start)
        return self.last

    @property
    def start_span(self) -> tuple[date, date] | None:
        """The first and the last day the record's course may have begun (the same day unless
        its start was charted by its month)."""
        start, started_by = self.record.start, self.record.started_by
        return None if start is None or started_by is None else (start, started_by)

    @property
    def end_recorded(self) -> bool:
        """Whether `last` is a recorded end (a period's end, a dose given); else it is a start
        or the one date a statement is about, and the course ended that day or later."""
        return self.record.end is not None

    @property
    def recorded_ongoing(self) -> bool:
        """In use by its status - a statement or order still active, intended or on hold - not
        by a recent dose: a record that stays open until somebody closes it, as a switch to
        another drug must (F5's first branch)."""
        kind = self.record.resource_type
        return self.active and kind != "MedicationAdministration" and self.record.status in _ACTIVE


@dataclass(frozen=True, slots=True)
class CourseEnd:
    """When a course of medicines ended, as far as its records say."""

    last: date | None  # its last known day
    # Whether `last` is a recorded end (a period's end, a dose given); else it is a start or
    # the one date a statement is about, and the course ended that day or later.
    recorded: bool = True

    def within(self, day: date | None, days: int) -> bool | None:
        """Whether `day` came within `days` of the course's end: True when so even counted
        from its last known day, which the end is not before; False only when the end is
        recorded; None when unknown."""
        if self.last is None or day is None:
            return None
        if day - self.last <= timedelta(days=days):
            return True
        return False if self.recorded else None


def _month(day: date | None) -> str | None:
    """A date charted by its month, as charted: '2026-10'."""
    return None if day is None else f"{day.year:04d}-{day.month:02d}"


def as_charted(first: date | None, last: date | None) -> date | str | None:
    """A start as a card shows it: its day, or its month when it was charted by the month
    (`first` and `last` then differ: `Exposure.start_span`)."""
    return first if first == last else _month(first)


def course_end(exposures: Iterable[Exposure]) -> CourseEnd:
    """The exposures' last known day: a recorded end outranks a start on the same day."""
    latest = max(
        (e for e in exposures if e.last is not None),
        key=lambda e: (e.last, e.end_recorded),
        default=None,
    )
    if latest is None:
        return CourseEnd(None)
    return CourseEnd(latest.last, recorded=latest.end_recorded)


@dataclass(frozen=True, slots=True, kw_only=True)
class Medications:
    exposures: tuple[Exposure, ...]
    received: bool  # any Medication* data arrived: without it "not on a BMA" is unknown
    # Each agent's course starts, worked out on first use (one sort an agent, not one a call).
    _courses: dict[str, list[date]] = field(default_factory=dict, repr=False, compare=False)
    # Each agent's latest treatment (its start, and the last day it reaches), on first use.
    _treatments: dict[tuple[str, int], tuple[tuple[date, date] | None, date]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def given(self) -> tuple[Exposure, ...]:
        return tuple(e for e in self.exposures if e.given)

    def active(self, *classes: MedClass) -> tuple[Exposure, ...]:
        return tuple(e for e in self.exposures if e.active and e.med_class in classes)

    def ever(self, *classes: MedClass) -> tuple[Exposure, ...]:
        return tuple(e for e in self.exposures if e.given and e.med_class in classes)

    def last_recorded(
        self, *classes: MedClass, ingredients: Collection[str] | None = None
    ) -> Exposure | None:
        """The record of these classes (and ingredients) given most recently, by its last date;
        undated records are left out. What a card names as "last recorded"."""
        dated = [
            e
            for e in self.ever(*classes)
            if e.last is not None and (ingredients is None or e.ingredient in ingredients)
        ]
        return max(dated, key=lambda e: e.last or date.min, default=None)

    def course_start(self, e: Exposure) -> date | None:
        """The first dose of the course `e` belongs to. A course recorded as infusions (a
        MedicationAdministration a dose) started at its first dose, not at its latest: read
        from each record, a denosumab course of months 'started' at every dose, and its
        start-of-course cards (R3b, R4a) came back each month."""
        if e.start is None:
            return None
        courses = self._courses.get(e.ingredient)
        if courses is None:
            courses = self._courses[e.ingredient] = self._courses_of(e.ingredient)
        return next((first for first in reversed(courses) if first <= e.start), e.start)

    def course_start_shown(self, e: Exposure) -> date | str | None:
        """`course_start` as a card shows it: a start charted by its month as charted."""
        return as_charted(self.course_start(e), self.course_started_by(e))

    def course_started_by(self, e: Exposure) -> date | None:
        """The last day the course `e` belongs to may have begun: `course_start`, or the last
        day of the month its first record's start was charted by."""
        first = self.course_start(e)
        if first is None:
            return None
        return min(
            (
                x.record.started_by or first
                for x in self.exposures
                if x.given and x.ingredient == e.ingredient and x.start == first
            ),
            default=first,
        )

    def treatment_start(
        self, ingredient: str, gap_days: int, *, ongoing_by: date | None = None
    ) -> tuple[date, date] | None:
        """When the agent's latest treatment began, as the first and last day it may have
        (`Exposure.start_span`): its given records in order of start, a new treatment wherever
        one starts more than `gap_days` after all before it have ended - a hold and its
        resumption, or a switch of schedule, are one treatment. With `ongoing_by`, None when
        that treatment ended more than `gap_days` before it: one begun then is a new one."""
        found = self._treatments.get((ingredient, gap_days))
        if found is None:
            found = self._treatments[ingredient, gap_days] = self._latest_treatment(
                ingredient, gap_days
            )
        first, reach = found
        if first is not None and ongoing_by is not None and (ongoing_by - reach).days > gap_days:
            return None
        return first

    def _latest_treatment(
        self, ingredient: str, gap_days: int
    ) -> tuple[tuple[date, date] | None, date]:
        """`treatment_start`'s work: the latest treatment's start span and its reach."""
        records = sorted(
            (
                (span, x)
                for x in self.exposures
                if x.given and x.ingredient == ingredient and (span := x.start_span) is not None
            ),
            key=lambda pair: pair[0],
        )
        first: tuple[date, date] | None = None
        reach = date.min
        for span, x in records:
            if first is None or (span[0] - reach).days > gap_days:
                first, reach = span, span[0]
            # A course with no recorded end (in use, or ended on a day not known) may reach any
            # later one: no gap is read after it. (A dose's end is its day; a status set aside
            # ended with its last charted dose.)
            stale_end = x.last_dose.last if x.last_dose is not None else None
            reach = max(reach, x.record.end or stale_end or date.max)
        return first, reach

    def begins_treatment(self, ingredient: str, gap_days: int, *, on: date) -> bool:
        """Whether a dose of the agent on `on` begins a treatment: none given within `gap_days`
        before it (`treatment_start`), and none on no known day (which may be this one's)."""
        if any(e.start is None for e in self.ever_of(ingredient)):
            return False
        return self.treatment_start(ingredient, gap_days, ongoing_by=on) is None

    def ever_of(self, ingredient: str) -> tuple[Exposure, ...]:
        """The records of this ingredient ever given."""
        return tuple(e for e in self.exposures if e.given and e.ingredient == ingredient)

    def _courses_of(self, ingredient: str) -> list[date]:
        """The first days of an agent's courses, oldest first: its given records in order of
        start, a new course wherever one starts more than the agent's active window after all
        before it have ended (a record still active with no end date has not ended)."""
        records = sorted(
            (
                (start, x)
                for x in self.exposures
                if x.given and x.ingredient == ingredient and (start := x.start) is not None
            ),
            key=lambda pair: pair[0],
        )
        firsts: list[date] = []
        reach = date.min
        for start, x in records:
            if not firsts or (start - reach).days > x.window_days:
                firsts.append(start)
                reach = start
            reach = max(reach, x.record.end or (date.max if x.active else start))
        return firsts

    def set_aside(self) -> tuple[Exposure, ...]:
        """Records whose active status was set aside for the doses charted (`set_aside_stale`):
        a card names them, as the checks read them as ended."""
        return tuple(e for e in self.exposures if e.last_dose is not None)

    def ingredients_stopped_for(self, reason: StopReason) -> frozenset[str]:
        return frozenset(e.ingredient for e in self.exposures if e.stop_reason == reason)

    def active_bma(self) -> tuple[Exposure, ...]:
        return tuple(e for e in self.active("BMA") if e.bma_dose in ("onc", "unknown"))

    def active_osteo_bma(self) -> tuple[Exposure, ...]:
        return tuple(e for e in self.active("BMA") if e.bma_dose == "osteo")

    def prohibitions(self) -> tuple[Exposure, ...]:
        """Orders not to give a medicine (MedicationRequest.doNotPerform) still in force: the
        clinician's decision about that agent, so it is not offered (R1, R6)."""
        return tuple(e for e in self.exposures if e.prohibits)

    def of_unknown_status(self, *classes: MedClass) -> tuple[Exposure, ...]:
        """Records of unknown status (`Exposure.status_unknown`): a card that relies on their
        absence names them."""
        return tuple(e for e in self.exposures if e.status_unknown and e.med_class in classes)

    def possibly_in_use(self, *classes: MedClass) -> tuple[Exposure, ...]:
        """In use (F5), then those of unknown status, which may be: what a safety check on a
        drug takes (cds.rules.in_use names them)."""
        return (*self.active(*classes), *self.of_unknown_status(*classes))

    def declined_bma(self) -> tuple[Exposure, ...]:
        """A recorded decision not to treat with a bone agent (R1)."""
        return tuple(e for e in self.exposures if e.med_class == "BMA" and e.declined)


_DECLINABLE = frozenset({"not-taken", "cancelled", "not-done"})


def declined(record: MedicationRecord, t: Terminology) -> bool:
    """A recorded decision not to take a medicine: a statement that it is not taken, with a
    reason; or, where the decision is kept on the order or the dose, an order cancelled or a
    dose not given because the patient refused it. A cancelled order's other reasons (a
    duplicate, a wrong dose) say nothing of the patient's decision."""
    if record.status == "not-taken":
        return bool(record.status_reasons)
    if record.status not in ("cancelled", "not-done"):
        return False
    return any(t["patient-refusal"].matches_code(reason) for reason in record.status_reasons)


def stop_reason(record: MedicationRecord, t: Terminology) -> StopReason | None:
    """Why a medicine was stopped, by the reason's code. 'Not tolerated' is also read from a
    reason sent as words (or under a local code): read so, the medicine is not proposed again
    and an order of it is questioned. Progression is read by its code only: words read as
    progression would give a next-line card while the line works."""
    for reason in record.status_reasons:
        if t["stop-progression"].matches_code(reason):
            return "progression"
        if t["stop-toxicity"].matches(reason):
            return "toxicity"
        if t["stop-other"].matches_code(reason):
            return "other"
    return None


def bma_dose(record: MedicationRecord, match: DrugMatch) -> BmaDose:
    """Oncologic versus osteoporosis dosing (F5): a coded product's strength first, then the
    dosage, then the strength of a brand sold in one (a record that names Prolia and no dose)."""
    if match.bma_dose is not None and not match.by_text:
        return match.bma_dose
    if match.ingredient == "pamidronate":
        return "onc"
    if match.ingredient == "ibandronate":
        return "osteo"  # not a US bone-metastasis agent: R1 still asks for one (§3c D3)
    mg: float | None = None
    weeks: float | None = None
    texts = [record.medication.all_text()]
    for d in record.doses:
        if d.quantity is not None and (q_mg := units.to_mg(d.quantity)) is not None:
            mg = q_mg
        weeks = d.every_weeks or weeks
        texts.append(d.text or "")
        texts.append(d.timing_text or "")
    if mg is None:
        for text in texts:
            mg = units.mg_from_text(text)
            if mg is not None:
                break
    if weeks is None:  # "every 6 months" in the dosage's or the timing's words
        weeks = next((w for w in map(units.weeks_from_text, texts) if w is not None), None)
    if match.ingredient == "denosumab":
        if (mg is not None and mg >= 120) or (weeks is not None and weeks <= 5):
            return "onc"
        if mg == 60 or (weeks is not None and weeks >= 20):
            return "osteo"
    elif match.ingredient == "zoledronic acid":
        if mg == 5 or (weeks is not None and weeks >= 26):
            return "osteo"
        if (mg is not None and mg <= 4) or (weeks is not None and weeks <= 13):
            return "onc"
    return "unknown" if match.bma_dose is None else match.bma_dose


def _given(record: MedicationRecord) -> bool:
    if record.status in _NEVER_GIVEN or record.do_not_perform:
        return False
    return not (record.resource_type == "MedicationRequest" and record.intent == "proposal")


def is_active(record: MedicationRecord, as_of: date, window_days: int, lead_days: int) -> bool:
    """F5 active: an active status, or a dose within the window (statuses are often stale).

    An order (MedicationRequest) with an active status and intent order or plan is taken at its
    word however long ago it was written, as F5 says: one order often covers a course that goes
    on for years (maintenance HER2 antibodies, a bone agent every 4 weeks), and reading it as
    ended on the day it was written told patients on a bone agent to start one and offered a
    next line on the current one. An order ends by its status or its validity period's end.
    """
    if not _given(record):
        return False
    last = record.end or record.start
    recent = last is not None and within(last, as_of, window_days, lead_days)
    if record.resource_type == "MedicationAdministration":
        # 'completed' here means the dose was given: activity comes from the dosing window.
        return recent and record.status not in ("stopped", "not-done")
    if record.status in ("stopped", "cancelled", "not-taken"):
        return False
    if record.status == "completed":
        # A completed course with an end date has ended; without one, a recent order counts.
        return record.end is None and recent
    if record.start is not None and record.start > as_of and record.status not in _ACTIVE:
        return False
    if record.end is not None and record.end < as_of:
        return False
    if record.status in _ACTIVE:
        if record.resource_type != "MedicationRequest":
            return True
        return record.intent in _ORDER_INTENTS
    return recent


def _in_force(record: MedicationRecord, as_of: date) -> bool:
    """An order not to give, not lifted: neither completed, stopped nor cancelled, nor ended
    before the day (one of unknown status is taken at its word)."""
    lifted = record.status in ("completed", "stopped", "cancelled")
    return not lifted and (record.end is None or record.end >= as_of)


def extract_medications(
    records: Records,
    t: Terminology,
    *,
    as_of: date,
    active_window_days: int,
    zoledronic_window_days: int,
    lead_days: int,
    gap_days: int,
    dose_charted: Collection[str],
) -> Medications:
    exposures = []
    for record in records.medications:
        for match in t.medications.match(record.medication, t.rxnorm):
            window = (
                zoledronic_window_days
                if match.ingredient == "zoledronic acid"
                else active_window_days
            )
            active = is_active(record, as_of, window, lead_days)
            exposures.append(
                Exposure(
                    ingredient=match.ingredient,
                    med_class=match.med_class,
                    record=record,
                    active=active,
                    given=_given(record),
                    stop_reason=stop_reason(record, t),
                    bma_dose=bma_dose(record, match) if match.med_class == "BMA" else None,
                    by_text=match.by_text,
                    window_days=window,
                    prohibits=record.do_not_perform and _in_force(record, as_of),
                    declined=record.status in _DECLINABLE and declined(record, t),
                    status_unknown=record.status == "unknown" and not active and not record.end,
                )
            )
    received = any(k in records.received for k in ("MedicationStatement", "MedicationRequest"))
    received = received or "MedicationAdministration" in records.received
    exposures = set_aside_stale(exposures, as_of, gap_days, dose_charted)
    return Medications(exposures=tuple(exposures), received=received)
