"""The `harness` command. Each command is a short list of stage calls; errors become messages and exit codes
(0 success, 1 a failed check, 2 bad input or configuration)."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from harness import __version__
from harness.errors import EXIT_BAD_INPUT, EXIT_CHECK_FAILED, HarnessError
from harness.paths import ProjectPaths

app = typer.Typer(help="Quality harness for customer-service chatbots.", no_args_is_help=True)
intents_app = typer.Typer(help="Work with intents/, the source of truth for what the bot understands.")
app.add_typer(intents_app, name="intents")
bot_app = typer.Typer(help="Train and serve the reference bot (Rasa server + action server) on loopback.")
app.add_typer(bot_app, name="bot")
# Messages carry file paths: never wrap them.
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

DEFAULT_PATHS = ProjectPaths()
RootOption = Annotated[Path, typer.Option("--root", help="Repository root (defaults to this checkout).")]


def reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn HarnessError into its message on stderr and its exit code."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except HarnessError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
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
) -> None:
    """Check eval sets: schema, unknown intents/queues/rules (with did-you-mean), duplicate ids, coverage."""
    from harness.validation import validate_eval_sets

    report = validate_eval_sets(ProjectPaths(root), eval_sets, overlap=overlap)
    for line in report.lines():
        out.print(line, highlight=False)


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
def intents_validate(root: RootOption = DEFAULT_PATHS.root) -> None:
    """Check intents/: schema, duplicate intents and examples, unknown queues."""
    from harness.bot_config import load_queue_config
    from harness.intents import load_catalog

    paths = ProjectPaths(root)
    catalog = load_catalog(paths.intents, known_queues=load_queue_config(paths.escalation_policy).queues)
    examples = sum(len(i.examples) for i in catalog.intents.values())
    out.print(f"intents/ is valid: {len(catalog.intents)} intents, {examples} examples")


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


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        raise SystemExit(EXIT_BAD_INPUT) from None
