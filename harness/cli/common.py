"""What every `harness` command shares: the app, the consoles, the `--root` option and error reporting (a
HarnessError becomes its message on stderr and its exit code: 0 success, 1 a failed check, 2 bad input)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from harness.errors import HarnessError
from harness.project.paths import ProjectPaths

app = typer.Typer(help="Quality harness for customer-service chatbots.", no_args_is_help=True)
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
