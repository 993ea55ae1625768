"""A stock Rasa bot's domain, read from its files as Rasa reads them, for the names an eval set may use against it.

The domain is one `domain.yml` or a `domain/` folder whose YAML files (searched recursively, following links, as
Rasa's `Domain.from_directory` does) are merged: intents, actions and entities are unions, and slots, forms and
responses are merged by name. Only a file that has a domain key (`intents`, `slots`, `responses`, ...) counts, as
in Rasa, so NLU and story files in the same folder are skipped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.project.problems import read_yaml

DOMAIN_KEYS = ("intents", "entities", "slots", "forms", "actions", "responses", "e2e_actions", "session_config")
"""Rasa's `ALL_DOMAIN_KEYS`: a YAML file with any of them is a domain file."""

RASA_DEFAULT_ACTIONS = (
    "action_listen",
    "action_restart",
    "action_session_start",
    "action_default_fallback",
    "action_deactivate_loop",
    "action_revert_fallback_events",
    "action_default_ask_affirmation",
    "action_default_ask_rephrase",
    "action_two_stage_fallback",
    "action_unlikely_intent",
    "action_back",
    "action_extract_slots",
)
"""Rasa 3.x's default actions (`rasa.shared.core.constants.DEFAULT_ACTION_NAMES` but the rule snippet `...`),
known without being declared."""

NOT_EVAL_LABELS = frozenset({"nlu_fallback"})
"""Intents a bot recognises that an eval set does not label with: `nlu_fallback` is the bot failing to recognise."""


@dataclass(frozen=True)
class RasaDomain:
    """The names a Rasa domain declares, each tuple in first-declared order."""

    intents: tuple[str, ...]
    actions: tuple[str, ...]
    """Declared `actions`, plus the `utter_` responses and forms, which Rasa also runs as actions."""
    slots: tuple[str, ...]
    forms: tuple[str, ...]
    responses: tuple[str, ...]
    source: str
    """The file or folder read, for messages."""

    def known_actions(self) -> tuple[str, ...]:
        """Every action the bot can run: declared, responses, forms and Rasa's defaults."""
        return tuple(dict.fromkeys([*self.actions, *RASA_DEFAULT_ACTIONS]))


def find_domain(project: Path | None, domain: Path | None) -> Path:
    """The domain to read: `domain` when given, else `project/domain.yml`, else the folder `project/domain/`.

    Raises InputError when none exists.
    """
    if domain is not None:
        if not domain.exists():
            raise InputError("cannot find the Rasa bot's domain", [f"bot.domain: {domain} does not exist"])
        return domain
    if project is None:
        raise InputError(
            "cannot find the Rasa bot's domain", ["bot: give bot.project (the bot's folder) or bot.domain"]
        )
    for candidate in (project / "domain.yml", project / "domain.yaml", project / "domain"):
        if candidate.exists():
            return candidate
    raise InputError(
        "cannot find the Rasa bot's domain",
        [f"bot.project: {project} has no domain.yml and no domain/ folder; set bot.domain to the bot's domain"],
    )


def load_domain(path: Path) -> RasaDomain:
    """The domain at `path`, a YAML file or a folder of them (merged as Rasa merges them).

    Raises InputError for unreadable YAML, a folder with no domain file, or malformed entries (each with its file
    and location).
    """
    files = _domain_files(path) if path.is_dir() else [path]
    if not files:
        raise InputError("no Rasa domain found", [f"{path}: no YAML file in this folder has a domain key"])
    intents: dict[str, None] = {}
    actions: dict[str, None] = {}
    slots: dict[str, None] = {}
    forms: dict[str, None] = {}
    responses: dict[str, None] = {}
    problems: list[str] = []
    for file in files:
        document = _read(file)
        for index, item in enumerate(_list(document, "intents", file, problems)):
            name = _intent_name(item)
            if name is None:
                problems.append(
                    f"{file}: intents[{index}]: expected an intent name or a one-key mapping "
                    f"`name: {{options}}`, got {item!r}"
                )
            else:
                intents.setdefault(name)
        for index, item in enumerate(_list(document, "actions", file, problems)):
            name = _intent_name(item)  # Rasa 3 allows `- action_x: {send_domain: true}`
            if name is None:
                problems.append(f"{file}: actions[{index}]: expected an action name, got {item!r}")
            else:
                actions.setdefault(name)
        for key, into in (("slots", slots), ("forms", forms), ("responses", responses)):
            value = document.get(key)
            if value is None:
                continue
            if not isinstance(value, dict):
                problems.append(f"{file}: {key}: expected a mapping of names, got {type(value).__name__}")
                continue
            for name in value:
                into.setdefault(str(name))
    if problems:
        raise InputError("invalid Rasa domain", problems)
    all_actions = dict.fromkeys([*actions, *(r for r in responses if r.startswith("utter_")), *forms])
    return RasaDomain(
        tuple(intents), tuple(all_actions), tuple(slots), tuple(forms), tuple(responses), source=str(path)
    )


def eval_intents(domain: RasaDomain) -> tuple[str, ...]:
    """The domain's intents an eval set may label a turn with (`nlu_fallback` is not a label)."""
    return tuple(name for name in domain.intents if name not in NOT_EVAL_LABELS)


def _domain_files(folder: Path) -> list[Path]:
    found = []
    for root, _, names in os.walk(folder, followlinks=True):
        for name in sorted(names):
            file = Path(root) / name
            if file.suffix in (".yml", ".yaml") and any(key in _read(file) for key in DOMAIN_KEYS):
                found.append(file)
    return sorted(found)


def _read(file: Path) -> dict[str, Any]:
    document = read_yaml(file, "Rasa domain")
    return document if isinstance(document, dict) else {}


def _list(document: dict[str, Any], key: str, file: Path, problems: list[str]) -> list[Any]:
    value = document.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(f"{file}: {key}: expected a list, got {type(value).__name__}")
        return []
    return value


def _intent_name(item: Any) -> str | None:
    """`greet` or `{greet: {use_entities: [...]}}` -> `greet`; None for anything else."""
    if isinstance(item, str) and item:
        return item
    if isinstance(item, dict) and len(item) == 1:
        (name,) = item
        return name if isinstance(name, str) and name else None
    return None
