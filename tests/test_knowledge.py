"""Knowledge files: codes only from terminology.md, cross-checks, settings, CLI, catalog."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from cds.errors import ConfigError
from cds.services import Knowledge, load_knowledge
from cds.settings import DEV_PATIENT_KEY_SECRET, REPO_CARDS, Settings, TrustedIssuer
from cds.tools.cli import main
from tests.conftest import SHARED, needs_shared
from tests.servers import production

TERMINOLOGY = SHARED / "clinical" / "terminology.md"
ADDITIONS = REPO_CARDS / "terminology-additions.md"


def _all_codes() -> list[tuple[str, str, str]]:
    """(file, code, level) for every code in cards/ value sets and the medication table."""
    out = []
    for path in sorted((REPO_CARDS / "valuesets").glob("*.yaml")):
        spec = yaml.safe_load(path.read_text())
        out += [(path.name, c["code"], c["level"]) for c in spec.get("codes", [])]
        out += [(path.name, p["prefix"].rstrip("."), p["level"]) for p in spec.get("prefixes", [])]
    meds = yaml.safe_load((REPO_CARDS / "medications.yaml").read_text())
    for ing in meds["ingredients"].values():
        out += [("medications.yaml", c["code"], c["level"]) for c in ing["codes"]]
    out += [("medications.yaml", c["code"], c["level"]) for c in meds["combinations"]]
    return out


@needs_shared(TERMINOLOGY)
def test_every_code_appears_in_the_terminology_sheet() -> None:
    """Never a code from memory: each one is written in ../shared/clinical/terminology.md, or
    in the project's own record of codes verified since (cards/terminology-additions.md)."""
    sheet = TERMINOLOGY.read_text() + ADDITIONS.read_text()
    missing = [
        (f, code)
        for f, code, _ in _all_codes()
        if not re.search(rf"(?<![\w.-]){re.escape(code)}(?![\w-])", sheet)
    ]
    assert missing == []


def test_added_codes_name_where_they_were_seen() -> None:
    """Each code added since the sheet has a row with a display, its sources and a level."""
    rows = [r for r in ADDITIONS.read_text().splitlines() if r.startswith("| ") and "#" in r]
    assert rows
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 6, row
        assert cells[5] in {"V", "S"}, row
        if cells[5] == "V":
            assert cells[4].count("#") >= 2, f"V needs two sources: {row}"


def test_unverified_codes_are_never_emitted(knowledge: Knowledge) -> None:
    """Order templates only use codes whose level is V or S."""
    for key, svc in knowledge.cards.orders.services.items():
        if svc.code is not None and svc.valueset is not None:
            entry = next(
                e for e in knowledge.terminology[svc.valueset].entries if e.code == svc.code
            )
            assert entry.level != "UNVERIFIED", key
    unverified = {c for _, c, level in _all_codes() if level == "UNVERIFIED"}
    for med in knowledge.cards.orders.medications.values():
        assert med.rxnorm not in unverified


def test_supplements_go_out_as_text_only(knowledge: Knowledge) -> None:
    """Calcium carbonate and cholecalciferol RxNorm codes are UNVERIFIED (terminology §10)."""
    orders = knowledge.cards.orders.medications
    assert orders["calcium-supplement"].rxnorm is None
    assert orders["vitamin-d-supplement"].rxnorm is None


def cards_with(tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of the knowledge files whose parameters.yaml `edit` has changed."""
    cards = copy_cards(tmp_path)
    path = cards / "parameters.yaml"
    spec = yaml.safe_load(path.read_text())
    edit(spec)
    path.write_text(yaml.safe_dump(spec))
    return cards


def copy_cards(tmp_path: Path) -> Path:
    target = tmp_path / "cards"
    shutil.copytree(REPO_CARDS, target)
    return target


class TestCrossCheck:
    def test_the_shipped_files_pass(self, knowledge: Knowledge) -> None:
        assert len(knowledge.rules) == len(knowledge.cards.cards)

    def test_a_missing_variant_fails_start_up(self, tmp_path: Path) -> None:
        cards = copy_cards(tmp_path)
        path = cards / "rules" / "R1.yaml"
        spec = yaml.safe_load(path.read_text())
        del spec["variants"]["marrow-only"]
        path.write_text(yaml.safe_dump(spec))
        with pytest.raises(ConfigError, match="R1: card variants"):
            load_knowledge(cards)

    def test_an_unknown_placeholder_fails(self, tmp_path: Path) -> None:
        cards = copy_cards(tmp_path)
        path = cards / "rules" / "R5.yaml"
        path.write_text(path.read_text().replace("Information only", "Information $oops"))
        with pytest.raises(ConfigError, match="oops"):
            load_knowledge(cards)

    def test_a_card_frame_text_with_the_wrong_placeholder_fails(self, tmp_path: Path) -> None:
        cards = copy_cards(tmp_path)
        path = cards / "common.yaml"
        path.write_text(path.read_text().replace("Remove the draft order $draft", "Remove $ref"))
        with pytest.raises(ConfigError, match=r"card.delete_draft: placeholders \['ref'\]"):
            load_knowledge(cards)

    def test_a_sentence_a_rule_says_must_exist(self, tmp_path: Path) -> None:
        cards = copy_cards(tmp_path)
        path = cards / "sentences.yaml"
        path.write_text(path.read_text().replace("lvef-none:", "lvef-missing:"))
        with pytest.raises(ConfigError, match="sentence 'lvef-none' is not in cards/sentences"):
            load_knowledge(cards)

    @pytest.mark.parametrize(
        ("old", "new"),
        [
            ("tablet_mg: 150, ", "tablet_mg: 50, "),  # not the strength its name gives
            ("tablet_mg: 150, ", ""),  # a tablet's strength named, none given
            ('"Tucatinib", level: S,', '"Tucatinib", level: S, tablet_mg: 150,'),  # no product
        ],
    )
    def test_a_tablet_strength_must_be_the_one_its_rxnorm_name_gives(
        self, tmp_path: Path, old: str, new: str
    ) -> None:
        """A count of tablets is read as mg by `tablet_mg`: start-up holds it to the clinical
        drug's RxNorm name ("Tucatinib 150 MG Oral Tablet"), both ways."""
        cards = copy_cards(tmp_path)
        path = cards / "medications.yaml"
        assert old in path.read_text()
        path.write_text(path.read_text().replace(old, new, 1))
        with pytest.raises(ConfigError, match="is not the strength its name gives"):
            load_knowledge(cards)

    def test_a_brands_tablet_strength_needs_the_brand_among_the_names(self, tmp_path: Path) -> None:
        cards = copy_cards(tmp_path)
        path = cards / "medications.yaml"
        path.write_text(path.read_text().replace("{tykerb: 250}", "{tyverb: 250}", 1))
        with pytest.raises(ConfigError, match="'tyverb' has a tablet strength but is no name"):
            load_knowledge(cards)

    def test_an_order_with_an_unlisted_code_fails(self, tmp_path: Path) -> None:
        cards = copy_cards(tmp_path)
        path = cards / "orders.yaml"
        path.write_text(path.read_text().replace('rxnorm: "1046402"', 'rxnorm: "9999999"'))
        with pytest.raises(ConfigError, match="9999999"):
            load_knowledge(cards)

    def test_a_brand_strength_for_a_name_not_listed_fails(self, tmp_path: Path) -> None:
        cards = copy_cards(tmp_path)
        path = cards / "medications.yaml"
        path.write_text(path.read_text().replace("osteo: [reclast, aclasta]", "osteo: [boniva]"))
        with pytest.raises(ConfigError, match="'boniva' has a strength but is no name"):
            load_knowledge(cards)

    def test_a_long_summary_fails(self, tmp_path: Path) -> None:
        cards = copy_cards(tmp_path)
        path = cards / "rules" / "R5.yaml"
        spec = yaml.safe_load(path.read_text())
        spec["variants"]["interval"]["summary"] = "x" * 140
        path.write_text(yaml.safe_dump(spec))
        with pytest.raises(ConfigError, match="139"):
            load_knowledge(cards)

    def test_a_missing_value_set_fails_start_up(self, tmp_path: Path) -> None:
        """Deleting a value set the facts read stops start-up (it used to 500 per call)."""
        cards = copy_cards(tmp_path)
        (cards / "valuesets" / "status-worsened.yaml").unlink()
        with pytest.raises(ConfigError, match="status-worsened"):
            load_knowledge(cards)

    def test_confirmed_only_on_a_set_no_condition_is_screened_by_fails(
        self, tmp_path: Path
    ) -> None:
        """The flag acts where Conditions are screened; elsewhere it would promise and do
        nothing."""
        cards = copy_cards(tmp_path)
        path = cards / "valuesets" / "bone-metastasis.yaml"
        path.write_text(path.read_text() + "confirmed_only: true\n")
        with pytest.raises(ConfigError, match=r"bone-metastasis\.yaml: confirmed_only"):
            load_knowledge(cards)

    def test_a_value_set_only_a_rule_declares_is_checked(self, tmp_path: Path) -> None:
        cards = copy_cards(tmp_path)
        (cards / "valuesets" / "spine-surgery.yaml").unlink()
        with pytest.raises(ConfigError, match="spine-surgery"):
            load_knowledge(cards)

    def test_a_literal_restating_a_parameter_fails(self, tmp_path: Path) -> None:
        """Card text takes thresholds from parameters: '6 months' for dental_lookback_days."""
        cards = copy_cards(tmp_path)
        path = cards / "rules" / "R4b.yaml"
        path.write_text(path.read_text().replace("$dental_lookback_months months", "6 months"))
        with pytest.raises(ConfigError, match=r"restates a parameter.*dental_lookback_days"):
            load_knowledge(cards)

    def test_card_text_follows_the_parameter(self) -> None:
        k = load_knowledge(REPO_CARDS, {"dental_lookback_days": 365})
        summary = k.cards.cards["R4b"].variants["dental-before-bma"].summary
        bindings = k.renderer._params["R4b"]
        assert "12 months" in summary.replace(
            "$dental_lookback_months", bindings["dental_lookback_months"]
        )

    def test_a_regimen_dose_must_be_orderable(self, tmp_path: Path) -> None:
        """One schedule per instruction, no 'check the label' inside a dose (C1)."""
        cards = copy_cards(tmp_path)
        path = cards / "regimens.yaml"
        path.write_text(
            path.read_text().replace(
                "over no less than 15 minutes every 12 weeks",
                "over no less than 15 minutes every 12 weeks or every 3-4 weeks",
            )
        )
        with pytest.raises(ConfigError, match="not orderable"):
            load_knowledge(cards)

    def test_a_rule_naming_a_missing_regimen_fails(self, tmp_path: Path) -> None:
        cards = copy_cards(tmp_path)
        path = cards / "regimens.yaml"
        spec = yaml.safe_load(path.read_text())
        del spec["regimens"]["neratinib-capecitabine"]
        path.write_text(yaml.safe_dump(spec, allow_unicode=True))
        with pytest.raises(ConfigError, match="neratinib-capecitabine"):
            load_knowledge(cards)

    @pytest.mark.parametrize(
        ("rule", "drug", "message"),
        [
            ("R6l", "pertuzumab", "which the rule does not read"),
            ("R4a", "denosumab", "the rule binds no drug"),
        ],
    )
    def test_a_source_by_drug_is_for_a_drug_the_rule_names(
        self, tmp_path: Path, rule: str, drug: str, message: str
    ) -> None:
        cards = copy_cards(tmp_path)
        path = cards / "rules" / f"{rule}.yaml"
        spec = yaml.safe_load(path.read_text())
        spec.setdefault("source_by_drug", {})[drug] = {"label": "A label", "url": "https://x"}
        path.write_text(yaml.safe_dump(spec, allow_unicode=True))
        with pytest.raises(ConfigError, match=message):
            load_knowledge(cards)

    def test_regimens_are_not_a_parameter_override(self) -> None:
        with pytest.raises(ConfigError, match="regimens"):
            load_knowledge(REPO_CARDS, {"regimens": {}})

    def test_doses_belong_to_regimens(self, knowledge: Knowledge) -> None:
        """C1: capecitabine is 750 mg/m² with neratinib, 1,000 mg/m² with lapatinib; lapatinib
        is 1,000 mg with trastuzumab and 1,250 mg with capecitabine."""
        regimens = knowledge.parameters.regimens

        def dose(regimen: str, order: str) -> str:
            return next(d.dose for d in regimens[regimen].drugs if d.order == order)

        assert dose("neratinib-capecitabine", "capecitabine").startswith("750 mg/m²")
        assert dose("lapatinib-capecitabine", "capecitabine").startswith("1,000 mg/m²")
        assert dose("lapatinib-trastuzumab", "lapatinib").startswith("1,000 mg")
        assert dose("lapatinib-capecitabine", "lapatinib").startswith("1,250 mg")
        assert "loperamide" in [d.order for d in regimens["neratinib-capecitabine"].drugs]

    def test_bad_parameter_override_fails(self) -> None:
        with pytest.raises(ConfigError, match="dental_lookback_days"):
            load_knowledge(REPO_CARDS, {"dental_lookback_days": "soon"})

    @pytest.mark.parametrize(
        ("ranges", "message"),
        [
            ({"body-weight": {"unit": "kg", "low": 300.0, "high": 20.0}}, "low must be below"),
            ({"body-weight": {"unit": "kg", "low": 60.0, "high": 60.0}}, "low must be below"),
            ({"body-weight": {"unit": "kg", "low": 0.0}}, "greater than 0"),
            ({"body-weight": {"unit": "kg"}}, "gives low, high or both"),
            ({"body-weight": {"unit": "lb", "low": 40.0}}, "body-weight is read in kg, not lb"),
            ({"her2-ihc": {"unit": "%", "low": 1.0}}, "'her2-ihc' is not a lab read into a unit"),
        ],
    )
    def test_a_read_range_is_a_range_of_a_lab_in_its_unit(
        self, ranges: dict[str, dict[str, object]], message: str
    ) -> None:
        with pytest.raises(ConfigError, match=message):
            load_knowledge(REPO_CARDS, {"lab_read_ranges": ranges})

    @pytest.mark.parametrize(
        ("override", "message"),
        [
            ({"dose_charted_ingredients": ["trastuzumab", "herceptin"]}, "dose_charted"),
            ({"metastatic_setting_agents": ["tucatinib", "tukysa"]}, "metastatic_setting_agents"),
            ({"metastatic_setting_pairs": [["neratinib", "xeloda"]]}, "metastatic_setting_pairs"),
        ],
    )
    def test_a_listed_ingredient_is_one_the_terminology_knows(
        self, override: dict[str, object], message: str
    ) -> None:
        with pytest.raises(ConfigError, match=f"{message}.*is not in cards/medications.yaml"):
            load_knowledge(REPO_CARDS, override)

    @pytest.mark.parametrize("levels", [[5.4, 3.2, 4.4], [4.4, 3.2], [5.4, 5.4, 3.2]])
    def test_dose_levels_must_step_down_from_the_label_dose(
        self, tmp_path: Path, levels: list[float]
    ) -> None:
        def edit(spec: dict[str, Any]) -> None:
            spec["dose_limits"]["trastuzumab deruxtecan"]["dose_levels_mg_per_kg"] = levels

        with pytest.raises(ConfigError, match="dose levels must step down"):
            load_knowledge(cards_with(tmp_path, edit))

    @pytest.mark.parametrize("days", [42, 60, 0])
    def test_the_maintenance_dose_is_due_only_before_re_loading_is(
        self, tmp_path: Path, days: int
    ) -> None:
        def edit(spec: dict[str, Any]) -> None:
            spec["reloading"]["pertuzumab"]["maintenance_up_to_days"] = days

        with pytest.raises(ConfigError, match="maintenance_up_to_days must be under reload_after"):
            load_knowledge(cards_with(tmp_path, edit))

    @pytest.mark.parametrize("where", ["drug", "partner", "capecitabine"])
    def test_an_oral_dose_names_known_medicines(self, tmp_path: Path, where: str) -> None:
        def edit(spec: dict[str, Any]) -> None:
            table = spec["kinase_inhibitor_doses"]["lapatinib"]
            if where == "drug":
                table["drug"] = "lapatinibe"
            elif where == "partner":
                table["with_partner"][0]["partner"] = "capecitabin"
            else:
                spec["capecitabine_dose"]["with_partner"][0]["partner"] = "neratinibe"

        with pytest.raises(ConfigError, match=r"is not in cards/medications\.yaml"):
            load_knowledge(cards_with(tmp_path, edit))

    def test_an_oral_dose_partner_is_looked_for_on_the_chart(self, tmp_path: Path) -> None:
        """A partner of a class the rule never asks the chart about would count only when
        drafted: an in-use one would silently not change the dose."""

        def edit(spec: dict[str, Any]) -> None:
            spec["kinase_inhibitor_doses"]["lapatinib"]["with_partner"].append(
                {"partner": "letrozole", "dose": 1500.0, "dose_text": "1,500 mg with letrozole"}
            )

        with pytest.raises(ConfigError, match=r"'letrozole' \(ENDOCRINE_AI\) is not of a class"):
            load_knowledge(cards_with(tmp_path, edit))

    def test_a_trial_dose_needs_a_card_that_says_so(self, tmp_path: Path) -> None:
        def edit(spec: dict[str, Any]) -> None:
            spec["capecitabine_dose"]["with_partner"][0]["trial"] = "NALA"

        with pytest.raises(ConfigError, match=r"'above-trial-dose' variant, which cards/rules/R6m"):
            load_knowledge(cards_with(tmp_path, edit))

    def test_a_once_daily_drug_needs_a_card_that_says_so(self, tmp_path: Path) -> None:
        def edit(spec: dict[str, Any]) -> None:
            spec["kinase_inhibitor_doses"]["neratinib"]["once_daily_only"] = True
            spec["capecitabine_dose"]["doses_per_day"] = 1
            spec["capecitabine_dose"]["once_daily_only"] = True

        with pytest.raises(
            ConfigError, match=r"'divided-daily-dose' variant, which cards/rules/R6m"
        ):
            load_knowledge(cards_with(tmp_path, edit))

    def test_once_daily_only_is_one_dose_a_day(self, tmp_path: Path) -> None:
        def edit(spec: dict[str, Any]) -> None:
            spec["kinase_inhibitor_doses"]["tucatinib"]["once_daily_only"] = True

        with pytest.raises(ConfigError, match="once_daily_only needs doses_per_day: 1"):
            load_knowledge(cards_with(tmp_path, edit))

    @pytest.mark.parametrize(
        "doses",
        [
            {"maintenance_mg": 420.0},  # a maintenance dose with no re-loading dose
            {"maintenance_mg": 420.0, "loading_mg": 840.0, "maintenance_mg_per_kg": 6.0},
            {},
        ],
    )
    def test_reloading_gives_both_doses_of_one_kind(
        self, tmp_path: Path, doses: dict[str, float]
    ) -> None:
        def edit(spec: dict[str, Any]) -> None:
            spec["reloading"]["pertuzumab"] = {"drug": "pertuzumab", "label": "Perjeta", **doses}

        with pytest.raises(ConfigError, match="give both doses by weight, or both flat"):
            load_knowledge(cards_with(tmp_path, edit))

    def test_parameter_override_applies(self) -> None:
        k = load_knowledge(REPO_CARDS, {"dental_lookback_days": 365})
        assert k.parameters.dental_lookback_days == 365


class TestSettings:
    def test_production_refuses_unsafe_defaults(self) -> None:
        with pytest.raises(ValidationError, match="unsafe production configuration"):
            Settings(mode="production")

    def test_production_with_issuers_starts(self, tmp_path: Path) -> None:
        Settings(**production(tmp_path))

    def test_production_requires_a_patient_key_secret(self, tmp_path: Path) -> None:
        """Issue 14: snooze records key patients by HMAC; a known key would hide nothing."""
        with pytest.raises(ValidationError, match="CDS_PATIENT_KEY_SECRET"):
            Settings(**production(tmp_path, patient_key_secret=DEV_PATIENT_KEY_SECRET))
        Settings(**production(tmp_path, patient_key_secret=DEV_PATIENT_KEY_SECRET, snooze_days=0))

    @pytest.mark.parametrize(("length", "starts"), [(1, False), (31, False), (32, True)])
    def test_production_patient_key_secret_is_long_enough(
        self, tmp_path: Path, length: int, starts: bool
    ) -> None:
        """Issue 28 item 16: a one-character HMAC key was accepted."""
        settings = production(tmp_path, patient_key_secret="k" * length)
        if starts:
            Settings(**settings)
        else:
            with pytest.raises(ValidationError, match="at least 32 characters"):
                Settings(**settings)

    def test_production_requires_a_public_base_url(self, tmp_path: Path) -> None:
        """Issue 10 item 9: without it the JWT aud would come from the Host header."""
        with pytest.raises(ValidationError, match="CDS_PUBLIC_BASE_URL"):
            Settings(**production(tmp_path, public_base_url=None))

    def test_production_issuer_without_servers_fetches_nothing(self, tmp_path: Path) -> None:
        """Issue 10 item 4: no silent fallback to the loopback allowlist in production."""
        base = production(tmp_path)
        assert Settings(**base).fetch_allowlist(()) == ()
        assert Settings(**base).fetch_allowlist(("https://fhir.a/r4",)) == ("https://fhir.a/r4",)
        explicit = Settings(**base, fhir_server_allowlist=("https://fhir.b/r4",))
        assert explicit.fetch_allowlist(()) == ("https://fhir.b/r4",)
        assert Settings().fetch_allowlist(()) == Settings().fhir_server_allowlist

    def test_missing_jwks_file_is_a_configuration_error(self, tmp_path: Path) -> None:
        with pytest.raises(ValidationError, match="jwks_file unreadable"):
            TrustedIssuer(iss="i", jwks_file=tmp_path / "nope.json")

    def test_hmac_is_never_allowed_in_production(self, tmp_path: Path) -> None:
        with pytest.raises(ValidationError, match="HS256"):
            Settings(
                mode="production",
                auth_required=True,
                trusted_issuers=(TrustedIssuer(iss="i", jwks_url="https://i/jwks"),),
                allow_as_of_extension=False,
                cors_origins=("https://i",),
                jwt_algorithms=("ES384", "HS256"),
            )

    def test_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CDS_FETCH_DEADLINE_S", "2.5")
        monkeypatch.setenv("CDS_PARAMETERS", '{"dental_lookback_days": 90}')
        s = Settings()
        assert s.fetch_deadline_s == 2.5
        assert s.parameters == {"dental_lookback_days": 90}


class TestCli:
    def test_check_passes(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["check"]) == 0
        assert "cross-checked, OK" in capsys.readouterr().out

    def test_check_fails_clearly_on_broken_knowledge(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        cards = copy_cards(tmp_path)
        (cards / "rules" / "R5.yaml").unlink()
        monkeypatch.setenv("CDS_CARDS_DIR", str(cards))
        assert main(["check"]) == 1
        assert "R5" in capsys.readouterr().err

    def test_check_fails_on_a_missing_value_set(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        cards = copy_cards(tmp_path)
        (cards / "valuesets" / "status-worsened.yaml").unlink()
        monkeypatch.setenv("CDS_CARDS_DIR", str(cards))
        assert main(["check"]) == 1
        assert "status-worsened" in capsys.readouterr().err

    def test_check_fails_on_bad_configuration(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CDS_MODE", "production")
        with pytest.raises(SystemExit, match="configuration error"):
            main(["check"])

    def test_feedback_with_nothing_stored(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("CDS_FEEDBACK_DB", str(tmp_path / "none.sqlite3"))
        assert main(["feedback"]) == 0
        assert "no feedback" in capsys.readouterr().out

    def test_catalog(self, tmp_path: Path) -> None:
        assert main(["catalog", "--out", str(tmp_path / "cat")]) == 0
        r6 = (tmp_path / "cat" / "R6.md").read_text()
        assert "ASCO-HER2-2022" in r6
        assert "progression-documented-second-line" in r6  # fixture coverage is listed
        assert (tmp_path / "cat" / "README.md").exists()
        r1 = (tmp_path / "cat" / "R1.md").read_text()
        assert "`dental_lookback_days` = 183" in r1  # read through a helper R1 calls
        assert "zoledronic_min_infusion_minutes" not in r1  # R2's threshold, not R1's
        assert "CrCl > 60 → 4 mg" in r1
        r6 = (tmp_path / "cat" / "R6.md").read_text()
        assert "750 mg/m² by mouth twice daily" in r6  # regimens with their own doses
        assert "adjuvant_tdxd_label_days" in r6  # a threshold the facts apply for R6
        r15 = (tmp_path / "cat" / "R15.md").read_text()
        assert "DESTINY-Breast06" in r15
        assert "her2-ultralow-hr-positive-after-endocrine-only" in r15
        assert "[R15](R15.md)" in (tmp_path / "cat" / "README.md").read_text()


def test_dockerfile_structure() -> None:
    """Issue 14: multi-stage, non-root, knowledge baked in, pinned installs (no engine here)."""
    text = (REPO_CARDS.parent / "Dockerfile").read_text()
    stages = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert len(stages) == 2
    assert " AS build" in stages[0]
    assert " AS runtime" in stages[1]
    assert "COPY cards ./cards" in text  # the knowledge goes into the wheel (cds.knowledge)
    assert "-c constraints.txt" in text
    runtime = text.split(" AS runtime", 1)[1]
    assert "USER cds" in runtime
    assert "useradd --system" in runtime
    assert "--workers" in runtime
    assert "HEALTHCHECK" in runtime


def test_compose_scale_profile() -> None:
    """Issue 14: PostgreSQL, a migration step, two production replicas and a balancer."""
    compose = yaml.safe_load((REPO_CARDS.parent / "docker-compose.yml").read_text())
    services = compose["services"]
    scale = {k for k, v in services.items() if "scale" in v.get("profiles", [])}
    assert scale == {"db", "migrate", "replica", "balancer"}
    assert services["db"]["image"].startswith("postgres:15")
    assert services["migrate"]["command"] == ["cds", "migrate"]
    replica = services["replica"]
    assert replica["deploy"]["replicas"] == 2
    assert replica["environment"]["CDS_MODE"] == "production"
    assert replica["environment"]["CDS_DATABASE_URL"].startswith("postgresql://")
    assert "service_completed_successfully" in str(replica["depends_on"])
    conf = (REPO_CARDS.parent / "deploy" / "nginx.conf").read_text()
    assert "proxy_pass http://cds" in conf


def test_docker_compose_structure() -> None:
    """The service and a HAPI FHIR server, the service pointed at it (no engine here)."""
    compose = yaml.safe_load((REPO_CARDS.parent / "docker-compose.yml").read_text())
    services = {k: v for k, v in compose["services"].items() if "profiles" not in v}
    assert set(services) == {"cds", "fhir"}
    assert "hapiproject/hapi" in services["fhir"]["image"]
    cds = services["cds"]
    env = cds["environment"]
    assert env["CDS_FHIR_SERVER_ALLOWLIST"].startswith('["http://fhir:8080')
    assert "fhir" in cds["depends_on"]
    assert any(str(p).endswith(":8080") for p in cds["ports"])
    assert "healthcheck" in cds
    mounts = [str(v) for v in cds["volumes"]]
    assert "./:/app:ro" in mounts
    assert "cp -r /app" in cds["command"]  # never build inside the read-only mount


# The canonical places a card may send a clinician (clinical-logic §3c D22): the publication by
# its DOI, the FDA label on DailyMed, the guideline owner's or journal publisher's own page.
CANONICAL_HOSTS = {
    "doi.org",
    "dailymed.nlm.nih.gov",
    "cds-hooks.hl7.org",
    "hl7.org",  # the FHIR R4 specification itself (R0b: the datatypes a resource is held to)
    "ace.asco.org",
    "meridian.allenpress.com",
}
# Guideline summaries whose DOI was not found in a stored copy yet: linked to the summary page
# until it is verified (named so that no other card can slip back to a third-party copy).
DOI_NOT_VERIFIED = {"R8a", "R8b", "R9a", "R9b"}


def _sources() -> list[tuple[str, str, str]]:
    out = []
    for path in sorted((REPO_CARDS / "rules").glob("*.yaml")):
        card = yaml.safe_load(path.read_text())
        out.append((card["rule"], card["source"]["label"], card["source"]["url"]))
        out += [(card["rule"], li["label"], li["url"]) for li in card.get("links", [])]
    return out


def test_card_sources_and_links_are_canonical() -> None:
    """D22: a DOI or the FDA label, never a third-party copy."""
    from urllib.parse import urlparse

    off = [
        (rule, url)
        for rule, _, url in _sources()
        if urlparse(url).hostname not in CANONICAL_HOSTS and rule not in DOI_NOT_VERIFIED
    ]
    assert off == []


def test_a_source_label_names_the_document_its_link_opens() -> None:
    """D22: 'prescribing information' opens a label, a DOI opens a journal article."""
    from urllib.parse import urlparse

    for rule, label, url in _sources():
        host = urlparse(url).hostname
        if "prescribing information" in label:
            assert host == "dailymed.nlm.nih.gov", (rule, label, url)
        if host == "doi.org":
            assert "J Clin Oncol" in label or "Ann Oncol" in label, (rule, label, url)
