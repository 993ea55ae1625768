"""QA review of production dialogs: a window of the production store as a run-like folder, and the reviewed KPIs of
that window's population estimated from its random sample.

Materialising. `materialise` reads the window's turns (`ProductionStore.read`) and writes
`runs/production-<first>..<last>-<hash8>/` (see `RunFolder`): `turns.parquet` (the canonical columns, `run_id` set to
the folder's name, plus the production columns such as `sent_at`, so a dialog shows when it happened) and
`run.json` whose `stamp` says `{"source": "production", "store", "window", "conversations", "first_day",
"last_day"}`. `<first>..<last>` are the first and last stored days of the window; `<hash8>` is the first 8 hex digits
of the SHA-256 of the window's sorted conversation ids, so the same window with the same conversations is the same
folder (loading it twice does nothing) and a window that gained conversations since (a later import) is a new one.
The folder is then loaded like a run (`dialogs.load_run`).

Overlapping windows. A production conversation is reviewed once: when a window is loaded, conversations already
selected for review by another loaded production window are not stored again (the load reports how many). The
random sample of production is drawn on (seed, conversation) alone, not on the window, so two windows always agree
whether a conversation is in the sample; overlapping windows must use the same sample settings (InputError
otherwise), or the union would no longer be a simple random sample.

Reviewed KPIs of a window (`window_kpis`). The random sample draws each of the window's N conversations
independently (a hash below the rate; flag-blind); given how many it drew, every set of that size is equally likely,
so its reviewed dialogs (n of them, wherever they are stored: this window or an overlapping one) are analysed as a
simple random sample without replacement of n from N. Each reviewed KPI is estimated for the window's population
by the sample proportion, with a 95% Wilson score interval on the effective sample size under the finite-population
correction, n_eff = n (N - 1) / (N - n): the variance of a proportion of such a sample is
(N - n) / (N - 1) * P(1 - P) / n (Cochran, Sampling Techniques, 3rd ed. 1977, chapter 3). A KPI over a domain (the
handed-off dialogs, the dialogs whose resolution was rated) uses the domain's sample n_d and its estimated size
N_d = N n_d / n in the same formula (Cochran 1977, estimation for subpopulations, section 2.13). A census (every
conversation reviewed) gives the value itself as its interval. Reviewing only part of the sample keeps it random
only if which part does not depend on the dialogs (the app says so). The stratified estimator (flagged dialogs as a
census stratum, the rest sampled) is not implemented: it needs every flagged dialog reviewed, which the queue does
not guarantee.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session, defer, selectinload

from harness.errors import InputError
from harness.records import COLUMNS, write
from harness.records.production import ProductionStore, Window
from harness.records.run_folder import RunFolder
from harness.review.config import Sample, Scorecard
from harness.review.reports import verdicts_of
from harness.review.reviewed_kpis import ReviewedKpi, reviewed_kpis
from harness.review.store import Dialog, Review, Run

SOURCE = "production"
PREFIX = "production-"
SAMPLE_KEY = "production"
"""What the production sample hashes with the seed and the conversation id in place of a run id (see the module
docstring: every window agrees on the sample)."""
Z95 = 1.959963984540054


def run_id_of(first: date, last: date, conversation_ids: Collection[str]) -> str:
    """`production-<first>..<last>-<hash8>`: 8 hex digits of the SHA-256 of the sorted conversation ids."""
    digest = hashlib.sha256("\n".join(sorted(conversation_ids)).encode()).hexdigest()[:8]
    return f"{PREFIX}{first}..{last}-{digest}"


def materialise(store: ProductionStore, window: Window, runs: Path) -> RunFolder:
    """The window's conversations as a run folder under `runs` (written unless it exists already: same name, same
    conversations). InputError when the window holds no conversation."""
    frame = store.read(window)
    if frame.empty:
        raise InputError(
            "no production conversations to review",
            [f"{store.path}: nothing stored for the window {_described(window)}; import with `harness logs import`"],
        )
    days = sorted(date.fromisoformat(str(d)) for d in frame["day"].unique())
    ids = set(frame["conversation_id"].astype(str))
    run_id = run_id_of(days[0], days[-1], ids)
    folder = RunFolder(runs / run_id)
    if folder.run_file.is_file() and folder.turns.is_file():
        return folder
    folder.path.mkdir(parents=True, exist_ok=True)
    frame = frame.assign(run_id=run_id).sort_values(["conversation_id", "turn_index"], kind="stable")
    ordered = [*COLUMNS, *[c for c in frame.columns if c not in COLUMNS]]
    write(frame[ordered].reset_index(drop=True), folder.turns)
    folder.write_meta(
        {
            "run_id": run_id,
            "stamp": {
                "source": SOURCE,
                "store": str(store.path),
                "window": str(window),
                "conversations": len(ids),
                "first_day": str(days[0]),
                "last_day": str(days[-1]),
            },
        }
    )
    return folder


def _described(window: Window) -> str:
    return str(window) if window != Window() else ".. (every day)"


def stamp_of(run_dir: Path) -> dict[str, Any] | None:
    """The production stamp of a run folder's run.json; None for any other run."""
    folder = RunFolder(run_dir)
    if not folder.run_file.is_file():
        return None
    stamp = folder.meta().get("stamp")
    return stamp if isinstance(stamp, dict) and stamp.get("source") == SOURCE else None


def production_of(run: Run) -> dict[str, Any] | None:
    """The production stamp a loaded run was stored with (`Run.selection["production"]`); None for a replay."""
    stamp = run.selection.get(SOURCE)
    return stamp if isinstance(stamp, dict) else None


def provenance_of(run: Run) -> str:
    """Where a dialog came from, for exports: the run id, or for production `production <window> of <store>`."""
    stamp = production_of(run)
    if stamp is None:
        return run.run_id
    return f"production {stamp['first_day']}..{stamp['last_day']} of {stamp['store']}"


def held_elsewhere(session: Session, conversation_ids: Collection[str], sample: Sample) -> set[str]:
    """Which of these conversations a loaded production window already holds for review. InputError when such a
    window drew its sample with other settings (the union of the samples would not be one random sample)."""
    held: set[str] = set()
    wanted = sorted(conversation_ids)
    for start in range(0, len(wanted), 500):
        rows = session.execute(
            select(Dialog.conversation_id, Run.run_id, Run.selection)
            .join(Run)
            .where(Run.run_id.like(f"{PREFIX}%"), Dialog.conversation_id.in_(wanted[start : start + 500]))
        ).all()
        for conversation_id, run_id, selection in rows:
            if selection.get("sample") != sample.model_dump():
                raise InputError(
                    "overlapping production windows sampled differently",
                    [
                        f"{conversation_id} is under review in {run_id}, sampled with {selection.get('sample')}; "
                        f"load this window with the same sample settings ({sample.model_dump()} now)"
                    ],
                )
            held.add(str(conversation_id))
    return held


# ------------------------------------------------------------------------------------------- population estimates


def wilson_fpc(hits: int, n: int, population: float, z: float = Z95) -> tuple[float, float] | None:
    """95% Wilson score interval of a proportion estimated from a simple random sample of `n` out of `population`
    units drawn without replacement: Wilson's interval at the observed proportion p = hits / n on the effective
    sample size n_eff = n (N - 1) / (N - n) (Cochran 1977, chapter 3), i.e.
    (p + z^2 / 2n_eff) / (1 + z^2 / n_eff) +- z / (1 + z^2 / n_eff) * sqrt(p (1 - p) / n_eff + z^2 / 4n_eff^2).
    `population` may be an estimated domain size (fractional). None when n is 0; (p, p) when n >= N (a census).
    ValueError when hits is not within 0..n."""
    if hits > n or hits < 0:
        raise ValueError(f"{hits} hits out of {n}")
    if n == 0:
        return None
    p = hits / n
    if population - n < 1e-9:
        return p, p
    n_eff = n * (population - 1) / (population - n)
    centre = (p + z**2 / (2 * n_eff)) / (1 + z**2 / n_eff)
    half = z / (1 + z**2 / n_eff) * math.sqrt(p * (1 - p) / n_eff + z**2 / (4 * n_eff**2))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class PopulationKpi:
    """A reviewed KPI of a production window's population: `hits` of the `n` reviewed sampled dialogs in its domain,
    the domain's estimated size `domain` (N n_d / n), and the Wilson interval with finite-population correction."""

    name: str
    hits: int
    n: int
    domain: float
    value: float | None
    interval: tuple[float, float] | None


@dataclass(frozen=True)
class WindowKpis:
    """The reviewed KPIs of one production window: its stamp, population N, sample and review coverage."""

    run_id: str
    store: str
    first_day: str
    last_day: str
    conversations: int
    sampled: int
    reviewed: int
    kpis: tuple[PopulationKpi, ...]

    @property
    def label(self) -> str:
        return f"production {self.first_day}..{self.last_day} of {self.store} (N = {self.conversations})"


def population_ids(run: Run) -> set[str]:
    """The conversation ids of a production run's window, from its materialised folder (`Run.source`). InputError
    when the folder is gone."""
    turns = RunFolder(Path(run.source)).turns
    if not turns.is_file():
        raise InputError(
            "the production window's folder is gone",
            [f"{turns}: missing; materialise it again with `harness review load --production --window ...`"],
        )
    return set(pd.read_parquet(turns, columns=["conversation_id"])["conversation_id"].astype(str))


def window_kpis(
    session: Session, scorecard: Scorecard, run_id: str, leave_out: Collection[int] = frozenset()
) -> WindowKpis | None:
    """The reviewed KPIs of production run `run_id` for its window's population (see the module docstring); None
    when that run is not a production window. Dialogs in `leave_out` (open calibrations) count neither as reviewed
    nor as sampled."""
    run = session.scalar(select(Run).where(Run.run_id == run_id))
    stamp = None if run is None else production_of(run)
    if run is None or stamp is None:
        return None
    ids = population_ids(run)
    query = (
        select(Dialog)
        .options(defer(Dialog.turns), selectinload(Dialog.reviews).selectinload(Review.analyst))
        .join(Run)
        .where(Run.run_id.like(f"{PREFIX}%"), Dialog.sampled.is_(True))
    )
    if leave_out:
        query = query.where(Dialog.id.not_in(list(leave_out)))
    sampled = [d for d in session.scalars(query) if d.conversation_id in ids]
    unique = {d.conversation_id: d for d in sorted(sampled, key=lambda d: d.id)}
    reviewed = [d for d in unique.values() if d.reviews]
    table = reviewed_kpis(verdicts_of(reviewed, scorecard), scorecard)
    population = run.conversations
    n = len(reviewed)
    kpis = []
    for kpi in table:
        if kpi.population != "sample":
            continue
        kpis.append(_estimate(kpi, n, population))
    return WindowKpis(
        run_id=run.run_id,
        store=str(stamp["store"]),
        first_day=str(stamp["first_day"]),
        last_day=str(stamp["last_day"]),
        conversations=population,
        sampled=len(unique),
        reviewed=n,
        kpis=tuple(kpis),
    )


def _estimate(kpi: ReviewedKpi, n: int, population: int) -> PopulationKpi:
    """One sample KPI as a population estimate: the domain's estimated size N_d = N n_d / n (N_d >= n_d) in the
    finite-population correction."""
    hits, n_d = kpi.reviewed.hits, kpi.reviewed.n
    domain = population * n_d / n if n else 0.0
    return PopulationKpi(kpi.name, hits, n_d, domain, hits / n_d if n_d else None, wilson_fpc(hits, n_d, domain))
