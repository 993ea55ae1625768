"""The metric registry: every KPI declares its versioned name, direction and range where it is defined.

The gate and the reports read direction and range from here; nothing hard-codes `>=`.

Versions (kpis.md, "Versioning"): a change to what a KPI counts registers a new version beside the old one. The
highest registered version of a KPI is its *current* version; every lower one is *superseded*: still registered,
computable by name (`get("oos_rejection.v1")`) and usable by a gate specification, so runs scored months apart
stay comparable, but no longer shown by default (`compute_all(core)` returns current versions only, which is
what scorecards, reports and MLflow show; `compute_all(core, include_superseded=True)` returns every version).

Sources: most KPIs are computed from turn records through a ScoringCore (`source` "replay": an eval run's replay
or an imported production window) and live in REGISTRY, which scorecards, reports, MLflow logging, the gate and
ScoredRun iterate. A KPI computed from something else (`uptime.v1`, source "probes": the probe log, by
harness.scoring.uptime) is declared here too, with its direction, range and unit, but lives in MONITORING:
`get` finds it, nothing that scores a replay run sees it.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness.errors import InputError, UnknownMetric
from harness.scoring.metrics.core import ScoringCore
from harness.scoring.metrics.intervals import Interval, clustered_proportion, mean_interval, modified_wilson

WILSON = "wilson"
"""Conversation-level proportions: Wilson's score interval, with Brown, Cai & DasGupta's bound next to 0 and 1
(`modified_wilson`)."""
CLUSTERED_WILSON = "wilson (design effect)"
"""Turn-level proportions: Wilson on the effective sample size (Korn & Graubard), see `clustered_proportion`."""
T_CONVERSATIONS = "t (clustered)"
"""Means per conversation: Student's t over conversations, see `mean_interval`."""
TEST_INVERSION = "test inversion"
"""Latency quantiles: the clustered proportion interval inverted over latencies (Francisco & Fuller, refining
Woodruff), see `quantile_intervals`."""
REPLAY = "replay"
"""`MetricSpec.source` of KPIs computed from turn records through a ScoringCore (REGISTRY)."""
PROBES = "probes"
"""`MetricSpec.source` of KPIs computed from the probe log (harness.records.probe_log), not from a ScoringCore."""
BOOTSTRAP = "conversation bootstrap"
"""The percentile bootstrap over conversations: no longer printed (too narrow near 100%), kept as a name for
comparisons such as bench/interval_coverage.py."""


class UndefinedMetricWarning(UserWarning):
    """A metric has no value on these records (for example no handed-off conversation): it is None, not 0."""


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
    superseded_by: str | None = None
    """The KPI's current version when this one is superseded (see the module docstring), else None."""


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
    needs: frozenset[str] = frozenset()
    """Observations (`harness.records.Observation` names) the KPI's inputs come from; on a bot that does not
    make one of them the KPI is undefined, with a warning naming it, never 0."""
    source: str = REPLAY
    """What the KPI is computed from: REPLAY (turn records, via `compute`; registered in REGISTRY) or PROBES (the
    probe log, by harness.scoring.uptime; registered in MONITORING, and `compute` refuses a ScoringCore)."""

    def missing(self, core: ScoringCore) -> list[str]:
        """The observations this KPI needs that the bot behind `core` did not make (sorted)."""
        return sorted(self.needs - core.observed) if core.observed is not None else []

    @property
    def name(self) -> str:
        return f"{self.base}.v{self.version}"

    @property
    def superseded_by(self) -> str | None:
        """The name of this KPI's current (highest registered) version when that is a later one, else None."""
        registry = REGISTRY if self.source == REPLAY else MONITORING
        latest = max(spec.version for spec in registry.values() if spec.base == self.base)
        return f"{self.base}.v{latest}" if latest > self.version else None

    def __call__(self, core: ScoringCore) -> MetricResult:
        if missing := self.missing(core):
            unobserved = (
                f"{self.name} is undefined: the bot does not report {', '.join(missing)} "
                f"(its kind does not observe it), and {self.base} is computed from it"
            )
            warnings.warn(unobserved, UndefinedMetricWarning, stacklevel=2)
            return MetricResult(
                self.name, None, 0, None, None, self.higher_is_better, self.unit, unobserved, self.superseded_by
            )
        value, n, interval, method = self.compute(core)
        warning: str | None = None
        if value is None:
            warning = (
                f"{self.name} is undefined on these records: nothing is in its denominator (n={n}); "
                f"it counts {self.description}"
            )
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
            self.superseded_by,
        )


REGISTRY: dict[str, MetricSpec] = {}
"""The KPIs computed from turn records (source REPLAY), in registration order."""
MONITORING: dict[str, MetricSpec] = {}
"""The KPIs computed from other sources (the probe log): declared and found by `get`, never computed on a replay."""


def register(
    base: str,
    version: int,
    *,
    description: str,
    higher_is_better: bool | None,
    value_range: tuple[float, float | None] = (0.0, 1.0),
    unit: str = "ratio",
    needs: frozenset[str] = frozenset(),
) -> Callable:
    """Decorator registering a metric function `(core) -> (value, n, interval, interval_method)`."""

    def add(function: Callable) -> Callable:
        _add(MetricSpec(base, version, description, higher_is_better, value_range, unit, function, needs=needs))
        return function

    return add


def _add(spec: MetricSpec) -> None:
    if spec.name in REGISTRY or spec.name in MONITORING:
        raise ValueError(f"metric {spec.name} registered twice")
    (REGISTRY if spec.source == REPLAY else MONITORING)[spec.name] = spec


def ratio_value(
    parts: Parts, core: ScoringCore, *, mean: bool | None = None
) -> tuple[float | None, int, Interval | None, str]:
    """(value, n, interval, method) of a ratio KPI from its per-conversation parts.

    The interval's method follows the parts: a proportion of conversations (`conversation_proportion`) gets
    Wilson's (modified next to 0 and 1); a mean of a count per conversation (`mean`: the denominator is 1 per
    conversation and the value unbounded) Student's t over conversations; a proportion of turns the clustered
    Wilson interval. When `mean` is None it is inferred: a mean unless every numerator lies between 0 and its
    denominator (a count that is 0 or 1 in every conversation then gets the proportion interval, capped at 1).
    See `harness.scoring.metrics.intervals`; coverage in bench/results/interval_coverage.md."""
    n = int(parts.denominator.sum())
    confidence = core.options.confidence
    if parts.conversation_proportion:
        k = int(parts.numerator.sum())
        return (k / n if n else None), n, modified_wilson(k, n, confidence), WILSON
    if mean is None:
        mean = not bool(((parts.numerator >= 0) & (parts.numerator <= parts.denominator)).all())
    proportion = not mean
    method = CLUSTERED_WILSON if proportion else T_CONVERSATIONS
    if n == 0:
        return None, 0, None, method
    if proportion:
        interval = clustered_proportion(parts.numerator, parts.denominator, confidence)
    else:
        interval = mean_interval(parts.numerator[parts.denominator > 0], confidence)
    return float(parts.numerator.sum() / n), n, interval, method


def register_ratio(
    base: str,
    version: int,
    *,
    description: str,
    higher_is_better: bool | None,
    value_range: tuple[float, float | None] = (0.0, 1.0),
    unit: str = "ratio",
    needs: frozenset[str] = frozenset(),
) -> Callable:
    """Decorator registering a ratio KPI from a function `(core) -> Parts`. A KPI with no upper bound
    (`value_range[1]` None: messages or turns per conversation) is a mean and gets the t interval; a bounded one a
    proportion interval (never inferred from the data: a count that happens to be 0 or 1 stays a mean)."""
    is_mean = value_range[1] is None

    def add(function: Callable[[ScoringCore], Parts]) -> Callable:
        spec = MetricSpec(
            base,
            version,
            description,
            higher_is_better,
            value_range,
            unit,
            compute=lambda core: ratio_value(function(core), core, mean=is_mean),
            parts=function,
            needs=needs,
        )
        _add(spec)
        return function

    return add


def get(name: str) -> MetricSpec:
    """The registered metric `name` (versioned); raises UnknownMetric with a suggestion."""
    for registry in (REGISTRY, MONITORING):
        if name in registry:
            return registry[name]
    known = [*REGISTRY, *MONITORING]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UnknownMetric(f"unknown metric {name!r}{hint}; registered: {', '.join(sorted(known))}")


def compute_all(core: ScoringCore, *, include_superseded: bool = False) -> list[MetricResult]:
    """The current version of every registered KPI on `core`, in registration order; with `include_superseded`,
    every registered version (a gate specification may still name a superseded one). KPIs of other sources
    (MONITORING: `uptime.v1`) are not computed from a ScoringCore and never appear."""
    return [spec(core) for spec in REGISTRY.values() if include_superseded or spec.superseded_by is None]


def _from_the_probe_log(core: ScoringCore) -> tuple[float | None, int, Interval | None, str | None]:
    raise InputError(
        "uptime.v1 is not computed from turn records",
        ["uptime.v1: it comes from the probe log; run `harness uptime` (harness.scoring.uptime.uptime)"],
    )


_add(
    MetricSpec(
        "uptime",
        1,
        "the time-weighted share of a window in which the bot's probe conversations passed: up time / (up + down "
        "time), each probe's result standing until its next one; time with no standing result is unknown, "
        "excluded (README, `uptime.v1`; COPC's system uptime)",
        higher_is_better=True,
        value_range=(0.0, 1.0),
        unit="ratio",
        compute=_from_the_probe_log,
        source=PROBES,
    )
)
