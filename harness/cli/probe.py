"""`harness probe` (the probe service: synthetic probe conversations on a schedule, their log, Prometheus metrics)
and `harness uptime` (uptime.v1 of a window, with its incidents, optionally logged to MLflow)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from harness.cli.common import app, err, out, paths, project, reports_errors

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Probe configuration (target, bot, probe set, schedule, store, metrics; default: harness.yml `probe`).",
    ),
]
StoreOption = Annotated[
    str | None, typer.Option("--store", help="The probe log: an SQLAlchemy URL (sqlite:///..., postgresql://...).")
]


@app.command("probe")
@reports_errors
def probe_command(
    config_file: ConfigOption = None,
    bot_url: Annotated[str | None, typer.Option(help="The bot's URL (overrides bot.url).")] = None,
    token: Annotated[
        str | None, typer.Option(help="The bot's token (default: from the variable bot.token_env names).")
    ] = None,
    store: StoreOption = None,
    port: Annotated[
        int | None, typer.Option(help="Port of the Prometheus endpoint on the metrics host (0: any free port).")
    ] = None,
    interval: Annotated[float | None, typer.Option(help="Seconds between probe cycles (schedule.interval_s).")] = None,
    jitter: Annotated[
        float | None, typer.Option(help="Random shift of each cycle, seconds (schedule.jitter_s).")
    ] = None,
    window: Annotated[str, typer.Option(help="The window of the uptime shown after each cycle.")] = "24h",
    once: Annotated[
        bool, typer.Option("--once", help="Run the probe set once, store the results and exit (1 if a probe failed).")
    ] = False,
    serve_bot: Annotated[
        bool,
        typer.Option(
            "--serve-bot",
            help="Train if needed and serve the reference bot on loopback while probing (outage drills: kill its "
            "action server, press Enter to start it again).",
        ),
    ] = False,
) -> None:
    """Probe the bot on a schedule until SIGTERM or Ctrl-C: each probe conversation of the probe set in a fresh
    conversation, a failed probe retried once, every result appended to the probe log and published on the
    Prometheus endpoint; after each cycle, the window's uptime.v1 and any incident."""
    from contextlib import ExitStack

    from harness.bots.kinds import connect
    from harness.pipeline import QuietEvents, serving_reference_bot
    from harness.records.probe_log import ProbeLog
    from harness.sinks.probe_metrics import ProbeMetrics
    from harness.sources.probes import load_probes, with_stale_after

    config = _config(config_file, bot_url, store, port, interval, jitter)
    probes = load_probes(config, project().root)
    config = with_stale_after(probes, config)
    start, end = _window(window)  # checked before anything starts
    del start, end
    with ExitStack() as stack:
        served = None
        if serve_bot:
            out.print("training the bot if its data changed...")
            serving = serving_reference_bot(config.run_config(), None, paths(), QuietEvents())
            served = stack.enter_context(serving)
            config = config.model_copy(update={"bot": config.bot.model_copy(update={"url": served.url})})
            token = served.token
            _print_served(served)
        bot = connect(config.run_config(), token)
        log = ProbeLog(config.store)
        stack.callback(log.close)
        metrics = ProbeMetrics(config.target)
        console = ProbeConsole(window)
        if once:
            failed = asyncio.run(_once(config, bot, probes, log, metrics, console))
            raise typer.Exit(1 if failed else 0)
        exporter = metrics.serve(config.metrics.host, config.metrics.port, allow_remote=config.metrics.allow_remote)
        stack.callback(exporter.close)
        out.print(
            f"probing {config.target} ({config.bot.kind} at {config.bot.url}): {len(probes)} probe(s) every "
            f"{config.schedule.interval_s:g} s (jitter {config.schedule.jitter_s:g} s); log {_shown(config.store)}; "
            f"metrics http://{config.metrics.host}:{exporter.port}/metrics; SIGTERM or Ctrl-C stops"
        )
        _serve(config, bot, probes, log, metrics, console, served)
        out.print("probe service stopped")


def _config(
    config_file: Path | None,
    bot_url: str | None,
    store: str | None,
    port: int | None,
    interval: float | None,
    jitter: Any,
) -> Any:
    from harness.project.probe_config import load_probe_config

    overrides = {
        "bot.url": bot_url,
        "store": store,
        "metrics.port": port,
        "schedule.interval_s": interval,
        "schedule.jitter_s": jitter,
    }
    path = config_file or project().probe
    if not path.exists():
        from harness.errors import InputError

        raise InputError(
            "no probe configuration",
            [
                f"{path}: not found; write one (the keys: README 'System uptime'; the harness repository's "
                "experiments/probe.yml is a full example), name it in harness.yml `probe:`, or pass --config"
            ],
        )
    return load_probe_config(path, overrides).resolved(project().root)


def _cycle_runner(config: Any, bot: Any, probes: Any) -> Any:
    import os
    import socket

    from harness.sources.probes import run_cycle

    prober = f"{socket.gethostname()}:{os.getpid()}"

    async def run() -> Any:
        return await run_cycle(bot, probes, config, prober=prober)

    return run


async def _once(config: Any, bot: Any, probes: Any, log: Any, metrics: Any, console: ProbeConsole) -> bool:
    from harness.probing.service import ProbeService

    service = ProbeService(_cycle_runner(config, bot, probes), log, metrics, console, window=console.window)
    try:
        results = await service.cycle()
    finally:
        await bot.aclose()
    if service.pending:
        raise typer.Exit(2)
    return any(not r.ok for r in results)


def _serve(config: Any, bot: Any, probes: Any, log: Any, metrics: Any, console: ProbeConsole, served: Any) -> None:
    from harness.probing.service import ProbeService

    service = ProbeService(_cycle_runner(config, bot, probes), log, metrics, console, window=console.window)
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for s in previous:
            loop.add_signal_handler(s, stop.set)
        watcher = asyncio.create_task(_watch_served(served, stop)) if served is not None else None
        try:
            await service.serve(config.schedule.interval_s, config.schedule.jitter_s, stop)
        finally:
            if watcher is not None:
                watcher.cancel()
            await bot.aclose()

    try:
        asyncio.run(main())
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


async def _watch_served(served: Any, stop: asyncio.Event) -> None:
    """While the reference bot is served: when its action server exits (an outage drill: `kill <pid>`), say so, and
    start it again when Enter is pressed; when the Rasa server exits, say so (the probes record the outage)."""
    server = served.server
    enter = asyncio.Event()
    loop = asyncio.get_running_loop()
    if sys.stdin.isatty():

        def pressed() -> None:
            sys.stdin.readline()
            enter.set()

        loop.add_reader(sys.stdin.fileno(), pressed)
    told = False
    while not stop.is_set():
        await asyncio.sleep(1)
        actions = server.process("actions")
        if actions.poll() is None:
            told = False
            enter.clear()
            continue
        if not told:
            told = True
            how = "press Enter to start it again" if sys.stdin.isatty() else "it stays down (no terminal)"
            err.print(f"[yellow]the action server exited[/] (exit {actions.returncode}): {escape(how)}", markup=True)
            enter.clear()
        if enter.is_set():
            await asyncio.to_thread(server.start_process, "actions")
            out.print(f"action server started again (pid {server.process('actions').pid})")


def _print_served(served: Any) -> None:
    server = served.server
    out.print(f"bot {served.model} serving at {served.url}")
    out.print(
        f"  process ids: rasa {server.process('rasa').pid}, actions {server.process('actions').pid} "
        f"(outage drill: kill {server.process('actions').pid}, then press Enter to start it again)"
    )


class ProbeConsole:
    """What `harness probe` prints: one line per cycle (each probe's verdict and slowest turn), the window's
    uptime.v1, and a line when an incident opens or ends."""

    def __init__(self, window: str) -> None:
        self.window = window
        self.open_incident: Any = None

    def cycle_done(self, results: list[Any]) -> None:
        parts = [_verdict(r) for r in results]
        out.print(f"{datetime.now(UTC):%H:%M:%S} " + " · ".join(parts), highlight=False, markup=True)

    def uptime(self, report: Any) -> None:
        out.print(f"  {_uptime_line(report, self.window)}", highlight=False)
        ongoing = next((i for i in report.incidents if i.end is None), None)
        if ongoing is not None and self.open_incident is None:
            err.print(
                f"  [bold red]incident[/] since {ongoing.start:%Y-%m-%d %H:%M:%S} UTC: {escape(ongoing.probe)} "
                f"failed {ongoing.check}: {escape(ongoing.detail or '')}",
                markup=True,
            )
        if ongoing is None and self.open_incident is not None:
            closed = next((i for i in report.incidents if i.start == self.open_incident.start), None)
            if closed is not None:
                out.print(f"  [green]incident over[/]: {escape(_incident_text(closed))}", markup=True)
        self.open_incident = ongoing

    def log_failed(self, error: str, pending: int, dropped: int) -> None:
        lost = f", {dropped} dropped (memory cap)" if dropped else ""
        err.print(f"[yellow]probe log unavailable[/] ({escape(error)}): {pending} result(s) waiting{lost}", markup=True)

    def log_recovered(self, appended: int) -> None:
        out.print(f"probe log back: {appended} waiting result(s) appended")

    def cycle_failed(self, error: str) -> None:
        err.print(f"[red]probe cycle failed[/] (a harness fault, probing goes on): {escape(error)}", markup=True)


def _verdict(result: Any) -> str:
    latency = f" {result.latency_ms / 1000:.2f} s" if result.latency_ms is not None else ""
    retried = " (retried)" if result.attempts > 1 else ""
    if result.ok:
        return f"[green]ok[/] {escape(result.probe)}{latency}{retried}"
    return f"[red]FAIL[/] {escape(result.probe)} {result.failed_check}{latency}{retried}"


def _window(text: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    from harness.scoring.uptime import parse_window

    return parse_window(text, now or datetime.now(UTC))


def _percent(value: float | None) -> str:
    return "undefined" if value is None else f"{100 * value:.3f}%"


def _duration(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))


def _uptime_line(report: Any, window: str) -> str:
    low, high = report.bounds if report.bounds is not None else (None, None)
    bounds = f" [{_percent(low)}, {_percent(high)}]" if low is not None else ""
    return (
        f"{report.name} over {window}: {_percent(report.value)}{bounds} · up {_duration(report.up_s)}, down "
        f"{_duration(report.down_s)}, unknown {_duration(report.unknown_s)} · {len(report.incidents)} incident(s)"
    )


def _incident_text(incident: Any) -> str:
    end = f"{incident.end:%Y-%m-%d %H:%M:%S}" if incident.end is not None else "now"
    return (
        f"{incident.start:%Y-%m-%d %H:%M:%S} to {end} UTC ({_duration(incident.duration_s)}), first failure "
        f"{incident.probe}: {incident.check}"
    )


def _shown(url: str) -> str:
    from harness.bots.reference_bot.server import shown_url

    return shown_url(url)


@app.command("uptime")
@reports_errors
def uptime_command(
    config_file: ConfigOption = None,
    window: Annotated[
        str,
        typer.Option(
            help="The hours up to now (30m, 24h, 7d = the last 168 hours, 2w), an ISO range START/END (UTC when no "
            "offset), or days YYYY-MM-DD..YYYY-MM-DD (UTC calendar days, as `harness logs`)."
        ),
    ] = "7d",
    store: StoreOption = None,
    target: Annotated[str | None, typer.Option(help="The monitored bot's name in the log (default: config's).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the report as JSON here.")] = None,
    mlflow_log: Annotated[bool, typer.Option("--mlflow/--no-mlflow", help="Log uptime.v1 to MLflow.")] = False,
    beside: Annotated[
        str | None,
        typer.Option(
            help="With --mlflow: an eval run's id (`latest` for the newest run folder) whose MLflow run gets the "
            "uptime beside its KPIs; without it, a run of its own tagged source=probes."
        ),
    ] = None,
) -> None:
    """uptime.v1 of the window from the probe log: the time-weighted share of the window the bot was up, with the
    bounds the probe spacing allows, unknown time (no probe standing) and every incident."""
    from harness.records.probe_log import ProbeLog
    from harness.scoring.uptime import uptime

    config = _config(config_file, None, store, None, None, None)
    name = target or config.target
    start, end = _window(window)
    log = ProbeLog(config.store)
    try:
        report = uptime(log.read(name, start, end), start, end)
    finally:
        log.close()
    out.print(f"{name}: {_uptime_line(report, window)}", highlight=False)
    out.print(f"  window {start:%Y-%m-%d %H:%M:%S} to {end:%Y-%m-%d %H:%M:%S} UTC, {report.results} probe result(s)")
    if report.incidents:
        table = Table("start (UTC)", "end (UTC)", "duration", "first failure", "check", "ended by", "detail")
        for incident in report.incidents:
            table.add_row(
                f"{incident.start:%Y-%m-%d %H:%M:%S}" + (" (before window)" if incident.started_before_window else ""),
                f"{incident.end:%Y-%m-%d %H:%M:%S}" if incident.end is not None else "-",
                _duration(incident.duration_s),
                incident.probe,
                incident.check or "",
                incident.end_reason,
                incident.detail or "",
            )
        out.print(table)
    else:
        out.print("  no incidents")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
        out.print(f"  json: {json_out}")
    if mlflow_log:
        _log_mlflow(report, config, name, beside)


def _log_mlflow(report: Any, config: Any, target: str, beside: str | None) -> None:
    from harness.project.config import load_config
    from harness.records.run_folder import RunFolder
    from harness.sinks.tracking import artifact_root
    from harness.sinks.uptime_tracking import log_uptime

    if beside == "latest":
        runs = load_config().resolved().output_dir
        beside = RunFolder.latest(runs).path.name
    tracked = log_uptime(
        report,
        target=target,
        store=_shown(config.store),
        tracking_uri=config.tracking.uri,
        experiment=config.tracking.experiment,
        artifact_root=artifact_root(config.tracking.uri, project().root),
        beside=beside,
    )
    where = f"beside eval run {beside}" if beside else "as a run of its own"
    out.print(f"  MLflow run {tracked.run_id} ({where}); view with: {tracked.ui_hint()}")
