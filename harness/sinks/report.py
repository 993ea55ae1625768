"""report.html: a self-contained page for a run: scorecard, outcome matrix and confusion-matrix plots, per-intent
table, and every failed conversation with its transcript and the bot's decision per turn.

The page renders any record table a run can leave: every turn status, labelled or not, with nulls wherever the
bot's trace can be null (a failed turn has no intent, confidence, fallback or actions). It reads a `ScoredRun`:
which turns count as understood comes from its scoring core's turn facts, the same the KPIs read.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from harness.scoring.metrics import ScoringCore
from harness.scoring.metrics.diagnostics import intent_confusion, intent_report, unlabelled_conversations
from harness.scoring.scorecard import format_interval, format_value
from harness.scoring.scored_run import ScoredRun

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;
text-align:left;vertical-align:top;font-size:.9rem}th{background:#f3f3f3}.num{text-align:right}
.bad{background:#fde8e8}.ok{background:#eaf7ea}.muted{color:#777}details{margin:.5rem 0 1rem}
summary{cursor:pointer;font-weight:600}code{font-size:.85rem}
"""


def failed_conversations(core: ScoringCore) -> dict[int, list[str]]:
    """Conversation code -> why it failed: wrong outcome (labelled conversations only), failed checks, channel
    failures, labelled turns missed (not recognised, or out of scope and not rejected: the KPIs' misses)."""
    c = core.conversations
    t = core.turns
    reasons: dict[int, list[str]] = {}
    rows = zip(c["labelled"], c["expected_label"], c["actual_outcome"], c["checks_failed"], c["errored"], strict=True)
    for code, (labelled, expected, actual, checks_failed, errored) in enumerate(rows):
        if labelled and actual != expected:
            reasons.setdefault(code, []).append(f"outcome {actual}, expected {expected}")
        if checks_failed:
            reasons.setdefault(code, []).append("a check on the bot's reply failed")
        if errored:
            reasons.setdefault(code, []).append("the channel failed (error, timeout or empty reply)")
    missed = t[t["scored"].to_numpy(dtype=bool) & ~t["understood"].to_numpy(dtype=bool)]
    for code, count in missed.groupby("conv").size().items():
        reasons.setdefault(int(code), []).append(f"{count} turn(s) not recognised as labelled")
    return dict(sorted(reasons.items()))


def png(figure) -> str:  # type: ignore[no-untyped-def]
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def heatmap(matrix: pd.DataFrame, title: str, size: tuple[float, float]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if matrix.empty:
        return "<p class=muted>nothing to plot</p>"
    figure, axes = plt.subplots(figsize=size)
    values = matrix.to_numpy()
    axes.imshow(values, cmap="Blues")
    axes.set_xticks(range(len(matrix.columns)), [str(c) for c in matrix.columns], rotation=60, ha="right")
    axes.set_yticks(range(len(matrix.index)), [str(i) for i in matrix.index])
    axes.set_xlabel(matrix.columns.name or "predicted")
    axes.set_ylabel(matrix.index.name or "expected")
    axes.set_title(title)
    if values.size <= 400:
        for (i, j), v in np.ndenumerate(values):
            if v:
                axes.text(
                    j,
                    i,
                    str(v),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if v > values.max() / 2 else "black",
                )
    return png(figure)


def _table(frame: pd.DataFrame, float_format: str = "{:.2f}") -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in [frame.index.name or "", *frame.columns])
    body = []
    for index, *row in frame.itertuples(name=None):  # itertuples keeps each column's dtype (iterrows would not)
        cells = "".join(
            f"<td class=num>{'' if pd.isna(v) else float_format.format(v)}</td>"
            if isinstance(v, float)
            else f"<td class=num>{v}</td>"
            if isinstance(v, (int, np.integer))
            else f"<td>{html.escape(str(v))}</td>"
            for v in row
        )
        body.append(f"<tr><th>{html.escape(str(index))}</th>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _missing(value: object) -> bool:
    """True for None and pandas' or numpy's missing values (a scalar from a record cell)."""
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def _text(value: object) -> str:
    """A record cell as escaped HTML text; empty when null."""
    return "" if _missing(value) else html.escape(str(value))


def _true(value: object) -> bool:
    """A nullable boolean cell: null reads as False (never pandas' ambiguous NA)."""
    return not _missing(value) and bool(value)


def _texts(value: object) -> list[str]:
    """A JSON-list cell (bot messages, actions, check failures) as strings: [] when null, JSON null or not a
    list; a cell that is not JSON is shown as it is."""
    if _missing(value) or not str(value).strip():
        return []
    try:
        decoded = json.loads(str(value))
    except ValueError:
        return [str(value)]
    return [str(v) for v in decoded] if isinstance(decoded, list) else []


def _decision(turn: dict[str, object]) -> str:
    if turn["status"] == "not_sent":
        return "<span class=muted>not sent</span>"
    parts = []
    if not _missing(turn["intent"]):
        confidence = turn["confidence"]
        score = "" if _missing(confidence) else f" {float(confidence):.2f}"  # type: ignore[arg-type]
        parts.append(f"<b>{_text(turn['intent'])}</b>{score}")
    if _true(turn["fallback"]):
        parts.append("fallback")
    if actions := _texts(turn["actions"]):
        parts.append("actions: " + html.escape(", ".join(actions)))
    if not _missing(turn["handoff_queue"]):
        rule = f" ({_text(turn['handoff_rule'])})" if not _missing(turn["handoff_rule"]) else ""
        parts.append(f"<b>handoff → {_text(turn['handoff_queue'])}</b>{rule}")
    if turn["status"] != "ok":
        parts.append(f"<b>{_text(turn['status'])}</b> {_text(turn['error'])}".rstrip())
    if failures := _texts(turn["check_failures"]):
        parts.append("checks failed: " + html.escape("; ".join(failures)))
    return "<br>".join(parts)


def transcript(turns: pd.DataFrame) -> str:
    """The turns of one conversation (rows of the scoring core's `turns`, in turn order) as an HTML table; red
    rows are the turns the KPIs count as missed (`scored` and not `understood`)."""
    rows = []
    for turn in turns.sort_values("turn_index").to_dict("records"):
        expected = turn["expected_intent"] if not _missing(turn["expected_intent"]) else "(free text)"
        missed = _true(turn["scored"]) and not _true(turn["understood"])
        bot = "<br>".join(html.escape(m) for m in _texts(turn["bot_messages"]))
        rows.append(
            f"<tr class={'bad' if missed else 'ok'}><td class=num>{turn['turn_index']}</td>"
            f"<td>{_text(turn['text'])}</td><td>{html.escape(str(expected))}</td>"
            f"<td>{_decision(turn)}</td><td>{bot}</td></tr>"
        )
    return (
        "<table><tr><th>#</th><th>customer</th><th>expected intent</th><th>bot's decision</th>"
        f"<th>bot's reply</th></tr>{''.join(rows)}</table>"
    )


def render(run: ScoredRun) -> str:
    """The report page of a scored run (one with turn records; ValueError for a scorecard alone)."""
    if run.core is None:
        raise ValueError(f"{run.source}: a run known by its scorecard alone has no turn records to report")
    core, scorecard = run.core, run.scorecard
    stamp = scorecard.stamp
    kpi_rows = "".join(
        f"<tr><td>{k.name}</td><td class=num>{format_value(k)}</td><td>{format_interval(k)}</td>"
        f"<td class=num>{k.n}</td><td>{k.interval_method or ''}</td></tr>"
        for k in scorecard.kpis
    )
    errors = scorecard.escalation_errors
    escalation_line = (
        f"Escalation errors: {len(errors['missed'])} missed, {len(errors['unnecessary'])} unnecessary, "
        f"{len(errors['wrong_queue'])} to the wrong queue."
        if errors
        else "The bot does not report handoffs: no outcome matrix, no escalation errors."
    )
    failed = failed_conversations(core)
    sections = []
    ids = core.conversations["conversation_id"]
    for code, reasons in failed.items():
        turns = core.turns[core.turns["conv"].to_numpy() == code]
        sections.append(
            f"<details><summary>{_text(ids.iloc[code])}: {html.escape('; '.join(reasons))}"
            f"</summary>{transcript(turns)}</details>"
        )
    unlabelled = unlabelled_conversations(core)
    unlabelled_note = (
        f"<p class=muted>{unlabelled} unlabelled conversation(s) (no expected outcome) are not in the matrix and "
        "count in no labelled KPI.</p>"
        if unlabelled
        else ""
    )
    confusion = intent_confusion(core)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Run {html.escape(str(stamp.get("run_id")))}</title>
<style>{STYLE}</style></head><body>
<h1>Bot evaluation run {html.escape(str(stamp.get("run_id")))}</h1>
<p>Eval sets {html.escape(str(stamp.get("eval_set_hash", ""))[:12])} (format v{stamp.get("eval_set_version")}),
bot model <code>{html.escape(str(stamp.get("bot_model")))}</code>, harness {html.escape(str(stamp.get("harness_version")))},
git {html.escape(str(stamp.get("git_sha"))[:12])}. KPI definitions: {html.escape(str(stamp.get("definitions", "kpis.md v1")))}.</p>
<h2>Scorecard</h2>
<table><tr><th>KPI</th><th>value</th><th>95% interval</th><th>n</th><th>interval method</th></tr>{kpi_rows}</table>
<p>{escalation_line}</p>
<h2>Outcome matrix</h2>{_table(scorecard.outcome_matrix)}{unlabelled_note}
{heatmap(scorecard.outcome_matrix, "Conversations: expected vs actual outcome", (6, 4))}
<h2>Intents</h2>{_table(intent_report(core))}
{heatmap(confusion, "Turns: expected intent vs what the bot acted on", (11, 9))}
<h2>Failed conversations ({len(failed)} of {core.n_conversations})</h2>
<p class=muted>Wrong outcome, failed checks, channel failures or misrecognised turns. Red rows are labelled turns the
KPIs count as missed: not recognised, or out of scope and not rejected (a failed turn is a miss).</p>
{"".join(sections)}
</body></html>"""


def write_report(run: ScoredRun, path: Path) -> None:
    """report.html of `run` at `path`."""
    path.write_text(render(run), encoding="utf-8")
