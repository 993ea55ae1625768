"""The project file, `harness.yml`: where a project's run settings, gate spec and review config are.

```yaml
version: 1
run: experiments/eval.yml        # a file holding the run settings; or put them here (bot, eval_sets, tracking, ...)
gate: experiments/gate.yml       # default gate.yml
review: experiments/review.yml   # default review.yml
probe: experiments/probe.yml     # default probe.yml
production: experiments/production.yml  # default production.yml
```

Relative paths are relative to the folder holding harness.yml (the project root, harness.project.paths).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.project.paths import PROJECT_FILE, project_root
from harness.project.problems import read_yaml

FILE_KEYS = {"gate": "gate.yml", "review": "review.yml", "probe": "probe.yml", "production": "production.yml"}
"""Keys of harness.yml that name the project's other files, with their defaults (relative to the root)."""
PROJECT_KEYS = ("run", *FILE_KEYS)
"""Keys of harness.yml that are not run settings."""


@dataclass(frozen=True)
class Project:
    """A harness project: its root folder and its configuration files (absolute paths; they may not exist yet)."""

    root: Path
    run: Path
    """The file holding the run settings (`harness run`): harness.yml itself unless its `run` names another."""
    gate: Path
    review: Path
    probe: Path
    production: Path


def load_project(root: Path | None = None) -> Project:
    """The project at `root` (default: the project of this command, harness.project.paths.project_root).

    Raises InputError naming harness.yml and the key when a file key is not a string.
    """
    root = root if root is not None else project_root()
    path = root / PROJECT_FILE
    raw: Any = read_yaml(path, "project file") if path.is_file() else {}
    raw = raw if isinstance(raw, dict) else {}
    files: dict[str, Path] = {}
    for key, default in {"run": PROJECT_FILE, **FILE_KEYS}.items():
        value = raw.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise InputError(
                "invalid project file", [f"{path}: {key}: expected a file path (relative to {root}), got {value!r}"]
            )
        files[key] = (root / value).resolve()
    return Project(root=root.resolve(), **files)


def without_project_keys(raw: Any) -> Any:
    """A parsed harness.yml (or run configuration) without the keys that name the project's files."""
    return {k: v for k, v in raw.items() if k not in PROJECT_KEYS} if isinstance(raw, dict) else raw
