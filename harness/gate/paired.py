"""Paired comparison of one KPI between two runs over the same conversations.

Conversation outcomes (a proportion of all conversations) use the exact McNemar test on the discordant pairs;
every other KPI uses a paired bootstrap: the same resampled conversations score both runs, and the p-value is the
share of replicates in which the current run is not worse than the baseline. Both are one-sided: they ask how
likely a drop this large is if the bot did not get worse.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

from harness.errors import InputError
from harness.scoring.metrics import REGISTRY, ScoringCore

MCNEMAR = "McNemar (exact)"
PAIRED_BOOTSTRAP = "paired bootstrap"


@dataclass(frozen=True)
class PairedComparison:
    method: str
    p_value: float
    """One-sided: probability of a worsening at least this large if the bot did not get worse."""
    detail: str = ""
    resolution: float = 0.0
    """The smallest p-value the method can report (1/replicates for the bootstrap)."""

    def p_text(self) -> str:
        return f"p<{self.resolution:.1g}" if self.p_value == 0 and self.resolution else f"p={self.p_value:.2g}"


def same_conversations(current: ScoringCore, baseline: ScoringCore) -> None:
    a = current.conversations["conversation_id"].to_numpy()
    b = baseline.conversations["conversation_id"].to_numpy()
    if a.shape != b.shape or not (a == b).all():
        raise InputError(
            "the run and its baseline cover different conversations",
            [
                f"{len(set(a) - set(b))} conversation(s) only in the run, {len(set(b) - set(a))} only in the baseline; "
                "compare runs of the same eval sets"
            ],
        )


def compare(name: str, current: ScoringCore, baseline: ScoringCore) -> PairedComparison:
    """Paired test of KPI `name` between two cores built with the same scoring options."""
    same_conversations(current, baseline)
    spec = REGISTRY[name]
    sign = 1.0 if spec.higher_is_better else -1.0
    if spec.parts is None:
        q = {"latency_p50.v1": 0.50, "latency_p95.v1": 0.95}.get(name)
        if q is None:
            raise ValueError(f"no paired comparison for {name}")
        return _bootstrap_p(sign * latency_difference_replicates(current, baseline, q))
    now, before = spec.parts(current), spec.parts(baseline)
    if (
        now.conversation_proportion
        and before.conversation_proportion
        and (now.denominator == 1).all()
        and (before.denominator == 1).all()
    ):
        got_worse = int(((before.numerator == 1) & (now.numerator == 0)).sum())
        got_better = int(((before.numerator == 0) & (now.numerator == 1)).sum())
        if spec.higher_is_better is False:
            got_worse, got_better = got_better, got_worse
        discordant = got_worse + got_better
        p = 1.0 if discordant == 0 else float(binomtest(got_worse, discordant, 0.5, alternative="greater").pvalue)
        return PairedComparison(MCNEMAR, p, f"{got_worse} conversation(s) got worse, {got_better} better")
    difference = current.bootstrap.ratio_replicates(
        now.numerator, now.denominator
    ) - baseline.bootstrap.ratio_replicates(before.numerator, before.denominator)
    return _bootstrap_p(sign * difference)


def latency_difference_replicates(current: ScoringCore, baseline: ScoringCore, q: float) -> np.ndarray:
    """The q-quantile latency of `current` minus `baseline`'s in each paired bootstrap replicate (ms; NaN where a
    replicate has no answered turn)."""
    return _latency_replicates(current, q) - _latency_replicates(baseline, q)


def _latency_replicates(core: ScoringCore, q: float) -> np.ndarray:
    t = core.turns
    ok = (t["status"] == "ok").to_numpy(dtype=bool) & t["latency_ms"].notna().to_numpy()
    values = t["latency_ms"].to_numpy(dtype=np.float64, na_value=np.nan)[ok]
    return core.bootstrap.quantile_replicates(values, t["conv"].to_numpy()[ok], (q,))[0]


def _bootstrap_p(improvement: np.ndarray) -> PairedComparison:
    """p = share of replicates where the current run is not worse (improvement >= 0)."""
    finite = improvement[np.isfinite(improvement)]
    if finite.size == 0:
        return PairedComparison(PAIRED_BOOTSTRAP, 1.0, "no replicate had data in both runs")
    return PairedComparison(
        PAIRED_BOOTSTRAP, float((finite >= 0).mean()), f"{finite.size} replicates", resolution=1 / finite.size
    )
