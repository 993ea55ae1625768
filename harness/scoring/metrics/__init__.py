"""Metrics: pure functions of the turn records. Importing this package registers every KPI."""

from harness.scoring.metrics import kpis as _kpis  # noqa: F401  (registers the KPIs)
from harness.scoring.metrics.core import ScoringCore, ScoringOptions, build_core
from harness.scoring.metrics.registry import REGISTRY, MetricResult, UndefinedMetricWarning, compute_all, get

__all__ = [
    "REGISTRY",
    "MetricResult",
    "ScoringCore",
    "ScoringOptions",
    "UndefinedMetricWarning",
    "build_core",
    "compute_all",
    "get",
]
