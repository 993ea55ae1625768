"""The `harness` command. Each command is a short list of stage calls; errors become messages and exit codes
(0 success, 1 a failed check, 2 bad input or configuration)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from harness import __version__
from harness.errors import EXIT_BAD_INPUT, EXIT_CHECK_FAILED, HarnessError
from harness.paths import ProjectPaths
from harness.run_folder import RunFolder

app = typer.Typer(help="Quality harness for customer-service chatbots.", no_args_is_help=True)
intents_app = typer.Typer(help="Work with intents/, the source of truth for what the bot understands.")
app.add_typer(intents_app, name="intents")
evalsets_app = typer.Typer(help="Work with eval sets: import them from other tools.")
app.add_typer(evalsets_app, name="evalsets")
bot_app = typer.Typer(help="Train and serve the reference bot (Rasa server + action server) on loopback.")
app.add_typer(bot_app, name="bot")
# Messages carry file paths: never wrap them.
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 120)

DEFAULT_PATHS = ProjectPaths()
RootOption = Annotated[Path, typer.Option("--root", help="Repository root (defaults to this checkout).")]


def reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn HarnessError into its message on stderr and its exit code."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except HarnessError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, markup=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper


@app.command()
def version() -> None:
    """Print the harness version."""
    out.print(__version__)


@app.command("validate")
@reports_errors
def validate(
    eval_sets: Annotated[Path, typer.Argument(help="An eval-set file or folder.")] = DEFAULT_PATHS.eval_sets,
    root: RootOption = DEFAULT_PATHS.root,
    overlap: Annotated[bool, typer.Option(help="Report eval turns that (nearly) repeat training examples.")] = True,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="A run configuration: check against the vocabulary of its bot (default: the reference bot).",
        ),
    ] = None,
) -> None:
    """Check eval sets against the bot they will run against: schema, unknown intents/queues/rules (with
    did-you-mean), duplicate ids, reply checks the bot cannot be judged on, coverage."""
    from harness.validation import check_observable, validate_eval_sets

    words = None
    if config_file is not None:
        from harness.bots.kinds import bot_settings, observes, vocabulary
        from harness.config import load_config

        config = load_config(config_file).resolved(root)
        words = vocabulary(config, root)
    report = validate_eval_sets(ProjectPaths(root), eval_sets, overlap=overlap, vocabulary=words)
    if config_file is not None:
        check_observable(report.suite, observes(config), bot_settings(config)[0].name)
    for line in report.lines():
        out.print(line, highlight=False)


@evalsets_app.command("import-rasa")
@reports_errors
def evalsets_import_rasa(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Rasa test-story files, or folders (every test_*.yml in them, as `rasa test` reads)."),
    ],
    name: Annotated[str, typer.Option("--name", help="The eval set's name (e.g. the bot's name).")],
    mapping: Annotated[
        Path | None,
        typer.Option(
            "--mapping",
            help="The bot's handoff mapping (handoff.yml): which actions or intents hand off, and to which queue. "
            "Without it every conversation is expected to be self-served.",
        ),
    ] = None,
    domain: Annotated[
        Path | None,
        typer.Option(
            "--domain",
            help="The bot's domain.yml or domain/ folder: checks the intents and forms the stories use, and that "
            "the eval set loads against the bot's vocabulary before it is written.",
        ),
    ] = None,
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Eval-set file to write (default: eval_sets/<name>.yml).")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out if it exists.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would be imported; write nothing.")] = False,
    root: RootOption = DEFAULT_PATHS.root,
) -> None:
    """Turn a Rasa bot's end-to-end test stories into an eval set: one conversation per story, customer turns from
    `user:` steps with their `intent:`, the bot's actions, slots and `bot:` texts as checks, and the outcome
    (escalated to a queue when a step matches the handoff mapping, else self-served). Lists, with file and line,
    every story skipped and every step not carried over (checkpoints, or:, rules, intent-only steps, entities, ...).
    """
    from harness.bots.handoff_mapping import load_handoff_mapping
    from harness.bots.rasa_domain import eval_intents, load_domain
    from harness.project.rasa_stories import check_loads, import_rasa_stories, write_eval_set

    handoffs = load_handoff_mapping(mapping) if mapping is not None else None
    bot_domain = load_domain(domain) if domain is not None else None
    result = import_rasa_stories(
        paths, handoffs, eval_set_name=name, forms=bot_domain.forms if bot_domain is not None else None
    )
    for finding in result.findings:
        out.print(str(finding), highlight=False, markup=False, soft_wrap=True)  # one grep-able line each
    if bot_domain is not None:
        check_loads(
            result,
            intents=eval_intents(bot_domain),
            queues=handoffs.queue_names() if handoffs is not None else (),
            rules=handoffs.rule_names() if handoffs is not None else (),
        )
    target = out_path or ProjectPaths(root).eval_sets / f"{name}.yml"
    if dry_run:
        out.print(result.summary() + "; nothing written (dry run)")
        return
    write_eval_set(result, target, overwrite=overwrite)
    out.print(f"{result.summary()}; wrote {target}")
    if bot_domain is None:
        out.print("next: harness validate with the rasa bot's run configuration (checks intents and queues)")


@intents_app.command("build")
@reports_errors
def intents_build(
    root: RootOption = DEFAULT_PATHS.root,
    check: Annotated[
        bool, typer.Option("--check", help="Only report files that are out of date; exit 1 if any.")
    ] = False,
) -> None:
    """Generate bot/data/nlu.yml, bot/domain/intents.yml and bot/intent_catalog.yml from intents/."""
    from harness.nlu_build import build

    result = build(ProjectPaths(root), check=check)
    for path in result.changed:
        out.print(f"{'out of date' if check else 'wrote'}: {path.relative_to(root)}")
    if check and result.changed:
        err.print("generated bot files are out of date: run `harness intents build`")
        raise typer.Exit(EXIT_CHECK_FAILED)
    if not result.changed:
        out.print("generated bot files are up to date")


@intents_app.command("validate")
@reports_errors
def intents_validate(
    root: RootOption = DEFAULT_PATHS.root,
    embeddings: Annotated[
        bool, typer.Option(help="Use MiniLM embeddings for confusable pairs and near leakage (slower).")
    ] = True,
    min_examples: Annotated[int, typer.Option(help="Warn about intents with fewer examples.")] = 10,
) -> None:
    """Check intents/: schema, duplicates, unknown queues (errors); confusable intent pairs, thin intents (warnings);
    examples repeating eval-set turns (exact: error, near: warning). Exit 2 on errors."""
    from harness.bot_config import load_queue_config
    from harness.eval_set import eval_set_files
    from harness.intent_checks import check_intents
    from harness.intents import load_catalog
    from harness.provenance import read_provenance, reviewed_from
    from harness.run import load_suite

    paths = ProjectPaths(root)
    catalog = load_catalog(paths.intents, known_queues=load_queue_config(paths.escalation_policy).queues)
    examples = sum(len(i.examples) for i in catalog.intents.values())
    suite = None
    if eval_set_files(paths.eval_sets):
        from harness.config import load_config

        suite = load_suite(load_config(overrides={"eval_sets": str(paths.eval_sets)}).resolved(root), paths)
    reviewed = reviewed_from(read_provenance(paths.intents))
    report = check_intents(catalog, suite, embeddings=embeddings, min_examples=min_examples, reviewed=reviewed)
    for warning in report.warnings:
        out.print(f"warning: {warning}", highlight=False, markup=False)
    for problem in report.errors:
        err.print(f"error: {problem}", highlight=False, markup=False)
    summary = (
        f"{len(catalog.intents)} intents, {examples} examples: {len(report.errors)} error(s), "
        f"{len(report.warnings)} warning(s), {len(report.confusable)} confusable pair(s)"
    )
    if report.errors:
        err.print(f"[bold red]intents/ has errors[/]: {summary}")
        raise typer.Exit(EXIT_BAD_INPUT)
    out.print(f"intents/ is valid: {summary}")


@intents_app.command("import")
@reports_errors
def intents_import(
    source: Annotated[Path, typer.Argument(help="A CSV (columns text,intent and optionally queue) or Rasa NLU YAML.")],
    queue: Annotated[str | None, typer.Option(help="Queue for new intents when the file has no queue column.")] = None,
    into: Annotated[Path | None, typer.Option(help="File for new intents (default: intents/imported.yml).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would happen; write nothing.")] = False,
    root: RootOption = DEFAULT_PATHS.root,
) -> None:
    """Add labelled utterances to intents/: examples of known intents go to their intent, unknown intents become new
    ones. Reports what was added, and what was skipped and why (duplicates, conflicting labels, eval-set leakage,
    unknown queues). Then run `harness intents validate` and `make retrain`."""
    from collections import Counter

    from harness.bot_config import load_queue_config
    from harness.config import load_config
    from harness.eval_set import eval_set_files
    from harness.intent_import import apply_plan, eval_texts, plan_import, read_source
    from harness.intents import load_catalog
    from harness.run import load_suite

    paths = ProjectPaths(root)
    queues = load_queue_config(paths.escalation_policy).queues
    catalog = load_catalog(paths.intents, known_queues=queues)
    suite = None
    if eval_set_files(paths.eval_sets):
        suite = load_suite(load_config(overrides={"eval_sets": str(paths.eval_sets)}).resolved(root), paths)
    candidates, read_skips = read_source(source)
    plan = plan_import(
        source,
        candidates,
        catalog,
        queues=queues,
        eval_turns=eval_texts(suite),
        default_queue=queue,
        read_skips=read_skips,
    )
    for item in plan.skipped:
        shown = f" {item.candidate.text!r}" if item.candidate.text else ""
        out.print(f"skipped {item.candidate.origin}{shown}: {item.reason}", highlight=False, markup=False)
    for warning in plan.warnings:
        out.print(f"warning: {warning}", highlight=False, markup=False)
    per_intent = Counter(c.intent for c in plan.to_existing)
    for name, count in sorted(per_intent.items()):
        out.print(
            f"add {count} example(s) to {name} ({catalog.sources[name].relative_to(paths.root)})", highlight=False
        )
    for name, items in plan.new_intents.items():
        out.print(f"new intent {name} (queue {plan.new_queues[name]}) with {len(items)} example(s)", highlight=False)
    verb = "would add" if dry_run else "added"
    summary = f"{verb} {plan.added} example(s) ({len(plan.new_intents)} new intent(s)), skipped {len(plan.skipped)}"
    if dry_run or plan.added == 0:
        out.print(summary + ("; nothing written (dry run)" if dry_run else ""))
        return
    changed = apply_plan(plan, catalog, paths.intents, into or paths.intents / "imported.yml", queues=queues)
    out.print(f"{summary}; changed: {', '.join(str(p.relative_to(paths.root)) for p in changed)}")
    out.print("next: harness intents validate, then make retrain")


@bot_app.command("train")
@reports_errors
def bot_train() -> None:
    """Regenerate the NLU data from intents/ and train the bot, unless a model of the same inputs exists."""
    from harness.bot_process import BotLayout, train
    from harness.nlu_build import build

    build(ProjectPaths())
    layout = BotLayout()
    started = time.monotonic()
    model = train(layout)
    out.print(f"model: {model.relative_to(ProjectPaths().root)} ({time.monotonic() - started:.0f} s)")


@bot_app.command("serve")
@reports_errors
def bot_serve(
    port: Annotated[int, typer.Option(help="Port of the Rasa server (reference channel).")] = 5005,
    action_port: Annotated[int, typer.Option(help="Port of the action server.")] = 5055,
    token: Annotated[str, typer.Option(envvar="REFERENCE_CHANNEL_TOKEN", help="Bearer token of the channel.")] = "",
    handoff_db: Annotated[Path, typer.Option(envvar="HANDOFF_DB", help="SQLite file of handoff tickets.")] = (
        DEFAULT_PATHS.bot / "var" / "handoff.sqlite3"
    ),
) -> None:
    """Train if needed, then serve the bot and the action server on 127.0.0.1 until Ctrl-C."""
    import secrets

    from harness.bot_process import BotLayout, BotServer, train
    from harness.nlu_build import build

    build(ProjectPaths())
    out.print("training the bot if its data changed (a fresh model takes a few minutes)...")
    model = train(BotLayout())
    token = token or secrets.token_urlsafe(16)
    server = BotServer(
        model=model, token=token, handoff_db=handoff_db.resolve(), rasa_port=port, action_port=action_port
    )
    with server:
        out.print(f"[bold green]bot ready[/]: model {model.name}")
        out.print(f"  reference channel: POST {server.url}")
        out.print(f"  bearer token:      {token}")
        out.print(f"  action server:     http://127.0.0.1:{action_port}/webhook")
        out.print(f"  handoff tickets:   {handoff_db.resolve()}")
        out.print(f"  logs:              {server.log_dir}")
        out.print(
            f"try: curl -s -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' "
            f'-d \'{{"sender": "me", "message": "I lost my card"}}\' {server.url}'
        )
        out.print("Ctrl-C stops both servers.")
        try:
            while server.running():
                time.sleep(1)
            err.print(f"a bot process exited; see the logs in {server.log_dir}")
            raise typer.Exit(EXIT_BAD_INPUT)
        except KeyboardInterrupt:
            out.print("stopping the bot...")


@app.command("run")
@reports_errors
def run_command(
    config_file: Annotated[Path, typer.Option("--config", help="Run configuration.")] = DEFAULT_PATHS.experiments
    / "eval.yml",
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
        str | None, typer.Option(help="MLflow tracking URI (default: SQLite in experiments/).")
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
    from harness.config import load_config
    from harness.run import resume_run, run_eval

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
            err.print(f"[yellow]resume:[/] {escape(line)}" if not line.startswith(" ") else escape(line))

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
    from harness.scorecard import print_scorecard

    print_scorecard(result.run.scorecard, out)
    out.print(f"run folder: {result.plan.run_dir}")
    for path in result.outputs:
        out.print(f"  {path.name}: {path}")
    if result.tracked is not None:
        out.print(
            f"MLflow run {result.tracked.run_id} in experiment '{result.plan.config.tracking.experiment}'; "
            f"view with: {result.tracked.ui_hint()}"
        )


@app.command("retrain")
@reports_errors
def retrain_command(
    config_file: Annotated[Path, typer.Option("--config", help="Run configuration.")] = DEFAULT_PATHS.experiments
    / "eval.yml",
    spec_file: Annotated[
        Path, typer.Option("--gate-spec", help="Gate specification whose baseline is the champion.")
    ] = DEFAULT_PATHS.experiments / "gate.yml",
) -> None:
    """The trainer's loop in one command: regenerate the bot's data from intents/, train, evaluate on the eval sets
    (as `harness run`), log training and evaluation to MLflow as linked runs with the model archive registered as a
    version of `reference-bot`, and print each KPI's change against the champion (the release gate's baseline).
    Promotion stays with the gate: `harness gate RUN --promote` moves the champion only if the gate passes."""
    import json

    import yaml

    from harness.bot_process import BotLayout, fingerprint, train
    from harness.config import load_config
    from harness.gate.baseline import champion_card
    from harness.gate.spec import load_spec
    from harness.intents import load_catalog
    from harness.nlu_build import build
    from harness.retrain import REGISTERED_MODEL, kpi_changes, link, track_training
    from harness.scorecard import Scorecard
    from harness.tracking import ARTIFACT_DIR

    paths = DEFAULT_PATHS
    config = load_config(config_file).resolved()
    champion = champion_card(load_spec(spec_file), config.tracking.uri)
    built = build(paths)
    out.print(f"intents/ -> bot data: {len(built.changed)} file(s) regenerated")
    layout = BotLayout()
    print_fp = fingerprint(layout.bot_dir)
    model = layout.models / f"bankbot-{print_fp}.tar.gz"
    existed = model.exists()
    out.print("model for these inputs exists; not retraining" if existed else "training the bot (a few minutes)...")
    started = time.perf_counter()
    model = train(layout)
    train_seconds = None if existed else time.perf_counter() - started
    catalog = load_catalog(paths.intents)
    pipeline = yaml.safe_load((paths.bot / "config.yml").read_text())["pipeline"]
    record = track_training(
        tracking_uri=config.tracking.uri,
        experiment=config.tracking.experiment,
        artifact_root=paths.root / ARTIFACT_DIR,
        model=model,
        fingerprint=print_fp,
        params={
            "model": model.name,
            "fingerprint": print_fp,
            "intents": str(len(catalog.intents)),
            "examples": str(sum(len(i.examples) for i in catalog.intents.values())),
            "pipeline": json.dumps(pipeline),
        },
        train_seconds=train_seconds,
        inputs=[paths.bot / "config.yml", paths.nlu_data],
    )
    trained = f"trained in {train_seconds:.0f} s" if train_seconds is not None else "already trained"
    registered = "already registered as" if record.reused else "registered as"
    version = f"{REGISTERED_MODEL} version {record.version}"
    out.print(f"{model.name}: {trained}; {registered} {version} (run {record.run_id})")
    from harness.run import run_eval

    result = run_eval(config, serve_bot=True, mlflow=True, events=ConsoleEvents())
    _print_result(result)
    run_dir, tracked = result.plan.run_dir, result.tracked
    assert tracked is not None  # mlflow=True
    link(config.tracking.uri, record, tracked.run_id)
    if champion is None:
        out.print(f"{spec_file} names no baseline: no champion to compare with")
        return
    label, champion_scorecard = champion
    table = kpi_changes(Scorecard.from_dict(champion_scorecard), result.run.scorecard)
    table.to_csv(run_dir / "champion_comparison.csv", index=False)
    out.print(f"KPI change against the champion ({label}):")
    out.print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    out.print(
        f"written: {run_dir / 'champion_comparison.csv'}. Judge the run with `harness gate {run_dir}`; "
        "add --promote to make it the champion if it passes."
    )


@app.command("sweep-threshold")
@reports_errors
def sweep_threshold(
    run_dir: Annotated[Path | None, typer.Argument(help="A finished run folder (default: the newest).")] = None,
    max_false_acceptance: Annotated[float, typer.Option(help="Largest acceptable false acceptance.")] = 0.10,
) -> None:
    """Recognition vs false acceptance of out-of-scope turns over fallback thresholds, from a run's records;
    writes threshold_sweep.csv and threshold_sweep.png in the run folder and recommends a threshold."""
    import yaml

    from harness.config import load_config
    from harness.scored_run import ScoredRun
    from harness.threshold_sweep import plot, sweep

    run_dir = (run_dir or RunFolder.latest(load_config().resolved().output_dir).path).resolve()
    run = ScoredRun.load(run_dir)
    assert run.records is not None  # load needs the turn records
    result = sweep(run.records, max_false_acceptance=max_false_acceptance)
    pipeline = yaml.safe_load((DEFAULT_PATHS.bot / "config.yml").read_text())["pipeline"]
    configured = next((c.get("threshold") for c in pipeline if c.get("name") == "FallbackClassifier"), None)
    result.table.to_csv(run_dir / "threshold_sweep.csv", index=False)
    plot(result, str(run_dir / "threshold_sweep.png"), configured)
    out.print(result.table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    out.print(f"configured threshold (bot/config.yml): {configured}")
    if result.recommended is None:
        out.print(f"no recommendation: {result.reason}")
    else:
        out.print(f"recommended threshold: {result.recommended:g}: {result.reason}")
    out.print(f"written: {run_dir / 'threshold_sweep.csv'}, {run_dir / 'threshold_sweep.png'}")


@app.command("experiment")
@reports_errors
def experiment_command(
    spec_file: Annotated[Path, typer.Argument(help="An experiment file, e.g. experiments/nlu_pipelines.yml.")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Where results go (default: experiments/results/<name>).")
    ] = None,
    only: Annotated[list[str] | None, typer.Option("--only", help="Run only these pipelines (repeatable).")] = None,
    mlflow: Annotated[bool, typer.Option(help="Log to MLflow (a parent run, a child run per pipeline).")] = True,
    root: RootOption = DEFAULT_PATHS.root,
) -> None:
    """Compare the NLU pipelines of an experiment file: stratified cross-validation on intents/ and a full
    model on the eval sets' customer turns; writes results.md, results.json and plots, tracked in MLflow."""
    from harness.bot_config import load_queue_config
    from harness.config import load_config
    from harness.errors import InputError
    from harness.intents import load_catalog
    from harness.pipeline_experiment import (
        ExperimentResult,
        describe_data,
        environment_note,
        evaluate_pipeline,
        load_spec,
    )
    from harness.pipeline_report import log_experiment, write_outputs
    from harness.run import load_suite
    from harness.tracking import ARTIFACT_DIR

    paths = ProjectPaths(root)
    spec = load_spec(spec_file)
    pipelines = spec.pipelines
    if only:
        missing = sorted(set(only) - {p.name for p in pipelines})
        if missing:
            raise InputError("unknown pipeline in --only", [f"{spec_file}: no pipeline named {n!r}" for n in missing])
        pipelines = [p for p in pipelines if p.name in only]
    catalog = load_catalog(paths.intents, known_queues=load_queue_config(paths.escalation_policy).queues)
    config = load_config(overrides={"eval_sets": str(paths.eval_sets)}).resolved(root)
    suite = load_suite(config, paths)
    started = environment_note()
    results = [evaluate_pipeline(spec, p, catalog, suite, progress=out.print) for p in pipelines]
    result = ExperimentResult(spec, results, {**describe_data(catalog, suite), **started})
    target = out_dir or paths.experiments / "results" / spec.name
    command = f"harness experiment {spec_file}" + "".join(f" --only {n}" for n in only or [])
    files = write_outputs(result, target, command)
    out.print(files["results.md"].read_text(), highlight=False)
    out.print(f"written: {target}/")
    if mlflow:
        parent = log_experiment(
            result, files, tracking_uri=config.tracking.uri, artifact_root=paths.root / ARTIFACT_DIR
        )
        out.print(f"MLflow: parent run {parent} in experiment '{spec.name}' ({config.tracking.uri})")


@app.command("mine")
@reports_errors
def mine_command(
    run_dir: Annotated[Path | None, typer.Argument(help="A finished run folder (default: the newest).")] = None,
    distance: Annotated[
        float, typer.Option(help="Cosine distance under which turns join one cluster (smaller: tighter).")
    ] = 0.45,
    min_size: Annotated[int, typer.Option(help="Smallest cluster reported.")] = 2,
) -> None:
    """Cluster the turns the bot did not understand (fallback or out of scope) into candidate new intents; writes
    not_understood.md and mined_candidates.csv (text,intent,queue) for `harness intents import` after review."""
    from harness.bot_config import load_queue_config
    from harness.config import load_config
    from harness.intents import load_catalog
    from harness.mining import candidates_csv, markdown, mine
    from harness.scored_run import ScoredRun

    run_dir = (run_dir or RunFolder.latest(load_config().resolved().output_dir).path).resolve()
    run = ScoredRun.load(run_dir)
    assert run.records is not None  # load needs the turn records
    catalog = load_catalog(
        DEFAULT_PATHS.intents, known_queues=load_queue_config(DEFAULT_PATHS.escalation_policy).queues
    )
    clusters, total = mine(run.records, catalog, distance_threshold=distance, min_size=min_size)
    report = markdown(clusters, total, run_dir.name)
    (run_dir / "not_understood.md").write_text(report)
    (run_dir / "mined_candidates.csv").write_text(candidates_csv(clusters))
    out.print(report, highlight=False, markup=False)
    out.print(f"written: {run_dir / 'not_understood.md'}, {run_dir / 'mined_candidates.csv'}")
    out.print(
        "review the CSV (rename intents, set queues, delete rows), then: harness intents import "
        f"{run_dir / 'mined_candidates.csv'}"
    )


@app.command("rescore")
@reports_errors
def rescore_command(run_dir: Annotated[Path, typer.Argument(help="A finished run folder.")]) -> None:
    """Score a finished run again from its turns.parquet (no bot needed); rewrites scorecard.json and report.html."""
    from harness.run import write_outputs
    from harness.scorecard import print_scorecard
    from harness.scored_run import ScoredRun

    run = ScoredRun.rescore(run_dir)
    write_outputs(RunFolder(run_dir), run)
    print_scorecard(run.scorecard, out)


@app.command("gate")
@reports_errors
def gate_command(
    run_dir: Annotated[
        Path | None, typer.Argument(help="The run folder to gate (default: the newest in runs/).")
    ] = None,
    spec_file: Annotated[Path, typer.Option("--spec", help="Gate specification.")] = DEFAULT_PATHS.experiments
    / "gate.yml",
    baseline: Annotated[Path | None, typer.Option(help="Baseline run folder (overrides the specification).")] = None,
    no_baseline: Annotated[bool, typer.Option("--no-baseline", help="Check thresholds and must-pass only.")] = False,
    junit: Annotated[Path | None, typer.Option(help="JUnit XML output (default: <run>/gate.xml).")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Markdown summary (default: <run>/gate.md).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="JSON result (default: <run>/gate.json).")] = None,
    promote: Annotated[
        bool, typer.Option(help="If the gate passes: tag the MLflow run and move the champion alias to it.")
    ] = False,
    update_baseline: Annotated[
        Path | None,
        typer.Option(help="If the gate passes: copy the run's scorecard and records to this baseline folder."),
    ] = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI for the baseline and promotion.")
    ] = None,
    plan: Annotated[
        bool,
        typer.Option(
            "--plan",
            help="Do not judge: say how many conversations the eval sets need for each regression check and "
            "must-pass rule to catch --drop with --power (from the run's composition, or the baseline's).",
        ),
    ] = False,
    drop: Annotated[
        float, typer.Option(help="--plan: the true drop to catch, a share (0.05 = 5 points).", min=0, max=1)
    ] = 0.05,
    power: Annotated[
        float | None, typer.Option(help="--plan: the power to reach (default: policy.power).", min=0, max=1)
    ] = None,
    discordance: Annotated[
        float | None,
        typer.Option(
            help="--plan: share of outcomes that change between two runs of equally good bots (default: measured "
            "between run and baseline, else policy.planning_discordance).",
            min=0,
            max=1,
        ),
    ] = None,
) -> None:
    """Decide whether the run may ship: exit 0 pass, 1 a KPI or must-pass conversation failed, 2 bad input.
    Prints what each regression check and must-pass rule can see (the smallest drop caught with policy.power);
    with --plan, the eval size each needs instead."""
    from harness.config import load_config
    from harness.gate.baseline import baseline_for, copy_baseline
    from harness.gate.baseline import promote as promote_run
    from harness.gate.decision import decide
    from harness.gate.outputs import one_line, write_outputs
    from harness.gate.power import detectability, whole_gate_false_alarm, with_detectability
    from harness.gate.spec import load_spec
    from harness.retrain import REGISTERED_MODEL
    from harness.scored_run import ScoredRun

    spec = load_spec(spec_file)
    config = load_config(overrides={"tracking.uri": tracking_uri}).resolved()
    if plan:
        _gate_plan(spec, run_dir, baseline, no_baseline, tracking_uri, drop, power, discordance, config.output_dir)
        return
    run_dir = (run_dir or RunFolder.latest(config.output_dir).path).resolve()
    run = ScoredRun.load(run_dir)
    baseline_run = None if no_baseline else baseline_for(spec, run, override=baseline, tracking_uri=tracking_uri)
    result = decide(spec, run, baseline_run)
    result = with_detectability(result, detectability(spec, run, baseline_run))
    write_outputs(
        result,
        junit=junit or run_dir / "gate.xml",
        markdown_path=markdown or run_dir / "gate.md",
        json_path=json_out or run_dir / "gate.json",
    )
    for check in result.checks:
        if check.group == "kpi" or not check.passed or check.known_failure or check.warning:
            mark = (
                "[bold red]FAIL[/]"
                if not check.passed
                else "[yellow]known[/]"
                if check.known_failure
                else "[yellow]warn[/]"
                if check.warning
                else "[green]pass[/]"
            )
            out.print(f"{mark} {escape(one_line(check.message))}", highlight=False)
        elif check.name.endswith(": no regression"):
            out.print(f"[green]pass[/] {escape(one_line(check.message))}", highlight=False)
    must = [c for c in result.checks if c.group == "must_pass" and not c.name.endswith(": no regression")]
    known = sum(c.known_failure for c in must)
    warned = sum(c.warning for c in must)
    out.print(
        f"must-pass conversations: {sum(c.passed for c in must) - known - warned} of {len(must)} passed"
        + (f", {known} known failure(s) that also fail in the baseline" if known else "")
        + (f", {warned} new failure(s) listed as warnings" if warned else "")
    )
    for line in result.detectability:
        out.print(f"[cyan]can see[/] {escape(one_line(line.message))}", highlight=False)
    if result.detectability:
        out.print(
            f"whole gate: false alarms on an equally good bot about {whole_gate_false_alarm(result.detectability):.1%}"
            " if the checks' noise were independent (bench/gate_power.py measures it)"
        )
    for note in result.notes:
        out.print(f"note: {escape(one_line(note))}", highlight=False)
    out.print(
        f"outputs: {junit or run_dir / 'gate.xml'}, {markdown or run_dir / 'gate.md'}, "
        f"{json_out or run_dir / 'gate.json'}"
    )
    if not result.passed:
        err.print(f"[bold red]release gate FAILED[/]: {len(result.failures())} check(s) failed")
        raise typer.Exit(EXIT_CHECK_FAILED)
    out.print("[bold green]release gate PASSED[/]")
    if promote:
        version = promote_run(
            run_dir,
            tracking_uri=config.tracking.uri,
            experiment=config.tracking.experiment,
            registered_model=REGISTERED_MODEL,
            alias="champion",
        )
        out.print(f"promoted: MLflow run tagged release_gate=passed; reference-bot version {version} is 'champion'")
    if update_baseline is not None:
        copy_baseline(run_dir, update_baseline)
        out.print(f"baseline updated: {update_baseline}")


def _gate_plan(
    spec: Any,
    run_dir: Path | None,
    baseline: Path | None,
    no_baseline: bool,
    tracking_uri: str | None,
    drop: float,
    power: float | None,
    discordance: float | None,
    runs: Path,
) -> None:
    """`harness gate --plan`: the eval size each check needs, from the run (default: the newest) against its
    baseline, or from the specification's baseline alone when there is no run yet."""
    from harness.errors import InputError
    from harness.gate.baseline import baseline_for
    from harness.gate.power import plan
    from harness.scored_run import ScoredRun

    baseline_run = None
    if run_dir is None:
        try:
            run_dir = RunFolder.latest(runs).path
        except InputError:
            if spec.baseline is None or spec.baseline.path is None:
                raise
            committed: Path = spec.baseline.path
            run_dir = committed if committed.is_absolute() else DEFAULT_PATHS.root / committed
            out.print(f"no finished run in {runs}: planning from the baseline {run_dir} alone (no measured noise)")
            no_baseline = True
    run = ScoredRun.load(run_dir.resolve())
    if not no_baseline:
        baseline_run = baseline_for(spec, run, override=baseline, tracking_uri=tracking_uri)
        if baseline_run is not None and baseline_run.stamp.get("eval_set_hash") != run.stamp.get("eval_set_hash"):
            out.print(
                f"note: the baseline {baseline_run.source} was measured on other eval sets: planning from the run "
                "alone (no measured noise)"
            )
            baseline_run = None
    try:
        lines = plan(spec, run, baseline_run, drop=drop, power=power, discordance=discordance)
    except ValueError as exc:
        raise InputError("cannot plan", [f"harness gate --plan: {exc}"]) from None
    out.print(
        f"eval size to catch a drop of {drop:.3f} with {power or spec.policy.power:.0%} power, under the gate's "
        f"decision rules (from {run.source}{' against ' + baseline_run.source if baseline_run else ''}):"
    )
    for line in lines:
        out.print(f"- {escape(line.message)}", highlight=False)
    if not lines:
        out.print("no regression check (max_regression) and no must-pass rule to plan for")


def main() -> None:
    import signal

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    # `make` and CI stop jobs with SIGTERM: treat it like Ctrl-C so started bot processes are stopped. SIGINT gets
    # Python's handler back even when a parent shell started us with it ignored (background jobs).
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        raise SystemExit(EXIT_BAD_INPUT) from None


# Registered last: the review commands use this module's console and error handling.
from harness.review.cli import review_app  # noqa: E402

app.add_typer(review_app, name="review")
