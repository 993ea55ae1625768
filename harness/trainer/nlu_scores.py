"""Scores of an NLU classifier's predictions against labels: pure functions over arrays, no Rasa, no I/O.

A prediction is the classifier's best intent, its confidence and the runner-up's confidence. The fallback is
applied here, as Rasa's FallbackClassifier does it: a prediction falls back when its confidence is below the
threshold or the best two are closer than the ambiguity threshold. Then, per labelled text,
- in scope (label is not `out_of_scope`): recognised when it did not fall back and the intent is the label;
- out of scope: rejected when it fell back or the intent is `out_of_scope`.
`accuracy` and `macro_f1` are the raw classifier's (no fallback), over every text including out-of-scope ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import f1_score

from harness.project.eval_set import OUT_OF_SCOPE
from harness.scoring.metrics.intervals import Proportion


@dataclass(frozen=True)
class Predictions:
    labels: np.ndarray
    intents: np.ndarray
    confidence: np.ndarray
    runner_up: np.ndarray
    """Confidence of the second-ranked intent (0 when there is none)."""

    @classmethod
    def from_records(cls, labels: list[str], records: list[dict]) -> Predictions:
        """From the trial runner's records: {"intent", "confidence", "ranking": [[intent, confidence], ...]}."""
        if len(labels) != len(records):
            raise ValueError(f"{len(labels)} labels but {len(records)} predictions")
        second = [r["ranking"][1][1] if len(r.get("ranking", [])) > 1 else 0.0 for r in records]
        return cls(
            labels=np.asarray(labels, dtype=object),
            intents=np.asarray([r["intent"] or "" for r in records], dtype=object),
            confidence=np.asarray([r["confidence"] for r in records], dtype=float),
            runner_up=np.asarray(second, dtype=float),
        )


@dataclass(frozen=True)
class NluScores:
    accuracy: Proportion
    macro_f1: float
    recognition: Proportion
    oos_rejection: Proportion

    def as_dict(self) -> dict[str, float | None]:
        return {
            "accuracy": self.accuracy.value,
            "macro_f1": self.macro_f1,
            "recognition": self.recognition.value,
            "oos_rejection": self.oos_rejection.value,
        }


def falls_back(p: Predictions, threshold: float, ambiguity_threshold: float) -> np.ndarray:
    return (p.confidence < threshold) | ((p.confidence - p.runner_up) < ambiguity_threshold)


def score(p: Predictions, *, threshold: float, ambiguity_threshold: float) -> NluScores:
    fallback = falls_back(p, threshold, ambiguity_threshold)
    in_scope = p.labels != OUT_OF_SCOPE
    correct = p.intents == p.labels
    rejected = fallback | (p.intents == OUT_OF_SCOPE)
    labels = sorted(set(p.labels))
    return NluScores(
        accuracy=Proportion(int(correct.sum()), len(correct)),
        macro_f1=float(f1_score(p.labels, p.intents, labels=labels, average="macro", zero_division=0)),
        recognition=Proportion(int((in_scope & correct & ~fallback).sum()), int(in_scope.sum())),
        oos_rejection=Proportion(int((~in_scope & rejected).sum()), int((~in_scope).sum())),
    )


def concatenate(parts: list[Predictions]) -> Predictions:
    """All folds' predictions as one (pooled cross-validation scores)."""
    return Predictions(
        labels=np.concatenate([p.labels for p in parts]),
        intents=np.concatenate([p.intents for p in parts]),
        confidence=np.concatenate([p.confidence for p in parts]),
        runner_up=np.concatenate([p.runner_up for p in parts]),
    )


THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.05, 0.951, 0.05))


def tune_threshold(
    p: Predictions, *, max_false_acceptance: float, ambiguity_threshold: float, thresholds: tuple = THRESHOLDS
) -> float:
    """The threshold with the highest recognition among those whose false acceptance of out-of-scope texts
    (1 - rejection) stays within `max_false_acceptance`; the highest threshold when none does (or no text is
    out of scope, when the lowest is returned). Ties go to the lower threshold."""
    best: tuple[float, float] | None = None
    for t in thresholds:
        s = score(p, threshold=t, ambiguity_threshold=ambiguity_threshold)
        rejection = s.oos_rejection.value
        if rejection is not None and 1 - rejection > max_false_acceptance + 1e-12:
            continue
        recognition = s.recognition.value or 0.0
        if best is None or recognition > best[1] + 1e-12:
            best = (t, recognition)
    return best[0] if best is not None else max(thresholds)
