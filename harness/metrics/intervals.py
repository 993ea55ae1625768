"""95% intervals: Wilson for conversation-level proportions, a bootstrap over whole conversations for the rest.

The bootstrap resamples conversations, never single turns (turns of one conversation are not independent): each
replicate draws as many conversations as there are, with replacement, and stores how often each was drawn. One
such count matrix serves every metric, so scoring a million turns stays fast. The counts depend only on
(conversations, replicates, seed): results are deterministic and independent of record order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from statsmodels.stats.proportion import proportion_confint

Interval = tuple[float, float]
CHUNK = 64


def wilson(successes: int, trials: int, confidence: float = 0.95) -> Interval | None:
    """Wilson score interval of a proportion; None when there are no trials."""
    if trials == 0:
        return None
    low, high = proportion_confint(successes, trials, alpha=1 - confidence, method="wilson")
    return float(low), float(high)


@dataclass(frozen=True)
class Proportion:
    """`hits` out of `n`, with its value (None when n is 0) and 95% Wilson interval."""

    hits: int
    n: int

    @property
    def value(self) -> float | None:
        return self.hits / self.n if self.n else None

    @property
    def interval(self) -> Interval | None:
        return wilson(self.hits, self.n)


@dataclass
class ClusterBootstrap:
    """Bootstrap replicates over conversations (clusters), shared by all metrics of one scoring."""

    n_clusters: int
    replicates: int = 1000
    seed: int = 0
    confidence: float = 0.95
    _weights: np.ndarray | None = field(default=None, init=False, repr=False)

    def weights(self) -> np.ndarray:
        """replicates x clusters: how often each conversation was drawn in each replicate (uint8, made once)."""
        if self._weights is None:
            rng = np.random.default_rng(self.seed)
            w = np.empty((self.replicates, self.n_clusters), dtype=np.uint8)
            dtype = np.int32 if self.n_clusters < 2**31 else np.int64
            for b in range(self.replicates):
                draws = rng.integers(0, self.n_clusters, size=self.n_clusters, dtype=dtype)
                w[b] = np.minimum(np.bincount(draws, minlength=self.n_clusters), 255)
            self._weights = w
        return self._weights

    def _percentiles(self, replicate_values: np.ndarray) -> Interval | None:
        finite = replicate_values[np.isfinite(replicate_values)]
        if finite.size == 0:
            return None
        tail = (1 - self.confidence) / 2 * 100
        low, high = np.percentile(finite, [tail, 100 - tail])
        return float(low), float(high)

    def ratio(self, numerator: np.ndarray, denominator: np.ndarray) -> Interval | None:
        """Interval of sum(numerator) / sum(denominator), both given per conversation."""
        if self.n_clusters == 0 or denominator.sum() == 0:
            return None
        return self._percentiles(self.ratio_replicates(numerator, denominator))

    def ratio_replicates(self, numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
        """sum(numerator)/sum(denominator) in every replicate (NaN where a replicate's denominator is 0)."""
        num = numerator.astype(np.float64)
        den = denominator.astype(np.float64)
        values = np.empty(self.replicates)
        weights = self.weights()
        for start in range(0, self.replicates, CHUNK):
            block = weights[start : start + CHUNK].astype(np.float32)
            with np.errstate(invalid="ignore", divide="ignore"):
                values[start : start + CHUNK] = (block @ num) / (block @ den)
        return values

    def quantile_replicates(
        self, values: np.ndarray, clusters: np.ndarray, qs: tuple[float, ...], replicates: int = 200
    ) -> np.ndarray:
        """len(qs) x replicates: the q-quantiles of `values` (one per turn, `clusters` its conversation code) in
        the first `replicates` replicates (quantiles need a pass over every turn per replicate)."""
        weights = self.weights()[: min(replicates, self.replicates)]
        out = np.full((len(qs), len(weights)), np.nan)
        if values.size == 0:
            return out
        order = np.argsort(values, kind="stable")
        sorted_values = values[order].astype(np.float64)
        sorted_clusters = clusters[order]
        for b, w in enumerate(weights):
            cumulative = np.cumsum(w[sorted_clusters], dtype=np.int64)
            total = cumulative[-1]
            if total:
                positions = np.searchsorted(cumulative, np.asarray(qs) * total, side="left")
                out[:, b] = sorted_values[np.minimum(positions, sorted_values.size - 1)]
        return out

    def quantiles(
        self, values: np.ndarray, clusters: np.ndarray, qs: tuple[float, ...], replicates: int = 200
    ) -> dict[float, Interval | None]:
        """Intervals of several quantiles of `values` (see quantile_replicates)."""
        if values.size == 0:
            return {q: None for q in qs}
        out = self.quantile_replicates(values, clusters, qs, replicates)
        return {q: self._percentiles(out[i]) for i, q in enumerate(qs)}
