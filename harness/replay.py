"""Replay: send each eval conversation turn by turn through the channel, on the bot's own trajectory.

Free-running: the bot's replies are not corrected between turns. When the bot hands off, the remaining
customer turns are not sent (the conversation's outcome is the handoff); when a turn fails (error, timeout,
empty reply), the rest are not sent either, since the bot's state is unknown. Conversations run with bounded
concurrency; each finished conversation is appended to a journal, so an interrupted run resumes without
resending finished conversations.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.channel import Channel, ChannelReply
from harness.eval_set import EvalConversation, EvalSuite, Turn, TurnChecks
from harness.records import FAILED_STATUSES, TurnStatus


class Journal:
    """Finished conversations of a run, one JSON line each (`journal.jsonl`), written as they finish."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def finished(self) -> dict[str, list[dict[str, Any]]]:
        """conversation id -> its turn rows; a last line cut short by a crash is ignored."""
        done: dict[str, list[dict[str, Any]]] = {}
        if not self.path.exists():
            return done
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            done[entry["conversation_id"]] = entry["rows"]
        return done

    def append(self, conversation_id: str, rows: list[dict[str, Any]]) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"conversation_id": conversation_id, "rows": rows}) + "\n")
            out.flush()
            os.fsync(out.fileno())


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


def turn_row(run_id: str, item: EvalConversation, index: int, turn: Turn, reply: ChannelReply | None) -> dict:
    """One record: the eval set's expectation for a turn beside the bot's reply (None when not sent)."""
    conversation = item.conversation
    row: dict[str, Any] = {
        "run_id": run_id,
        "eval_set": item.eval_set,
        "conversation_id": conversation.id,
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


async def replay_conversation(channel: Channel, run_id: str, item: EvalConversation) -> list[dict[str, Any]]:
    """Send one conversation's turns until the bot hands off or fails; one row per turn."""
    sender = f"{run_id}:{item.conversation.id}"
    rows = []
    stopped = False
    for index, turn in enumerate(item.conversation.turns):
        if stopped:
            rows.append(turn_row(run_id, item, index, turn, None))
            continue
        reply = await channel.send(sender, turn.text)
        rows.append(turn_row(run_id, item, index, turn, reply))
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
) -> dict[str, list[dict[str, Any]]]:
    """Replay every conversation not yet in the journal; returns all rows (journaled and new) by conversation.

    Raises the first run-stopping error (bot unreachable, token refused) after cancelling the other workers;
    conversations finished before it stay in the journal.
    """
    done = journal.finished()
    pending = [item for item in suite.conversations if item.conversation.id not in done]
    gate = asyncio.Semaphore(max(1, concurrency))

    async def worker(item: EvalConversation) -> None:
        async with gate:
            rows = await replay_conversation(channel, run_id, item)
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
