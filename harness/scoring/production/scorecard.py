"""The production scorecard: data only (the label-free KPIs of a window, per period, and the labelled KPIs left
undefined with their reason). Engines produce it, sinks (console, report, MLflow) read it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

PERIODS = ("all", "day", "week")
"""`all`: the whole window; `day`: a UTC day; `week`: an ISO week (Monday to Sunday, UTC), by conversation start."""


@dataclass(frozen=True, slots=True)
class ProductionKpi:
    """One KPI value for one period (and breakdown) of a production window."""

    name: str
    """Versioned name, for example `coverage.v1`."""
    breakdown: str | None
    """None for the KPI overall, else `queue=<queue>` or `rule=<rule>` (handoff_rate)."""
    period: str
    """`all`, `day` or `week` (PERIODS)."""
    period_start: date | None
    """The day, or the Monday of the week; None for `all`."""
    value: float | None
    """The value (a share in [0, 1], a mean, a count or milliseconds); None when undefined."""
    n: int
    """Support: conversations or turns the value is computed over."""
    low: float | None
    """Lower bound of the 95% interval; None without an interval."""
    high: float | None
    """Upper bound of the 95% interval; None without an interval."""
    method: str | None
    """How the interval was computed (`wilson`, `wilson (design effect)`, `t (clustered)`, ...)."""
    undefined_reason: str | None = None
    """Why the value is undefined (for example no conversations in the period)."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["period_start"] = self.period_start.isoformat() if self.period_start else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProductionKpi:
        start = data.get("period_start")
        return cls(**{**data, "period_start": date.fromisoformat(start) if start else None})


@dataclass(frozen=True, slots=True)
class ProductionScorecard:
    """The production KPIs of one window of one store."""

    store: str
    """The production store folder."""
    window: str
    """The window asked for (`harness.records.production.Window` as text, `..` for everything)."""
    engine: str
    """`duckdb`, `spark` or `pandas`."""
    first_day: date | None
    """The first day with conversations in the window (None: no conversations)."""
    last_day: date | None
    """The last day with conversations in the window."""
    kpis: tuple[ProductionKpi, ...]
    undefined: dict[str, str] = field(default_factory=dict)
    """Labelled KPIs that production logs cannot give, name -> reason."""

    def overall(self) -> list[ProductionKpi]:
        """The window's KPIs (period `all`)."""
        return [k for k in self.kpis if k.period == "all"]

    def series(self, name: str, period: str, breakdown: str | None = None) -> list[ProductionKpi]:
        """One KPI's values per day or week, in time order."""
        found = [k for k in self.kpis if k.name == name and k.period == period and k.breakdown == breakdown]
        return sorted(found, key=lambda k: k.period_start or date.min)

    def to_json(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "window": self.window,
            "engine": self.engine,
            "first_day": self.first_day.isoformat() if self.first_day else None,
            "last_day": self.last_day.isoformat() if self.last_day else None,
            "kpis": [k.to_json() for k in self.kpis],
            "undefined": dict(self.undefined),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProductionScorecard:
        def day(value: str | None) -> date | None:
            return date.fromisoformat(value) if value else None

        return cls(
            store=data["store"],
            window=data["window"],
            engine=data["engine"],
            first_day=day(data.get("first_day")),
            last_day=day(data.get("last_day")),
            kpis=tuple(ProductionKpi.from_json(k) for k in data["kpis"]),
            undefined=dict(data.get("undefined") or {}),
        )
