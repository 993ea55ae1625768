"""Replay: send each eval conversation turn by turn through the channel, on the bot's own trajectory.

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
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.channel import Channel, ChannelReply
from harness.errors import HarnessError, InputError
from harness.eval_set import EvalConversation, EvalSuite, Turn, TurnChecks
from harness.records import FAILED_STATUSES, TurnStatus


class BotModelChanged(HarnessError):
    """A reply came from another bot model than the one the run measures; the run cannot go on."""


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

    def check(self, reply: ChannelReply, conversation_id: str) -> None:
        """Pin the model of the first reply that names one; raise BotModelChanged if this reply names another."""
        model = ((reply.body or {}).get("trace") or {}).get("model")
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


def evaluate_checks(checks: TurnChecks, body: dict[str, Any] | None) -> list[str]:
    """Why the bot's reply fails the turn's checks (empty when it passes)."""
    if body is None:
        return ["no reply from the bot"]
    trace = body.get("trace") or {}
    actions = trace.get("actions") or []
    slots = trace.get("slots_set") or {}
    reply = "\n".join(m.get("text", "") for m in body.get("messages") or [])
    failures = [f"action {a} did not run" for a in checks.actions if a not in actions]
    failures += [f"action {a} ran" for a in checks.not_actions if a in actions]
    failures += [f"slot {k} was {slots.get(k)!r}, expected {v!r}" for k, v in checks.slots.items() if slots.get(k) != v]
    if checks.reply_matches and not re.search(checks.reply_matches, reply, re.IGNORECASE):
        failures.append(f"reply does not match /{checks.reply_matches}/")
    if checks.reply_excludes and re.search(checks.reply_excludes, reply, re.IGNORECASE):
        failures.append(f"reply matches forbidden /{checks.reply_excludes}/")
    return failures


def turn_row(
    run_id: str, item: EvalConversation, index: int, turn: Turn, reply: ChannelReply | None, sender_id: str
) -> dict:
    """One record: the eval set's expectation for a turn beside the bot's reply (None when not sent)."""
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
    body = reply.body or {}
    trace = body.get("trace") or {}
    handoff = trace.get("handoff") or {}
    messages = [m.get("text", "") for m in body.get("messages") or []]
    row.update(
        {
            "status": reply.status.value,
            "attempts": reply.attempts,
            "http_status": reply.http_status,
            "error": reply.error,
            "bot_messages": json.dumps(messages),
            "n_bot_messages": len(messages),
            "intent": (trace.get("intent") or {}).get("name"),
            "confidence": (trace.get("intent") or {}).get("confidence"),
            "ranking": json.dumps(trace.get("ranking")) if trace else None,
            "fallback": trace.get("fallback") if trace else None,
            "actions": json.dumps(trace.get("actions")) if trace else None,
            "slots_set": json.dumps(trace.get("slots_set")) if trace else None,
            "handoff_queue": handoff.get("queue"),
            "handoff_rule": handoff.get("rule"),
            "ticket_id": handoff.get("ticket_id"),
            "state": body.get("state"),
            "active_form": trace.get("active_form"),
            "latency_ms": reply.latency_ms,
            "model": trace.get("model"),
        }
    )
    if turn.expect is not None and reply.status is not TurnStatus.silenced:
        failures = evaluate_checks(turn.expect, reply.body if reply.status is TurnStatus.ok else None)
        row["check_passed"] = not failures
        row["check_failures"] = json.dumps(failures)
    return row


async def replay_conversation(
    channel: Channel, run_id: str, item: EvalConversation, sender_id: str, guard: ModelGuard | None = None
) -> list[dict[str, Any]]:
    """Send one conversation's turns as `sender_id` until the bot hands off or fails; one row per turn.

    Raises BotModelChanged (from `guard`) at a reply from another model than the run's.
    """
    guard = guard or ModelGuard()
    rows = []
    stopped = False
    for index, turn in enumerate(item.conversation.turns):
        if stopped:
            rows.append(turn_row(run_id, item, index, turn, None, sender_id))
            continue
        reply = await channel.send(sender_id, turn.text)
        guard.check(reply, item.conversation.id)
        rows.append(turn_row(run_id, item, index, turn, reply, sender_id))
        body = reply.body or {}
        handed_off = bool((body.get("trace") or {}).get("handoff")) or body.get("state") == "handed_off"
        stopped = handed_off or reply.status in FAILED_STATUSES
    return rows


async def replay(
    suite: EvalSuite,
    channel: Channel,
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
            rows = await replay_conversation(channel, run_id, item, sender_id, guard)
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
