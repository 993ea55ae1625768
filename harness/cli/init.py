"""`harness init`: make a folder (a bot's repository, or an empty one) a harness project (harness.scaffold)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.common import app, err, out, reports_errors


@app.command("init")
@reports_errors
def init_command(
    folder: Annotated[Path, typer.Argument(help="The folder to make a harness project (default: this one).")] = Path(),
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
    from harness.scaffold import import_test_stories, plan_init, write_example_eval_set, write_files

    folder = folder.resolve()
    if not folder.is_dir():
        raise InputError("cannot init", [f"{folder}: not a folder; create it first"])
    plan = plan_init(
        folder, bot_kind=bot_kind, bot_url=bot_url, rasa_folder=rasa_project, import_stories=import_stories
    )
    written = write_files(plan, force=force)
    if plan.stories:
        try:
            eval_set, summary = import_test_stories(plan, overwrite=force)
        except InputError as exc:
            err.print(f"the bot's test stories were not imported: {exc}", highlight=False, markup=False)
            written.append(write_example_eval_set(plan))
        else:
            written.append(eval_set)
            plan.notes.append(f"eval set: {summary}")
    for path in written:
        out.print(f"wrote {path.relative_to(folder) if path.is_relative_to(folder) else path}", highlight=False)
    for note in plan.notes:
        out.print(f"  {note}", highlight=False, markup=False)
    out.print("next:", highlight=False)
    for number, step in enumerate(plan.next_steps, start=1):
        out.print(f"  {number}. {step}", highlight=False, markup=False)
