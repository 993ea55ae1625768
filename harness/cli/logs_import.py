"""`harness logs import`: a bot's logged conversations into the production store (harness.sources.transcripts)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.common import err, out, project, reports_errors
from harness.cli.logs import logs_app
from harness.errors import InputError


@logs_app.command("import")
@reports_errors
def import_command(
    tracker_store: Annotated[
        str | None,
        typer.Option(
            "--tracker-store",
            help="A Rasa SQL tracker store by SQLAlchemy URL: sqlite:////abs/path/tracker.sqlite3 or "
            "postgresql://user:password@host:5432/db. With --reference: the reference bot's store, a URL or an "
            "SQLite file [default: $TRACKER_STORE_URL, else <ticket file>-tracker.sqlite3 beside the ticket file, "
            "as `harness bot serve` places it].",
            show_default=False,
        ),
    ] = None,
    tracker_json: Annotated[
        list[Path] | None,
        typer.Option(
            "--tracker-json",
            help="Tracker JSON as Rasa's HTTP API returns it: a .json file per conversation, a .jsonl file with "
            "one tracker per line, or a folder of them (repeatable).",
            show_default=False,
        ),
    ] = None,
    reference: Annotated[
        bool,
        typer.Option("--reference", help="The reference bot's stores: its tracker store and its handoff tickets."),
    ] = False,
    handoff_db: Annotated[
        Path | None,
        typer.Option(
            "--handoff-db",
            help="With --reference: the ticket file [default: $HANDOFF_DB, else bot/var/handoff.sqlite3].",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="The source's name: the `source` column and the key of its watermark "
            "[default: `reference` with --reference, else `production`].",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="The production configuration (default: harness.yml `production`; missing: defaults)."
        ),
    ] = None,
    store: Annotated[
        Path | None,
        typer.Option(
            "--store", help="The production store folder [default: `store` of the configuration].", show_default=False
        ),
    ] = None,
    finish_open: Annotated[
        bool,
        typer.Option(
            "--finish-open",
            help="The log is complete (a closed export, a bot that has stopped): store the conversations still open "
            "at its newest event as ended by timeout instead of deferring them to the next import.",
        ),
    ] = False,
    timeout_minutes: Annotated[
        float | None,
        typer.Option(
            "--timeout-minutes",
            help="Inactivity that ends a conversation [default: inactivity_timeout_minutes of the configuration, 30].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Import the conversations logged since the last import (incremental: nothing is imported twice;
    conversations still open are imported next time), personal data masked, and print what was read."""
    from dataclasses import replace
    from datetime import timedelta

    from harness.project.production_config import load_production_config
    from harness.sources.transcripts import import_events
    from harness.sources.transcripts.reference import (
        DEFAULT_MAPPING,
        reference_tickets,
        reference_tracker_url,
        ticket_lookup,
    )
    from harness.sources.transcripts.sql_store import SqlTrackerStore
    from harness.sources.transcripts.tracker_json import TrackerJson

    # The project's folders, as every other command finds them (the configuration's relative paths, the reference
    # bot's files); a path typed on the command line is relative to the current folder.
    root = project().root
    config = config or project().production
    given = sum([tracker_store is not None and not reference, bool(tracker_json), reference])
    if given != 1:
        raise typer.BadParameter(
            "give one of --tracker-store URL, --tracker-json PATH... or --reference", param_hint="--tracker-store"
        )
    if handoff_db is not None and not reference:
        raise typer.BadParameter("only with --reference", param_hint="--handoff-db")
    if name is not None and not name.strip():
        raise typer.BadParameter("give a name", param_hint="--name")
    settings = load_production_config(config.resolve(), root)
    if store is not None:
        settings = replace(settings, store=store)
    if timeout_minutes is not None:
        if timeout_minutes <= 0:
            raise InputError("bad inactivity timeout", [f"--timeout-minutes {timeout_minutes}: give minutes > 0"])
        settings = replace(settings, inactivity_timeout=timedelta(minutes=timeout_minutes))
    from harness.masking import gaps

    for gap in gaps(settings.masking):
        err.print(f"warning: {gap}")
    tickets = None
    if reference:
        if settings.handoff_mapping is None and (root / DEFAULT_MAPPING).is_file():
            settings = replace(settings, handoff_mapping=root / DEFAULT_MAPPING)
        ticket_file = reference_tickets(root, handoff_db)
        tickets = ticket_lookup(ticket_file)
        source: SqlTrackerStore | TrackerJson = SqlTrackerStore(reference_tracker_url(ticket_file, tracker_store))
    elif tracker_store is not None:
        source = SqlTrackerStore(tracker_store)
    else:
        source = TrackerJson(list(tracker_json or []))
    try:
        summary = import_events(
            source,
            settings,
            name=name or ("reference" if reference else "production"),
            tickets=tickets,
            finish_open=finish_open,
        )
    finally:
        source.close()
    out.print(f"imported from {summary.read_from} into {str(settings.store)} (import {summary.import_id})")
    out.print(f"  events read: {summary.events_read}")
    out.print(
        f"  conversations stored: {summary.conversations_stored} ({summary.turns_stored} customer turns)"
        + (f", {summary.conversations_known} already stored" if summary.conversations_known else "")
    )
    out.print(f"  deferred (still open at the newest event, {summary.newest_event}): {summary.deferred}")
    out.print(f"  welcome messages (before the first customer message, in no turn): {summary.welcome_messages}")
    if summary.skipped_probes:
        out.print(f"  probe conversations skipped (`harness-probe:` senders, not customers): {summary.skipped_probes}")
    if summary.ticket_messages or summary.ticket_messages_unreadable:
        out.print(
            f"  messages to the human after a handoff, from the tickets: {summary.ticket_messages} "
            f"({summary.ticket_messages_unreadable} skipped: sent_at is not an ISO time)"
        )
    skipped = sum(summary.skipped.values())
    out.print(f"  skipped events: {skipped}")
    for reason, count in summary.skipped.items():
        out.print(f"    {reason}: {count}")
    for problem in summary.problems:
        out.print(f"    {problem}", highlight=False)
