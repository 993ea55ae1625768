"""`harness logs compare`: the eval sets against real traffic (harness.trainer.production_mix)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from harness.cli.common import out, reports_errors
from harness.cli.logs import logs_app
from harness.cli.logs_transfers import (
    ConfigOption,
    StoreOption,
    WindowOption,
    open_store,
    percent,
    window_folder,
    write_report,
)
from harness.errors import InputError
from harness.records.run_folder import RunFolder


def latest_replay(runs: Path) -> RunFolder:
    """The newest finished replay run under `runs`: production runs (`harness review load --production`, named
    `production-...` or stamped source=production) are skipped. InputError when there is none."""
    for path in sorted((p for p in runs.glob("*") if RunFolder(p).finished()), reverse=True):
        if path.name.startswith("production-"):
            continue
        try:
            meta = json.loads((path / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        if isinstance(meta, dict) and "production" in (meta.get("source"), (meta.get("stamp") or {}).get("source")):
            continue
        return RunFolder(path)
    raise InputError(
        "no finished replay run", [f"{runs}: no replay run folder with a scorecard; run `harness run` first"]
    )


@logs_app.command("compare")
@reports_errors
def compare_command(
    window: WindowOption = None,
    store_dir: StoreOption = None,
    config_file: ConfigOption = None,
    run_dir: Annotated[Path | None, typer.Option("--run", help="A replay run folder (default: the newest).")] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Where compare.md and compare.json go (default: <store>/reports/compare-...)."),
    ] = None,
) -> Any:
    """Compare production's intent mix (the bot's predictions: production has no labels) with the eval sets'
    labelled mix: a chi-square drift test and the total variation distance, the intents only one side exercises,
    and the replay's recognition re-weighted by production's mix; writes compare.md and compare.json."""
    from harness.project.config import load_config
    from harness.records.production import parse_window
    from harness.scoring.scored_run import ScoredRun
    from harness.trainer.production_mix import COLUMNS, compare, markdown, production_mix

    store, _ = open_store(store_dir, config_file)
    asked = parse_window(window)
    run_path = (run_dir or latest_replay(load_config().resolved().output_dir).path).resolve()
    run = ScoredRun.load(run_path)
    assert run.core is not None  # load needs the turn records
    counts = production_mix(store.read(asked, columns=COLUMNS))
    if counts.empty:
        raise InputError("no production turns", [f"{store.path}: no answered customer turn in window {asked}"])
    result = compare(counts, run.core, store=str(store.path), window=str(asked), run=run_path.name)
    d, r = result.drift, result.recognition
    out.print(
        f"production {result.production_turns} turns ({str(asked)}) vs run {run_path.name} "
        f"{result.eval_turns} labelled turns",
        highlight=False,
    )
    if d.statistic is None:
        out.print(f"  drift: no test ({d.undefined_reason})", highlight=False)
    else:
        out.print(
            f"  drift: chi-square {d.statistic:.2f}, dof {d.dof}, p {d.p_value:.3g}; total variation {percent(d.tvd)}"
            + (f"; pooled: {', '.join(d.pooled)}" if d.pooled else ""),
            highlight=False,
        )
    only = ", ".join(f"{k} {percent(v)}" for k, v in result.production_only.items()) or "none"
    out.print(f"  production only: {only}", highlight=False)
    out.print(f"  eval sets only: {', '.join(result.eval_only) or 'none'}", highlight=False)
    out.print(
        f"  recognition: unweighted {percent(r.unweighted)} "
        f"({percent(r.unweighted_low)} - {percent(r.unweighted_high)}), "
        f"re-weighted to production {percent(r.value)} ({percent(r.low)} - {percent(r.high)}), "
        f"covering {percent(r.covered_share)} of production's in-scope turns",
        highlight=False,
    )
    write_report(
        out_dir or store.path / "reports",
        "compare",
        window_folder(asked),
        markdown(result),
        result.to_json(),
        out_dir is not None,
    )
    return result
