"""Typed thresholds and windows, loaded from cards/parameters.yaml and overridable by settings."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from cds.errors import ConfigError


class DoseBand(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    min_crcl: float
    dose_mg: float
    exclusive: bool = False

    def admits(self, crcl: float) -> bool:
        return crcl > self.min_crcl if self.exclusive else crcl >= self.min_crcl


class Parameters(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    active_window_days: int
    zoledronic_window_days: int
    request_active_max_days: int
    regimen_group_days: int
    adjuvant_cutoff_days: int
    adjuvant_window_days: int
    lab_freshness_days: int
    weight_freshness_days: int
    hypocalcaemia_mg_dl: float
    hypercalcaemia_mg_dl: float
    dental_lookback_days: int
    bma_recent_start_days: int
    calcium_check_days: int
    lvef_interval_days: int
    lvef_grace_days: int
    lvef_lln_percent: float
    lvef_drop_absolute: float
    lvef_drop_below_lln: float
    anthracycline_washout_days: int
    her2_stopped_days: int
    crcl_not_recommended: float
    crcl_dose_adjust_upto: float
    creatinine_rise_normal: float
    creatinine_rise_abnormal: float
    creatinine_abnormal_baseline: float
    zoledronic_min_infusion_minutes: float
    zoledronic_dose_by_crcl: tuple[DoseBand, ...]

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


def load_parameters(path: Path, overrides: Mapping[str, object] | None = None) -> Parameters:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping")
    try:
        return Parameters.model_validate({**raw, **(overrides or {})})
    except ValidationError as exc:
        raise ConfigError(f"{path} (with overrides): {exc}") from exc
