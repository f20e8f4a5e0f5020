"""R6e, R6epv: pertuzumab without its partner; R6i: T-DXd with pertuzumab after the first line
(rules/pertuzumab.py)."""

from __future__ import annotations

from typing import Any

import pytest

from cds.parameters import Parameters
from cds.terminology import Terminology
from fixtures.factories import (
    DOCE,
    PERT,
    PHESGO,
    PROGRESSION,
    TDM1,
    TDXD,
    TOXICITY,
    TRAS,
    WORSENED,
    Patient,
    draft_med,
    her2_positive_base,
)
from tests.rules.helpers import bone_patient, concerns, run, text


class TestR6ePertuzumabWithoutItsPartner:
    @staticmethod
    def _r6e(p: Patient, t: Terminology, params: Parameters, *rx: tuple[str, str]) -> list[str]:
        drafts = [draft_med("p", f"d{i}", x, "as directed") for i, x in enumerate(rx)]
        out = run(p, t, params, "order-sign", drafts)
        return [c for c in concerns(out) if c.startswith("R6e")]

    @pytest.mark.parametrize(
        ("rx", "fires"),
        [
            ((PERT,), True),
            ((PERT, DOCE), True),
            ((PERT, TRAS, DOCE), False),  # CLEOPATRA's THP
            ((PERT, TDXD), False),  # DESTINY-Breast09
            ((PHESGO,), False),  # carries trastuzumab
            ((PERT, TDM1), True),  # T-DM1 is not pertuzumab's partner
            ((TRAS,), False),
        ],
    )
    def test_by_what_is_drafted_with_it(
        self, t: Terminology, params: Parameters, rx: tuple[tuple[str, str], ...], fires: bool
    ) -> None:
        p = bone_patient(her2="pos")
        assert self._r6e(p, t, params, *rx) == (["R6e:without-trastuzumab"] if fires else [])

    @pytest.mark.parametrize(
        ("status", "end", "fires"),
        [
            ("active", None, False),  # trastuzumab ordered in its own signing
            ("unknown", None, False),  # may be in use: not called absent
            ("stopped", 20, True),  # stopped: pertuzumab goes too
        ],
    )
    def test_by_the_trastuzumab_in_the_record(
        self, t: Terminology, params: Parameters, status: str, end: int | None, fires: bool
    ) -> None:
        p = bone_patient(her2="pos")
        p.med("MedicationStatement", TRAS, status=status, start=200, end=end)
        assert self._r6e(p, t, params, PERT) == (["R6e:without-trastuzumab"] if fires else [])

    def test_the_card_names_the_draft_and_the_last_trastuzumab(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient(her2="pos")
        p.med("MedicationStatement", TRAS, status="stopped", start=200, end=20)
        out = run(p, t, params, "order-sign", [draft_med("p", "pert", PERT, "420 mg IV")])
        [d] = [x for x in out if x.rule == "R6e"]
        assert d.indicator == "warning"
        said = [text(x) for x in d.data]
        assert said[0] == "Draft order: pertuzumab (MedicationRequest/pert)"
        assert said[1].startswith("trastuzumab: last recorded ")


class TestR6epvPertuzumabRecordedAlone:
    @staticmethod
    def _r6epv(
        p: Patient, t: Terminology, params: Parameters, hook: str = "patient-view"
    ) -> list[str]:
        drafts: list[dict[str, Any]] | None = [] if hook != "patient-view" else None
        return [c for c in concerns(run(p, t, params, hook, drafts)) if c.startswith("R6epv")]

    @pytest.mark.parametrize(
        ("partner", "fires"),
        [
            ({"status": "stopped", "start": 300, "end": 21}, True),
            ({"status": "completed", "start": 300, "end": 90}, True),
            ({"status": "active", "start": 300}, False),  # given together: as it should be
            ({"status": "unknown", "start": 300}, False),  # may still be given
            (None, False),  # no trastuzumab record at all: missing, not a finding
        ],
    )
    def test_by_the_trastuzumab_record(
        self, t: Terminology, params: Parameters, partner: dict[str, Any] | None, fires: bool
    ) -> None:
        p = bone_patient(her2="pos")
        p.med("MedicationStatement", PERT, status="active", start=300)
        if partner is not None:
            p.med("MedicationStatement", TRAS, **partner)
        assert self._r6epv(p, t, params) == (["R6epv:without-trastuzumab"] if fires else [])

    def test_tdxd_in_use_is_a_partner(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient(her2="pos")
        p.med("MedicationStatement", PERT, status="active", start=60)
        p.med("MedicationStatement", TRAS, status="stopped", start=300, end=70)
        p.med("MedicationStatement", TDXD, status="active", start=60)  # DESTINY-Breast09
        assert self._r6epv(p, t, params) == []

    @pytest.mark.parametrize(
        ("pertuzumab_given", "trastuzumab_ended", "fires"),
        [
            (20, 21, True),  # a dose given alone, after trastuzumab ended
            (24, 21, True),  # in use by F5's window, trastuzumab stopped since: due alone next
            (40, 50, False),  # past F5's window: no longer in use
        ],
    )
    def test_charted_dose_by_dose(
        self,
        t: Terminology,
        params: Parameters,
        pertuzumab_given: int,
        trastuzumab_ended: int,
        fires: bool,
    ) -> None:
        p = bone_patient(her2="pos")
        p.med("MedicationAdministration", PERT, status="completed", start=pertuzumab_given)
        p.med("MedicationStatement", TRAS, status="stopped", start=300, end=trastuzumab_ended)
        assert self._r6epv(p, t, params) == (["R6epv:without-trastuzumab"] if fires else [])

    def test_phesgo_carries_its_own_trastuzumab(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient(her2="pos")
        p.med("MedicationStatement", PHESGO, status="active", start=60)
        p.med("MedicationStatement", TRAS, status="stopped", start=300, end=70)
        assert self._r6epv(p, t, params) == []

    def test_the_card_names_both_records_and_only_on_patient_view(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient(her2="pos")
        pert = p.med("MedicationStatement", PERT, status="active", start=300)
        tras = p.med("MedicationStatement", TRAS, status="stopped", start=300, end=21)
        [d] = [x for x in run(p, t, params) if x.rule == "R6epv"]
        assert (d.indicator, d.bindings) == ("warning", {"partner": "trastuzumab"})
        assert [text(x) for x in d.data] == [
            f"On pertuzumab since {p.day(300)} (MedicationStatement/{pert['id']})",
            f"trastuzumab: last recorded {p.day(21)} (MedicationStatement/{tras['id']})",
        ]
        assert self._r6epv(p, t, params, "order-sign") == []


class TestR6iTdxdWithPertuzumabAfterFirstLine:
    @staticmethod
    def _r6i(p: Patient, t: Terminology, params: Parameters, *rx: tuple[str, str]) -> list[str]:
        drafts = [draft_med("p", f"d{i}", x, "as directed") for i, x in enumerate(rx)]
        out = run(p, t, params, "order-sign", drafts)
        return [c for c in concerns(out) if c.startswith("R6i")]

    @staticmethod
    def _after_thp(
        status: str = "stopped", reason: tuple[str, str] | None = PROGRESSION
    ) -> Patient:
        p = her2_positive_base("p", met_days=500)  # metastatic before THP started
        for drug in (DOCE, TRAS, PERT):
            p.med("MedicationStatement", drug, status=status, start=450, end=20, reason=reason)
        return p

    def test_after_progression_on_thp(self, t: Terminology, params: Parameters) -> None:
        p = self._after_thp()
        assert self._r6i(p, t, params, TDXD, PERT) == ["R6i:not-first-line"]
        assert self._r6i(p, t, params, TDXD) == []  # T-DXd alone: the second-line way
        assert self._r6i(p, t, params, TRAS, PERT) == []  # not this rule's pairing

    def test_first_line_raises_nothing(self, t: Terminology, params: Parameters) -> None:
        assert self._r6i(bone_patient(her2="pos"), t, params, TDXD, PERT) == []

    @pytest.mark.parametrize(
        ("rtype", "status", "expected"),
        [
            ("MedicationStatement", "active", ["R6i:pertuzumab-in-use"]),  # left open
            ("MedicationRequest", "on-hold", ["R6i:pertuzumab-in-use"]),
            ("MedicationAdministration", "completed", []),  # a dose given on a day
            ("MedicationStatement", "stopped", []),
        ],
    )
    def test_tdxd_alone_while_pertuzumab_is_left_open(
        self, t: Terminology, params: Parameters, rtype: str, status: str, expected: list[str]
    ) -> None:
        p = her2_positive_base("p", met_days=500)
        p.med("MedicationStatement", DOCE, status="completed", start=450, end=330)
        p.med("MedicationStatement", TRAS, status="stopped", start=450, end=20, reason=PROGRESSION)
        p.med(rtype, PERT, status=status, start=450 if status != "completed" else 21)
        p.disease_status(12, *WORSENED)
        assert self._r6i(p, t, params, TDXD) == expected
        assert self._r6i(p, t, params, TDXD, PERT) == ["R6i:not-first-line"]  # one card

    @pytest.mark.parametrize(
        ("tdxd_status", "rx", "expected"),
        [
            ("active", PERT, ["R6i:added-to-tdxd"]),
            ("unknown", PERT, ["R6i:added-to-tdxd"]),  # may be given: named as such
            ("stopped", PERT, []),  # no T-DXd in use: R6e's pertuzumab-alone card
            ("active", PHESGO, []),  # Phesgo carries trastuzumab: R6d's switch card
        ],
    )
    def test_pertuzumab_added_to_the_tdxd_in_use(
        self,
        t: Terminology,
        params: Parameters,
        tdxd_status: str,
        rx: tuple[str, str],
        expected: list[str],
    ) -> None:
        p = self._after_thp()
        stopped = tdxd_status == "stopped"
        p.med("MedicationStatement", TDXD, status=tdxd_status, start=15, end=5 if stopped else None)
        assert self._r6i(p, t, params, rx) == expected

    def test_pertuzumab_beside_first_line_tdxd_raises_nothing(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient(her2="pos")
        p.med("MedicationStatement", TDXD, status="active", start=60)
        assert self._r6i(p, t, params, PERT) == []  # DESTINY-Breast09

    def test_first_line_tdxd_beside_open_pertuzumab_raises_nothing(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient(her2="pos")
        p.med("MedicationStatement", PERT, status="active", start=20)
        assert self._r6i(p, t, params, TDXD) == []  # DESTINY-Breast09

    def test_a_regimen_stopped_for_toxicity_alone_is_not_a_prior_line(
        self, t: Terminology, params: Parameters
    ) -> None:
        """F6: a line ended for toxicity only is no prior regimen for label criteria."""
        p = self._after_thp(reason=TOXICITY)
        assert self._r6i(p, t, params, TDXD, PERT) == []

    def test_the_card_shows_the_lines_it_counted(self, t: Terminology, params: Parameters) -> None:
        p = self._after_thp()
        drafts = [draft_med("p", "tdxd", TDXD, "5.4 mg/kg"), draft_med("p", "pert", PERT, "840 mg")]
        [d] = [x for x in run(p, t, params, "order-sign", drafts) if x.rule == "R6i"]
        assert d.indicator == "warning"
        assert d.bindings == {"prior": "1"}
        said = [text(x) for x in d.data]
        assert said[:2] == [
            "Draft order: MedicationRequest/tdxd",
            "Draft order: MedicationRequest/pert",
        ]
        assert any(x.startswith("Metastatic line 1: ") for x in said), said
