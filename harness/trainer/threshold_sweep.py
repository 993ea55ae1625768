"""Fallback-threshold sweep: how recognition and false acceptance of out-of-scope turns move with the confidence
the bot needs before acting alone, from a run's turn records (no bot needed).

Each record keeps the classifier's best intent and its confidence, also for turns that fell back. The turns and
what counts as recognised are the scoring core's (`harness.scoring.metrics.core.turn_facts`), with "no fallback"
replaced by "confidence at least t": at threshold t an in-scope turn the bot owned counts as recognised when the bot
answered, its best intent is the label and its confidence is at least t; an out-of-scope turn the bot owned is
falsely accepted when the bot answered with an in-scope intent (no handoff) at confidence at least t. A failed
turn (timeout, channel error, empty reply) is a miss at every threshold; silenced and unsent turns are not counted
(as in `recognition_rate.v2` and `oos_rejection.v2`). This is turn-level and first-order: a different threshold
would also change later turns of a conversation, which only a new replay measures. The recommendation is the
threshold with the highest recognition among those whose false acceptance stays within the target, and the
reason is printed with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.scoring.metrics.core import turn_facts

RASA_DEFAULT_FALLBACK_THRESHOLD = 0.3
"""FallbackClassifier's default `threshold` in Rasa 3.x (rasa.nlu.classifiers.fallback_classifier)."""

DEFAULT_THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.10, 0.951, 0.05))


@dataclass(frozen=True)
class Sweep:
    table: pd.DataFrame
    """One row per threshold: recognition, false_acceptance, in_scope_n, out_of_scope_n."""
    recommended: float | None
    reason: str


def sweep(
    records: pd.DataFrame, *, thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS, max_false_acceptance: float = 0.10
) -> Sweep:
    """Recognition and false acceptance at each threshold over a run's records (`ScoredRun.records`), and the
    recommended threshold (NaN where a rate has no turns: undefined, never 0)."""
    facts = turn_facts(records)
    confidence = records["confidence"].astype("float64").fillna(0.0).to_numpy()
    in_scope = (facts["bot_owned"] & facts["in_scope"]).to_numpy()
    out_of_scope = (facts["bot_owned"] & facts["out_of_scope"]).to_numpy()
    correct = in_scope & facts["matched"].to_numpy()
    oos_accepted_candidate = out_of_scope & facts["acts_in_scope"].to_numpy()
    rows = []
    for t in thresholds:
        confident = confidence >= t
        rows.append(
            {
                "threshold": t,
                "recognition": (correct & confident).sum() / in_scope.sum() if in_scope.any() else np.nan,
                "false_acceptance": (oos_accepted_candidate & confident).sum() / out_of_scope.sum()
                if out_of_scope.any()
                else np.nan,
            }
        )
    table = pd.DataFrame(rows).assign(in_scope_n=int(in_scope.sum()), out_of_scope_n=int(out_of_scope.sum()))
    allowed = table[table["false_acceptance"] <= max_false_acceptance]
    if allowed.empty or table["recognition"].isna().all():
        return Sweep(table, None, f"no threshold keeps false acceptance within {max_false_acceptance:.0%}")
    best_row = allowed.sort_values(["recognition", "threshold"], ascending=[False, True]).iloc[0]
    reason = (
        f"highest recognition ({best_row['recognition']:.1%} of {table['in_scope_n'].iloc[0]} in-scope turns) "
        f"among thresholds whose false acceptance of out-of-scope turns stays within {max_false_acceptance:.0%} "
        f"({best_row['false_acceptance']:.1%} of {table['out_of_scope_n'].iloc[0]})"
    )
    return Sweep(table, float(best_row["threshold"]), reason)


def configured_threshold(rasa_config: object) -> float | None:
    """The FallbackClassifier `threshold` of a parsed Rasa config.yml, or None when its pipeline has no
    FallbackClassifier. A FallbackClassifier without `threshold`, and an empty file or a missing or empty
    `pipeline:` (Rasa then fills in its default pipeline, which ends with a FallbackClassifier), give Rasa 3.x's
    default, 0.3 (rasa.nlu.classifiers.fallback_classifier, rasa.engine.recipes.default_recipe). With two
    FallbackClassifiers, the first one's. Raises ValueError when the document is not a mapping, the pipeline is
    not a list, or the threshold is not a number in [0, 1]."""
    if rasa_config is None:
        return RASA_DEFAULT_FALLBACK_THRESHOLD
    if not isinstance(rasa_config, dict):
        raise ValueError(f"expected a mapping of settings, got a {type(rasa_config).__name__}")
    pipeline = rasa_config.get("pipeline")
    if not pipeline:
        return RASA_DEFAULT_FALLBACK_THRESHOLD
    if not isinstance(pipeline, list):
        raise ValueError("`pipeline:` must be a list of components")
    for component in pipeline:
        if isinstance(component, dict) and component.get("name") == "FallbackClassifier":
            value = component.get("threshold", RASA_DEFAULT_FALLBACK_THRESHOLD)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ValueError(f"FallbackClassifier threshold must be a number in [0, 1], got {value!r}")
            return float(value)
    return None


def plot(result: Sweep, path: str, configured: float | None = None) -> None:
    """Recognition and false acceptance against the threshold, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    axes.plot(result.table["threshold"], result.table["recognition"], marker="o", label="recognition (in scope)")
    axes.plot(
        result.table["threshold"], result.table["false_acceptance"], marker="o", label="false acceptance (out of scope)"
    )
    if result.recommended is not None:
        axes.axvline(result.recommended, linestyle="--", color="green", label=f"recommended {result.recommended:g}")
    if configured is not None:
        axes.axvline(configured, linestyle=":", color="grey", label=f"configured {configured:g}")
    axes.set_xlabel("fallback threshold (confidence needed to act alone)")
    axes.set_ylabel("share of turns")
    axes.set_ylim(0, 1)
    axes.legend(loc="center left")
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
