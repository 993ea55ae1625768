"""95% intervals of every KPI: one established method per kind of KPI, each measured by a coverage benchmark.

- A proportion of conversations (each counts 0 or 1): Wilson's score interval, with Brown, Cai & DasGupta's
  exact Poisson bound next to 0 and 1 (`modified_wilson`).
- A proportion of turns (recognition, out-of-scope rejection, availability): turns of one conversation are not
  independent, so `clustered_proportion` takes Wilson's interval on the effective sample size (Korn & Graubard
  1998), a gamma bound when the rarer outcome sits in a handful of conversations, and an exact bound over
  conversations for all-success and all-failure samples.
- A mean per conversation (messages, customer turns): Student's t over conversations (`mean_interval`).
- A latency quantile over turns: the clustered interval of the share of turns at or below a latency, inverted
  over latencies (Francisco & Fuller 1991, refining Woodruff 1952; `quantile_intervals`).

`bench/interval_coverage.py` measures, with these functions, how often each interval covers the true value for
p from 0.5 to 0.999 (and all-failure samples), 30 to 5,000 conversations and two strengths of clustering; the
results, and why the cells outside 93-97% cannot be inside, are in `bench/results/interval_coverage.md`.

A bootstrap over whole conversations remains for the gate's paired tests (`ClusterBootstrap`): each replicate
draws as many conversations as there are, with replacement, and stores how often each was drawn. One such count
matrix serves every metric. The counts depend only on (conversations, replicates, seed): results are
deterministic and independent of record order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import special
from statsmodels.stats.proportion import proportion_confint

Interval = tuple[float, float]
CHUNK = 64
FEW_CONVERSATIONS = 5
"""When at most this many conversations carry the rarer outcome of a turn proportion, and that outcome is rare
(RARE_SHARE), the linearised variance rests on too few conversations: the far bound is widened to the gamma bound
(`clustered_proportion_bounds`, step 4). Of 5, 10 and 20, tried in simulations over the grid of
bench/interval_coverage.py, 5 over-covered the fewest cells."""
RARE_SHARE = 0.1
"""The share of turns up to which an outcome counts as rare (its count close to Poisson), for FEW_CONVERSATIONS."""


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


def modified_wilson_bounds(
    successes: np.ndarray, trials: np.ndarray, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson's score interval with Brown, Cai & DasGupta's modification near 0 and 1 (2001, "Interval estimation
    for a binomial proportion", Statistical Science 16(2):101-133, section 4.1.1): where x, the count of the rarer
    outcome, is between 0 and x* (2 when n <= 50, else 3), the bound on the boundary's side is the one-sided
    Poisson bound gamma.ppf(alpha, x) / n (their 1/2 chi2_{2x, alpha} / n), which removes Wilson's coverage dips
    next to 0 and 1 (plain Wilson covers 90.5% at 100 trials and p = 0.999). Counts may be fractional (effective
    counts). Shapes: `successes` and `trials` broadcast together; returns (low, high) of that shape."""
    x = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    alpha = 1 - confidence
    z = special.ndtri(1 - alpha / 2)
    # Wilson's closed form, as statsmodels' proportion_confint(method="wilson") (the tests check they agree);
    # written out because that function's per-call cost dominates the latency intervals' search.
    with np.errstate(divide="ignore", invalid="ignore"):
        centre = (x + z**2 / 2) / (n + z**2)
        half = z / (n + z**2) * np.sqrt(np.maximum(x * (n - x) / n, 0) + z**2 / 4)
        low, high = centre - half, centre + half
        limit = np.where(n <= 50, 2, 3)
        for count, is_failures in ((x, False), (n - x, True)):
            near = (count > 0) & (count <= limit)
            bound = special.gammaincinv(np.where(near, count, 1.0), alpha) / n
            if is_failures:
                high = np.where(near, 1 - bound, high)
            else:
                low = np.where(near, bound, low)
    # Exactly 0 and 1 at the boundary (the closed form rounds to 1 - 1e-16).
    return np.where(x <= 0, 0.0, np.clip(low, 0, 1)), np.where(x >= n, 1.0, np.clip(high, 0, 1))


def modified_wilson(successes: int, trials: int, confidence: float = 0.95) -> Interval | None:
    """`modified_wilson_bounds` of one count; None when there are no trials."""
    if trials == 0:
        return None
    low, high = modified_wilson_bounds(np.asarray(successes), np.asarray(trials), confidence)
    return float(low), float(high)


def clustered_proportion_bounds(
    numerator: np.ndarray, denominator: np.ndarray, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Interval of p = sum(numerator) / sum(denominator) when the units counted (turns) come in clusters
    (conversations): `numerator[..., i]` hits among `denominator[..., i]` eligible turns of conversation i.

    Shapes: both (..., conversations), any leading axes (the coverage benchmark passes thousands of samples at
    once); returns (low, high), each of shape (...), within [0, 1]; NaN where no turn is eligible. Conversations
    with no eligible turn are ignored. Raises ValueError when the shapes differ.

    Method (Korn & Graubard 1998, "Confidence intervals for proportions with small expected number of positive
    counts estimated from survey data", Survey Methodology 24(2):193-201; as R's `survey::svyciprop(method=
    "beta")`, with the Wilson score interval in place of Clopper-Pearson, which Dean & Pagano 2015, J. Survey
    Statistics and Methodology 3(4):484-503, and Franco et al. 2019, JSSAM 7(3):334-364, found better calibrated):
    1. the variance of the ratio estimator p by linearisation over the n conversations (Taylor; Cochran 1977,
       6.11): v = n/(n-1) * sum_i (y_i - p m_i)^2 / M^2, with M = sum_i m_i turns;
    2. the design effect deff = v / (p(1-p)/M), at least 1 (Korn & Graubard truncate it there), and the effective
       sample size n_eff = M / deff, times (t_{M-1} / t_{n-1})^2 for the n-1 degrees of freedom of v;
    3. Wilson's interval for p on n_eff trials, with Brown, Cai & DasGupta's Poisson bound next to 0 and 1
       (`modified_wilson_bounds`, on the effective counts);
    4. when at most FEW_CONVERSATIONS conversations carry the rarer outcome and it is rare (a share of at most
       RARE_SHARE, where its count is close to Poisson), the far bound is also at least as wide as the gamma
       interval of Fay & Feuer (1997, Statistics in Medicine 16:791-801) for the rarer total, with the linearised
       variance and one more conversation of mean size (Tiwari, Clegg & Zou 2006, Statistical Methods in Medical
       Research 15:547-569): with so few such conversations v is unreliable (Franco et al. 2019);
    5. all success (or all failure): deff cannot be estimated; each conversation is then all-success, which under
       any clustering has probability at most p (the chance of its first turn), so all n have at most p^n, and
       the exact one-sided bound over conversations, (alpha/2)^(1/n), keeps its level whatever the clustering.
    """
    y = np.asarray(numerator, dtype=np.float64)
    m = np.asarray(denominator, dtype=np.float64)
    if y.shape != m.shape:
        raise ValueError(
            f"numerator shape {y.shape} differs from denominator shape {m.shape}: give one per conversation"
        )
    total = m.sum(axis=-1)
    hits = y.sum(axis=-1)
    clusters = (m > 0).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = hits / total
        squares = ((y - p[..., None] * m) ** 2).sum(axis=-1)
    return clustered_proportion_from_sums(
        hits, total, clusters, squares, (y < m).sum(axis=-1), (y > 0).sum(axis=-1), confidence
    )


def clustered_effective_size(
    hits: npt.ArrayLike, total: npt.ArrayLike, clusters: npt.ArrayLike, squares: npt.ArrayLike, confidence: float = 0.95
) -> np.ndarray:
    """The effective sample size of a clustered proportion (`clustered_proportion_bounds`, steps 1-2): M / deff,
    times (t_{M-1} / t_{n-1})^2; the number of conversations at the boundary (p 0 or 1) or with fewer than 2
    conversations. Inputs are the sufficient statistics of `clustered_proportion_from_sums`, broadcast together."""
    alpha = 1 - confidence
    hits, total = np.asarray(hits, dtype=np.float64), np.asarray(total, dtype=np.float64)
    clusters, squares = np.asarray(clusters, dtype=np.float64), np.asarray(squares, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = hits / total
        var_total = clusters / (clusters - 1) * squares
        n_eff = np.minimum(p * (1 - p) * total**2 / var_total, total)
        n_eff = n_eff * (special.stdtrit(total - 1, 1 - alpha / 2) / special.stdtrit(clusters - 1, 1 - alpha / 2)) ** 2
    boundary = (hits <= 0) | (hits >= total)
    return np.asarray(np.where(boundary | (clusters < 2), clusters, n_eff))


def clustered_proportion_from_sums(
    hits: npt.ArrayLike,
    total: npt.ArrayLike,
    clusters: npt.ArrayLike,
    squares: npt.ArrayLike,
    miss_clusters: npt.ArrayLike,
    hit_clusters: npt.ArrayLike,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """`clustered_proportion_bounds` from sufficient statistics, for engines that aggregate where the data lives
    and return only sums: `hits` = sum_i y_i, `total` = M = sum_i m_i, `clusters` = conversations with m_i > 0,
    `squares` = sum_i (y_i - p m_i)^2 with p = hits / total (= sum y^2 - 2p sum ym + p^2 sum m^2),
    `miss_clusters` = conversations with y_i < m_i, `hit_clusters` = conversations with y_i > 0. All broadcast
    together; returns (low, high) of that shape, NaN where total is 0. Same method and result as
    `clustered_proportion_bounds`, which calls it."""
    hits = np.asarray(hits, dtype=np.float64)
    total = np.asarray(total, dtype=np.float64)
    clusters = np.asarray(clusters, dtype=np.float64)
    squares = np.asarray(squares, dtype=np.float64)
    alpha = 1 - confidence
    with np.errstate(divide="ignore", invalid="ignore"):
        p = hits / total
        var_total = clusters / (clusters - 1) * squares
    n_eff = clustered_effective_size(hits, total, clusters, squares, confidence)
    boundary = (hits <= 0) | (hits >= total)
    low, high = modified_wilson_bounds(p * n_eff, n_eff, confidence)
    rare_is_failure = p > 0.5
    rare_conversations = np.where(rare_is_failure, miss_clusters, hit_clusters)
    few = ~boundary & (clusters >= 2) & (rare_conversations <= FEW_CONVERSATIONS)
    few &= np.minimum(p, 1 - p) <= RARE_SHARE
    with np.errstate(divide="ignore", invalid="ignore"):
        rare_total = np.where(rare_is_failure, total - hits, hits)
        far = _gamma_far_bound(rare_total, var_total, total / clusters, alpha) / total
    low = np.where(few & rare_is_failure, np.minimum(low, 1 - far), low)
    high = np.where(few & ~rare_is_failure, np.maximum(high, far), high)
    exact = (alpha / 2) ** (1 / np.maximum(clusters, 1))
    low = np.where(hits >= total, exact, low)
    high = np.where(hits <= 0, 1 - exact, high)
    empty = total <= 0
    return np.where(empty, np.nan, np.clip(low, 0, 1)), np.where(empty, np.nan, np.clip(high, 0, 1))


def _gamma_far_bound(rare_total: np.ndarray, var_total: np.ndarray, weight: np.ndarray, alpha: float) -> np.ndarray:
    """Upper 1 - alpha/2 bound of a total of rare events arriving in clusters: the gamma distribution with mean
    `rare_total + weight` and variance `var_total + weight^2` (Fay & Feuer 1997; `weight` is one more cluster of
    mean size, Tiwari et al. 2006). Same shapes in and out."""
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = rare_total + weight
        variance = np.maximum(var_total, 0) + weight**2
        return np.asarray(special.gammaincinv(mean**2 / variance, 1 - alpha / 2) * variance / mean)


def clustered_proportion(numerator: np.ndarray, denominator: np.ndarray, confidence: float = 0.95) -> Interval | None:
    """`clustered_proportion_bounds` of one sample (1-D arrays, one entry per conversation); None when no turn is
    eligible."""
    low, high = clustered_proportion_bounds(numerator, denominator, confidence)
    if not np.isfinite(low):
        return None
    return float(low), float(high)


def mean_bounds(values: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Interval of the mean of a non-negative count per conversation (bot messages, customer turns).

    Shapes: `values` (..., conversations), any leading axes; returns (low, high) of shape (...), low at least 0;
    NaN where there is no conversation.

    Method: Student's t interval over conversations, mean +- t_{n-1} s / sqrt(n) (conversations are the
    independent units, so the turns inside one are clustered by construction). Where the n values are all equal
    (or n is 1) the spread cannot be estimated and a zero width would be wrong: the share of conversations that
    differ is then at most u = 1 - (alpha/2)^(1/n) (exact binomial bound for 0 of n), and a count that differs
    differs by at least 1, so the interval is mean +- u, the narrowest that data allow (a floor, not a guarantee).
    """
    x = np.asarray(values, dtype=np.float64)
    alpha = 1 - confidence
    n = x.shape[-1]
    if n == 0:
        nan = np.full(x.shape[:-1], np.nan)
        return nan, nan
    mean = x.mean(axis=-1)
    spread = x.std(axis=-1, ddof=1) if n > 1 else np.zeros(x.shape[:-1])
    return _mean_bounds(mean, spread, n, alpha)


def _mean_bounds(mean: np.ndarray, spread: np.ndarray, n: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    half = special.stdtrit(max(n - 1, 1), 1 - alpha / 2) * spread / np.sqrt(n)
    constant = ~(spread > 0)
    half = np.where(constant, 1 - (alpha / 2) ** (1 / n), half)
    return np.maximum(mean - half, 0.0), mean + half


def mean_interval_from_sums(total: int, squares: int, n: int, confidence: float = 0.95) -> Interval | None:
    """`mean_interval` from sufficient statistics of integer counts per conversation: `total` = sum x,
    `squares` = sum x^2, `n` conversations (engines return these sums, not the values). The spread is computed
    in exact integer arithmetic (s^2 = (n sum x^2 - (sum x)^2) / (n (n - 1))), so equal values give exactly 0.
    None when n is 0."""
    if n == 0:
        return None
    total, squares, n = int(total), int(squares), int(n)
    spread = math.sqrt((n * squares - total * total) / (n * (n - 1))) if n > 1 else 0.0
    low, high = _mean_bounds(np.asarray(total / n), np.asarray(spread), n, 1 - confidence)
    return float(low), float(high)


def mean_interval(values: np.ndarray, confidence: float = 0.95) -> Interval | None:
    """`mean_bounds` of one sample (a 1-D array, one value per conversation); None when it is empty."""
    if len(values) == 0:
        return None
    low, high = mean_bounds(values, confidence)
    return float(low), float(high)


@dataclass
class _RankSearch:
    """A k-ary search over ranks lo..hi (inclusive) for the boundary of a monotone predicate: with `first`, the
    lowest rank where it holds (false ... false true ... true, true at hi); else the highest rank where it holds
    (true ... true false ... false, true at lo). Done when lo == hi, the answer."""

    lo: int
    hi: int
    q: float
    first: bool

    def points(self, count: int) -> np.ndarray:
        """Up to `count` ranks spread over lo..hi, both ends included, ascending."""
        return np.unique(np.linspace(self.lo, self.hi, min(count, self.hi - self.lo + 1)).round().astype(np.int64))

    def narrow(self, points: np.ndarray, holds: np.ndarray) -> None:
        """Keep the part of lo..hi between the two judged `points` where the predicate changes."""
        if self.first:
            hits = np.flatnonzero(holds)
            i = int(hits[0]) if hits.size else points.size - 1
            self.lo, self.hi = (int(points[i - 1]) + 1 if i > 0 else int(points[0])), int(points[i])
        else:
            keep = np.flatnonzero(holds)
            if not keep.size:
                self.hi = self.lo
                return
            i = int(keep[-1])
            self.lo = int(points[i])
            self.hi = int(points[i + 1]) - 1 if i + 1 < points.size else int(points[i])


def quantile_intervals(
    values: np.ndarray, clusters: np.ndarray, qs: tuple[float, ...], confidence: float = 0.95
) -> dict[float, Interval | None]:
    """Intervals of the q-quantiles (numpy's `inverted_cdf`, as the KPI's value) of `values` (one per turn, for
    example latency in ms) whose turns come in conversations (`clusters`: one conversation code per value, any
    integers). Returns {q: (low, high)} in the unit of `values`; None for every q when `values` is empty.

    Method: test inversion (Francisco & Fuller 1991, "Quantile estimation with a complex survey design", Annals
    of Statistics 19(1):454-469), which refines Woodruff's interval (1952, JASA 47:635-646, the default of R's
    `survey::svyquantile`): a latency c is in the interval when q lies within the clustered interval
    (`clustered_proportion_bounds`) of the share of turns at or below c, judged with the clustering and the
    number of conversations seen at c itself, not only at the estimate (Woodruff's interval, judged at the
    estimate alone, covered 90% for p95 with 30 conversations under strong clustering). The ends are order
    statistics, found by a k-ary search over ranks (the share's bounds grow with c): the lowest accepted one,
    and the one above the highest accepted (the quantile may lie anywhere below it; the maximum when every one
    is accepted). No interval made of observed latencies reaches a quantile above the largest one. Where the two
    ends meet (a single answered turn, or every latency the same), the q's interval is None: a zero-width
    interval on a finite sample would be wrong.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return {q: None for q in qs}
    _, codes = np.unique(np.asarray(clusters), return_inverse=True)
    order = np.argsort(x, kind="stable")
    ordered = x[order]
    ordered_codes = codes[order]
    turns = np.bincount(codes).astype(np.float64)
    # ends[r]: how many turns are at or below the r-th smallest value (0-based r; ties counted together).
    ends = np.searchsorted(ordered, ordered, side="right")
    # Several ranks are judged per round, in one vectorised call (a k-ary search), as many as memory allows.
    per_round = int(np.clip(2**14 // max(turns.size, 1), 4, 64))

    def share_bounds(ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = np.empty((ranks.size, turns.size))
        counts = np.zeros(turns.size)
        done = 0
        for row, rank in enumerate(ranks):
            counts += np.bincount(ordered_codes[done : ends[rank]], minlength=turns.size)
            done = ends[rank]
            rows[row] = counts
        return clustered_proportion_bounds(rows, np.broadcast_to(turns, rows.shape), confidence)

    # Per quantile, two searches over ranks: the lowest rank whose share's upper bound reaches q, and the highest
    # whose share's lower bound stays at or below q (the interval ends one rank above it).
    estimates = [max(int(np.ceil(q * x.size)) - 1, 0) for q in qs]
    lowest = [_RankSearch(0, e, q, first=True) for q, e in zip(qs, estimates, strict=True)]
    highest = [_RankSearch(e, x.size - 1, q, first=False) for q, e in zip(qs, estimates, strict=True)]
    while active := [search for search in (*lowest, *highest) if search.lo < search.hi]:
        points = [search.points(per_round) for search in active]
        ranks = np.unique(np.concatenate(points))
        low, high = share_bounds(ranks)
        for search, at in zip(active, points, strict=True):
            where = np.searchsorted(ranks, at)
            search.narrow(at, high[where] >= search.q if search.first else low[where] <= search.q)
    result: dict[float, Interval | None] = {}
    for q, low_search, high_search in zip(qs, lowest, highest, strict=True):
        high_rank = min(high_search.lo + 1, x.size - 1)
        low_value, high_value = float(ordered[low_search.lo]), float(ordered[high_rank])
        # Ends that meet (one answered turn, or identical latencies) would claim certainty no finite sample
        # gives: no interval is reported then (None), rather than one of zero width.
        result[q] = (low_value, high_value) if high_value > low_value else None
    return result


@dataclass
class ClusterBootstrap:
    """Bootstrap replicates over conversations (clusters), shared by the gate's paired tests of one scoring.

    The printed intervals no longer use it (`bench/interval_coverage.py` shows its percentile intervals cover
    too little near 100%); `ratio` and `quantiles` stay for comparison."""

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
        """Percentile interval of sum(numerator) / sum(denominator), both given per conversation."""
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
        self, values: np.ndarray, clusters: np.ndarray, qs: tuple[float, ...], replicates: int | None = None
    ) -> np.ndarray:
        """len(qs) x replicates: the q-quantiles (`inverted_cdf`) of `values` (one per turn, `clusters` its
        conversation code) in each replicate; every configured replicate unless `replicates` asks for fewer."""
        count = self.replicates if replicates is None else min(replicates, self.replicates)
        out = np.full((len(qs), count), np.nan)
        if values.size == 0 or count == 0:
            return out
        order = np.argsort(values, kind="stable")
        sorted_values = values[order].astype(np.float64)
        sorted_clusters = clusters[order]
        targets = np.asarray(qs, dtype=np.float64)
        rows = max(1, 2**22 // values.size)
        weights = self.weights()
        for start in range(0, count, rows):
            block = weights[start : min(start + rows, count)]
            cumulative = np.cumsum(block[:, sorted_clusters], axis=1, dtype=np.int64)
            total = cumulative[:, -1]
            for i, q in enumerate(targets):
                # side="left" search of q * total in each row: how many cumulative counts fall below it.
                positions = (cumulative < (q * total)[:, None]).sum(axis=1)
                picked = sorted_values[np.minimum(positions, sorted_values.size - 1)]
                out[i, start : start + block.shape[0]] = np.where(total > 0, picked, np.nan)
        return out

    def quantiles(
        self, values: np.ndarray, clusters: np.ndarray, qs: tuple[float, ...], replicates: int | None = None
    ) -> dict[float, Interval | None]:
        """Percentile intervals of several quantiles of `values` (see quantile_replicates)."""
        if values.size == 0:
            return {q: None for q in qs}
        out = self.quantile_replicates(values, clusters, qs, replicates)
        return {q: self._percentiles(out[i]) for i, q in enumerate(qs)}
