"""Replay: send each eval conversation turn by turn to a `Bot`, on the bot's own trajectory.

Free-running: the bot's replies are not corrected between turns. When the bot hands off, the remaining
customer turns are not sent (the conversation's outcome is the handoff); when a turn fails (error, timeout,
empty reply), the rest are not sent either, since the bot's state is unknown. Conversations run with bounded
concurrency.

Every attempt at a conversation talks to the bot under a sender id of its own (`new_sender_id`), so the bot
starts it from a fresh state: a conversation interrupted mid-way and sent again on resume never lands in the
tracker (or the handoff ticket) of its first attempt. The journal (`journal.jsonl`) records each attempt's start
before its first turn is sent and each finished conversation when it finishes; an interrupted run resumes
without resending finished conversations and knows which ones were cut off mid-way (`Journal.interrupted`).
One run measures one bot model: a reply from another model than the journaled one stops the run
(`BotModelChanged`).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.bots.base import Bot, BotTurn
from harness.errors import BotModelChanged, InputError
from harness.project.eval_set import EvalConversation, EvalSuite, Turn
from harness.records import FAILED_STATUSES, Observation, TurnStatus


def new_sender_id(run_id: str, conversation_id: str) -> str:
    """The sender id of one attempt at a conversation: `<run id>:<conversation id>:<8 hex digits>`.

    The nonce is 32 random bits, so an id is not reused in practice and the bot opens a fresh conversation (tracker,
    tickets) for every attempt. Neither a run id nor a conversation id contains `:`, so the parts split back
    unambiguously.
    """
    return f"{run_id}:{conversation_id}:{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Interrupted:
    """A conversation whose attempts started (the bot may have received some of its turns) but never finished."""

    conversation_id: str
    sender_ids: tuple[str, ...]
    """The abandoned sender ids, oldest first: where the bot may hold partial conversations or stray tickets."""


class Journal:
    """A run's journal (`journal.jsonl`), one JSON line per event, written and fsynced as it happens.

    `{"event": "started", "conversation_id", "sender_id", "at"}` before an attempt's first turn is sent;
    `{"event": "finished", "conversation_id", "sender_id", "rows"}` when it finishes. Journals written before
    attempts were tracked hold only `{"conversation_id", "rows"}` lines, read as finished conversations.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def _entries(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a last line cut short by a crash
            if isinstance(entry, dict) and "conversation_id" in entry:
                yield entry

    def finished(self) -> dict[str, list[dict[str, Any]]]:
        """conversation id -> its turn rows; a last line cut short by a crash is ignored.

        Rows of a journal written before sender ids were recorded get the sender id that harness used,
        `<run id>:<conversation id>`.
        """
        done: dict[str, list[dict[str, Any]]] = {}
        for entry in self._entries():
            if entry.get("event", "finished") == "finished" and "rows" in entry:
                rows = entry["rows"]
                for row in rows:
                    row.setdefault("sender_id", f"{row['run_id']}:{row['conversation_id']}")
                done[entry["conversation_id"]] = rows
        return done

    def interrupted(self) -> list[Interrupted]:
        """Conversations started but not finished, in the order they first started, with their abandoned senders."""
        started: dict[str, list[str]] = {}
        finished: set[str] = set()
        for entry in self._entries():
            event = entry.get("event", "finished")
            if event == "started":
                started.setdefault(entry["conversation_id"], []).append(entry["sender_id"])
            elif event == "finished":
                finished.add(entry["conversation_id"])
        return [Interrupted(c, tuple(senders)) for c, senders in started.items() if c not in finished]

    def tracks_attempts(self) -> bool:
        """False for a non-empty journal written before attempts were journaled: it cannot tell which
        conversations were in flight when the run stopped."""
        entries = list(self._entries())
        return not entries or any("event" in entry for entry in entries)

    def model(self) -> str | None:
        """The bot model that answered the journaled turns (None if none answered).

        Raises InputError when the journal mixes models (written by a harness that did not pin the model).
        """
        models = sorted({r["model"] for rows in self.finished().values() for r in rows if r.get("model")})
        if len(models) > 1:
            raise InputError(
                "the run's journal mixes bot models",
                [f"{self.path}: turns answered by {', '.join(models)}; a run measures one model: start a new run"],
            )
        return models[0] if models else None

    def start(self, conversation_id: str, sender_id: str) -> None:
        """Record that an attempt is about to send its first turn."""
        at = datetime.now(UTC).isoformat(timespec="seconds")
        self._write({"event": "started", "conversation_id": conversation_id, "sender_id": sender_id, "at": at})

    def append(self, conversation_id: str, rows: list[dict[str, Any]]) -> None:
        """Record a finished conversation (its rows carry the attempt's sender id)."""
        sender = rows[0].get("sender_id") if rows else None
        self._write({"event": "finished", "conversation_id": conversation_id, "sender_id": sender, "rows": rows})

    def _write(self, entry: dict[str, Any]) -> None:
        with self.path.open("a+b") as out:
            # A crash may have cut the last line short: start on a line of our own so this entry stays readable.
            size = out.seek(0, os.SEEK_END)
            if size:
                out.seek(size - 1)
                if out.read(1) != b"\n":
                    out.write(b"\n")
            out.write(json.dumps(entry).encode("utf-8") + b"\n")
            out.flush()
            os.fsync(out.fileno())


@dataclass
class ModelGuard:
    """The one bot model a run measures: pinned by the journal or the served model, else by the first reply.

    `check` raises BotModelChanged at the first reply from another model (replies that carry no model pass).
    """

    expected: str | None = None
    source: str = "its journaled conversations"
    """Where `expected` comes from, for the error message."""

    def check(self, turn: BotTurn, conversation_id: str) -> None:
        """Pin the model of the first reply that names one; raise BotModelChanged if this reply names another."""
        model = turn.model
        if not model:
            return
        if self.expected is None:
            self.expected, self.source = model, f"its first reply, in conversation {conversation_id}"
            return
        if model != self.expected:
            raise BotModelChanged(
                f"conversation {conversation_id} was answered by bot model {model}, but this run measures "
                f"{self.expected} ({self.source}); the run stopped and that conversation was not journaled. "
                f"One run measures one bot model: start a new run (`harness run`) to measure {model}, or resume "
                f"against a bot serving {self.expected}"
            )


def turn_row(
    run_id: str,
    item: EvalConversation,
    index: int,
    turn: Turn,
    reply: BotTurn | None,
    sender_id: str,
    observes: frozenset[Observation],
) -> dict[str, Any]:
    """One record: the eval set's expectation for a turn beside the bot's reaction (None when not sent).

    Columns of observations the bot kind does not make (`observes`) stay null; reply checks are judged later,
    from the table (`harness.scoring.checks`).
    """
    conversation = item.conversation
    row: dict[str, Any] = {
        "run_id": run_id,
        "eval_set": item.eval_set,
        "conversation_id": conversation.id,
        "sender_id": sender_id,
        "tags": json.dumps(conversation.tags),
        "critical": conversation.critical,
        "expected_outcome": conversation.expected.outcome.value,
        "expected_queue": conversation.expected.queue,
        "expected_rule": conversation.expected.rule,
        "resolvable": conversation.resolvable,
        "turn_index": index,
        "text": turn.text,
        "expected_intent": turn.intent,
        "checks": turn.expect.model_dump_json(exclude_defaults=True) if turn.expect else None,
        "status": TurnStatus.not_sent.value,
        "attempts": 0,
        "n_bot_messages": 0,
        "bot_messages": "[]",
    }
    if reply is None:
        return row
    row.update(observed_columns(reply, observes))
    return row


def observed_columns(reply: BotTurn, observes: frozenset[Observation]) -> dict[str, Any]:
    """The record columns of one bot turn; columns of observations not in `observes` are null."""
    sees = observes.__contains__
    handoff = reply.handoff
    messages = list(reply.messages or ())
    return {
        "status": reply.status.value,
        "attempts": reply.attempts,
        "http_status": reply.http_status,
        "error": reply.error,
        "bot_messages": json.dumps(messages) if sees(Observation.messages) else None,
        "n_bot_messages": len(messages),
        "intent": reply.intent if sees(Observation.intent) else None,
        "confidence": reply.confidence if sees(Observation.intent) else None,
        "ranking": json.dumps([{"name": r.name, "confidence": r.confidence} for r in reply.ranking])
        if sees(Observation.ranking) and reply.ranking is not None
        else None,
        "fallback": reply.fallback if sees(Observation.fallback) else None,
        "actions": json.dumps(list(reply.actions)) if sees(Observation.actions) and reply.actions is not None else None,
        "slots_set": json.dumps(dict(reply.slots_set))
        if sees(Observation.slots) and reply.slots_set is not None
        else None,
        "handoff_queue": handoff.queue if handoff and sees(Observation.handoff) else None,
        "handoff_rule": handoff.rule if handoff and sees(Observation.handoff_rule) else None,
        "ticket_id": handoff.ticket if handoff and sees(Observation.ticket) else None,
        "state": reply.state if sees(Observation.handoff) else None,
        "active_form": reply.active_form if sees(Observation.active_form) else None,
        "latency_ms": reply.latency_ms,
        "model": reply.model if sees(Observation.model) else None,
    }


async def replay_conversation(
    bot: Bot, run_id: str, item: EvalConversation, sender_id: str, guard: ModelGuard | None = None
) -> list[dict[str, Any]]:
    """Send one conversation's turns as `sender_id` until the bot hands off or fails; one row per turn.

    Raises BotModelChanged (from `guard`) at a reply from another model than the run's.
    """
    guard = guard or ModelGuard()
    rows = []
    stopped = False
    for index, turn in enumerate(item.conversation.turns):
        if stopped:
            rows.append(turn_row(run_id, item, index, turn, None, sender_id, bot.observes))
            continue
        reply = await bot.send(sender_id, turn.text)
        guard.check(reply, item.conversation.id)
        rows.append(turn_row(run_id, item, index, turn, reply, sender_id, bot.observes))
        stopped = reply.handed_off or reply.status in FAILED_STATUSES
    return rows


async def replay(
    suite: EvalSuite,
    bot: Bot,
    *,
    run_id: str,
    journal: Journal,
    concurrency: int,
    on_conversation: Callable[[str], None] = lambda _: None,
    expect_model: str | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Replay every conversation not yet in the journal; returns all rows (journaled and new) by conversation.

    Each attempt gets a fresh sender id, journaled as started before its first turn is sent. The run measures one
    bot model: the journaled one, else `expect_model` (the served model), else the first reply's.
    Raises the first run-stopping error (bot unreachable, token refused, BotModelChanged) after cancelling the
    other workers; conversations finished before it stay in the journal.
    """
    done = journal.finished()
    guard = ModelGuard(journal.model())
    if expect_model is not None and guard.expected not in (None, expect_model):
        raise BotModelChanged(
            f"this run measured bot model {guard.expected} ({guard.source}), but the bot about to be used serves "
            f"{expect_model}; nothing was sent. One run measures one bot model: start a new run to measure "
            f"{expect_model}"
        )
    if guard.expected is None and expect_model is not None:
        guard = ModelGuard(expect_model, "the model served for it")
    pending = [item for item in suite.conversations if item.conversation.id not in done]
    gate = asyncio.Semaphore(max(1, concurrency))

    async def worker(item: EvalConversation) -> None:
        async with gate:
            sender_id = new_sender_id(run_id, item.conversation.id)
            journal.start(item.conversation.id, sender_id)
            rows = await replay_conversation(bot, run_id, item, sender_id, guard)
            journal.append(item.conversation.id, rows)
            done[item.conversation.id] = rows
            on_conversation(item.conversation.id)

    try:
        async with asyncio.TaskGroup() as group:
            for item in pending:
                group.create_task(worker(item))
    except ExceptionGroup as failures:
        raise failures.exceptions[0] from None
    return {item.conversation.id: done[item.conversation.id] for item in suite.conversations}
