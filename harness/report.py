"""report.html: a self-contained page for a run: scorecard, outcome matrix and confusion-matrix plots, per-intent
table, and every failed conversation with its transcript and the bot's decision per turn."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from harness.metrics import ScoringCore
from harness.metrics.core import predicted_label
from harness.metrics.diagnostics import intent_confusion, intent_report
from harness.scorecard import Scorecard, format_interval, format_value

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;
text-align:left;vertical-align:top;font-size:.9rem}th{background:#f3f3f3}.num{text-align:right}
.bad{background:#fde8e8}.ok{background:#eaf7ea}.muted{color:#777}details{margin:.5rem 0 1rem}
summary{cursor:pointer;font-weight:600}code{font-size:.85rem}
"""


def failed_conversations(core: ScoringCore) -> dict[int, list[str]]:
    """Conversation code -> why it failed: wrong outcome, failed checks, channel failures, misrecognised turns."""
    c = core.conversations
    t = core.turns
    reasons: dict[int, list[str]] = {}
    for code, row in c.iterrows():
        if row["actual_outcome"] != row["expected_label"]:
            reasons.setdefault(code, []).append(f"outcome {row['actual_outcome']}, expected {row['expected_label']}")
        if not row["checks_ok"]:
            reasons.setdefault(code, []).append("a check on the bot's reply failed")
        if row["errored"]:
            reasons.setdefault(code, []).append("the channel failed (error, timeout or empty reply)")
    labelled = t[t["sent"] & t["expected_intent"].notna()]
    wrong = labelled[labelled["expected_intent"].astype(str) != predicted_label(labelled).astype(str)]
    for code, count in wrong.groupby("conv").size().items():
        reasons.setdefault(int(code), []).append(f"{count} turn(s) not recognised as labelled")
    return dict(sorted(reasons.items()))


def _png(figure) -> str:  # type: ignore[no-untyped-def]
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
    return _png(figure)


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


def _decision(turn: pd.Series) -> str:
    if turn["status"] == "not_sent":
        return "<span class=muted>not sent</span>"
    parts = []
    if pd.notna(turn["intent"]):
        parts.append(f"<b>{html.escape(str(turn['intent']))}</b> {turn['confidence']:.2f}")
    if turn["fallback"] is True:
        parts.append("fallback")
    if pd.notna(turn["actions"]) and turn["actions"]:
        parts.append("actions: " + html.escape(", ".join(json.loads(turn["actions"]))))
    if pd.notna(turn["handoff_queue"]):
        parts.append(
            f"<b>handoff → {html.escape(str(turn['handoff_queue']))}</b> ({html.escape(str(turn['handoff_rule']))})"
        )
    if turn["status"] != "ok":
        parts.append(f"<b>{html.escape(str(turn['status']))}</b> {html.escape(str(turn['error'] or ''))}")
    if pd.notna(turn["check_failures"]) and json.loads(turn["check_failures"]):
        parts.append("checks failed: " + html.escape("; ".join(json.loads(turn["check_failures"]))))
    return "<br>".join(parts)


def transcript(turns: pd.DataFrame) -> str:
    rows = []
    for _, turn in turns.iterrows():
        expected = turn["expected_intent"] if pd.notna(turn["expected_intent"]) else "(free text)"
        recognised = (
            pd.isna(turn["expected_intent"])
            or turn["status"] == "not_sent"
            or (turn["intent"] == turn["expected_intent"] and turn["fallback"] is not True and turn["status"] == "ok")
        )
        bot = "<br>".join(html.escape(m) for m in json.loads(turn["bot_messages"] or "[]"))
        rows.append(
            f"<tr class={'ok' if recognised else 'bad'}><td class=num>{turn['turn_index']}</td>"
            f"<td>{html.escape(str(turn['text']))}</td><td>{html.escape(str(expected))}</td>"
            f"<td>{_decision(turn)}</td><td>{bot}</td></tr>"
        )
    return (
        "<table><tr><th>#</th><th>customer</th><th>expected intent</th><th>bot's decision</th>"
        f"<th>bot's reply</th></tr>{''.join(rows)}</table>"
    )


def render(core: ScoringCore, scorecard: Scorecard) -> str:
    stamp = scorecard.stamp
    kpi_rows = "".join(
        f"<tr><td>{k.name}</td><td class=num>{format_value(k)}</td><td>{format_interval(k)}</td>"
        f"<td class=num>{k.n}</td><td>{k.interval_method or ''}</td></tr>"
        for k in scorecard.kpis
    )
    errors = scorecard.escalation_errors
    failed = failed_conversations(core)
    sections = []
    for code, reasons in failed.items():
        conversation = core.conversations.loc[code]
        turns = core.turns[core.turns["conv"] == code]
        sections.append(
            f"<details><summary>{html.escape(conversation['conversation_id'])}: {html.escape('; '.join(reasons))}"
            f"</summary>{transcript(turns)}</details>"
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
<p>Escalation errors: {len(errors["missed"])} missed, {len(errors["unnecessary"])} unnecessary,
{len(errors["wrong_queue"])} to the wrong queue.</p>
<h2>Outcome matrix</h2>{_table(scorecard.outcome_matrix)}
{heatmap(scorecard.outcome_matrix, "Conversations: expected vs actual outcome", (6, 4))}
<h2>Intents</h2>{_table(intent_report(core))}
{heatmap(confusion, "Turns: expected intent vs what the bot acted on", (11, 9))}
<h2>Failed conversations ({len(failed)} of {core.n_conversations})</h2>
<p class=muted>Wrong outcome, failed checks, channel failures or misrecognised turns. Red rows are turns the bot did
not recognise as labelled.</p>
{"".join(sections)}
</body></html>"""


def write_report(core: ScoringCore, scorecard: Scorecard, path: Path) -> None:
    path.write_text(render(core, scorecard), encoding="utf-8")
