"""A scored run: the judged turn table, the scoring core built once from it, every KPI and what the run measured;
the one thing the report, MLflow, the gate, the review, the threshold sweep, mining and the pytest plugin read.

A `ScoredRun` is made in one of four ways:

| constructor                    | from                                  | used by                                    |
|--------------------------------|---------------------------------------|--------------------------------------------|
| `ScoredRun.score(records, ...)`| a replayed table and its run.json     | `harness run`: checks judged, run stamped  |
| `ScoredRun.rescore(folder)`    | run.json + turns.parquet              | `harness rescore`: changed checks apply    |
| `ScoredRun.load(folder)`       | scorecard.json (+ turns.parquet)      | the gate, review, sweep, mining, pytest    |
| `ScoredRun.from_records(table)`| a record table as it stands           | tests; a folder holding turns.parquet only |

KPIs are computed from the core the first time each is read (`kpis` maps every registered version, superseded
ones included, as a gate specification may name one); `scorecard` shows the current versions. A KPI whose inputs
the run's bot kind does not observe is undefined in both, whichever way the run was made: `score` reads what the
bot observed from run.json and stamps it (`bot_observes`), `load` reads it back from that stamp.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import InputError
from harness.project.config import RunConfig
from harness.records import read
from harness.records.run_folder import RunFolder
from harness.scoring.checks import judge_checks
from harness.scoring.metrics import REGISTRY, MetricResult, ScoringCore, ScoringOptions, build_core
from harness.scoring.scorecard import KPI_DEFINITIONS, STORED_APART, Scorecard, build_scorecard

DEFAULT_KIND = "reference.v1"
"""The bot kind of runs recorded before bot kinds (the reference channel)."""


class Kpis(Mapping[str, MetricResult]):
    """Every registered KPI version on one scoring core, each computed the first time it is read (a gate reads
    the few its specification names, the scorecard the current versions) and kept."""

    def __init__(self, core: ScoringCore) -> None:
        self._core = core
        self._computed: dict[str, MetricResult] = {}

    def __getitem__(self, name: str) -> MetricResult:
        if name not in self._computed:
            if name not in REGISTRY:
                raise KeyError(name)
            self._computed[name] = REGISTRY[name](self._core)
        return self._computed[name]

    def __iter__(self) -> Iterator[str]:
        return iter(REGISTRY)

    def __len__(self) -> int:
        return len(REGISTRY)


@dataclass(frozen=True, eq=False)
class ScoredRun:
    """A run (or a baseline) scored: see the module docstring for how one is made."""

    records: pd.DataFrame | None
    """The turn table with reply checks judged (`harness.records.COLUMNS`); None for a baseline given as
    scorecard.json alone."""
    core: ScoringCore | None
    """The scoring core, built once from `records` (turn facts, conversations, bootstrap); None when `records` is."""
    kpis: Mapping[str, MetricResult]
    """Versioned KPI name -> result, every registered version (superseded ones too, computed when read); for a
    scorecard-only baseline, the KPIs its scorecard.json holds."""
    stamp: dict[str, Any]
    """What was measured: run id, eval-set hash and version, bot model, kind and what it observes, harness version,
    git SHA, config (scorecard.json's keys other than the KPIs and outcome breakdowns)."""
    source: str
    """Where the run came from, for messages: its folder, or a description."""
    saved_scorecard: Scorecard | None = field(default=None, repr=False)
    """The scorecard as written, for a baseline given as scorecard.json alone (then `scorecard` is it)."""

    @cached_property
    def scorecard(self) -> Scorecard:
        """The scorecard: the current version of every KPI, the outcome matrix and escalation errors, the stamp."""
        if self.core is None:
            assert self.saved_scorecard is not None, "a ScoredRun has a core or a saved scorecard"
            return self.saved_scorecard
        current = [self.kpis[name] for name, spec in REGISTRY.items() if spec.superseded_by is None]
        return build_scorecard(self.core, self.stamp, current)

    def value(self, name: str) -> tuple[float | None, int]:
        """(value, support) of KPI `name`; (None, 0) when the run does not hold it."""
        kpi = self.kpis.get(name)
        return (None, 0) if kpi is None else (kpi.value, kpi.n)

    @classmethod
    def from_records(
        cls,
        records: pd.DataFrame,
        options: ScoringOptions | None = None,
        *,
        stamp: Mapping[str, Any] | None = None,
        source: str = "a record table",
        observed: frozenset[str] | None = None,
    ) -> ScoredRun:
        """`records` scored as they stand (reply checks as the table judged them), the core built once with
        `options` (default: `ScoringOptions()`); `observed` names what the bot observed (None: everything)."""
        core = build_core(records, options or ScoringOptions(), observed)
        return cls(records, core, Kpis(core), dict(stamp or {}), source)

    @classmethod
    def score(
        cls,
        records: pd.DataFrame,
        meta: Mapping[str, Any],
        scoring: RunConfig | ScoringOptions,
        *,
        source: str | None = None,
    ) -> ScoredRun:
        """A replayed run scored: reply checks judged from the table (`harness.scoring.checks`), KPIs whose inputs the
        run's bot kind does not observe (run.json `bot.observes`) undefined, the stamp taken from run.json `meta`.

        `scoring` is the run's configuration (its `scoring` section) or the options themselves. `source` defaults
        to the run's folder under the configured output folder. Raises InputError when the turns were answered by
        different bot models."""
        options = scoring if isinstance(scoring, ScoringOptions) else options_of(scoring)
        observed = observed_of(meta)
        stamp = {
            **{k: meta[k] for k in ("run_id", "eval_set_hash", "eval_set_version", "harness_version", "git_sha")},
            "bot_model": bot_model(records),
            "bot_kind": bot_kind(meta),
            "bot_observes": sorted(observed) if observed is not None else None,
            "definitions": KPI_DEFINITIONS,
            "config": meta["config"],
        }
        output_dir = (meta.get("config") or {}).get("output_dir")
        where = source or (str(Path(output_dir) / meta["run_id"]) if output_dir else f"run {meta['run_id']}")
        return cls.from_records(judge_checks(records), options, stamp=stamp, source=where, observed=observed)

    @classmethod
    def rescore(cls, folder: RunFolder | Path) -> ScoredRun:
        """A finished run scored again from its run.json and turns.parquet, as `harness run` scores (checks judged
        afresh, the run's own configuration), without the bot. InputError when either file is missing."""
        folder = _folder(folder)
        meta = folder.meta()
        return cls.score(read(folder.turns), meta, RunConfig.model_validate(meta["config"]), source=str(folder.path))

    @classmethod
    def load(
        cls, folder: RunFolder | Path, options: ScoringOptions | None = None, *, need_turns: bool = True
    ) -> ScoredRun:
        """A run folder or a baseline folder as its scorecard.json stamped it, scored from its turns.parquet with
        `options` (by default the run's own); what the bot observed comes from the stamp (`bot_observes`), so
        the KPIs it could not measure stay undefined.

        With `need_turns` False a folder holding scorecard.json alone is accepted: the result has no records and
        no core, and its KPIs are the scorecard's (no paired tests or must-pass checks on it). InputError when
        scorecard.json cannot be read, or turns.parquet is missing and needed."""
        folder = _folder(folder)
        try:
            card = json.loads(folder.scorecard.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(
                "cannot read a run", [f"{folder.scorecard}: {exc}; is {folder.path} a run folder?"]
            ) from None
        if not folder.turns.exists():
            if need_turns:
                raise InputError(
                    "cannot read a run", [f"{folder.turns}: missing; scoring the run needs its turn records"]
                )
            return cls.from_scorecard(card, str(folder.path))
        scoring = (card.get("config") or {}).get("scoring") or {}
        options = options or ScoringOptions(
            scoring.get("bootstrap_replicates", 1000), scoring.get("seed", 20261122), scoring.get("confidence", 0.95)
        )
        observed = frozenset(card["bot_observes"]) if card.get("bot_observes") is not None else None
        stamp = {k: v for k, v in card.items() if k not in STORED_APART}
        return cls.from_records(read(folder.turns), options, stamp=stamp, source=str(folder.path), observed=observed)

    @classmethod
    def from_scorecard(cls, card: dict[str, Any], source: str) -> ScoredRun:
        """A baseline known only by its scorecard.json content `card`: no records, no core."""
        saved = Scorecard.from_dict(card)
        return cls(None, None, {k.name: k for k in saved.kpis}, saved.stamp, source, saved)


def _folder(folder: RunFolder | Path) -> RunFolder:
    return folder if isinstance(folder, RunFolder) else RunFolder(Path(folder))


def options_of(config: RunConfig) -> ScoringOptions:
    """The scoring options of a run configuration."""
    s = config.scoring
    return ScoringOptions(s.bootstrap_replicates, s.seed, s.confidence)


def _last_bot(meta: Mapping[str, Any]) -> Mapping[str, Any]:
    """run.json's bot of the run's last sitting (its start, or the latest resume); {} in runs recorded before."""
    sittings = [meta.get("bot")] + [resume.get("bot") for resume in meta.get("resumes", [])]
    return next((bot for bot in reversed(sittings) if bot), {})


def bot_kind(meta: Mapping[str, Any]) -> str:
    """The bot kind (versioned) of the run's last sitting, from run.json."""
    return str(_last_bot(meta).get("kind") or DEFAULT_KIND)


def observed_of(meta: Mapping[str, Any]) -> frozenset[str] | None:
    """What the run's bot observed, from run.json (the kind of its last sitting); None for runs recorded before
    bot kinds (the reference channel, which observes everything)."""
    observes = _last_bot(meta).get("observes")
    return frozenset(observes) if observes is not None else None


def bot_model(records: pd.DataFrame) -> str:
    """The one bot model that answered; refuses a run whose turns were answered by different models."""
    models = sorted(set(records["model"].dropna()))
    if len(models) > 1:
        raise InputError(
            "the run mixes bot models",
            [f"turns were answered by {', '.join(models)}; a resumed run must talk to the same bot model"],
        )
    return models[0] if models else "unknown"
