"""`harness bot`: train and serve the reference bot on loopback."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from harness.cli.common import app, err, out, paths, reports_errors
from harness.errors import EXIT_BAD_INPUT

bot_app = typer.Typer(help="Train and serve the reference bot (Rasa server + action server) on loopback.")
app.add_typer(bot_app, name="bot")


@bot_app.command("train")
@reports_errors
def bot_train() -> None:
    """Regenerate the NLU data from intents/ and train the bot, unless a model of the same inputs exists."""
    from harness.bots.reference_bot.nlu_build import build
    from harness.bots.reference_bot.server import BotLayout, train

    folders = paths().require_reference_folders("harness bot train", "intents", "bot")
    build(folders)
    layout = BotLayout(folders.bot, folders.root / ".venv-bot")
    started = time.monotonic()
    model = train(layout)
    out.print(f"model: {model.relative_to(folders.root)} ({time.monotonic() - started:.0f} s)")


@bot_app.command("serve")
@reports_errors
def bot_serve(
    port: Annotated[int, typer.Option(help="Port of the Rasa server (reference channel).")] = 5005,
    action_port: Annotated[int, typer.Option(help="Port of the action server.")] = 5055,
    token: Annotated[str, typer.Option(envvar="REFERENCE_CHANNEL_TOKEN", help="Bearer token of the channel.")] = "",
    handoff_db: Annotated[
        Path | None,
        typer.Option(envvar="HANDOFF_DB", help="SQLite file of handoff tickets (default: bot/var/handoff.sqlite3)."),
    ] = None,
    tracker_store: Annotated[
        str | None,
        typer.Option(
            envvar="TRACKER_STORE_URL",
            help="Where conversations are kept, so handoffs survive a restart: an SQLite file, or an SQLAlchemy URL "
            "such as postgresql://user:password@host:5432/db. Default: <ticket file>-tracker.sqlite3 beside the "
            "ticket file, so conversations and their tickets stay together.",
        ),
    ] = None,
) -> None:
    """Train if needed, then serve the bot and the action server on 127.0.0.1 until Ctrl-C."""
    import secrets

    from harness.bots.reference_bot.nlu_build import build
    from harness.bots.reference_bot.server import BotLayout, BotServer, shown_url, train

    folders = paths().require_reference_folders("harness bot serve", "intents", "bot")
    build(folders)
    handoff_db = handoff_db or folders.bot / "var" / "handoff.sqlite3"
    out.print("training the bot if its data changed (a fresh model takes a few minutes)...")
    layout = BotLayout(folders.bot, folders.root / ".venv-bot")
    model = train(layout)
    token = token or secrets.token_urlsafe(16)
    server = BotServer(
        model=model,
        token=token,
        handoff_db=handoff_db.resolve(),
        layout=layout,
        log_dir=layout.bot_dir / "var" / "logs",
        rasa_port=port,
        action_port=action_port,
        tracker_store=tracker_store,
    )
    with server:
        out.print(f"[bold green]bot ready[/]: model {escape(model.name)}", markup=True)
        out.print(f"  reference channel: POST {server.url}")
        out.print(f"  bearer token:      {token}")
        out.print(f"  action server:     http://127.0.0.1:{action_port}/webhook (Rasa server only: per-start secret)")
        out.print(f"  handoff tickets:   {handoff_db.resolve()}")
        out.print(f"  conversations:     {shown_url(server.tracker_store_url)}")
        out.print(f"  logs:              {server.logs}")
        out.print(
            f"try: curl -s -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' "
            f'-d \'{{"sender": "me", "message": "I lost my card"}}\' {server.url}'
        )
        pids = f"rasa {server.process('rasa').pid}, actions {server.process('actions').pid}"
        out.print(f"  process ids:       {pids} (`kill` the actions one for an outage drill)")
        out.print("Ctrl-C stops both servers.")
        try:
            _watch(server)
        except KeyboardInterrupt:
            out.print("stopping the bot...")


def _watch(server: Any) -> None:
    """Return never; exit when the Rasa server dies. When the action server dies (crashed or killed, as in an outage
    drill with `harness probe` watching), the Rasa server keeps answering without it, and the action server starts
    again when the operator presses Enter, as a supervisor would; with no terminal to read, it stays down and the Rasa
    server keeps serving (restart the command to bring the action server back)."""
    import select
    import sys

    while True:
        time.sleep(1)
        if server.process("rasa").poll() is not None:
            err.print(f"the Rasa server exited; see the logs in {server.logs}")
            raise typer.Exit(EXIT_BAD_INPUT)
        actions = server.process("actions")
        if actions.poll() is None:
            continue
        if not sys.stdin.isatty():
            err.print(
                f"[yellow]the action server exited[/] (exit {actions.returncode}); the bot answers without it. With "
                "no terminal to start it again from, restart `harness bot serve` (Ctrl-C or SIGTERM stops the bot).",
                markup=True,
            )
            while server.process("rasa").poll() is None:
                time.sleep(1)
            continue
        err.print(
            f"[yellow]the action server exited[/] (exit {actions.returncode}); the bot answers without it. "
            "Press Enter to start it again, Ctrl-C to stop the bot.",
            markup=True,
        )
        while server.process("rasa").poll() is None:
            ready, _, _ = select.select([sys.stdin], [], [], 1.0)
            if ready:
                sys.stdin.readline()
                server.start_process("actions")
                out.print(f"action server started again (pid {server.process('actions').pid})")
                break
