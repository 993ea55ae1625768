"""`harness validate` and `harness evalsets`: check eval sets against the bot they run against; import them from
Rasa test stories."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.common import RootOption, app, out, project, reports_errors
from harness.cli.common import paths as project_paths

evalsets_app = typer.Typer(help="Work with eval sets: import them from other tools.")
app.add_typer(evalsets_app, name="evalsets")


@app.command("validate")
@reports_errors
def validate(
    eval_sets: Annotated[
        Path | None,
        typer.Argument(
            help="An eval-set file or folder (default: the --config's eval_sets, else eval_sets/).", show_default=False
        ),
    ] = None,
    root: RootOption = None,
    overlap: Annotated[bool, typer.Option(help="Report eval turns that (nearly) repeat training examples.")] = True,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="A run configuration: check against the vocabulary of its bot (default: the project's bot).",
        ),
    ] = None,
) -> None:
    """Check eval sets against the bot they will run against: schema, unknown intents/queues/rules (with
    did-you-mean), duplicate ids, reply checks the bot cannot be judged on, coverage."""
    from harness.project.validation import check_observable, validate_eval_sets

    folders = project_paths(root)
    if config_file is None:
        config_file = _own_bot_config(root)
    words = None
    if config_file is not None:
        from harness.bots.kinds import bot_settings, observes, vocabulary
        from harness.project.config import load_config

        config = load_config(config_file).resolved(folders.root)
        words = vocabulary(config, folders.root)
        eval_sets = eval_sets or config.eval_sets
    location = eval_sets or folders.eval_sets
    report = validate_eval_sets(folders, location, overlap=overlap, vocabulary=words)
    if config_file is not None:
        check_observable(report.suite, observes(config), bot_settings(config)[0].name)
    for line in report.lines():
        out.print(line, highlight=False)


def _own_bot_config(root: Path | None) -> Path | None:
    """The project's run settings when its bot is not the reference bot (a project of its own bot, such as one
    `harness init` made); None for the reference bot, whose eval sets are also checked against intents/."""
    from harness.project.config import load_config
    from harness.project.paths import PROJECT_FILE
    from harness.project.project import load_project

    found = load_project(root) if root is not None else project()
    if not (found.root / PROJECT_FILE).is_file():
        return None  # --root of a folder that is not a project (intents/ and eval_sets/ only)
    return None if load_config(found.run).bot.kind.startswith("reference") else found.run


@evalsets_app.command("import-rasa")
@reports_errors
def evalsets_import_rasa(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Rasa test-story files, or folders (every test_*.yml in them, as `rasa test` reads)."),
    ],
    name: Annotated[str, typer.Option("--name", help="The eval set's name (e.g. the bot's name).")],
    mapping: Annotated[
        Path | None,
        typer.Option(
            "--mapping",
            help="The bot's handoff mapping (handoff.yml): which actions or intents hand off, and to which queue. "
            "Without it every conversation is expected to be self-served.",
        ),
    ] = None,
    domain: Annotated[
        Path | None,
        typer.Option(
            "--domain",
            help="The bot's domain.yml or domain/ folder: checks the intents and forms the stories use, and that "
            "the eval set loads against the bot's vocabulary before it is written.",
        ),
    ] = None,
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Eval-set file to write (default: eval_sets/<name>.yml).")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out if it exists.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would be imported; write nothing.")] = False,
    root: RootOption = None,
) -> None:
    """Turn a Rasa bot's end-to-end test stories into an eval set: one conversation per story, customer turns from
    `user:` steps with their `intent:`, the bot's actions, slots and `bot:` texts as checks, and the outcome
    (escalated to a queue when a step matches the handoff mapping, else self-served). Lists, with file and line,
    every story skipped and every step not carried over (checkpoints, or:, rules, intent-only steps, entities, ...).
    """
    from harness.bots.handoff_mapping import check_against_domain, load_handoff_mapping
    from harness.bots.rasa_domain import eval_intents, load_domain
    from harness.project.rasa_stories import check_loads, import_rasa_stories, write_eval_set

    handoffs = load_handoff_mapping(mapping) if mapping is not None else None
    bot_domain = load_domain(domain) if domain is not None else None
    if handoffs is not None and bot_domain is not None:
        # A misspelt action or slot in the mapping would silently make every handoff story self-served.
        check_against_domain(
            handoffs, intents=bot_domain.intents, actions=bot_domain.known_actions(), slots=bot_domain.slots
        )
    result = import_rasa_stories(
        paths, handoffs, eval_set_name=name, forms=bot_domain.forms if bot_domain is not None else None
    )
    for finding in result.findings:
        out.print(str(finding), highlight=False, markup=False, soft_wrap=True)  # one grep-able line each
    if bot_domain is not None:
        check_loads(
            result,
            intents=eval_intents(bot_domain),
            queues=handoffs.queue_names() if handoffs is not None else (),
            rules=handoffs.rule_names() if handoffs is not None else (),
        )
    target = out_path or project_paths(root).eval_sets / f"{name}.yml"
    if dry_run:
        out.print(result.summary() + "; nothing written (dry run)")
        return
    write_eval_set(result, target, overwrite=overwrite)
    out.print(f"{result.summary()}; wrote {target}")
    if bot_domain is None:
        out.print("next: harness validate with the rasa bot's run configuration (checks intents and queues)")
