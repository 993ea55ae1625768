"""`harness run` and `harness rescore`: evaluate a bot (harness.pipeline.run_eval) and show the scorecard."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from harness.cli.common import app, err, out, reports_errors
from harness.records.run_folder import RunFolder


@app.command("run")
@reports_errors
def run_command(
    config_file: Annotated[
        Path | None, typer.Option("--config", help="Run configuration (default: the project's, harness.yml `run`).")
    ] = None,
    eval_sets: Annotated[Path | None, typer.Option(help="Eval-set file or folder (overrides the config).")] = None,
    bot_kind: Annotated[
        str | None, typer.Option(help="The bot's kind: reference, rasa, http_json or scripted (overrides bot.kind).")
    ] = None,
    bot_url: Annotated[
        str | None, typer.Option(help="The bot's URL: the reference webhook, a Rasa server's root, an HTTP endpoint.")
    ] = None,
    token: Annotated[
        str | None, typer.Option(help="The bot's token (default: from the variable bot.token_env names).")
    ] = None,
    concurrency: Annotated[int | None, typer.Option(help="Conversations in flight at once.")] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Per-turn timeout in seconds.")] = None,
    retries: Annotated[int | None, typer.Option(help="Retries of a turn that could not reach the bot.")] = None,
    output_dir: Annotated[Path | None, typer.Option(help="Where run folders go.")] = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI (default: the run configuration's tracking.uri).")
    ] = None,
    experiment: Annotated[str | None, typer.Option(help="MLflow experiment name.")] = None,
    resume: Annotated[Path | None, typer.Option(help="Finish an interrupted run from its folder's journal.")] = None,
    serve_bot: Annotated[
        bool,
        typer.Option(
            "--serve-bot",
            help="Train if needed and start the reference bot on loopback for this run, and stop it afterwards.",
        ),
    ] = False,
    mlflow_log: Annotated[bool, typer.Option("--mlflow/--no-mlflow", help="Log the run to MLflow.")] = True,
) -> Any:
    """Replay the eval sets through the bot, print the scorecard, write the run's files, log to MLflow."""
    from harness.pipeline import resume_run, run_eval
    from harness.project.config import load_config

    overrides = {
        "eval_sets": str(eval_sets) if eval_sets else None,
        "bot.kind": bot_kind,
        "bot.url": bot_url,
        "replay.concurrency": concurrency,
        "replay.turn_timeout_s": timeout,
        "replay.retries": retries,
        "output_dir": str(output_dir) if output_dir else None,
        "tracking.uri": tracking_uri,
        "tracking.experiment": experiment,
    }
    # A resume talks to the bot the run recorded, with the run's settings; only flags given now change them.
    resumed = resume_run(resume.resolve(), overrides, serving=serve_bot) if resume else None
    config = resumed.config if resumed else load_config(config_file, overrides).resolved()
    result = run_eval(
        config, resume=resumed, serve_bot=serve_bot, token=token, mlflow=mlflow_log, events=ConsoleEvents()
    )
    _print_result(result)
    return result


class ConsoleEvents:
    """What `harness run` shows as it goes: the served bot, resume notices, a progress bar on stderr."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        self.progress = Progress(*columns, console=err, transient=True)
        self.task: Any = None

    def training(self) -> None:
        out.print("training the bot if its data changed...")

    def serving(self, model: str, url: str) -> None:
        out.print(f"bot {model} serving at {url} (stopped when the run ends)")

    def resuming(self, notice: list[str]) -> None:
        for line in notice:
            err.print(f"[yellow]resume:[/] {escape(line)}" if not line.startswith(" ") else escape(line), markup=True)

    def replaying(self, plan: Any, already: int) -> None:
        out.print(
            f"run {plan.run_id}: {len(plan.suite)} conversations from {len(plan.suite.files)} eval-set "
            f"file(s) (hash {plan.suite.content_hash[:12]})"
            + (f", {already} already done" if already else "")
            + f"; bot at {plan.config.bot.url}"
        )
        self.progress.start()
        self.task = self.progress.add_task("replay", total=len(plan.suite), completed=already)

    def replayed(self, conversation_id: str) -> None:
        self.progress.advance(self.task)

    def replay_done(self) -> None:
        self.progress.stop()


def _print_result(result: Any) -> None:
    from harness.scoring.scorecard import print_scorecard

    print_scorecard(result.run.scorecard, out)
    out.print(f"run folder: {result.plan.run_dir}")
    for path in result.outputs:
        out.print(f"  {path.name}: {path}")
    if result.tracked is not None:
        out.print(
            f"MLflow run {result.tracked.run_id} in experiment '{result.plan.config.tracking.experiment}'; "
            f"view with: {result.tracked.ui_hint()}"
        )


@app.command("rescore")
@reports_errors
def rescore_command(run_dir: Annotated[Path, typer.Argument(help="A finished run folder.")]) -> None:
    """Score a finished run again from its turns.parquet (no bot needed); rewrites scorecard.json and report.html."""
    from harness.pipeline import write_outputs
    from harness.scoring.scorecard import print_scorecard
    from harness.scoring.scored_run import ScoredRun

    run = ScoredRun.rescore(run_dir)
    write_outputs(RunFolder(run_dir), run)
    print_scorecard(run.scorecard, out)
