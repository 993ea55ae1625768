"""Configuration of `harness run`: the project's run settings (harness.yml or the file its `run` names), with flags
overriding single values."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.project.paths import project_root
from harness.project.problems import load_yaml_model
from harness.project.project import load_project, without_project_keys


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


BOT_PATHS = ("project", "domain", "handoff")
"""Settings of a bot section that name files; relative ones are relative to the project root, as eval_sets."""


class BotConfig(BaseModel):
    """The bot a run measures: `kind` names a bot kind (harness.bots.kinds: reference, rasa, http_json,
    scripted); the other keys are that kind's settings, validated by the kind when the bot is connected."""

    model_config = ConfigDict(extra="allow")

    kind: str = "reference"
    url: str | None = None
    """Where the bot is reached; required by every HTTP kind (its settings say what it is)."""
    token_env: str | None = None
    """The environment variable holding the bot's token (each kind has a default; see its settings)."""


class ReplayConfig(Section):
    concurrency: int = Field(4, ge=1, le=256)
    turn_timeout_s: float = Field(30.0, gt=0)
    retries: int = Field(3, ge=0, le=20)
    backoff_s: float = Field(0.5, ge=0)


class ScoringConfig(Section):
    bootstrap_replicates: int = Field(1000, ge=50, le=100_000)
    seed: int = 20261122
    confidence: float = Field(0.95, gt=0.5, lt=1)


class TrackingConfig(Section):
    uri: str = "sqlite:///experiments/mlflow.db"
    experiment: str = "reference-bot"


class RunConfig(Section):
    version: Literal[1]
    bot: BotConfig
    eval_sets: Path = Path("eval_sets")
    replay: ReplayConfig = ReplayConfig()
    scoring: ScoringConfig = ScoringConfig()
    output_dir: Path = Path("runs")
    tracking: TrackingConfig = TrackingConfig()

    def resolved(self, root: Path | None = None) -> RunConfig:
        """Paths made absolute against `root` (default: the project root), a relative sqlite tracking URI too, and
        the bot's file settings (BOT_PATHS: a Rasa bot's project, domain and handoff mapping)."""
        root = root if root is not None else project_root()
        bot = self.bot.model_copy(
            update={
                key: str((root / value).resolve())
                for key in BOT_PATHS
                if isinstance(value := getattr(self.bot, key, None), str)
            }
        )
        uri = self.tracking.uri
        if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
            uri = "sqlite:///" + str((root / uri.removeprefix("sqlite:///")).resolve())
        return self.model_copy(
            update={
                "bot": bot,
                "eval_sets": (root / self.eval_sets).resolve(),
                "output_dir": (root / self.output_dir).resolve(),
                "tracking": self.tracking.model_copy(update={"uri": uri}),
            }
        )

    def token(self) -> str:
        """The bot's token from the environment variable the bot section names ('' when unset or none named)."""
        return os.environ.get(self.bot.token_env, "") if self.bot.token_env else ""


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """The run configuration from `path` (default: the project's, harness.project.project), with dotted-key
    `overrides` (for example {"replay.concurrency": 8}). The keys of a harness.yml that name the project's other
    files (gate, review, ...) are not run settings and are set aside.

    Raises InputError listing every problem with its location in the file."""

    def apply_overrides(raw: Any) -> Any:
        raw = without_project_keys(raw)
        return with_overrides(raw, overrides or {}) if isinstance(raw, dict) else raw

    return load_yaml_model(
        path if path is not None else load_project().run, RunConfig, "run configuration", apply_overrides
    )


def with_overrides(raw: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a config mapping with dotted-key overrides applied (`{"bot.url": ...}`); None values are ignored."""
    raw = json.loads(json.dumps(raw))
    for key, value in overrides.items():
        if value is None:
            continue
        node = raw
        *parents, leaf = key.split(".")
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return raw
