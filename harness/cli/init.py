"""`harness init`: make a folder (a bot's repository, or an empty one) a harness project (harness.scaffold)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.common import app, out, reports_errors


@app.command("init")
@reports_errors
def init_command(
    folder: Annotated[
        Path | None,
        typer.Argument(
            help="The folder to make a harness project (default: --project's, else this one).", show_default=False
        ),
    ] = None,
    bot_kind: Annotated[
        str | None,
        typer.Option(help="rasa (a stock Rasa server) or http_json. Default: rasa when the folder holds a Rasa bot."),
    ] = None,
    bot_url: Annotated[
        str | None, typer.Option(help="Where the bot is reached (default: Rasa's own, port 5005).")
    ] = None,
    rasa_project: Annotated[
        Path | None, typer.Option(help="The Rasa bot's folder, when it is not FOLDER itself (domain.yml, config.yml).")
    ] = None,
    import_stories: Annotated[
        bool,
        typer.Option(
            "--import-stories/--no-import-stories",
            help="Import the Rasa bot's test stories (tests/test_*.yml) as the first eval set.",
        ),
    ] = True,
    force: Annotated[bool, typer.Option("--force", help="Replace files harness init would otherwise keep.")] = False,
) -> None:
    """Write harness.yml (bot, eval sets, MLflow, gate and review files), gate.yml, review.yml, an eval set and, for a
    Rasa bot, a handoff mapping proposed from its domain and actions; then print the next commands."""
    from harness.errors import InputError
    from harness.project.paths import chosen_project
    from harness.scaffold import plan_init, write_files

    folder = (folder if folder is not None else chosen_project() or Path()).resolve()
    if folder.exists() and not folder.is_dir():
        raise InputError("cannot init", [f"{folder}: is a file; give a folder"])
    if not folder.is_dir():
        raise InputError("cannot init", [f"{folder}: no such folder; create it first (mkdir)"])
    plan = plan_init(
        folder, bot_kind=bot_kind, bot_url=bot_url, rasa_folder=rasa_project, import_stories=import_stories
    )
    written = write_files(plan, force=force)
    for path in written:
        out.print(f"wrote {path}", highlight=False, markup=False)
    for note in plan.notes:
        out.print(f"  {note}", highlight=False, markup=False)
    out.print("next:", highlight=False)
    for number, step in enumerate(plan.next_steps, start=1):
        out.print(f"  {number}. {step}", highlight=False, markup=False)
