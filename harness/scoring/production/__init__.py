"""Production KPIs: the label-free KPIs of real conversations (kpis.md, "Label-free KPIs for production
conversations") per window, day and week, with intervals, computed by a dataframe engine (Ibis over DuckDB or
Spark) or in memory (pandas)."""

from harness.scoring.production.definitions import PRODUCTION_KPIS, ProductionKpiOptions, ProductionKpiSpec
from harness.scoring.production.score import ENGINES, score_production
from harness.scoring.production.scorecard import ProductionKpi, ProductionScorecard

__all__ = [
    "ENGINES",
    "PRODUCTION_KPIS",
    "ProductionKpi",
    "ProductionKpiOptions",
    "ProductionKpiSpec",
    "ProductionScorecard",
    "score_production",
]
