"""Which dialogs of a run go to QA review, and why: named flagging rules plus an unbiased random sample.

Every rule is a pure function of one conversation's turn records (and the run's scoring core, built once by
`ScoredRun`, which derives the actual outcome exactly as the KPIs do) that returns the reasons it fired, or
nothing. Rules that need a label
(the expected outcome or queue) skip conversations without one, so production logs are flagged too.

The random sample is drawn independently of the flags: a conversation is sampled when a hash of (seed, run,
conversation) falls below the rate. Reviewed KPIs are estimated on the sample only, which the flags cannot skew;
the same seed gives the same sample, and adding conversations to a run does not reshuffle the others. Production
windows hash a fixed key in place of the run id (`select(sample_key=...)`), so every window that holds a
conversation agrees whether it is in the sample.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import pandas as pd

from harness.records import TurnStatus
from harness.review.config import FlagRules, Rule, Sample
from harness.review.similarity import Encoder, Meaning, lexical, long_enough
from harness.scoring.metrics.core import ScoringCore


@dataclass(frozen=True)
class Flag:
    rule: str
    reason: str


@dataclass(frozen=True)
class Selection:
    """A conversation selected for review: its flags (with reasons), priority, and whether it was sampled."""

    conversation_id: str
    flags: tuple[Flag, ...]
    priority: int
    sampled: bool


@dataclass(frozen=True)
class Facts:
    """What the rules look at: the conversation's sent turns in order and its outcome facts."""

    turns: pd.DataFrame
    expected_label: str | None
    actual_outcome: str
    bot_messages: int
    critical: str | None
    tags: list[str]
    meaning: Callable[[str, str], float] | None = None
    """How alike two of the conversation's texts are in meaning (cosine of sentence embeddings); None when
    no encoder was given, and then the repetition rule looks at characters only."""


RuleCheck = Callable[[Facts, Rule], list[str]]


def _turn_list(indexes: list[int]) -> str:
    return ("turn " if len(indexes) == 1 else "turns ") + ", ".join(str(i) for i in indexes)


def low_confidence(facts: Facts, rule: Rule) -> list[str]:
    below = rule.below  # type: ignore[attr-defined]
    t = facts.turns
    # Nulls (no fallback flag, no confidence in the trace) read as False: a turn without a confidence is not low.
    answered = t["status"].eq(TurnStatus.ok.value).fillna(False).to_numpy(dtype=bool)
    fell_back = t["fallback"].fillna(False).to_numpy(dtype=bool)
    low = t["confidence"].lt(below).fillna(False).to_numpy(dtype=bool)
    hits = t[answered & ~fell_back & low]
    return [
        f"turn {row.turn_index}: acted on {row.intent} at confidence {row.confidence:.2f} (below {below:.2f})"
        for row in hits.itertuples()
    ]


def fallback(facts: Facts, rule: Rule) -> list[str]:
    hits = facts.turns[facts.turns["fallback"].fillna(False).astype(bool)]
    if hits.empty:
        return []
    return [f"{_turn_list(hits['turn_index'].tolist())}: the bot did not understand (fallback)"]


def outcome_mismatch(facts: Facts, rule: Rule) -> list[str]:
    if facts.expected_label is None or facts.actual_outcome == facts.expected_label:
        return []
    return [f"ended {facts.actual_outcome}, labelled {facts.expected_label}"]


def _queue(label: str | None) -> str | None:
    return label.split(":", 1)[1] if label and label.startswith("escalated:") else None


def wrong_queue(facts: Facts, rule: Rule) -> list[str]:
    expected, actual = _queue(facts.expected_label), _queue(facts.actual_outcome)
    if expected and actual and expected != actual:
        return [f"handed to {actual}, should have gone to {expected}"]
    return []


def missed_escalation(facts: Facts, rule: Rule) -> list[str]:
    expected = _queue(facts.expected_label)
    if expected and _queue(facts.actual_outcome) is None:
        return [f"should have been handed to {expected}, the bot kept it ({facts.actual_outcome})"]
    return []


def unnecessary_escalation(facts: Facts, rule: Rule) -> list[str]:
    actual = _queue(facts.actual_outcome)
    if facts.expected_label == "self_served" and actual:
        return [f"handed to {actual}, the bot should have served it"]
    return []


def long_dialog(facts: Facts, rule: Rule) -> list[str]:
    limit = rule.max_bot_messages  # type: ignore[attr-defined]
    if facts.bot_messages > limit:
        return [f"{facts.bot_messages} bot messages (more than {limit})"]
    return []


def repetition(facts: Facts, rule: Rule) -> list[str]:
    """Two customer turns alike in characters (a repeat) or, with an encoder, in meaning (a rephrasing)."""
    characters, meaning = rule.similarity, rule.meaning  # type: ignore[attr-defined]
    alike = facts.meaning if meaning is not None else None
    texts = [(row.turn_index, row.text) for row in facts.turns.itertuples() if pd.notna(row.text)]
    texts = [(i, t) for i, t in texts if long_enough(t)]
    reasons = []
    for position, (first, a) in enumerate(texts):
        for second, b in texts[position + 1 :]:
            ratio = lexical(a, b)
            if ratio >= characters:
                reasons.append(f"turns {first} and {second}: the customer repeated themselves (similarity {ratio:.2f})")
            elif alike is not None and (cosine := alike(a, b)) >= meaning:
                reasons.append(f"turns {first} and {second}: the customer rephrased (meaning similarity {cosine:.2f})")
    return reasons


def critical_tag(facts: Facts, rule: Rule) -> list[str]:
    if facts.critical:
        return [f"marked critical: {facts.critical}"]
    if "critical" in facts.tags:
        return ["tagged critical"]
    return []


RULES: dict[str, RuleCheck] = {
    "low_confidence": low_confidence,
    "fallback": fallback,
    "outcome_mismatch": outcome_mismatch,
    "wrong_queue": wrong_queue,
    "missed_escalation": missed_escalation,
    "unnecessary_escalation": unnecessary_escalation,
    "long_dialog": long_dialog,
    "repetition": repetition,
    "critical_tag": critical_tag,
}


def in_sample(run_id: str, conversation_id: str, sample: Sample) -> bool:
    """A uniform draw from a hash of (seed, run, conversation), below the rate: deterministic, flag-blind."""
    digest = hashlib.sha256(f"{sample.seed}\0{run_id}\0{conversation_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < sample.rate


def conversation_facts(core: ScoringCore) -> Iterator[tuple[str, Facts]]:
    """Each conversation's facts, in conversation-id order, from the run's scoring core (`ScoredRun.core`)."""
    # The scoring core decides the outcome and whether the conversation is labelled (production logs are not):
    # an unlabelled conversation's expected label is None.
    by_code = {int(code): group for code, group in core.turns.groupby("conv", sort=False)}
    for row in core.conversations.itertuples():
        turns = by_code[row.Index].sort_values("turn_index")
        first = turns.iloc[0]
        yield (
            row.conversation_id,
            Facts(
                turns=turns[turns["status"] != TurnStatus.not_sent.value],
                expected_label=str(row.expected_label) if row.labelled else None,
                actual_outcome=str(row.actual_outcome),
                bot_messages=int(row.bot_messages),
                critical=None if pd.isna(row.critical) else str(row.critical),
                tags=_tags(first["tags"]),
            ),
        )


def _tags(value: object) -> list[str]:
    """A conversation's tags from its JSON cell: [] when null or JSON null."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return []
    decoded = json.loads(str(value))
    return [str(tag) for tag in decoded] if isinstance(decoded, list) else []


def flags_of(facts: Facts, rules: FlagRules) -> list[Flag]:
    flags = []
    for name, check in RULES.items():
        rule = getattr(rules, name)
        if rule.enabled:
            flags += [Flag(name, reason) for reason in check(facts, rule)]
    return flags


def _customer_texts(turns: pd.DataFrame) -> list[str]:
    sent = turns[(turns["status"] != TurnStatus.not_sent.value) & turns["text"].notna()]
    return [text for text in sent["text"].astype(str) if long_enough(text)]


def select(
    core: ScoringCore,
    rules: FlagRules,
    sample: Sample,
    *,
    encoder: Encoder | None = None,
    sample_key: str | None = None,
) -> list[Selection]:
    """The conversations of a run (its scoring core, `ScoredRun.core`) to review, flagged or sampled, highest
    priority first, then by id. With an `encoder` (and a `meaning` threshold configured), the repetition rule also
    finds rephrasings; every customer text of the run is encoded once, in one batch. `sample_key` replaces the run
    id in the sample's hash (production windows share one key, so overlapping windows agree on the sample)."""
    turns = core.turns
    if turns.empty:
        return []
    run_id = sample_key or str(turns["run_id"].iloc[0])
    meaning = None
    if encoder is not None and rules.repetition.enabled and rules.repetition.meaning is not None:
        meaning = Meaning(_customer_texts(turns), encoder)
    chosen = []
    for conversation_id, facts in conversation_facts(core):
        flags = flags_of(replace(facts, meaning=meaning), rules)
        sampled = in_sample(run_id, conversation_id, sample)
        if flags or sampled:
            priority = sum(getattr(rules, name).priority for name in {f.rule for f in flags})
            chosen.append(Selection(conversation_id, tuple(flags), priority, sampled))
    return sorted(chosen, key=lambda s: (-s.priority, s.conversation_id))
