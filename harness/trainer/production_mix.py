"""Lab versus production: does the eval sets' intent mix still look like real traffic, which intents production
exercises that the eval sets do not (and the reverse), and what the replay's recognition would be on production's
mix of intents (post-stratification).

- Production mix: the share of answered customer turns (status `ok`) per intent the bot predicted
  (`harness.scoring.metrics.core.predicted_label`: a fallback counts as `nlu_fallback`). Production logs carry no
  labels, so the bot's prediction is all there is: a misrecognised turn counts under the wrong intent.
- Eval mix: the share of the replay run's bot-owned turns (sent, not silenced) per labelled `expected_intent`
  (free-text turns, labelled null, are left out).
- Drift: Pearson's chi-square test of homogeneity on the 2 x K table (production, eval) x intent, without
  continuity correction (scipy `chi2_contingency(correction=False)`), over the intents of either mix except
  `nlu_fallback` (production only: no label says what a fallback turn was). Cochran's rule needs every expected
  count to be at least 5: intents whose expected count falls below it in either row are pooled into `(pooled)`,
  and while the pool itself falls below it the smallest remaining intent joins it (`pool_sparse`). Turns of one
  conversation are not independent, so the p-value is optimistic; with production's volume any difference is
  "significant": read it beside the total variation distance (half the sum of absolute share differences, over the
  unpooled intents), which is the size of the drift.
- Re-weighted recognition: per in-scope intent k the replay's recognition r_k (hits / eligible turns, the
  `recognised` and `bot_owned & in_scope` turn facts of the scoring core, as recognition_rate.v2), weighted by
  production's share w_k of turns predicted as k among the intents the replay measures: R = sum_k w_k r_k.
  Interval: the delta method (linearisation over the replay's conversations, which a conversation's several
  intents share), z_i = sum_k w_k (y_ik - r_k m_ik) / M_k, v = n/(n-1) sum_i z_i^2, then Wilson's interval with
  the exact Poisson bound next to 0 and 1 on the effective sample size R(1-R)/v, as the unweighted KPI's interval
  does (Korn & Graubard; `harness.scoring.metrics.intervals.clustered_proportion_bounds`). Chosen over a bootstrap
  because it is the unweighted interval's own method (so the two figures are comparable: with production weights
  equal to the replay's own mix the value is recognition_rate.v2's), is deterministic, and the project's coverage
  benchmark found percentile bootstraps cover too little near 100%. The production weights are taken as fixed:
  production's turns far outnumber the replay's, so their sampling error is negligible beside the replay's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness.scoring.metrics.core import FALLBACK, OUT_OF_SCOPE, ScoringCore, predicted_label
from harness.scoring.metrics.intervals import clustered_proportion, modified_wilson_bounds

POOLED = "(pooled)"
MIN_EXPECTED = 5.0
"""Cochran's rule: every expected count of a chi-square test at least 5."""
COLUMNS = ["conversation_id", "intent", "fallback", "status"]
"""The production store columns the comparison reads."""


def production_mix(frame: pd.DataFrame) -> pd.Series:
    """Counts of answered production turns (status `ok`) per predicted intent (`nlu_fallback` for a fallback),
    indexed by intent, largest first. `frame`: production rows with `intent`, `fallback`, `status`."""
    answered = frame["status"].astype("string").eq("ok").fillna(False).to_numpy(bool)
    labels = predicted_label(frame[answered])
    return _sorted_counts(labels)


def eval_mix(core: ScoringCore) -> pd.Series:
    """Counts of the replay's bot-owned labelled turns per expected intent, largest first."""
    t = core.turns
    labelled = t["bot_owned"].to_numpy(bool) & t["expected_intent"].notna().to_numpy(bool)
    return _sorted_counts(t.loc[labelled, "expected_intent"])


def _sorted_counts(values: pd.Series) -> pd.Series:
    counts = values.astype(str).value_counts()
    order = sorted(counts.index, key=lambda k: (-int(counts[k]), str(k)))
    return counts.reindex(order).astype(np.int64)


def pool_sparse(table: pd.DataFrame, min_expected: float = MIN_EXPECTED) -> tuple[pd.DataFrame, list[str]]:
    """`table` (rows: samples, columns: categories, counts) with the categories whose smallest expected count is
    under `min_expected` pooled into one `(pooled)` column, and while the pool's own is under it, the smallest
    remaining category added to it (ties by name). Returns the table and the pooled categories (sorted)."""
    rows = table.sum(axis=1).to_numpy(np.float64)
    total = rows.sum()
    if total == 0:
        return table, []
    smallest_row = rows.min()
    columns = table.sum(axis=0)

    def sparse(count: float) -> bool:
        return smallest_row * count / total < min_expected

    pooled = sorted(c for c in table.columns if sparse(columns[c]))
    kept = [c for c in table.columns if c not in pooled]
    while pooled and sparse(columns[pooled].sum()) and kept:
        smallest = min(kept, key=lambda c: (columns[c], str(c)))
        kept.remove(smallest)
        pooled = sorted([*pooled, smallest])
    result = table[kept].copy()
    if pooled:
        result[POOLED] = table[pooled].sum(axis=1)
    return result, pooled


@dataclass(frozen=True)
class DriftTest:
    """The chi-square test of homogeneity of the production and eval intent mixes."""

    statistic: float | None
    dof: int | None
    p_value: float | None
    categories: list[str]
    """The intents tested (after pooling; `(pooled)` included when any were)."""
    pooled: list[str]
    """The intents pooled into `(pooled)` (Cochran's rule)."""
    tvd: float | None
    """Total variation distance between the two mixes over the unpooled intents (0 = identical, 1 = disjoint)."""
    undefined_reason: str | None = None


def drift_test(production: pd.Series, evaluation: pd.Series, min_expected: float = MIN_EXPECTED) -> DriftTest:
    """Chi-square test of homogeneity of two count Series indexed by intent (`nlu_fallback` left out: see the
    module docstring), with sparse intents pooled, and the total variation distance."""
    from scipy.stats import chi2_contingency

    production = production.drop(FALLBACK, errors="ignore")
    intents = sorted(set(production.index) | set(evaluation.index))
    table = pd.DataFrame(
        [production.reindex(intents, fill_value=0), evaluation.reindex(intents, fill_value=0)],
        index=["production", "eval"],
    ).astype(np.int64)
    totals = table.sum(axis=1)
    if (totals == 0).any():
        return DriftTest(None, None, None, [], [], None, "one of the mixes has no turns")
    shares = table.div(totals, axis=0)
    tvd = float(0.5 * (shares.loc["production"] - shares.loc["eval"]).abs().sum())
    pooled_table, pooled = pool_sparse(table, min_expected)
    if pooled_table.shape[1] < 2:
        return DriftTest(
            None, None, None, list(pooled_table.columns), pooled, tvd, "fewer than 2 categories after pooling"
        )
    statistic, p_value, dof, _ = chi2_contingency(pooled_table.to_numpy(), correction=False)
    return DriftTest(float(statistic), int(dof), float(p_value), list(pooled_table.columns), pooled, tvd)


@dataclass(frozen=True)
class Stratum:
    """One in-scope intent of the re-weighting."""

    intent: str
    weight: float
    """Production's share of the turns predicted as this intent, among the intents the replay measures."""
    lab_share: float
    """The replay's share of eligible turns labelled with this intent."""
    hits: int
    eligible: int
    recognition: float


@dataclass(frozen=True)
class Reweighted:
    """Replay recognition post-stratified to production's intent mix, beside the unweighted figure."""

    value: float | None
    low: float | None
    high: float | None
    method: str
    conversations: int
    """Replay conversations with an eligible turn (the units of the variance)."""
    strata: list[Stratum]
    covered_share: float | None
    """Production's share of turns predicted as an in-scope intent that the replay measures (the rest is listed in
    `uncovered` and carries no weight)."""
    uncovered: dict[str, float]
    """In-scope intents production predicts and the replay has no eligible turn of -> their share of production's
    in-scope turns."""
    unweighted: float | None
    unweighted_low: float | None
    unweighted_high: float | None
    unweighted_n: int


METHOD = "delta method over replay conversations, Wilson on the effective sample size; production shares fixed"


def reweighted_recognition(core: ScoringCore, production: pd.Series) -> Reweighted:
    """The replay's recognition (recognition_rate.v2's turns) re-weighted by production's predicted intent counts
    `production` (see the module docstring for the estimator and its interval)."""
    t = core.turns
    eligible = t["bot_owned"].to_numpy(bool) & t["in_scope"].to_numpy(bool)
    hits = t["recognised"].to_numpy(bool) & eligible
    intents = t["expected_intent"].astype(str).to_numpy()
    codes = t["conv"].to_numpy()
    strata_names = sorted(set(intents[eligible]))
    topical = production.drop([FALLBACK, OUT_OF_SCOPE], errors="ignore")
    topical_total = int(topical.sum())
    covered = topical.reindex(strata_names, fill_value=0)
    covered_total = int(covered.sum())
    uncovered = {str(k): int(v) / topical_total for k, v in topical.items() if k not in strata_names and topical_total}
    all_hits, all_eligible = int(hits.sum()), int(eligible.sum())
    unweighted = all_hits / all_eligible if all_eligible else None
    size = core.n_conversations
    un_interval = clustered_proportion(np.bincount(codes, hits, size), np.bincount(codes, eligible, size))
    un_low, un_high = un_interval or (None, None)
    n_conv = int(np.unique(codes[eligible]).size)
    if not strata_names or covered_total == 0:
        return Reweighted(
            None, None, None, METHOD, n_conv, [], None, uncovered, unweighted, un_low, un_high, all_eligible
        )
    strata, parts = [], []
    value = 0.0
    for name in strata_names:
        mask = eligible & (intents == name)
        y = np.bincount(codes, hits & mask, size)
        m = np.bincount(codes, mask, size)
        weight = int(covered[name]) / covered_total
        r = y.sum() / m.sum()
        value += weight * r
        parts.append((y, m, weight))
        strata.append(Stratum(name, weight, float(m.sum()) / all_eligible, int(y.sum()), int(m.sum()), float(r)))
    low, high = _bounds(parts, value, n_conv, all_eligible)
    return Reweighted(
        value=float(value),
        low=low,
        high=high,
        method=METHOD,
        conversations=n_conv,
        strata=strata,
        covered_share=covered_total / topical_total,
        uncovered=uncovered,
        unweighted=unweighted,
        unweighted_low=un_low,
        unweighted_high=un_high,
        unweighted_n=all_eligible,
    )


def _bounds(
    parts: list[tuple[np.ndarray, np.ndarray, float]], value: float, conversations: int, turns: int
) -> tuple[float | None, float | None]:
    """The re-weighted estimate's interval: the variance by linearisation over conversations, z_i = sum_k w_k
    (y_ik - r_k m_ik) / M_k (parts: per stratum k, y and m per conversation and w_k), v = n/(n-1) sum_i z_i^2;
    then as `clustered_proportion_bounds` steps 2, 3 and 5: the effective sample size value(1-value)/v, at most the
    eligible turns, times (t_{M-1}/t_{n-1})^2; Wilson with the exact Poisson bound near 0 and 1 on it; at 0 or 1
    (every stratum all hit or all missed) the exact bound over conversations."""
    from scipy import special

    if conversations == 0:
        return None, None
    if value <= 0 or value >= 1 or conversations < 2:
        exact = 0.025 ** (1 / conversations)
        return (exact, 1.0) if value >= 1 else (0.0, 1 - exact) if value <= 0 else (None, None)
    z = np.zeros_like(parts[0][0], dtype=np.float64)
    for y, m, weight in parts:
        z += weight * (y - y.sum() / m.sum() * m) / m.sum()
    variance = conversations / (conversations - 1) * float((z**2).sum())
    n_eff = min(value * (1 - value) / variance, turns) if variance > 0 else float(turns)
    n_eff *= (special.stdtrit(turns - 1, 0.975) / special.stdtrit(conversations - 1, 0.975)) ** 2
    low, high = modified_wilson_bounds(np.asarray(value * n_eff), np.asarray(n_eff))
    return float(low), float(high)


@dataclass(frozen=True)
class Comparison:
    """`harness logs compare`: the two mixes, the drift test, the intents only one side has, the re-weighting."""

    store: str
    window: str
    run: str
    production_turns: int
    eval_turns: int
    mix: list[dict[str, Any]]
    """One row per intent: production count and share, eval count and share."""
    drift: DriftTest
    production_only: dict[str, float]
    """Intents production predicts that no eval turn is labelled with -> production share."""
    eval_only: dict[str, float]
    """Intents the eval sets label that production never predicted -> eval share."""
    recognition: Reweighted

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def compare(
    production: pd.Series, core: ScoringCore, *, store: str = "", window: str = "", run: str = ""
) -> Comparison:
    """The comparison of production's predicted intent counts `production` (`production_mix`) with the replay
    scored in `core`. Pure."""
    evaluation = eval_mix(core)
    p_total, e_total = int(production.sum()), int(evaluation.sum())
    intents = sorted(set(production.index) | set(evaluation.index), key=lambda k: (-int(production.get(k, 0)), k))
    mix = [
        {
            "intent": k,
            "production": int(production.get(k, 0)),
            "production_share": int(production.get(k, 0)) / p_total if p_total else None,
            "eval": int(evaluation.get(k, 0)),
            "eval_share": int(evaluation.get(k, 0)) / e_total if e_total else None,
        }
        for k in intents
    ]
    production_only = {
        str(k): int(v) / p_total for k, v in production.items() if k not in evaluation.index and k != FALLBACK
    }
    eval_only = {str(k): int(v) / e_total for k, v in evaluation.items() if k not in production.index}
    return Comparison(
        store=store,
        window=window,
        run=run,
        production_turns=p_total,
        eval_turns=e_total,
        mix=mix,
        drift=drift_test(production, evaluation),
        production_only=production_only,
        eval_only=eval_only,
        recognition=reweighted_recognition(core, production),
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def markdown(c: Comparison) -> str:
    """compare.md."""
    d, r = c.drift, c.recognition
    lines = [
        f"# Lab versus production: run `{c.run}` against production `{c.window}`",
        "",
        f"Production: {c.production_turns} answered customer turns of store `{c.store}`, by the intent the bot "
        "predicted (production logs carry no labels: the prediction is all there is, so a misrecognised turn counts "
        f"under the wrong intent). Eval sets: {c.eval_turns} labelled turns of the replay, by expected intent.",
        "",
        "## Drift of the intent mix",
        "",
    ]
    if d.statistic is None:
        lines += [f"No test: {d.undefined_reason}.", ""]
    else:
        lines += [
            f"Chi-square test of homogeneity: X2 = {d.statistic:.2f}, {d.dof} degrees of freedom, p = {d.p_value:.3g}"
            f"; total variation distance {_pct(d.tvd)}.",
            "",
            f"`nlu_fallback` is left out (no label counterpart). Intents with an expected count under "
            f"{MIN_EXPECTED:g} were pooled (Cochran's rule): {', '.join(d.pooled) or 'none'}. Turns of one "
            "conversation are not independent, so the p-value is optimistic; the distance is the size of the drift.",
            "",
        ]
    lines += ["| intent | production | share | eval sets | share |", "|---|---:|---:|---:|---:|"]
    lines += [
        f"| {m['intent']} | {m['production']} | {_pct(m['production_share'])} | {m['eval']} | {_pct(m['eval_share'])} |"
        for m in c.mix
    ]
    lines += ["", "## Production exercises, the eval sets do not", ""]
    lines += [f"- `{k}`: {_pct(v)} of production turns" for k, v in c.production_only.items()] or ["None."]
    lines += ["", "## The eval sets exercise, production does not", ""]
    lines += [f"- `{k}`: {_pct(v)} of eval turns" for k, v in c.eval_only.items()] or ["None."]
    lines += [
        "",
        "## Recognition re-weighted by the production mix",
        "",
        f"Replay recognition (recognition_rate.v2 turns), unweighted: {_pct(r.unweighted)} "
        f"({_pct(r.unweighted_low)} - {_pct(r.unweighted_high)}, {r.unweighted_n} turns); re-weighted to production's "
        f"intent mix: {_pct(r.value)} ({_pct(r.low)} - {_pct(r.high)}; {r.method}).",
        "",
        f"The replay measures intents carrying {_pct(r.covered_share)} of production's in-scope turns"
        + (
            "; no replay turn for: " + ", ".join(f"`{k}` ({_pct(v)})" for k, v in r.uncovered.items())
            if r.uncovered
            else ""
        )
        + ".",
        "",
        "| intent | production weight | eval share | recognised | eligible | recognition |",
        "|---|---:|---:|---:|---:|---:|",
        *[
            f"| {s.intent} | {_pct(s.weight)} | {_pct(s.lab_share)} | {s.hits} | {s.eligible} | {_pct(s.recognition)} |"
            for s in r.strata
        ],
        "",
    ]
    return "\n".join(lines)
