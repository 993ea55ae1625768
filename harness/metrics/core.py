"""The scoring core: per-conversation facts derived once from the turn records, shared by every metric.

A conversation's actual outcome is `escalated:<queue>` when the bot handed it off; `self_served` when it reached
a completed end: every turn answered (no error, timeout or empty reply), the last answer not a fallback, and no
self-service flow left waiting for an answer; otherwise `abandoned` (the customer would have given up).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.metrics.intervals import ClusterBootstrap
from harness.records import FAILED_STATUSES, TurnStatus

FAILED = [s.value for s in FAILED_STATUSES]
OUT_OF_SCOPE = "out_of_scope"
FALLBACK = "nlu_fallback"
NO_REPLY = "<no reply>"


@dataclass(frozen=True)
class ScoringOptions:
    bootstrap_replicates: int = 1000
    seed: int = 20261122
    confidence: float = 0.95


@dataclass(frozen=True)
class ScoringCore:
    turns: pd.DataFrame
    """The records sorted by conversation and turn, plus `conv` (conversation code), `sent`, `answered`."""
    conversations: pd.DataFrame
    """One row per conversation code: labels and derived outcome facts."""
    bootstrap: ClusterBootstrap
    options: ScoringOptions

    @property
    def n_conversations(self) -> int:
        return len(self.conversations)


def build_core(records: pd.DataFrame, options: ScoringOptions = ScoringOptions()) -> ScoringCore:
    """Derive the per-conversation table from turn records (pure; order of `records` does not matter)."""
    turns = records.sort_values(["conversation_id", "turn_index"], kind="stable").reset_index(drop=True)
    codes, _ = pd.factorize(turns["conversation_id"], sort=True)
    turns = turns.assign(
        conv=codes,
        sent=(turns["status"] != TurnStatus.not_sent.value).to_numpy(),
        answered=turns["status"].isin([TurnStatus.ok.value, TurnStatus.silenced.value]).to_numpy(),
    )
    by = turns.groupby("conv", sort=True)
    first = by[["conversation_id", "expected_outcome", "expected_queue", "resolvable", "critical"]].first()
    sent_turns = turns[turns["sent"]]
    # The literal last sent row (GroupBy.last would skip nulls and pick an earlier turn's open form).
    last_sent = sent_turns.drop_duplicates("conv", keep="last").set_index("conv")[["fallback", "active_form"]]
    has_checks = turns["checks"].notna()
    check_failed = has_checks & (turns["check_passed"].fillna(False) == False)  # noqa: E712
    conversations = first.assign(
        customer_turns=by["sent"].sum().astype(np.int64),
        bot_messages=by["n_bot_messages"].sum().astype(np.int64),
        handed_off=by["handoff_queue"].agg(lambda s: s.notna().any()).astype(bool),
        actual_queue=by["handoff_queue"].first(),
        errored=turns["status"].isin(FAILED).groupby(turns["conv"]).any(),
        checks_ok=~check_failed.groupby(turns["conv"]).any(),
        last_fallback=last_sent["fallback"].reindex(first.index).fillna(False).astype(bool),
        last_form_open=last_sent["active_form"].reindex(first.index).notna(),
    )
    completed = (
        ~conversations["handed_off"]
        & ~conversations["errored"]
        & (conversations["customer_turns"] > 0)
        & ~conversations["last_fallback"]
        & ~conversations["last_form_open"]
    )
    actual = np.where(
        conversations["handed_off"],
        "escalated:" + conversations["actual_queue"].fillna("").astype(str),
        np.where(completed, "self_served", "abandoned"),
    )
    expected_label = np.where(
        conversations["expected_outcome"] == "escalated",
        "escalated:" + conversations["expected_queue"].fillna("").astype(str),
        "self_served",
    )
    conversations = conversations.assign(
        completed=completed.astype(bool),
        actual_outcome=actual,
        expected_label=expected_label,
        resolved=(
            conversations["resolvable"].fillna(False).astype(bool)
            & (conversations["expected_outcome"] == "self_served")
            & completed
            & conversations["checks_ok"]
        ),
    )
    bootstrap = ClusterBootstrap(len(conversations), options.bootstrap_replicates, options.seed, options.confidence)
    return ScoringCore(turns=turns, conversations=conversations, bootstrap=bootstrap, options=options)


def predicted_label(turns: pd.DataFrame) -> pd.Series:
    """What the bot acted on per turn: its intent, `nlu_fallback` when it fell back, `<no reply>` on failure."""
    label = turns["intent"].astype("string").where(~turns["fallback"].fillna(False).astype(bool), FALLBACK)
    return label.where(turns["status"] == TurnStatus.ok.value, NO_REPLY).fillna(NO_REPLY)
