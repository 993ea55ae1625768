"""The scorecard: the current version of every KPI with its value, support, interval and definition version,
plus the outcome breakdowns. Built from metric results (pure); written as scorecard.json, read back from it (a
baseline given as scorecard.json alone) and printed as a table. A run's scorecard is `ScoredRun.scorecard`.

Superseded KPI versions (see `harness.scoring.metrics.registry`) are not on it; they stay computable by name.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.scoring.metrics import REGISTRY, MetricResult, ScoringCore, compute_all
from harness.scoring.metrics.diagnostics import escalation_errors, outcome_matrix, unlabelled_conversations

SCORECARD_VERSION = 1
KPI_DEFINITIONS = "kpis.md v1 with the clarifications of 2026-11-30"


@dataclass(frozen=True)
class Scorecard:
    kpis: list[MetricResult]
    outcome_matrix: pd.DataFrame
    escalation_errors: dict[str, list[str]]
    stamp: dict[str, Any]
    """What was measured: run id, eval-set hash and version, bot model, harness version, git SHA, config."""
    unlabelled_conversations: int = 0
    """Conversations without an expected outcome: in no outcome-matrix row and no labelled KPI."""

    def kpi(self, name: str) -> MetricResult:
        """The KPI `name` (versioned); KeyError naming what the scorecard holds (current versions only)."""
        found = next((k for k in self.kpis if k.name == name), None)
        if found is None:
            held = ", ".join(k.name for k in self.kpis)
            raise KeyError(f"{name} is not on this scorecard (it shows current KPI versions: {held})")
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "scorecard_version": SCORECARD_VERSION,
            "definitions": KPI_DEFINITIONS,
            **self.stamp,
            "kpis": {
                k.name: {
                    "value": k.value,
                    "n": k.n,
                    "interval": list(k.interval) if k.interval else None,
                    "interval_method": k.interval_method,
                    "unit": k.unit,
                    "definition_version": int(k.name.rsplit(".v", 1)[1]),
                    "higher_is_better": k.higher_is_better,
                    "warning": k.warning,
                }
                for k in self.kpis
            },
            "outcome_matrix": {
                "rows": list(self.outcome_matrix.index),
                "columns": list(self.outcome_matrix.columns),
                "counts": self.outcome_matrix.to_numpy().tolist(),
                "unlabelled_conversations": self.unlabelled_conversations,
            },
            "escalation_errors": {
                key: {"count": len(ids), "conversations": ids} for key, ids in self.escalation_errors.items()
            },
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, card: dict[str, Any]) -> Scorecard:
        """The scorecard a scorecard.json holds (`to_dict` read back; a KPI's `superseded_by` from today's
        registry). Keys a hand-written or older file lacks read as absent: no interval, unit `ratio`, an empty
        outcome matrix."""
        kpis = [
            MetricResult(
                name,
                kpi.get("value"),
                int(kpi.get("n") or 0),
                (float(kpi["interval"][0]), float(kpi["interval"][1])) if kpi.get("interval") else None,
                kpi.get("interval_method"),
                kpi.get("higher_is_better"),
                kpi.get("unit") or "ratio",
                kpi.get("warning"),
                REGISTRY[name].superseded_by if name in REGISTRY else None,
            )
            for name, kpi in (card.get("kpis") or {}).items()
        ]
        matrix = card.get("outcome_matrix") or {}
        errors = card.get("escalation_errors") or {}
        return cls(
            kpis=kpis,
            outcome_matrix=pd.DataFrame(
                matrix.get("counts") or [], index=matrix.get("rows") or [], columns=matrix.get("columns") or []
            ),
            escalation_errors={key: list(value.get("conversations") or []) for key, value in errors.items()},
            stamp={k: v for k, v in card.items() if k not in STORED_APART},
            unlabelled_conversations=int(matrix.get("unlabelled_conversations") or 0),
        )


STORED_APART = ("kpis", "outcome_matrix", "escalation_errors")
"""The keys of scorecard.json that are not the run's stamp."""


def build_scorecard(core: ScoringCore, stamp: dict[str, Any], kpis: list[MetricResult] | None = None) -> Scorecard:
    """The scorecard of `core`: `kpis` (by default the current version of every KPI, computed here), the outcome
    matrix, the escalation errors and `stamp`. A bot that does not observe handoffs has neither an outcome matrix
    nor escalation errors (both empty): whether a conversation was handed off cannot be known."""
    errors = escalation_errors(core)
    sees_handoffs = core.observed is None or "handoff" in core.observed
    return Scorecard(
        kpis=compute_all(core) if kpis is None else kpis,
        outcome_matrix=outcome_matrix(core) if sees_handoffs else pd.DataFrame(),
        escalation_errors={k: v for k, v in asdict(errors).items()} if sees_handoffs else {},
        stamp=stamp,
        unlabelled_conversations=unlabelled_conversations(core),
    )


def format_value(result: MetricResult) -> str:
    if result.value is None:
        return "undefined"
    if result.unit == "ratio":
        return f"{result.value:.1%}"
    if result.unit == "conversations":
        return f"{result.value:.0f}"
    return f"{result.value:.2f}" if result.unit in ("messages", "turns") else f"{result.value:.0f} {result.unit}"


def format_interval(result: MetricResult) -> str:
    if result.interval is None:
        return ""
    low, high = result.interval
    if result.unit == "ratio":
        return f"[{low:.1%}, {high:.1%}]"
    return f"[{low:.2f}, {high:.2f}]" if result.unit in ("messages", "turns") else f"[{low:.0f}, {high:.0f}]"


def print_scorecard(scorecard: Scorecard, console: Console) -> None:
    table = Table(title=f"Scorecard ({KPI_DEFINITIONS})", title_justify="left")
    for column in ("KPI", "value", "95% interval", "n", "method"):
        table.add_column(column, justify="right" if column in ("value", "n") else "left", no_wrap=True)
    for k in scorecard.kpis:
        table.add_row(k.name, format_value(k), format_interval(k), str(k.n), k.interval_method or "")
    console.print(table)
    errors = scorecard.escalation_errors
    if not errors:
        console.print("the bot does not report handoffs: no outcome matrix, no escalation errors")
    else:
        console.print(
            f"escalation errors: {len(errors['missed'])} missed, {len(errors['unnecessary'])} unnecessary, "
            f"{len(errors['wrong_queue'])} to the wrong queue"
            + (
                f" ({scorecard.unlabelled_conversations} unlabelled conversation(s) not judged)"
                if scorecard.unlabelled_conversations
                else ""
            )
        )
    for k in scorecard.kpis:
        if k.warning:
            console.print(f"[yellow]warning:[/] {escape(k.warning)}", markup=True)
