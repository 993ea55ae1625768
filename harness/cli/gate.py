"""`harness gate`: decide whether a run may ship, promote it, or plan the eval sets' size."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from harness.cli.common import app, err, out, project, reports_errors
from harness.errors import EXIT_CHECK_FAILED
from harness.records.run_folder import RunFolder


@app.command("gate")
@reports_errors
def gate_command(
    run_dir: Annotated[
        Path | None, typer.Argument(help="The run folder to gate (default: the newest in runs/).")
    ] = None,
    spec_file: Annotated[
        Path | None, typer.Option("--spec", help="Gate specification (default: the project's, harness.yml `gate`).")
    ] = None,
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
    from harness.gate.baseline import baseline_for, copy_baseline
    from harness.gate.baseline import promote as promote_run
    from harness.gate.decision import decide
    from harness.gate.outputs import one_line, write_outputs
    from harness.gate.power import detectability, whole_gate_false_alarm, with_detectability
    from harness.gate.spec import load_spec
    from harness.project.config import load_config
    from harness.scoring.scored_run import ScoredRun

    spec = load_spec(spec_file if spec_file is not None else project().gate)
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
            out.print(f"{mark} {escape(one_line(check.message))}", highlight=False, markup=True)
        elif check.name.endswith(": no regression"):
            out.print(f"[green]pass[/] {escape(one_line(check.message))}", highlight=False, markup=True)
    must = [c for c in result.checks if c.group == "must_pass" and not c.name.endswith(": no regression")]
    known = sum(c.known_failure for c in must)
    warned = sum(c.warning for c in must)
    out.print(
        f"must-pass conversations: {sum(c.passed for c in must) - known - warned} of {len(must)} passed"
        + (f", {known} known failure(s) that also fail in the baseline" if known else "")
        + (f", {warned} new failure(s) listed as warnings" if warned else "")
    )
    for line in result.detectability:
        out.print(f"[cyan]can see[/] {escape(one_line(line.message))}", highlight=False, markup=True)
    if result.detectability:
        out.print(
            f"whole gate: false alarms on an equally good bot about {whole_gate_false_alarm(result.detectability):.1%}"
            " if the checks' noise were independent (bench/gate_power.py measures it)"
        )
    for note in result.notes:
        out.print(f"note: {one_line(note)}", highlight=False)
    out.print(
        f"outputs: {junit or run_dir / 'gate.xml'}, {markdown or run_dir / 'gate.md'}, "
        f"{json_out or run_dir / 'gate.json'}"
    )
    if not result.passed:
        for flag, asked in (("--promote", promote), ("--update-baseline", update_baseline is not None)):
            if asked:
                err.print(f"{flag}: not done, the gate failed (a run becomes the baseline only when it passes)")
        err.print(f"[bold red]release gate FAILED[/]: {len(result.failures())} check(s) failed", markup=True)
        raise typer.Exit(EXIT_CHECK_FAILED)
    out.print("[bold green]release gate PASSED[/]", markup=True)
    if promote:
        version = promote_run(
            run_dir,
            tracking_uri=config.tracking.uri,
            experiment=config.tracking.experiment,
            registered_model=config.tracking.experiment,
            alias="champion",
        )
        out.print(
            f"promoted: MLflow run tagged release_gate=passed; {config.tracking.experiment} version {version} is "
            "'champion'",
            markup=False,
        )
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
    from harness.scoring.scored_run import ScoredRun

    baseline_run = None
    if run_dir is None:
        try:
            run_dir = RunFolder.latest(runs).path
        except InputError:
            if spec.baseline is None or spec.baseline.path is None:
                raise
            committed: Path = spec.baseline.path
            run_dir = committed if committed.is_absolute() else project().root / committed
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
        out.print(f"- {line.message}", highlight=False)
    if not lines:
        out.print("no regression check (max_regression) and no must-pass rule to plan for")
