"""`intents/`: the source of truth for what the bot understands.

One YAML file per domain; each intent has a name, a one-line description, the human queue that owns it, its
kind and its training examples (Rasa entity markup allowed: `[debit card](card_type)`, read with Rasa's grammar,
see `entity_markup`). `load_catalog` reads and checks every file and reports every problem at once.

An example is the customer's words, as text. YAML reads some unquoted words as other things (`- no` is the boolean
False, `- 42` a number, `- 2024-01-01` a date): such an example is refused with its file, line and intent and the
quoted form to write (`- "no"`), never turned into the text "False". Duplicates are found on the `normalise`d form:
Unicode NFC (a composed and a decomposed "café" are the same sentence), case, punctuation and spacing ignored.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import InputError
from harness.project import entity_markup
from harness.project.problems import problem_message, read_utf8, read_yaml, unknown, yaml_location

_NORMALISE = re.compile(r"[^\w\s]")
_STR = "tag:yaml.org,2002:str"


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
        """Entity names Rasa reads in the examples' markup (every form: `(name)`, `{"entity": ...}`, lists),
        sorted."""
        return entity_markup.entity_names([e for intent in self.intents.values() for e in intent.examples])


def plain_text(example: str) -> str:
    """The example as the customer typed it, without entity markup (exactly as Rasa's `replace_entities`)."""
    return entity_markup.plain_text(example)


def nfc(text: str) -> str:
    """`text` in Unicode normal form C (composed): how the harness writes and compares text."""
    return unicodedata.normalize("NFC", text)


def normalise(text: str) -> str:
    """The form used to find duplicates, conflicts and leakage: markup removed, Unicode NFC, lower-case,
    punctuation-free, single-spaced."""
    return " ".join(_NORMALISE.sub(" ", nfc(plain_text(text)).lower()).split())


def load_catalog(directory: Path, *, known_queues: Iterable[str] | None = None) -> Catalog:
    """Read and check every `*.yml` file in `directory`; raises InputError listing every problem.

    Checks: YAML syntax, examples that YAML reads as something else than text (`- no`), schema (unknown keys
    rejected), duplicate intent names, duplicate examples (also across intents, compared `normalise`d), entity
    markup Rasa refuses, and, when `known_queues` is given, that every queue exists.
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
            try:
                entity_markup.find_entities(example)
            except entity_markup.MarkupError as exc:
                problems.append(
                    f"{sources[name]}: {name}.examples[{index}]: Rasa cannot read the entity annotation {exc} "
                    f"in {example!r}; Rasa's training stops on it"
                )
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
        raw = _read_checking_examples(path, problems)
    except InputError as exc:
        problems += exc.problems
        return []
    try:
        return IntentFile.model_validate(raw).intents
    except ValidationError as exc:
        for error in exc.errors():
            location = yaml_location(error["loc"], raw)
            problems.append(f"{path}: {location}: {problem_message(IntentFile, error)}")
        return []


def _read_checking_examples(path: Path, problems: list[str]) -> Any:
    """The YAML document of `path`; every example that YAML reads as something else than text (`- no`, `- 42`,
    `- 2024-01-01`, an empty item) is a problem naming its line, and is kept as written in the returned document
    so that the schema check does not report it twice."""
    text = read_utf8(path)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        for intent, index, item in _example_nodes(node):
            if isinstance(item, yaml.ScalarNode) and item.tag != _STR:
                problems.append(f"{path}:{item.start_mark.line + 1}: {intent}.examples[{index}]: {_not_text(item)}")
                item.tag = _STR  # reported: read as written from here on
        return loader.construct_document(node)
    except yaml.YAMLError:
        return read_yaml(path, "intents file")  # raises InputError with the parser's file:line:col
    finally:
        loader.dispose()


def _example_nodes(document: yaml.Node) -> Iterable[tuple[str, int, yaml.Node]]:
    """(intent name, index, node) of every `intents[*].examples[*]`, whatever its type."""
    for position, intent in enumerate(_child(document, "intents")):
        names = _child(intent, "name")
        name = names[0] if names else f"intents[{position}]"
        for index, item in enumerate(_child(intent, "examples")):
            yield name, index, item


def _child(node: yaml.Node, key: str) -> list[Any]:
    """The items of the sequence (or the scalar value, as a one-item list) under `key` of a mapping node."""
    if not isinstance(node, yaml.MappingNode):
        return []
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            if isinstance(v, yaml.SequenceNode):
                return list(v.value)
            return [v.value] if isinstance(v, yaml.ScalarNode) else []
    return []


def _not_text(item: yaml.ScalarNode) -> str:
    written = item.value
    if not written.strip():
        return "an empty example; write the customer's words, or remove the line"
    meaning = {
        "tag:yaml.org,2002:bool": lambda: f"the boolean {yaml.safe_load(written)}",
        "tag:yaml.org,2002:int": lambda: f"the number {yaml.safe_load(written)}",
        "tag:yaml.org,2002:float": lambda: f"the number {yaml.safe_load(written)}",
        "tag:yaml.org,2002:timestamp": lambda: "a date",
        "tag:yaml.org,2002:null": lambda: "no value (null)",
    }.get(item.tag, lambda: f"a value of type {item.tag}")()
    return (
        f"example `{written}` is read by YAML as {meaning}, not as the customer's words; "
        f"quote it: - {json.dumps(written, ensure_ascii=False)}"
    )
