"""How alike two customer turns are, for the review's `repetition` rule: by their characters (a repeat) and by
their meaning (a rephrasing: "I want to stop my card" ... "can you block my debit card please").

Both are pure functions of the texts once an encoder has turned the texts into unit vectors; the encoder is
passed in (the MiniLM sentence encoder of `harness.embeddings` in use, a stand-in in fast tests). The
thresholds in `experiments/review.yml` were chosen with `bench/rephrase_sweep.py` on hand-labelled pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from difflib import SequenceMatcher

import numpy as np

from harness.project.intents import normalise

Encoder = Callable[[list[str]], np.ndarray]
"""Texts to unit-length vectors, one row per text, so that a dot product is the cosine similarity."""

MIN_WORDS = 3
"""Shorter turns ("yes", "no thanks") repeat by nature and are not counted as the customer repeating."""


def long_enough(text: str) -> bool:
    return len(normalise(text).split()) >= MIN_WORDS


def lexical(a: str, b: str) -> float:
    """Character-level similarity (difflib ratio, 0-1) of the normalised texts: high for a repeat with typos."""
    return SequenceMatcher(None, normalise(a), normalise(b)).ratio()


class Meaning:
    """Cosine similarity of sentence embeddings, each distinct text encoded once (in one batch per run)."""

    def __init__(self, texts: Sequence[str], encoder: Encoder) -> None:
        unique = sorted(set(texts))
        vectors = encoder(unique) if unique else np.zeros((0, 0))
        self._row = {text: vectors[index] for index, text in enumerate(unique)}

    def __call__(self, a: str, b: str) -> float:
        return float(np.clip(self._row[a] @ self._row[b], -1.0, 1.0))
