"""The production KPIs' aggregates as Ibis expressions: one definition, run by DuckDB (embedded, out of core) or
Apache Spark. Only aggregates are executed and returned (no rows reach the driver, no Python UDFs)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from harness.records.production import DAY, ProductionStore, Window
from harness.scoring.production.base import BREAKDOWN, KEY, PERIOD, START
from harness.scoring.production.definitions import (
    ALL_START,
    CLUSTER_SUMS,
    COLUMNS,
    CONVERSATION_SUMS,
    ProductionKpiOptions,
)

if TYPE_CHECKING:
    import ibis.expr.types as ir


BUCKETS = 4096
"""At most about this many latency buckets per day (`_bucket_scale`): the histogram stays small whatever the spread."""


def _int(value: Any) -> Any:
    import ibis

    return ibis.ifelse(value, 1, 0).cast("int64")


def roll_up(per_day: pd.DataFrame, sums: list[str], keys: tuple[str, ...] = ()) -> pd.DataFrame:
    """Rows per day (`day`, `keys`, integer `sums`) rolled up to periods: period, start, `keys`, `sums` for `all`
    (start `ALL_START`), every `day` and every ISO `week` (its Monday). Exact: every conversation belongs to one day,
    so a week's or the window's sums are sums of its days'."""
    columns = [PERIOD, START, *keys, *sums]
    if per_day.empty:
        return pd.DataFrame(columns=columns)
    frame = per_day[[DAY, *keys, *sums]].copy()
    frame[DAY] = [pd.Timestamp(v).date() for v in frame[DAY]]
    for column in sums:
        frame[column] = frame[column].astype("int64")
    starts = {
        "all": [ALL_START] * len(frame),
        "day": list(frame[DAY]),
        "week": [week_of(d) for d in frame[DAY]],
    }
    parts = []
    for kind, start in starts.items():
        part = frame.assign(**{START: start}).groupby([START, *keys], as_index=False, sort=True)[sums].sum()
        part.insert(0, PERIOD, kind)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)[columns]


def _facts(turns: ir.Table) -> ir.Table:
    """The turns (`COLUMNS` and `day`) with `day` as a date."""
    return turns.select(*COLUMNS, **{DAY: turns[DAY].cast("date")})


def _timed(t: ir.Table) -> Any:
    """Answered (status ok) with a latency: the turns the latency KPIs read."""
    return (t.status == "ok").fill_null(False) & t.latency_ms.notnull()


def conversation_table(turns: ir.Table) -> ir.Table:
    """One row per conversation (`conversation_id`, `day`) of the turns (`COLUMNS` and `day`), scalar columns
    only: the facts of `definitions` (handed, abandoned, messages, customer_turns, cov_y, cov_m, latency_n),
    `customer_lo`/`customer_hi` (smallest and largest customer), `start_known` (first start among
    turns with a customer) and `newest` (last conversation start). (No list columns: building lists per
    conversation costs more than the turn-level queries that read the latencies and handoffs instead.)"""
    t = _facts(turns)
    status = t.status
    sent = ~(status == "not_sent").fill_null(False)
    bot_owned = ~status.isin(["silenced", "not_sent"]).fill_null(False)
    answered = (status == "ok").fill_null(False)
    hit = answered & ~t.fallback.fill_null(False)
    handed = t.handoff_queue.notnull() | (t.state == "handed_off").fill_null(False)
    timed = _timed(t)
    conv = t.group_by(["conversation_id", DAY]).aggregate(
        handed=_int(handed).max(),
        # 2 * turn_index + awaiting of the last bot-owned turn: a max, cheaper than an ordered argmax.
        last_owned=(t.turn_index.cast("int64") * 2 + _int(t.awaiting_reply.fill_null(False))).max(where=bot_owned),
        messages=t.n_bot_messages.cast("int64").fill_null(0).sum(),
        customer_turns=_int(sent).sum(),
        cov_y=_int(hit).sum(),
        cov_m=_int(answered).sum(),
        latency_n=_int(timed).sum(),
        customer_lo=t.customer.min(),
        customer_hi=t.customer.max(),
        start_known=t.conversation_start.min(where=t.customer.notnull()),
        newest=t.conversation_start.max(),
    )
    return conv.mutate(abandoned=_int((conv.handed == 0) & (conv.last_owned % 2 == 1).fill_null(False)))


def latency_turns(turns: ir.Table) -> ir.Table:
    """One row per answered turn with a latency: `conversation_id`, `day` (date), `week` (its Monday) and
    `latency` (ms, float64)."""
    t = turns.select("conversation_id", "status", "latency_ms", **{DAY: turns[DAY].cast("date")})
    t = t.filter(_timed(t))
    return t.select("conversation_id", DAY, week=t[DAY].truncate("W"), latency=t.latency_ms.cast("float64"))


def handoff_pairs(turns: ir.Table) -> ir.Table:
    """Distinct (`conversation_id`, `day`, `breakdown`) with breakdown `queue=<q>` for a turn handed to queue q and
    `rule=<r>` for a turn handed off by rule r: read from the (few) turns that carry one."""
    import ibis

    t = turns.select("conversation_id", "handoff_queue", "handoff_rule", **{DAY: turns[DAY].cast("date")})
    parts = []
    for prefix, column in (("queue=", "handoff_queue"), ("rule=", "handoff_rule")):
        found = t.filter(t[column].notnull())
        parts.append(found.select("conversation_id", DAY, **{BREAKDOWN: ibis.literal(prefix) + found[column]}))
    return ibis.union(*parts, distinct=True)


def customer_facts(turns: ir.Table) -> ir.Table:
    """`conversation_table`'s customer columns only (for the days repeat contact reads beyond the window)."""
    t = turns.select("conversation_id", "customer", "conversation_start", **{DAY: turns[DAY].cast("date")})
    return t.group_by(["conversation_id", DAY]).aggregate(
        customer_lo=t.customer.min(),
        customer_hi=t.customer.max(),
        start_known=t.conversation_start.min(where=t.customer.notnull()),
        newest=t.conversation_start.max(),
    )


def _bucket_scale(latency_max: float | None) -> float:
    """A power of two s with latency_max * s <= BUCKETS: bucket = floor(latency * s) is monotone in the latency
    (a product by a positive constant, correctly rounded, then floor), so latencies ordered by (bucket, latency)
    are ordered by latency."""
    if latency_max is None or not math.isfinite(latency_max) or latency_max <= 0:
        return 1.0
    return 2.0 ** math.floor(math.log2(BUCKETS / latency_max))


class IbisEngine:
    """Aggregates of one window over an Ibis backend (see `base.StatsEngine`). The conversation facts are read
    from one table of the window's conversations (`conversation_table`) that the backend keeps (cached) for the
    engine's life (`close` releases it); the latency KPIs from the answered turns (`latency_turns`), the handoff
    breakdowns from the turns that carry a queue or rule (`handoff_pairs`).

    Repeat contact reads the conversations' customer facts (the window's and those of `extra`, the days after it
    that repeat contact needs); when some conversation (id and day) carries two different customers it reads the
    turns of `general` instead (grouped by conversation id and customer, as `definitions` says)."""

    def __init__(
        self,
        name: str,
        backend: Any,
        turns: ir.Table,
        latencies: ir.Table,
        handoffs: ir.Table,
        window: Window,
        repeat_us: int | None,
        extra: Callable[[], ir.Table | None],
        general: Callable[[], ir.Table],
    ) -> None:
        self.name = name
        self.backend = backend
        self.window = window
        self.repeat_us = repeat_us
        self.turns = turns
        self._conv: ir.Table | None = None
        self.latencies = latencies
        self.handoffs = handoffs
        self._extra = extra
        self._general = general
        self._histogram: tuple[float, pd.DataFrame] | None = None
        self._cached: list[ir.Table] = []

    def close(self) -> None:
        """Release the cached tables (Spark: unpersist; DuckDB: drop the temporary tables)."""
        for table in self._cached:
            with contextlib.suppress(Exception):
                table.release()
        self._cached = []

    def _execute(self, expr: Any) -> Any:
        return self.backend.execute(expr)

    def _conversations(self) -> ir.Table:
        """The cached conversation table, built on first use."""
        if self._conv is None:
            self._conv = conversation_table(self.turns).cache()
            self._cached.append(self._conv)
        return self._conv

    @property
    def conv(self) -> ir.Table:
        return self._conversations()

    def latency_counts(self) -> pd.DataFrame:
        _, hist = self._buckets()
        counts = hist.groupby([PERIOD, START], as_index=False, sort=True)["count"].sum()
        return counts.rename(columns={"count": "latency_n"})[[PERIOD, START, "latency_n"]]

    def conversation_sums(self) -> pd.DataFrame:
        c = self.conv
        expr = c.group_by(DAY).aggregate(
            conversations=c.count(),
            handed_off=c.handed.sum(),
            abandoned=c.abandoned.sum(),
            messages=c.messages.sum(),
            messages_sq=(c.messages * c.messages).sum(),
            customer_turns=c.customer_turns.sum(),
            customer_turns_sq=(c.customer_turns * c.customer_turns).sum(),
            cov_clusters=_int(c.cov_m > 0).sum(),
            cov_hits=c.cov_y.sum(),
            cov_total=c.cov_m.sum(),
            cov_hits_sq=(c.cov_y * c.cov_y).sum(),
            cov_total_sq=(c.cov_m * c.cov_m).sum(),
            cov_cross=(c.cov_y * c.cov_m).sum(),
            cov_miss_clusters=_int(c.cov_y < c.cov_m).sum(),
            cov_hit_clusters=_int(c.cov_y > 0).sum(),
            latency_n=c.latency_n.sum(),
        )
        per_day = self._execute(expr)
        return roll_up(per_day, list(CONVERSATION_SUMS))

    def handoff_breakdowns(self) -> pd.DataFrame:
        h = self.handoffs
        per_day = self._execute(h.group_by([DAY, BREAKDOWN]).aggregate(conversations=h.count()))
        return roll_up(per_day, ["conversations"], (BREAKDOWN,))

    def repeat_sums(self) -> pd.DataFrame:
        columns = [PERIOD, START, "eligible", "hits"]
        if self.repeat_us is None:
            return pd.DataFrame(columns=columns)
        import ibis

        facts = self.conv.select("conversation_id", DAY, "customer_lo", "customer_hi", "start_known", "newest")
        extra = self._extra()
        if extra is not None:
            facts = ibis.union(facts, extra, distinct=False)
        if int(self._execute(_int(facts.customer_lo != facts.customer_hi).sum()) or 0):
            conv = self._general()
        else:
            newest = facts.newest.max().as_scalar()
            known = facts.filter(facts.customer_lo.notnull())
            conv = known.group_by(["conversation_id", known.customer_lo.name("customer")]).aggregate(
                start=known.start_known.min(), **{DAY: known[DAY].min()}
            )
            conv = conv.mutate(eligible=conv.start <= newest - ibis.interval(microseconds=self.repeat_us))
        window = ibis.window(group_by=conv.customer, order_by=[conv.start, conv.conversation_id])
        conv = conv.mutate(next_start=conv.start.lead().over(window))
        conv = self._in_window(conv)
        eligible = conv.eligible
        hit = eligible & (conv.next_start <= conv.start + ibis.interval(microseconds=self.repeat_us)).fill_null(False)
        expr = conv.group_by(DAY).aggregate(eligible=_int(eligible).sum(), hits=_int(hit).sum())
        return roll_up(self._execute(expr), ["eligible", "hits"])

    def _in_window(self, conv: ir.Table) -> ir.Table:
        day = conv[DAY]
        if self.window.first is not None:
            conv = conv.filter(day >= self.window.first)
        if self.window.last is not None:
            conv = conv.filter(day <= self.window.last)
        return conv

    def _latency_rows(self, scale: float) -> ir.Table:
        """One row per answered turn with a latency: day, week, latency, bucket."""
        rows = self.latencies.select(DAY, "week", "latency")
        return rows.mutate(bucket=(rows.latency * scale).floor().cast("int64"))

    def _buckets(self) -> tuple[float, pd.DataFrame]:
        """The bucket scale and the histogram rolled up to periods: period, start, bucket, count, before (the
        period's latencies in lower buckets), sorted."""
        if self._histogram is None:
            found = self._execute(self.latencies.latency.max())
            scale = _bucket_scale(None if pd.isna(found) else float(found))
            rows = self._latency_rows(scale)
            per_day = self._execute(rows.group_by([DAY, "bucket"]).aggregate(count=rows.count()))
            hist = roll_up(per_day, ["count"], ("bucket",)).sort_values([PERIOD, START, "bucket"], kind="stable")
            hist["count"] = hist["count"].astype("int64")  # an empty histogram (nothing answered) comes back untyped
            hist["before"] = hist.groupby([PERIOD, START], sort=False)["count"].cumsum() - hist["count"]
            self._histogram = (scale, hist.reset_index(drop=True))
        return self._histogram

    def order_statistics(self, ranks: pd.DataFrame) -> pd.DataFrame:
        """Exact, in two steps: the histogram (`_buckets`) gives the bucket holding each rank and the rank inside
        it; one query ranks the latencies of those buckets only (row_number by latency: ties keep their
        multiplicity) and keeps the wanted positions."""
        import ibis

        columns = [PERIOD, START, KEY, "value"]
        if ranks.empty:
            return pd.DataFrame(columns=columns)
        scale, hist = self._buckets()
        groups = {key: part for key, part in hist.groupby([PERIOD, START], sort=False)}
        wanted = []
        for r in ranks.itertuples(index=False):
            part = groups[(r.period, pd.Timestamp(r.start).date())]
            upto = (part["before"] + part["count"]).to_numpy()
            i = int(np.searchsorted(upto, int(r.rank), side="left"))
            row = part.iloc[i]
            wanted.append(
                {
                    PERIOD: r.period,
                    START: pd.Timestamp(r.start).date(),
                    KEY: r.key,
                    "bucket": int(row["bucket"]),
                    "position": int(r.rank) - int(row["before"]) - 1,
                }
            )
        wanted_frame = pd.DataFrame(wanted)
        rows = self._latency_rows(scale)
        rows = rows.filter(rows.bucket.isin(sorted(set(wanted_frame["bucket"]))))
        table = ibis.memtable(
            wanted_frame,
            schema={PERIOD: "string", START: "date", KEY: "string", "bucket": "int64", "position": "int64"},
        )
        # One scan: a turn row meets the wanted rows of its bucket for the window, its day and its week.
        period, start = table[PERIOD], table[START]
        meets = (
            (period == "all") | ((period == "day") & (start == rows[DAY])) | ((period == "week") & (start == rows.week))
        )
        joined = rows.join(table, [rows.bucket == table.bucket, meets]).select(
            table[PERIOD], table[START], table[KEY], table.position, rows.latency
        )
        order = ibis.row_number().over(group_by=[joined[PERIOD], joined[START], joined[KEY]], order_by=joined.latency)
        joined = joined.mutate(at=order)
        picked = joined.filter(joined.at == joined.position)
        return self._execute(picked.select(PERIOD, START, KEY, value=picked.latency))[columns]

    def below_sums(self, thresholds: pd.DataFrame) -> pd.DataFrame:
        """One scan of the answered turns joined to their day's thresholds (the day's, its week's and the window's,
        one column per period kind and key): per conversation m = its turns and y = those at or below each
        threshold, then per day the cluster sums of every threshold, rolled up per kind."""
        import ibis

        columns = [PERIOD, START, KEY, *CLUSTER_SUMS]
        if thresholds.empty:
            return pd.DataFrame(columns=columns)
        keys = sorted(thresholds[KEY].unique())
        kinds = ("all", "day", "week")
        frame = thresholds.assign(**{START: [pd.Timestamp(v).date() for v in thresholds[START]]})
        bound = {(p, s, k): float(t) for p, s, k, t in frame[[PERIOD, START, KEY, "threshold"]].itertuples(index=False)}
        days = sorted({s for p, s in frame[[PERIOD, START]].itertuples(index=False) if p == "day"})
        names = [f"t_{kind}_{k}" for kind in kinds for k in keys]
        per_day_bounds = pd.DataFrame(
            [
                {
                    DAY: d,
                    **{
                        f"t_{kind}_{k}": bound.get((kind, {"all": ALL_START, "day": d, "week": week_of(d)}[kind], k))
                        for kind in kinds
                        for k in keys
                    },
                }
                for d in days
            ],
            columns=[DAY, *names],
        )
        table = ibis.memtable(per_day_bounds, schema={DAY: "date", **dict.fromkeys(names, "float64")})
        rows = self.latencies
        joined = rows.join(table, DAY)
        below = {f"y_{name}": _int(joined.latency <= joined[name]).sum() for name in names}
        conv = joined.group_by(["conversation_id", DAY]).aggregate(m=joined.count(), **below)
        return self._below_from(conv, names, keys, kinds, bound, columns)

    def _below_from(
        self,
        conv: ir.Table,
        names: list[str],
        keys: list[str],
        kinds: tuple[str, ...],
        bound: dict[tuple[str, date, str], float],
        columns: list[str],
    ) -> pd.DataFrame:
        """`below_sums` from one row per conversation with latencies: day, m and `y_<name>` per threshold name."""
        sums: dict[str, Any] = {
            "clusters": conv.count(),
            "total": conv.m.sum(),
            "total_sq": (conv.m * conv.m).sum(),
        }
        for name in names:
            y = conv[f"y_{name}"]
            sums[f"hits_{name}"] = y.sum()
            sums[f"hits_sq_{name}"] = (y * y).sum()
            sums[f"cross_{name}"] = (y * conv.m).sum()
            sums[f"miss_clusters_{name}"] = _int(y < conv.m).sum()
            sums[f"hit_clusters_{name}"] = _int(y > 0).sum()
        per_day = self._execute(conv.group_by(DAY).aggregate(**sums))
        out = []
        for kind in kinds:
            for k in keys:
                name = f"t_{kind}_{k}"
                renamed = {
                    f"{field}_{name}": field for field in ("hits", "hits_sq", "cross", "miss_clusters", "hit_clusters")
                }
                part = per_day[[DAY, "clusters", "total", "total_sq", *renamed]].rename(columns=renamed)
                rolled = roll_up(part, list(CLUSTER_SUMS))
                rolled = rolled[rolled[PERIOD] == kind]
                out.append(rolled.assign(**{KEY: k}))
        merged = pd.concat(out, ignore_index=True)
        wanted = set(bound)
        keep = [(p, s, k) in wanted for p, s, k in merged[[PERIOD, START, KEY]].itertuples(index=False)]
        return merged[keep][columns].reset_index(drop=True)


def repeat_files(store: ProductionStore, window: Window, options: ProductionKpiOptions) -> list[Path]:
    """The files repeat contact reads: the window, the days after it within which a next contact can start, and
    the store's last day (for the newest conversation start)."""
    stored = store.days()
    if not stored:
        return []
    extra = math.ceil(options.repeat_contact / timedelta(days=1)) + 1
    last = window.last + timedelta(days=extra) if window.last else None
    days = set(store.days(Window(window.first, last))) | {stored[-1]}
    return store.files(Window(min(days), max(days))) if days else []


def _repeat_table(turns: ir.Table, options: ProductionKpiOptions) -> ir.Table:
    """Conversations with a customer: id, customer, start, day, week, eligible (not censored)."""
    import ibis

    day = turns[DAY].cast("date")
    newest = turns.conversation_start.max().as_scalar()
    known = turns.filter(turns.customer.notnull())
    conv = known.group_by(["conversation_id", "customer"]).aggregate(
        start=known.conversation_start.min(), **{DAY: day.min()}
    )
    cutoff = newest - ibis.interval(microseconds=_micros(options.repeat_contact))
    return conv.mutate(week=conv[DAY].truncate("W"), eligible=conv.start <= cutoff)


def _micros(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


def _engine(
    name: str, backend: Any, load: Any, store: ProductionStore, window: Window, options: ProductionKpiOptions
) -> IbisEngine:
    """The engine over `load(files, columns) -> ir.Table`: the window's files are read once, into the cached
    conversation table."""
    files = store.files(window)
    turns = load(files, [*COLUMNS, DAY])
    inside = set(files)
    extra_files = [f for f in repeat_files(store, window, options) if f not in inside]
    columns = ["conversation_id", "customer", "conversation_start", DAY]

    def extra() -> ir.Table | None:
        return customer_facts(load(extra_files, columns)) if extra_files else None

    def general() -> ir.Table:
        return _repeat_table(load(files + extra_files, columns), options)

    repeat_us = _micros(options.repeat_contact) if options.customers_identified else None
    return IbisEngine(
        name, backend, turns, latency_turns(turns), handoff_pairs(turns), window, repeat_us, extra, general
    )


def duckdb_engine(store: ProductionStore, window: Window, options: ProductionKpiOptions) -> IbisEngine:
    """An engine over an in-process DuckDB (out of core: it spills to disk past its memory limit)."""
    import ibis

    backend = ibis.duckdb.connect()
    backend.raw_sql("SET TimeZone = 'UTC'")
    backend.raw_sql("SET enable_progress_bar = false")

    def load(files: list[Path], columns: list[str]) -> ir.Table:
        table = backend.read_parquet([str(f) for f in files], hive_partitioning=True)
        return table.select(*columns)

    return _engine("duckdb", backend, load, store, window, options)


def spark_engine(
    store: ProductionStore, window: Window, options: ProductionKpiOptions, session: Any = None
) -> IbisEngine:
    """An engine over Apache Spark (`session`, default the shared one of `spark.spark_session`)."""
    import ibis

    from harness.scoring.production.spark import spark_session

    session = session or spark_session()
    backend = ibis.pyspark.connect(session)
    counter = iter(range(1 << 30))

    def load(files: list[Path], columns: list[str]) -> ir.Table:
        frame = session.read.option("basePath", str(store.turns_dir)).parquet(*[str(f) for f in files])
        name = f"harness_production_{id(backend)}_{next(counter)}"
        frame.select(*columns).createOrReplaceTempView(name)
        return backend.table(name)

    return _engine("spark", backend, load, store, window, options)


def week_of(day: date) -> date:
    """The Monday of `day`'s ISO week."""
    return day - timedelta(days=day.weekday())
