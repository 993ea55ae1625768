"""What the production KPIs are: their options, versioned names, directions and descriptions, the turn and
conversation facts every engine derives them from, and the labelled KPIs that production logs cannot give.

The facts (the same on every engine; `ibis_engine` and `pandas_engine` each implement them):
- a turn is *sent* unless its status is `not_sent`; *bot-owned* unless it is `silenced` or `not_sent` (a turn with
  no status counts as sent and bot-owned, not answered); *answered* when its status is `ok`; a *coverage hit* when
  answered and `fallback` is not true (a null fallback is no fallback);
- a conversation (its turns grouped by `conversation_id` and the `day` it started) is *handed off* when any turn
  has a `handoff_queue` or the state `handed_off`; *abandoned* when it was not handed off and its last bot-owned
  turn (the highest `turn_index` among them) has `awaiting_reply` true;
- its period: the day it started (the store's `day` partition, UTC) and the ISO week of that day (Monday);
- repeat contact: among conversations with a customer (`customer` not null, and customers identified), one is
  *eligible* when it started at least `repeat_contact` before the newest conversation start in the whole store
  (later ones are censored: their next contact may not have been imported yet), and a *hit* when the same
  customer's next conversation (by start, then conversation id; it may lie after the window) started within
  `repeat_contact` of its start (start to start, bound included).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from harness.errors import InputError


@dataclass(frozen=True, slots=True)
class ProductionKpiOptions:
    """How the production KPIs are computed (the CLI builds it from `ProductionSettings`)."""

    repeat_contact: timedelta = timedelta(days=7)
    """A customer back within this time after a conversation's start is a repeat contact."""
    customers_identified: bool = True
    """False when the sender id does not identify a customer (`customer: none`): repeat contact is undefined."""
    confidence: float = 0.95
    """Confidence level of every interval."""

    def __post_init__(self) -> None:
        problems = []
        if self.repeat_contact <= timedelta(0):
            problems.append(f"repeat_contact {self.repeat_contact}: give a positive duration, for example 7 days")
        if not 0 < self.confidence < 1:
            problems.append(f"confidence {self.confidence}: give a level between 0 and 1, for example 0.95")
        if problems:
            raise InputError("invalid production KPI options", problems)


@dataclass(frozen=True, slots=True)
class ProductionKpiSpec:
    """A registered production KPI."""

    name: str
    """Versioned name (`<kpi>.v<version>`)."""
    higher_is_better: bool | None
    """Direction; None where neither direction is better (volumes, lengths)."""
    unit: str
    """`share`, `conversations`, `messages`, `turns` or `ms`."""
    description: str

    @property
    def version(self) -> int:
        return int(self.name.rsplit(".v", 1)[1])


PRODUCTION_KPIS: dict[str, ProductionKpiSpec] = {
    spec.name: spec
    for spec in (
        ProductionKpiSpec("conversation_count.v1", None, "conversations", "conversations started in the period"),
        ProductionKpiSpec("containment.v1", True, "share", "conversations never handed off, over conversations"),
        ProductionKpiSpec(
            "handoff_rate.v1",
            None,
            "share",
            "conversations handed off (overall, to a queue `queue=<q>`, by a rule `rule=<r>`), over conversations",
        ),
        ProductionKpiSpec(
            "coverage.v1",
            True,
            "share",
            "customer turns the bot answered without falling back, over customer turns it answered (status ok); "
            "not recognition: no label says the answer was right",
        ),
        ProductionKpiSpec(
            "abandonment.v1",
            False,
            "share",
            "conversations not handed off whose last bot-owned turn awaited the customer's reply, over conversations",
        ),
        ProductionKpiSpec(
            "repeat_contact.v1",
            False,
            "share",
            "conversations whose customer started another within the repeat-contact time (start to start), over "
            "conversations with a customer that started at least that long before the store's newest conversation",
        ),
        ProductionKpiSpec(
            "messages_per_conversation.v1", None, "messages", "bot messages per conversation (n_bot_messages summed)"
        ),
        ProductionKpiSpec(
            "customer_turns_per_conversation.v1",
            None,
            "turns",
            "customer turns per conversation (sent turns, those to a human after a handoff included)",
        ),
        ProductionKpiSpec(
            "server_latency_p50.v1",
            False,
            "ms",
            "median server-side latency of answered turns (first user event to last bot event)",
        ),
        ProductionKpiSpec(
            "server_latency_p95.v1", False, "ms", "95th percentile server-side latency of answered turns"
        ),
    )
}
"""The production KPIs, by versioned name (label-free; kept apart from the lab registry, whose KPIs read a scoring
core of replayed, labelled turns)."""

LABELLED_REASON = (
    "production logs carry no labels: review a sample (harness review load --production) for the reviewed KPIs"
)
LABELLED_KPIS = (
    "recognition_rate",
    "oos_rejection",
    "escalation_accuracy",
    "resolution_rate",
    "self_service_completion",
    "critical_error_accuracy",
)
"""Lab KPIs that need labels (or, for self_service_completion, an expected outcome): undefined in production."""

WILSON = "wilson"
CLUSTERED_WILSON = "wilson (design effect)"
T_CONVERSATIONS = "t (clustered)"
WOODRUFF = "woodruff (design effect)"

QUANTILES = {"server_latency_p50.v1": 0.5, "server_latency_p95.v1": 0.95}

ALL_START = date(1970, 1, 1)
"""The period start engines use for the period `all` (a real date keeps joins on the key simple); None outside."""

COLUMNS = (
    "conversation_id",
    "turn_index",
    "status",
    "fallback",
    "handoff_queue",
    "handoff_rule",
    "state",
    "awaiting_reply",
    "n_bot_messages",
    "latency_ms",
    "customer",
    "conversation_start",
)
"""The stored columns the KPIs read (plus the `day` partition)."""

CONVERSATION_SUMS = (
    "conversations",
    "handed_off",
    "abandoned",
    "messages",
    "messages_sq",
    "customer_turns",
    "customer_turns_sq",
    "cov_clusters",
    "cov_hits",
    "cov_total",
    "cov_hits_sq",
    "cov_total_sq",
    "cov_cross",
    "cov_miss_clusters",
    "cov_hit_clusters",
    "latency_n",
)
"""Sufficient statistics per period that engines return (`conversation_sums`): counts and sums over the
period's conversations; `cov_*`: y = coverage hits and m = answered turns per conversation, summed (clusters:
conversations with m > 0; miss/hit clusters: with y < m / y > 0)."""

CLUSTER_SUMS = ("clusters", "hits", "total", "hits_sq", "total_sq", "cross", "miss_clusters", "hit_clusters")
"""Sufficient statistics of a clustered proportion (`below_sums`), as the `cov_*` ones."""
