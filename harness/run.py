"""`harness run`: validate the eval sets, replay them through the channel, score, report, and track.

A run folder (`runs/<run id>/`) holds run.json (what is being measured), journal.jsonl (finished conversations,
written as they finish), and at the end turns.parquet, scorecard.json and report.html. An interrupted run is
finished with `harness run --resume <run folder>`: only the conversations missing from the journal are sent.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from harness import __version__
from harness.bot_config import load_queue_config
from harness.channel import Channel, HttpChannel
from harness.config import RunConfig
from harness.errors import InputError
from harness.eval_set import EvalSuite, load_eval_sets
from harness.intents import load_catalog
from harness.metrics import ScoringCore, ScoringOptions, build_core
from harness.paths import REPO_ROOT, ProjectPaths
from harness.records import read, to_frame, write
from harness.replay import Journal, replay
from harness.report import write_report
from harness.scorecard import KPI_DEFINITIONS, Scorecard, build_scorecard

RUN_FILE = "run.json"


@dataclass(frozen=True)
class RunPlan:
    """A run about to replay (new or resumed)."""

    run_id: str
    run_dir: Path
    config: RunConfig
    suite: EvalSuite
    meta: dict[str, Any]

    @property
    def journal(self) -> Journal:
        return Journal(self.run_dir / "journal.jsonl")


def git_sha(root: Path = REPO_ROOT) -> str:
    """The checkout's commit, with `-dirty` if it has uncommitted changes; `unknown` outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def load_suite(config: RunConfig, paths: ProjectPaths | None = None) -> EvalSuite:
    paths = paths or ProjectPaths()
    queues = load_queue_config(paths.escalation_policy)
    catalog = load_catalog(paths.intents, known_queues=queues.queues)
    return load_eval_sets(config.eval_sets, intents=catalog.names(), queues=queues.queues, rules=queues.rules)


def new_run(config: RunConfig) -> RunPlan:
    """Validate the eval sets and create the run folder with run.json."""
    suite = load_suite(config)
    run_id = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
    run_dir = config.output_dir / run_id
    run_dir.mkdir(parents=True)
    meta = {
        "run_id": run_id,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "eval_set_hash": suite.content_hash,
        "eval_set_version": suite.version,
        "eval_set_files": [
            str(p.relative_to(REPO_ROOT)) if p.is_relative_to(REPO_ROOT) else str(p) for p in suite.files
        ],
        "harness_version": __version__,
        "git_sha": git_sha(),
        "config": json.loads(config.model_dump_json()),
    }
    (run_dir / RUN_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return RunPlan(run_id, run_dir, config, suite, meta)


def resume_run(run_dir: Path, overrides: Callable[[RunConfig], RunConfig] = lambda c: c) -> RunPlan:
    """Reopen an interrupted run; refuses when the eval sets changed since it started."""
    try:
        meta = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError("cannot resume", [f"{run_dir / RUN_FILE}: {exc}; is this a run folder?"]) from None
    config = overrides(RunConfig.model_validate(meta["config"]))
    suite = load_suite(config)
    if suite.content_hash != meta["eval_set_hash"]:
        raise InputError(
            "cannot resume: the eval sets changed since the run started",
            [
                f"{config.eval_sets}: content hash is now {suite.content_hash[:12]}, the run measured "
                f"{meta['eval_set_hash'][:12]}; start a new run instead"
            ],
        )
    return RunPlan(meta["run_id"], run_dir, config, suite, meta)


def replay_all(plan: RunPlan, channel: Channel, on_conversation: Callable[[str], None]) -> pd.DataFrame:
    """Replay what the journal lacks; the turn records of the whole run."""

    async def go() -> dict[str, list[dict[str, Any]]]:
        try:
            return await replay(
                plan.suite,
                channel,
                run_id=plan.run_id,
                journal=plan.journal,
                concurrency=plan.config.replay.concurrency,
                on_conversation=on_conversation,
            )
        finally:
            await channel.aclose()

    rows_by_conversation = asyncio.run(go())
    return to_frame([row for rows in rows_by_conversation.values() for row in rows])


def http_channel(config: RunConfig, token: str) -> HttpChannel:
    if not token:
        raise InputError(
            "no bearer token for the bot",
            [f"set ${config.bot.token_env}, pass --token, or use --serve-bot to start the reference bot"],
        )
    r = config.replay
    return HttpChannel(
        config.bot.url,
        token,
        timeout_s=r.turn_timeout_s,
        retries=r.retries,
        backoff_s=r.backoff_s,
        max_connections=max(4, r.concurrency),
    )


def bot_model(records: pd.DataFrame) -> str:
    """The one bot model that answered; refuses a run whose turns were answered by different models."""
    models = sorted(set(records["model"].dropna()))
    if len(models) > 1:
        raise InputError(
            "the run mixes bot models",
            [f"turns were answered by {', '.join(models)}; a resumed run must talk to the same bot model"],
        )
    return models[0] if models else "unknown"


def score(records: pd.DataFrame, meta: dict[str, Any], config: RunConfig) -> tuple[ScoringCore, Scorecard]:
    """Scorecard of a record table (pure apart from reading `meta`)."""
    s = config.scoring
    core = build_core(records, ScoringOptions(s.bootstrap_replicates, s.seed, s.confidence))
    stamp = {
        **{k: meta[k] for k in ("run_id", "eval_set_hash", "eval_set_version", "harness_version", "git_sha")},
        "bot_model": bot_model(records),
        "definitions": KPI_DEFINITIONS,
        "config": meta["config"],
    }
    return core, build_scorecard(core, stamp)


def write_outputs(run_dir: Path, records: pd.DataFrame, core: ScoringCore, scorecard: Scorecard) -> list[Path]:
    """turns.parquet, scorecard.json and report.html in the run folder."""
    outputs = [run_dir / "turns.parquet", run_dir / "scorecard.json", run_dir / "report.html"]
    write(records, outputs[0])
    scorecard.write(outputs[1])
    write_report(core, scorecard, outputs[2])
    return outputs


def rescore(run_dir: Path) -> tuple[pd.DataFrame, ScoringCore, Scorecard]:
    """Score a finished run again from its turns.parquet, without the bot."""
    meta = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
    records = read(run_dir / "turns.parquet")
    core, scorecard = score(records, meta, RunConfig.model_validate(meta["config"]))
    return records, core, scorecard
