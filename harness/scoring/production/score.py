"""`score_production`: the production scorecard of a window, on an engine. The engine returns sufficient
statistics per period (`base.StatsEngine`); the closed-form step below turns them into values and intervals, the
same code for every engine, through the interval functions of `harness.scoring.metrics.intervals`.

Latency quantiles (`server_latency_p50.v1`, `server_latency_p95.v1`): the value is the lower order statistic at
rank ceil(q n) of the n answered turns' latencies (numpy's `inverted_cdf`; exact, not an approximate percentile).
The interval is Woodruff's (1952, "Confidence intervals for medians and other position measures", JASA 47:635-646;
the default of R's `survey::svyquantile`): the share of turns at or below the estimate gets the design effect of
its conversations (`clustered_effective_size`, Korn & Graubard 1998), Wilson's interval of q on that effective
size (`modified_wilson_bounds`) gives (q_low, q_high), and the interval is the order statistics at ranks
ceil(q_low n) and ceil(q_high n). Three aggregate queries: the estimate, the sums at it, the two bounds. (The lab's
client-side latency uses a finer test inversion that needs a search over ranks; Woodruff's needs one pass.)
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import pandas as pd

from harness.errors import InputError
from harness.records.production import ProductionStore, Window
from harness.scoring.metrics.intervals import (
    clustered_effective_size,
    clustered_proportion_from_sums,
    mean_interval_from_sums,
    modified_wilson,
    modified_wilson_bounds,
)
from harness.scoring.production.base import BREAKDOWN, KEY, PERIOD, START, StatsEngine
from harness.scoring.production.definitions import (
    ALL_START,
    CLUSTER_SUMS,
    CLUSTERED_WILSON,
    CONVERSATION_SUMS,
    LABELLED_KPIS,
    LABELLED_REASON,
    PRODUCTION_KPIS,
    QUANTILES,
    T_CONVERSATIONS,
    WILSON,
    WOODRUFF,
    ProductionKpiOptions,
)
from harness.scoring.production.scorecard import PERIODS, ProductionKpi, ProductionScorecard

ENGINES = ("duckdb", "spark", "pandas")
NO_CONVERSATIONS = "no conversations in the period"


def score_production(
    store: ProductionStore,
    window: Window | None = None,
    options: ProductionKpiOptions | None = None,
    engine: str = "duckdb",
    *,
    session: Any = None,
) -> ProductionScorecard:
    """The production KPIs (`definitions.PRODUCTION_KPIS`) of `window`, per period `all`, `day` and `week`, with
    their intervals, computed on `engine`: `duckdb` (default; embedded, out of core), `spark` (`session`, default
    the shared session of `spark.spark_session`) or `pandas` (in memory). Every engine gives the same numbers.
    An empty window gives conversation_count 0 and every other KPI undefined (None) with its reason.
    Raises InputError for an unknown engine."""
    if engine not in ENGINES:
        raise InputError("unknown engine", [f"engine {engine!r}: choose one of {', '.join(ENGINES)}"])
    window = window or Window()
    options = options or ProductionKpiOptions()
    stats = _engine(store, window, options, engine, session) if store.files(window) else None
    try:
        return _scorecard(store, window, options, engine, stats)
    finally:
        close = getattr(stats, "close", None)
        if close is not None:
            close()


def _engine(
    store: ProductionStore, window: Window, options: ProductionKpiOptions, engine: str, session: Any
) -> StatsEngine:
    if engine == "pandas":
        from harness.scoring.production.pandas_engine import PandasEngine

        return PandasEngine(store, window, options)
    from harness.scoring.production import ibis_engine

    if engine == "spark":
        return ibis_engine.spark_engine(store, window, options, session)
    return ibis_engine.duckdb_engine(store, window, options)


def _normalise(frame: pd.DataFrame, counts: tuple[str, ...]) -> pd.DataFrame:
    """Engine output with python dates in `start` and python ints in the count columns, sorted by key."""
    frame = frame.copy()
    frame[START] = [pd.Timestamp(v).date() for v in frame[START]]
    for column in counts:
        frame[column] = [int(v) for v in frame[column]]
    keys = [c for c in (PERIOD, START, KEY, BREAKDOWN) if c in frame.columns]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def _kpi(
    name: str,
    period: str,
    start: Any,
    value: float | None,
    n: int,
    interval: tuple[float, float] | None = None,
    method: str | None = None,
    reason: str | None = None,
    breakdown: str | None = None,
) -> ProductionKpi:
    low, high = interval if interval is not None else (None, None)
    return ProductionKpi(
        name=name,
        breakdown=breakdown,
        period=period,
        period_start=None if start == ALL_START else start,
        value=value,
        n=n,
        low=low,
        high=high,
        method=method,
        undefined_reason=None if value is not None else reason,
    )


def _proportion(
    name: str, period: str, start: Any, hits: int, n: int, reason: str, confidence: float, breakdown: str | None = None
) -> ProductionKpi:
    if n == 0:
        return _kpi(name, period, start, None, 0, reason=reason, breakdown=breakdown)
    return _kpi(name, period, start, hits / n, n, modified_wilson(hits, n, confidence), WILSON, breakdown=breakdown)


def cluster_squares(hits: int, total: int, hits_sq: int, total_sq: int, cross: int) -> float:
    """sum_i (y_i - p m_i)^2 with p = hits / total, from the sums (exact rational arithmetic, then a float):
    (sum y^2 M^2 - 2 Y sum ym M + Y^2 sum m^2) / M^2."""
    if total == 0:
        return 0.0
    return float(Fraction(hits_sq * total * total - 2 * hits * cross * total + hits * hits * total_sq, total * total))


def _clustered(row: Any, prefix: str = "") -> tuple[float, float]:
    get = lambda field: int(getattr(row, prefix + field))  # noqa: E731
    squares = cluster_squares(get("hits"), get("total"), get("hits_sq"), get("total_sq"), get("cross"))
    low, high = clustered_proportion_from_sums(
        get("hits"), get("total"), get("clusters"), squares, get("miss_clusters"), get("hit_clusters")
    )
    return float(low), float(high)


def _order_rank(q: float, n: int) -> int:
    """ceil(q n), at least 1, at most n; q taken as the decimal it is written as (0.95 n is exact)."""
    return min(max(math.ceil(Fraction(str(q)) * n), 1), n)


def _latency_values(engine: StatsEngine | None, confidence: float) -> dict[tuple[str, Any, str], ProductionKpi]:
    """The latency quantiles of the periods with an answered turn with a latency, by (period, start, name). Asked
    of the engine before the other sums: an engine may fold the thresholds into the table it reads them from."""
    out: dict[tuple[str, Any, str], ProductionKpi] = {}
    if engine is None:
        return out
    counts = _normalise(engine.latency_counts(), ("latency_n",))
    timed = counts[counts["latency_n"] > 0]
    if not timed.empty:
        ranks = pd.DataFrame(
            [
                {PERIOD: r.period, START: r.start, KEY: name, "rank": _order_rank(q, r.latency_n)}
                for r in timed.itertuples(index=False)
                for name, q in QUANTILES.items()
            ]
        )
        estimates = _normalise(engine.order_statistics(ranks), ())
        thresholds = estimates.rename(columns={"value": "threshold"})
        below = _normalise(engine.below_sums(thresholds), CLUSTER_SUMS)
        n_of = {(r.period, r.start): int(r.latency_n) for r in timed.itertuples(index=False)}
        bound_rows = []
        for r in below.itertuples(index=False):
            q, n = QUANTILES[r.key], n_of[(r.period, r.start)]
            squares = cluster_squares(int(r.hits), int(r.total), int(r.hits_sq), int(r.total_sq), int(r.cross))
            n_eff = clustered_effective_size(int(r.hits), int(r.total), int(r.clusters), squares, confidence)
            low, high = modified_wilson_bounds(q * n_eff, n_eff, confidence)
            for side, share in (("low", float(low)), ("high", float(high))):
                rank = min(max(math.ceil(share * n), 1), n)
                bound_rows.append({PERIOD: r.period, START: r.start, KEY: f"{r.key}|{side}", "rank": rank})
        bounds = _normalise(engine.order_statistics(pd.DataFrame(bound_rows)), ())
        found = {(r.period, r.start, r.key): float(r.value) for r in bounds.itertuples(index=False)}
        for r in estimates.itertuples(index=False):
            low_value, high_value = (
                found[(r.period, r.start, f"{r.key}|low")],
                found[(r.period, r.start, f"{r.key}|high")],
            )
            # As the lab's latency: ends that meet would claim a certainty no finite sample gives.
            interval = (low_value, high_value) if high_value > low_value else None
            n = n_of[(r.period, r.start)]
            out[(r.period, r.start, r.key)] = _kpi(r.key, r.period, r.start, float(r.value), n, interval, WOODRUFF)
    return out


def _latency(out: dict[tuple[str, Any, str], ProductionKpi], sums: pd.DataFrame) -> list[ProductionKpi]:
    reason = "no answered turn with a latency in the period"
    result = []
    for r in sums.itertuples(index=False):
        for name in QUANTILES:
            result.append(out.get((r.period, r.start, name)) or _kpi(name, r.period, r.start, None, 0, reason=reason))
    return result


def _scorecard(
    store: ProductionStore,
    window: Window,
    options: ProductionKpiOptions,
    engine_name: str,
    engine: StatsEngine | None,
) -> ProductionScorecard:
    confidence = options.confidence
    latencies = _latency_values(engine, confidence)
    if engine is None:
        sums = pd.DataFrame([{PERIOD: "all", START: ALL_START, **dict.fromkeys(CONVERSATION_SUMS, 0)}])
        breakdowns = pd.DataFrame(columns=[PERIOD, START, BREAKDOWN, "conversations"])
        repeats = pd.DataFrame(columns=[PERIOD, START, "eligible", "hits"])
    else:
        sums = _normalise(engine.conversation_sums(), CONVERSATION_SUMS)
        breakdowns = _normalise(engine.handoff_breakdowns(), ("conversations",))
        repeats = _normalise(engine.repeat_sums(), ("eligible", "hits"))
    order = {p: i for i, p in enumerate(PERIODS)}
    sums = sums.assign(_order=sums[PERIOD].map(order)).sort_values(["_order", START]).drop(columns="_order")
    repeat_of = {(r.period, r.start): (int(r.eligible), int(r.hits)) for r in repeats.itertuples(index=False)}
    breakdown_of = {(r.period, r.start, r.breakdown): int(r.conversations) for r in breakdowns.itertuples(index=False)}
    names = sorted(set(breakdowns[BREAKDOWN]), key=lambda b: (not b.startswith("queue="), b))
    kpis: list[ProductionKpi] = []
    for r in sums.itertuples(index=False):
        p, s, n = r.period, r.start, int(r.conversations)
        kpis.append(_kpi("conversation_count.v1", p, s, float(n), n))
        kpis.append(_proportion("containment.v1", p, s, n - r.handed_off, n, NO_CONVERSATIONS, confidence))
        kpis.append(_proportion("handoff_rate.v1", p, s, r.handed_off, n, NO_CONVERSATIONS, confidence))
        for b in names:
            k = breakdown_of.get((p, s, b), 0)
            kpis.append(_proportion("handoff_rate.v1", p, s, k, n, NO_CONVERSATIONS, confidence, breakdown=b))
        if r.cov_total:
            interval = _clustered(r, "cov_")
            kpis.append(_kpi("coverage.v1", p, s, r.cov_hits / r.cov_total, r.cov_total, interval, CLUSTERED_WILSON))
        else:
            kpis.append(_kpi("coverage.v1", p, s, None, 0, reason="no customer turn answered in the period"))
        kpis.append(_proportion("abandonment.v1", p, s, r.abandoned, n, NO_CONVERSATIONS, confidence))
        if not options.customers_identified:
            kpis.append(
                _kpi("repeat_contact.v1", p, s, None, 0, reason="senders do not identify customers (customer: none)")
            )
        else:
            eligible, hits = repeat_of.get((p, s), (0, 0))
            reason = (
                f"no conversation with a customer started at least {options.repeat_contact} before the newest "
                "conversation in the store (the later ones are censored)"
            )
            kpis.append(_proportion("repeat_contact.v1", p, s, hits, eligible, reason, confidence))
        for name, total, squares in (
            ("messages_per_conversation.v1", r.messages, r.messages_sq),
            ("customer_turns_per_conversation.v1", r.customer_turns, r.customer_turns_sq),
        ):
            if n:
                spread = mean_interval_from_sums(total, squares, n, confidence)
                kpis.append(_kpi(name, p, s, total / n, n, spread, T_CONVERSATIONS))
            else:
                kpis.append(_kpi(name, p, s, None, 0, reason=NO_CONVERSATIONS))
    kpis.extend(_latency(latencies, sums))
    rank = {name: i for i, name in enumerate(PRODUCTION_KPIS)}
    kpis.sort(
        key=lambda k: (
            rank[k.name],
            k.breakdown is not None,
            k.breakdown or "",
            order[k.period],
            k.period_start or ALL_START,
        )
    )
    days = sorted(r.start for r in sums.itertuples(index=False) if r.period == "day")
    return ProductionScorecard(
        store=str(store.path),
        window=str(window),
        engine=engine_name,
        first_day=days[0] if days else None,
        last_day=days[-1] if days else None,
        kpis=tuple(kpis),
        undefined=dict.fromkeys(LABELLED_KPIS, LABELLED_REASON),
    )
