"""Why conversations went to a human: the handed-off conversations of a production window broken down by the rule
that fired, the queue, the topic the customer was on and the wording of what they last said, with 95% intervals and
a trend per month and quarter. It answers the standard's "analyse the reasons for transfers to human channels at
least quarterly" (`../shared/kpis.md`).

Definitions (one handed-off conversation counts once in every breakdown):
- handed off: a turn carries a `handoff_queue`, or a `handed_off` state on a turn that is not silenced (as
  `harness.scoring.metrics.core.build_core`); the first such turn is the handoff turn;
- rule / queue: the handoff turn's `handoff_rule` / `handoff_queue` (`(unknown)` when the log does not say);
- topic intent: the bot's intent on the last customer turn up to and including the handoff turn that it answered
  (status `ok`) without falling back, whose intent is a topic: not a handoff request (`TransferOptions.
  handoff_intents`: "get me a human" says nothing about why) and not in `not_topics` (fallback, out of scope,
  smalltalk); `(no topic)` when there is none;
- reason turn: the last customer turn up to and including the handoff turn whose intent is not a handoff request
  (the handoff turn itself when every one is); its masked text is what the clusters group, with the trainer's
  mining (`harness.trainer.mining.cluster_turns`: MiniLM embeddings, agglomerative clustering on cosine distance).

Shares are of the handed-off conversations (the trend's handoff rate is of all conversations), each with the
conversation-proportion interval of the KPIs (`harness.scoring.metrics.intervals.modified_wilson`: Wilson's score
interval, with the exact Poisson bound next to 0 and 1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import pandas as pd

from harness.project.intents import Catalog, IntentKind
from harness.records.production import ProductionStore, Window
from harness.scoring.metrics.intervals import modified_wilson
from harness.trainer.mining import cluster_turns, top_terms

DEFAULT_HANDOFF_INTENTS = ("request_human", "human_handoff")
"""Intents that ask for a person without saying why: `request_human` is the reference bot's (intents/escalation.yml,
bot/domain/intents.yml), `human_handoff` the usual name in Rasa's examples."""
DEFAULT_NOT_TOPICS = ("nlu_fallback", "out_of_scope")
"""Intents that are never a topic, whatever the catalog says (the catalog adds its smalltalk and form-input
intents: `not_topics_of`)."""
NOT_TOPIC_KINDS = (IntentKind.smalltalk, IntentKind.form_input, IntentKind.out_of_scope)
NO_TOPIC = "(no topic)"
UNKNOWN = "(unknown)"
UNCLUSTERED = "(unclustered)"
COLUMNS = ["conversation_id", "turn_index", "text", "intent", "fallback", "status", "handoff_queue"]
COLUMNS += ["handoff_rule", "state"]
"""The store columns the report reads (plus `day`)."""


@dataclass(frozen=True)
class TransferOptions:
    """How the report reads topics and clusters wording."""

    handoff_intents: tuple[str, ...] = DEFAULT_HANDOFF_INTENTS
    """Intents that ask for a human without a reason: never a topic, and skipped when picking the reason turn."""
    not_topics: tuple[str, ...] = DEFAULT_NOT_TOPICS
    """Intents that are never a topic (fallback, out of scope, smalltalk)."""
    distance_threshold: float = 0.45
    """Cosine distance under which reason turns join one cluster (as `harness trainer mine`)."""
    min_size: int = 2
    """Smallest cluster reported (distinct texts); smaller groups count as `(unclustered)`."""
    representatives: int = 3
    """Representative (masked) texts shown per cluster, closest to its centre first."""
    max_clustered: int = 5000
    """At most this many handed-off conversations are clustered (agglomerative clustering needs memory quadratic
    in the texts): beyond it, a seeded random sample of them, and the cluster shares are of the sample."""
    seed: int = 20261122


def not_topics_of(catalog: Catalog | None, extra: tuple[str, ...] = DEFAULT_NOT_TOPICS) -> tuple[str, ...]:
    """`extra` plus the catalog's intents of kind smalltalk, form_input and out_of_scope (greetings, thanks, answers
    to a form: not why a customer wanted a person)."""
    names = list(extra)
    if catalog is not None:
        names += [name for name, intent in catalog.intents.items() if intent.kind in NOT_TOPIC_KINDS]
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class Share:
    """`count` of `n` handed-off conversations (or conversations, for the handoff rate) with value and interval."""

    key: str
    count: int
    n: int
    value: float | None
    low: float | None
    high: float | None


def share(key: str, count: int, n: int) -> Share:
    interval = modified_wilson(count, n)
    return Share(key, int(count), int(n), count / n if n else None, *(interval or (None, None)))


def shares(values: pd.Series) -> list[Share]:
    """Count and share of each value of `values` (one per conversation), most frequent first (ties by name)."""
    counts = values.astype("string").fillna(UNKNOWN).value_counts()
    n = int(counts.sum())
    ordered = sorted(counts.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))
    return [share(str(k), int(v), n) for k, v in ordered]


@dataclass(frozen=True)
class ReasonCluster:
    """A group of similar reason turns."""

    name: str
    """A name from its most frequent content words (as mining's proposed intent name)."""
    share: Share
    """Conversations whose reason turn is in the cluster, of the clustered handed-off conversations."""
    distinct_texts: int
    top_terms: list[str]
    representatives: list[str]
    """Masked texts closest to the cluster's centre, most representative first."""
    nearest_intent: str | None
    nearest_similarity: float


@dataclass(frozen=True)
class Period:
    """One month or quarter of the trend."""

    period: str
    """`YYYY-MM` or `YYYY-Qn`, by the day conversations started."""
    conversations: int
    handoff_rate: Share
    """Handed-off conversations of all the period's conversations."""
    by_rule: list[Share]
    by_queue: list[Share]
    by_topic: list[Share]
    by_cluster: list[Share]


@dataclass(frozen=True)
class TransferReport:
    """The transfer-reasons report of a window (see the module docstring)."""

    store: str
    window: str
    first_day: date | None
    last_day: date | None
    conversations: int
    handed_off: Share
    """Handed-off conversations of all the window's conversations."""
    by_rule: list[Share]
    by_queue: list[Share]
    by_topic: list[Share]
    clusters: list[ReasonCluster]
    by_cluster: list[Share]
    """Every cluster's share plus `(unclustered)`, of the clustered conversations."""
    clustered: int
    """Handed-off conversations clustered (all of them, or a sample: `TransferOptions.max_clustered`)."""
    trend: dict[str, list[Period]] = field(default_factory=dict)
    """`month` and/or `quarter` -> one Period each, when the data spans more than one."""
    options: TransferOptions = TransferOptions()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["first_day"] = str(self.first_day) if self.first_day else None
        data["last_day"] = str(self.last_day) if self.last_day else None
        data["options"] = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.options).items()}
        return data


def handoffs(frame: pd.DataFrame, options: TransferOptions = TransferOptions()) -> pd.DataFrame:
    """One row per handed-off conversation of production rows `frame` (COLUMNS and `day`): `conversation_id`,
    `day`, `rule`, `queue`, `topic`, `text` (of the reason turn; see the module docstring). Pure."""
    empty = pd.DataFrame(columns=["conversation_id", "day", "rule", "queue", "topic", "text"])
    if frame.empty:
        return empty
    t = frame.sort_values(["conversation_id", "turn_index"], kind="stable").reset_index(drop=True)
    status = t["status"].astype("string")
    silenced = status.eq("silenced").fillna(False).to_numpy(bool)
    handed = t["handoff_queue"].notna().to_numpy(bool) | (
        t["state"].astype("string").eq("handed_off").fillna(False).to_numpy(bool) & ~silenced
    )
    if not handed.any():
        return empty
    first = t[handed].drop_duplicates("conversation_id", keep="first")
    at = first.set_index("conversation_id")["turn_index"]
    limit = t["conversation_id"].map(at)
    before = t[limit.notna().to_numpy(bool) & (t["turn_index"] <= limit).fillna(False).to_numpy(bool)]
    before = before[~before["status"].astype("string").isin(["silenced", "not_sent"]).fillna(False).to_numpy(bool)]
    intent = before["intent"].astype("string")
    asks_human = intent.isin(list(options.handoff_intents)).fillna(False).to_numpy(bool)
    topical = (
        before["status"].astype("string").eq("ok").fillna(False).to_numpy(bool)
        & ~before["fallback"].fillna(False).to_numpy(bool)
        & intent.notna().to_numpy(bool)
        & ~asks_human
        & ~intent.isin(list(options.not_topics)).fillna(False).to_numpy(bool)
    )
    topic = before[topical].drop_duplicates("conversation_id", keep="last").set_index("conversation_id")["intent"]
    reason = before[~asks_human].drop_duplicates("conversation_id", keep="last").set_index("conversation_id")["text"]
    text = first.set_index("conversation_id")["text"].astype("string")
    text.update(reason.astype("string"))
    ids = first["conversation_id"]
    return pd.DataFrame(
        {
            "conversation_id": ids.to_numpy(),
            "day": first["day"].astype("string").to_numpy(),
            "rule": first["handoff_rule"].astype("string").fillna(UNKNOWN).to_numpy(),
            "queue": first["handoff_queue"].astype("string").fillna(UNKNOWN).to_numpy(),
            "topic": ids.map(topic).astype("string").fillna(NO_TOPIC).to_numpy(),
            "text": ids.map(text).astype("string").to_numpy(),
        }
    )


def _periods(days: pd.Series, kind: str) -> pd.Series:
    stamps = pd.to_datetime(days.astype(str))
    if kind == "month":
        return stamps.dt.strftime("%Y-%m")
    return stamps.dt.year.astype(str) + "-Q" + stamps.dt.quarter.astype(str)


def _all_periods(first: date, last: date, kind: str) -> list[str]:
    months = pd.period_range(first, last, freq="M" if kind == "month" else "Q")
    return [str(p).replace("Q", "-Q") if kind == "quarter" else str(p) for p in months]


def analyse(
    frame: pd.DataFrame,
    catalog: Catalog | None,
    options: TransferOptions = TransferOptions(),
    *,
    store: str = "",
    window: Window | None = None,
) -> TransferReport:
    """The report from production rows `frame` (COLUMNS and `day`, every turn of the window's conversations);
    `catalog` names the closest intent of each cluster (None: not named). Embeds texts (harness.embeddings)."""
    conversations = frame.drop_duplicates("conversation_id")[["conversation_id", "day"]]
    n = len(conversations)
    rows = handoffs(frame, options)
    days = sorted(date.fromisoformat(str(d)) for d in conversations["day"].unique())
    sample = rows
    if len(rows) > options.max_clustered:
        sample = rows.sample(n=options.max_clustered, random_state=options.seed).sort_values("conversation_id")
    texts = sample[sample["text"].notna() & (sample["text"].str.strip() != "")]
    found = cluster_turns(texts, catalog, distance_threshold=options.distance_threshold, min_size=options.min_size)
    cluster_of = pd.Series(UNCLUSTERED, index=sample["conversation_id"].to_numpy(), dtype="string")
    clusters = []
    for c in found:
        cluster_of.loc[c.conversations] = c.name
        clusters.append(
            ReasonCluster(
                name=c.name,
                share=share(c.name, len(c.conversations), len(sample)),
                distinct_texts=len(c.texts),
                top_terms=top_terms(c.texts),
                representatives=c.texts[: options.representatives],
                nearest_intent=c.nearest_intent,
                nearest_similarity=c.nearest_similarity,
            )
        )
    sample = sample.assign(cluster=sample["conversation_id"].map(cluster_of).to_numpy())
    trend: dict[str, list[Period]] = {}
    if days:
        for kind in ("month", "quarter"):
            labels = _all_periods(days[0], days[-1], kind)
            if len(labels) < 2:
                continue
            conv_period = _periods(conversations["day"], kind)
            row_period = _periods(rows["day"], kind)
            sample_period = _periods(sample["day"], kind)
            periods = []
            for label in labels:
                in_rows = (row_period == label).to_numpy()
                total = int((conv_period == label).sum())
                periods.append(
                    Period(
                        period=label,
                        conversations=total,
                        handoff_rate=share("handed_off", int(in_rows.sum()), total),
                        by_rule=shares(rows.loc[in_rows, "rule"]),
                        by_queue=shares(rows.loc[in_rows, "queue"]),
                        by_topic=shares(rows.loc[in_rows, "topic"]),
                        by_cluster=shares(sample.loc[(sample_period == label).to_numpy(), "cluster"]),
                    )
                )
            trend[kind] = periods
    return TransferReport(
        store=store,
        window=str(window or Window()),
        first_day=days[0] if days else None,
        last_day=days[-1] if days else None,
        conversations=n,
        handed_off=share("handed_off", len(rows), n),
        by_rule=shares(rows["rule"]),
        by_queue=shares(rows["queue"]),
        by_topic=shares(rows["topic"]),
        clusters=clusters,
        by_cluster=shares(sample["cluster"]),
        clustered=len(sample),
        trend=trend,
        options=options,
    )


def transfer_reasons(
    store: ProductionStore, window: Window, catalog: Catalog | None, options: TransferOptions = TransferOptions()
) -> TransferReport:
    """The report of `window` in `store` (reads only the columns it needs: COLUMNS and `day`)."""
    frame = store.read(window, columns=COLUMNS)
    return analyse(frame, catalog, options, store=str(store.path), window=window)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _table(title: str, rows: list[Share], what: str) -> list[str]:
    lines = [f"## {title}", "", f"| {what} | conversations | share | 95% interval |", "|---|---:|---:|---|"]
    lines += [f"| {r.key} | {r.count} | {_pct(r.value)} | {_pct(r.low)} - {_pct(r.high)} |" for r in rows]
    return [*lines, ""] if rows else [f"## {title}", "", "No handed-off conversation.", ""]


def _trend_table(kind: str, periods: list[Period]) -> list[str]:
    header = "| period | conversations | handed off | handoff rate | top rule | top topic |"
    lines = [f"## Trend per {kind}", "", header, "|---|---:|---:|---:|---|---|"]
    for p in periods:
        rule = f"{p.by_rule[0].key} ({_pct(p.by_rule[0].value)})" if p.by_rule else "-"
        topic = f"{p.by_topic[0].key} ({_pct(p.by_topic[0].value)})" if p.by_topic else "-"
        lines.append(
            f"| {p.period} | {p.conversations} | {p.handoff_rate.count} | {_pct(p.handoff_rate.value)} | {rule} | "
            f"{topic} |"
        )
    lines += ["", f"Every breakdown per {kind} is in transfers.json (`trend.{kind}`).", ""]
    return lines


def markdown(report: TransferReport) -> str:
    """transfers.md: the header says which standard it answers, then every breakdown and the trend."""
    r = report
    lines = [
        f"# Reasons for transfers to a human, {r.first_day or '-'} to {r.last_day or '-'}",
        "",
        "This report answers the standard's requirement to *analyse the reasons for transfers to human channels at "
        "least quarterly and act on them* (`../shared/kpis.md`): run it at least once a quarter over the quarter "
        "(`harness logs transfers --window YYYY-MM-DD..YYYY-MM-DD`).",
        "",
        f"Store `{r.store}`, window `{r.window}`: {r.conversations} conversations, {r.handed_off.count} handed off "
        f"({_pct(r.handed_off.value)}, 95% interval {_pct(r.handed_off.low)} - {_pct(r.handed_off.high)}). Shares "
        "below are of the handed-off conversations; intervals are Wilson's (exact Poisson bound next to 0 and 1).",
        "",
    ]
    lines += _table("By rule", r.by_rule, "rule")
    lines += _table("By queue", r.by_queue, "queue")
    lines += [
        *_table("By topic intent", r.by_topic, "topic intent")[:-1],
        "",
        "The topic is the bot's last intent, up to the handoff, that names a subject: requests for a person "
        f"({', '.join(r.options.handoff_intents)}), fallbacks and smalltalk are skipped; the bot's prediction, "
        "not a reviewed label.",
        "",
    ]
    sampled = f" (a random sample of {r.clustered} of {r.handed_off.count})" if r.clustered < r.handed_off.count else ""
    lines += [
        "## By what the customer last said",
        "",
        f"The last customer turn before each handoff that was not only a request for a person, clustered by "
        f"meaning{sampled}; shares of the {r.clustered} clustered conversations.",
        "",
    ]
    for c in r.clusters:
        lines += [
            f"### `{c.name}`: {c.share.count} conversations, {_pct(c.share.value)} "
            f"({_pct(c.share.low)} - {_pct(c.share.high)})",
            "",
            f"Top terms: {', '.join(c.top_terms) or '-'}. Closest intent: `{c.nearest_intent}` "
            f"(cosine {c.nearest_similarity:.2f}). Distinct texts: {c.distinct_texts}.",
            "",
            *[f"- {t}" for t in c.representatives],
            "",
        ]
    rest = next((s for s in r.by_cluster if s.key == UNCLUSTERED), None)
    if rest is not None:
        lines += [f"Unclustered (wording shared with no other handoff): {rest.count} ({_pct(rest.value)}).", ""]
    for kind, periods in r.trend.items():
        lines += _trend_table(kind, periods)
    return "\n".join(lines)


__all__ = [
    "DEFAULT_HANDOFF_INTENTS",
    "ReasonCluster",
    "Share",
    "TransferOptions",
    "TransferReport",
    "analyse",
    "handoffs",
    "markdown",
    "not_topics_of",
    "transfer_reasons",
]
