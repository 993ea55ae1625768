"""The metric registry: every KPI declares its versioned name, direction and range where it is defined.

The gate and the reports read direction and range from here; nothing hard-codes `>=`.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness.errors import HarnessError
from harness.metrics.core import ScoringCore
from harness.metrics.intervals import Interval, wilson

WILSON = "wilson"
BOOTSTRAP = "conversation bootstrap"


class UndefinedMetricWarning(UserWarning):
    """A metric has no value on these records (for example no handed-off conversation): it is None, not 0."""


class UnknownMetric(HarnessError):
    """A metric name that is not registered."""


@dataclass(frozen=True)
class MetricResult:
    name: str
    """Versioned name, for example `recognition_rate.v1`."""
    value: float | None
    """None when undefined on these records (see `warning`)."""
    n: int
    """Support: the denominator (conversations or turns) the value is computed over."""
    interval: Interval | None
    """95% interval (Wilson or conversation bootstrap, see `interval_method`), None when undefined or a count."""
    interval_method: str | None
    higher_is_better: bool | None
    unit: str
    warning: str | None = None


@dataclass(frozen=True)
class Parts:
    """A ratio KPI broken down by conversation (indexed by conversation code): value = sum(num) / sum(den).

    The same breakdown serves the interval (bootstrap over conversations) and paired comparisons of two runs."""

    numerator: np.ndarray
    denominator: np.ndarray
    conversation_proportion: bool
    """Each conversation counts 0 or 1 in both: a proportion of conversations, with a Wilson interval."""


@dataclass(frozen=True)
class MetricSpec:
    base: str
    version: int
    description: str
    higher_is_better: bool | None
    """None for counts and other figures with no better direction."""
    value_range: tuple[float, float | None]
    """(low, high); high None means unbounded."""
    unit: str
    compute: Callable[[ScoringCore], tuple[float | None, int, Interval | None, str | None]]
    parts: Callable[[ScoringCore], Parts] | None = None
    """For ratio KPIs: the per-conversation breakdown (used for paired comparisons)."""

    @property
    def name(self) -> str:
        return f"{self.base}.v{self.version}"

    def __call__(self, core: ScoringCore) -> MetricResult:
        value, n, interval, method = self.compute(core)
        warning = None
        if value is None:
            warning = f"{self.name} is undefined on these records (n={n}): {self.description}"
            warnings.warn(warning, UndefinedMetricWarning, stacklevel=2)
        return MetricResult(
            self.name,
            value,
            n,
            interval if value is not None else None,
            method,
            self.higher_is_better,
            self.unit,
            warning,
        )


REGISTRY: dict[str, MetricSpec] = {}


def register(
    base: str,
    version: int,
    *,
    description: str,
    higher_is_better: bool | None,
    value_range: tuple[float, float | None] = (0.0, 1.0),
    unit: str = "ratio",
) -> Callable:
    """Decorator registering a metric function `(core) -> (value, n, interval, interval_method)`."""

    def add(function: Callable) -> Callable:
        _add(MetricSpec(base, version, description, higher_is_better, value_range, unit, function))
        return function

    return add


def _add(spec: MetricSpec) -> None:
    if spec.name in REGISTRY:
        raise ValueError(f"metric {spec.name} registered twice")
    REGISTRY[spec.name] = spec


def ratio_value(parts: Parts, core: ScoringCore) -> tuple[float | None, int, Interval | None, str]:
    """(value, n, interval, method) of a ratio KPI from its per-conversation parts."""
    n = int(parts.denominator.sum())
    if parts.conversation_proportion:
        k = int(parts.numerator.sum())
        return (k / n if n else None), n, wilson(k, n, core.options.confidence), WILSON
    if n == 0:
        return None, 0, None, BOOTSTRAP
    return float(parts.numerator.sum() / n), n, core.bootstrap.ratio(parts.numerator, parts.denominator), BOOTSTRAP


def register_ratio(
    base: str,
    version: int,
    *,
    description: str,
    higher_is_better: bool | None,
    value_range: tuple[float, float | None] = (0.0, 1.0),
    unit: str = "ratio",
) -> Callable:
    """Decorator registering a ratio KPI from a function `(core) -> Parts`."""

    def add(function: Callable[[ScoringCore], Parts]) -> Callable:
        spec = MetricSpec(
            base,
            version,
            description,
            higher_is_better,
            value_range,
            unit,
            compute=lambda core: ratio_value(function(core), core),
            parts=function,
        )
        _add(spec)
        return function

    return add


def get(name: str) -> MetricSpec:
    """The registered metric `name` (versioned); raises UnknownMetric with a suggestion."""
    if name in REGISTRY:
        return REGISTRY[name]
    close = difflib.get_close_matches(name, list(REGISTRY), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UnknownMetric(f"unknown metric {name!r}{hint}; registered: {', '.join(sorted(REGISTRY))}")


def compute_all(core: ScoringCore) -> list[MetricResult]:
    """Every registered metric on `core`, in registration order."""
    return [spec(core) for spec in REGISTRY.values()]
