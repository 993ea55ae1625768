"""The production KPIs' aggregates in memory with pandas: written apart from the Ibis expressions (the same
definitions, `definitions`), so the two check each other. For windows that fit in memory."""

from __future__ import annotations

from datetime import date, timedelta

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

KINDS = ("all", "day", "week")


def _days(values: pd.Series) -> pd.Series:
    return pd.Series([date.fromisoformat(str(v)) for v in values], index=values.index, dtype=object)


def _start(frame: pd.DataFrame, kind: str) -> pd.Series:
    if kind == "all":
        return pd.Series([ALL_START] * len(frame), index=frame.index, dtype=object)
    if kind == "day":
        return frame[DAY]
    return frame[DAY].map(lambda d: d - timedelta(days=d.weekday()))


def _flag(series: pd.Series) -> np.ndarray:
    return series.fillna(False).to_numpy(dtype=bool)


class PandasEngine:
    """Aggregates of one window, in memory (see `base.StatsEngine`)."""

    name = "pandas"

    def __init__(self, store: ProductionStore, window: Window, options: ProductionKpiOptions) -> None:
        self.store = store
        self.window = window
        self.options = options
        frame = store.read(window, columns=list(COLUMNS))
        frame[DAY] = _days(frame[DAY])
        status = frame["status"].astype(object)
        frame["sent"] = ~_flag(status == "not_sent")
        frame["bot_owned"] = ~_flag(status.isin(["silenced", "not_sent"]) & status.notna())
        frame["answered"] = _flag(status == "ok")
        frame["hit"] = frame["answered"] & ~_flag(frame["fallback"])
        frame["handed"] = frame["handoff_queue"].notna().to_numpy() | _flag(frame["state"] == "handed_off")
        self.turns = frame

    def _conversations(self) -> pd.DataFrame:
        t = self.turns
        keys = ["conversation_id", DAY]
        grouped = t.groupby(keys, sort=False)
        conv = pd.DataFrame(
            {
                "handed": grouped["handed"].any(),
                "messages": grouped["n_bot_messages"].sum().astype(np.int64),
                "customer_turns": grouped["sent"].sum().astype(np.int64),
                "y": grouped["hit"].sum().astype(np.int64),
                "m": grouped["answered"].sum().astype(np.int64),
                "latency_n": (t["answered"] & t["latency_ms"].notna()).groupby([t[k] for k in keys]).sum(),
            }
        )
        # The row of the highest turn_index (GroupBy.last would skip a null awaiting_reply and take an earlier one).
        owned = t[t["bot_owned"]].sort_values("turn_index", kind="stable")
        last = owned.drop_duplicates(keys, keep="last").set_index(keys)["awaiting_reply"].fillna(False).astype(bool)
        conv["awaiting"] = last.reindex(conv.index, fill_value=False).astype(bool)
        conv["abandoned"] = ~conv["handed"] & conv["awaiting"]
        return conv.reset_index()

    def conversation_sums(self) -> pd.DataFrame:
        conv = self._conversations()
        rows = []
        for kind in KINDS:
            for start, c in conv.groupby(_start(conv, kind), sort=True):
                y, m = c["y"].to_numpy(), c["m"].to_numpy()
                msg, turns = c["messages"].to_numpy(), c["customer_turns"].to_numpy()
                values = (
                    len(c),
                    c["handed"].sum(),
                    c["abandoned"].sum(),
                    msg.sum(),
                    (msg * msg).sum(),
                    turns.sum(),
                    (turns * turns).sum(),
                    (m > 0).sum(),
                    y.sum(),
                    m.sum(),
                    (y * y).sum(),
                    (m * m).sum(),
                    (y * m).sum(),
                    (y < m).sum(),
                    (y > 0).sum(),
                    c["latency_n"].sum(),
                )
                rows.append(
                    {PERIOD: kind, START: start, **{k: int(v) for k, v in zip(CONVERSATION_SUMS, values, strict=True)}}
                )
        return pd.DataFrame(rows, columns=[PERIOD, START, *CONVERSATION_SUMS])

    def latency_counts(self) -> pd.DataFrame:
        return self.conversation_sums()[[PERIOD, START, "latency_n"]]

    def handoff_breakdowns(self) -> pd.DataFrame:
        t = self.turns
        rows = []
        for prefix, column in (("queue=", "handoff_queue"), ("rule=", "handoff_rule")):
            found = t.loc[t[column].notna(), ["conversation_id", DAY, column]].drop_duplicates()
            for kind in KINDS:
                counted = found.groupby([_start(found, kind), found[column]]).size()
                for (start, value), n in counted.items():
                    rows.append({PERIOD: kind, START: start, BREAKDOWN: f"{prefix}{value}", "conversations": int(n)})
        return pd.DataFrame(rows, columns=[PERIOD, START, BREAKDOWN, "conversations"])

    def repeat_sums(self) -> pd.DataFrame:
        columns = [PERIOD, START, "eligible", "hits"]
        if not self.options.customers_identified:
            return pd.DataFrame(columns=columns)
        wide = self.store.read(
            Window(self.window.first, None), columns=["conversation_id", "customer", "conversation_start"]
        )
        newest = wide["conversation_start"].max()
        wide[DAY] = _days(wide[DAY])
        known = wide[wide["customer"].notna()]
        conv = known.groupby(["conversation_id", "customer"], as_index=False).agg(
            start=("conversation_start", "min"), day=(DAY, "min")
        )
        conv = conv.sort_values(["customer", "start", "conversation_id"], kind="stable")
        conv["next_start"] = conv.groupby("customer")["start"].shift(-1)
        conv["eligible"] = conv["start"] <= newest - self.options.repeat_contact
        gap = conv["next_start"] - conv["start"]
        conv["hit"] = conv["eligible"] & (gap <= self.options.repeat_contact).fillna(False).astype(bool)
        if conv.empty:
            return pd.DataFrame(columns=columns)
        inside = conv[np.array([self.window.contains(d) for d in conv[DAY]], dtype=bool)]
        rows = []
        for kind in KINDS:
            for start, c in inside.groupby(_start(inside, kind), sort=True):
                rows.append(
                    {PERIOD: kind, START: start, "eligible": int(c["eligible"].sum()), "hits": int(c["hit"].sum())}
                )
        return pd.DataFrame(rows, columns=columns)

    def _latencies(self) -> pd.DataFrame:
        t = self.turns
        timed = t[t["answered"] & t["latency_ms"].notna()]
        return pd.DataFrame(
            {
                "conversation_id": timed["conversation_id"],
                DAY: timed[DAY],
                "latency": timed["latency_ms"].astype(np.float64),
            }
        )

    def order_statistics(self, ranks: pd.DataFrame) -> pd.DataFrame:
        lat = self._latencies()
        rows = []
        for kind in KINDS:
            wanted = ranks[ranks[PERIOD] == kind]
            if wanted.empty:
                continue
            ordered = {start: np.sort(part["latency"].to_numpy()) for start, part in lat.groupby(_start(lat, kind))}
            for row in wanted.itertuples(index=False):
                values = ordered[getattr(row, START)]
                rank = int(row.rank)
                rows.append(
                    {PERIOD: kind, START: getattr(row, START), KEY: getattr(row, KEY), "value": float(values[rank - 1])}
                )
        return pd.DataFrame(rows, columns=[PERIOD, START, KEY, "value"])

    def below_sums(self, thresholds: pd.DataFrame) -> pd.DataFrame:
        lat = self._latencies()
        rows = []
        for kind in KINDS:
            starts = _start(lat, kind)
            for row in thresholds[thresholds[PERIOD] == kind].itertuples(index=False):
                part = lat[(starts == getattr(row, START)).to_numpy()]
                below = part["latency"] <= float(row.threshold)
                per = pd.DataFrame(
                    {"y": below.groupby(part["conversation_id"]).sum(), "m": part.groupby("conversation_id").size()}
                )
                y, m = per["y"].to_numpy(dtype=np.int64), per["m"].to_numpy(dtype=np.int64)
                values = (
                    len(per),
                    y.sum(),
                    m.sum(),
                    (y * y).sum(),
                    (m * m).sum(),
                    (y * m).sum(),
                    (y < m).sum(),
                    (y > 0).sum(),
                )
                rows.append(
                    {
                        PERIOD: kind,
                        START: getattr(row, START),
                        KEY: getattr(row, KEY),
                        **{k: int(v) for k, v in zip(CLUSTER_SUMS, values, strict=True)},
                    }
                )
        return pd.DataFrame(rows, columns=[PERIOD, START, KEY, *CLUSTER_SUMS])
