"""Breakdowns behind the KPIs: outcome matrix, escalation errors, per-intent precision/recall/F1, confusion.

The outcome matrix and the escalation-error lists read the same two per-conversation labels (`expected_label`,
`actual_outcome`) through one classification (`escalation_error_kinds`), so the lists agree with the matrix cell by
cell. An unlabelled conversation (no expected outcome, as in production logs) has no expected row (kpis.md,
"Clarifications (2026-11-30)") and is in no error list.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from harness.scoring.metrics.core import ScoringCore, predicted_label

ACTUAL_ORDER = ("self_served", "abandoned")


ESCALATED = "escalated:"
MISSED, UNNECESSARY, WRONG_QUEUE = "missed", "unnecessary", "wrong_queue"


def _labelled(core: ScoringCore) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(conversation ids, expected labels, actual outcomes) of the labelled conversations, as numpy str arrays."""
    c = core.conversations
    labelled = c["labelled"].to_numpy(dtype=bool)
    ids = c["conversation_id"].to_numpy(dtype=object)[labelled].astype(str)
    expected = c["expected_label"].to_numpy(dtype=object)[labelled].astype(str)
    actual = c["actual_outcome"].to_numpy(dtype=object)[labelled].astype(str)
    return ids, expected, actual


def escalation_error_kinds(expected: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """The escalation error of each labelled conversation, from its expected label and actual outcome (str
    arrays of one length): `missed` (expected a queue, the bot kept it), `unnecessary` (expected self-service, the
    bot handed off), `wrong_queue` (handed off to another queue than expected), or "" (none)."""
    expected_queue = np.char.startswith(expected, ESCALATED)
    handed_off = np.char.startswith(actual, ESCALATED)
    kinds = np.full(expected.shape, "", dtype=object)
    kinds[expected_queue & ~handed_off] = MISSED
    kinds[~expected_queue & handed_off] = UNNECESSARY
    kinds[expected_queue & handed_off & (expected != actual)] = WRONG_QUEUE
    return kinds


def outcome_matrix(core: ScoringCore) -> pd.DataFrame:
    """Labelled conversations by expected outcome (rows) and actual outcome (columns): counts, every label that
    occurs shown, `self_served` and `abandoned` always. Unlabelled conversations are not in it (see
    `unlabelled_conversations`); without labels the matrix has no rows."""
    _, expected, actual = _labelled(core)
    rows = sorted(set(np.unique(expected).tolist()), key=lambda s: (s != "self_served", s))
    escalated = np.unique(actual[np.char.startswith(actual, ESCALATED)]).tolist()
    columns = [*ACTUAL_ORDER, *sorted(escalated)]
    matrix = pd.DataFrame(0, index=pd.Index(rows, name="expected"), columns=pd.Index(columns, name="actual"))
    if expected.size:
        cells = pd.DataFrame({"expected": expected, "actual": actual}).value_counts()
        for (row, column), count in cells.items():
            matrix.loc[row, column] = int(count)
    return matrix


def unlabelled_conversations(core: ScoringCore) -> int:
    """Conversations without an expected outcome: in no outcome-matrix row and no labelled KPI."""
    return int((~core.conversations["labelled"].to_numpy(dtype=bool)).sum())


@dataclass(frozen=True)
class EscalationErrors:
    missed: list[str]
    """Expected a handoff to a queue; the bot kept the conversation."""
    unnecessary: list[str]
    """Expected self-service; the bot handed off."""
    wrong_queue: list[str]
    """Expected a handoff and got one, to another queue."""

    def counts(self) -> dict[str, int]:
        return {"missed": len(self.missed), "unnecessary": len(self.unnecessary), "wrong_queue": len(self.wrong_queue)}


def escalation_errors(core: ScoringCore) -> EscalationErrors:
    """The labelled conversations of each escalation error (see `escalation_error_kinds`), ids sorted: the lists
    agree with the outcome matrix's cells."""
    ids, expected, actual = _labelled(core)
    kinds = escalation_error_kinds(expected, actual)
    return EscalationErrors(*(sorted(ids[kinds == kind].tolist()) for kind in (MISSED, UNNECESSARY, WRONG_QUEUE)))


def scored_turns(core: ScoringCore) -> tuple[pd.Series, pd.Series]:
    """(expected, predicted) for the turns recognition and out-of-scope rejection judge (`scored`: labelled,
    bot-owned; a failed turn is predicted `<no reply>`)."""
    t = core.turns
    mask = t["scored"].to_numpy(dtype=bool)
    return t.loc[mask, "expected_intent"].astype(str), predicted_label(t[mask]).astype(str)


def intent_report(core: ScoringCore) -> pd.DataFrame:
    """Per expected intent: precision, recall, F1 (NaN where undefined, never 0) and support."""
    y_true, y_pred = scored_turns(core)
    labels = sorted(set(y_true))
    if not labels:
        return pd.DataFrame(columns=["precision", "recall", "f1", "support"])
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=np.nan
    )
    return pd.DataFrame({"precision": precision, "recall": recall, "f1": f1, "support": support}, index=labels)


def intent_confusion(core: ScoringCore) -> pd.DataFrame:
    """Expected intent (rows) by what the bot acted on (columns, including `nlu_fallback` and `<no reply>`)."""
    y_true, y_pred = scored_turns(core)
    rows = sorted(set(y_true))
    columns = sorted(set(y_true) | set(y_pred))
    if not rows:
        return pd.DataFrame()
    with warnings.catch_warnings():
        # sklearn warns about the shape when one label occurs; `labels=` fixes the shape, so the warning is moot.
        warnings.filterwarnings("ignore", message="A single label was found", category=UserWarning)
        matrix = confusion_matrix(y_true, y_pred, labels=columns)
    return pd.DataFrame(matrix, index=columns, columns=columns).loc[rows]
