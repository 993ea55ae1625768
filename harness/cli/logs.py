"""`harness logs ...`: production conversations. The commands live in their own modules (`logs_import`,
`logs_kpis`, `logs_transfers`, `logs_compare`) and register on `logs_app` here."""

from __future__ import annotations

import typer

from harness.cli.common import app

logs_app: typer.Typer = typer.Typer(
    help="Production conversations: import a bot's logs, score the label-free KPIs, analyse transfers to humans."
)
app.add_typer(logs_app, name="logs")
