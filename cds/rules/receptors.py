"""R13-R14: re-test receptors at metastatic recurrence; HER2 results that need more testing."""

from __future__ import annotations

from datetime import timedelta

from cds.facts import PatientFacts
from cds.facts.marker_results import MarkerResult
from cds.facts.orders import DraftOrders
from cds.fhir.screening import MARKER_SETS, RESULT_SETS
from cds.parameters import Parameters
from cds.rules import PATIENT_VIEW, Decision, NoteKey, Order, Proposal, rule
from cds.rules.lab_orders import lab_lines, lab_ordered
from cds.said import Said, say

# What the receptor facts read (F4): the marker codes and their answer sets.
MARKER_VALUESETS = (*MARKER_SETS, *RESULT_SETS, "er-negative-ichom")
# What the receptor facts apply: HER2 results of one testing event across days (§3c D13).
MARKER_PARAMETERS = ("her2_event_days",)


@rule(
    "R13",
    hooks=PATIENT_VIEW,
    variants=("retest", "her2-not-retested", "discordance"),
    valuesets=(*MARKER_VALUESETS, "secondary-neoplasm", "biopsy", "visceral-metastasis"),
    parameters=("adjuvant_cutoff_days", "lab_freshness_days", *MARKER_PARAMETERS),
    orders=("metastatic-biopsy", "test-er", "test-pr", "test-her2"),
    suggestions=("biopsy-retest", "her2-retest"),
    notes=("bone-only-decalcification",),
)
def r13_retest_receptors(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """No ER/PR/HER2 result from a specimen at or after metastasis → biopsy and re-test.

    ESMO-MBC-2021: at first diagnosis of metastatic disease, biopsy to confirm histology and
    re-assess ER, PgR and HER2 (strong). Seeds 003/004. A discordance between primary and
    metastatic results is shown with the result used (metastatic, F4).
    """
    if not f.disease.metastatic.present:
        return []
    found = (_retest(f, p) or _her2_not_retested(f, p), _discordance(f))
    return [d for d in found if d is not None]


def _her2_not_retested(f: PatientFacts, p: Parameters) -> Decision | None:
    """A specimen at or after metastasis was tested, but HER2 has no usable result from it
    (none, or one with no value - 'not performed'): F4 then uses the primary tumour's HER2 ("R13
    fires in that case"), or HER2 is unknown. ESMO-MBC-2021 asks for
    HER2 at metastatic diagnosis too: a HER2 test on that specimen, not another biopsy. Quiet
    while results not yet final are on their way, when HER2 comes from a diagnosis code, and
    when R14 asks for HER2 testing already (serum HER2 only, reflex ISH, concurrent IHC)."""
    tmet, her2 = f.disease.metastatic_date, f.receptors.her2
    if tmet is None or not f.receptors.has_metastatic_specimen or f.receptors.serum_her2_only:
        return None  # serum HER2 only: R14 asks for tissue HER2
    if her2 is not None and (
        her2.from_diagnosis
        or her2.needs_reflex_ish  # R14 asks for the testing this result needs
        or her2.needs_concurrent_ihc
        or (her2.specimen_site != "primary" and her2.status != "unknown")
    ):
        return None
    cutoff = tmet - timedelta(days=p.adjuvant_cutoff_days)
    if any(w is not None and w >= cutoff for w in f.receptors.pending):
        return None
    if lab_ordered(f, "test-her2", p.lab_freshness_days, after=cutoff) is not None:
        return None  # the HER2 test this card asks for is ordered (§3c D20)
    er_pr = [m for m in (f.receptors.er, f.receptors.pr) if m is not None]  # whatever their site
    return Decision(
        variant="her2-not-retested",
        indicator="info",
        data=(
            say("metastatic-disease", when=tmet),
            *(marker_line(m) for m in (*er_pr, *((her2,) if her2 else ()))),
            *(() if her2 else (say("her2-none-on-record"),)),
        ),
        refs=(
            *f.disease.metastatic.refs,
            *(r for m in (*er_pr, *((her2,) if her2 else ())) for r in m.refs),
        ),
        proposals=(Proposal(key="her2-retest", actions=(Order(key="test-her2"),)),),
    )


def marker_line(m: MarkerResult) -> Said:
    return say("marker-result", marker=m.marker, status=m.status, site=m.specimen_site, when=m.when)


def _retest(f: PatientFacts, p: Parameters) -> Decision | None:
    """ESMO-MBC-2021: no receptor result from a specimen at or after metastasis and no biopsy
    since - biopsy and re-test ER, PgR and HER2 (bone-only disease: decalcification note)."""
    d = f.disease
    tmet = d.metastatic_date
    cutoff = timedelta(days=p.adjuvant_cutoff_days)
    biopsied = tmet is not None and any(b.when >= tmet - cutoff for b in f.biopsies)
    # A biopsy whose results are still preliminary is done: its results are on their way.
    pending = (
        any(w is not None and w >= tmet - cutoff for w in f.receptors.pending) if tmet else False
    )
    if tmet is None or f.receptors.has_metastatic_specimen or biopsied or pending:
        return None
    notes = (
        (NoteKey("bone-only-decalcification"),) if d.bone.present and not d.visceral.present else ()
    )
    return Decision(
        variant="retest",
        indicator="info",
        data=(
            say("metastatic-disease", when=tmet),
            *tuple(
                marker_line(m)
                for m in (f.receptors.er, f.receptors.pr, f.receptors.her2)
                if m is not None
            ),
        ),
        refs=d.metastatic.refs,
        note_keys=notes,
        proposals=(
            Proposal(
                key="biopsy-retest",
                actions=(
                    Order(key="metastatic-biopsy"),
                    Order(key="test-er"),
                    Order(key="test-pr"),
                    Order(key="test-her2"),
                ),
            ),
        ),
    )


def _discordance(f: PatientFacts) -> Decision | None:
    """Primary and metastatic results disagree: shown, with the result used (metastatic, F4)."""
    discordances = f.receptors.discordances()
    if not discordances:
        return None
    return Decision(
        variant="discordance",
        indicator="info",
        data=discordances,
        refs=tuple(
            r
            for m in (
                f.receptors.her2,
                f.receptors.her2_primary,
                f.receptors.er,
                f.receptors.er_primary,
            )
            if m is not None
            for r in m.refs
        ),
    )


def _ish_unread(her2: MarkerResult) -> Decision:
    """R14: IHC 2+ with an ISH on record that gives no group: its report asked for."""
    return Decision(
        variant="ish-unread",
        indicator="warning",
        data=(
            say(
                "her2-ihc-2-ish-unread",
                when=her2.when,
                site=her2.specimen_site,
                ish=her2.ish_unread,
            ),
        ),
        refs=her2.refs,
    )


def _test_asked_for(
    f: PatientFacts, her2: MarkerResult, p: Parameters, variant: str, finding: Said, test: str
) -> Decision:
    """R14: a HER2 result that needs another test (`test`, an order key). The test, once
    ordered after the result, is named, not ordered twice (D20); the warning stays until it is
    resulted."""
    ordered = lab_lines(f, (test,), p.lab_freshness_days, after=her2.when)
    proposal = Proposal(key=_PROPOSALS[test], actions=(Order(key=test),))
    return Decision(
        variant=variant,
        indicator="warning",
        data=(finding, *ordered),
        refs=her2.refs,
        proposals=() if ordered else (proposal,),
    )


# The suggestion that orders each test R14 asks for.
_PROPOSALS = {"her2-ish": "reflex-ish", "test-her2": "her2-ihc"}


@rule(
    "R14",
    hooks=PATIENT_VIEW,
    variants=("reflex-ish", "ish-unread", "needs-ihc", "serum-only"),
    valuesets=MARKER_VALUESETS,
    parameters=(*MARKER_PARAMETERS, "lab_freshness_days"),
    orders=("her2-ish", "test-her2"),
    suggestions=("reflex-ish", "her2-ihc"),
)
def r14_her2_testing(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """HER2 IHC 2+ without ISH, ISH group 2-4 without IHC, or serum HER2 only → more testing.

    ASCO/CAP HER2 2018 (affirmed 2023): IHC 2+ is equivocal and needs reflex ISH; ISH groups 2-4
    need concurrent IHC review; serum HER2 ECD does not define tissue status. An ISH on record
    that gives no group (a ratio without the copy number) is named, its report asked for: the
    test was done, so no new one is suggested.
    """
    her2 = f.receptors.her2
    if her2 is not None and her2.needs_reflex_ish:
        if her2.ish_unread is not None:
            return [_ish_unread(her2)]
        finding = say("her2-ihc-2-no-ish", when=her2.when, site=her2.specimen_site)
        return [_test_asked_for(f, her2, p, "reflex-ish", finding, "her2-ish")]
    if her2 is not None and her2.needs_concurrent_ihc:
        finding = say("her2-ish-no-ihc", group=her2.ish_group, when=her2.when)
        return [_test_asked_for(f, her2, p, "needs-ihc", finding, "test-her2")]
    if f.receptors.serum_her2_only:
        return [
            Decision(
                variant="serum-only",
                indicator="info",
                data=(say("her2-serum-only"),),
            )
        ]
    return []
