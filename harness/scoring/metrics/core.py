"""The scoring core: turn-level and per-conversation facts derived once from the turn records, shared by every
metric, the report, the review's flagging and the threshold sweep (one definition each, see `turn_facts`).

A conversation's actual outcome is `escalated:<queue>` when the bot handed it off; `self_served` when it reached
a completed end: every turn answered (no error, timeout or empty reply), the last answer not a fallback, and no
self-service flow left waiting for an answer; otherwise `abandoned` (the customer would have given up).

Failed and silent turns (kpis.md, "Clarifications (2026-11-30)"): a failed turn (`timeout`, `channel_error`,
`empty_reply`) is never a success for any KPI; a `silenced` turn (sent after a handoff, when the human owns the
conversation) and a `not_sent` turn belong to no bot KPI. A conversation without an expected outcome is
unlabelled (production logs): it has no expected label, and every labelled KPI leaves it out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness.records import FAILED_STATUSES, TurnStatus
from harness.scoring.metrics.intervals import ClusterBootstrap, quantile_intervals

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
    """The records (any order) plus `conv` (conversation code, by sorted id) and the turn facts of `turn_facts`."""
    conversations: pd.DataFrame
    """One row per conversation code: labels (`labelled`, `expected_label`, None when unlabelled) and derived
    outcome facts (see `build_core`)."""
    bootstrap: ClusterBootstrap
    options: ScoringOptions
    observed: frozenset[str] | None = None
    """What the bot kind observed (`harness.records.Observation` names); None: everything (runs recorded before
    bot kinds, tests). A KPI needing an observation outside it is undefined."""
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_conversations(self) -> int:
        return len(self.conversations)

    def latency(self) -> tuple[np.ndarray, dict[float, tuple[float, float] | None]]:
        """Latencies of answered turns and the intervals of LATENCY_QUANTILES (computed once; turns clustered by
        conversation, test inversion: see `quantile_intervals`)."""
        if "latency" not in self._cache:
            t = self.turns
            ok = (t["status"] == TurnStatus.ok.value).to_numpy(dtype=bool) & t["latency_ms"].notna().to_numpy()
            values = t["latency_ms"].to_numpy(dtype=np.float64, na_value=np.nan)[ok]
            intervals = quantile_intervals(values, t["conv"].to_numpy()[ok], LATENCY_QUANTILES, self.options.confidence)
            self._cache["latency"] = (values, intervals)
        return self._cache["latency"]


def _is(column: pd.Series, value: str) -> np.ndarray:
    """column == value per row, null reading as False (never pandas' ambiguous NA)."""
    return column.eq(value).fillna(False).to_numpy(dtype=bool)


def _true(column: pd.Series) -> np.ndarray:
    """A nullable boolean column as numpy booleans, null reading as False."""
    return column.fillna(False).to_numpy(dtype=bool)


TURN_FACTS = (
    "sent",
    "silenced",
    "failed",
    "bot_owned",
    "answered",
    "in_scope",
    "out_of_scope",
    "fell_back",
    "matched",
    "acts_in_scope",
    "recognised",
    "accepted",
    "rejected",
    "scored",
    "understood",
    "check_failed",
)


def turn_facts(records: pd.DataFrame) -> pd.DataFrame:
    """The turn-level facts, decided once: what every KPI, the report, the review and the threshold sweep read.

    Returns a frame with `records`' index and one boolean column (numpy `bool`, never null) per name in
    TURN_FACTS; a null anywhere in the trace (intent, confidence, fallback, handoff, checks) reads as "absent":
    - `sent`: the harness sent the turn (status not `not_sent`);
    - `silenced`: sent after a handoff; the human owns the conversation, so the turn belongs to no bot KPI;
    - `failed`: `timeout`, `channel_error` or `empty_reply`: never a success for any KPI;
    - `bot_owned`: sent and not silenced: the turns bot KPIs (recognition, out-of-scope rejection,
      availability, latency) count;
    - `answered`: the bot answered with at least one message (status `ok`);
    - `in_scope` / `out_of_scope`: the turn's label is an intent / `out_of_scope` (free-text turns, labelled
      null, are neither);
    - `fell_back`: the bot fell back (`fallback` true);
    - `matched`: answered, and the bot's best intent is the label (whatever its confidence);
    - `acts_in_scope`: answered as if understood, the fallback set aside: an intent other than `out_of_scope` or
      `nlu_fallback`, and no handoff;
    - `recognised`: bot-owned, in scope, matched, no fallback (the recognition hit);
    - `accepted`: bot-owned, out of scope, acts in scope, no fallback (a false acceptance);
    - `rejected`: bot-owned, out of scope, answered and not accepted (fallback, `out_of_scope` or handoff): a
      failed turn is neither accepted nor rejected, it is a miss;
    - `scored`: bot-owned and labelled in or out of scope (the turns recognition and rejection judge);
    - `understood`: scored and right: recognised (in scope) or rejected (out of scope);
    - `check_failed`: bot-owned, carrying reply checks, and not passed (judged and failed).

    The threshold sweep replaces "no fallback" by "confidence at least t" in `recognised` and `accepted`, and
    keeps everything else.
    """
    status = records["status"]
    sent = ~_is(status, TurnStatus.not_sent.value)
    silenced = _is(status, TurnStatus.silenced.value)
    failed = status.isin(FAILED).fillna(False).to_numpy(dtype=bool)
    bot_owned = sent & ~silenced
    answered = _is(status, TurnStatus.ok.value)
    expected = records["expected_intent"]
    out_of_scope = _is(expected, OUT_OF_SCOPE)
    in_scope = expected.notna().to_numpy(dtype=bool) & ~out_of_scope
    fell_back = _true(records["fallback"])
    intent = records["intent"]
    matched = answered & intent.eq(expected).fillna(False).to_numpy(dtype=bool)
    acts_in_scope = (
        answered
        & intent.notna().to_numpy(dtype=bool)
        & ~intent.isin([OUT_OF_SCOPE, FALLBACK]).fillna(False).to_numpy(dtype=bool)
        & records["handoff_queue"].isna().to_numpy(dtype=bool)
    )
    recognised = bot_owned & in_scope & matched & ~fell_back
    accepted = bot_owned & out_of_scope & acts_in_scope & ~fell_back
    rejected = bot_owned & out_of_scope & answered & ~accepted
    check_failed = bot_owned & records["checks"].notna().to_numpy(dtype=bool) & ~_true(records["check_passed"])
    facts = {
        "sent": sent,
        "silenced": silenced,
        "failed": failed,
        "bot_owned": bot_owned,
        "answered": answered,
        "in_scope": in_scope,
        "out_of_scope": out_of_scope,
        "fell_back": fell_back,
        "matched": matched,
        "acts_in_scope": acts_in_scope,
        "recognised": recognised,
        "accepted": accepted,
        "rejected": rejected,
        "scored": bot_owned & (in_scope | out_of_scope),
        "understood": recognised | rejected,
        "check_failed": check_failed,
    }
    return pd.DataFrame(facts, index=records.index)


def _per_conversation_sum(codes: np.ndarray, flags: np.ndarray, size: int) -> np.ndarray:
    return np.bincount(codes, weights=flags.astype(np.float64), minlength=size)


def _last(order: np.ndarray, codes: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Row positions of each conversation's last row among `keep` (`order` sorts by conversation, then turn)."""
    kept = order[keep[order]]
    kept_codes = codes[kept]
    return kept[np.r_[kept_codes[1:] != kept_codes[:-1], True]] if kept.size else kept


def build_core(
    records: pd.DataFrame, options: ScoringOptions = ScoringOptions(), observed: frozenset[str] | None = None
) -> ScoringCore:
    """Derive the turn facts and the per-conversation table from turn records (pure; the order of `records` does
    not matter; nulls anywhere the trace can be null, every turn status and unlabelled conversations are data).

    Per conversation: `labelled` (an expected outcome is given), `expected_label` (`self_served` or
    `escalated:<queue>`, None when unlabelled), `customer_turns` (sent, silenced included), `bot_messages`,
    `handed_off`, `actual_queue`, `errored` (a failed turn), `checks_ok` (every reply check of the conversation
    passed; a check on a turn never answered has not), `checks_failed` (a check was judged on a bot-owned turn and
    failed), `last_fallback` and `last_form_open` (of the last bot-owned turn), `completed`, `actual_outcome`,
    `resolved` (labelled, resolvable, expected self-service, completed, checks ok) and `correct_queue` (labelled,
    handed off to the expected queue).
    """
    codes, ids = pd.factorize(records["conversation_id"], sort=True)
    size = len(ids)
    facts = turn_facts(records)
    turns = records.assign(conv=codes, **{name: facts[name].to_numpy() for name in TURN_FACTS})
    sent = facts["sent"].to_numpy()
    bot_owned = facts["bot_owned"].to_numpy()
    # Rows in conversation and turn order, as positions: the frame itself is never reordered.
    order = np.lexsort((records["turn_index"].to_numpy(), codes))
    ordered_codes = codes[order]
    first_rows = order[np.r_[True, ordered_codes[1:] != ordered_codes[:-1]]] if size else order
    labels = records.iloc[first_rows][
        ["conversation_id", "expected_outcome", "expected_queue", "resolvable", "critical"]
    ].reset_index(drop=True)
    last_owned = _last(order, codes, bot_owned)
    # A handoff is a queue, or a handed-off state from a bot kind that cannot say to which queue.
    has_handoff = records["handoff_queue"].notna().to_numpy(dtype=bool) | (
        _is(records["state"], "handed_off") & ~facts["silenced"].to_numpy()
    )
    handoff_order = order[has_handoff[order]]
    handoff_codes = codes[handoff_order]
    first_handoff = (
        handoff_order[np.r_[True, handoff_codes[1:] != handoff_codes[:-1]]] if handoff_order.size else handoff_order
    )
    actual_queue = pd.Series(pd.NA, index=range(size), dtype="string")
    actual_queue.iloc[codes[first_handoff]] = records["handoff_queue"].to_numpy()[first_handoff]
    last_fallback = np.zeros(size, dtype=bool)
    last_fallback[codes[last_owned]] = facts["fell_back"].to_numpy()[last_owned]
    last_form_open = np.zeros(size, dtype=bool)
    last_form_open[codes[last_owned]] = records["active_form"].notna().to_numpy(dtype=bool)[last_owned]
    check_not_passed = records["checks"].notna().to_numpy(dtype=bool) & ~_true(records["check_passed"])
    customer_turns = _per_conversation_sum(codes, sent, size).astype(np.int64)
    handed_off = _per_conversation_sum(codes, has_handoff, size) > 0
    errored = _per_conversation_sum(codes, facts["failed"].to_numpy(), size) > 0
    checks_ok = _per_conversation_sum(codes, check_not_passed, size) == 0
    checks_failed = _per_conversation_sum(codes, facts["check_failed"].to_numpy(), size) > 0
    owned_turns = _per_conversation_sum(codes, bot_owned, size) > 0
    completed = ~handed_off & ~errored & owned_turns & ~last_fallback & ~last_form_open
    labelled = labels["expected_outcome"].notna().to_numpy(dtype=bool)  # null: unlabelled (production logs)
    expected_outcome = labels["expected_outcome"].fillna("").to_numpy(dtype=object)
    expected_queue = labels["expected_queue"].fillna("").to_numpy(dtype=object)
    expected_label = np.where(expected_outcome == "escalated", "escalated:" + expected_queue, "self_served")
    actual = np.where(
        handed_off,
        "escalated:" + actual_queue.fillna("").to_numpy(dtype=object),
        np.where(completed, "self_served", "abandoned"),
    )
    resolvable = _true(labels["resolvable"])
    conversations = labels.assign(
        labelled=labelled,
        customer_turns=customer_turns,
        bot_messages=np.bincount(
            codes, weights=records["n_bot_messages"].to_numpy(dtype=np.float64, na_value=0.0), minlength=size
        ).astype(np.int64),
        handed_off=handed_off,
        actual_queue=actual_queue,
        errored=errored,
        checks_ok=checks_ok,
        checks_failed=checks_failed,
        last_fallback=last_fallback,
        last_form_open=last_form_open,
        completed=completed,
        actual_outcome=actual,
        expected_label=pd.Series(
            [label if known else None for label, known in zip(expected_label, labelled, strict=True)], dtype=object
        ),
        resolved=labelled & resolvable & (expected_outcome == "self_served") & completed & checks_ok,
        correct_queue=labelled & handed_off & actual_queue.eq(labels["expected_queue"]).fillna(False).to_numpy(bool),
    )
    bootstrap = ClusterBootstrap(size, options.bootstrap_replicates, options.seed, options.confidence)
    return ScoringCore(
        turns=turns, conversations=conversations, bootstrap=bootstrap, options=options, observed=observed
    )


def predicted_label(turns: pd.DataFrame) -> pd.Series:
    """What the bot acted on per turn: its intent, `nlu_fallback` when it fell back, `<no reply>` when it did not
    answer (failed, silenced or not sent) or gave no intent."""
    label = turns["intent"].astype("string").where(~_true(turns["fallback"]), FALLBACK)
    return label.where(_is(turns["status"], TurnStatus.ok.value), NO_REPLY).fillna(NO_REPLY)
