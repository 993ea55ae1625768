"""`harness logs transfers`: why conversations went to a human (harness.trainer.transfer_reasons)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from harness.cli.common import out, paths, project, reports_errors
from harness.cli.logs import logs_app
from harness.errors import InputError

WindowOption = Annotated[
    str | None,
    typer.Option(
        "--window",
        help="Days by conversation start (UTC): YYYY-MM-DD..YYYY-MM-DD (either side may be empty), YYYY-MM-DD or 7d "
        "(the last 7 days). Default: everything stored.",
    ),
]
StoreOption = Annotated[
    Path | None, typer.Option("--store", help="The production store (default: `store` in the config).")
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="Production configuration (default: harness.yml `production`).")
]


def open_store(store_dir: Path | None, config_file: Path | None) -> Any:
    """The production store of `--store`, else the configuration's; InputError when it holds nothing."""
    from harness.project.production_config import load_production_config
    from harness.records.production import ProductionStore

    settings = load_production_config(config_file or project().production, root=project().root)
    store = ProductionStore((store_dir or settings.store).resolve())
    if not store.turns_dir.is_dir():
        raise InputError(
            "no production store",
            [f"{store.path}: no imported conversations; import some with `harness logs import`, or give --store"],
        )
    return store, settings


def window_folder(window: Any) -> str:
    """A window as a folder name: `2026-11-01_2026-11-30`, `start_2026-11-30`, `start_end` (never `..`)."""
    return f"{window.first or 'start'}_{window.last or 'end'}"


@logs_app.command("transfers")
@reports_errors
def transfers_command(
    window: WindowOption = None,
    store_dir: StoreOption = None,
    config_file: ConfigOption = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Where transfers.md and transfers.json go (default: <store>/reports/transfers-...)."
        ),
    ] = None,
    handoff_intent: Annotated[
        list[str] | None,
        typer.Option(
            "--handoff-intent",
            help="An intent that asks for a person without saying why, never a topic (repeatable; default: "
            "request_human, human_handoff).",
        ),
    ] = None,
    distance: Annotated[
        float, typer.Option(help="Cosine distance under which last turns join one cluster (smaller: tighter).")
    ] = 0.45,
    min_size: Annotated[int, typer.Option(help="Smallest cluster reported (distinct texts).")] = 2,
) -> Any:
    """Analyse the reasons for transfers to a human in a window (the standard asks for it at least quarterly): the
    handed-off conversations by rule, queue, topic intent and cluster of what the customer last said, with 95%
    intervals and a trend per month and quarter; writes transfers.md and transfers.json."""
    from harness.project.intents import load_catalog
    from harness.records.production import parse_window
    from harness.trainer.transfer_reasons import (
        DEFAULT_HANDOFF_INTENTS,
        TransferOptions,
        markdown,
        not_topics_of,
        transfer_reasons,
    )

    store, settings = open_store(store_dir, config_file)
    asked = parse_window(window)
    intents = paths().intents
    catalog = load_catalog(intents) if intents.is_dir() else None
    options = TransferOptions(
        handoff_intents=tuple(handoff_intent or DEFAULT_HANDOFF_INTENTS),
        not_topics=not_topics_of(catalog, tuple(dict.fromkeys([*settings.fallback_intents, "out_of_scope"]))),
        distance_threshold=distance,
        min_size=min_size,
    )
    report = transfer_reasons(store, asked, catalog, options)
    r = report
    out.print(
        f"{r.conversations} conversations in {str(asked)}, {r.handed_off.count} handed off "
        f"({percent(r.handed_off.value)})",
        highlight=False,
    )
    for title, rows in (("rule", r.by_rule), ("queue", r.by_queue), ("topic", r.by_topic), ("cluster", r.by_cluster)):
        top = ", ".join(f"{s.key} {s.count} ({percent(s.value)})" for s in rows[:5]) or "-"
        out.print(f"  by {title}: {top}", highlight=False)
    for kind, periods in r.trend.items():
        trend = ", ".join(f"{p.period} {percent(p.handoff_rate.value)}" for p in periods)
        out.print(f"  handoff rate per {kind}: {trend}", highlight=False)
    write_report(
        out_dir or store.path / "reports",
        "transfers",
        window_folder(asked),
        markdown(report),
        report.to_json(),
        out_dir is not None,
    )
    return report


def write_report(where: Path, kind: str, window: str, text: str, data: Any, exact: bool = False) -> Path:
    """Write `<kind>.md` and `<kind>.json` into `where` (`exact`) or into a new `<kind>-<window>-<UTC time>/` folder
    under it, print where, and return the folder."""
    now = datetime.now(UTC)
    folder = (where if exact else where / f"{kind}-{window}-{now:%Y%m%dT%H%M%SZ}").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{kind}.md").write_text(text, encoding="utf-8")
    (folder / f"{kind}.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    out.print(f"written: {str(folder / f'{kind}.md')}, {str(folder / f'{kind}.json')}")
    return folder


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
