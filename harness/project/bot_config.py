"""What the harness needs to know of the reference bot's configuration: its human queues and escalation rules.

The harness reaches the bot only through the channel; it reads the escalation policy file only to check that
eval sets and intents name queues and rules that exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import InputError
from harness.project.problems import read_yaml


@dataclass(frozen=True)
class QueueConfig:
    queues: tuple[str, ...]
    """Queue names, in file order."""
    rules: tuple[str, ...]
    """Escalation rule names, in file order."""
    default_queue: str


def load_queue_config(path: Path) -> QueueConfig:
    """Queue and rule names from the bot's escalation policy file; raises InputError if it cannot be read."""
    raw = read_yaml(path, "bot's escalation policy")
    if not isinstance(raw, dict) or not isinstance(raw.get("queues"), dict):
        raise InputError("invalid escalation policy", [f"{path}: queues: expected a mapping of queue names"])
    return QueueConfig(
        queues=tuple(raw["queues"]),
        rules=tuple(r.get("name", "") for r in raw.get("rules") or [] if isinstance(r, dict)),
        default_queue=str(raw.get("default_queue", "")),
    )
