"""The bot trainer's commands: retrain, sweep-threshold, experiment, mine."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from harness.cli.common import RootOption, app, out, paths, project, reports_errors
from harness.cli.run import ConsoleEvents, _print_result
from harness.records.run_folder import RunFolder


@app.command("retrain")
@reports_errors
def retrain_command(
    config_file: Annotated[
        Path | None, typer.Option("--config", help="Run configuration (default: the project's, harness.yml `run`).")
    ] = None,
    spec_file: Annotated[
        Path | None,
        typer.Option("--gate-spec", help="Gate specification whose baseline is the champion (default: the project's)."),
    ] = None,
) -> None:
    """The trainer's loop in one command: regenerate the bot's data from intents/, train, evaluate on the eval sets
    (as `harness run`), log training and evaluation to MLflow as linked runs with the model archive registered as a
    version of `reference-bot`, and print each KPI's change against the champion (the release gate's baseline).
    Promotion stays with the gate: `harness gate RUN --promote` moves the champion only if the gate passes."""
    import json

    import yaml

    from harness.bots.reference_bot.nlu_build import build
    from harness.bots.reference_bot.server import BotLayout, fingerprint, train
    from harness.gate.baseline import champion_card
    from harness.gate.spec import load_spec
    from harness.project.config import load_config
    from harness.project.intents import load_catalog
    from harness.scoring.scorecard import Scorecard
    from harness.sinks.tracking import artifact_root
    from harness.trainer.retrain import REGISTERED_MODEL, kpi_changes, link, track_training

    folders = paths().require_reference_folders("harness retrain", "intents", "bot")
    spec_file = spec_file if spec_file is not None else project().gate
    config = load_config(config_file).resolved()
    champion = champion_card(load_spec(spec_file), config.tracking.uri)
    built = build(folders)
    out.print(f"intents/ -> bot data: {len(built.changed)} file(s) regenerated")
    layout = BotLayout(folders.bot, folders.root / ".venv-bot")
    print_fp = fingerprint(layout.bot_dir)
    model = layout.models / f"bankbot-{print_fp}.tar.gz"
    existed = model.exists()
    out.print("model for these inputs exists; not retraining" if existed else "training the bot (a few minutes)...")
    started = time.perf_counter()
    model = train(layout)
    train_seconds = None if existed else time.perf_counter() - started
    catalog = load_catalog(folders.intents)
    pipeline = yaml.safe_load((folders.bot / "config.yml").read_text())["pipeline"]
    record = track_training(
        tracking_uri=config.tracking.uri,
        experiment=config.tracking.experiment,
        artifact_root=artifact_root(config.tracking.uri, folders.root),
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
        inputs=[folders.bot / "config.yml", folders.nlu_data],
    )
    trained = f"trained in {train_seconds:.0f} s" if train_seconds is not None else "already trained"
    registered = "already registered as" if record.reused else "registered as"
    version = f"{REGISTERED_MODEL} version {record.version}"
    out.print(f"{model.name}: {trained}; {registered} {version} (run {record.run_id})")
    from harness.pipeline import run_eval

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
    from harness.project.config import load_config
    from harness.scoring.scored_run import ScoredRun
    from harness.trainer.threshold_sweep import plot, sweep

    run_dir = (run_dir or RunFolder.latest(load_config().resolved().output_dir).path).resolve()
    run = ScoredRun.load(run_dir)
    assert run.records is not None  # load needs the turn records
    result = sweep(run.records, max_false_acceptance=max_false_acceptance)
    configured, where = _configured_threshold()
    result.table.to_csv(run_dir / "threshold_sweep.csv", index=False)
    plot(result, str(run_dir / "threshold_sweep.png"), configured)
    out.print(result.table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    out.print(f"configured threshold ({where}): {configured if configured is not None else 'none'}")
    if result.recommended is None:
        out.print(f"no recommendation: {result.reason}")
    else:
        out.print(f"recommended threshold: {result.recommended:g}: {result.reason}")
    out.print(f"written: {run_dir / 'threshold_sweep.csv'}, {run_dir / 'threshold_sweep.png'}")


def _configured_threshold() -> tuple[float | None, str]:
    """(the bot's FallbackClassifier threshold or None, where it was looked for and why there is none) for the
    project's bot: the reference bot's bot/config.yml, a Rasa bot's `<bot.project>/config.yml` (any version of the
    kinds); other kinds keep theirs to themselves. Problems (the project's settings, the bot's file) are reported in
    the second value, never raised: the sweep needs only the run."""
    from harness.bots.kinds import bot_settings
    from harness.errors import HarnessError
    from harness.project.config import load_config
    from harness.project.problems import read_yaml
    from harness.trainer.threshold_sweep import configured_threshold

    try:
        kind, settings = bot_settings(load_config().resolved())
        family = kind.name.split(".")[0]
        if family == "reference":
            path = paths().bot / "config.yml"
        elif family == "rasa" and getattr(settings, "project", None):
            path = Path(settings.project) / "config.yml"
        elif family == "rasa":
            return None, "not known: set bot.project in the run settings to the Rasa bot's folder"
        else:
            return None, f"not known for a {kind.name} bot"
        if not path.is_file():
            return None, f"{path} not found"
        document = read_yaml(path, "Rasa config")
    except HarnessError as error:
        return None, "not known: " + " ".join(str(error).split())
    try:
        found = configured_threshold(document)
    except ValueError as error:
        return None, f"{path} invalid: {error}; fix it there"
    return found, str(path) if found is not None else f"{path} has no FallbackClassifier"


@app.command("experiment")
@reports_errors
def experiment_command(
    spec_file: Annotated[Path, typer.Argument(help="An experiment file, e.g. experiments/nlu_pipelines.yml.")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Where results go (default: experiments/results/<name>).")
    ] = None,
    only: Annotated[list[str] | None, typer.Option("--only", help="Run only these pipelines (repeatable).")] = None,
    mlflow: Annotated[bool, typer.Option(help="Log to MLflow (a parent run, a child run per pipeline).")] = True,
    root: RootOption = None,
) -> None:
    """Compare the NLU pipelines of an experiment file: stratified cross-validation on intents/ and a full
    model on the eval sets' customer turns; writes results.md, results.json and plots, tracked in MLflow."""
    from harness.errors import InputError
    from harness.pipeline import load_suite
    from harness.project.bot_config import load_queue_config
    from harness.project.config import load_config
    from harness.project.intents import load_catalog
    from harness.sinks.tracking import artifact_root
    from harness.trainer.experiment import (
        ExperimentResult,
        describe_data,
        environment_note,
        evaluate_pipeline,
        load_spec,
    )
    from harness.trainer.experiment_report import log_experiment, write_outputs

    folders = paths(root).require_reference_folders("harness experiment", "intents", "bot")
    spec = load_spec(spec_file)
    pipelines = spec.pipelines
    if only:
        missing = sorted(set(only) - {p.name for p in pipelines})
        if missing:
            raise InputError("unknown pipeline in --only", [f"{spec_file}: no pipeline named {n!r}" for n in missing])
        pipelines = [p for p in pipelines if p.name in only]
    catalog = load_catalog(folders.intents, known_queues=load_queue_config(folders.escalation_policy).queues)
    config = load_config(overrides={"eval_sets": str(folders.eval_sets)}).resolved(folders.root)
    suite = load_suite(config, folders)
    started = environment_note()
    results = [evaluate_pipeline(spec, p, catalog, suite, progress=out.print) for p in pipelines]
    result = ExperimentResult(spec, results, {**describe_data(catalog, suite), **started})
    target = out_dir or folders.experiments / "results" / spec.name
    command = f"harness experiment {spec_file}" + "".join(f" --only {n}" for n in only or [])
    files = write_outputs(result, target, command)
    out.print(files["results.md"].read_text(), highlight=False)
    out.print(f"written: {target}/")
    if mlflow:
        parent = log_experiment(
            result,
            files,
            tracking_uri=config.tracking.uri,
            artifact_root=artifact_root(config.tracking.uri, folders.root),
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
    from harness.project.bot_config import load_queue_config
    from harness.project.config import load_config
    from harness.project.intents import load_catalog
    from harness.scoring.scored_run import ScoredRun
    from harness.trainer.mining import candidates_csv, markdown, mine

    folders = paths().require_reference_folders("harness mine", "intents", "bot")  # before asking for a run
    run_dir = (run_dir or RunFolder.latest(load_config().resolved().output_dir).path).resolve()
    run = ScoredRun.load(run_dir)
    assert run.records is not None  # load needs the turn records
    catalog = load_catalog(folders.intents, known_queues=load_queue_config(folders.escalation_policy).queues)
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
