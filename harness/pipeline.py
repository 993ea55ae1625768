"""`harness run`: validate the eval sets, replay them through the channel, score, report, and track.

A run folder (`runs/<run id>/`) holds run.json (what is being measured, the bot it talked to, and one entry per
resume), journal.jsonl (conversation attempts as they start and finish), and at the end turns.parquet,
scorecard.json and report.html. An interrupted run is finished with `harness run --resume <run folder>`: only the
conversations missing from the journal are sent, each as a fresh conversation on the bot, to the bot the run
recorded (unless told otherwise) and only if it still serves the model the run measured.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
from pydantic import ValidationError

from harness import __version__
from harness.bots.base import Bot
from harness.bots.kinds import bot_settings, connect, observes, token_env, vocabulary
from harness.errors import BotUnreachable, HarnessError, InputError
from harness.project.config import RunConfig, with_overrides
from harness.project.eval_set import EvalSuite, load_eval_sets
from harness.project.paths import ProjectPaths, chosen_project, project_root
from harness.project.problems import problem_message, yaml_location
from harness.project.validation import check_observable
from harness.records import to_frame, write
from harness.records.run_folder import RUN_FILE, RunFolder
from harness.scoring.scored_run import ScoredRun
from harness.sinks.report import write_report
from harness.sinks.tracking import TrackedRun, artifact_root, log_run
from harness.sources.replay import Interrupted, Journal, replay

RESUMABLE = (
    "bot.url",
    "replay.concurrency",
    "replay.turn_timeout_s",
    "replay.retries",
    "tracking.uri",
    "tracking.experiment",
)
"""Settings a resume may change; the others (eval sets, output folder, scoring) are what the run measures."""


@dataclass(frozen=True)
class BotSession:
    """The bot one sitting of a run (its start, or a resume) talks to; recorded in run.json."""

    url: str
    """Where the bot was reached (the reference channel's webhook, a Rasa server's root, ...)."""
    served: bool = False
    """True when `harness run --serve-bot` started the bot for this sitting (its URL dies with the sitting)."""
    model: str | None = None
    """The served model's name (`bankbot-<fingerprint>`, as the channel's trace reports it); None for a bot the
    harness did not start, whose model is known from its replies."""
    kind: str = "reference.v1"
    """The bot kind (versioned) the run talked through."""
    observes: tuple[str, ...] | None = None
    """What that kind observes (`harness.records.Observation` names); None in runs recorded before kinds."""


@dataclass(frozen=True)
class RunPlan:
    """A run about to replay (new or resumed)."""

    run_id: str
    run_dir: Path
    config: RunConfig
    suite: EvalSuite
    meta: dict[str, Any]
    bot: BotSession
    """The bot this sitting talks to."""
    expected_model: str | None = None
    """The bot model the run measures, when known before sending: journaled replies, else the served model."""
    resumed: bool = False
    interrupted: tuple[Interrupted, ...] = ()
    """On a resume: conversations cut off mid-way, re-sent from their first turn under new sender ids."""
    journal_tracks_attempts: bool = True
    """False on a resume of a journal written before attempts were journaled (interruptions unknown)."""

    @property
    def journal(self) -> Journal:
        return Journal(RunFolder(self.run_dir).journal)

    def serving(self, url: str, model: str) -> RunPlan:
        """This plan talking to a bot the harness serves at `url` with `model` (the URL also goes in the config)."""
        bot = self.config.bot.model_copy(update={"url": url})
        return replace(
            self,
            config=self.config.model_copy(update={"bot": bot}),
            bot=replace(self.bot, url=url, served=True, model=model),
            expected_model=self.expected_model or model,
        )

    def resume_command(self) -> str:
        """The command that finishes this run: the recorded URL needs no flag, a served bot needs `--serve-bot`."""
        import shlex

        named = chosen_project()  # a project named by --project: the command must name it too, to run anywhere
        project = f"--project {shlex.quote(str(named.resolve()))} " if named is not None else ""
        served = " --serve-bot" if self.bot.served else ""
        return f"harness {project}run --resume {shlex.quote(str(self.run_dir))}{served}"


def git_sha(root: Path | None = None) -> str:
    """The commit of the checkout holding `root` (default: the project root), with `-dirty` if it has uncommitted
    changes; `unknown` outside git."""
    root = root if root is not None else project_root()
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def load_suite(config: RunConfig, paths: ProjectPaths | None = None) -> EvalSuite:
    """The configured eval sets, checked against the vocabulary of the configured bot and what it observes
    (InputError listing every problem)."""
    words = vocabulary(config, (paths or ProjectPaths()).root)
    suite = load_eval_sets(config.eval_sets, intents=words.intents, queues=words.queues, rules=words.rules)
    check_observable(suite, observes(config), bot_settings(config)[0].name)
    return suite


def new_run(config: RunConfig, *, served_model: str | None = None) -> RunPlan:
    """Validate the eval sets and create the run folder with run.json.

    `served_model` names the model when the harness serves the bot itself (`--serve-bot`).
    """
    suite = load_suite(config)
    root = project_root()
    run_id = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
    run_dir = config.output_dir / run_id
    run_dir.mkdir(parents=True)
    meta = {
        "run_id": run_id,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "eval_set_hash": suite.content_hash,
        "eval_set_version": suite.version,
        "eval_set_files": [str(p.relative_to(root)) if p.is_relative_to(root) else str(p) for p in suite.files],
        "harness_version": __version__,
        "git_sha": git_sha(root),
        "config": json.loads(config.model_dump_json()),
    }
    kind, settings = bot_settings(config)
    seen = tuple(sorted(observes(config)))
    bot = BotSession(settings.url, served=served_model is not None, model=served_model, kind=kind.name, observes=seen)
    meta["bot"] = asdict(bot)
    RunFolder(run_dir).write_meta(meta)
    return RunPlan(run_id, run_dir, config, suite, meta, bot, expected_model=served_model)


def bot_sessions(meta: dict[str, Any]) -> list[BotSession]:
    """The bots a run talked to, its start's first, then one per resume, from run.json.

    A run.json written before sessions were recorded gives its configured URL, not known to be served.
    """
    recorded = [meta.get("bot")] + [resume.get("bot") for resume in meta.get("resumes", [])]
    sessions = [
        BotSession(**{**session, "observes": _tuple(session.get("observes"))}) for session in recorded if session
    ]
    return sessions or [BotSession(meta["config"]["bot"]["url"])]


def resume_run(run_dir: Path, overrides: Mapping[str, Any] | None = None, *, serving: bool = False) -> RunPlan:
    """Reopen an interrupted run with the configuration and bot it recorded, changed only by `overrides`
    (dotted keys among RESUMABLE, such as {"bot.url": ...}; None values are ignored).

    `serving` says the caller will serve the bot itself (then `RunPlan.serving`). Raises InputError when the run
    finished already, when the eval sets changed since the run started, when an override is not resumable, and
    when the run served its bot and neither `serving` nor a bot URL is given (the recorded loopback URL died with
    that bot).
    """
    folder = RunFolder(run_dir)
    meta = folder.meta()
    if folder.finished():
        raise InputError(
            "nothing to resume: the run finished",
            [
                f"{folder.scorecard}: exists; start a new run (`harness run`), or score this one again without the "
                f"bot (`harness rescore {run_dir}`)"
            ],
        )
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    try:
        asked = RunConfig.model_validate(with_overrides(meta["config"], given)).resolved()
    except ValidationError as exc:
        where = f"{run_dir / RUN_FILE} with the flags given"
        raise InputError(
            "invalid settings",
            [f"{where}: {yaml_location(e['loc'], {})}: {problem_message(RunConfig, e)}" for e in exc.errors()],
        ) from None
    raw = json.loads(asked.model_dump_json())
    fixed = [k for k in sorted(set(given) - set(RESUMABLE)) if _dotted(raw, k) != _dotted(meta["config"], k)]
    if fixed:
        raise InputError(
            "cannot resume with these settings changed",
            [f"{k}: the run measured {_dotted(meta['config'], k)!r}; drop the flag, or start a new run" for k in fixed],
        )
    bot = bot_sessions(meta)[-1]
    if "bot.url" in given:
        bot = replace(bot, url=given["bot.url"], served=False, model=None)
    elif bot.served and not serving:
        raise InputError(
            "cannot resume: the run served the reference bot itself",
            [
                f"{run_dir / RUN_FILE}: the bot at {bot.url} (model {bot.model}) stopped with the run; finish with "
                f"`harness run --resume {run_dir} --serve-bot`, or give --bot-url of a bot serving {bot.model}"
            ],
        )
    config = asked.model_copy(update={"bot": asked.bot.model_copy(update={"url": bot.url})})
    suite = load_suite(config)
    if suite.content_hash != meta["eval_set_hash"]:
        raise InputError(
            "cannot resume: the eval sets changed since the run started",
            [
                f"{config.eval_sets}: content hash is now {suite.content_hash[:12]}, the run measured "
                f"{meta['eval_set_hash'][:12]}; start a new run instead"
            ],
        )
    journal = Journal(RunFolder(run_dir).journal)
    return RunPlan(
        meta["run_id"],
        run_dir,
        config,
        suite,
        meta,
        bot,
        expected_model=journal.model() or next((s.model for s in reversed(bot_sessions(meta)) if s.model), None),
        resumed=True,
        interrupted=tuple(journal.interrupted()),
        journal_tracks_attempts=journal.tracks_attempts(),
    )


def _tuple(values: list[str] | None) -> tuple[str, ...] | None:
    return tuple(values) if values is not None else None


def _dotted(raw: Any, key: str) -> Any:
    for part in key.split("."):
        raw = raw.get(part) if isinstance(raw, dict) else None
    return raw


def check_served_model(plan: RunPlan, model: str) -> None:
    """Refuse, before anything is served or sent, to resume a run with another model than it measured."""
    if plan.expected_model is not None and model != plan.expected_model:
        raise InputError(
            "cannot resume: --serve-bot would serve another bot model than the run measured",
            [
                f"{plan.run_dir / RUN_FILE}: the run measured {plan.expected_model}; the bot's training inputs now "
                f"give {model}. Start a new run (`harness run --serve-bot`) to measure {model}"
            ],
        )


def record_resume(plan: RunPlan) -> dict[str, Any]:
    """Append this resume to run.json's `resumes` (time, bot, conversations interrupted mid-way with their
    abandoned sender ids) before anything is sent; returns the entry."""
    entry = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "bot": asdict(plan.bot),
        "journaled": len(plan.journal.finished()),
        "interrupted": [
            {"conversation_id": i.conversation_id, "abandoned_sender_ids": list(i.sender_ids)} for i in plan.interrupted
        ],
        "journal_tracks_attempts": plan.journal_tracks_attempts,
    }
    meta = RunFolder(plan.run_dir).meta()
    meta.setdefault("resumes", []).append(entry)
    RunFolder(plan.run_dir).write_meta(meta)
    plan.meta.setdefault("resumes", []).append(entry)
    return entry


def resume_notice(plan: RunPlan) -> list[str]:
    """What a person resuming must know about the bot side: conversations cut off mid-way (the bot may hold
    partial conversations and stray handoff tickets under their abandoned sender ids)."""
    if not plan.journal_tracks_attempts:
        return [
            "this run's journal predates attempt tracking: it does not say which conversations were in flight when "
            f"the run stopped; the bot may hold partial conversations under `{plan.run_id}:<conversation id>` for "
            "the unfinished ones, which are now sent again as fresh conversations"
        ]
    if not plan.interrupted:
        return []
    lines = [
        f"{len(plan.interrupted)} conversation(s) were interrupted mid-way and are sent again from their first turn "
        "as fresh conversations; the bot may hold partial conversations (and handoff tickets) under the abandoned "
        f"sender ids (listed in {plan.run_dir / RUN_FILE} under `resumes`):"
    ]
    lines += [f"  {i.conversation_id}: {', '.join(i.sender_ids)}" for i in plan.interrupted]
    return lines


def replay_all(plan: RunPlan, bot: Bot, on_conversation: Callable[[str], None]) -> pd.DataFrame:
    """Replay what the journal lacks; the turn records of the whole run."""

    async def go() -> dict[str, list[dict[str, Any]]]:
        try:
            return await replay(
                plan.suite,
                bot,
                run_id=plan.run_id,
                journal=plan.journal,
                concurrency=plan.config.replay.concurrency,
                on_conversation=on_conversation,
                expect_model=plan.expected_model,
            )
        finally:
            await bot.aclose()

    rows_by_conversation = asyncio.run(go())
    return to_frame([row for rows in rows_by_conversation.values() for row in rows])


def write_outputs(folder: RunFolder, run: ScoredRun) -> list[Path]:
    """Write the scored run into its folder: turns.parquet (the records, checks judged), scorecard.json and
    report.html; returns their paths (`RunFolder.outputs`). ValueError for a run without records."""
    if run.records is None:
        raise ValueError(f"{run.source}: a run known by its scorecard alone has no turn records to write")
    write(run.records, folder.turns)
    run.scorecard.write(folder.scorecard)
    write_report(run, folder.report)
    return folder.outputs


# ---------------------------------------------------------------------------------------------------- the pipeline


class RunStopped(HarnessError):
    """The bot became unreachable or the run was interrupted mid-replay; the finished conversations are journaled
    and `resume_command` finishes the run. Nothing was logged to MLflow."""

    def __init__(self, plan: RunPlan, reason: str, token_hint: str | None, *, mlflow: bool = True) -> None:
        self.plan = plan
        self.reason = reason
        done = len(plan.journal.finished())
        command = plan.resume_command() + ("" if mlflow else " --no-mlflow")
        super().__init__(
            f"run stopped: {reason}\n{done} of {len(plan.suite)} conversations are journaled in {plan.run_dir}; "
            f"nothing was logged to MLflow. When the bot is back, finish with:\n  {command}"
            + (f"\n  ({token_hint})" if token_hint else "")
        )


class RunEvents(Protocol):
    """What a run tells its caller as it goes (the CLI shows it; `QuietEvents` says nothing)."""

    def training(self) -> None:
        """The harness is about to train the reference bot if its training inputs changed."""

    def serving(self, model: str, url: str) -> None:
        """The harness trains (if needed) and serves the reference bot (`model`) at `url` for this run."""

    def resuming(self, notice: list[str]) -> None:
        """A resume starts; `notice` says what the bot may still hold (`resume_notice`)."""

    def replaying(self, plan: RunPlan, already: int) -> None:
        """Replay starts: `already` conversations of `plan.suite` are journaled."""

    def replayed(self, conversation_id: str) -> None:
        """One more conversation finished."""

    def replay_done(self) -> None:
        """Replay ended (finished or stopped)."""


class QuietEvents:
    """Says nothing."""

    def training(self) -> None: ...

    def serving(self, model: str, url: str) -> None: ...

    def resuming(self, notice: list[str]) -> None: ...

    def replaying(self, plan: RunPlan, already: int) -> None: ...

    def replayed(self, conversation_id: str) -> None: ...

    def replay_done(self) -> None: ...


@dataclass(frozen=True)
class EvalResult:
    """A finished run: its plan, the scored run, the files written, and the MLflow run (None with mlflow off)."""

    plan: RunPlan
    run: ScoredRun
    outputs: list[Path]
    tracked: TrackedRun | None


def run_eval(
    config: RunConfig,
    *,
    resume: RunPlan | None = None,
    serve_bot: bool = False,
    token: str | None = None,
    mlflow: bool = True,
    events: RunEvents | None = None,
    paths: ProjectPaths | None = None,
) -> EvalResult:
    """`harness run` as stage calls: serve the reference bot if asked, connect the bot, open (or resume) the run,
    replay what the journal lacks, score once, write the run's files, log to MLflow.

    `resume` is a plan from `resume_run`. Raises RunStopped when the bot dies or the run is interrupted
    mid-replay, InputError for bad input and settings (before anything is sent), BotRefused / BotModelChanged
    when the bot refuses the harness or changes model.
    """
    events = events or QuietEvents()
    paths = paths or ProjectPaths()
    with ExitStack() as stack:
        served_model = None
        if serve_bot:
            served = stack.enter_context(serving_reference_bot(config, resume, paths, events))
            config, token, served_model = served.config, served.token, served.model
            if resume is not None:
                resume = resume.serving(served.url, served.model)
        bot = connect(config, token)
        if resume is not None:
            plan = resume
            record_resume(plan)
            events.resuming(resume_notice(plan))
        else:
            plan = new_run(config, served_model=served_model)
        events.replaying(plan, len(plan.journal.finished()))
        try:
            records = replay_all(plan, bot, events.replayed)
        except (BotUnreachable, KeyboardInterrupt) as exc:
            reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)
            variable = token_env(plan.config)
            needs_token = bool(token) and not plan.bot.served and not (variable and os.environ.get(variable))
            hint = f"with the bot's token: set ${variable} or add --token" if needs_token else None
            raise RunStopped(plan, reason, hint, mlflow=mlflow) from None
        finally:
            events.replay_done()
    run = ScoredRun.score(records, plan.meta, plan.config, source=str(plan.run_dir))
    folder = RunFolder(plan.run_dir)
    outputs = write_outputs(folder, run)
    tracked = None
    if mlflow:
        tracked = log_run(
            run,
            folder,
            tracking_uri=plan.config.tracking.uri,
            experiment=plan.config.tracking.experiment,
            artifact_root=artifact_root(plan.config.tracking.uri, paths.root),
            run_name=plan.run_id,
        )
    return EvalResult(plan, run, outputs, tracked)


@dataclass(frozen=True)
class ServedBot:
    config: RunConfig
    """The run configuration pointing at the served bot."""
    url: str
    token: str
    model: str
    server: Any = None
    """The running `BotServer` (process ids, `stop_process` / `start_process` for outage drills)."""


@contextmanager
def serving_reference_bot(
    config: RunConfig, resume: RunPlan | None, paths: ProjectPaths, events: RunEvents
) -> Iterator[ServedBot]:
    """Build the NLU data, train if needed and serve the reference bot on free loopback ports for one run; stops
    it on exit (also on errors and Ctrl-C). InputError for another bot kind, or a resume whose model changed."""
    import secrets

    from harness.bots.reference_bot.nlu_build import build
    from harness.bots.reference_bot.server import BotLayout, BotServer, free_port, train

    if not bot_settings(config)[0].name.startswith("reference."):
        raise InputError(
            "--serve-bot serves the reference bot only",
            [f"bot.kind is {config.bot.kind}: start your bot yourself and give its URL (--bot-url)"],
        )
    paths.require_reference_folders("--serve-bot", "intents", "bot")
    build(paths)
    events.training()
    model = train(BotLayout(paths.bot, paths.root / ".venv-bot"))
    name = model.name.removesuffix(".tar.gz")
    if resume is not None:
        check_served_model(resume, name)
    token = secrets.token_urlsafe(16)
    server = BotServer(
        model=model,
        token=token,
        handoff_db=paths.bot / "var" / "eval-handoff.sqlite3",
        tracker_store=str(paths.bot / "var" / "eval-tracker.sqlite3"),
        rasa_port=free_port(),
        action_port=free_port(),
    )
    with server:
        events.serving(model.name, server.url)
        served = config.model_copy(update={"bot": config.bot.model_copy(update={"url": server.url})})
        yield ServedBot(served, server.url, token, name, server)
