"""R6c: HER2-targeted drugs drafted against the HER2 result in use; R6d: two products of the
same HER2 antibody drafted together (rules/her2_orders.py)."""

from __future__ import annotations

from typing import Any

import pytest

from cds.facts.orders import read_draft_orders
from cds.parameters import Parameters
from cds.rules import DeleteDraft
from cds.terminology import Terminology
from fixtures.factories import (
    DOCE,
    PERT,
    PHESGO,
    TDM1,
    TDXD,
    TRAS,
    Patient,
    draft_med,
)
from tests.rules.helpers import bone_patient, concerns, run, text


def _r6c(p: Patient, t: Terminology, params: Parameters, rx: tuple[str, str]) -> list[str]:
    drafts = [draft_med("p", "d1", rx, "as directed")]
    return [c for c in concerns(run(p, t, params, "order-sign", drafts)) if c.startswith("R6c")]


class TestR6cHer2DrugForHer2NegativeDisease:
    @pytest.mark.parametrize(
        ("her2", "rx", "expected"),
        [
            ("neg", TRAS, ["R6c:her2-negative"]),
            ("neg", TDM1, ["R6c:her2-negative"]),
            ("neg", TDXD, []),  # HER2-low use: R15 judges it
            ("pos", TRAS, []),
            (None, TRAS, []),  # no HER2 result: no negative finding
        ],
    )
    def test_by_the_her2_result_in_use(
        self,
        t: Terminology,
        params: Parameters,
        her2: str | None,
        rx: tuple[str, str],
        expected: list[str],
    ) -> None:
        p = bone_patient(her2=her2 or "neg")
        if her2 is None:
            p.resources = [r for r in p.resources if "48676-1" not in str(r.get("code"))]
        assert _r6c(p, t, params, rx) == expected

    @pytest.mark.parametrize(
        ("ish", "expected"),
        [
            (None, ["R6c:her2-equivocal"]),  # IHC 2+, ISH not done
            ({"valueQuantity": {"value": 2.3}}, ["R6c:her2-equivocal"]),  # ratio alone: no group
            ({"valueString": "Amplified"}, []),  # resolved: positive
            ({"valueString": "Not amplified"}, ["R6c:her2-negative"]),  # resolved: HER2-low
        ],
    )
    def test_ihc_2_plus_is_never_called_negative_until_ish_says_so(
        self, t: Terminology, params: Parameters, ish: dict[str, Any] | None, expected: list[str]
    ) -> None:
        p = bone_patient(her2="neg")
        p.resources = [r for r in p.resources if "48676-1" not in str(r.get("code"))]
        p.her2_ihc(80, "2+")
        if ish is not None:
            p.obs("49683-6" if "valueQuantity" in ish else "85318-4", 76, **ish)
        assert _r6c(p, t, params, TRAS) == expected
        drafts = [draft_med("p", "d1", TRAS, "8 mg/kg")]
        said = [text(x) for d in run(p, t, params, "order-sign", drafts) for x in d.data]
        if expected == ["R6c:her2-equivocal"]:
            assert any(x.startswith("HER2 equivocal") for x in said)

    def test_a_newer_positive_result_is_the_one_in_use(
        self, t: Terminology, params: Parameters
    ) -> None:
        """F4 reads the newest metastatic-setting result: a positive re-test after a negative
        one makes the order indicated (no card); the reverse order of results gives the card."""
        p = bone_patient(her2="neg")  # negative 90 days ago, after the metastasis
        p.her2(20, "pos")
        assert _r6c(p, t, params, TRAS) == []
        q = bone_patient(her2="pos")
        q.her2(20, "neg")
        assert _r6c(q, t, params, TRAS) == ["R6c:her2-negative"]

    def test_the_card_shows_the_result_it_used(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient(her2="neg")
        drafts = [draft_med("p", "d1", TRAS, "8 mg/kg")]
        [d] = [x for x in run(p, t, params, "order-sign", drafts) if x.rule == "R6c"]
        assert d.indicator == "warning"
        assert any(text(x).startswith("HER2 negative") for x in d.data)


HYLECTA = ("2119719", "Herceptin Hylecta 600 MG / 10,000 UNT per 5 ML Injection")


class TestR6dOneProductPerHer2Antibody:
    @staticmethod
    def _r6d(t: Terminology, params: Parameters, *rx: tuple[str, str] | str) -> list[str]:
        drafts = [draft_med("p", f"d{i}", x, "as directed") for i, x in enumerate(rx)]
        out = run(bone_patient(her2="pos"), t, params, "order-sign", drafts)
        return [c for c in concerns(out) if c.startswith("R6d")]

    @pytest.mark.parametrize(
        ("rx", "fires"),
        [
            ((TRAS, TDXD), True),
            ((TRAS, TDM1), True),
            ((TDXD, TDM1), True),
            ((PHESGO, TRAS), True),  # trastuzumab twice
            ((PHESGO, PERT), True),  # pertuzumab twice
            ((PHESGO, TDXD), True),
            ((HYLECTA, TRAS), True),  # trastuzumab SC and IV
            ((HYLECTA, PHESGO), True),
            ((HYLECTA, TDXD), True),
            (("Trastuzumab and hyaluronidase-oysk 600 mg SC", TRAS), True),  # named by text
            (("Herceptin SC 600 mg", "Herceptin 6 mg/kg IV"), True),
            ((HYLECTA, PERT, DOCE), False),  # THP with trastuzumab SC
            ((HYLECTA, HYLECTA), False),
            (("Pertuzumab, trastuzumab and hyaluronidase-zzxf", PERT), True),  # Phesgo, by text
            ((TRAS, PERT, DOCE), False),  # CLEOPATRA's THP
            ((TDXD, PERT), False),  # DESTINY-Breast09
            ((TRAS, TRAS), False),  # a loading and a maintenance dose
            ((PHESGO, PHESGO), False),
            ((TDXD,), False),
        ],
    )
    def test_which_pairs_clash(
        self, t: Terminology, params: Parameters, rx: tuple[tuple[str, str] | str, ...], fires: bool
    ) -> None:
        assert self._r6d(t, params, *rx) == (["R6d:drafted-together"] if fires else [])

    def test_one_warning_naming_both_drafts_and_a_keep_suggestion_for_each(
        self, t: Terminology, params: Parameters
    ) -> None:
        drafts = [
            draft_med("p", "tras", TRAS, "6 mg/kg"),
            draft_med("p", "pert", PERT, "420 mg"),
            draft_med("p", "tdxd", TDXD, "5.4 mg/kg"),
        ]
        [d] = [
            x
            for x in run(bone_patient(her2="pos"), t, params, "order-sign", drafts)
            if x.rule == "R6d"
        ]
        assert d.indicator == "warning"
        assert d.bindings == {
            "drugs": "trastuzumab and trastuzumab deruxtecan",
            "antibody": "trastuzumab",
        }
        assert [text(x) for x in d.data] == [
            "Draft order: trastuzumab (MedicationRequest/tras)",
            "Draft order: trastuzumab deruxtecan (MedicationRequest/tdxd)",
        ]
        deletes = {
            p.label_bindings["drug"]: [a.draft_ref for a in p.actions if isinstance(a, DeleteDraft)]
            for p in d.proposals
        }
        # Keeping T-DXd removes trastuzumab only: pertuzumab stays, as in DESTINY-Breast09.
        assert deletes == {
            "trastuzumab": ["MedicationRequest/tdxd"],
            "trastuzumab deruxtecan": ["MedicationRequest/tras"],
        }

    @pytest.mark.parametrize(
        ("rx", "hylecta"),
        [
            (HYLECTA, True),
            (("2119715", "Herceptin Hylecta"), True),
            (("2119713", "Hyaluronidase / trastuzumab"), True),
            ("Herceptin Hylecta 600 mg/10,000 units", True),
            ("trastuzumab/hyaluronidase 600 mg SC", True),
            (("99999999", "Herceptin Hylecta 600 mg"), True),  # a code the table lacks: by name
            (TRAS, False),
            (("101306", "Herceptin"), False),
            (("224905", "Herceptin Hylecta"), False),  # the table's code says IV: codes decide
            (PHESGO, False),
            ("Pertuzumab, trastuzumab and hyaluronidase-zzxf", False),  # Phesgo by name
        ],
    )
    def test_herceptin_hylecta_is_a_product_of_its_own(
        self, t: Terminology, rx: tuple[str, str] | str, hylecta: bool
    ) -> None:
        drafts = read_draft_orders([draft_med("p", "d", rx, "as directed")], [], t)
        [draft] = drafts.medications
        assert draft.form == ("Herceptin Hylecta (subcutaneous trastuzumab)" if hylecta else None)

    def test_order_select_needs_a_selected_draft_among_them(
        self, t: Terminology, params: Parameters
    ) -> None:
        drafts = [
            draft_med("p", "tras", TRAS, "6 mg/kg"),
            draft_med("p", "tdxd", TDXD, "5.4 mg/kg"),
            draft_med("p", "doce", DOCE, "75 mg/m2"),
        ]
        p = bone_patient(her2="pos")
        for selected, fires in (("doce", False), ("tdxd", True), ("tras", True)):
            out = run(p, t, params, "order-select", drafts, [f"MedicationRequest/{selected}"])
            assert ("R6d:drafted-together" in concerns(out)) is fires, selected


class TestR6dSwitchWhileAnotherProductIsRecordedAsGiven:
    @staticmethod
    def _r6d(
        t: Terminology,
        params: Parameters,
        recorded: tuple[tuple[str, str], dict[str, Any]],
        *rx: tuple[str, str] | str,
    ) -> list[str]:
        rx_of, record = recorded
        p = bone_patient(her2="pos")
        p.med(record.pop("rtype"), rx_of, **record)
        drafts = [draft_med("p", f"d{i}", x, "as directed") for i, x in enumerate(rx)]
        return [c for c in concerns(run(p, t, params, "order-sign", drafts)) if c.startswith("R6d")]

    @pytest.mark.parametrize(
        ("recorded", "rx", "expected"),
        [
            # A conjugate drafted while another trastuzumab product's record is still open.
            (
                (TRAS, {"rtype": "MedicationRequest", "status": "active", "start": 400}),
                (TDXD,),
                ["R6d:switch-in-use"],
            ),
            (
                (TRAS, {"rtype": "MedicationStatement", "status": "active", "start": 60}),
                (TDM1,),
                ["R6d:switch-in-use"],
            ),
            (
                (TRAS, {"rtype": "MedicationStatement", "status": "on-hold", "start": 60}),
                (TDXD,),
                ["R6d:switch-in-use"],
            ),
            (
                (PHESGO, {"rtype": "MedicationStatement", "status": "active", "start": 60}),
                (TDXD,),
                ["R6d:switch-in-use"],
            ),
            (
                (HYLECTA, {"rtype": "MedicationRequest", "status": "active", "start": 60}),
                (TDM1,),
                ["R6d:switch-in-use"],
            ),
            (
                (TDM1, {"rtype": "MedicationStatement", "status": "active", "start": 60}),
                (TDXD,),
                ["R6d:switch-in-use"],
            ),
            # ... or the other way round: trastuzumab drafted while a conjugate is still open.
            (
                (TDXD, {"rtype": "MedicationStatement", "status": "active", "start": 60}),
                (TRAS,),
                ["R6d:switch-in-use"],
            ),
            (
                (TRAS, {"rtype": "MedicationStatement", "status": "unknown", "start": 60}),
                (TDXD,),
                ["R6d:other-status-unknown"],
            ),
            # A dose given on a day is not an open record: T-DXd needs no wait after it.
            (
                (TRAS, {"rtype": "MedicationAdministration", "status": "completed", "start": 21}),
                (TDXD,),
                [],
            ),
            # A statement completed without an end date, recent: in use by F5's window, not open.
            (
                (TRAS, {"rtype": "MedicationStatement", "status": "completed", "start": 20}),
                (TDXD,),
                [],
            ),
            (
                (
                    TRAS,
                    {"rtype": "MedicationStatement", "status": "stopped", "start": 400, "end": 20},
                ),
                (TDXD,),
                [],
            ),
            # Continuing the same drug, or switching formulation (F6 (c)): not this card.
            (
                (TDXD, {"rtype": "MedicationStatement", "status": "active", "start": 60}),
                (TDXD,),
                [],
            ),
            (
                (TRAS, {"rtype": "MedicationStatement", "status": "active", "start": 60}),
                (HYLECTA,),
                [],
            ),
            (
                (TRAS, {"rtype": "MedicationStatement", "status": "active", "start": 60}),
                (PHESGO,),
                [],
            ),
            (
                (TRAS, {"rtype": "MedicationStatement", "status": "active", "start": 60}),
                (PERT,),
                [],
            ),
            # Pertuzumab, a different antibody, beside T-DXd (DESTINY-Breast09): not this card.
            (
                (PERT, {"rtype": "MedicationStatement", "status": "active", "start": 60}),
                (TDXD,),
                [],
            ),
            # The open product drafted too: the drafted-together card speaks, once.
            (
                (TRAS, {"rtype": "MedicationStatement", "status": "active", "start": 60}),
                (TDXD, TRAS),
                ["R6d:drafted-together"],
            ),
        ],
    )
    def test_which_records_a_switch_must_close(
        self,
        t: Terminology,
        params: Parameters,
        recorded: tuple[tuple[str, str], dict[str, Any]],
        rx: tuple[tuple[str, str], ...],
        expected: list[str],
    ) -> None:
        assert self._r6d(t, params, (recorded[0], dict(recorded[1])), *rx) == expected

    def test_the_card_names_the_draft_and_the_open_record_with_its_course_start(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient(her2="pos")
        order = p.med("MedicationRequest", TRAS, status="active", start=400)
        p.med("MedicationAdministration", TRAS, status="completed", start=21)
        drafts = [draft_med("p", "tdxd", TDXD, "5.4 mg/kg")]
        [d] = [x for x in run(p, t, params, "order-sign", drafts) if x.rule == "R6d"]
        assert (d.variant, d.indicator, d.proposals) == ("switch-in-use", "warning", ())
        assert d.bindings == {"drug": "trastuzumab deruxtecan", "other": "trastuzumab"}
        assert [text(x) for x in d.data] == [
            "Draft order: trastuzumab deruxtecan (MedicationRequest/tdxd)",
            f"On trastuzumab since {p.day(400)} (MedicationRequest/{order['id']})",
        ]

    def test_one_card_for_the_order_however_many_drafts_clash(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient(her2="pos")
        p.med("MedicationStatement", TRAS, status="active", start=60)
        p.med("MedicationStatement", TRAS, status="unknown", start=300)
        drafts = [
            draft_med("p", "tdxd-1", TDXD, "5.4 mg/kg"),
            draft_med("p", "tdxd-2", TDXD, "5.4 mg/kg"),  # the same drug twice: R2b's card
        ]
        [d] = [x for x in run(p, t, params, "order-sign", drafts) if x.rule == "R6d"]
        assert d.variant == "switch-in-use"  # the open record decides; the unknown one waits
        assert [text(x) for x in d.data][:2] == [
            "Draft order: trastuzumab deruxtecan (MedicationRequest/tdxd-1)",
            "Draft order: trastuzumab deruxtecan (MedicationRequest/tdxd-2)",
        ]
        assert len(d.data) == 3

    def test_order_select_judges_the_selected_draft(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient(her2="pos")
        p.med("MedicationStatement", TRAS, status="active", start=60)
        drafts = [draft_med("p", "tdxd", TDXD, "5.4 mg/kg"), draft_med("p", "doce", DOCE, "75")]
        for selected, fires in (("doce", False), ("tdxd", True)):
            out = run(p, t, params, "order-select", drafts, [f"MedicationRequest/{selected}"])
            assert ("R6d:switch-in-use" in concerns(out)) is fires, selected


class TestR6dpvTwoTrastuzumabProductsInUse:
    @staticmethod
    def _r6dpv(
        p: Patient, t: Terminology, params: Parameters, hook: str = "patient-view"
    ) -> list[str]:
        drafts: list[dict[str, Any]] | None = [] if hook != "patient-view" else None
        return [c for c in concerns(run(p, t, params, hook, drafts)) if c.startswith("R6dpv")]

    @pytest.mark.parametrize(
        ("conjugate", "other", "fires"),
        [
            # Both open by their status.
            (("MedicationStatement", TDXD, 60), ("MedicationStatement", TRAS, 400), True),
            (("MedicationRequest", TDM1, 60), ("MedicationStatement", PHESGO, 400), True),
            (("MedicationStatement", TDXD, 60), ("MedicationRequest", HYLECTA, 400), True),
            (("MedicationStatement", TDXD, 60), ("MedicationStatement", TDM1, 200), True),
            # A dose of trastuzumab given after the conjugate's course started.
            (("MedicationStatement", TDXD, 60), ("MedicationAdministration", TRAS, 10), True),
            (("MedicationAdministration", TDXD, 5), ("MedicationAdministration", TRAS, 5), True),
            # A switch charted dose by dose: the last trastuzumab dose before the first T-DXd.
            (("MedicationAdministration", TDXD, 2), ("MedicationAdministration", TRAS, 23), False),
            # Pertuzumab is another antibody (DESTINY-Breast09 gives it with T-DXd).
            (("MedicationStatement", TDXD, 60), ("MedicationStatement", PERT, 400), False),
            # Trastuzumab alone, or two records of the same conjugate.
            (("MedicationStatement", TRAS, 60), ("MedicationStatement", PERT, 60), False),
            (("MedicationStatement", TDXD, 60), ("MedicationAdministration", TDXD, 10), False),
        ],
    )
    def test_which_records_are_both_in_use(
        self,
        t: Terminology,
        params: Parameters,
        conjugate: tuple[str, tuple[str, str], int],
        other: tuple[str, tuple[str, str], int],
        fires: bool,
    ) -> None:
        p = bone_patient(her2="pos")
        for rtype, rx, start in (conjugate, other):
            status = "completed" if rtype == "MedicationAdministration" else "active"
            p.med(rtype, rx, status=status, start=start)
        assert self._r6dpv(p, t, params) == (["R6dpv:both-in-use"] if fires else [])

    def test_an_ended_record_is_no_finding_and_the_card_names_both(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient(her2="pos")
        tdxd = p.med("MedicationStatement", TDXD, status="active", start=60)
        p.med("MedicationStatement", TRAS, status="stopped", start=400, end=62)
        assert self._r6dpv(p, t, params) == []
        tras = p.med("MedicationRequest", TRAS, status="active", start=400)
        [d] = [x for x in run(p, t, params) if x.rule == "R6dpv"]
        assert (d.indicator, d.bindings) == (
            "warning",
            {"drug": "trastuzumab deruxtecan", "other": "trastuzumab"},
        )
        assert [text(x) for x in d.data] == [
            f"On trastuzumab deruxtecan since {p.day(60)} (MedicationStatement/{tdxd['id']})",
            f"On trastuzumab since {p.day(400)} (MedicationRequest/{tras['id']})",
        ]
        assert self._r6dpv(p, t, params, "order-sign") == []
