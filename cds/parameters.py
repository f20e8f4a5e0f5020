"""Typed thresholds and windows, loaded from cards/parameters.yaml and overridable by settings."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cds.errors import ConfigError
from cds.knowledge_file import read_yaml


class DoseBand(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    min_crcl: float
    dose_mg: float
    exclusive: bool = False

    def admits(self, crcl: float) -> bool:
        return crcl > self.min_crcl if self.exclusive else crcl >= self.min_crcl


class DoseLimit(BaseModel):
    """A drug's label dose and shortest interval for metastatic breast cancer (§3c D1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    drug: str  # the name the card shows
    label: str  # the prescribing information it comes from
    dose_mg: float | None = None  # the label's flat dose; None for a dose by weight (T-DXd)
    dose_mg_per_kg: float | None = None  # the label's dose by body weight (T-DXd)
    exact: bool = False  # any other dose is not the label's (denosumab 120 mg, not 60 mg)
    min_interval_weeks: float
    # The label's dose-reduction steps by weight, starting dose first; below the last the label
    # discontinues treatment instead of reducing again (Enhertu, Kadcyla).
    dose_levels_mg_per_kg: tuple[float, ...] = ()

    @model_validator(mode="after")
    def _levels_step_down_from_the_label_dose(self) -> DoseLimit:
        levels = self.dose_levels_mg_per_kg
        if levels and (
            levels[0] != self.dose_mg_per_kg or any(a <= b for a, b in itertools.pairwise(levels))
        ):
            raise ValueError(f"{self.drug}: dose levels must step down from the label dose")
        return self


class Reloading(BaseModel):
    """A HER2 antibody's maintenance and re-loading doses (its label's missed-dose advice)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    drug: str  # the name the card shows
    label: str  # the prescribing information it comes from
    # The maintenance dose the check reads, and the re-loading dose after a gap: by weight
    # (trastuzumab, every 3 weeks) or flat (pertuzumab).
    maintenance_mg_per_kg: float | None = None
    loading_mg_per_kg: float | None = None
    maintenance_mg: float | None = None
    loading_mg: float | None = None
    # The longest time since the last dose (days) at which the label still gives the
    # maintenance dose: a loading dose drafted sooner repeats the first dose (R6f).
    maintenance_up_to_days: int | None = None
    # A fixed dose's label interval: drafted more often, more than the label dose (R6g).
    min_interval_weeks: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_kind_of_dose(self) -> Reloading:
        by_weight = [x is not None for x in (self.maintenance_mg_per_kg, self.loading_mg_per_kg)]
        flat = [x is not None for x in (self.maintenance_mg, self.loading_mg)]
        if sorted([sum(by_weight), sum(flat)]) != [0, 2]:
            raise ValueError(f"{self.drug}: give both doses by weight, or both flat")
        return self


class ReadRange(BaseModel):
    """The values a lab is read within, in the unit the rules use (lab_read_ranges): outside
    them a result is a typing error or another unit far more often than a patient's."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    unit: str
    low: float | None = Field(default=None, gt=0)
    high: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _a_range(self) -> ReadRange:
        if self.low is None and self.high is None:
            raise ValueError("a read range gives low, high or both")
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise ValueError(
                f"read range {self.low}-{self.high} {self.unit}: low must be below high"
            )
        return self

    def holds(self, value: float) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


class LvefRule(BaseModel):
    """One drug's LVEF action thresholds from its label (clinical-logic §3b C4).

    `withhold` means the label's own word for it: withhold, do not administer, or interrupt.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    drug: str  # the name the card shows
    label: str
    withhold_below: float | None = None  # LVEF below this
    withhold_drop_at_least: float | None = None  # an absolute drop of at least this
    withhold_drop_over: float | None = None  # an absolute drop of more than this
    below_lln_drop: float | None = None  # below the LLN with a drop of at least this
    band_low: float | None = None  # the 40-45% band (inclusive)
    band_high: float | None = None
    band_withhold_drop: float | None = None  # in the band, a drop of at least this
    band_repeat: bool = False  # in the band with a smaller drop: continue, repeat LVEF
    repeat_weeks: int
    chf_discontinue: bool = False  # symptomatic heart failure on the drug: discontinue
    monitor_every_3_months: bool  # R11a: the label asks for LVEF every 3 months
    # The drug the label gives it with, named with it ("withhold pertuzumab and trastuzumab"),
    # and its name when that partner is neither in use nor ordered (pertuzumab with T-DXd,
    # DESTINY-Breast09): a card never names a drug the patient is not on (C4).
    partner: str | None = None
    drug_alone: str | None = None
    alone: bool = False  # this rule as `without_partner` gives it, never set in the file

    @model_validator(mode="after")
    def _alone_named(self) -> LvefRule:
        if (self.partner is None) != (self.drug_alone is None):
            raise ValueError(f"{self.drug}: partner and drug_alone go together")
        if self.alone and self.drug != self.drug_alone:
            raise ValueError(f"{self.drug}: 'alone' is not a setting (see without_partner)")
        return self

    @cached_property
    def without_partner(self) -> LvefRule:
        """The rule for the drug given without its partner: named alone, its own notes. Built
        once a process, not on every call that reads it."""
        return self.model_copy(update={"drug": self.drug_alone, "alone": True})


class RegimenDrug(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    order: str  # a medication of cards/orders.yaml
    dose: str
    # The order used when $dose is not the regimen's default: a reduced dose is coded at
    # ingredient level, not with the full-strength product's code (§3c D9).
    reduced_order: str | None = None
    # The dose at moderate renal impairment (capecitabine: 75% of the starting dose, §3c D8).
    renal_reduced_dose: str | None = None
    ingredient: str | None = None  # what the exclusion logic reads; none for supportive drugs
    also: tuple[str, ...] = ()  # further ingredients of a combination product (Phesgo)


class PartnerDose(BaseModel):
    """An oral drug's label dose with a given partner (Tykerb: 1,250 mg with capecitabine, against
    1,500 mg with letrozole; capecitabine: 750 mg/m² with neratinib, by the Nerlynx label)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    partner: str  # an ingredient of cards/medications.yaml
    dose: float = Field(gt=0)
    dose_text: str
    label: str | None = None  # the label that gives it, when not the drug's own
    # The trial whose dose it is, when the drug's US label gives the pair none (lapatinib with
    # trastuzumab: EGF104900); the card says so and cites the trial.
    trial: str | None = None


class OralDose(BaseModel):
    """An oral drug's label dose, in its unit, and how often a day it is taken (R6l, R6m)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    drug: str
    label: str
    dose: float = Field(gt=0)
    unit: Literal["mg", "mg/m2"] = "mg"
    doses_per_day: int = Field(ge=1)
    dose_text: str  # as the card shows it: "300 mg twice daily"
    with_partner: tuple[PartnerDose, ...] = ()
    # The label raises the dose, gradually, when a strong CYP3A4 inducer cannot be avoided
    # (Tykerb): a dose above it may be intended, and the card says so.
    raised_for_cyp3a4_inducers: bool = False
    # The label gives the day's dose at once and advises against dividing it (Tykerb 2.1).
    once_daily_only: bool = False

    @model_validator(mode="after")
    def _once_daily_is_one_dose_a_day(self) -> OralDose:
        if self.once_daily_only and self.doses_per_day != 1:
            raise ValueError("once_daily_only needs doses_per_day: 1")
        return self


class Regimen(BaseModel):
    """A regimen of cards/regimens.yaml: its drugs with their doses, and its label criteria."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    label: str
    drugs: tuple[RegimenDrug, ...]
    source: str
    default_dose: str | None = None
    min_prior_her2_regimens: int = 0
    hr_positive_only: bool = False

    @functools.cached_property  # the regimens are fixed once loaded; rules ask every call
    def ingredients(self) -> tuple[str, ...]:
        return tuple(
            i for d in self.drugs for i in ((d.ingredient,) if d.ingredient else ()) + d.also
        )


class Parameters(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    active_window_days: int
    zoledronic_window_days: int
    regimen_group_days: int
    her2_event_days: int
    metastatic_setting_agents: tuple[str, ...]
    metastatic_setting_pairs: tuple[tuple[str, str], ...]
    adjuvant_cutoff_days: int
    adjuvant_window_days: int
    lab_freshness_days: int
    clock_lead_days: int
    weight_freshness_days: int
    lab_read_ranges: dict[str, ReadRange]
    hypocalcaemia_mg_dl: float
    hypercalcaemia_mg_dl: float
    dental_lookback_days: int
    dental_healing_days: int
    bma_recent_start_days: int
    calcium_check_days: int
    lvef_interval_days: int
    lvef_grace_days: int
    lvef_lln_percent: float
    new_treatment_gap_days: int
    dose_charted_ingredients: tuple[str, ...]
    lvef_by_drug: dict[str, LvefRule]
    anthracycline_washout_days: int
    her2_stopped_days: int
    crcl_not_recommended: float
    crcl_dose_adjust_upto: float
    creatinine_rise_normal: float
    creatinine_rise_abnormal: float
    creatinine_abnormal_baseline: float
    zoledronic_min_infusion_minutes: float
    pamidronate_min_infusion_minutes: float
    zoledronic_dose_by_crcl: tuple[DoseBand, ...]
    dose_limits: dict[str, DoseLimit]
    bma_overlap_days: dict[str, int]
    unit_error_factor: float
    weight_dose_tolerance_percent: int
    hypercalcaemia_of_malignancy_mg_dl: float
    hcm_creatinine_below_mg_dl: float
    hcm_retreatment_min_days: int
    capecitabine_crcl_contraindicated_below: float
    capecitabine_crcl_reduce_upto: float
    ild_grade_discontinue: int
    tdxd_ild_crcl_below: float
    brain_status_window_days: int
    adjuvant_tdxd_label_days: int
    adjuvant_chemo_window_days: int
    reload_after_days: int
    reloading: dict[str, Reloading]
    phesgo_doses: Reloading
    phesgo_trastuzumab_mg: float
    trastuzumab_doses_mg_per_kg: tuple[float, ...]
    subcutaneous_trastuzumab_mg: float
    neratinib_escalation_mg: tuple[float, ...]
    kinase_inhibitor_doses: dict[str, OralDose]
    capecitabine_dose: OralDose
    capecitabine_max_bsa_m2: float = Field(gt=0, le=4)
    # Not a threshold: the regimens (cards/regimens.yaml), which the rules choose among.
    regimens: dict[str, Regimen]

    @model_validator(mode="after")
    def _maintenance_before_reloading(self) -> Parameters:
        for r in (*self.reloading.values(), self.phesgo_doses):
            if r.maintenance_up_to_days is not None and not (
                0 < r.maintenance_up_to_days < self.reload_after_days
            ):
                raise ValueError(
                    f"{r.drug}: maintenance_up_to_days must be under reload_after_days"
                )
        return self

    @model_validator(mode="after")
    def _bands_descend(self) -> Parameters:
        mins = [b.min_crcl for b in self.zoledronic_dose_by_crcl]
        if not mins or mins != sorted(mins, reverse=True):
            raise ValueError("zoledronic_dose_by_crcl must list bands from highest CrCl down")
        if mins[-1] != self.crcl_not_recommended:
            raise ValueError("the lowest zoledronic dose band must start at crcl_not_recommended")
        return self

    def zoledronic_dose(self, crcl: float) -> float | None:
        """Zometa renal table; None below the not-recommended threshold."""
        for band in self.zoledronic_dose_by_crcl:
            if band.admits(crcl):
                return band.dose_mg
        return None


def _mapping(path: Path) -> dict[str, object]:
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping")
    return raw


def load_parameters(
    path: Path, overrides: Mapping[str, object] | None = None, *, regimens: Path
) -> Parameters:
    raw = _mapping(path)
    if overrides and "regimens" in overrides:
        raise ConfigError("regimens are knowledge (cards/regimens.yaml), not a parameter override")
    try:
        return Parameters.model_validate(
            {**raw, **(overrides or {}), "regimens": _mapping(regimens).get("regimens")}
        )
    except ValidationError as exc:
        raise ConfigError(f"{path} (with overrides): {exc}") from exc
