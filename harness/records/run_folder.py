"""The run folder (`runs/<run id>/`): the one place that knows its files and how to find the latest run.

| file             | written                          | holds                                                     |
|------------------|----------------------------------|-----------------------------------------------------------|
| `run.json`       | at the start, on every resume    | what is measured: eval-set hash, config, bot (kind, URL,  |
|                  |                                  | model, what it observes), resumes                         |
| `journal.jsonl`  | as conversations start and end   | attempts and finished conversations' rows (resume)       |
| `turns.parquet`  | at the end                       | the turn table, reply checks judged                       |
| `scorecard.json` | at the end                       | KPIs with intervals, outcome matrix, the run's stamp     |
| `report.html`    | at the end                       | the human-readable report                                 |

A baseline folder (`experiments/baseline/`) holds `scorecard.json` and `turns.parquet` only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import InputError

RUN_FILE = "run.json"
JOURNAL = "journal.jsonl"
TURNS = "turns.parquet"
SCORECARD = "scorecard.json"
REPORT = "report.html"


@dataclass(frozen=True)
class RunFolder:
    """One run's folder (see the module docstring for its files)."""

    path: Path

    @property
    def run_file(self) -> Path:
        return self.path / RUN_FILE

    @property
    def journal(self) -> Path:
        return self.path / JOURNAL

    @property
    def turns(self) -> Path:
        return self.path / TURNS

    @property
    def scorecard(self) -> Path:
        return self.path / SCORECARD

    @property
    def report(self) -> Path:
        return self.path / REPORT

    @property
    def outputs(self) -> list[Path]:
        """What a finished run writes at the end: turns.parquet, scorecard.json, report.html."""
        return [self.turns, self.scorecard, self.report]

    def meta(self) -> dict[str, Any]:
        """run.json; InputError when it cannot be read (not a run folder)."""
        try:
            return json.loads(self.run_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError("cannot read a run", [f"{self.run_file}: {exc}; is this a run folder?"]) from None

    def write_meta(self, meta: dict[str, Any]) -> None:
        """Write run.json whole or not at all (a crash mid-write leaves the previous version)."""
        staged = self.path / (RUN_FILE + ".tmp")
        staged.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        os.replace(staged, self.run_file)

    def finished(self) -> bool:
        return self.scorecard.is_file()

    @classmethod
    def create(cls, runs: Path, run_id: str) -> RunFolder:
        """A new, empty run folder `runs/<run_id>` (FileExistsError if it exists)."""
        path = runs / run_id
        path.mkdir(parents=True)
        return cls(path)

    @classmethod
    def latest(cls, runs: Path) -> RunFolder:
        """The newest finished run (one with a scorecard) under `runs`; run ids sort by start time.

        Raises InputError when there is none."""
        finished = sorted(p for p in runs.glob("*") if (p / SCORECARD).exists())
        if not finished:
            raise InputError("no finished run", [f"{runs}: no run folder with {SCORECARD}; run `harness run` first"])
        return cls(finished[-1])
