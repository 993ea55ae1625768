"""The digital-assistant KPIs, exactly as the project's kpis.md defines them (v1 and its clarifications of
2026-11-30).

Ratio KPIs are pure functions `(core) -> Parts`: their numerator and denominator per conversation, from which
the registry derives value, support and interval (and the gate its paired tests). Undefined is None, never 0.
Every KPI reads the turn facts of the scoring core (`harness.scoring.metrics.core.turn_facts`), never the raw status.

Versions: where the clarifications changed what a KPI counts (failed turns are never a success; silenced turns
belong to no bot KPI) the KPI has a new version, and the old one stays registered, computable and marked
superseded (`compute_all` leaves it out unless asked). Labelled KPIs count labelled conversations only: on
fully labelled tables that is every conversation, so their values did not change and their version did not.
"""

from __future__ import annotations

import numpy as np

from harness.scoring.metrics.core import ScoringCore
from harness.scoring.metrics.registry import TEST_INVERSION, Parts, register, register_ratio

# What KPIs are computed from (`harness.records.Observation` names): a bot that does not observe them has no value.
INTENT = frozenset({"intent"})
HANDOFF = frozenset({"handoff"})
HANDOFF_AND_FALLBACK = frozenset({"handoff", "fallback"})
MESSAGES = frozenset({"messages"})


def _per_conversation(core: ScoringCore, flags: np.ndarray) -> np.ndarray:
    return np.bincount(core.turns["conv"].to_numpy(), weights=flags.astype(np.float64), minlength=core.n_conversations)


def _fact(core: ScoringCore, name: str) -> np.ndarray:
    """A turn fact of the scoring core (see `turn_facts`), as numpy booleans."""
    return core.turns[name].to_numpy(dtype=bool)


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
    needs=HANDOFF_AND_FALLBACK,
)
def self_service_completion(core: ScoringCore) -> Parts:
    return _conversations(core, core.conversations["completed"].to_numpy(dtype=bool))


@register_ratio(
    "containment",
    1,
    higher_is_better=True,
    description="conversations with no handoff, over conversations started",
    needs=HANDOFF,
)
def containment(core: ScoringCore) -> Parts:
    return _conversations(core, ~core.conversations["handed_off"].to_numpy(dtype=bool))


@register_ratio(
    "recognition_rate",
    1,
    higher_is_better=True,
    description="in-scope turns sent whose intent matched the label and were answered without fallback",
    needs=INTENT,
)
def recognition_rate(core: ScoringCore) -> Parts:
    """Superseded by v2: a silenced turn (after a handoff) counts here as a sent turn the bot missed."""
    return _turn_parts(core, _fact(core, "recognised"), _fact(core, "sent") & _fact(core, "in_scope"))


@register_ratio(
    "recognition_rate",
    2,
    higher_is_better=True,
    description="in-scope turns the bot owned (sent, not silenced after a handoff) whose intent matched the label "
    "and were answered without fallback; a failed turn is a miss",
    needs=INTENT,
)
def recognition_rate_v2(core: ScoringCore) -> Parts:
    return _turn_parts(core, _fact(core, "recognised"), _fact(core, "bot_owned") & _fact(core, "in_scope"))


@register_ratio(
    "oos_rejection",
    1,
    higher_is_better=True,
    description="out-of-scope turns sent that the bot did not answer as if understood (1 - false acceptance)",
    needs=INTENT,
)
def oos_rejection(core: ScoringCore) -> Parts:
    """Superseded by v2: a failed or silenced turn counts here as a rejection (a crash on every out-of-scope
    question scores 100%)."""
    return _turn_parts(core, ~_fact(core, "accepted"), _fact(core, "sent") & _fact(core, "out_of_scope"))


@register_ratio(
    "oos_rejection",
    2,
    higher_is_better=True,
    description="out-of-scope turns the bot owned (sent, not silenced) that it answered without acting on an "
    "in-scope intent (fallback, out_of_scope or handoff); a failed turn is a miss",
    needs=INTENT,
)
def oos_rejection_v2(core: ScoringCore) -> Parts:
    return _turn_parts(core, _fact(core, "rejected"), _fact(core, "bot_owned") & _fact(core, "out_of_scope"))


@register_ratio(
    "escalation_accuracy",
    1,
    higher_is_better=True,
    description="labelled handed-off conversations sent to the expected queue, over labelled conversations "
    "handed off (undefined without labels)",
    needs=HANDOFF,
)
def escalation_accuracy(core: ScoringCore) -> Parts:
    c = core.conversations
    among = c["handed_off"].to_numpy(dtype=bool) & c["labelled"].to_numpy(dtype=bool)
    return _conversations(core, c["correct_queue"].to_numpy(dtype=bool), among=among)


@register_ratio(
    "resolution_rate",
    1,
    higher_is_better=True,
    description="labelled conversations whose labelled goal the bot achieved itself (expected self-service "
    "outcome reached, checks passed), over labelled conversations handled (undefined without labels)",
    needs=HANDOFF_AND_FALLBACK,
)
def resolution_rate(core: ScoringCore) -> Parts:
    c = core.conversations
    return _conversations(core, c["resolved"].to_numpy(dtype=bool), among=c["labelled"].to_numpy(dtype=bool))


@register_ratio(
    "messages_per_conversation",
    1,
    higher_is_better=None,
    value_range=(0, None),
    unit="messages",
    description="bot messages per conversation handled",
    needs=MESSAGES,
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
    """Superseded by v2: a silenced turn counts here as sent and answered."""
    answered = _fact(core, "answered") | _fact(core, "silenced")
    return _turn_parts(core, answered, _fact(core, "sent"))


@register_ratio(
    "availability",
    2,
    higher_is_better=True,
    description="turns the bot owned (sent, not silenced after a handoff) answered without channel error, "
    "timeout or empty reply, over turns the bot owned",
)
def availability_v2(core: ScoringCore) -> Parts:
    return _turn_parts(core, _fact(core, "answered"), _fact(core, "bot_owned"))


def _latency(core: ScoringCore, q: float) -> tuple:
    values, intervals = core.latency()
    if values.size == 0:
        return None, 0, None, TEST_INVERSION
    return float(np.quantile(values, q, method="inverted_cdf")), int(values.size), intervals[q], TEST_INVERSION


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
