"""Resuming an interrupted run (issue 11, items 1 and 2), with a fake bot that keeps state per sender id.

The fake bot behaves like the reference bot where it matters: two consecutive turns it does not understand hand
the conversation to `general`, "yes" in the card flow blocks the card, and asking for a person creates a ticket
holding every customer message the sender has sent. A run is interrupted deterministically by a channel that
fails as a dead bot after a number of messages.
"""

from __future__ import annotations

import asyncio
import json
import shlex
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

import harness.pipeline
from harness.bots.base import BotTurn
from harness.bots.scripted import CutOff, ScriptedBot, bot_turn
from harness.cli import app
from harness.errors import BotUnreachable, HarnessError
from harness.pipeline import load_suite
from harness.project.config import load_config
from harness.project.eval_set import EvalSuite
from harness.records import COLUMNS, TurnStatus, read, to_frame, write
from harness.sources.replay import Journal, replay

FIXTURES = Path(__file__).parents[1] / "eval_sets" / "resume"
NOT_UNDERSTOOD_FIRST = FIXTURES / "not_understood_first.yml"  # resume-a-001: broken-off sentence, card question
LOST_CARD_HANDOFF = FIXTURES / "lost_card_handoff.yml"  # resume-b-001: lost card, debit, yes, a person please
GIBBERISH = "I was just going to"  # the fixture's first turn, which the bot does not understand
BEHAVIOUR = [c for c in COLUMNS if c not in ("run_id", "sender_id", "latency_ms")]
runner = CliRunner()


@dataclass
class FakeBot:
    """The reference bot's state per sender id, as a ScriptedBot script."""

    model: str = "bankbot-test"
    said: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    tickets: dict[str, list[str]] = field(default_factory=dict)
    """sender id -> the customer messages on the ticket its handoff created."""
    blocks: Counter[str] = field(default_factory=Counter)
    """sender id -> how often action_block_card ran in that conversation."""

    def __call__(self, sender: str, text: str, turn: int) -> BotTurn:
        said = self.said[sender]
        said.append(text)
        if sender in self.tickets:
            self.tickets[sender].append(text)
            reply = bot_turn(None, messages=[], state="handed_off")
            return replace(reply, status=TurnStatus.silenced)
        if text == GIBBERISH:
            streak = next((i for i, t in enumerate(reversed(said)) if t != GIBBERISH), len(said))
            if streak >= 2:
                self.tickets[sender] = list(said)
                return self.answer(bot_turn(None, fallback=True, handoff=("general", "not_understood_twice")))
            return self.answer(bot_turn(None, fallback=True, actions=["action_not_understood"]))
        if text == "yes":
            self.blocks[sender] += 1
            return self.answer(bot_turn("affirm", actions=["action_block_card"], messages=["card is now blocked"]))
        if "person" in text:
            self.tickets[sender] = list(said)
            return self.answer(bot_turn("request_human", handoff=("cards", "explicit_human_request")))
        return self.answer(bot_turn("card_lost_stolen", actions=["block_card_form"]))

    def answer(self, reply: BotTurn) -> BotTurn:
        return replace(reply, model=self.model)


def suite_of(*files: Path) -> EvalSuite:
    folder = files[0].parent if len(files) > 1 else files[0]
    return load_suite(load_config(overrides={"eval_sets": str(folder)}).resolved())


def replay_into(suite: EvalSuite, channel: Any, journal: Journal, run_id: str = "r1") -> dict[str, list[dict]]:
    return asyncio.run(replay(suite, channel, run_id=run_id, journal=journal, concurrency=1))


def behaviour(rows_by_conversation: dict[str, list[dict]]) -> pd.DataFrame:
    frame = to_frame([row for rows in rows_by_conversation.values() for row in rows])
    return frame[BEHAVIOUR].reset_index(drop=True)


def interrupted_then_resumed(suite: EvalSuite, bot: FakeBot, sends: int, tmp_path: Path) -> dict[str, list[dict]]:
    channel = ScriptedBot(bot)
    journal = Journal(tmp_path / "journal.jsonl")
    with pytest.raises(BotUnreachable):
        replay_into(suite, CutOff(channel, sends), journal)
    return replay_into(suite, channel, journal)


def test_a_conversation_interrupted_after_turn_0_resumes_as_a_clean_run_would_score_it(tmp_path: Path) -> None:
    suite = suite_of(NOT_UNDERSTOOD_FIRST)
    clean = replay_into(suite, ScriptedBot(FakeBot()), Journal(tmp_path / "clean.jsonl"), run_id="clean")
    assert clean["resume-a-001"][0]["fallback"] and clean["resume-a-001"][1]["handoff_queue"] is None  # missed

    resumed = interrupted_then_resumed(suite, FakeBot(), 1, tmp_path)

    assert [row.get("handoff_queue") for row in resumed["resume-a-001"]] == [None, None]
    # Before the fix turn 0 was re-sent into the bot's old conversation: a second not-understood turn, handed
    # to `general` (a wrong-queue escalation instead of a missed one).
    pd.testing.assert_frame_equal(behaviour(resumed), behaviour(clean))


def test_a_lost_card_conversation_interrupted_after_3_turns_leaves_one_clean_ticket(tmp_path: Path) -> None:
    bot = FakeBot()
    resumed = interrupted_then_resumed(suite_of(LOST_CARD_HANDOFF), bot, 3, tmp_path)
    (sender,) = bot.tickets
    turns = ["lost my card on the bus", "debit", "yes", "can I get a person to go through the rest with me"]
    assert bot.tickets[sender] == turns  # before the fix: 7 customer messages
    assert bot.blocks[sender] == 1  # before the fix: the card was blocked twice in that conversation
    assert {row["sender_id"] for row in resumed["resume-b-001"]} == {sender}


def test_every_attempt_talks_to_the_bot_under_a_sender_id_that_never_received_a_message(tmp_path: Path) -> None:
    bot = FakeBot()
    interrupted_then_resumed(suite_of(LOST_CARD_HANDOFF), bot, 3, tmp_path)
    senders = list(bot.said)
    assert len(senders) == 2 and senders[0] != senders[1]
    assert bot.said[senders[0]] == ["lost my card on the bus", "debit", "yes"]
    assert bot.said[senders[1]][0] == "lost my card on the bus"  # the second attempt starts a fresh conversation
    run_id, conversation_id, nonce = senders[1].split(":")
    assert (run_id, conversation_id) == ("r1", "resume-b-001") and len(nonce) == 8


def test_an_attempt_is_journaled_as_started_before_its_first_turn_is_sent(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    bot = FakeBot()
    started_before_sending = []

    def script(sender: str, text: str, turn: int) -> BotTurn:
        lines = journal.path.read_text().splitlines() if journal.path.exists() else []
        entries = [json.loads(line) for line in lines]
        started_before_sending.append(
            any(e.get("event") == "started" and e.get("sender_id") == sender for e in entries)
        )
        return bot(sender, text, turn)

    with pytest.raises(BotUnreachable):
        replay_into(suite_of(LOST_CARD_HANDOFF), CutOff(ScriptedBot(script), 3), journal)
    assert started_before_sending == [True, True, True]
    (cut,) = journal.interrupted()
    assert cut.conversation_id == "resume-b-001" and cut.sender_ids == tuple(bot.said)
    assert journal.finished() == {}


def test_a_journal_written_before_attempts_were_tracked_still_resumes(tmp_path: Path) -> None:
    suite = suite_of(NOT_UNDERSTOOD_FIRST, LOST_CARD_HANDOFF)
    rows = replay_into(suite, ScriptedBot(FakeBot()), Journal(tmp_path / "clean.jsonl"))["resume-a-001"]
    old_rows = [{k: v for k, v in row.items() if k != "sender_id"} for row in rows]
    journal = Journal(tmp_path / "journal.jsonl")
    journal.path.write_text(json.dumps({"conversation_id": "resume-a-001", "rows": old_rows}) + "\n")
    assert not journal.tracks_attempts() and journal.interrupted() == []

    bot = FakeBot()
    resumed = replay_into(suite, ScriptedBot(bot), journal)
    assert [texts[0] for texts in bot.said.values()] == ["lost my card on the bus"]  # only the unfinished one
    assert {row["sender_id"] for row in resumed["resume-a-001"]} == {"r1:resume-a-001"}  # what old runs sent
    assert journal.tracks_attempts()


def test_an_entry_written_after_a_line_cut_short_by_a_crash_stays_readable(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    journal.path.write_text('{"conversation_id": "resume-a-001", "rows": [')
    replay_into(suite_of(LOST_CARD_HANDOFF), ScriptedBot(FakeBot()), journal)
    assert list(journal.finished()) == ["resume-b-001"]  # before the fix it was glued to the cut line and lost


def test_a_turn_table_written_before_sender_ids_reads_with_a_null_column(tmp_path: Path) -> None:
    rows = replay_into(suite_of(LOST_CARD_HANDOFF), ScriptedBot(FakeBot()), Journal(tmp_path / "j.jsonl"))
    frame = to_frame(rows["resume-b-001"])
    assert frame["sender_id"].notna().all()
    write(frame.drop(columns="sender_id"), tmp_path / "turns.parquet")
    old = read(tmp_path / "turns.parquet")
    assert list(old.columns) == list(COLUMNS) and old["sender_id"].isna().all()
    pd.testing.assert_frame_equal(old.drop(columns="sender_id"), frame.drop(columns="sender_id"))


def test_the_committed_baseline_without_sender_ids_still_reads() -> None:
    records = read(Path(__file__).parents[2] / "experiments" / "baseline" / "turns.parquet")
    assert "sender_id" in records.columns and len(records) > 0


def test_a_resume_against_another_bot_model_stops_at_its_first_reply(tmp_path: Path) -> None:
    suite = suite_of(NOT_UNDERSTOOD_FIRST, LOST_CARD_HANDOFF)
    journal = Journal(tmp_path / "journal.jsonl")
    with pytest.raises(BotUnreachable):  # resume-b-001 (4 turns) finishes, resume-a-001 is cut off
        replay_into(suite, CutOff(ScriptedBot(FakeBot("bankbot-old")), 4), journal)
    other = ScriptedBot(FakeBot("bankbot-new"))
    with pytest.raises(HarnessError, match=r"bankbot-new.*bankbot-old.*start a new run"):
        replay_into(suite, other, journal)
    assert len(other.sent) == 1  # nothing sent after the mismatched reply
    assert list(journal.finished()) == ["resume-b-001"]  # the mismatched conversation is not journaled


def test_a_bot_model_changing_mid_run_stops_the_run(tmp_path: Path) -> None:
    old, new = FakeBot("bankbot-old"), FakeBot("bankbot-new")
    channel = ScriptedBot(lambda s, t, n: (old if len(channel.sent) <= 4 else new)(s, t, n))
    with pytest.raises(HarnessError, match=r"bankbot-new.*bankbot-old \(its first reply"):
        replay_into(suite_of(NOT_UNDERSTOOD_FIRST, LOST_CARD_HANDOFF), channel, Journal(tmp_path / "j.jsonl"))


# ---------------------------------------------------------------- harness run --resume


@dataclass
class Channels:
    """Stands in for `harness.pipeline.connect`: hands out the test's channels in turn, noting the bot URLs."""

    queue: list[Any]
    urls: list[str] = field(default_factory=list)

    def __call__(self, config: Any, token: str) -> Any:
        self.urls.append(config.bot.url)
        return self.queue.pop(0)


def invoke(tmp_path: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["run", "--output-dir", str(tmp_path / "runs"), "--no-mlflow", *args])


def resume_hint(stderr: str) -> list[str]:
    """The arguments of the 'finish with:' command, after `harness run`."""
    command = stderr.split("finish with:\n", 1)[1].splitlines()[0]
    words = shlex.split(command)
    assert words[:2] == ["harness", "run"], command
    return words[2:]


def test_the_hinted_resume_talks_to_the_recorded_bot_and_reports_the_interrupted_conversation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = FakeBot()
    channels = Channels([CutOff(ScriptedBot(bot), 5), ScriptedBot(bot)])
    monkeypatch.setattr(harness.pipeline, "connect", channels)
    monkeypatch.setenv("REFERENCE_CHANNEL_TOKEN", "t")
    url = "http://bot.example:8080/webhooks/reference/webhook"
    first = invoke(tmp_path, "--bot-url", url, "--eval-sets", str(FIXTURES), "--concurrency", "1")
    assert first.exit_code == 2, first.stderr
    hint = resume_hint(first.stderr)
    assert "--bot-url" not in hint and "--serve-bot" not in hint

    second = runner.invoke(app, ["run", *hint, "--no-mlflow"])

    assert channels.urls == [url, url]  # before the fix: experiments/eval.yml's URL
    assert second.exit_code == 0, second.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    (abandoned,) = [s for s, said in bot.said.items() if said == [GIBBERISH]]
    assert "1 conversation(s) were interrupted" in second.stderr
    assert f"resume-a-001: {abandoned}" in second.stderr
    (resume,) = json.loads((run_dir / "run.json").read_text())["resumes"]
    assert resume["interrupted"] == [{"conversation_id": "resume-a-001", "abandoned_sender_ids": [abandoned]}]
    assert resume["bot"]["url"] == url and resume["at"]
    records = read(run_dir / "turns.parquet")
    assert abandoned not in set(records["sender_id"])
    assert records.loc[records["conversation_id"] == "resume-a-001", "handoff_queue"].isna().all()


def test_a_bot_url_given_on_resume_is_used_and_becomes_the_recorded_one(tmp_path: Path) -> None:
    config = load_config(overrides={"eval_sets": str(FIXTURES), "output_dir": str(tmp_path / "runs")}).resolved()
    plan = harness.pipeline.new_run(config)
    moved = harness.pipeline.resume_run(plan.run_dir, {"bot.url": "http://moved.example/webhook"})
    assert moved.config.bot.url == "http://moved.example/webhook"
    harness.pipeline.record_resume(moved)
    assert harness.pipeline.resume_run(plan.run_dir).config.bot.url == "http://moved.example/webhook"
    assert "--eval-sets" not in moved.resume_command() and "--bot-url" not in moved.resume_command()


def test_a_resume_refuses_to_change_what_the_run_measures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness.pipeline, "connect", Channels([]))  # no bot: nothing may be sent
    config = load_config(overrides={"eval_sets": str(FIXTURES), "output_dir": str(tmp_path / "runs")}).resolved()
    plan = harness.pipeline.new_run(config)
    result = invoke(tmp_path, "--resume", str(plan.run_dir), "--eval-sets", str(NOT_UNDERSTOOD_FIRST), "--token", "t")
    assert result.exit_code == 2
    assert f"eval_sets: the run measured '{FIXTURES}'; drop the flag, or start a new run" in result.stderr


def test_an_invalid_flag_on_resume_names_the_setting(tmp_path: Path) -> None:
    config = load_config(overrides={"eval_sets": str(FIXTURES), "output_dir": str(tmp_path / "runs")}).resolved()
    plan = harness.pipeline.new_run(config)
    result = invoke(tmp_path, "--resume", str(plan.run_dir), "--concurrency", "0", "--token", "t")
    assert result.exit_code == 2
    assert "replay.concurrency: Input should be greater than or equal to 1" in result.stderr


def test_a_resume_against_another_bot_model_is_a_run_stopping_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    after = ScriptedBot(FakeBot("bankbot-new"))
    monkeypatch.setattr(harness.pipeline, "connect", Channels([CutOff(ScriptedBot(FakeBot("bankbot-old")), 4), after]))
    first = invoke(
        tmp_path, "--bot-url", "http://b/w", "--token", "t", "--eval-sets", str(FIXTURES), "--concurrency", "1"
    )
    (run_dir,) = (tmp_path / "runs").iterdir()

    second = invoke(tmp_path, "--resume", str(run_dir), "--token", "t")

    assert first.exit_code == 2 and second.exit_code == 2
    assert "bot model bankbot-new, but this run measures bankbot-old" in second.stderr
    assert "start a new run" in second.stderr
    assert len(after.sent) == 1  # before the fix every remaining turn was sent, then scoring refused the mix
    assert list(Journal(run_dir / "journal.jsonl").finished()) == ["resume-b-001"]
    assert not (run_dir / "scorecard.json").exists()


@dataclass
class FakeServer:
    """Stands in for harness.bots.reference_bot.server.BotServer: records that it started, serves nothing."""

    started: list[str]
    kwargs: dict[str, Any]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.kwargs['rasa_port']}/webhooks/reference/webhook"

    def __enter__(self) -> FakeServer:
        self.started.append(self.url)
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def serve_fakes(monkeypatch: pytest.MonkeyPatch, model: list[str], started: list[str]) -> None:
    import harness.bots.reference_bot.nlu_build
    import harness.bots.reference_bot.server

    ports = iter(range(40001, 40100))
    monkeypatch.setattr(harness.bots.reference_bot.nlu_build, "build", lambda paths: None)
    monkeypatch.setattr(harness.bots.reference_bot.server, "train", lambda layout: Path(f"/models/{model[0]}.tar.gz"))
    monkeypatch.setattr(harness.bots.reference_bot.server, "free_port", lambda: next(ports))
    monkeypatch.setattr(harness.bots.reference_bot.server, "BotServer", lambda **kwargs: FakeServer(started, kwargs))


def test_a_run_that_served_its_bot_resumes_only_by_serving_the_model_it_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, started = ["bankbot-aaa"], []
    serve_fakes(monkeypatch, model, started)
    bot = FakeBot("bankbot-aaa")
    channels = Channels([CutOff(ScriptedBot(bot), 5), ScriptedBot(bot), ScriptedBot(bot)])
    monkeypatch.setattr(harness.pipeline, "connect", channels)
    first = invoke(tmp_path, "--serve-bot", "--eval-sets", str(FIXTURES), "--concurrency", "1")
    assert first.exit_code == 2
    hint = resume_hint(first.stderr)
    assert hint[-2:] == ["--serve-bot", "--no-mlflow"]  # the resume keeps MLflow off, as the run had it

    without = runner.invoke(app, ["run", *[word for word in hint if word != "--serve-bot"]])
    assert len(channels.queue) == 2  # nothing sent; before the fix: posted to experiments/eval.yml's URL
    assert without.exit_code == 2
    assert "the run served the reference bot itself" in without.stderr and "--serve-bot" in without.stderr

    model[0] = "bankbot-bbb"
    other = runner.invoke(app, ["run", *hint, "--no-mlflow"])
    assert other.exit_code == 2
    assert "the run measured bankbot-aaa; the bot's training inputs now give bankbot-bbb" in other.stderr
    assert len(started) == 1 and len(channels.queue) == 2  # refused before serving or sending anything

    model[0] = "bankbot-aaa"
    same = runner.invoke(app, ["run", *hint, "--no-mlflow"])
    assert same.exit_code == 0, same.stderr
    assert len(started) == 2 and channels.urls[-1] == started[-1]
