"""Synthetic probes: one probe conversation sent to a bot in a fresh conversation, judged, retried once, and kept
as a `ProbeResult` (harness.records.probe_log) for the probe log, the metrics and `uptime.v1`.

A probe is a conversation of the probe set (an eval-set file, harness.project.probe_config). Its turns are sent as
replay sends them (harness.sources.replay): in order, stopping at a handoff or at a failed turn. Each attempt talks
to the bot under a sender id of its own, `harness-probe:<target>:<probe id>:<8 hex>` (`probe_sender_id`), so every
attempt starts from a fresh conversation, and bots and log importers can tell probes from customers by the prefix
(PROBE_SENDER_PREFIX: the reference bot writes a probe's handoff ticket with status `probe`, never `open`;
`harness logs import` skips probe senders).

An attempt is judged in the order of FAILED_CHECKS, the first failing check being recorded:

1. `unreachable` / `refused`: the bot adapter raised BotUnreachable / BotRefused (harness.errors). A failing bot is
   data here, not an error: the probe records it and the prober goes on.
2. `status`: a turn was not answered (`empty_reply`, `channel_error`, `timeout`, `silenced`), or the adapter raised
   anything else (its text kept), or a send outlived the turn timeout plus SEND_GRACE_S.
3. `outcome`: handed off when the probe expects self-service, or the reverse (not judged for a bot that does not
   report handoffs).
4. `queue`: handed off to another queue than expected.
5. `reply`: a reply check of the probe set failed, judged by harness.scoring.checks.judge on the row
   harness.sources.replay.observed_columns builds (a check the bot cannot be judged on does not fail).
6. `latency`: the slowest answered turn took longer than the probe's budget (a turn exactly on budget passes).

A failed first attempt is retried once, after `retry_delay_s`, in a new sender; then the second attempt counts
(`attempts` 2, `first_failure` the first attempt's `<check>: <detail>`).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness.bots.base import Bot, BotTurn
from harness.errors import BotRefused, BotUnreachable, InputError
from harness.project.eval_set import Conversation, Outcome
from harness.project.paths import project_root
from harness.project.probe_config import ProbeConfig, load_probe_set
from harness.records import Observation, TurnStatus
from harness.records.probe_log import ProbeResult
from harness.scoring.checks import judge
from harness.sources.replay import observed_columns

PROBE_SENDER_PREFIX = "harness-probe:"
"""Every probe conversation's sender id starts with this. The reference bot keeps the same string in
bot/bankbot/handoff_store.py (it cannot import the harness); a test checks they agree."""
SEND_GRACE_S = 5.0
"""A send that has not returned `turn_timeout_s` plus this many seconds after it started is abandoned and recorded
as a `timeout` (an adapter whose own timeout did not fire: a server trickling its reply byte by byte)."""

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


def utc_now() -> datetime:
    return datetime.now(UTC)


def probe_sender_id(target: str, probe_id: str) -> str:
    """A fresh sender id for one attempt at probe `probe_id` of bot `target`:
    `harness-probe:<target>:<probe id>:<8 hex digits>` (32 random bits, so an id is not reused in practice)."""
    return f"{PROBE_SENDER_PREFIX}{target}:{probe_id}:{secrets.token_hex(4)}"


def is_probe_sender(sender_id: str | None) -> bool:
    """True for a probe conversation's sender id (it starts with PROBE_SENDER_PREFIX)."""
    return bool(sender_id) and str(sender_id).startswith(PROBE_SENDER_PREFIX)


@dataclass(frozen=True)
class Attempt:
    """One attempt at a probe: when it ran, the turns the bot answered, and the first check it failed."""

    sender_id: str
    started_at: datetime
    finished_at: datetime
    replies: tuple[BotTurn, ...]
    failed_check: str | None = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.failed_check is None

    @property
    def latency_ms(self) -> float | None:
        """The slowest answered (`ok`) turn in milliseconds; None when no turn was answered."""
        answered = [r.latency_ms for r in self.replies if r.status is TurnStatus.ok]
        return max(answered) if answered else None

    @property
    def model(self) -> str | None:
        """The model that answered the last turn that names one."""
        return next((r.model for r in reversed(self.replies) if r.model), None)


async def run_probe(
    bot: Bot,
    conversation: Conversation,
    *,
    target: str,
    budget_ms: float,
    retry_delay_s: float,
    stale_after: timedelta,
    turn_timeout_s: float | None = None,
    prober: str = "",
    now: Clock = utc_now,
    sleep: Sleep = asyncio.sleep,
) -> ProbeResult:
    """Run probe `conversation` against `bot` (see the module docstring), retrying once after `retry_delay_s`
    seconds when the first attempt fails; the result of the attempt that counts.

    `budget_ms`: the latency budget (milliseconds). `stale_after`: how long the result stands (holds_until =
    started_at + stale_after, started_at being the first attempt's start). `turn_timeout_s`: when set, a send that
    has not returned within it plus SEND_GRACE_S is abandoned as a timeout. `now` and `sleep` are the clock and the
    wait (tests pass fakes). Raises nothing for anything the bot does; only cancellation propagates.
    """
    first = await attempt(bot, conversation, target=target, budget_ms=budget_ms, turn_timeout_s=turn_timeout_s, now=now)
    counted, first_failure = first, None
    if not first.ok:
        first_failure = f"{first.failed_check}: {first.detail}"
        await sleep(retry_delay_s)
        counted = await attempt(
            bot, conversation, target=target, budget_ms=budget_ms, turn_timeout_s=turn_timeout_s, now=now
        )
    return ProbeResult(
        target=target,
        probe=conversation.id,
        started_at=first.started_at,
        finished_at=counted.finished_at,
        ok=counted.ok,
        attempts=1 if counted is first else 2,
        latency_ms=counted.latency_ms,
        holds_until=first.started_at + stale_after,
        failed_check=counted.failed_check,
        detail=counted.detail,
        first_failure=first_failure,
        model=counted.model,
        prober=prober,
    )


async def attempt(
    bot: Bot,
    conversation: Conversation,
    *,
    target: str,
    budget_ms: float,
    turn_timeout_s: float | None = None,
    now: Clock = utc_now,
) -> Attempt:
    """One attempt at a probe in a fresh sender: send its turns until a handoff or a failed turn, then judge."""
    sender = probe_sender_id(target, conversation.id)
    started = now()
    replies: list[BotTurn] = []
    failure: tuple[str, str] | None = None
    limit = None if turn_timeout_s is None else turn_timeout_s + SEND_GRACE_S
    for index, turn in enumerate(conversation.turns):
        try:
            reply = await asyncio.wait_for(bot.send(sender, turn.text), limit)
        except BotUnreachable as exc:
            failure = ("unreachable", f"turn {index}: {exc}")
        except BotRefused as exc:
            failure = ("refused", f"turn {index}: {exc}")
        except TimeoutError as exc:
            within = f"no reply within {limit:g} s" if limit is not None else f"TimeoutError: {exc}"
            failure = ("status", f"turn {index}: timeout: {within}")
        except Exception as exc:  # noqa: BLE001 - a failing bot adapter is data: the prober must go on
            failure = ("status", f"turn {index}: the bot adapter failed: {type(exc).__name__}: {exc}")
        if failure is not None:
            break
        replies.append(reply)
        if reply.handed_off or reply.status is not TurnStatus.ok:
            break
    if failure is None:
        failure = judge_attempt(bot.observes, conversation, replies, budget_ms)
    check, detail = failure if failure is not None else (None, None)
    return Attempt(sender, started, now(), tuple(replies), check, detail)


def judge_attempt(
    observes: frozenset[Observation], conversation: Conversation, replies: Sequence[BotTurn], budget_ms: float
) -> tuple[str, str] | None:
    """(check, detail) of the first check the bot's `replies` to `conversation` fail (status, outcome, queue,
    reply, latency, in that order), or None when every check passes. `replies` are the sent turns' replies."""
    for index, reply in enumerate(replies):
        if reply.status is not TurnStatus.ok:
            why = f": {reply.error}" if reply.error else ""
            return "status", f"turn {index}: {reply.status.value}{why}"
    expected = conversation.expected
    handoff_at = next((i for i, r in enumerate(replies) if r.handed_off), None)
    if Observation.handoff in observes:
        if expected.outcome is Outcome.escalated and handoff_at is None:
            return "outcome", f"expected a handoff to {expected.queue}, the bot self-served ({len(replies)} turn(s))"
        if handoff_at is not None:
            handoff = replies[handoff_at].handoff
            queue = handoff.queue if handoff is not None else None
            shown = queue if queue is not None else "an unknown queue"
            if expected.outcome is Outcome.self_served:
                return "outcome", f"turn {handoff_at}: expected self-service, the bot handed off to {shown}"
            if queue != expected.queue:
                return "queue", f"turn {handoff_at}: handed off to {shown}, expected {expected.queue}"
    for index, (turn, reply) in enumerate(zip(conversation.turns, replies, strict=False)):
        if turn.expect is None:
            continue
        passed, reasons = judge(turn.expect, observed_columns(reply, observes))
        if passed is False:
            return "reply", f"turn {index}: {'; '.join(reasons)}"
    slowest = max(range(len(replies)), key=lambda i: replies[i].latency_ms, default=None)
    if slowest is not None and replies[slowest].latency_ms > budget_ms:
        return "latency", f"turn {slowest}: {replies[slowest].latency_ms:.0f} ms, over the budget of {budget_ms:g} ms"
    return None


async def run_cycle(
    bot: Bot,
    probes: Sequence[Conversation],
    config: ProbeConfig,
    *,
    prober: str = "",
    now: Clock = utc_now,
    sleep: Sleep = asyncio.sleep,
) -> list[ProbeResult]:
    """Every probe of the set against `bot`, one after the other (each with its retry), with the configuration's
    budgets, retry delay, turn timeout and staleness; the results in probe order. Raises nothing for anything the
    bot does."""
    results = []
    for conversation in probes:
        results.append(
            await run_probe(
                bot,
                conversation,
                target=config.target,
                budget_ms=config.budget_ms(conversation.id),
                retry_delay_s=config.retry_delay_s,
                stale_after=config.stale_after,
                turn_timeout_s=config.turn_timeout_s,
                prober=prober,
                now=now,
                sleep=sleep,
            )
        )
    return results


def load_probes(config: ProbeConfig, root: Path | None = None) -> tuple[Conversation, ...]:
    """The configured probe set, checked against the configured bot's vocabulary and what it reports (as
    `harness run` checks eval sets: harness.pipeline.load_suite). Raises InputError listing every problem."""
    from harness.bots.kinds import observes, vocabulary

    root = root if root is not None else project_root()
    run_config = config.run_config()
    return load_probe_set(config, vocabulary=vocabulary(run_config, root), observes=observes(run_config), root=root)


def longest_cycle_s(probes: Sequence[Conversation], config: ProbeConfig) -> float:
    """The longest one cycle of `probes` can take, in seconds: against a bot that hangs, every turn of both attempts
    of every probe waits `turn_timeout_s` plus SEND_GRACE_S, and each retry waits `retry_delay_s` first."""
    per_turn = config.turn_timeout_s + SEND_GRACE_S
    return sum(2 * len(c.turns) * per_turn + config.retry_delay_s for c in probes)


def with_stale_after(probes: Sequence[Conversation], config: ProbeConfig) -> ProbeConfig:
    """`config` with `stale_after_s` set so a result stands until its probe's next result, even when the bot hangs.

    The next result of a probe can start as late as the longest cycle (`longest_cycle_s`) plus the interval and the
    jitter after the previous one: a result that expired before then would turn a hanging bot's outage into
    unknown time. The default is the larger of 3 * interval + jitter and that bound (plus one interval, so one late
    cycle does not make the state unknown); a `stale_after_s` the configuration sets must exceed the bound.
    Raises InputError naming the bound and how to meet it."""
    schedule = config.schedule
    bound = longest_cycle_s(probes, config) + schedule.interval_s + schedule.jitter_s
    if config.stale_after_s is None:
        default = max(3 * schedule.interval_s + schedule.jitter_s, bound + schedule.interval_s)
        return config.model_copy(update={"stale_after_s": default})
    if config.stale_after_s <= bound:
        raise InputError(
            "results would expire before the next ones arrive",
            [
                f"{config.source or 'the probe configuration'}: stale_after_s: {config.stale_after_s:g} s is not "
                f"above {bound:g} s, the longest "
                f"a probe's next result can take against a bot that hangs ({len(probes)} probe(s), every turn of "
                f"both attempts waiting turn_timeout_s {config.turn_timeout_s:g} s + {SEND_GRACE_S:g} s, the retry "
                f"delay, then interval_s + jitter_s): raise stale_after_s (or leave it out), or lower turn_timeout_s"
            ],
        )
    return config
