"""Which project a command acts on, and where that project's files live.

A project is a folder holding `harness.yml` (PROJECT_FILE), found like `pyproject.toml`: the current folder or
its nearest parent that holds one. `--project` (harness.cli) or the HARNESS_PROJECT environment variable name it
instead. Never the folder the harness is installed in: a wheel in site-packages and an editable install of another
checkout both act on the folder the user works in.

The reference bot's own folders (`intents/`, `bot/`, `eval_sets/`, `experiments/`) are relative to that root;
commands that need them check with `require_reference_folders`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import InputError

PROJECT_FILE = "harness.yml"
PROJECT_ENV = "HARNESS_PROJECT"

_chosen: Path | None = None
"""The project `--project` named for this command (set by the CLI's callback; None: discover)."""


def choose_project(root: Path | None) -> None:
    """Make `root` the project of every later lookup in this process (None: discover from the current folder)."""
    global _chosen
    _chosen = Path(root).resolve() if root is not None else None


def chosen_project() -> Path | None:
    """The folder `--project` or $HARNESS_PROJECT names, if any (not checked: `harness init` makes it a project)."""
    return _chosen or (Path(os.environ[PROJECT_ENV]) if os.environ.get(PROJECT_ENV) else None)


def find_project_root(start: Path) -> Path | None:
    """The nearest of `start` and its parents that holds PROJECT_FILE, or None."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / PROJECT_FILE).is_file():
            return folder
    return None


def project_root() -> Path:
    """The root of the project commands act on: `--project`, else $HARNESS_PROJECT, else the nearest folder from
    the current one up that holds harness.yml.

    Raises InputError when a named project has no harness.yml or none is found, saying how to make one.
    """
    named = chosen_project()
    if named is not None:
        if not (named / PROJECT_FILE).is_file():
            raise InputError(
                f"{named} is not a harness project",
                [f"{named / PROJECT_FILE}: not found; run `harness init` there, or name the folder that holds it"],
            )
        return named.resolve()
    found = find_project_root(Path.cwd())
    if found is None:
        raise InputError(
            "no harness project here",
            [
                f"{Path.cwd()}: neither this folder nor a parent holds {PROJECT_FILE}; run `harness init` in your "
                "bot's repository, or pass --project PATH (or set HARNESS_PROJECT)"
            ],
        )
    return found


@dataclass(frozen=True)
class ProjectPaths:
    """The reference bot's folders under a project root (default: the project of this command, `project_root`)."""

    root: Path = field(default_factory=project_root)

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

    def require_reference_folders(self, command: str, *folders: str) -> ProjectPaths:
        """Self, if every named folder (`intents`, `bot`, ...) is under the root.

        Raises InputError naming the command and the missing folders: they belong to the reference bot of the
        harness repository (a Rasa bot trained from intents/), which a project made by `harness init` has not.
        """
        missing = [name for name in folders if not (self.root / name).is_dir()]
        if missing:
            raise InputError(
                f"`{command}` works on the reference bot's own folders ({', '.join(f + '/' for f in folders)})",
                [
                    f"{self.root}: has no {', '.join(m + '/' for m in missing)}; run it in the harness repository "
                    "(or pass --project to a checkout of it)"
                ],
            )
        return self
