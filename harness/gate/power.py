"""What the release gate can see: for each regression check and each must-pass rule, the smallest drop it catches
with the target power (the minimal detectable effect, MDE) at the eval size and the noise measured between the run
and its baseline, and how many conversations an eval set needs to catch a given drop (`harness gate --plan`).

Every figure is computed under the gate's *actual* decision rule, not a textbook test:
- a KPI regression check fails when the observed drop exceeds `max_regression` AND a one-sided paired test is
  significant at `alpha` (policy `paired_test`), or on the drop alone (policy `point`). A true drop equal to the
  allowance is therefore caught about half the time at best: the MDE is never below the allowance;
- a must-pass rule blocks on any failure (`absolute`), on any new failure (`no_new_failures`), or when new
  failures significantly outnumber fixes or exceed `max_new_failures` (`no_regression`).

The noise model (the same one `bench/gate_power.py` simulates): between two runs, each unit (a conversation, or a
turn for turn-level rates) changes outcome with probability `discordance`, half of the changes each way, so an
equally good bot's rate is unchanged in expectation; a true drop `drop` adds one-directional changes. For a unit
the paired difference is +1 (got worse) with probability discordance/2 + drop, -1 with probability discordance/2.

- Conversation proportions compared by the exact McNemar test: the power is computed exactly, summing the
  trinomial distribution of (worse, better) conversations over the gate's rejection region (Lachin 1992, "Power
  and sample size evaluation for the McNemar test with application to matched case-control studies", Statistics
  in Medicine 11:1239-1251, gives this unconditional exact power; the normal approximation below it is Connor
  1987, "Sample size for testing differences in proportions for the paired-sample design", Biometrics 43:207-211).
- KPIs compared by the paired conversation bootstrap (turn-level rates, rates among handed-off conversations):
  a normal approximation of the bootstrap. The paired difference has standard deviation
  sigma = sqrt(deff * (discordance + drop - drop^2) / units), where deff is the design effect of turns clustered
  in conversations (Kish 1965, "Survey Sampling", section 8.2; for paired clustered proportions, Obuchowski 1998,
  "On the comparison of correlated proportions for clustered data", Statistics in Medicine 17:1495-1507), measured
  from the spread of the gate's own bootstrap replicates. The percentile bootstrap p-value is below alpha when
  the observed drop exceeds z(1-alpha) * sigma (Efron and Tibshirani 1993, "An Introduction to the Bootstrap",
  chapter 16), so power = P(observed drop > max(allowance, z(1-alpha) * sigma)).

Exact binomial power is saw-toothed in the sample size (Chernick and Liu 2002, "The saw-toothed behavior of power
versus sample size and software solutions", The American Statistician 56:149-155): a few more conversations can
lose a point or two of power; the plan reports the smallest size at which the target is reached.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom, norm

from harness.gate.decision import TOLERANCE, GateResult, conversation_outcomes, rule_alpha
from harness.gate.paired import MCNEMAR, PAIRED_BOOTSTRAP, latency_difference_replicates, same_conversations
from harness.gate.spec import GateSpec, KpiCheck, MustPass
from harness.scoring.metrics import REGISTRY, ScoringCore
from harness.scoring.scored_run import ScoredRun

BOOTSTRAP_APPROXIMATION = "paired bootstrap, normal approximation"
MAX_CONVERSATIONS = 1_000_000
"""The plan's search stops here: a drop that needs more is reported as out of reach."""


# --- the decision rules' power ------------------------------------------------------------------------------------


def _check_probabilities(discordance: float, drop: float) -> tuple[float, float]:
    """(P(a unit got worse), P(it got better)) under the noise model; raises ValueError outside it."""
    if not 0 <= discordance < 1 or drop < 0:
        raise ValueError(f"discordance must be in [0, 1) and drop >= 0, got {discordance} and {drop}")
    worse, better = discordance / 2 + drop, discordance / 2
    if worse + better > 1 + 1e-12:
        raise ValueError(f"a drop of {drop} on top of discordance {discordance} changes more than every unit")
    return worse, better


def mcnemar_critical(discordant: np.ndarray, alpha: float) -> np.ndarray:
    """For each count of discordant conversations m, the smallest count of worse ones b at which the gate's
    one-sided exact McNemar test is significant: P(X >= b | X ~ Binomial(m, 1/2)) < alpha (as
    `scipy.stats.binomtest(b, m, 0.5, alternative="greater").pvalue`); m + 1 (never) where no b is."""
    m = np.asarray(discordant, dtype=np.int64)
    k0 = binom.ppf(1 - alpha, m, 0.5).astype(np.int64)
    b = np.where(binom.sf(k0, m, 0.5) < alpha, k0 + 1, k0 + 2)
    # Walk down where ppf's rounding left a smaller b that is also significant.
    smaller = (b > 0) & (binom.sf(b - 2, m, 0.5) < alpha)
    b = np.where(smaller, b - 1, b)
    return np.where(m == 0, 1, np.minimum(b, m + 1))


@dataclass(frozen=True)
class Rule:
    """A paired decision rule over n units: it fails (blocks) when, with b units worse and c better,
    - (b - c) / n > allowance (when `allowance` is not None), and
    - the one-sided exact McNemar p-value of b among b + c is below `alpha` (when `alpha` is not None);
    or when b > `max_worse` (when not None; an OR with the above, as `no_regression`'s cap)."""

    allowance: float | None = 0.0
    alpha: float | None = 0.05
    max_worse: int | None = None

    def critical(self, n: int, discordant: np.ndarray) -> np.ndarray:
        """The smallest b that fails, per count of discordant units m (m + 1 where none does)."""
        m = np.asarray(discordant, dtype=np.int64)
        tested = self.allowance is not None or self.alpha is not None
        b = np.zeros_like(m)
        if self.allowance is not None:
            # (2b - m) / n > allowance, with the gate's tolerance for floating-point differences.
            b = np.maximum(b, np.floor((m + (self.allowance + TOLERANCE) * n) / 2).astype(np.int64) + 1)
        if self.alpha is not None:
            b = np.maximum(b, mcnemar_critical(m, self.alpha))
        if not tested:
            b = m + 1
        if self.max_worse is not None:
            b = np.minimum(b, self.max_worse + 1)
        return np.minimum(b, m + 1)


def exact_power(n: int, discordance: float, drop: float, rule: Rule) -> float:
    """Probability that `rule` fails on n paired units, each worse with probability discordance/2 + drop and
    better with probability discordance/2, independently (exact: Lachin 1992's unconditional power, summed over the
    binomial count of discordant units m and the binomial count of worse ones among them; terms below 1e-13 are
    left out). `drop` and `discordance` are shares of units; raises ValueError outside the model."""
    if n <= 0:
        return 0.0
    p_worse, p_better = _check_probabilities(discordance, drop)
    p_disc = min(p_worse + p_better, 1.0)
    if p_disc == 0:
        return 0.0
    low = int(binom.ppf(1e-13, n, p_disc)) if p_disc < 1 else n
    high = int(binom.isf(1e-13, n, p_disc)) if p_disc < 1 else n
    m = np.arange(max(low - 1, 0), min(high + 1, n) + 1)
    weight = binom.pmf(m, n, p_disc)
    b = rule.critical(n, m)
    return float(np.clip((weight * binom.sf(b - 1, m, p_worse / p_disc)).sum(), 0.0, 1.0))


def normal_power(
    units: float,
    discordance: float,
    drop: float,
    *,
    allowance: float | None,
    alpha: float | None,
    design_effect: float = 1.0,
) -> float:
    """Approximate probability that a paired-bootstrap check fails: the observed drop is normal with mean `drop`
    and sigma = sqrt(design_effect * (discordance + drop - drop^2) / units); the check fails when it exceeds the
    allowance (if not None) and z(1-alpha) * sigma (if alpha is not None). Raises ValueError outside the model."""
    _check_probabilities(discordance, drop)
    if units <= 0:
        return 0.0
    variance = design_effect * (discordance + drop - drop * drop) / units
    if variance <= 0:
        threshold = max(allowance + TOLERANCE if allowance is not None else 0.0, 0.0)
        return 1.0 if drop > threshold else 0.0
    sigma = math.sqrt(variance)
    threshold = -math.inf
    if allowance is not None:
        threshold = allowance + TOLERANCE
    if alpha is not None:
        threshold = max(threshold, float(norm.isf(alpha)) * sigma)
    return float(norm.sf((threshold - drop) / sigma))


def minimal_detectable(power_at: Callable[[float], float], target: float, limit: float) -> float | None:
    """The smallest drop in [0, limit] at which `power_at(drop)` (increasing) reaches `target`, to 1e-4; None when
    even `limit` does not."""
    if limit <= 0 or power_at(limit) < target:
        return None
    low, high = 0.0, limit
    if power_at(low) >= target:
        return 0.0
    while high - low > 1e-4:
        middle = (low + high) / 2
        if power_at(middle) >= target:
            high = middle
        else:
            low = middle
    return high


def smallest_size(power_at: Callable[[int], float], target: float, start: int = 1) -> int | None:
    """The smallest size n >= start with `power_at(n) >= target` (bisection between doubling steps, then the
    first n at or below the bisection's answer that reaches the target, for saw-toothed exact power); None above
    MAX_CONVERSATIONS."""
    high = max(start, 1)
    while power_at(high) < target:
        if high >= MAX_CONVERSATIONS:
            return None
        high = min(high * 2, MAX_CONVERSATIONS)
    low = max(start, high // 2)
    if power_at(low) >= target:
        return low
    while high - low > 1:
        middle = (low + high) // 2
        if power_at(middle) >= target:
            high = middle
        else:
            low = middle
    return high


def connor_size(discordance: float, drop: float, alpha: float, power: float) -> float:
    """Connor (1987)'s normal-approximation sample size for McNemar's test with no allowance:
    n = (z(1-alpha) sqrt(psi) + z(power) sqrt(psi - drop^2))^2 / drop^2, psi = discordance + drop the
    probability of a discordant pair. A cross-check for the exact sizes."""
    psi = discordance + drop
    return (norm.isf(alpha) * math.sqrt(psi) + norm.ppf(power) * math.sqrt(psi - drop * drop)) ** 2 / drop**2


# --- what a check sees --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Noise:
    """What the gate measured for one check between a run and its baseline."""

    units: int
    """n: the conversations or turns the check's paired comparison is over."""
    unit: str
    """What a unit is: `conversations`, `turns`, `handed-off conversations`, ..."""
    conversations: int
    """Conversations in the run (the plan scales units with them)."""
    discordance: float | None
    """Measured share of units whose outcome differs between run and baseline (for turn-level rates: a lower
    bound, changes in both directions within one conversation cancel); None when not measurable."""
    design_effect: float
    """Variance inflation of the paired difference from turns clustered in conversations (1 for conversations)."""
    exact: bool
    """The gate decides this check with the exact McNemar test (exact power); otherwise the paired bootstrap."""
    limit: float
    """The largest possible drop (the baseline's value for a rate)."""
    spread: float | None = None
    """Latency only: standard deviation of the paired bootstrap difference, in the KPI's unit."""


def _unit_name(conversation_proportion: bool, all_conversations: bool) -> str:
    if conversation_proportion:
        return "conversations" if all_conversations else "conversations counted"
    return "turns"


def _linearised_design_effect(numerator: np.ndarray, denominator: np.ndarray) -> float:
    """Design effect of a ratio of per-conversation sums: its linearised cluster variance
    sum((x - R m)^2) / M^2 * k/(k-1) (Cochran 1977, "Sampling Techniques", section 6.11) over the binomial
    variance R (1 - R) / M; at least 1 (1 where undefined)."""
    total = denominator.sum()
    clusters = int((denominator > 0).sum())
    if total <= 0 or clusters < 2:
        return 1.0
    rate = numerator.sum() / total
    if rate <= 0 or rate >= 1:
        return 1.0
    variance = ((numerator - rate * denominator) ** 2).sum() / total**2 * clusters / (clusters - 1)
    return max(1.0, float(variance / (rate * (1 - rate) / total)))


def measure(name: str, run: ScoringCore, baseline: ScoringCore | None, *, design_effect: bool = True) -> Noise | None:
    """The units, measured discordance and design effect of KPI `name` between `run` and `baseline` (same
    conversations; None baseline: the run's own composition, discordance None); None for a KPI with no paired
    comparison. `design_effect` False skips the bootstrap behind the design effect (reported as 1)."""
    if baseline is not None:
        same_conversations(run, baseline)
    spec = REGISTRY[name]
    if spec.parts is None:
        if baseline is None or not name.startswith("latency"):
            return None
        q = 0.95 if "p95" in name else 0.5
        difference = latency_difference_replicates(run, baseline, q)
        finite = difference[np.isfinite(difference)]
        spread = float(finite.std(ddof=1)) if finite.size > 1 else None
        return Noise(spec(run).n, "turns", run.n_conversations, None, 1.0, False, math.inf, spread)
    now = spec.parts(run)
    before = spec.parts(baseline) if baseline is not None else None
    exact = bool(now.conversation_proportion and (now.denominator == 1).all())
    if before is not None:
        exact = exact and bool(before.conversation_proportion and (before.denominator == 1).all())
    base_value = (before or now).numerator.sum() / max((before or now).denominator.sum(), 1)
    limit = float(base_value) if spec.higher_is_better else float(1 - base_value)
    own = _linearised_design_effect(now.numerator, now.denominator)
    unit = _unit_name(now.conversation_proportion, exact)
    units = int(max(now.denominator.sum(), before.denominator.sum() if before is not None else 0))
    if before is None or units == 0:
        return Noise(units, unit, run.n_conversations, None, own, exact, limit)
    changed = np.maximum(np.abs(now.numerator - before.numerator), np.abs(now.denominator - before.denominator))
    discordance = float(changed.sum() / units)
    deff = 1.0 if exact or not design_effect else own
    if not exact and design_effect and discordance > 0:
        difference = run.bootstrap.ratio_replicates(
            now.numerator, now.denominator
        ) - baseline.bootstrap.ratio_replicates(before.numerator, before.denominator)  # type: ignore[union-attr]
        finite = difference[np.isfinite(difference)]
        observed = now.numerator.sum() / max(now.denominator.sum(), 1) - base_value
        excess = discordance - observed**2
        if finite.size > 1 and excess > 0:
            deff = max(1.0, float(finite.var(ddof=1) * units / excess))
    return Noise(units, unit, run.n_conversations, discordance, deff, exact, limit)


@dataclass(frozen=True)
class Detectability:
    """What one check can see: the minimal detectable effect and the false-alarm rate, with the figures behind."""

    check: str
    """The KPI's versioned name, or `must-pass: <rule>`."""
    group: str
    """`kpi` or `must_pass`."""
    method: str
    units: int
    unit: str
    conversations: int
    measured_discordance: float | None
    """Between this run and its baseline (None without a baseline or where not measurable)."""
    discordance: float
    """The discordance the figures assume: the measured one, or policy.planning_discordance when none was
    measured (zero: the run and baseline agree everywhere)."""
    assumed: bool
    """True when `discordance` is the planning assumption, not a measurement."""
    design_effect: float
    allowance: float | None
    alpha: float | None
    power: float
    mde: float | None
    """The smallest true drop caught with probability `power` (a share of units for rates; for a must-pass rule,
    a share of its conversations); None when no possible drop is."""
    false_alarm: float | None
    """Probability that the check fails an equally good bot at `discordance` (None: not estimable, see
    `rule_detectability`)."""
    blind_spot: bool
    """The allowance is below the MDE: drops between them are caught less often than `power`."""
    message: str

    def as_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _pct(share: float) -> str:
    return f"{share:.1%}" if share >= 0.001 or share == 0 else f"{share:.2%}"


def _drop(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:.0f} ms"
    return f"{value:.3f} ({value * 100:.1f} points)"


def _noise_words(noise: Noise, discordance: float, assumed: bool) -> str:
    scope = f"n={noise.units} {noise.unit}" + (
        f" in {noise.conversations} conversations" if noise.unit != "conversations" else ""
    )
    if assumed:
        return f"{scope}, discordance {_pct(discordance)} assumed"
    clustered = f", design effect {noise.design_effect:.2f}" if noise.design_effect > 1.005 else ""
    return f"{scope}, discordance {_pct(discordance)} measured{clustered}"


ASSUMED_NOTE = (
    "'discordance assumed': {why}, so the noise of a changed bot cannot be measured on this run; the figures assume "
    "{share} of outcomes change between two runs of equally good bots (policy.planning_discordance). Measure it: "
    "run the same bot twice (or the candidate against its baseline) and read the measured discordance."
)


def kpi_detectability(
    name: str, check: KpiCheck, spec: GateSpec, noise: Noise, *, target: float | None = None
) -> Detectability | None:
    """What the regression check of KPI `name` can see, at `noise` (None for a check without max_regression)."""
    if check.max_regression is None:
        return None
    policy = spec.policy
    target = target or policy.power
    allowance = check.max_regression
    alpha = None if policy.comparison == "point" else (check.alpha or policy.alpha)
    assumed = not noise.discordance
    discordance = policy.planning_discordance if assumed else float(noise.discordance or 0.0)
    result_unit = "ms" if name.startswith("latency") else "ratio"
    if noise.spread is not None or result_unit == "ms":
        return _latency_detectability(name, allowance, alpha, noise, target)
    limit = min(noise.limit, 1 - discordance)
    if noise.exact:
        rule = Rule(allowance, alpha)
        method = MCNEMAR if alpha is not None else "point comparison (exact)"

        def power_at(drop: float) -> float:
            return exact_power(noise.units, discordance, drop, rule)
    else:
        method = BOOTSTRAP_APPROXIMATION if alpha is not None else "point comparison (normal approximation)"
        deff = noise.design_effect

        def power_at(drop: float) -> float:
            return normal_power(noise.units, discordance, drop, allowance=allowance, alpha=alpha, design_effect=deff)

    mde = minimal_detectable(power_at, target, limit)
    false_alarm = power_at(0.0)
    blind = mde is None or mde > allowance + TOLERANCE
    words = _noise_words(noise, discordance, assumed)
    if mde is None:
        sees = f"no possible drop is caught with {target:.0%} power ({words}, {method})"
    else:
        sees = f"catches a drop of {_drop(mde, 'ratio')} with {target:.0%} power ({words}, {method})"
    if mde is None:
        verdict = f"allowed {_drop(allowance, 'ratio')}; the check cannot see a regression at this eval size"
    elif blind:
        verdict = (
            f"allowed {_drop(allowance, 'ratio')}, below what the gate can see: drops between "
            f"{allowance:.3f} and {mde:.3f} are caught less than {target:.0%} of the time"
            + (" (a drop equal to the allowance about half the time at best)" if allowance > 0 else "")
        )
    else:
        verdict = f"allowed {_drop(allowance, 'ratio')}"
    message = f"{name}: {sees}; {verdict}; false alarms on an equally good bot {_pct(false_alarm)}"
    return Detectability(
        name,
        "kpi",
        method,
        noise.units,
        noise.unit,
        noise.conversations,
        noise.discordance,
        discordance,
        assumed,
        noise.design_effect,
        allowance,
        alpha,
        target,
        mde,
        false_alarm,
        blind,
        message,
    )


def _latency_detectability(
    name: str, allowance: float, alpha: float | None, noise: Noise, target: float
) -> Detectability | None:
    """Latency: the observed change is taken as normal with the measured bootstrap spread (no discordance)."""
    sigma = noise.spread
    if not sigma or not math.isfinite(sigma):
        return None
    threshold = allowance + TOLERANCE
    if alpha is not None:
        threshold = max(threshold, float(norm.isf(alpha)) * sigma)
    mde = threshold + float(norm.ppf(target)) * sigma
    false_alarm = float(norm.sf(threshold / sigma))
    blind = mde > allowance + TOLERANCE
    message = (
        f"{name}: catches a rise of {mde:.0f} ms with {target:.0%} power (n={noise.units} turns, bootstrap spread "
        f"{sigma:.0f} ms); allowed {allowance:.0f} ms"
        + (
            f": rises between {allowance:.0f} and {mde:.0f} ms are caught less than {target:.0%} of the time"
            if blind
            else ""
        )
        + f"; false alarms on an equally fast bot {_pct(false_alarm)}"
    )
    return Detectability(
        name,
        "kpi",
        PAIRED_BOOTSTRAP,
        noise.units,
        "turns",
        noise.conversations,
        None,
        0.0,
        False,
        1.0,
        allowance,
        alpha,
        target,
        mde,
        false_alarm,
        blind,
        message,
    )


def rule_decision(rule: MustPass, spec: GateSpec) -> Rule:
    """A must-pass rule as a paired decision rule over its conversations (see `Rule`)."""
    if rule.mode == "no_regression":
        return Rule(None, rule_alpha(rule, spec), rule.max_new_failures)
    return Rule(None, None, 0)  # absolute, no_new_failures: any conversation that newly fails blocks


def rule_detectability(
    rule: MustPass,
    spec: GateSpec,
    run: ScoredRun,
    baseline: ScoredRun | None,
    *,
    target: float | None = None,
) -> Detectability | None:
    """What must-pass rule `rule` can see (None when it selects nothing, or the run has no turn records).

    - no_regression: the share of its conversations that must newly fail, in excess of fixes, before it blocks
      with `target` power (exact, `exact_power`), and how often it blocks an equally good bot;
    - absolute, no_new_failures: any single (new) failure blocks, so it sees one; the price is the false-alarm
      rate under flip noise, 1 - (1 - discordance/2)^n for n selected conversations (`exact_power` at drop 0).
    A `never_matches` rule's noise is what the bot says, not an outcome that flips: its false alarms are
    estimated only from a measured discordance (None otherwise)."""
    now = conversation_outcomes(rule, run)
    if now is None or not len(now) or run.core is None:
        return None
    policy = spec.policy
    target = target or policy.power
    n = len(now)
    before = conversation_outcomes(rule, baseline) if baseline is not None else None
    measured: float | None = None
    passing = int(now.sum())
    if before is not None:
        aligned = before.reindex(now.index).fillna(False).astype(bool)
        measured = float((now != aligned).mean())
        passing = int(aligned.sum())
    assumed = not measured
    discordance = policy.planning_discordance if assumed else float(measured or 0.0)
    decision = rule_decision(rule, spec)
    noise = Noise(n, "conversations", run.core.n_conversations, measured, 1.0, True, passing / n)
    words = _noise_words(noise, discordance, assumed)
    pattern = rule.require == "never_matches"

    def power_at(drop: float) -> float:
        return exact_power(n, discordance, drop, decision)

    if rule.mode == "no_regression":
        method = MCNEMAR
        mde = minimal_detectable(power_at, target, min(passing / n, 1 - discordance))
        false_alarm: float | None = power_at(0.0)
        blocks = f"blocks when new failures significantly outnumber fixes (exact McNemar, alpha {decision.alpha})" + (
            f" or exceed {rule.max_new_failures}" if rule.max_new_failures is not None else ""
        )
        if mde is None:
            sees = f"no possible regression of its {passing} passing conversations is caught with {target:.0%} power"
        else:
            count = max(1, math.ceil(mde * n - 1e-9))
            sees = (
                f"catches {count} new failure(s) in excess of fixes ({_pct(mde)} of its {n} conversations) with "
                f"{target:.0%} power; fewer usually pass, each listed as a warning"
            )
        blind = mde is None or mde * n > 1 + 1e-9
    else:
        method = "any new failure" if rule.mode == "no_new_failures" else "any failure"
        mde = 1 / n
        false_alarm = None if pattern and assumed else power_at(0.0)
        blocks = "blocks on any " + ("new " if rule.mode == "no_new_failures" else "") + "failure"
        sees = "sees a single one"
        if false_alarm is not None and false_alarm > 0.05:
            sees += (
                f"; under flip noise each of its {n} conversations is a chance of a false alarm, more than a "
                "5% false-alarm target allows (mode: no_regression trades a few unseen new failures for that)"
            )
        blind = False
    alarm = (
        f"false alarms on an equally good bot {_pct(false_alarm)}"
        if false_alarm is not None
        else "false alarms: not estimated (a pattern rule's noise is what the bot says; none measured here)"
    )
    message = f"must-pass '{rule.name}' ({rule.mode}) {blocks}: {sees} ({words}); {alarm}"
    return Detectability(
        f"must-pass: {rule.name}",
        "must_pass",
        method,
        n,
        "conversations",
        noise.conversations,
        measured,
        discordance,
        assumed,
        1.0,
        None,
        decision.alpha,
        target,
        mde,
        false_alarm,
        blind,
        message,
    )


def detectability(spec: GateSpec, run: ScoredRun, baseline: ScoredRun | None) -> list[Detectability]:
    """What every regression check and must-pass rule of `spec` can see on `run` against `baseline` (checks that
    cannot be assessed, for lack of turn records or of a paired comparison, are left out)."""
    if run.core is None:
        return []
    base_core = baseline.core if baseline is not None else None
    found: list[Detectability] = []
    for name, check in spec.kpis.items():
        if check.max_regression is None:
            continue
        noise = measure(name, run.core, base_core)
        line = kpi_detectability(name, check, spec, noise) if noise is not None else None
        if line is not None:
            found.append(line)
    for rule in spec.must_pass:
        line = rule_detectability(rule, spec, run, baseline)
        if line is not None:
            found.append(line)
    return found


def with_detectability(result: GateResult, lines: list[Detectability]) -> GateResult:
    """`result` carrying `lines` (shown in the console, gate.md and gate.json), with a note when a figure rests on
    the planning assumption rather than a measured discordance."""
    from dataclasses import replace

    assumed = [line for line in lines if line.assumed]
    notes = list(result.notes)
    if assumed:
        no_baseline = all(line.measured_discordance is None for line in assumed)
        why = (
            "there is no baseline with turn records to compare with"
            if no_baseline
            else "the run and its baseline agree on every conversation and turn these checks read (discordance "
            "0: a deterministic rerun, or a bot that did not change there)"
        )
        notes.append(ASSUMED_NOTE.format(why=why, share=_pct(assumed[0].discordance)))
    return replace(result, detectability=lines, notes=notes)


def whole_gate_false_alarm(lines: list[Detectability]) -> float:
    """1 - prod(1 - false alarm) over the checks: the gate's false-alarm rate if the checks' noise were
    independent (an approximation; bench/gate_power.py measures it)."""
    known = [d.false_alarm for d in lines if d.false_alarm is not None]
    return float(1 - np.prod([1 - f for f in known])) if known else 0.0


# --- planning: how many conversations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanLine:
    """How many conversations one check needs to catch `drop` with `power` at `discordance`."""

    check: str
    group: str
    method: str
    drop: float
    power: float
    discordance: float
    assumed: bool
    today_conversations: int
    today_units: int
    unit: str
    conversations: int | None
    """Conversations the eval sets need in total (at today's mix); None when no size reaches the target."""
    units: int | None
    """Units of the check at that size (turns, handed-off conversations, or the rule's conversations)."""
    message: str

    def as_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def plan_kpi(
    name: str,
    check: KpiCheck,
    spec: GateSpec,
    noise: Noise,
    *,
    drop: float,
    power: float,
    discordance: float | None,
) -> PlanLine | None:
    """The eval size at which the regression check of `name` catches `drop` with `power`; `discordance` None means
    the measured one, else policy.planning_discordance."""
    if check.max_regression is None or noise.spread is not None or name.startswith("latency"):
        return None
    policy = spec.policy
    assumed = discordance is None and not noise.discordance
    d = discordance if discordance is not None else (noise.discordance or policy.planning_discordance)
    allowance = check.max_regression
    alpha = None if policy.comparison == "point" else (check.alpha or policy.alpha)
    per_conversation = noise.units / noise.conversations if noise.conversations else 1.0
    method = MCNEMAR if noise.exact else BOOTSTRAP_APPROXIMATION
    head = f"{name}: to catch a drop of {drop:.3f} with {power:.0%} power at {_pct(d)} discordance" + (
        " (assumed)" if assumed else ""
    )
    if drop <= allowance + TOLERANCE:
        message = (
            f"{head}: no eval size is enough while max_regression is {allowance:.3f}: the gate passes any observed "
            f"drop up to the allowance, so a true drop of {drop:.3f} is caught half the time at most; lower "
            f"max_regression below {drop:.3f}"
        )
        return PlanLine(name, "kpi", method, drop, power, d, assumed, noise.conversations, noise.units, noise.unit,
                        None, None, message)  # fmt: skip
    if drop + d > 1:
        raise ValueError(f"a drop of {drop} on top of discordance {d} changes more than every unit")
    rule = Rule(allowance, alpha)
    if noise.exact:

        def power_at(size: int) -> float:
            return exact_power(size, d, drop, rule)
    else:
        deff = noise.design_effect

        def power_at(size: int) -> float:
            return normal_power(size * per_conversation, d, drop, allowance=allowance, alpha=alpha, design_effect=deff)

    size = smallest_size(power_at, power)
    units = None if size is None else int(math.ceil(size * per_conversation))
    if size is None:
        message = f"{head}: more than {MAX_CONVERSATIONS:,} conversations"
    else:
        extra = f" ({units:,} {noise.unit})" if noise.unit != "conversations" else ""
        today = f" ({noise.units:,} {noise.unit})" if noise.unit != "conversations" else ""
        alarm = _pct(exact_power(size, d, 0.0, rule) if noise.exact else normal_power(
            size * per_conversation, d, 0.0, allowance=allowance, alpha=alpha, design_effect=noise.design_effect
        ))  # fmt: skip
        message = (
            f"{head}: {size:,} conversations{extra}; today {noise.conversations:,}{today}; false alarms of this "
            f"check at that size {alarm}"
        )
    return PlanLine(
        name, "kpi", method, drop, power, d, assumed, noise.conversations, noise.units, noise.unit, size, units,
        message,
    )  # fmt: skip


def plan_rule(
    rule: MustPass,
    spec: GateSpec,
    run: ScoredRun,
    baseline: ScoredRun | None,
    *,
    drop: float,
    power: float,
    discordance: float | None,
) -> PlanLine | None:
    """The number of conversations rule `rule` must select to catch `drop` (a share of them newly failing) with
    `power`, and the eval size that gives at today's mix."""
    line = rule_detectability(rule, spec, run, baseline)
    if line is None or run.core is None:
        return None
    assumed = discordance is None and line.assumed
    d = discordance if discordance is not None else line.discordance
    decision = rule_decision(rule, spec)
    head = (
        f"must-pass '{rule.name}' ({rule.mode}): to catch {drop:.1%} of its conversations newly failing with "
        f"{power:.0%} power at {_pct(d)} discordance" + (" (assumed)" if assumed else "")
    )
    share = line.units / run.core.n_conversations
    if rule.mode != "no_regression":
        if rule.require == "never_matches" and assumed:
            alarm = "its false alarms depend on what an equally good bot says, which no run measured here"
        else:
            false_alarm = exact_power(line.units, d, 0.0, decision)
            alarm = (
                f"each selected conversation is a chance of a false alarm: today {line.units} conversations block "
                f"an equally good bot {_pct(false_alarm)} of the time, and more conversations make that worse "
                "(consider mode: no_regression)"
            )
        message = f"{head}: any new failure blocks, so any size sees it; {alarm}"
        return PlanLine(f"must-pass: {rule.name}", "must_pass", line.method, drop, power, d, assumed,
                        run.core.n_conversations, line.units, "conversations", line.conversations, line.units,
                        message)  # fmt: skip

    def power_at(size: int) -> float:
        return exact_power(size, d, drop, decision)

    size = smallest_size(power_at, power)
    if size is None:
        message = f"{head}: more than {MAX_CONVERSATIONS:,} conversations"
        total = None
    else:
        total = int(math.ceil(size / share))
        message = (
            f"{head}: {size:,} conversations selected by the rule (today {line.units}); at today's mix "
            f"({share:.1%} of the eval sets) {total:,} conversations in total; false alarms of this rule at that "
            f"size {_pct(exact_power(size, d, 0.0, decision))}"
            + (
                " (max_new_failures is a fixed count: raise it with the size)"
                if rule.max_new_failures is not None
                else ""
            )
        )
    return PlanLine(f"must-pass: {rule.name}", "must_pass", MCNEMAR, drop, power, d, assumed,
                    run.core.n_conversations, line.units, "conversations", total, size, message)  # fmt: skip


def plan(
    spec: GateSpec,
    run: ScoredRun,
    baseline: ScoredRun | None,
    *,
    drop: float,
    power: float | None = None,
    discordance: float | None = None,
) -> list[PlanLine]:
    """For every regression check and must-pass rule: the eval size that catches `drop` with `power` (default
    policy.power) at `discordance` (default: measured between run and baseline, else policy.planning_discordance).
    Raises ValueError for a drop or discordance outside (0, 1)."""
    if not 0 < drop < 1:
        raise ValueError(f"--drop must be in (0, 1), got {drop}")
    if discordance is not None and not 0 < discordance < 1:
        raise ValueError(f"--discordance must be in (0, 1), got {discordance}")
    power = power or spec.policy.power
    if run.core is None:
        return []
    base_core = baseline.core if baseline is not None else None
    lines: list[PlanLine] = []
    for name, check in spec.kpis.items():
        noise = measure(name, run.core, base_core) if check.max_regression is not None else None
        line = plan_kpi(name, check, spec, noise, drop=drop, power=power, discordance=discordance) if noise else None
        if line is not None:
            lines.append(line)
    for rule in spec.must_pass:
        rule_line = plan_rule(rule, spec, run, baseline, drop=drop, power=power, discordance=discordance)
        if rule_line is not None:
            lines.append(rule_line)
    return lines


def plan_json(lines: list[PlanLine]) -> str:
    return json.dumps([line.as_dict() for line in lines], indent=2) + "\n"
