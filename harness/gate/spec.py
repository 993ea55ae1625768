"""The gate specification (YAML, committed in experiments/): KPI thresholds, allowed regressions against the
baseline, minimum sample sizes, the comparison policy, and must-pass conversations selected by tag."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harness.project.problems import load_yaml_model, unknown
from harness.scoring.metrics import REGISTRY
from harness.scoring.metrics.registry import MONITORING


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MlflowBaseline(Strict):
    """A baseline kept in MLflow. Unset fields come from the project's run settings (harness.gate.baseline.
    mlflow_source): the tracking URI, and the experiment's name as experiment and registered model (the name
    `harness gate --promote` registers runs under)."""

    tracking_uri: str | None = None
    registered_model: str | None = None
    alias: str | None = "champion"
    """The registered-model alias whose run is the baseline."""
    tag: dict[str, str] | None = None
    """Alternatively: the newest run carrying all these tags."""
    experiment: str | None = None


class BaselineSpec(Strict):
    path: Path | None = None
    """A run folder, or a folder with scorecard.json and turns.parquet (relative to the repository root)."""
    mlflow: MlflowBaseline | None = None

    @model_validator(mode="after")
    def _one_source(self) -> BaselineSpec:
        if (self.path is None) == (self.mlflow is None):
            raise ValueError("give exactly one of path or mlflow")
        return self


class Policy(Strict):
    comparison: Literal["paired_test", "point"] = "paired_test"
    """paired_test: a regression fails only when larger than allowed AND significant in a paired test
    (McNemar for conversation outcomes, paired bootstrap otherwise); point: any drop larger than allowed fails."""
    alpha: float = Field(0.05, gt=0, lt=0.5)
    min_n: int = Field(30, ge=1)
    """Default minimum support per KPI; fewer samples fail (the gate fails closed)."""
    power: float = Field(0.8, gt=0, lt=1)
    """The power at which the gate reports what it can see: the smallest drop each regression check and must-pass
    rule catches with this probability (the minimal detectable effect, `harness gate` and `harness gate --plan`)."""
    planning_discordance: float = Field(0.05, gt=0, lt=1)
    """The share of outcomes assumed to change between two runs of equally good bots, for the minimal detectable
    effect when the run and its baseline agree everywhere (a deterministic rerun shows no noise to measure)."""


class KpiCheck(Strict):
    threshold: float | None = None
    """A floor for KPIs where higher is better, a ceiling where lower is better (direction from the registry)."""
    max_regression: float | None = Field(None, ge=0)
    """The largest worsening allowed against the baseline, in the KPI's unit."""
    min_n: int | None = Field(None, ge=1)
    allow_undefined: bool = False
    """Pass when the KPI is undefined (None) instead of failing closed."""
    alpha: float | None = Field(None, gt=0, lt=0.5)
    """Significance of this KPI's paired test (default: policy.alpha)."""


class MustPass(Strict):
    name: str = Field(min_length=1)
    tags: list[str] = []
    """Select conversations carrying any of these tags."""
    critical: bool = False
    """Also select every conversation marked critical."""
    require: Literal["expected_outcome", "never_matches"] = "expected_outcome"
    """expected_outcome: the actual outcome (self_served, abandoned or escalated:<queue>) equals the expected one;
    never_matches: no bot message in the conversation matches `pattern`."""
    pattern: str | None = None
    mode: Literal["absolute", "no_new_failures", "no_regression"] = "absolute"
    """absolute: every selected conversation must pass. no_new_failures (a ratchet): a conversation that also
    fails in the baseline is reported as a known failure and does not block; any new failure blocks.
    no_regression: every new failure is listed as a warning, and the rule blocks when new failures significantly
    outnumber the conversations it fixed (one-sided exact McNemar test on the rule's conversations at `alpha`),
    or when there are more than `max_new_failures`. Under flip noise, a ratchet blocks unchanged bots (each
    passing conversation is a chance of a false alarm); no_regression does not, at the price of letting a few new
    failures through: `harness gate` prints how many it can miss."""
    alpha: float | None = Field(None, gt=0, lt=0.5)
    """Significance of the no_regression test (default: policy.alpha)."""
    max_new_failures: int | None = Field(None, ge=0)
    """no_regression only: block whenever more conversations than this fail newly, significant or not."""
    allow_empty: bool = False
    """By default a rule that selects no conversation fails (its requirement would go unchecked). True for a
    rule over conversations that may not exist yet, such as the QA review's exported regressions."""

    @model_validator(mode="after")
    def _selection_and_pattern(self) -> MustPass:
        if not self.tags and not self.critical:
            raise ValueError("select conversations with tags, critical: true, or both")
        if (self.require == "never_matches") != (self.pattern is not None):
            raise ValueError("require: never_matches needs a pattern, and only it takes one")
        if self.pattern is not None:
            re.compile(self.pattern)
        if self.mode != "no_regression" and (self.alpha is not None or self.max_new_failures is not None):
            raise ValueError("alpha and max_new_failures apply to mode: no_regression only")
        return self


class GateSpec(Strict):
    version: Literal[1]
    baseline: BaselineSpec | None = None
    policy: Policy = Policy()
    kpis: dict[str, KpiCheck] = Field(min_length=1)
    must_pass: list[MustPass] = []

    @field_validator("kpis")
    @classmethod
    def _known_kpis(cls, kpis: dict[str, KpiCheck]) -> dict[str, KpiCheck]:
        for name, check in kpis.items():
            if name in MONITORING:
                raise ValueError(
                    f"{name} is computed from the probe log, not from a replay run, so a release gate cannot check "
                    "it: see `harness uptime` and the alert rules in monitoring/prometheus"
                )
            if name not in REGISTRY:
                raise ValueError(unknown("KPI", name, REGISTRY))
            if check.threshold is not None and REGISTRY[name].higher_is_better is None:
                raise ValueError(f"{name} has no better direction, so it cannot have a threshold")
            if check.max_regression is not None and REGISTRY[name].higher_is_better is None:
                raise ValueError(f"{name} has no better direction, so it cannot regress")
        return kpis


def load_spec(path: Path) -> GateSpec:
    """The gate specification at `path`; raises InputError listing every problem."""
    return load_yaml_model(path, GateSpec, "gate specification")
