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
from harness.project.problems import read_yaml, unknown

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


RUN_KEYS = ("version", "bot", "eval_sets", "replay", "scoring", "output_dir", "tracking")
"""Keys of the run settings (harness.project.config.RunConfig), which harness.yml may hold inline."""


def load_project(root: Path | None = None) -> Project:
    """The project at `root` (default: the project of this command, harness.project.paths.project_root).

    Raises InputError naming harness.yml and the key when: a key is unknown (with did-you-mean), a file key is not
    a path, a file it names does not exist (`run` always; the others when given), or `run` names a file while run
    settings are also written inline (one of them would be ignored).
    """
    root = root if root is not None else project_root()
    path = root / PROJECT_FILE
    raw: Any = read_yaml(path, "project file") if path.is_file() else {}
    if raw is not None and not isinstance(raw, dict):
        raise InputError(
            "invalid project file",
            [f"{path}: expected keys (version: 1, bot: ..., eval_sets: ...), got a {type(raw).__name__}"],
        )
    raw = raw or {}
    problems = [
        f"{path}: {unknown('key', key, (*RUN_KEYS, *PROJECT_KEYS))}"
        for key in raw
        if key not in RUN_KEYS and key not in PROJECT_KEYS
    ]
    inline = [key for key in raw if key in RUN_KEYS and key != "version"]
    if "run" in raw and inline:
        problems.append(
            f"{path}: run: names a file of run settings, and {', '.join(inline)} are also set here; keep one: move "
            "them into that file, or remove `run:`"
        )
    files: dict[str, Path] = {}
    for key, default in {"run": PROJECT_FILE, **FILE_KEYS}.items():
        value = raw.get(key, default)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{path}: {key}: expected a file path (relative to {root}), got {value!r}")
            continue
        files[key] = (root / value).resolve()
        if key in raw and not files[key].is_file():
            what = "no such file" if not files[key].exists() else "not a file"
            default_hint = f", or remove the key to use {default}" if key != "run" else ""
            problems.append(f"{path}: {key}: {value}: {what}; fix the path{default_hint}")
    if problems:
        raise InputError("invalid project file", problems)
    return Project(root=root.resolve(), **files)


def without_project_keys(raw: Any) -> Any:
    """A parsed harness.yml (or run configuration) without the keys that name the project's files."""
    return {k: v for k, v in raw.items() if k not in PROJECT_KEYS} if isinstance(raw, dict) else raw
