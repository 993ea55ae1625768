"""What a contact-centre team sees of a production scorecard: the console tables (window overall, weekly trend of
the headline KPIs, the labelled KPIs left undefined) and report.html (overall table, weekly and daily trend per
KPI with intervals, handoff rate per queue and per rule, the undefined KPIs and why, the definitions with their
versions, the window and store).

Values are formatted exactly as in the replay report (`harness.scoring.scorecard.format_value` and
`format_interval`); a production KPI's unit, direction and description come from its registration
(`harness.scoring.production.definitions.PRODUCTION_KPIS`). The page is self-contained (plots
inlined as PNG, as `harness.sinks.report` does) and reads a finished `ProductionScorecard` only.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from harness.scoring.metrics import MetricResult
from harness.scoring.production.definitions import PRODUCTION_KPIS, ProductionKpiSpec
from harness.scoring.production.scorecard import ProductionKpi, ProductionScorecard
from harness.scoring.scorecard import format_interval, format_value
from harness.sinks.report import STYLE, png

SCORECARD_FILE = "scorecard.json"
REPORT_FILE = "report.html"

HEADLINE = ("conversation_count", "containment", "coverage", "abandonment", "repeat_contact")
"""The KPIs of the console's weekly trend table (unversioned names; whichever version the scorecard holds)."""


def base_name(name: str) -> str:
    """`coverage.v1` -> `coverage`."""
    return name.rsplit(".v", 1)[0] if ".v" in name else name


def version_of(name: str) -> str:
    """`coverage.v1` -> `v1` (empty when the name carries no version)."""
    return "v" + name.rsplit(".v", 1)[1] if ".v" in name else ""


def spec_of(name: str) -> ProductionKpiSpec | None:
    """The registered production KPI `name`, else the registered version of the same KPI; None when unknown."""
    if name in PRODUCTION_KPIS:
        return PRODUCTION_KPIS[name]
    return next((s for s in PRODUCTION_KPIS.values() if base_name(s.name) == base_name(name)), None)


def unit_of(name: str) -> str | None:
    """The unit of a production KPI in the replay scorecard's vocabulary (`ratio` for a share, `conversations`,
    `messages`, `turns`, `ms`), None when the KPI is not registered."""
    spec = spec_of(name)
    if spec is None:
        return None
    return "ratio" if spec.unit == "share" else spec.unit


def label(kpi: ProductionKpi) -> str:
    """The KPI's name with its breakdown: `handoff_rate.v1 queue=billing`."""
    return f"{kpi.name} {kpi.breakdown}" if kpi.breakdown else kpi.name


def as_result(kpi: ProductionKpi) -> MetricResult:
    """The KPI as a replay `MetricResult`, so it prints with the replay scorecard's formatting."""
    interval = (kpi.low, kpi.high) if kpi.low is not None and kpi.high is not None else None
    return MetricResult(
        name=kpi.name,
        value=kpi.value,
        n=kpi.n,
        interval=interval,
        interval_method=kpi.method,
        higher_is_better=spec.higher_is_better if (spec := spec_of(kpi.name)) else None,
        unit=unit_of(kpi.name) or "",
    )


def value_text(kpi: ProductionKpi) -> str:
    """The value as the replay report writes it (`71.4%`, `12`, `3.50`, `830 ms`); `undefined` when None."""
    if kpi.value is not None and unit_of(kpi.name) is None:
        return f"{kpi.value:.4g}"
    return format_value(as_result(kpi))


def interval_text(kpi: ProductionKpi) -> str:
    """The 95% interval as the replay report writes it (`[65.0%, 77.1%]`); empty without one."""
    if kpi.low is not None and kpi.high is not None and unit_of(kpi.name) is None:
        return f"[{kpi.low:.4g}, {kpi.high:.4g}]"
    return format_interval(as_result(kpi))


def _in_order(kpis: Iterable[ProductionKpi]) -> list[ProductionKpi]:
    """Headline KPIs first, then the rest by name; breakdowns after their KPI."""
    order = {name: i for i, name in enumerate((*HEADLINE, *map(base_name, PRODUCTION_KPIS)))}
    return sorted(kpis, key=lambda k: (order.get(base_name(k.name), len(order)), k.name, k.breakdown or ""))


def _names(scorecard: ProductionScorecard) -> list[str]:
    """Every KPI name on the scorecard, in display order."""
    return list(dict.fromkeys(k.name for k in _in_order(scorecard.kpis)))


def undefined_kpis(scorecard: ProductionScorecard) -> dict[str, str]:
    """Every KPI the window leaves undefined, name -> reason: the labelled KPIs production logs cannot give, then
    the label-free ones without a value over the window (no conversations, no identified customer, ...)."""
    found = dict(scorecard.undefined)
    for kpi in _in_order(scorecard.overall()):
        if kpi.value is None:
            found.setdefault(label(kpi), kpi.undefined_reason or "no value over the window")
    return found


def window_text(window: str) -> str:
    """The window as asked, for people: `..` reads `all stored days`."""
    return "all stored days" if window.strip() in ("", "..") else window


def weeks(scorecard: ProductionScorecard) -> list[date]:
    """The Mondays of the weeks the scorecard has values for, in order."""
    return sorted({k.period_start for k in scorecard.kpis if k.period == "week" and k.period_start is not None})


def print_production_scorecard(scorecard: ProductionScorecard, console: Console) -> None:
    """The scorecard on the console: the window overall (KPI, value, 95% interval, n, method), the headline
    KPIs per week, and the undefined KPIs with their reason."""
    days = f"{scorecard.first_day}..{scorecard.last_day}" if scorecard.first_day else "no conversations"
    # A heading line, not a table title: a title wraps at the table's width.
    console.print(
        f"Production scorecard: window {window_text(scorecard.window)} ({days}), engine {scorecard.engine}, "
        f"store {scorecard.store}",
        markup=False,
        highlight=False,
    )
    table = Table()
    for column in ("KPI", "value", "95% interval", "n", "method"):
        table.add_column(column, justify="right" if column in ("value", "n") else "left", no_wrap=True)
    for kpi in _in_order(scorecard.overall()):
        table.add_row(label(kpi), value_text(kpi), interval_text(kpi), str(kpi.n), kpi.method or "")
    console.print(table)
    mondays = weeks(scorecard)
    with_weeks = {k.name for k in scorecard.kpis if k.period == "week" and k.breakdown is None}
    headline = [n for n in _names(scorecard) if base_name(n) in HEADLINE and n in with_weeks]
    if mondays and headline:
        trend = Table(title="Per week (Monday, UTC; intervals in report.html)", title_justify="left")
        trend.add_column("week", no_wrap=True)
        for name in headline:
            trend.add_column(name, justify="right", no_wrap=True)
        cells = {(k.name, k.period_start): k for k in scorecard.kpis if k.period == "week" and k.breakdown is None}
        for monday in mondays:
            row = [monday.isoformat()]
            for name in headline:
                cell = cells.get((name, monday))
                row.append(value_text(cell) if cell else "")
            trend.add_row(*row)
        console.print(trend)
    undefined = undefined_kpis(scorecard)
    if undefined:
        missing = Table(title="Undefined", title_justify="left")
        missing.add_column("KPI")
        missing.add_column("value", justify="right", no_wrap=True)
        missing.add_column("reason")
        by_reason: dict[str, list[str]] = {}
        for name, reason in undefined.items():
            by_reason.setdefault(reason, []).append(name)
        for reason, names in by_reason.items():
            missing.add_row(", ".join(names), "undefined", reason)
        console.print(missing)


@dataclass(frozen=True)
class ReportContext:
    """What the report states beside the scorecard."""

    sources: Sequence[str] = ()
    """The import sources the store holds (`harness logs import --name`)."""
    settings: dict[str, str] = field(default_factory=dict)
    """Settings that shape the values (inactivity timeout, repeat-contact window, customer key), name -> text."""
    generated_at: datetime | None = None
    """When the report was made (UTC)."""


def _e(value: object) -> str:
    return html.escape(str(value))


def _rows(kpis: Iterable[ProductionKpi], first: str = "label") -> str:
    rows = []
    for kpi in kpis:
        head = kpi.period_start.isoformat() if first == "period" and kpi.period_start else label(kpi)
        reason = f" <span class=muted>({_e(kpi.undefined_reason)})</span>" if kpi.undefined_reason else ""
        rows.append(
            f"<tr><td>{_e(head)}</td><td class=num>{_e(value_text(kpi))}{reason}</td>"
            f"<td>{_e(interval_text(kpi))}</td><td class=num>{kpi.n}</td><td>{_e(kpi.method or '')}</td></tr>"
        )
    return "".join(rows)


def _kpi_table(kpis: Iterable[ProductionKpi], first: str = "KPI") -> str:
    key = "period" if first in ("day", "week (Monday)") else "label"
    return (
        f"<table><tr><th>{_e(first)}</th><th>value</th><th>95% interval</th><th>n</th><th>interval method</th></tr>"
        f"{_rows(kpis, key)}</table>"
    )


def trend_plot(name: str, daily: Sequence[ProductionKpi], weekly: Sequence[ProductionKpi]) -> str:
    """A PNG (inline HTML) of one KPI over time: days as a line with its 95% band, weeks as points with their
    interval, plotted at the week's Monday."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    def at(kpis: Sequence[ProductionKpi]) -> Any:
        return mdates.date2num([k.period_start for k in kpis])

    scale = 100.0 if unit_of(name) == "ratio" else 1.0
    shown = [(series, [k for k in series if k.value is not None]) for series in (daily, weekly)]
    if not any(points for _, points in shown):
        return "<p class=muted>nothing to plot</p>"
    figure, axes = plt.subplots(figsize=(8, 2.8))
    days = shown[0][1]
    if days:
        axes.plot(at(days), [float(k.value or 0) * scale for k in days], color="#4a7ab5", linewidth=1, label="day")
        banded = [k for k in days if k.low is not None and k.high is not None]
        if banded:
            axes.fill_between(
                at(banded),
                [float(k.low or 0) * scale for k in banded],
                [float(k.high or 0) * scale for k in banded],
                color="#4a7ab5",
                alpha=0.15,
                linewidth=0,
            )
    wk = shown[1][1]
    if wk:
        values = [float(k.value or 0) * scale for k in wk]
        low = [v - float(k.low) * scale if k.low is not None else 0.0 for v, k in zip(values, wk, strict=True)]
        high = [float(k.high) * scale - v if k.high is not None else 0.0 for v, k in zip(values, wk, strict=True)]
        axes.errorbar(at(wk), values, yerr=[low, high], fmt="o", color="#c0392b", capsize=3, label="week")
    unit = unit_of(name)
    axes.set_ylabel("%" if unit == "ratio" else unit or "")
    axes.set_title(name)
    axes.legend(loc="best", fontsize=8)
    axes.xaxis_date()
    figure.autofmt_xdate()
    return png(figure)


def _breakdowns(scorecard: ProductionScorecard, kind: str) -> str:
    """Handoff rate per `queue` or `rule`: the window's value with its interval, then one column per week."""
    overall = [k for k in _in_order(scorecard.overall()) if k.breakdown and k.breakdown.startswith(kind + "=")]
    if not overall:
        return f"<p class=muted>no handoff by {kind} in the window</p>"
    mondays = weeks(scorecard)
    weekly: dict[tuple[str, str | None, date | None], ProductionKpi] = {
        (k.name, k.breakdown, k.period_start): k
        for k in scorecard.kpis
        if k.period == "week" and k.breakdown and k.breakdown.startswith(kind + "=")
    }
    head = "".join(f"<th>{m.isoformat()}</th>" for m in mondays)
    rows = []
    for kpi in overall:
        cells = "".join(
            f"<td class=num>{_e(value_text(found))}</td>"
            if (found := weekly.get((kpi.name, kpi.breakdown, m)))
            else "<td></td>"
            for m in mondays
        )
        rows.append(
            f"<tr><td>{_e(kpi.name)}</td><td>{_e((kpi.breakdown or '').split('=', 1)[1])}</td>"
            f"<td class=num>{_e(value_text(kpi))}</td><td>{_e(interval_text(kpi))}</td><td class=num>{kpi.n}</td>"
            f"<td>{_e(kpi.method or '')}</td>{cells}</tr>"
        )
    return (
        f"<table><tr><th>KPI</th><th>{kind}</th><th>window</th><th>95% interval</th><th>n</th><th>method</th>{head}"
        f"</tr>{''.join(rows)}</table>"
        + ("<p class=muted>Week columns: the week's value (Monday shown).</p>" if mondays else "")
    )


def _direction(name: str) -> str:
    spec = spec_of(name)
    if spec is None or spec.higher_is_better is None:
        return ""
    return "higher is better" if spec.higher_is_better else "lower is better"


def render_production(scorecard: ProductionScorecard, context: ReportContext | None = None) -> str:
    """report.html of a production scorecard (see the module docstring)."""
    from harness.scoring.scorecard import KPI_DEFINITIONS

    context = context or ReportContext()
    days = f"{scorecard.first_day} to {scorecard.last_day}" if scorecard.first_day else "no conversations in the window"
    overall = [k for k in _in_order(scorecard.overall()) if k.breakdown is None]
    trends = []
    for name in _names(scorecard):
        daily = scorecard.series(name, "day")
        weekly = scorecard.series(name, "week")
        if not daily and not weekly:
            continue
        trends.append(
            f"<h3>{_e(name)}</h3>{trend_plot(name, daily, weekly)}"
            f"{_kpi_table(weekly, 'week (Monday)') if weekly else ''}"
            + (
                f"<details><summary>per day ({len(daily)})</summary>{_kpi_table(daily, 'day')}</details>"
                if daily
                else ""
            )
        )
    undefined = undefined_kpis(scorecard)
    undefined_rows = "".join(
        f"<tr><td>{_e(name)}</td><td>undefined</td><td>{_e(reason)}</td></tr>" for name, reason in undefined.items()
    )
    definition_rows = "".join(
        f"<tr><td>{_e(base_name(name))}</td><td>{_e(version_of(name))}</td><td>{_e(_direction(name))}</td>"
        f"<td>{_e(spec.description if (spec := spec_of(name)) and spec.name == name else 'see kpis.md')}</td></tr>"
        for name in _names(scorecard)
    )
    settings = "".join(f"<li>{_e(k)}: {_e(v)}</li>" for k, v in context.settings.items())
    made = context.generated_at.strftime("%Y-%m-%d %H:%M UTC") if context.generated_at else ""
    sources = ", ".join(context.sources) or "(none recorded)"
    title = f"Production scorecard {_e(scorecard.window)}"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<style>{STYLE}</style></head><body>
<h1>Production scorecard</h1>
<p>Window <code>{_e(window_text(scorecard.window))}</code>: conversations that started {_e(days)} (UTC). Store
<code>{_e(scorecard.store)}</code>, sources {_e(sources)}, engine {_e(scorecard.engine)}.
{f"Made {_e(made)}." if made else ""} Label-free KPIs of real conversations; KPI definitions {_e(KPI_DEFINITIONS)}
(the version is part of each name).</p>
{f"<ul>{settings}</ul>" if settings else ""}
<h2>Window overall</h2>{_kpi_table(overall)}
<h2>Handoff rate per queue</h2>{_breakdowns(scorecard, "queue")}
<h2>Handoff rate per rule</h2>{_breakdowns(scorecard, "rule")}
<h2>Trend per KPI</h2>
<p class=muted>Weeks are ISO weeks (Monday to Sunday, UTC) by conversation start; red points are weeks with their 95%
interval, the blue line and band are days.</p>
{"".join(trends) or "<p class=muted>no per-day or per-week values</p>"}
<h2>Undefined KPIs</h2>
{f"<table><tr><th>KPI</th><th>value</th><th>why</th></tr>{undefined_rows}</table>" if undefined_rows else "<p>none</p>"}
<h2>Definitions</h2>
<table><tr><th>KPI</th><th>version</th><th>direction</th><th>what it counts</th></tr>{definition_rows}</table>
<p class=muted>Window {_e(scorecard.window)}, store {_e(scorecard.store)}.</p>
</body></html>"""


def write_production_outputs(
    scorecard: ProductionScorecard, folder: Path, context: ReportContext | None = None
) -> list[Path]:
    """scorecard.json (`ProductionScorecard.to_json`) and report.html in `folder` (created); returns both paths.
    Each file is written under a temporary name and renamed, so a reader never sees half a file."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (
        (SCORECARD_FILE, json.dumps(scorecard.to_json(), indent=2) + "\n"),
        (REPORT_FILE, render_production(scorecard, context)),
    ):
        target = folder / name
        staged = folder / f".{name}.tmp"
        staged.write_text(text, encoding="utf-8")
        staged.replace(target)
        written.append(target)
    return written
