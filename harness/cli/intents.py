"""`harness intents`: build, check and import intents/, the source of truth for what the reference bot understands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.common import DEFAULT_PATHS, RootOption, app, err, out, reports_errors
from harness.errors import EXIT_BAD_INPUT, EXIT_CHECK_FAILED
from harness.project.paths import ProjectPaths

intents_app = typer.Typer(help="Work with intents/, the source of truth for what the bot understands.")
app.add_typer(intents_app, name="intents")


@intents_app.command("build")
@reports_errors
def intents_build(
    root: RootOption = DEFAULT_PATHS.root,
    check: Annotated[
        bool, typer.Option("--check", help="Only report files that are out of date; exit 1 if any.")
    ] = False,
) -> None:
    """Generate bot/data/nlu.yml, bot/domain/intents.yml and bot/intent_catalog.yml from intents/."""
    from harness.bots.reference_bot.nlu_build import build

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
def intents_validate(
    root: RootOption = DEFAULT_PATHS.root,
    embeddings: Annotated[
        bool, typer.Option(help="Use MiniLM embeddings for confusable pairs and near leakage (slower).")
    ] = True,
    min_examples: Annotated[int, typer.Option(help="Warn about intents with fewer examples.")] = 10,
) -> None:
    """Check intents/: schema, duplicates, unknown queues (errors); confusable intent pairs, thin intents (warnings);
    examples repeating eval-set turns (exact: error, near: warning). Exit 2 on errors."""
    from harness.pipeline import load_suite
    from harness.project.bot_config import load_queue_config
    from harness.project.eval_set import eval_set_files
    from harness.project.intents import load_catalog
    from harness.trainer.intent_checks import check_intents
    from harness.trainer.provenance import read_provenance, reviewed_from

    paths = ProjectPaths(root)
    catalog = load_catalog(paths.intents, known_queues=load_queue_config(paths.escalation_policy).queues)
    examples = sum(len(i.examples) for i in catalog.intents.values())
    suite = None
    if eval_set_files(paths.eval_sets):
        from harness.project.config import load_config

        suite = load_suite(load_config(overrides={"eval_sets": str(paths.eval_sets)}).resolved(root), paths)
    reviewed = reviewed_from(read_provenance(paths.intents))
    report = check_intents(catalog, suite, embeddings=embeddings, min_examples=min_examples, reviewed=reviewed)
    for warning in report.warnings:
        out.print(f"warning: {warning}", highlight=False, markup=False)
    for problem in report.errors:
        err.print(f"error: {problem}", highlight=False, markup=False)
    summary = (
        f"{len(catalog.intents)} intents, {examples} examples: {len(report.errors)} error(s), "
        f"{len(report.warnings)} warning(s), {len(report.confusable)} confusable pair(s)"
    )
    if report.errors:
        err.print(f"[bold red]intents/ has errors[/]: {summary}")
        raise typer.Exit(EXIT_BAD_INPUT)
    out.print(f"intents/ is valid: {summary}")


@intents_app.command("import")
@reports_errors
def intents_import(
    source: Annotated[Path, typer.Argument(help="A CSV (columns text,intent and optionally queue) or Rasa NLU YAML.")],
    queue: Annotated[str | None, typer.Option(help="Queue for new intents when the file has no queue column.")] = None,
    into: Annotated[Path | None, typer.Option(help="File for new intents (default: intents/imported.yml).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would happen; write nothing.")] = False,
    root: RootOption = DEFAULT_PATHS.root,
) -> None:
    """Add labelled utterances to intents/: examples of known intents go to their intent, unknown intents become new
    ones. Reports what was added, and what was skipped and why (duplicates, conflicting labels, eval-set leakage,
    unknown queues). Then run `harness intents validate` and `make retrain`."""
    from collections import Counter

    from harness.pipeline import load_suite
    from harness.project.bot_config import load_queue_config
    from harness.project.config import load_config
    from harness.project.eval_set import eval_set_files
    from harness.project.intents import load_catalog
    from harness.trainer.intent_import import apply_plan, eval_texts, plan_import, read_source

    paths = ProjectPaths(root)
    queues = load_queue_config(paths.escalation_policy).queues
    catalog = load_catalog(paths.intents, known_queues=queues)
    suite = None
    if eval_set_files(paths.eval_sets):
        suite = load_suite(load_config(overrides={"eval_sets": str(paths.eval_sets)}).resolved(root), paths)
    candidates, read_skips = read_source(source)
    plan = plan_import(
        source,
        candidates,
        catalog,
        queues=queues,
        eval_turns=eval_texts(suite),
        default_queue=queue,
        read_skips=read_skips,
    )
    for item in plan.skipped:
        shown = f" {item.candidate.text!r}" if item.candidate.text else ""
        out.print(f"skipped {item.candidate.origin}{shown}: {item.reason}", highlight=False, markup=False)
    for warning in plan.warnings:
        out.print(f"warning: {warning}", highlight=False, markup=False)
    per_intent = Counter(c.intent for c in plan.to_existing)
    for name, count in sorted(per_intent.items()):
        out.print(
            f"add {count} example(s) to {name} ({catalog.sources[name].relative_to(paths.root)})", highlight=False
        )
    for name, items in plan.new_intents.items():
        out.print(f"new intent {name} (queue {plan.new_queues[name]}) with {len(items)} example(s)", highlight=False)
    verb = "would add" if dry_run else "added"
    summary = f"{verb} {plan.added} example(s) ({len(plan.new_intents)} new intent(s)), skipped {len(plan.skipped)}"
    if dry_run or plan.added == 0:
        out.print(summary + ("; nothing written (dry run)" if dry_run else ""))
        return
    changed = apply_plan(plan, catalog, paths.intents, into or paths.intents / "imported.yml", queues=queues)
    out.print(f"{summary}; changed: {', '.join(str(p.relative_to(paths.root)) for p in changed)}")
    out.print("next: harness intents validate, then make retrain")
