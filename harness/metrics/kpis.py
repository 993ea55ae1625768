"""The digital-assistant KPIs, exactly as the project's kpis.md (v1) defines them.

Each function is pure: `(core) -> (value, n, interval, interval_method)`. Undefined is None, never 0.
"""

from __future__ import annotations

import numpy as np

from harness.metrics.core import FALLBACK, OUT_OF_SCOPE, ScoringCore
from harness.metrics.intervals import wilson
from harness.metrics.registry import register
from harness.records import TurnStatus

WILSON = "wilson"
BOOTSTRAP = "conversation bootstrap"


def _proportion(successes: np.ndarray, core: ScoringCore) -> tuple:
    n = int(successes.size)
    k = int(successes.sum())
    return (k / n if n else None), n, wilson(k, n, core.options.confidence), WILSON


def _turn_rate(hit: np.ndarray, eligible: np.ndarray, core: ScoringCore) -> tuple:
    """sum(hit)/sum(eligible) over turns, with a bootstrap over conversations."""
    conv = core.turns["conv"].to_numpy()
    n = int(eligible.sum())
    if n == 0:
        return None, 0, None, BOOTSTRAP
    size = core.n_conversations
    numerator = np.bincount(conv, weights=(hit & eligible).astype(np.float64), minlength=size)
    denominator = np.bincount(conv, weights=eligible.astype(np.float64), minlength=size)
    return float(numerator.sum() / n), n, core.bootstrap.ratio(numerator, denominator), BOOTSTRAP


def _mean_per_conversation(values: np.ndarray, core: ScoringCore) -> tuple:
    n = core.n_conversations
    if n == 0:
        return None, 0, None, BOOTSTRAP
    return float(values.mean()), n, core.bootstrap.ratio(values.astype(np.float64), np.ones(n)), BOOTSTRAP


@register(
    "conversation_count",
    1,
    description="conversations the bot held",
    higher_is_better=None,
    value_range=(0, None),
    unit="conversations",
)
def conversation_count(core: ScoringCore) -> tuple:
    return float(core.n_conversations), core.n_conversations, None, None


@register(
    "self_service_completion",
    1,
    higher_is_better=True,
    description="conversations that reached a completed end with no handoff, over conversations started",
)
def self_service_completion(core: ScoringCore) -> tuple:
    return _proportion(core.conversations["completed"].to_numpy(), core)


@register("containment", 1, higher_is_better=True, description="conversations with no handoff, over conversations")
def containment(core: ScoringCore) -> tuple:
    return _proportion(~core.conversations["handed_off"].to_numpy(), core)


@register(
    "recognition_rate",
    1,
    higher_is_better=True,
    description="in-scope turns sent whose intent matched the label and were answered without fallback",
)
def recognition_rate(core: ScoringCore) -> tuple:
    t = core.turns
    expected = t["expected_intent"]
    eligible = (t["sent"] & expected.notna() & (expected != OUT_OF_SCOPE)).to_numpy(dtype=bool)
    hit = (
        ((t["intent"] == expected) & ~t["fallback"].fillna(False).astype(bool) & (t["status"] == TurnStatus.ok.value))
        .fillna(False)
        .to_numpy(dtype=bool)
    )
    return _turn_rate(hit, eligible, core)


@register(
    "oos_rejection",
    1,
    higher_is_better=True,
    description="out-of-scope turns sent that the bot did not answer as if understood (1 - false acceptance)",
)
def oos_rejection(core: ScoringCore) -> tuple:
    t = core.turns
    eligible = (t["sent"] & (t["expected_intent"] == OUT_OF_SCOPE)).fillna(False).to_numpy(dtype=bool)
    accepted = (
        (t["status"] == TurnStatus.ok.value)
        & ~t["fallback"].fillna(False).astype(bool)
        & t["intent"].notna()
        & ~t["intent"].isin([OUT_OF_SCOPE, FALLBACK])
        & t["handoff_queue"].isna()
    )
    return _turn_rate(~accepted.fillna(False).to_numpy(dtype=bool), eligible, core)


@register(
    "escalation_accuracy",
    1,
    higher_is_better=True,
    description="handed-off conversations sent to the expected queue, over conversations handed off",
)
def escalation_accuracy(core: ScoringCore) -> tuple:
    c = core.conversations[core.conversations["handed_off"]]
    return _proportion((c["actual_queue"] == c["expected_queue"]).fillna(False).to_numpy(dtype=bool), core)


@register(
    "resolution_rate",
    1,
    higher_is_better=True,
    description="conversations whose labelled goal the bot achieved itself (expected self-service outcome "
    "reached, checks passed), over conversations handled",
)
def resolution_rate(core: ScoringCore) -> tuple:
    return _proportion(core.conversations["resolved"].to_numpy(dtype=bool), core)


@register(
    "messages_per_conversation",
    1,
    higher_is_better=None,
    value_range=(0, None),
    unit="messages",
    description="bot messages per conversation handled",
)
def messages_per_conversation(core: ScoringCore) -> tuple:
    return _mean_per_conversation(core.conversations["bot_messages"].to_numpy(), core)


@register(
    "customer_turns_per_conversation",
    1,
    higher_is_better=None,
    value_range=(0, None),
    unit="turns",
    description="customer turns sent per conversation handled",
)
def customer_turns_per_conversation(core: ScoringCore) -> tuple:
    return _mean_per_conversation(core.conversations["customer_turns"].to_numpy(), core)


@register(
    "availability",
    1,
    higher_is_better=True,
    description="turns answered without channel error, timeout or empty reply, over turns sent",
)
def availability(core: ScoringCore) -> tuple:
    t = core.turns
    return _turn_rate(t["answered"].to_numpy(dtype=bool), t["sent"].to_numpy(dtype=bool), core)


def _latency(core: ScoringCore, q: float) -> tuple:
    values, intervals = core.latency()
    if values.size == 0:
        return None, 0, None, BOOTSTRAP
    return float(np.quantile(values, q, method="inverted_cdf")), int(values.size), intervals[q], BOOTSTRAP


@register(
    "latency_p50",
    1,
    higher_is_better=False,
    value_range=(0, None),
    unit="ms",
    description="median per-turn latency through the channel, answered turns",
)
def latency_p50(core: ScoringCore) -> tuple:
    return _latency(core, 0.50)


@register(
    "latency_p95",
    1,
    higher_is_better=False,
    value_range=(0, None),
    unit="ms",
    description="95th percentile per-turn latency through the channel, answered turns",
)
def latency_p95(core: ScoringCore) -> tuple:
    return _latency(core, 0.95)
