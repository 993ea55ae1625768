"""The printed 95% intervals: exact checks of each method on hand-worked samples, and the faults of issue 11 item
7 (zero-width intervals at 100%, intervals that ignore clustering, latency tests that ignored the configured
number of bootstrap replicates). Coverage itself is measured by bench/interval_coverage.py."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from records_factory import turn
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from harness.gate.paired import compare
from harness.records import to_frame
from harness.scoring.metrics import ScoringOptions, UndefinedMetricWarning, build_core, compute_all, intervals
from harness.scoring.metrics.intervals import ClusterBootstrap

Z = stats.norm.ppf(0.975)


def kpis(records) -> dict:
    """KPI results by base name (`availability`, ...), whatever their version."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return {r.name.rsplit(".v", 1)[0]: r for r in compute_all(build_core(records, ScoringOptions()))}


def answered_everywhere(conversations: int = 12, turns: int = 3) -> list[dict]:
    """Every turn recognised and answered: availability and recognition are 100%."""
    return [
        turn(f"c{c:02d}", t, "check_balance", "check_balance", latency=100.0 + 7 * c + t)
        for c in range(conversations)
        for t in range(turns)
    ]


def test_an_all_success_turn_rate_has_an_interval_of_nonzero_width_reaching_down_to_what_the_sample_allows() -> None:
    results = kpis(to_frame(answered_everywhere()))
    for name in ("availability", "recognition_rate"):
        result = results[name]
        assert result.value == 1.0
        low, high = result.interval
        assert high == 1.0 and low < high, name
        # 12 conversations all-success happen with probability at most p^12 whatever the clustering: the bound
        # is the exact one over conversations, not over the 36 turns.
        assert low == pytest.approx(0.025 ** (1 / 12), abs=1e-9), name


def test_an_all_failure_turn_rate_has_an_interval_of_nonzero_width_from_zero() -> None:
    records = [turn(f"c{c}", t, "check_balance", status="timeout") for c in range(8) for t in range(2)]
    result = kpis(to_frame(records))["availability"]
    assert result.value == 0.0
    assert result.interval == pytest.approx((0.0, 1 - 0.025 ** (1 / 8)), abs=1e-9)


def clustered_failures(failing_in_one: bool) -> list[dict]:
    """40 conversations of 5 turns, 4 turns time out: all in one conversation, or one in each of four."""
    rows = []
    for c in range(40):
        for t in range(5):
            failed = (c == 0 and t < 4) if failing_in_one else (c < 4 and t == 0)
            rows.append(turn(f"c{c:02d}", t, "check_balance", "check_balance", status="timeout" if failed else "ok"))
    return rows


def test_a_turn_rate_near_one_with_clustered_failures_is_wider_than_the_naive_interval() -> None:
    concentrated = kpis(to_frame(clustered_failures(True)))["availability"]
    spread = kpis(to_frame(clustered_failures(False)))["availability"]
    naive = proportion_confint(196, 200, alpha=0.05, method="wilson")
    assert concentrated.value == spread.value == pytest.approx(196 / 200)
    low, high = concentrated.interval
    assert low < naive[0] and high < 1.0, (concentrated.interval, naive)
    # Four failures in one conversation carry less information than four in four conversations.
    assert high - low > spread.interval[1] - spread.interval[0]


def test_the_clustered_interval_by_hand() -> None:
    """6 conversations of 10 turns, three with 10 hits and three with 5: p = 45/60 = 0.75.
    Residuals y - p m = +-2.5, so v = 6/5 * 6 * 2.5^2 / 60^2 = 0.0125 against 0.75 * 0.25 / 60 = 0.003125 for
    independent turns: design effect 4, effective sample 15, times (t_59 / t_5)^2 for the 5 degrees of freedom.
    The rarer outcome's effective count (0.25 n_eff = 2.27) is above 2 and it is not rare (25%), so the interval
    is Wilson's on x = 0.75 n_eff of n_eff."""
    hits = np.array([10, 10, 10, 5, 5, 5], dtype=float)
    turns = np.full(6, 10.0)
    n_eff = 15 * (stats.t.ppf(0.975, 59) / stats.t.ppf(0.975, 5)) ** 2
    assert n_eff == pytest.approx(9.0890, abs=1e-3)
    expected = proportion_confint(0.75 * n_eff, n_eff, alpha=0.05, method="wilson")
    assert intervals.clustered_proportion(hits, turns) == pytest.approx(expected, abs=1e-12)


def test_without_clustering_evidence_the_design_effect_is_one() -> None:
    """Every conversation has the same share: the estimated design effect (0) is raised to 1 (Korn & Graubard),
    never an infinite effective sample and a zero-width interval."""
    hits, turns = np.array([3.0, 3.0, 3.0, 3.0]), np.array([4.0, 4.0, 4.0, 4.0])
    n_eff = 16 * (stats.t.ppf(0.975, 15) / stats.t.ppf(0.975, 3)) ** 2
    low, high = intervals.clustered_proportion(hits, turns)
    assert low < 0.75 < high
    # The rarer outcome's effective count 0.25 * 7.18 = 1.79 is at most 2: its side takes the Poisson bound.
    assert high == pytest.approx(1 - stats.gamma.ppf(0.05, 0.25 * n_eff) / n_eff, abs=1e-12)
    assert low == pytest.approx(proportion_confint(0.75 * n_eff, n_eff, alpha=0.05, method="wilson")[0], abs=1e-12)


def test_the_clustered_interval_is_symmetric_in_success_and_failure() -> None:
    rng = np.random.default_rng(3)
    turns = rng.integers(1, 7, size=(200, 25)).astype(float)
    hits = rng.binomial(turns.astype(int), rng.beta(9, 1, size=turns.shape)).astype(float)
    low, high = intervals.clustered_proportion_bounds(hits, turns)
    mirror_low, mirror_high = intervals.clustered_proportion_bounds(turns - hits, turns)
    assert np.allclose(low, 1 - mirror_high) and np.allclose(high, 1 - mirror_low)
    assert ((low < hits.sum(1) / turns.sum(1)) | (hits.sum(1) == 0)).all()
    assert (high > low).all()


def test_the_clustered_interval_ignores_conversations_without_eligible_turns_and_order() -> None:
    hits, turns = np.array([2.0, 0.0, 5.0, 1.0]), np.array([3.0, 0.0, 6.0, 1.0])
    assert intervals.clustered_proportion(hits, turns) == pytest.approx(
        intervals.clustered_proportion(hits[[3, 0, 2]], turns[[3, 0, 2]]), abs=1e-12
    )
    assert intervals.clustered_proportion(np.zeros(3), np.zeros(3)) is None


def test_the_clustered_interval_says_what_shapes_it_needs() -> None:
    with pytest.raises(ValueError, match=r"numerator shape \(3,\) differs from denominator shape \(2,\)"):
        intervals.clustered_proportion_bounds(np.ones(3), np.ones(2))


def test_failures_in_a_few_conversations_take_the_gamma_bound() -> None:
    """300 conversations of 4 turns, one failure in each of two: the linearised variance sees no clustering (two
    conversations cannot show it), so the far bound is also the gamma bound of the failures (Fay & Feuer 1997)
    with one more conversation of mean size 4 (Tiwari et al. 2006): wider than Wilson's on the effective size."""
    turns = np.full(300, 4.0)
    hits = turns.copy()
    hits[:2] = 3.0
    low, high = intervals.clustered_proportion(hits, turns)
    p = 1198 / 1200
    var_total = 300 / 299 * ((hits - p * turns) ** 2).sum()
    mean, variance = 2.0 + 4.0, var_total + 4.0**2
    gamma_bound = stats.gamma.ppf(0.975, mean**2 / variance, scale=variance / mean) / 1200
    assert low == pytest.approx(1 - gamma_bound, abs=1e-12)
    assert low < intervals.modified_wilson_bounds(np.array(p * 1200), np.array(1200.0))[0]
    assert low < p < high < 1.0


def test_conversation_proportions_use_wilson_modified_next_to_zero_and_one() -> None:
    # Away from the boundary: Wilson's score interval.
    assert intervals.modified_wilson(20, 50) == pytest.approx(
        proportion_confint(20, 50, alpha=0.05, method="wilson"), abs=1e-12
    )
    # One failure in 100: the upper bound is the one-sided Poisson bound (Brown, Cai & DasGupta 2001, 4.1.1),
    # 1 - (-ln 0.95) / 100, above Wilson's 0.9945 that covers p = 0.999 only 90.5% of the time.
    low, high = intervals.modified_wilson(99, 100)
    assert high == pytest.approx(1 + math.log(0.95) / 100, abs=1e-12)
    assert high > proportion_confint(99, 100, alpha=0.05, method="wilson")[1]
    # All successes: Wilson's lower bound n / (n + z^2), upper bound 1.
    assert intervals.modified_wilson(30, 30) == pytest.approx((30 / (30 + Z**2), 1.0), abs=1e-12)
    assert intervals.modified_wilson(0, 0) is None


def test_means_per_conversation_use_a_t_interval_over_conversations() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    half = stats.t.ppf(0.975, 5) * values.std(ddof=1) / math.sqrt(6)
    assert intervals.mean_interval(values) == pytest.approx((3.5 - half, 3.5 + half), abs=1e-12)
    # Every conversation the same: at most 1 - 0.025^(1/4) of them may differ, by one unit at least.
    u = 1 - 0.025 ** (1 / 4)
    assert intervals.mean_interval(np.full(4, 2.0)) == pytest.approx((2 - u, 2 + u), abs=1e-12)
    assert intervals.mean_interval(np.array([])) is None


def test_the_scorecard_names_each_interval_method() -> None:
    results = kpis(to_frame(clustered_failures(True)))
    assert results["self_service_completion"].interval_method == "wilson"
    assert results["availability"].interval_method == "wilson (design effect)"
    assert results["customer_turns_per_conversation"].interval_method == "t (clustered)"
    assert results["latency_p95"].interval_method == "test inversion"


def slow_conversations() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    turns = rng.integers(1, 7, size=60)
    clusters = np.repeat(np.arange(60), turns)
    values = np.exp(6.7 + np.repeat(rng.normal(0, 0.4, 60), turns) + rng.normal(0, 0.4, clusters.size))
    return values, clusters


def test_a_latency_interval_is_the_set_of_latencies_the_clustered_share_accepts() -> None:
    values, clusters = slow_conversations()
    ordered = np.sort(values)
    turns = np.bincount(clusters).astype(float)

    def share(c: float) -> tuple[float, float]:
        at_or_below = np.bincount(clusters, weights=(values <= c).astype(float), minlength=turns.size)
        return intervals.clustered_proportion(at_or_below, turns)

    for q, (low, high) in intervals.quantile_intervals(values, clusters, (0.5, 0.95)).items():
        estimate = np.quantile(values, q, method="inverted_cdf")
        assert low < estimate < high and low in values and high in values
        rank_low = int(np.searchsorted(ordered, low))
        assert share(low)[1] >= q and share(ordered[rank_low - 1])[1] < q
        # The upper end is one rank above the highest accepted latency, or the largest one when all are
        # accepted (p95 here: 60 conversations all at or below the largest latency have probability 0.95^60 =
        # 4.6% > 2.5%, so the data cannot bound p95 from above).
        rank_high = int(np.searchsorted(ordered, high))
        assert share(ordered[rank_high - 1])[0] <= q
        if rank_high < values.size - 1:
            assert q < share(high)[0]
        else:
            assert q == 0.95 and share(high)[0] == pytest.approx(0.025 ** (1 / 60)) and share(high)[0] <= q


def test_a_latency_interval_does_not_depend_on_record_order_and_widens_with_clustering() -> None:
    values, clusters = slow_conversations()
    order = np.random.default_rng(1).permutation(values.size)
    assert intervals.quantile_intervals(values, clusters, (0.5,)) == intervals.quantile_intervals(
        values[order], clusters[order], (0.5,)
    )
    one_turn_each = intervals.quantile_intervals(values, np.arange(values.size), (0.5,))[0.5]
    clustered = intervals.quantile_intervals(values, clusters, (0.5,))[0.5]
    assert clustered[1] - clustered[0] > one_turn_each[1] - one_turn_each[0]
    assert intervals.quantile_intervals(np.array([]), np.array([]), (0.5,)) == {0.5: None}


def test_latency_bootstrap_replicates_are_every_configured_one() -> None:
    values, clusters = slow_conversations()
    bootstrap = ClusterBootstrap(60, replicates=700, seed=2)
    assert bootstrap.quantile_replicates(values, clusters, (0.5, 0.95)).shape == (2, 700)


def test_the_paired_latency_test_uses_the_configured_number_of_replicates() -> None:
    rows = answered_everywhere(conversations=20)
    slower = [{**row, "latency_ms": row["latency_ms"] * 1.1} for row in rows]
    options = ScoringOptions(bootstrap_replicates=600, seed=4)
    current, baseline = build_core(to_frame(slower), options), build_core(to_frame(rows), options)
    for name in ("latency_p50.v1", "latency_p95.v1"):
        comparison = compare(name, current, baseline)
        assert comparison.resolution == pytest.approx(1 / 600), name


def test_the_fast_quantile_replicates_match_a_plain_search() -> None:
    values, clusters = slow_conversations()
    bootstrap = ClusterBootstrap(60, replicates=40, seed=9)
    got = bootstrap.quantile_replicates(values, clusters, (0.5, 0.95))
    order = np.argsort(values, kind="stable")
    for b, weights in enumerate(bootstrap.weights()):
        cumulative = np.cumsum(weights[clusters[order]])
        for i, q in enumerate((0.5, 0.95)):
            position = np.searchsorted(cumulative, q * cumulative[-1], side="left")
            assert got[i, b] == values[order][min(position, values.size - 1)]


def test_a_mean_kpi_keeps_the_t_interval_when_every_conversation_has_one_message() -> None:
    """Whether a KPI is a mean comes from its registration, not from the data it happens to see."""
    from records_factory import turn

    from harness.records import to_frame
    from harness.scoring.metrics import REGISTRY, ScoringOptions, build_core

    core = build_core(to_frame([turn(f"c{i}", 0, "greet", "greet", messages=1) for i in range(40)]), ScoringOptions())
    result = REGISTRY["messages_per_conversation.v1"](core)
    assert result.interval_method == "t (clustered)"
    assert result.value == 1.0 and result.interval is not None and result.interval[1] > 1.0


def test_a_latency_interval_is_never_of_zero_width() -> None:
    """One answered turn, or identical latencies, cannot pin a quantile down: no interval rather than a point."""
    from harness.scoring.metrics.intervals import quantile_intervals

    assert quantile_intervals(np.array([500.0]), np.array([0]), (0.5, 0.95)) == {0.5: None, 0.95: None}
    same = quantile_intervals(np.full(40, 200.0), np.repeat(np.arange(10), 4), (0.5,))
    assert same == {0.5: None}
