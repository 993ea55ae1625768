"""The digital-assistant KPIs, exactly as the project's kpis.md (v1) defines them.

Ratio KPIs are pure functions `(core) -> Parts`: their numerator and denominator per conversation, from which
the registry derives value, support and interval (and the gate its paired tests). Undefined is None, never 0.
"""

from __future__ import annotations

import numpy as np

from harness.metrics.core import FALLBACK, OUT_OF_SCOPE, ScoringCore
from harness.metrics.registry import BOOTSTRAP, Parts, register, register_ratio
from harness.records import TurnStatus


def _per_conversation(core: ScoringCore, flags: np.ndarray) -> np.ndarray:
    return np.bincount(core.turns["conv"].to_numpy(), weights=flags.astype(np.float64), minlength=core.n_conversations)


def _turn_parts(core: ScoringCore, hit: np.ndarray, eligible: np.ndarray) -> Parts:
    """Turn-level rate: hits among eligible turns, summed per conversation (bootstrap over conversations)."""
    return Parts(_per_conversation(core, hit & eligible), _per_conversation(core, eligible), False)


def _conversations(core: ScoringCore, flags: np.ndarray, among: np.ndarray | None = None) -> Parts:
    """Proportion of conversations (Wilson): `flags` among `among` (all conversations by default)."""
    among = np.ones(core.n_conversations, dtype=bool) if among is None else among
    return Parts((flags & among).astype(np.float64), among.astype(np.float64), True)


def _mean(core: ScoringCore, values: np.ndarray) -> Parts:
    return Parts(values.astype(np.float64), np.ones(core.n_conversations), False)


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


@register_ratio(
    "self_service_completion",
    1,
    higher_is_better=True,
    description="conversations that reached a completed end with no handoff, over conversations started",
)
def self_service_completion(core: ScoringCore) -> Parts:
    return _conversations(core, core.conversations["completed"].to_numpy(dtype=bool))


@register_ratio(
    "containment", 1, higher_is_better=True, description="conversations with no handoff, over conversations started"
)
def containment(core: ScoringCore) -> Parts:
    return _conversations(core, ~core.conversations["handed_off"].to_numpy(dtype=bool))


@register_ratio(
    "recognition_rate",
    1,
    higher_is_better=True,
    description="in-scope turns sent whose intent matched the label and were answered without fallback",
)
def recognition_rate(core: ScoringCore) -> Parts:
    t = core.turns
    expected = t["expected_intent"]
    eligible = (t["sent"] & expected.notna() & (expected != OUT_OF_SCOPE)).fillna(False).to_numpy(dtype=bool)
    hit = (
        ((t["intent"] == expected) & ~t["fallback"].fillna(False).astype(bool) & (t["status"] == TurnStatus.ok.value))
        .fillna(False)
        .to_numpy(dtype=bool)
    )
    return _turn_parts(core, hit, eligible)


@register_ratio(
    "oos_rejection",
    1,
    higher_is_better=True,
    description="out-of-scope turns sent that the bot did not answer as if understood (1 - false acceptance)",
)
def oos_rejection(core: ScoringCore) -> Parts:
    t = core.turns
    eligible = (t["sent"] & (t["expected_intent"] == OUT_OF_SCOPE)).fillna(False).to_numpy(dtype=bool)
    accepted = (
        (t["status"] == TurnStatus.ok.value)
        & ~t["fallback"].fillna(False).astype(bool)
        & t["intent"].notna()
        & ~t["intent"].isin([OUT_OF_SCOPE, FALLBACK])
        & t["handoff_queue"].isna()
    )
    return _turn_parts(core, ~accepted.fillna(False).to_numpy(dtype=bool), eligible)


@register_ratio(
    "escalation_accuracy",
    1,
    higher_is_better=True,
    description="handed-off conversations sent to the expected queue, over conversations handed off",
)
def escalation_accuracy(core: ScoringCore) -> Parts:
    c = core.conversations
    correct = (c["actual_queue"] == c["expected_queue"]).fillna(False).to_numpy(dtype=bool)
    return _conversations(core, correct, among=c["handed_off"].to_numpy(dtype=bool))


@register_ratio(
    "resolution_rate",
    1,
    higher_is_better=True,
    description="conversations whose labelled goal the bot achieved itself (expected self-service "
    "outcome reached, checks passed), over conversations handled",
)
def resolution_rate(core: ScoringCore) -> Parts:
    return _conversations(core, core.conversations["resolved"].to_numpy(dtype=bool))


@register_ratio(
    "messages_per_conversation",
    1,
    higher_is_better=None,
    value_range=(0, None),
    unit="messages",
    description="bot messages per conversation handled",
)
def messages_per_conversation(core: ScoringCore) -> Parts:
    return _mean(core, core.conversations["bot_messages"].to_numpy())


@register_ratio(
    "customer_turns_per_conversation",
    1,
    higher_is_better=None,
    value_range=(0, None),
    unit="turns",
    description="customer turns sent per conversation handled",
)
def customer_turns_per_conversation(core: ScoringCore) -> Parts:
    return _mean(core, core.conversations["customer_turns"].to_numpy())


@register_ratio(
    "availability",
    1,
    higher_is_better=True,
    description="turns answered without channel error, timeout or empty reply, over turns sent",
)
def availability(core: ScoringCore) -> Parts:
    t = core.turns
    return _turn_parts(core, t["answered"].to_numpy(dtype=bool), t["sent"].to_numpy(dtype=bool))


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
