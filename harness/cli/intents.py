"""`harness intents`: build, check and import intents/, the source of truth for what the reference bot understands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from harness.cli.common import RootOption, app, err, out, reports_errors
from harness.cli.common import paths as project_paths
from harness.errors import EXIT_BAD_INPUT, EXIT_CHECK_FAILED
from harness.project.paths import ProjectPaths

intents_app = typer.Typer(help="Work with intents/, the source of truth for what the bot understands.")
app.add_typer(intents_app, name="intents")


@intents_app.command("build")
@reports_errors
def intents_build(
    root: RootOption = None,
    check: Annotated[
        bool, typer.Option("--check", help="Only report files that are out of date; exit 1 if any.")
    ] = False,
) -> None:
    """Generate bot/data/nlu.yml, bot/domain/intents.yml and bot/intent_catalog.yml from intents/."""
    from harness.bots.reference_bot.nlu_build import build

    paths = project_paths(root).require_reference_folders("harness intents build", "intents", "bot")
    result = build(paths, check=check)
    for path in result.changed:
        out.print(f"{'out of date' if check else 'wrote'}: {path.relative_to(paths.root)}")
    if check and result.changed:
        err.print("generated bot files are out of date: run `harness intents build`")
        raise typer.Exit(EXIT_CHECK_FAILED)
    if not result.changed:
        out.print("generated bot files are up to date")


ShowOption = Annotated[
    int, typer.Option("--show", min=0, help="How many problems (and skipped rows) to print; all go to the report file.")
]
ReportOption = Annotated[
    Path | None,
    typer.Option(
        "--report",
        help="Write the full lists to this file (default: runs/intents/<command>.txt, written when the output is cut).",
    ),
]


@intents_app.command("validate")
@reports_errors
def intents_validate(
    root: RootOption = None,
    embeddings: Annotated[
        bool, typer.Option(help="Use MiniLM embeddings for confusable pairs and near leakage (slower).")
    ] = True,
    min_examples: Annotated[int, typer.Option(help="Warn about intents with fewer examples.")] = 10,
    show: ShowOption = 10,
    report_file: ReportOption = None,
) -> None:
    """Check intents/: schema, duplicates, unknown queues, entity markup Rasa refuses or misreads (errors);
    confusable intent pairs, thin intents, entities the bot's domain does not declare (warnings); examples
    repeating eval-set turns (exact: error, near: warning). Prints the first problems and the counts by kind; the
    full list goes to a file when cut. Exit 2 on errors."""
    from harness.pipeline import load_suite
    from harness.project.bot_config import load_queue_config
    from harness.project.entity_markup import read_declared
    from harness.project.eval_set import eval_set_files
    from harness.project.intents import load_catalog
    from harness.trainer.intent_checks import check_intents
    from harness.trainer.provenance import read_provenance, reviewed_from

    paths = project_paths(root).require_reference_folders("harness intents validate", "intents", "bot")
    catalog = load_catalog(paths.intents, known_queues=load_queue_config(paths.escalation_policy).queues)
    examples = sum(len(i.examples) for i in catalog.intents.values())
    suite = None
    if eval_set_files(paths.eval_sets):
        from harness.project.config import load_config

        suite = load_suite(load_config(overrides={"eval_sets": str(paths.eval_sets)}).resolved(paths.root), paths)
    reviewed = reviewed_from(read_provenance(paths.intents))
    declared = read_declared(paths.bot / "domain", generated=[paths.domain_intents])
    report = check_intents(
        catalog,
        suite,
        embeddings=embeddings,
        min_examples=min_examples,
        reviewed=reviewed,
        declared=declared,
    )
    cut = _print_first(report.warnings, show, "warning", to_stderr=False)
    cut |= _print_first(report.errors, show, "error", to_stderr=True)
    counts = [f"{n:>6}  {severity}(s): {kind}" for severity, kind, n in report.counts()]
    if counts and (cut or len(counts) > 1):
        out.print("problems by kind:", highlight=False)
        for line in counts:
            out.print(line, highlight=False, markup=False)
    summary = (
        f"{len(catalog.intents)} intents, {examples} examples: {len(report.errors)} error(s), "
        f"{len(report.warnings)} warning(s), {len(report.confusable)} confusable pair(s)"
    )
    if cut or report_file is not None:
        written = _write_report(
            report_file or _default_report(paths, "validate"),
            f"harness intents validate: {summary}",
            [("problems by kind", counts), ("errors", report.errors), ("warnings", report.warnings)],
        )
        out.print(f"full list: {_shown_path(written, paths)}", highlight=False, markup=False)
    if report.errors:
        err.print(f"[bold red]intents/ has errors[/]: {escape(summary)}", markup=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    out.print(f"intents/ is valid: {summary}")


@intents_app.command("import")
@reports_errors
def intents_import(
    source: Annotated[Path, typer.Argument(help="A CSV (columns text,intent and optionally queue) or Rasa NLU YAML.")],
    queue: Annotated[str | None, typer.Option(help="Queue for new intents when the file has no queue column.")] = None,
    into: Annotated[Path | None, typer.Option(help="File for new intents (default: intents/imported.yml).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would happen; write nothing.")] = False,
    root: RootOption = None,
    show: ShowOption = 10,
    report_file: ReportOption = None,
) -> None:
    """Add labelled utterances to intents/: examples of known intents go to their intent, unknown intents become new
    ones. Reports what was added, and what was skipped and why (duplicates, conflicting labels, eval-set leakage,
    unknown queues, entity markup Rasa misreads, retrieval intents), with counts by reason; the full lists go to a
    file when the output is cut. Examples are kept as written (a Rasa file's `- text: no` stays "no") and stored in
    Unicode NFC. Then run `harness intents validate` and `make retrain`."""
    from collections import Counter

    from harness.pipeline import load_suite
    from harness.project.bot_config import load_queue_config
    from harness.project.config import load_config
    from harness.project.entity_markup import read_declared
    from harness.project.eval_set import eval_set_files
    from harness.project.intents import load_catalog
    from harness.trainer.intent_import import apply_plan, eval_texts, plan_import, read_source

    paths = project_paths(root).require_reference_folders("harness intents import", "intents", "bot")
    queues = load_queue_config(paths.escalation_policy).queues
    catalog = load_catalog(paths.intents, known_queues=queues)
    suite = None
    if eval_set_files(paths.eval_sets):
        suite = load_suite(load_config(overrides={"eval_sets": str(paths.eval_sets)}).resolved(paths.root), paths)
    read = read_source(source)
    plan = plan_import(
        source,
        read.candidates,
        catalog,
        queues=queues,
        eval_turns=eval_texts(suite),
        default_queue=queue,
        read_skips=read.skipped,
        read_warnings=read.warnings,
        declared=read_declared(paths.bot / "domain", generated=[paths.domain_intents]),
    )
    skipped = [
        f"skipped {item.candidate.origin}{f' {item.candidate.text!r}' if item.candidate.text else ''}: {item.reason}"
        for item in plan.skipped
    ]
    cut = _print_first(skipped, show, "skipped", to_stderr=False, prefix=False)
    reasons = Counter(item.category() for item in plan.skipped)
    by_reason = [f"{n:>6}  {reason}" for reason, n in reasons.most_common()]
    if plan.skipped and (cut or len(reasons) > 1):
        out.print(f"skipped {len(plan.skipped)} by reason:", highlight=False)
        for line in by_reason[:show]:
            out.print(line, highlight=False, markup=False)
    cut |= _print_first(plan.warnings, show, "warning", to_stderr=False)
    per_intent = Counter(c.intent for c in plan.to_existing)
    additions = [
        f"add {count} example(s) to {name} ({_shown_path(catalog.sources[name], paths)})"
        for name, count in sorted(per_intent.items())
    ] + [
        f"new intent {name} (queue {plan.new_queues[name]}) with {len(items)} example(s)"
        for name, items in plan.new_intents.items()
    ]
    cut |= _print_first(additions, show, "intent", to_stderr=False, prefix=False)
    verb = "would add" if dry_run else "added"
    summary = f"{verb} {plan.added} example(s) ({len(plan.new_intents)} new intent(s)), skipped {len(plan.skipped)}"
    if cut or report_file is not None:
        written = _write_report(
            report_file or _default_report(paths, "import"),
            f"harness intents import {source}: {summary}",
            [("skipped by reason", by_reason), ("skipped", skipped), ("warnings", plan.warnings), ("added", additions)],
        )
        out.print(f"full list: {_shown_path(written, paths)}", highlight=False, markup=False)
    if dry_run or plan.added == 0:
        out.print(summary + ("; nothing written (dry run)" if dry_run else ""))
        return
    changed = apply_plan(plan, catalog, paths.intents, into or paths.intents / "imported.yml", queues=queues)
    out.print(f"{summary}; changed: {', '.join(str(p.relative_to(paths.root)) for p in changed)}")
    out.print("next: harness intents validate, then make retrain")


def _print_first(lines: list[str], limit: int, what: str, *, to_stderr: bool, prefix: bool = True) -> bool:
    """Print the first `limit` lines (as `what: line` when `prefix`); True when some were left out."""
    console = err if to_stderr else out
    for line in lines[:limit]:
        console.print(f"{what}: {line}" if prefix else line, highlight=False, markup=False)
    if len(lines) > limit:
        console.print(f"... and {len(lines) - limit} more {what} line(s)", highlight=False, markup=False)
        return True
    return False


def _default_report(paths: ProjectPaths, command: str) -> Path:
    return paths.root / "runs" / "intents" / f"{command}.txt"


def _write_report(path: Path, title: str, sections: list[tuple[str, list[str]]]) -> Path:
    """A plain-text file with every line of every section; returns its path."""
    from datetime import UTC, datetime

    body = [f"# {title}", f"# written {datetime.now(UTC).isoformat(timespec='seconds')}"]
    for name, lines in sections:
        body += ["", f"## {name} ({len(lines)})", *lines]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(body) + "\n", encoding="utf-8")
    return path


def _shown_path(path: Path, paths: ProjectPaths) -> str:
    try:
        return str(path.resolve().relative_to(paths.root.resolve()))
    except ValueError:
        return str(path)
