"""Overlap between eval turns and training examples: an eval set should measure generalisation, not memory.

Exact overlap compares normalised text (Unicode NFC, case, punctuation and spacing ignored); near overlap compares
MiniLM sentence embeddings. Very short turns ("yes", "hi") are bound to repeat small talk and are counted apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.project.eval_set import EvalSuite
from harness.project.intents import Catalog, normalise, plain_text

if TYPE_CHECKING:
    import numpy as np

NEAR_THRESHOLD = 0.92
SHORT_WORDS = 2


@dataclass(frozen=True)
class OverlapHit:
    conversation_id: str
    turn: int
    text: str
    training_example: str
    training_intent: str
    similarity: float
    """1.0 for an exact (normalised) match."""


@dataclass(frozen=True)
class OverlapReport:
    turns_checked: int
    exact: list[OverlapHit]
    near: list[OverlapHit]
    short_exact: int
    """Exact matches of turns of at most SHORT_WORDS words (small talk), reported as a count only."""

    def warnings(self, limit: int = 10) -> list[str]:
        out = []
        if self.exact:
            out.append(
                f"{len(self.exact)} of {self.turns_checked} eval turns repeat a training example exactly "
                "(the bot may have memorised them):"
            )
            out += [
                f"  {h.conversation_id} turn {h.turn}: {h.text!r} (training: {h.training_intent})"
                for h in self.exact[:limit]
            ]
        if self.near:
            out.append(
                f"{len(self.near)} of {self.turns_checked} eval turns nearly repeat a training example "
                f"(cosine >= {NEAR_THRESHOLD}):"
            )
            out += [
                f"  {h.conversation_id} turn {h.turn}: {h.text!r} ~ {h.training_example!r} "
                f"({h.training_intent}, {h.similarity:.2f})"
                for h in self.near[:limit]
            ]
        if self.short_exact:
            out.append(
                f"{self.short_exact} short small-talk turns (<= {SHORT_WORDS} words) repeat training "
                "examples; expected, not counted above"
            )
        return out


def find_overlap(
    suite: EvalSuite,
    catalog: Catalog,
    *,
    threshold: float = NEAR_THRESHOLD,
    training_vectors: np.ndarray | None = None,
) -> OverlapReport:
    """Exact and near duplicates between the suite's customer turns and the catalog's training examples.
    `training_vectors`: the examples' embeddings, one row per example in catalog order, when already computed
    (they are the costly part with thousands of examples)."""
    from harness.embeddings import embed

    training = [(plain_text(ex), name) for name, intent in catalog.intents.items() for ex in intent.examples]
    by_norm = {normalise(text): (text, name) for text, name in training}
    turns = [(c.conversation.id, i, t.text) for c in suite.conversations for i, t in enumerate(c.conversation.turns)]
    exact: list[OverlapHit] = []
    short_exact = 0
    candidates = []
    for conversation_id, index, text in turns:
        match = by_norm.get(normalise(text))
        if match is None:
            candidates.append((conversation_id, index, text))
        elif len(normalise(text).split()) <= SHORT_WORDS:
            short_exact += 1
        else:
            exact.append(OverlapHit(conversation_id, index, text, match[0], match[1], 1.0))
    near: list[OverlapHit] = []
    if candidates and training:
        vectors = training_vectors if training_vectors is not None else embed([t for t, _ in training])
        similarities = embed([t for _, _, t in candidates]) @ vectors.T
        best = similarities.argmax(axis=1)
        for row, (conversation_id, index, text) in enumerate(candidates):
            score = float(similarities[row, best[row]])
            if score >= threshold and len(normalise(text).split()) > SHORT_WORDS:
                example, name = training[best[row]]
                near.append(OverlapHit(conversation_id, index, text, example, name, score))
    near.sort(key=lambda h: -h.similarity)
    return OverlapReport(turns_checked=len(turns), exact=exact, near=near, short_exact=short_exact)
