"""The per-turn record table: the single source of truth of a run.

One row per customer turn of every replayed conversation, sent or not: the eval set's expectation beside what
the bot did (its trace). Every KPI, report, MLflow log and gate reads this table only; re-scoring an old run
never needs the bot. Stored as Parquet (`turns.parquet`).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import pandas as pd

from harness.errors import InputError

RECORDS_VERSION = 1


class TurnStatus(StrEnum):
    """What happened when the harness sent (or did not send) a customer turn."""

    ok = "ok"
    """The bot answered with at least one message."""
    empty_reply = "empty_reply"
    """The channel answered but the bot said nothing (our channel reports it as a 500 `empty_reply`)."""
    channel_error = "channel_error"
    """The channel answered with an error status or an unreadable body."""
    timeout = "timeout"
    """No answer within the per-turn timeout."""
    silenced = "silenced"
    """Sent after the conversation was handed off; the bot stayed silent as it should."""
    not_sent = "not_sent"
    """Not sent: the conversation had been handed off or had failed earlier."""


FAILED_STATUSES = (TurnStatus.empty_reply, TurnStatus.channel_error, TurnStatus.timeout)


class Observation(StrEnum):
    """What a bot kind can report about a turn, beyond status and latency (which every kind observes).

    A bot kind declares the observations it makes; the columns of an observation it does not make are null in the
    table, and a KPI that needs it is undefined (with a warning naming the observation), never 0.
    """

    messages = "messages"
    """The bot's reply texts (`bot_messages`, `n_bot_messages`)."""
    intent = "intent"
    """The recognised intent and its confidence (`intent`, `confidence`)."""
    ranking = "ranking"
    """The intent ranking (`ranking`)."""
    fallback = "fallback"
    """Whether the bot fell back (`fallback`)."""
    actions = "actions"
    """The actions the bot ran in the turn (`actions`)."""
    slots = "slots"
    """The slots the bot set in the turn (`slots_set`)."""
    handoff = "handoff"
    """Whether, and to which queue, the bot handed off (`handoff_queue`, `state`)."""
    handoff_rule = "handoff_rule"
    """Which escalation rule fired (`handoff_rule`)."""
    ticket = "ticket"
    """The human queue's ticket id (`ticket_id`)."""
    active_form = "active_form"
    """The form (Rasa's active loop) waiting for an answer (`active_form`)."""
    model = "model"
    """The bot model that answered (`model`)."""


ALL_OBSERVATIONS = frozenset(Observation)

# Column -> dtype. Lists and mappings from the trace are stored as JSON text to keep the table flat.
COLUMNS: dict[str, str] = {
    "run_id": "string",
    "eval_set": "string",
    "conversation_id": "string",
    "sender_id": "string",  # the bot-side conversation of this attempt: <run id>:<conversation id>:<nonce>
    "tags": "string",  # JSON list
    "critical": "string",
    "expected_outcome": "string",  # self_served | escalated
    "expected_queue": "string",
    "expected_rule": "string",
    "resolvable": "boolean",
    "turn_index": "int32",
    "text": "string",
    "expected_intent": "string",  # intent name, out_of_scope, or null (free-text answer)
    "checks": "string",  # JSON of the turn's checks, or null
    "status": "string",  # TurnStatus
    "attempts": "int16",
    "http_status": "Int16",
    "error": "string",
    "bot_messages": "string",  # JSON list of texts
    "n_bot_messages": "int16",
    "intent": "string",
    "confidence": "float32",
    "ranking": "string",  # JSON list of {name, confidence}
    "fallback": "boolean",
    "actions": "string",  # JSON list
    "slots_set": "string",  # JSON mapping
    "handoff_queue": "string",
    "handoff_rule": "string",
    "ticket_id": "string",
    "state": "string",
    "active_form": "string",
    "latency_ms": "float32",
    "model": "string",
    "check_passed": "boolean",  # null when the turn has no checks or was not sent
    "check_failures": "string",  # JSON list of reasons
}


def to_frame(rows: list[dict]) -> pd.DataFrame:
    """A record table with the canonical columns and dtypes from row dicts (missing keys become null)."""
    frame = pd.DataFrame.from_records(rows, columns=list(COLUMNS))
    return frame.astype(COLUMNS)


def write(frame: pd.DataFrame, path: Path) -> None:
    frame.to_parquet(path, index=False)


def read(path: Path) -> pd.DataFrame:
    """A record table from Parquet, with the canonical dtypes; InputError if the file is missing.

    A table written before a column existed (for example `sender_id`, added in records version 1 without a bump,
    absent from older runs and baselines) gets that column as null.
    """
    if not path.is_file():
        raise InputError("no turn records", [f"{path}: missing; give a finished run folder (one with turns.parquet)"])
    frame = pd.read_parquet(path)
    extra = [column for column in frame.columns if column not in COLUMNS]
    return frame.reindex(columns=[*COLUMNS, *extra]).astype(COLUMNS)
