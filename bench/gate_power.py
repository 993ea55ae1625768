"""What the release gate can see, measured with its own code: false alarms on unchanged-bot pairs and power
against true drops, on the committed baseline's real turn table.

    .venv/bin/python bench/gate_power.py [--sims 300] [--conversations N] [--spec experiments/gate.yml]

Every simulated pair is (the committed baseline's turns.parquet, a changed copy of it); both are scored by
`harness.scoring.scored_run.ScoredRun` (KPIs computed when read) and judged by `harness.gate.decision.decide` (its KPI
checks with their paired tests, `compare`, and its must-pass rules) under the committed specification, exactly
as `harness gate` does.

The copy changes outcomes in the records themselves, through the fields the scoring reads, so real conversation
sizes, base rates, tags and rules all apply:
- noise (an equally good bot): for each outcome, units flip with probability `flip` in total, half each way
  (P(down) = flip/2 * units / successes, P(up) = flip/2 * units / failures), so every rate is unchanged in
  expectation. Outcomes: recognition of in-scope turns (the intent), rejection of out-of-scope turns (the intent),
  completion of conversations expected to be self-served (a form left open on the last turn, or closed and the
  fallback cleared), and the outcome of conversations expected to be escalated, by expected queue (handed to the
  wrong queue or to none, or to the right one; this is the noise the fraud must-pass rule sees). The realised
  discordance of each check is measured on every pair (harness.gate.power.measure) and reported;
- a true drop of `drop` points of one KPI: on top of 5% noise, successes of that KPI flip down with probability
  drop * units / successes (recognition: wrong intent; completion: a form left open; escalation accuracy: the
  wrong queue; out-of-scope rejection: answered as an in-scope intent).
`--conversations N` projects to an eval set of N conversations by resampling the baseline's conversations with
replacement (same mix, same turns), to see how many conversations the targets need.

Figures: the share of simulated pairs in which the whole gate, the KPI checks, the must-pass rules and each check
fail, with the Monte Carlo standard error sqrt(p(1-p)/sims), next to the prediction of harness.gate.power (exact
McNemar power, or the normal approximation of the paired bootstrap) at the realised discordance.
Targets (issue 11): whole-gate false alarms <= 5% and power >= 80% against a 5-point drop of recognition and of
self-service completion, at 5% flips. Writes bench/results/gate_power.md and gate_power.csv (or --out).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from harness.gate.decision import conversation_outcomes, decide
from harness.gate.power import Rule, exact_power, measure, normal_power, rule_decision
from harness.gate.spec import GateSpec, load_spec
from harness.records import read
from harness.scoring.metrics import REGISTRY, ScoringOptions, UndefinedMetricWarning, build_core
from harness.scoring.scored_run import ScoredRun

REPO_ROOT = Path(__file__).resolve().parents[1]

RESULTS = Path(__file__).resolve().parent / "results"
OPEN_FORM = "simulated_open_form"
WRONG_INTENTS = ("check_balance", "fees")
OTHER_QUEUES = ("general", "cards")
FLIP_RATES = (0.01, 0.02, 0.05, 0.10)
DROPS = (0.03, 0.05, 0.10)
POWER_FLIP = 0.05
TARGETS = ("recognition_rate", "self_service_completion")


def kpi_name(spec: GateSpec, base: str) -> str | None:
    """The specification's versioned name of KPI `base` (or the registry's newest version when it has none)."""
    named = [k for k in spec.kpis if k.split(".")[0] == base]
    if named:
        return named[0]
    versions = sorted(k for k in REGISTRY if k.split(".")[0] == base)
    return versions[-1] if versions else None


# --- the table's structure, computed once --------------------------------------------------------------------------


@dataclass
class Table:
    """The baseline's records and, per row and per conversation, what the simulation may change."""

    records: pd.DataFrame
    conv: np.ndarray
    """Conversation code per row (by sorted id, as build_core)."""
    n_conversations: int
    intent: np.ndarray
    fallback: np.ndarray
    active_form: np.ndarray
    handoff: np.ndarray
    in_scope: np.ndarray
    """Rows whose recognition counts: sent, bot-owned, labelled with an in-scope intent."""
    out_of_scope: np.ndarray
    expected_intent: np.ndarray
    last_sent: np.ndarray
    """Row position of each conversation's last sent turn (-1 when none)."""
    is_last: np.ndarray
    expected_self_served: np.ndarray
    expected_queue: np.ndarray
    resolution_stratum: np.ndarray
    """Per conversation: resolvable, expected self-served and checks passed (completion is balanced within it, so
    resolution is unchanged in expectation too)."""
    tags: list[set[str]] = field(default_factory=list)


def table(records: pd.DataFrame) -> Table:
    core = build_core(records)
    codes = core.turns["conv"].to_numpy()
    status = records["status"].astype(str).to_numpy()
    sent = (status != "not_sent") & (status != "silenced")
    expected = records["expected_intent"].astype(object).where(records["expected_intent"].notna(), None).to_numpy()
    out_of_scope = np.array([e == "out_of_scope" for e in expected]) & sent
    in_scope = np.array([e is not None and e != "out_of_scope" for e in expected]) & sent
    last_sent = np.full(core.n_conversations, -1)
    order = np.lexsort((records["turn_index"].to_numpy(), codes))
    for row in order:
        if sent[row]:
            last_sent[codes[row]] = row
    is_last = np.zeros(len(records), dtype=bool)
    is_last[last_sent[last_sent >= 0]] = True
    c = core.conversations
    expected_label = c["expected_label"].astype(object).to_numpy()
    checks_ok = c["checks_ok"].to_numpy(dtype=bool) if "checks_ok" in c else np.ones(len(c), dtype=bool)
    resolvable = c["resolvable"].fillna(False).to_numpy(dtype=bool)
    queue = c["expected_queue"].astype(object).where(c["expected_queue"].notna(), None).to_numpy()
    return Table(
        records=records,
        conv=codes,
        n_conversations=core.n_conversations,
        intent=records["intent"].astype(object).where(records["intent"].notna(), None).to_numpy(),
        fallback=records["fallback"].fillna(False).to_numpy(dtype=bool),
        active_form=records["active_form"].astype(object).where(records["active_form"].notna(), None).to_numpy(),
        handoff=records["handoff_queue"].astype(object).where(records["handoff_queue"].notna(), None).to_numpy(),
        in_scope=in_scope,
        out_of_scope=out_of_scope,
        expected_intent=expected,
        last_sent=last_sent,
        is_last=is_last,
        expected_self_served=expected_label == "self_served",
        expected_queue=queue,
        resolution_stratum=resolvable & (expected_label == "self_served") & checks_ok,
    )


def project(records: pd.DataFrame, conversations: int, seed: int) -> pd.DataFrame:
    """An eval set of `conversations` conversations drawn with replacement from `records`' (ids made unique)."""
    rng = np.random.default_rng(seed)
    ids = np.array(sorted(records["conversation_id"].unique()))
    drawn = rng.choice(ids, size=conversations, replace=True)
    groups = {cid: frame for cid, frame in records.groupby("conversation_id", sort=False)}
    parts = [groups[cid].assign(conversation_id=f"{cid}~{i:05d}") for i, cid in enumerate(drawn)]
    return pd.concat(parts, ignore_index=True)


# --- one simulated run --------------------------------------------------------------------------------------------


@dataclass
class State:
    """The fields a simulated run changes, and its outcomes, tracked as they change."""

    intent: np.ndarray
    fallback: np.ndarray
    active_form: np.ndarray
    handoff: np.ndarray

    def copy(self) -> State:
        return State(self.intent.copy(), self.fallback.copy(), self.active_form.copy(), self.handoff.copy())


def recognised(t: Table, s: State) -> np.ndarray:
    return t.in_scope & (s.intent == t.expected_intent) & ~s.fallback


def accepted(t: Table, s: State) -> np.ndarray:
    acts = np.array([i is not None and i not in ("out_of_scope", "nlu_fallback") for i in s.intent])
    no_handoff = np.array([h is None for h in s.handoff])
    return t.out_of_scope & acts & ~s.fallback & no_handoff


def conversation_facts(t: Table, s: State) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(completed, handed off, first handoff queue) per conversation, from the state (mirrors build_core for a
    table whose turns all answered: completed = no handoff, last sent turn no fallback and no open form)."""
    handed = np.zeros(t.n_conversations, dtype=bool)
    queue = np.full(t.n_conversations, None, dtype=object)
    rows = np.flatnonzero([h is not None for h in s.handoff])
    order = rows[np.lexsort((t.records["turn_index"].to_numpy()[rows], t.conv[rows]))]
    for row in order[::-1]:
        handed[t.conv[row]] = True
        queue[t.conv[row]] = s.handoff[row]
    last = t.last_sent
    has_last = last >= 0
    open_or_fallback = np.zeros(t.n_conversations, dtype=bool)
    open_or_fallback[has_last] = s.fallback[last[has_last]] | np.array(
        [f is not None for f in s.active_form[last[has_last]]]
    )
    completed = ~handed & has_last & ~open_or_fallback
    return completed, handed, queue


def flip(rng: np.random.Generator, candidates: np.ndarray, probability: float) -> np.ndarray:
    """Positions among `candidates` (a boolean mask) chosen independently with `probability` (capped at 1)."""
    return np.flatnonzero(candidates & (rng.random(candidates.size) < min(probability, 1.0)))


def noise(t: Table, base: State, rng: np.random.Generator, rate: float) -> State:
    """A run of an equally good bot: balanced flips of every outcome (see the module docstring)."""
    s = base.copy()
    # Completion, among conversations expected to be self-served, balanced within the resolution strata.
    completed, handed, _ = conversation_facts(t, s)
    errored = np.zeros(t.n_conversations, dtype=bool)
    can_change = t.expected_self_served & ~handed & ~errored & (t.last_sent >= 0)
    for stratum in (t.resolution_stratum, ~t.resolution_stratum):
        down = can_change & stratum & completed
        up = can_change & stratum & ~completed
        share = rate / 2 * int(stratum.sum())  # expected flips each way: the stratum's share of all conversations
        for conv in flip(rng, down, share / max(down.sum(), 1)):
            s.active_form[t.last_sent[conv]] = OPEN_FORM
        for conv in flip(rng, up, share / max(up.sum(), 1)):
            row = t.last_sent[conv]
            s.active_form[row] = None
            if s.fallback[row]:
                s.fallback[row] = False
                s.intent[row] = "nlu_fallback"  # still not recognised, still not an acceptance
    # Recognition of in-scope turns.
    hit = recognised(t, s)
    units = int(t.in_scope.sum())
    miss_ok = t.in_scope & ~hit & ~(s.fallback & t.is_last)
    for row in flip(rng, hit, rate / 2 * units / max(hit.sum(), 1)):
        s.intent[row] = WRONG_INTENTS[0] if t.expected_intent[row] != WRONG_INTENTS[0] else WRONG_INTENTS[1]
    for row in flip(rng, miss_ok, rate / 2 * units / max(miss_ok.sum(), 1)):
        s.intent[row], s.fallback[row] = t.expected_intent[row], False
    # Rejection of out-of-scope turns.
    acc = accepted(t, s)
    units = int(t.out_of_scope.sum())
    no_handoff = np.array([h is None for h in s.handoff])
    rejected_ok = t.out_of_scope & ~acc & no_handoff & ~(s.fallback & t.is_last)
    for row in flip(rng, rejected_ok, rate / 2 * units / max(rejected_ok.sum(), 1)):
        s.intent[row], s.fallback[row] = WRONG_INTENTS[0], False
    for row in flip(rng, acc, rate / 2 * units / max(acc.sum(), 1)):
        s.intent[row] = "out_of_scope"
    # Outcome of conversations expected to be escalated, per expected queue.
    _escalation_noise(t, s, rng, rate)
    return s


def _escalation_noise(t: Table, s: State, rng: np.random.Generator, rate: float) -> None:
    completed, handed, queue = conversation_facts(t, s)
    last = t.last_sent
    last_oos = np.zeros(t.n_conversations, dtype=bool)
    last_oos[last >= 0] = t.out_of_scope[last[last >= 0]]
    conv_oos_handoff = np.zeros(t.n_conversations, dtype=bool)
    for row in np.flatnonzero([h is not None for h in s.handoff]):
        conv_oos_handoff[t.conv[row]] |= t.out_of_scope[row]
    for expected_queue in sorted({q for q in t.expected_queue if q is not None}):
        group = (t.expected_queue == expected_queue) & ~t.expected_self_served
        passes = group & handed & (queue == expected_queue) & ~conv_oos_handoff
        wrong = group & handed & (queue != expected_queue) & ~conv_oos_handoff
        addable = group & ~handed & ~completed & (last >= 0) & ~last_oos
        fails = wrong | addable
        units = int(group.sum())
        if not units or not passes.any() or not fails.any():
            continue
        removal_share = addable.sum() / fails.sum()  # down-flips mirror the kinds of failure, for containment
        other = OTHER_QUEUES[0] if expected_queue != OTHER_QUEUES[0] else OTHER_QUEUES[1]
        for conv in flip(rng, passes, rate / 2 * units / passes.sum()):
            rows = np.flatnonzero((t.conv == conv) & np.array([h is not None for h in s.handoff]))
            if rng.random() < removal_share:
                s.handoff[rows] = None
                s.active_form[last[conv]] = OPEN_FORM
            else:
                s.handoff[rows] = other
        for conv in flip(rng, fails, rate / 2 * units / fails.sum()):
            if wrong[conv]:
                rows = np.flatnonzero((t.conv == conv) & np.array([h is not None for h in s.handoff]))
                s.handoff[rows] = expected_queue
            else:
                s.handoff[last[conv]] = expected_queue


def drop(t: Table, s: State, rng: np.random.Generator, kpi: str, size: float) -> None:
    """A true drop of `size` (a share) of KPI `kpi` (its base name), on top of `s`."""
    if kpi == "recognition_rate":
        hit = recognised(t, s)
        for row in flip(rng, hit, size * t.in_scope.sum() / max(hit.sum(), 1)):
            s.intent[row] = WRONG_INTENTS[0] if t.expected_intent[row] != WRONG_INTENTS[0] else WRONG_INTENTS[1]
    elif kpi == "self_service_completion":
        completed, _, _ = conversation_facts(t, s)
        for conv in flip(rng, completed, size * t.n_conversations / max(completed.sum(), 1)):
            s.active_form[t.last_sent[conv]] = OPEN_FORM
    elif kpi == "escalation_accuracy":
        _, handed, queue = conversation_facts(t, s)
        correct = handed & (queue == t.expected_queue)
        for conv in flip(rng, correct, size * handed.sum() / max(correct.sum(), 1)):
            rows = np.flatnonzero((t.conv == conv) & np.array([h is not None for h in s.handoff]))
            s.handoff[rows] = OTHER_QUEUES[0] if queue[conv] != OTHER_QUEUES[0] else OTHER_QUEUES[1]
    elif kpi == "oos_rejection":
        acc = accepted(t, s)
        no_handoff = np.array([h is None for h in s.handoff])
        rejected_ok = t.out_of_scope & ~acc & no_handoff & ~(s.fallback & t.is_last)
        for row in flip(rng, rejected_ok, size * t.out_of_scope.sum() / max(rejected_ok.sum(), 1)):
            s.intent[row], s.fallback[row] = WRONG_INTENTS[0], False
    else:
        raise ValueError(f"no drop mechanism for {kpi}")


def frame(t: Table, s: State) -> pd.DataFrame:
    out = t.records.copy()
    out["intent"] = pd.array(s.intent, dtype=t.records["intent"].dtype)
    out["fallback"] = pd.array(s.fallback, dtype=t.records["fallback"].dtype)
    out["active_form"] = pd.array(s.active_form, dtype=t.records["active_form"].dtype)
    out["handoff_queue"] = pd.array(s.handoff, dtype=t.records["handoff_queue"].dtype)
    return out


# --- the experiment ----------------------------------------------------------------------------------------------


@dataclass
class Tally:
    sims: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    discordance: dict[str, list[float]] = field(default_factory=dict)
    change: dict[str, list[float]] = field(default_factory=dict)

    def add(self, key: str, failed: bool) -> None:
        self.failed[key] = self.failed.get(key, 0) + int(failed)


def check_groups(spec: GateSpec) -> list[str]:
    return list(spec.kpis) + [f"must-pass: {r.name}" for r in spec.must_pass]


def simulate(
    spec: GateSpec,
    t: Table,
    base_run: ScoredRun,
    options: ScoringOptions,
    *,
    rate: float,
    kpi: str | None,
    size: float,
    sims: int,
    seed: int,
) -> Tally:
    rng = np.random.default_rng(seed)
    base_state = State(t.intent, t.fallback, t.active_form, t.handoff)
    tally = Tally()
    groups = check_groups(spec)
    watched = [k for k in spec.kpis if spec.kpis[k].max_regression is not None]
    # Outcome rules only: a pattern rule's outcome never changes here (the simulation does not touch bot text).
    base_outcomes = [
        (rule, outcomes)
        for rule in spec.must_pass
        if rule.require == "expected_outcome"
        and (outcomes := conversation_outcomes(rule, base_run)) is not None
        and len(outcomes)
    ]
    for _ in range(sims):
        state = noise(t, base_state, rng, rate)
        if kpi is not None:
            drop(t, state, rng, kpi, size)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            stamp = base_run.stamp | {"run_id": "sim"}
            run = ScoredRun.from_records(frame(t, state), options, stamp=stamp, source="simulated run")
            result = decide(spec, run, base_run)
        tally.sims += 1
        failed_names = {c.name for c in result.failures()}
        tally.add("whole gate", bool(failed_names))
        tally.add("KPI checks", any(c.group == "kpi" for c in result.failures()))
        tally.add("must-pass rules", any(c.group == "must_pass" for c in result.failures()))
        for g in groups:
            tally.add(g, any(name == g or name.startswith(g + ":") for name in failed_names))
        for name in watched:
            assert run.core is not None and base_run.core is not None
            noise_seen = measure(name, run.core, base_run.core, design_effect=False)
            if noise_seen is not None and noise_seen.discordance is not None:
                tally.discordance.setdefault(name, []).append(noise_seen.discordance)
            now, before = run.value(name)[0], base_run.value(name)[0]
            if now is not None and before is not None:
                tally.change.setdefault(name, []).append(before - now)
        for rule, outcomes_before in base_outcomes:
            outcomes_now = conversation_outcomes(rule, run)
            if outcomes_now is not None and len(outcomes_now):
                changed = outcomes_now != outcomes_before.reindex(outcomes_now.index)
                tally.discordance.setdefault(f"must-pass: {rule.name}", []).append(float(changed.mean()))
    return tally


def predicted(spec: GateSpec, name: str, base_run: ScoredRun, discordance: float, size: float) -> float | None:
    """harness.gate.power's failure probability of check `name` at the realised noise and a true drop `size`."""
    assert base_run.core is not None
    if name.startswith("must-pass: "):
        rule = next(r for r in spec.must_pass if f"must-pass: {r.name}" == name)
        outcomes = conversation_outcomes(rule, base_run)
        if outcomes is None or not len(outcomes) or rule.require == "never_matches":
            return None
        return exact_power(len(outcomes), discordance, size, rule_decision(rule, spec))
    check = spec.kpis[name]
    noise_shape = measure(name, base_run.core, None)
    if check.max_regression is None or noise_shape is None or noise_shape.spread is not None:
        return None
    alpha = None if spec.policy.comparison == "point" else (check.alpha or spec.policy.alpha)
    if noise_shape.exact:
        return exact_power(noise_shape.units, discordance, size, Rule(check.max_regression, alpha))
    # Simulated turn flips are independent: design effect 1.
    return normal_power(noise_shape.units, discordance, size, allowance=check.max_regression, alpha=alpha)


def run_scenarios(
    spec: GateSpec,
    records: pd.DataFrame,
    card: dict[str, object],
    scenarios: list[tuple[str, float, str | None, float]],
    *,
    sims: int,
    replicates: int,
    seed: int,
) -> tuple[list[dict[str, object]], int]:
    """Every scenario (label, flip rate, KPI dropped or None, drop) on `records`: one CSV row per check."""
    scoring = card.get("config", {}).get("scoring", {}) if isinstance(card.get("config"), dict) else {}
    options = ScoringOptions(bootstrap_replicates=replicates, seed=scoring.get("seed", 20261122))  # type: ignore[union-attr]
    stamp = {"run_id": "baseline", "eval_set_hash": card.get("eval_set_hash"), "bot_model": card.get("bot_model")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        base_run = ScoredRun.from_records(records, options, stamp=stamp, source="baseline")
    t = table(records)
    rows: list[dict[str, object]] = []
    groups = ["whole gate", "KPI checks", "must-pass rules", *check_groups(spec)]
    for number, (label, rate, kpi, size) in enumerate(scenarios):
        tick = time.perf_counter()
        tally = simulate(spec, t, base_run, options, rate=rate, kpi=kpi, size=size, sims=sims, seed=seed + number)
        target = kpi_name(spec, kpi) if kpi else None
        for g in groups:
            p = tally.failed.get(g, 0) / tally.sims
            disc = tally.discordance.get(g)
            mean_disc = float(np.mean(disc)) if disc else None
            pred = None
            if mean_disc is not None and (g in spec.kpis or g.startswith("must-pass: ")):
                # The realised discordance includes the drop's own one-way flips: the model's noise excludes them.
                own_drop = size if g == target else 0.0
                pred = predicted(spec, g, base_run, max(mean_disc - own_drop, 0.0), own_drop)
            change = tally.change.get(g)
            rows.append(
                {
                    "scenario": label,
                    "flip_rate": rate,
                    "kpi_dropped": target or "",
                    "drop": size,
                    "conversations": t.n_conversations,
                    "sims": tally.sims,
                    "check": g,
                    "failure_rate": round(p, 4),
                    "mc_se": round(float(np.sqrt(p * (1 - p) / tally.sims)), 4),
                    "predicted": None if pred is None else round(pred, 4),
                    "mean_discordance": None if mean_disc is None else round(mean_disc, 4),
                    "mean_observed_drop": None if not change else round(float(np.mean(change)), 4),
                }
            )
        print(f"{t.n_conversations} conversations, {label} flip={rate} drop={size}: {time.perf_counter() - tick:.0f} s")
    return rows, t.n_conversations


def main() -> None:
    warnings.simplefilter("ignore", UndefinedMetricWarning)  # KPIs are computed when the gate reads them
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sims", type=int, default=300, help="simulated pairs per scenario")
    parser.add_argument("--conversations", type=int, default=None, help="project to N conversations (resampled)")
    parser.add_argument(
        "--projections",
        default="300,400",
        help="also project to these eval sizes (resampled), for false alarms at 5%% flips and 5-point drops of "
        "the target KPIs only ('' for none)",
    )
    parser.add_argument("--projection-sims", type=int, default=200, help="simulated pairs per projected scenario")
    parser.add_argument("--spec", type=Path, default=REPO_ROOT / "experiments" / "gate.yml")
    parser.add_argument("--baseline", type=Path, default=REPO_ROOT / "experiments" / "baseline")
    parser.add_argument("--flip-rates", default=",".join(map(str, FLIP_RATES)))
    parser.add_argument("--drops", default=",".join(map(str, DROPS)))
    parser.add_argument("--kpis", default="recognition_rate,self_service_completion,escalation_accuracy,oos_rejection")
    parser.add_argument("--replicates", type=int, default=1000, help="bootstrap replicates of the paired tests")
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--out", type=Path, default=RESULTS / "gate_power", help="output stem (.md and .csv)")
    args = parser.parse_args()

    started = time.perf_counter()
    spec = load_spec(args.spec)
    records = read(args.baseline / "turns.parquet")
    card = json.loads((args.baseline / "scorecard.json").read_text(encoding="utf-8"))
    source = f"{args.baseline.relative_to(REPO_ROOT) if args.baseline.is_relative_to(REPO_ROOT) else args.baseline}"
    if args.conversations:
        records = project(records, args.conversations, args.seed)
    rates = [float(x) for x in args.flip_rates.split(",") if x]
    drops = [float(x) for x in args.drops.split(",") if x]
    kpis = [k for k in args.kpis.split(",") if k]
    scenarios: list[tuple[str, float, str | None, float]] = [("unchanged bot", r, None, 0.0) for r in rates]
    scenarios += [(f"{k} drop", POWER_FLIP, k, d) for k in kpis for d in drops]
    rows, n = run_scenarios(spec, records, card, scenarios, sims=args.sims, replicates=args.replicates, seed=args.seed)
    projected: list[dict[str, object]] = []
    targets = [("unchanged bot", POWER_FLIP, None, 0.0)] + [(f"{k} drop", POWER_FLIP, k, 0.05) for k in TARGETS]
    for size in [int(x) for x in args.projections.split(",") if x]:
        bigger = project(read(args.baseline / "turns.parquet"), size, args.seed + size)
        more, _ = run_scenarios(
            spec, bigger, card, targets, sims=args.projection_sims, replicates=args.replicates, seed=args.seed + size
        )
        projected += more
    elapsed = time.perf_counter() - started
    write_results(args, rows, projected, spec, source, n, elapsed)


def write_results(
    args: argparse.Namespace,
    rows: list[dict[str, object]],
    projected: list[dict[str, object]],
    spec: GateSpec,
    source: str,
    n: int,
    elapsed: float,
) -> None:
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.with_suffix(".csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows + projected)
    md = [
        "# Release gate: false alarms and power, simulated with the gate's own code",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {platform.machine()} (Python {platform.python_version()}), "
        f"{elapsed / 60:.1f} min: `.venv/bin/python bench/gate_power.py --sims {args.sims}"
        + (f" --conversations {args.conversations}" if args.conversations else "")
        + (f" --projections {args.projections} --projection-sims {args.projection_sims}" if args.projections else "")
        + "`",
        "",
        f"Turn table: `{source}/turns.parquet`"
        + (f", projected to {n} conversations (resampled)" if args.conversations else f" ({n} conversations)")
        + f"; specification `{args.spec.relative_to(REPO_ROOT) if args.spec.is_relative_to(REPO_ROOT) else args.spec}`"
        f" (policy {spec.policy.comparison}, alpha {spec.policy.alpha}); {args.sims} simulated pairs per scenario, "
        f"{args.replicates} bootstrap replicates. Rates are the share of pairs in which the check failed "
        "(± Monte Carlo standard error); `predicted` is harness.gate.power at the realised discordance.",
        "",
        "## False alarms: an equally good bot (balanced flips)",
        "",
    ]
    false_alarm = [r for r in rows if r["scenario"] == "unchanged bot"]
    rates = sorted({float(r["flip_rate"]) for r in false_alarm})  # type: ignore[arg-type]
    checks = list(dict.fromkeys(str(r["check"]) for r in false_alarm))
    md += ["| check | " + " | ".join(f"{r:.0%} flips" for r in rates) + " |", "|---" * (len(rates) + 1) + "|"]
    for check in checks:
        cells = []
        for rate in rates:
            (row,) = [r for r in false_alarm if r["check"] == check and r["flip_rate"] == rate]
            cells.append(_cell(row))
        md.append(f"| {check} | " + " | ".join(cells) + " |")
    md += ["", f"## Power: a true drop on top of {POWER_FLIP:.0%} flips", ""]
    power_rows = [r for r in rows if r["scenario"] != "unchanged bot"]
    dropped = list(dict.fromkeys(str(r["kpi_dropped"]) for r in power_rows))
    sizes = sorted({float(r["drop"]) for r in power_rows})  # type: ignore[arg-type]
    md += [
        "| KPI dropped | its check: "
        + " | ".join(f"{d * 100:.0f}-point drop" for d in sizes)
        + " | whole gate: "
        + " | ".join(f"{d * 100:.0f} points" for d in sizes)
        + " |",
        "|---" * (2 * len(sizes) + 1) + "|",
    ]
    for kpi in dropped:
        own = [_cell(_one(power_rows, kpi, d, kpi)) for d in sizes]
        whole = [_cell(_one(power_rows, kpi, d, "whole gate"), predicted=False) for d in sizes]
        md.append(f"| {kpi} | " + " | ".join(own) + " | " + " | ".join(whole) + " |")
    md += ["", "Observed mean drop of the dropped KPI (checks the simulation's mechanism):", ""]
    for kpi in dropped:
        observed = [_one(power_rows, kpi, d, kpi)["mean_observed_drop"] for d in sizes]
        md.append(f"- {kpi}: " + ", ".join(f"{d:.2f} -> {o}" for d, o in zip(sizes, observed, strict=True)))
    target_rows = {
        "false alarms, whole gate, 5% flips": _cell(
            next(r for r in false_alarm if r["check"] == "whole gate" and r["flip_rate"] == POWER_FLIP), predicted=False
        )
        if POWER_FLIP in rates
        else "not run",
    }
    for base in TARGETS:
        name = kpi_name(spec, base)
        if name in dropped and 0.05 in sizes:
            target_rows[f"power, {name}, 5-point drop"] = _cell(_one(power_rows, str(name), 0.05, str(name)))
    md += ["", f"## Targets (issue 11) at {n} conversations: false alarms <= 5%, power >= 80% at 5% flips", ""]
    md += [f"- {k}: {v}" for k, v in target_rows.items()]
    if projected:
        md += [
            "",
            "## Projected eval sizes (the baseline's conversations resampled, same mix)",
            "",
            f"{args.projection_sims} simulated pairs per cell, at {POWER_FLIP:.0%} flips.",
            "",
            "| conversations | whole gate false alarms | "
            + " | ".join(f"{kpi_name(spec, k)}, 5-point drop" for k in TARGETS)
            + " |",
            "|---" * (len(TARGETS) + 2) + "|",
        ]
        for size in sorted({int(r["conversations"]) for r in projected}):  # type: ignore[call-overload]
            at = [r for r in projected if r["conversations"] == size]
            alarm = next(r for r in at if r["scenario"] == "unchanged bot" and r["check"] == "whole gate")
            cells = [_cell(alarm, predicted=False)]
            for k in TARGETS:
                name = str(kpi_name(spec, k))
                cells.append(_cell(next(r for r in at if r["kpi_dropped"] == name and r["check"] == name)))
            md.append(f"| {size} | " + " | ".join(cells) + " |")
    md += ["", f"Raw figures: [{out.with_suffix('.csv').name}]({out.with_suffix('.csv').name}).", ""]
    out.with_suffix(".md").write_text("\n".join(md), encoding="utf-8")
    print("\n".join(md))


def _one(rows: list[dict[str, object]], kpi: str, size: float, check: str) -> dict[str, object]:
    (row,) = [r for r in rows if r["kpi_dropped"] == kpi and r["drop"] == size and r["check"] == check]
    return row


def _cell(row: dict[str, object], *, predicted: bool = True) -> str:
    text = f"{float(row['failure_rate']):.1%} ± {float(row['mc_se']):.1%}"  # type: ignore[arg-type]
    if predicted and row.get("predicted") is not None:
        text += f" (pred. {float(row['predicted']):.1%})"  # type: ignore[arg-type]
    return text


if __name__ == "__main__":
    main()
