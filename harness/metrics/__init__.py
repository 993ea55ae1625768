"""Metrics: pure functions of the turn records. Importing this package registers every KPI."""

from harness.metrics import kpis as _kpis  # noqa: F401  (registers the KPIs)
from harness.metrics.core import ScoringCore, ScoringOptions, build_core
from harness.metrics.registry import REGISTRY, MetricResult, UndefinedMetricWarning, compute_all, get

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
