"""`intents/`: the source of truth for what the bot understands.

One YAML file per domain; each intent has a name, a one-line description, the human queue that owns it, its
kind and its training examples (Rasa entity markup allowed: `[debit card](card_type)`). `load_catalog` reads
and checks every file and reports every problem at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import InputError
from harness.project.problems import read_yaml, unknown, yaml_location

_ENTITY_MARKUP = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")
_NORMALISE = re.compile(r"[^\w\s]")


class IntentKind(StrEnum):
    """What role an intent plays in a conversation."""

    self_service = "self_service"
    """A task or question the bot handles itself; sets the conversation's topic."""
    smalltalk = "smalltalk"
    form_input = "form_input"
    """An answer to the bot's question inside a flow."""
    escalation = "escalation"
    """A request the escalation policy acts on (human request, complaint, fraud)."""
    out_of_scope = "out_of_scope"


class Intent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    """Identifier used in the bot, the eval sets and reports."""
    description: str = Field(min_length=1)
    """One line for humans: what the customer wants."""
    queue: str = Field(min_length=1)
    """The human queue that owns this intent."""
    kind: IntentKind
    examples: list[str] = Field(min_length=1)
    """Training examples, with Rasa entity markup where an entity is named."""


class IntentFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=1)
    intents: list[Intent] = Field(min_length=1)


@dataclass(frozen=True)
class Catalog:
    """Every intent of `intents/`, in file order, with the file each came from."""

    intents: dict[str, Intent]
    sources: dict[str, Path]

    def names(self) -> list[str]:
        return list(self.intents)

    def entities(self) -> list[str]:
        """Entity names used in examples' markup, sorted."""
        found = {
            match.split(":")[0].strip()
            for intent in self.intents.values()
            for example in intent.examples
            for match in re.findall(r"\]\(([^)]*)\)", example)
        }
        return sorted(found)


def plain_text(example: str) -> str:
    """The example as the customer typed it, without entity markup."""
    return _ENTITY_MARKUP.sub(r"\1", example)


def normalise(text: str) -> str:
    """Lower-case, punctuation-free, single-spaced form used to find duplicates."""
    return " ".join(_NORMALISE.sub(" ", plain_text(text).lower()).split())


def load_catalog(directory: Path, *, known_queues: Iterable[str] | None = None) -> Catalog:
    """Read and check every `*.yml` file in `directory`; raises InputError listing every problem.

    Checks: YAML syntax, schema (unknown keys rejected), duplicate intent names, duplicate examples (also across
    intents), and, when `known_queues` is given, that every queue exists.
    """
    problems: list[str] = []
    intents: dict[str, Intent] = {}
    sources: dict[str, Path] = {}
    files = sorted(directory.glob("*.yml")) + sorted(directory.glob("*.yaml"))
    if not files:
        raise InputError(f"no intent files in {directory}", [f"{directory}: add at least one <domain>.yml file"])
    for path in files:
        for intent in _read_file(path, problems):
            if intent.name in intents:
                problems.append(
                    f"{path}: intents: intent {intent.name!r} is also defined in {sources[intent.name]};"
                    " keep one definition"
                )
                continue
            intents[intent.name] = intent
            sources[intent.name] = path
    queues = set(known_queues) if known_queues is not None else None
    seen_examples: dict[str, str] = {}
    for name, intent in intents.items():
        if queues is not None and intent.queue not in queues:
            problems.append(f"{sources[name]}: {name}.queue: {unknown('queue', intent.queue, queues)}")
        for index, example in enumerate(intent.examples):
            key = normalise(example)
            if key in seen_examples:
                problems.append(
                    f"{sources[name]}: {name}.examples[{index}]: duplicate example {plain_text(example)!r}"
                    f" (already under {seen_examples[key]!r})"
                )
            else:
                seen_examples[key] = name
    if problems:
        raise InputError(f"{len(problems)} problem(s) in {directory}", problems)
    return Catalog(intents=intents, sources=sources)


def _read_file(path: Path, problems: list[str]) -> list[Intent]:
    try:
        raw = read_yaml(path, "intents file")
    except InputError as exc:
        problems += exc.problems
        return []
    try:
        return IntentFile.model_validate(raw).intents
    except ValidationError as exc:
        for error in exc.errors():
            location = yaml_location(error["loc"], raw)
            problems.append(f"{path}: {location}: {error['msg']}")
        return []
