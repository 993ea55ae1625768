"""Eval sets: labelled conversations to replay through the channel (`eval_sets/*.yml`, format version 1).

A conversation has an id, tags, customer turns (text, expected intent, optional checks on the bot's reply), the
expected outcome (`self_served`, or `escalated` with the expected queue and optionally the rule), whether the
bot should resolve the customer's goal itself, and an optional `critical` mark. The schema rejects unknown keys;
`load_eval_sets` reports every problem of every file at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.errors import InputError
from harness.project.problems import problem_message, read_yaml, unknown, yaml_location

FORMAT_VERSION = 1
OUT_OF_SCOPE = "out_of_scope"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TurnChecks(Strict):
    """Checks on the bot's reaction to one turn; every listed check must hold for the turn to pass."""

    actions: list[str] = []
    """Actions the bot must run in this turn (in any order, among others)."""
    not_actions: list[str] = []
    """Actions the bot must not run in this turn."""
    slots: dict[str, str | bool | float | int | None] = {}
    """Slots the bot must set in this turn, with their values."""
    reply_matches: str | None = None
    """A regular expression (case-insensitive) the bot's reply must match."""
    reply_excludes: str | None = None
    """A regular expression (case-insensitive) the bot's reply must not match (for example asking for a PIN)."""


class Turn(Strict):
    text: str = Field(min_length=1)
    """What the customer types."""
    intent: str | None
    """The intent a correct bot recognises, `out_of_scope`, or null for a free-text answer to the bot's question
    (a postcode, the last digits of a card) that no intent describes; null turns are not scored for recognition."""
    expect: TurnChecks | None = None


class Outcome(StrEnum):
    self_served = "self_served"
    escalated = "escalated"


class Expected(Strict):
    outcome: Outcome
    queue: str | None = None
    """The queue a correct bot hands off to; required when the outcome is `escalated`, absent otherwise."""
    rule: str | None = None
    """The escalation rule that should fire (optional, for reports)."""

    @model_validator(mode="after")
    def _queue_matches_outcome(self) -> Expected:
        if self.outcome is Outcome.escalated and not self.queue:
            raise ValueError("an escalated outcome needs the expected queue")
        if self.outcome is Outcome.self_served and (self.queue or self.rule):
            raise ValueError("a self_served outcome has no queue or rule")
        return self

    @property
    def label(self) -> str:
        """`self_served` or `escalated:<queue>`, as in the outcome matrix."""
        return "self_served" if self.outcome is Outcome.self_served else f"escalated:{self.queue}"


class Conversation(Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    tags: list[str] = []
    turns: list[Turn] = Field(min_length=1)
    expected: Expected
    resolvable: bool
    """True when a correct bot resolves the customer's goal itself (task done or question answered)."""
    critical: str | None = None
    """Why this conversation must never fail (for example "fraud must reach the fraud queue")."""


class EvalSetHeader(Strict):
    """The file around the conversations; each conversation is validated on its own so one bad conversation
    does not hide the problems of the others."""

    version: Literal[1]
    name: str = Field(min_length=1)
    description: str = ""
    conversations: list[dict] = Field(min_length=1)


@dataclass(frozen=True)
class EvalConversation:
    """A conversation with the eval set it came from."""

    eval_set: str
    source: Path
    conversation: Conversation


@dataclass(frozen=True)
class EvalSuite:
    """Every conversation of the loaded eval-set files, with a content hash identifying exactly what was tested."""

    conversations: tuple[EvalConversation, ...]
    files: tuple[Path, ...]
    content_hash: str
    version: int = FORMAT_VERSION

    def __len__(self) -> int:
        return len(self.conversations)


def content_hash(files: Iterable[Path]) -> str:
    """sha256 over the files' names and bytes, in name order: two runs are comparable only if this matches."""
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.name):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def eval_set_files(location: Path) -> list[Path]:
    """The eval-set files at `location` (a file, or every *.yml/*.yaml in a folder)."""
    if location.is_file():
        return [location]
    return sorted([*location.glob("*.yml"), *location.glob("*.yaml")])


def load_eval_sets(
    location: Path, *, intents: Iterable[str], queues: Iterable[str], rules: Iterable[str] = ()
) -> EvalSuite:
    """Read and check eval sets; raises InputError listing every problem with file, path and a did-you-mean.

    Cross-checks: intents (plus `out_of_scope`) against intents/, queues and rules against the bot's escalation
    policy, conversation ids unique across all files, actions and slots in checks are not checked (bot-specific).
    """
    files = eval_set_files(location)
    if not files:
        raise InputError(f"no eval sets at {location}", [f"{location}: add at least one <name>.yml eval-set file"])
    known_intents = {*intents, OUT_OF_SCOPE}
    known_queues, known_rules = set(queues), set(rules)
    problems: list[str] = []
    loaded: list[EvalConversation] = []
    first_seen: dict[str, str] = {}
    for path in files:
        header, conversations = _read(path, problems)
        set_name = header.name if header is not None else path.stem
        for index, conversation in conversations:
            where = f"{path}: conversations[{index}]({conversation.id})"
            if conversation.id in first_seen:
                problems.append(f"{where}.id: duplicate conversation id, first used at {first_seen[conversation.id]}")
            else:
                first_seen[conversation.id] = where
            for t, turn in enumerate(conversation.turns):
                if turn.intent is not None and turn.intent not in known_intents:
                    problems.append(f"{where}.turns[{t}].intent: {unknown('intent', turn.intent, known_intents)}")
            expected = conversation.expected
            if expected.queue is not None and expected.queue not in known_queues:
                problems.append(f"{where}.expected.queue: {unknown('queue', expected.queue, known_queues)}")
            if expected.rule is not None and known_rules and expected.rule not in known_rules:
                problems.append(f"{where}.expected.rule: {unknown('rule', expected.rule, known_rules)}")
            loaded.append(EvalConversation(set_name, path, conversation))
    if problems:
        raise InputError(f"{len(problems)} problem(s) in the eval sets", problems)
    return EvalSuite(conversations=tuple(loaded), files=tuple(files), content_hash=content_hash(files))


def _read(path: Path, problems: list[str]) -> tuple[EvalSetHeader | None, list[tuple[int, Conversation]]]:
    """The file's header and its valid conversations (with their index); problems go to `problems`."""
    try:
        raw = read_yaml(path, "eval set")
    except InputError as exc:
        problems += exc.problems
        return None, []
    if raw is None:
        problems.append(f"{path}: the file is empty; an eval set needs version, name and conversations")
        return None, []
    try:
        header = EvalSetHeader.model_validate(raw)
    except ValidationError as exc:
        problems += [
            f"{path}: {yaml_location(e['loc'], raw, name_key='id')}: {problem_message(EvalSetHeader, e)}"
            for e in exc.errors()
        ]
        return None, []
    valid: list[tuple[int, Conversation]] = []
    for index, item in enumerate(header.conversations):
        try:
            valid.append((index, Conversation.model_validate(item)))
        except ValidationError as exc:
            for e in exc.errors():
                location = yaml_location(("conversations", index, *e["loc"]), raw, name_key="id")
                problems.append(f"{path}: {location}: {problem_message(Conversation, e)}")
    return header, valid
