"""Breakdowns behind the KPIs: outcome matrix, escalation errors, per-intent precision/recall/F1, confusion."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from harness.metrics.core import ScoringCore, predicted_label

ACTUAL_ORDER = ("self_served", "abandoned")


def outcome_matrix(core: ScoringCore) -> pd.DataFrame:
    """Conversations by expected outcome (rows) and actual outcome (columns), with every label shown."""
    c = core.conversations
    rows = sorted(set(c["expected_label"]), key=lambda s: (s != "self_served", s))
    columns = [*ACTUAL_ORDER, *sorted({a for a in c["actual_outcome"] if a.startswith("escalated:")})]
    matrix = pd.crosstab(
        pd.Categorical(c["expected_label"], rows), pd.Categorical(c["actual_outcome"], columns), dropna=False
    )
    matrix.index.name, matrix.columns.name = "expected", "actual"
    return matrix


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
    c = core.conversations
    expected_handoff = c["expected_outcome"] == "escalated"
    ids = c["conversation_id"]
    return EscalationErrors(
        missed=sorted(ids[expected_handoff & ~c["handed_off"]]),
        unnecessary=sorted(ids[~expected_handoff & c["handed_off"]]),
        wrong_queue=sorted(ids[expected_handoff & c["handed_off"] & (c["actual_queue"] != c["expected_queue"])]),
    )


def scored_turns(core: ScoringCore) -> tuple[pd.Series, pd.Series]:
    """(expected, predicted) for labelled turns that were sent."""
    t = core.turns
    mask = t["sent"] & t["expected_intent"].notna()
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
    matrix = confusion_matrix(y_true, y_pred, labels=columns)
    return pd.DataFrame(matrix, index=columns, columns=columns).loc[rows]
