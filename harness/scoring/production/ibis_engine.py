"""The production KPIs' aggregates as Ibis expressions: one definition, run by DuckDB (embedded, out of core) or
Apache Spark. Only aggregates are executed and returned (no rows reach the driver, no Python UDFs)."""

from __future__ import annotations

import math
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from harness.records.production import DAY, ProductionStore, Window
from harness.scoring.production.base import BREAKDOWN, KEY, PERIOD, START
from harness.scoring.production.definitions import ALL_START, CLUSTER_SUMS, COLUMNS, ProductionKpiOptions

if TYPE_CHECKING:
    import ibis.expr.types as ir


def _int(value: Any) -> Any:
    import ibis

    return ibis.ifelse(value, 1, 0).cast("int64")


def _by_period(table: ir.Table, **values: Any) -> ir.Table:
    """The rows of `table` (which has `day` and `week`) once per period kind, keyed by period and start."""
    import ibis

    kinds = {"all": ibis.literal(ALL_START, type="date"), "day": table[DAY], "week": table["week"]}
    parts = [
        table.select(**{PERIOD: ibis.literal(kind, type="string"), START: start}, **values)
        for kind, start in kinds.items()
    ]
    return ibis.union(*parts, distinct=False)


def _per_period(table: ir.Table, **values: Any) -> ir.Table:
    """`_by_period` with `values` given as functions of the table."""
    return _by_period(table, **{name: make(table) for name, make in values.items()})


class IbisEngine:
    """Aggregates of one window over an Ibis backend (see `base.StatsEngine`)."""

    def __init__(
        self, name: str, backend: Any, turns: ir.Table, repeat: ir.Table | None, window: Window, repeat_us: int
    ) -> None:
        self.name = name
        self.repeat_us = repeat_us
        self.backend = backend
        self.window = window
        self.turns = self._prepare(turns)
        self.repeat = repeat

    @staticmethod
    def _prepare(turns: ir.Table) -> ir.Table:
        day = turns[DAY].cast("date")
        return turns.select(*COLUMNS, **{DAY: day})

    def _execute(self, expr: ir.Table) -> pd.DataFrame:
        return self.backend.execute(expr)

    def _conversations(self) -> ir.Table:
        t = self.turns
        status = t.status
        sent = ~(status == "not_sent").fill_null(False)
        bot_owned = ~status.isin(["silenced", "not_sent"]).fill_null(False)
        answered = (status == "ok").fill_null(False)
        hit = answered & ~t.fallback.fill_null(False)
        handed = t.handoff_queue.notnull() | (t.state == "handed_off").fill_null(False)
        timed = answered & t.latency_ms.notnull()
        # Grouped by day only (the week is a function of it): fewer keys, a cheaper hash aggregate.
        conv = t.group_by(["conversation_id", DAY]).aggregate(
            handed=_int(handed).max(),
            last_awaiting=_int(t.awaiting_reply.fill_null(False)).argmax(t.turn_index, where=bot_owned),
            messages=t.n_bot_messages.cast("int64").fill_null(0).sum(),
            customer_turns=_int(sent).sum(),
            cov_y=_int(hit).sum(),
            cov_m=_int(answered).sum(),
            latency_n=_int(timed).sum(),
        )
        return conv.mutate(
            abandoned=_int((conv.handed == 0) & (conv.last_awaiting == 1).fill_null(False)),
            week=conv[DAY].truncate("W"),
        )

    def conversation_sums(self) -> pd.DataFrame:
        c = _per_period(
            self._conversations(),
            handed=lambda c: c.handed,
            abandoned=lambda c: c.abandoned,
            messages=lambda c: c.messages,
            customer_turns=lambda c: c.customer_turns,
            y=lambda c: c.cov_y,
            m=lambda c: c.cov_m,
            latency_n=lambda c: c.latency_n,
        )
        expr = c.group_by([PERIOD, START]).aggregate(
            conversations=c.count(),
            handed_off=c.handed.sum(),
            abandoned=c.abandoned.sum(),
            messages=c.messages.sum(),
            messages_sq=(c.messages * c.messages).sum(),
            customer_turns=c.customer_turns.sum(),
            customer_turns_sq=(c.customer_turns * c.customer_turns).sum(),
            cov_clusters=_int(c.m > 0).sum(),
            cov_hits=c.y.sum(),
            cov_total=c.m.sum(),
            cov_hits_sq=(c.y * c.y).sum(),
            cov_total_sq=(c.m * c.m).sum(),
            cov_cross=(c.y * c.m).sum(),
            cov_miss_clusters=_int(c.y < c.m).sum(),
            cov_hit_clusters=_int(c.y > 0).sum(),
            latency_n=c.latency_n.sum(),
        )
        return self._execute(expr)

    def handoff_breakdowns(self) -> pd.DataFrame:
        import ibis

        t = self.turns
        parts = []
        for prefix, column in (("queue=", t.handoff_queue), ("rule=", t.handoff_rule)):
            found = t.filter(column.notnull()).select("conversation_id", DAY, value=column).distinct()
            found = found.mutate(week=found[DAY].truncate("W"))
            parts.append(_per_period(found, **{BREAKDOWN: lambda f, p=prefix: ibis.literal(p) + f.value}))
        union = ibis.union(*parts, distinct=False)
        return self._execute(union.group_by([PERIOD, START, BREAKDOWN]).aggregate(conversations=union.count()))

    def repeat_sums(self) -> pd.DataFrame:
        if self.repeat is None:
            return pd.DataFrame(columns=[PERIOD, START, "eligible", "hits"])
        import ibis

        conv = self.repeat
        window = ibis.window(group_by=conv.customer, order_by=[conv.start, conv.conversation_id])
        conv = conv.mutate(next_start=conv.start.lead().over(window))
        conv = self._in_window(conv)
        eligible = conv.eligible
        hit = eligible & (conv.next_start <= conv.start + ibis.interval(microseconds=self.repeat_us)).fill_null(False)
        rows = _by_period(conv, eligible=_int(eligible), hit=_int(hit))
        return self._execute(
            rows.group_by([PERIOD, START]).aggregate(eligible=rows.eligible.sum(), hits=rows.hit.sum())
        )

    def _in_window(self, conv: ir.Table) -> ir.Table:
        day = conv[DAY]
        if self.window.first is not None:
            conv = conv.filter(day >= self.window.first)
        if self.window.last is not None:
            conv = conv.filter(day <= self.window.last)
        return conv

    def _latency_by_day(self) -> ir.Table:
        t = self.turns
        timed = t.filter((t.status == "ok") & t.latency_ms.notnull())
        return timed.select("conversation_id", DAY, latency=timed.latency_ms.cast("float64"))

    def order_statistics(self, ranks: pd.DataFrame) -> pd.DataFrame:
        import ibis

        lat = self._latency_by_day()
        counts = lat.group_by([DAY, "latency"]).aggregate(count=lat.count())
        counts = counts.mutate(week=counts[DAY].truncate("W"))
        rows = _per_period(counts, latency=lambda c: c.latency, count=lambda c: c["count"])
        per = rows.group_by([PERIOD, START, "latency"]).aggregate(count=rows["count"].sum())
        cumulative = ibis.window(group_by=[per[PERIOD], per[START]], order_by=per.latency, rows=(None, 0))
        per = per.mutate(cum=per["count"].sum().over(cumulative))
        wanted = ibis.memtable(
            ranks[[PERIOD, START, KEY, "rank"]],
            schema={PERIOD: "string", START: "date", KEY: "string", "rank": "int64"},
        )
        joined = per.join(wanted, [PERIOD, START])
        picked = joined.filter(joined.cum >= joined["rank"])
        return self._execute(picked.group_by([PERIOD, START, KEY]).aggregate(value=picked.latency.min()))

    def below_sums(self, thresholds: pd.DataFrame) -> pd.DataFrame:
        import ibis

        lat = self._latency_by_day()
        lat = lat.mutate(week=lat[DAY].truncate("W"))
        keys = sorted(thresholds[KEY].unique())
        columns: dict[str, Any] = {}
        joined = lat
        for kind, column in (("all", None), ("day", DAY), ("week", "week")):
            part = thresholds[thresholds[PERIOD] == kind].pivot(index=START, columns=KEY, values="threshold")
            part = part.reindex(columns=keys).rename(columns=lambda k, kind=kind: f"t_{kind}_{k}").reset_index()
            schema = {START: "date", **{f"t_{kind}_{k}": "float64" for k in keys}}
            table = ibis.memtable(part, schema=schema)
            if column is None:
                joined = joined.cross_join(table.drop(START))
            else:
                joined = joined.left_join(table, joined[column] == table[START]).drop(f"{START}")
        for kind in ("all", "day", "week"):
            for k in keys:
                columns[f"y_{kind}_{k}"] = _int((joined.latency <= joined[f"t_{kind}_{k}"]).fill_null(False)).sum()
        conv = joined.group_by(["conversation_id", DAY]).aggregate(m=joined.count(), **columns)
        conv = conv.mutate(week=conv[DAY].truncate("W"))
        parts = []
        for kind in ("all", "day", "week"):
            start = {"all": ibis.literal(ALL_START, type="date"), "day": conv[DAY], "week": conv["week"]}[kind]
            for k in keys:
                parts.append(
                    conv.select(
                        **{
                            PERIOD: ibis.literal(kind, type="string"),
                            START: start,
                            KEY: ibis.literal(k, type="string"),
                        },
                        y=conv[f"y_{kind}_{k}"],
                        m=conv.m,
                    )
                )
        c = ibis.union(*parts, distinct=False)
        expr = c.group_by([PERIOD, START, KEY]).aggregate(
            clusters=c.count(),
            hits=c.y.sum(),
            total=c.m.sum(),
            hits_sq=(c.y * c.y).sum(),
            total_sq=(c.m * c.m).sum(),
            cross=(c.y * c.m).sum(),
            miss_clusters=_int(c.y < c.m).sum(),
            hit_clusters=_int(c.y > 0).sum(),
        )
        return self._execute(expr)[[PERIOD, START, KEY, *CLUSTER_SUMS]]


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
    turns = load(store.files(window), [*COLUMNS, DAY])
    repeat = None
    if options.customers_identified:
        files = [f for f in repeat_files(store, window, options) if f not in set(store.files(window))]
        wide = load(store.files(window) + files, ["conversation_id", "customer", "conversation_start", DAY])
        repeat = _repeat_table(wide, options)
    return IbisEngine(name, backend, turns, repeat, window, _micros(options.repeat_contact))


def duckdb_engine(store: ProductionStore, window: Window, options: ProductionKpiOptions) -> IbisEngine:
    """An engine over an in-process DuckDB (out of core: it spills to disk past its memory limit)."""
    import ibis

    backend = ibis.duckdb.connect()
    backend.raw_sql("SET TimeZone = 'UTC'")

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
