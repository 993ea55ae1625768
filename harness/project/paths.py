"""Where the project's files live, relative to the repository root (overridable for tests)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The repository: harness/project/paths.py is two folders below it."""


@dataclass(frozen=True)
class ProjectPaths:
    root: Path = REPO_ROOT

    @property
    def intents(self) -> Path:
        return self.root / "intents"

    @property
    def eval_sets(self) -> Path:
        return self.root / "eval_sets"

    @property
    def experiments(self) -> Path:
        return self.root / "experiments"

    @property
    def bot(self) -> Path:
        return self.root / "bot"

    @property
    def escalation_policy(self) -> Path:
        return self.bot / "escalation.yml"

    @property
    def nlu_data(self) -> Path:
        return self.bot / "data" / "nlu.yml"

    @property
    def domain_intents(self) -> Path:
        return self.bot / "domain" / "intents.yml"

    @property
    def intent_catalog(self) -> Path:
        return self.bot / "intent_catalog.yml"
