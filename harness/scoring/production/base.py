"""The seam between an engine and the closed-form step: what every engine returns (small frames of sufficient
statistics per period), so intervals are computed by one piece of Python for every engine."""

from __future__ import annotations

from typing import Protocol

import pandas as pd

PERIOD = "period"
START = "start"
KEY = "key"
BREAKDOWN = "breakdown"


class StatsEngine(Protocol):
    """Aggregates of one window of a production store, per period (`period`: all/day/week; `start`: the day, the
    Monday of the week, or `definitions.ALL_START` for all). Every method returns a small pandas frame (one row
    per period, and key or breakdown): only aggregates leave the engine."""

    name: str

    def conversation_sums(self) -> pd.DataFrame:
        """period, start, then `definitions.CONVERSATION_SUMS` (integers)."""
        ...

    def handoff_breakdowns(self) -> pd.DataFrame:
        """period, start, breakdown (`queue=<q>` / `rule=<r>`), conversations: conversations with a turn handed to
        that queue (or by that rule)."""
        ...

    def repeat_sums(self) -> pd.DataFrame:
        """period, start, eligible, hits (repeat contact; see `definitions`)."""
        ...

    def latency_counts(self) -> pd.DataFrame:
        """period, start, latency_n: the period's answered turns with a latency (as in `conversation_sums`; the
        latency KPIs are asked first, so an engine can give them without its conversation table)."""
        ...

    def order_statistics(self, ranks: pd.DataFrame) -> pd.DataFrame:
        """For rows period, start, key, rank (1-based): period, start, key, value = the rank-th smallest latency
        of the period's answered turns (ties counted with their multiplicity)."""
        ...

    def below_sums(self, thresholds: pd.DataFrame) -> pd.DataFrame:
        """For rows period, start, key, threshold: period, start, key and `definitions.CLUSTER_SUMS` of y = the
        conversation's answered turns with latency <= threshold, m = its answered turns with a latency."""
        ...
