"""The `harness` command. Each command is a short list of stage calls; errors become messages and exit codes
(0 success, 1 a failed check, 2 bad input or configuration)."""

from __future__ import annotations

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
err = Console(stderr=True)
out = Console()

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


@intents_app.command("build")
@reports_errors
def intents_build(
    root: RootOption = ProjectPaths().root,
    check: Annotated[bool, typer.Option("--check", help="Only report files that are out of date; exit 1 if any.")] = False,
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
def intents_validate(root: RootOption = ProjectPaths().root) -> None:
    """Check intents/: schema, duplicate intents and examples, unknown queues."""
    from harness.bot_config import load_queue_config
    from harness.intents import load_catalog

    paths = ProjectPaths(root)
    catalog = load_catalog(paths.intents, known_queues=load_queue_config(paths.escalation_policy).queues)
    examples = sum(len(i.examples) for i in catalog.intents.values())
    out.print(f"intents/ is valid: {len(catalog.intents)} intents, {examples} examples")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        raise SystemExit(EXIT_BAD_INPUT) from None
