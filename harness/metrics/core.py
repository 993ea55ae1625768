"""The scoring core: per-conversation facts derived once from the turn records, shared by every metric.

A conversation's actual outcome is `escalated:<queue>` when the bot handed it off; `self_served` when it reached
a completed end: every turn answered (no error, timeout or empty reply), the last answer not a fallback, and no
self-service flow left waiting for an answer; otherwise `abandoned` (the customer would have given up).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


LATENCY_QUANTILES = (0.50, 0.95)


@dataclass(frozen=True)
class ScoringCore:
    turns: pd.DataFrame
    """The records (any order) plus `conv` (conversation code, by sorted id), `sent` and `answered`."""
    conversations: pd.DataFrame
    """One row per conversation code: labels and derived outcome facts."""
    bootstrap: ClusterBootstrap
    options: ScoringOptions
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_conversations(self) -> int:
        return len(self.conversations)

    def latency(self) -> tuple[np.ndarray, dict[float, tuple[float, float] | None]]:
        """Latencies of answered turns and the bootstrap intervals of LATENCY_QUANTILES (computed once)."""
        if "latency" not in self._cache:
            t = self.turns
            ok = (t["status"] == TurnStatus.ok.value).to_numpy(dtype=bool) & t["latency_ms"].notna().to_numpy()
            values = t["latency_ms"].to_numpy(dtype=np.float64, na_value=np.nan)[ok]
            intervals = self.bootstrap.quantiles(values, t["conv"].to_numpy()[ok], LATENCY_QUANTILES)
            self._cache["latency"] = (values, intervals)
        return self._cache["latency"]


def _per_conversation_sum(codes: np.ndarray, flags: np.ndarray, size: int) -> np.ndarray:
    return np.bincount(codes, weights=flags.astype(np.float64), minlength=size)


def build_core(records: pd.DataFrame, options: ScoringOptions = ScoringOptions()) -> ScoringCore:
    """Derive the per-conversation table from turn records (pure; order of `records` does not matter)."""
    codes, ids = pd.factorize(records["conversation_id"], sort=True)
    size = len(ids)
    status = records["status"]
    sent = (status != TurnStatus.not_sent.value).to_numpy(dtype=bool)
    turns = records.assign(
        conv=codes,
        sent=sent,
        answered=status.isin([TurnStatus.ok.value, TurnStatus.silenced.value]).to_numpy(dtype=bool),
    )
    # Rows in conversation and turn order, as positions: the frame itself is never reordered.
    order = np.lexsort((records["turn_index"].to_numpy(), codes))
    ordered_codes = codes[order]
    first_rows = order[np.r_[True, ordered_codes[1:] != ordered_codes[:-1]]] if size else order
    labels = records.iloc[first_rows][
        ["conversation_id", "expected_outcome", "expected_queue", "resolvable", "critical"]
    ].reset_index(drop=True)
    sent_order = order[sent[order]]
    sent_codes = codes[sent_order]
    last_sent = sent_order[np.r_[sent_codes[1:] != sent_codes[:-1], True]] if sent_order.size else sent_order
    has_handoff = records["handoff_queue"].notna().to_numpy()
    handoff_order = order[has_handoff[order]]
    handoff_codes = codes[handoff_order]
    first_handoff = (
        handoff_order[np.r_[True, handoff_codes[1:] != handoff_codes[:-1]]] if handoff_order.size else handoff_order
    )
    actual_queue = pd.Series(pd.NA, index=range(size), dtype="string")
    actual_queue.iloc[codes[first_handoff]] = records["handoff_queue"].to_numpy()[first_handoff]
    last_fallback = np.zeros(size, dtype=bool)
    last_fallback[codes[last_sent]] = records["fallback"].fillna(False).to_numpy(dtype=bool)[last_sent]
    last_form_open = np.zeros(size, dtype=bool)
    last_form_open[codes[last_sent]] = records["active_form"].notna().to_numpy()[last_sent]
    check_failed = (records["checks"].notna() & (records["check_passed"].fillna(False) == False)).to_numpy()  # noqa: E712
    customer_turns = _per_conversation_sum(codes, sent, size).astype(np.int64)
    handed_off = _per_conversation_sum(codes, has_handoff, size) > 0
    errored = _per_conversation_sum(codes, status.isin(FAILED).to_numpy(dtype=bool), size) > 0
    checks_ok = _per_conversation_sum(codes, check_failed, size) == 0
    completed = ~handed_off & ~errored & (customer_turns > 0) & ~last_fallback & ~last_form_open
    expected_outcome = labels["expected_outcome"].fillna("").to_numpy(dtype=object)  # null: unlabelled (logs)
    expected_queue = labels["expected_queue"].fillna("").to_numpy(dtype=object)
    actual = np.where(
        handed_off,
        "escalated:" + actual_queue.fillna("").to_numpy(dtype=object),
        np.where(completed, "self_served", "abandoned"),
    )
    resolvable = labels["resolvable"].fillna(False).to_numpy(dtype=bool)
    conversations = labels.assign(
        customer_turns=customer_turns,
        bot_messages=np.bincount(
            codes, weights=records["n_bot_messages"].to_numpy(dtype=np.float64), minlength=size
        ).astype(np.int64),
        handed_off=handed_off,
        actual_queue=actual_queue,
        errored=errored,
        checks_ok=checks_ok,
        last_fallback=last_fallback,
        last_form_open=last_form_open,
        completed=completed,
        actual_outcome=actual,
        expected_label=np.where(expected_outcome == "escalated", "escalated:" + expected_queue, "self_served"),
        resolved=resolvable & (expected_outcome == "self_served") & completed & checks_ok,
    )
    bootstrap = ClusterBootstrap(size, options.bootstrap_replicates, options.seed, options.confidence)
    return ScoringCore(turns=turns, conversations=conversations, bootstrap=bootstrap, options=options)


def predicted_label(turns: pd.DataFrame) -> pd.Series:
    """What the bot acted on per turn: its intent, `nlu_fallback` when it fell back, `<no reply>` on failure."""
    label = turns["intent"].astype("string").where(~turns["fallback"].fillna(False).astype(bool), FALLBACK)
    return label.where(turns["status"] == TurnStatus.ok.value, NO_REPLY).fillna(NO_REPLY)
