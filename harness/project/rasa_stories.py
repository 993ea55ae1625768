"""Turn a Rasa 3.x team's end-to-end test stories (`tests/test_*.yml`) into an eval set the harness can replay.

`import_rasa_stories` reads the files (pure apart from reading them) and returns an `ImportResult`: one conversation
per test story, and a finding, with file and line, for everything that could not be carried over as written.
`write_eval_set` writes the result in the layout of the hand-written eval sets (`harness.project.eval_set`), refusing to
replace an existing file unless asked.

What becomes what (one conversation per story; id = the story name slugified, tags `[rasa_test, <file stem>]`):

| Rasa step                                  | eval set                                                         |
|--------------------------------------------|------------------------------------------------------------------|
| `user:` text + `intent:`                   | a customer turn: text (entity markup such as `[Berlin](city)` or |
|                                            | `[x]{"entity": ...}` stripped to the plain text) and its intent  |
| `user:` text without `intent:`             | a turn with intent null (a free-text answer, not scored for      |
|                                            | recognition); text `/intent{...}` (a payload Rasa parses without |
|                                            | NLU) is labelled with that intent                                |
| `intent:` without `user:` text             | nothing to send: the story is skipped                            |
| `action:` after a user turn                | that turn's `expect.actions` (`action_listen` ignored)           |
| `slot_was_set:` with a value               | that turn's `expect.slots` (a slot listed twice: the last value) |
| `active_loop: <form>`                      | the form in that turn's `expect.actions` (a form runs as action) |
| `bot:` text                                | that turn's `expect.reply_matches` (the text, regex-escaped)     |
| a turn that matches the handoff mapping    | `expected: escalated` with queue (and rule); later turns dropped |
| no handoff                                 | `expected: self_served`, `resolvable: true`                      |

Intent labels: a leading `/` is dropped and a retrieval intent `faq/ask_name` becomes its base intent `faq` (what
a Rasa bot reports), and `nlu_fallback` becomes `out_of_scope` (the harness's label for a message a correct bot
declines). Handoffs are read as the `rasa` bot kind reads them at run time (`harness.bots.handoff_mapping`): per
turn, the first mapping entry whose action ran or whose intent is the turn's decides; a `{slot: ...}` queue is the
slot's value when the matched action ran (for an intent match: at the end of the turn, or the turn's last value if
it ended cleared), translated by the mapping's `queues`; a `{value: ...}` queue is used as it is.

Listed as untranslated (the story is imported without it): `slot_was_set` of a bare name or of a list/mapping
value, `active_loop: null`, an `active_loop` naming no form of the domain, entity expectations (`entities:` or
markup in the text), `or:` alternatives of slot values, a checkpoint ending a story, `metadata`, unknown step keys,
steps before the first customer message, handoff signals stories cannot show (events, payloads). Skipped whole
(and listed): stories with an `intent:` step without text, a checkpoint at the start or middle, `or:` alternatives
of messages, no customer message at all, a handoff whose queue the story does not show; every rule under `rules:`.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from harness.errors import InputError
from harness.project.eval_set import (
    FORMAT_VERSION,
    OUT_OF_SCOPE,
    Conversation,
    EvalSetHeader,
    Expected,
    Outcome,
    Turn,
    TurnChecks,
    load_eval_sets,
)

TEST_FILE_PREFIX = "test_"
"""Rasa reads test stories from files whose name starts with this (as `rasa test` does)."""
TAG = "rasa_test"
ACTION_LISTEN = "action_listen"
NLU_FALLBACK = "nlu_fallback"

# Rasa's own entity-annotation pattern (rasa.shared.nlu.training_data.entities_parser.ENTITY_REGEX):
# [text](entity), [text](entity:value), [text]{"entity": ...}, [text][{...}, {...}].
ENTITY_MARKUP = re.compile(
    r"\[(?P<entity_text>[^\]]+?)\](\((?P<entity>[^:)]+?)(?:\:(?P<value>[^)]+))?\)|\{(?P<entity_dict>[^}]+?)\}"
    r"|\[(?P<list_entity_dicts>.*?)\])"
)
# A message Rasa parses as an intent without NLU: `/greet`, `/inform{"city": "Berlin"}`, `/greet@0.9`.
INTENT_PAYLOAD = re.compile(r"^/(?P<intent>[^{@\s]+)(?:@[0-9.]+)?(?:\{.*\})?$", re.DOTALL)
SLUG_INVALID = re.compile(r"[^a-z0-9_.-]+")
STEP_KINDS = ("or", "action", "bot", "checkpoint", "slot_was_set", "active_loop", "metadata")
"""Step kinds besides a user step, in the order Rasa tests a step's keys (a checkpoint may hold slot_was_set)."""
STEP_KEYS = {
    "user": {"user", "intent", "entities"},
    "or": {"or"},
    "action": {"action"},
    "bot": {"bot"},
    "checkpoint": {"checkpoint", "slot_was_set"},
    "slot_was_set": {"slot_was_set"},
    "active_loop": {"active_loop"},
    "metadata": {"metadata"},
}

Scalar = str | bool | int | float | None


# ------------------------------------------------------------------------------------------------ handoff mapping


class HandoffWhen(Protocol):
    """What, observed in a turn, means the bot handed off (exactly one is set)."""

    @property
    def action(self) -> str | list[str] | None: ...
    @property
    def event(self) -> str | None: ...
    @property
    def payload(self) -> str | None: ...
    @property
    def intent(self) -> str | list[str] | None: ...


class HandoffSource(Protocol):
    """Where a handoff's queue or rule comes from (exactly one is set)."""

    @property
    def slot(self) -> str | None: ...
    @property
    def value(self) -> str | None: ...
    @property
    def payload(self) -> str | None: ...
    @property
    def action(self) -> bool | None: ...


class HandoffEntry(Protocol):
    @property
    def when(self) -> HandoffWhen: ...
    @property
    def queue(self) -> HandoffSource: ...
    @property
    def rule(self) -> HandoffSource | None: ...


class HandoffMappingView(Protocol):
    """What the importer reads of a bot's handoff mapping; `harness.bots.handoff_mapping.HandoffMapping` (from
    `load_handoff_mapping`) is one."""

    @property
    def handoffs(self) -> Sequence[HandoffEntry]: ...
    @property
    def queues(self) -> Mapping[str, str]:
        """The bot's queue words -> eval-set queue names."""
        ...

    @property
    def rules(self) -> Mapping[str, str]:
        """The bot's rule words -> eval-set rule names."""
        ...

    @property
    def path(self) -> str:
        """Where the mapping was read, for messages."""
        ...


def _names(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


# -------------------------------------------------------------------------------------------------------- results


class FindingKind(StrEnum):
    skipped = "skipped"
    """The story (or rule, or file) was not imported."""
    untranslated = "untranslated"
    """The story was imported without this step or part of it: the eval set has no equivalent check."""
    changed = "changed"
    """Imported, but not exactly as written (id made unique, label renamed, turns after a handoff dropped)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """Something of the test stories the eval set does not carry as written."""

    kind: FindingKind
    file: Path | None
    """The test-story file; None for findings about the import as a whole (the handoff mapping)."""
    line: int | None
    """1-based line of the step, story or key concerned."""
    story: str | None
    """The story (or rule) name, when the finding concerns one."""
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.file is not None else "(import)"
        story = f" {self.story!r}:" if self.story is not None else ""
        return f"{where}:{story} {self.kind.value}: {self.message}"


@dataclass(frozen=True, slots=True)
class ImportedStory:
    """One conversation of the eval set and the story it came from."""

    conversation: Conversation
    file: Path
    line: int
    """1-based line of the story's `- story:` entry."""
    story: str
    """The story's name as written."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    """An imported eval set: its conversations in file and story order, and every finding."""

    eval_set_name: str
    description: str
    files: tuple[Path, ...]
    """The test-story files read, in the order read."""
    conversations: tuple[ImportedStory, ...]
    findings: tuple[Finding, ...]
    """In file order, then line order within each story."""
    skipped_items: int
    """Stories and rules not imported."""

    def of_kind(self, kind: FindingKind) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.kind is kind)

    def summary(self) -> str:
        """One line: conversations imported, stories and rules skipped, untranslated steps, changes."""
        return (
            f"{len(self.conversations)} conversation(s) from {len(self.files)} file(s); {self.skipped_items}"
            f" story/rule(s) skipped; {len(self.of_kind(FindingKind.untranslated))} untranslated step(s);"
            f" {len(self.of_kind(FindingKind.changed))} change(s)"
        )


# --------------------------------------------------------------------------------------------------------- import


def import_rasa_stories(
    paths: Sequence[Path],
    mapping: HandoffMappingView | None,
    *,
    eval_set_name: str,
    forms: Iterable[str] | None = None,
) -> ImportResult:
    """Convert the test stories in `paths` (files, or folders searched recursively for `test_*.yml|yaml`, as
    `rasa test` picks them) into an eval set named `eval_set_name`.

    `mapping` is the bot's handoff mapping (`harness.bots.handoff_mapping.load_handoff_mapping`); None means the
    bot never hands off (every conversation is `self_served`, and a finding says so). `forms`, when given (the
    domain's forms, `harness.bots.rasa_domain.load_domain(...).forms`), lets an `active_loop` naming no form be
    listed instead of checked. Paths in findings and comments are shown as given.

    Raises InputError for an empty name, a missing path, a folder without test files, an unreadable file and
    invalid YAML (`file:line:col`). Everything else that cannot be carried over is a `Finding`, never a silent drop.
    """
    if not eval_set_name.strip():
        raise InputError("the eval set needs a name", ["--name: give the eval set a name, e.g. the bot's name"])
    files = _story_files(paths)
    findings: list[Finding] = []
    if mapping is None:
        findings.append(
            Finding(
                FindingKind.untranslated,
                None,
                None,
                None,
                "no handoff mapping given: every conversation is expected to be self_served",
            )
        )
    else:
        findings += _invisible_signals(mapping)
    reader = _Reader(mapping, frozenset(forms) if forms is not None else None, findings)
    imported = [story for path in files for story in reader.file(path, _compose(path))]
    listed = ", ".join(p.as_posix() for p in files)
    description = f"Imported from Rasa test stories ({listed}) by `harness evalsets import-rasa`."
    return ImportResult(
        eval_set_name.strip(), description, tuple(files), tuple(imported), tuple(findings), reader.skipped
    )


def _story_files(paths: Sequence[Path]) -> list[Path]:
    if not paths:
        raise InputError("no test stories given", ["give Rasa test-story files or folders (e.g. tests/)"])
    files: list[Path] = []
    seen: set[Path] = set()
    problems: list[str] = []
    for path in paths:
        if path.is_file():
            found = [path]
        elif path.is_dir():
            found = sorted(
                (p for p in path.rglob(f"{TEST_FILE_PREFIX}*") if p.suffix in (".yml", ".yaml") and p.is_file()),
                key=lambda p: p.as_posix(),
            )
            if not found:
                problems.append(f"{path}: no {TEST_FILE_PREFIX}*.yml files in this folder (Rasa's test-story names)")
        else:
            problems.append(f"{path}: no such file or folder")
            found = []
        for item in found:
            if item.resolve() not in seen:
                seen.add(item.resolve())
                files.append(item)
    if problems:
        raise InputError("cannot find the test stories", problems)
    return files


def _compose(path: Path) -> Node | None:
    """The file's YAML node tree, read as Rasa reads it (YAML 1.2: `yes` stays a string)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError("cannot read the test stories", [f"{path}: {exc.strerror}"]) from None
    except UnicodeDecodeError as exc:
        raise InputError("the test stories are not UTF-8 text", [f"{path}: {exc}"]) from None
    parser = _yaml()
    try:
        node = parser.compose(text)
        if node is not None:
            parser.constructor.construct_document(node)  # duplicate keys surface here
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = exc.problem or exc.context or "invalid YAML"
        raise InputError("the test stories are not valid YAML", [f"{where}: {problem}"]) from None
    except YAMLError as exc:
        raise InputError("the test stories are not valid YAML", [f"{path}: {exc}"]) from None
    return node


def _yaml() -> YAML:
    parser = YAML(typ="safe", pure=True)
    parser.version = (1, 2)  # type: ignore[assignment]
    return parser


def _invisible_signals(mapping: HandoffMappingView) -> list[Finding]:
    """Handoff signals no test story can show (stories hold actions, intents, slots and texts)."""
    found = []
    for entry in mapping.handoffs:
        when = entry.when
        shown = f"{{event: {when.event}}}" if when.event is not None else f"{{payload: {when.payload}}}"
        if when.event is not None or when.payload is not None:
            found.append(
                Finding(
                    FindingKind.untranslated,
                    None,
                    None,
                    None,
                    f"{mapping.path}: handoff when {shown} cannot be seen in test stories (they show actions and"
                    " intents, not events or payloads); a story that hands off only this way is imported as"
                    " self_served: add the handoff action as `when: {action: <name>}` to the mapping",
                )
            )
    return found


# ------------------------------------------------------------------------------------------------ reading stories


class _Unknown:
    """A slot listed by name only: set, to a value the story does not say."""

    def __repr__(self) -> str:
        return "<a value the story does not give>"


UNKNOWN = _Unknown()
SlotValue = Scalar | _Unknown


@dataclass
class _TurnDraft:
    """One customer turn and the bot's reaction as the story tells it."""

    text: str | None
    """None when the step has no text to send (the story is skipped unless the turn falls after a handoff)."""
    intent: str | None
    """The eval-set label."""
    bot_intent: str | None
    """The intent a Rasa bot reports for the turn (for handoff matching)."""
    line: int
    events: list[tuple[str, str, SlotValue, int]] = field(default_factory=list)
    """("action", name, None, line) and ("slot", name, value, line) in story order: what handoff matching reads."""
    actions: list[str] = field(default_factory=list)
    slots: dict[str, Scalar] = field(default_factory=dict)
    slot_lines: dict[str, int] = field(default_factory=dict)
    bot_texts: list[str] = field(default_factory=list)

    def add_action(self, name: str, line: int) -> None:
        self.events.append(("action", name, None, line))
        if name not in self.actions:
            self.actions.append(name)

    def to_turn(self) -> Turn:
        reply = "[\\s\\S]*?".join(_text_pattern(t) for t in self.bot_texts) if self.bot_texts else None
        has_checks = bool(self.actions or self.slots or self.bot_texts)
        checks = TurnChecks(actions=self.actions, slots=self.slots, reply_matches=reply)
        return Turn(text=self.text or "", intent=self.intent, expect=checks if has_checks else None)


def _text_pattern(text: str) -> str:
    """A regular expression matching `text` literally, any run of white space matching any other."""
    return r"\s+".join(re.escape(part) for part in text.split())


@dataclass
class _Story:
    """The state of one story being read."""

    file: Path
    name: str
    line: int
    turns: list[_TurnDraft] = field(default_factory=list)
    before_first_turn: dict[str, SlotValue] = field(default_factory=dict)
    """Slots the story lists before its first customer message."""
    blockers: list[tuple[int, str]] = field(default_factory=list)
    """(line, why) of what makes the story impossible to replay."""
    notes: list[tuple[FindingKind, int, str]] = field(default_factory=list)

    def untranslated(self, line: int, message: str) -> None:
        self.notes.append((FindingKind.untranslated, line, message))

    def changed(self, line: int, message: str) -> None:
        self.notes.append((FindingKind.changed, line, message))

    def current(self, line: int, what: str) -> _TurnDraft | None:
        """The turn a bot-side step belongs to; None (and a finding) before the first customer message."""
        if not self.turns:
            self.untranslated(line, f"{what} before the first customer message: a replay starts with the customer")
            return None
        return self.turns[-1]


@dataclass(frozen=True)
class _Handoff:
    turn: int
    """Index of the turn that handed off."""
    line: int
    queue: str | None
    rule: str | None
    why_no_queue: str | None
    why_no_rule: str | None


class _Reader:
    def __init__(
        self, mapping: HandoffMappingView | None, forms: frozenset[str] | None, findings: list[Finding]
    ) -> None:
        self.mapping = mapping
        self.forms = forms
        self.findings = findings
        self.constructor = _yaml().constructor
        self.ids: dict[str, str] = {}
        """Conversation id -> where its story is (file:line), to keep ids unique."""
        self.skipped = 0

    def value(self, node: Node) -> Any:
        return self.constructor.construct_document(node)

    def text(self, node: Node) -> object:
        """A message as written: `user: 40012345` is the text '40012345', not a number (YAML would say int)."""
        value = self.value(node)
        if isinstance(node, ScalarNode) and isinstance(value, (int, float)):
            return str(node.value)
        return value

    def note(self, kind: FindingKind, path: Path, node: Node | None, story: str | None, message: str) -> None:
        self.findings.append(Finding(kind, path, _line(node) if node is not None else 1, story, message))

    def file(self, path: Path, root: Node | None) -> Iterator[ImportedStory]:
        if root is None:
            self.note(FindingKind.skipped, path, None, None, "the file is empty")
            return
        if not isinstance(root, MappingNode):
            self.note(FindingKind.skipped, path, root, None, "not a Rasa data file (expected keys such as stories:)")
            return
        sections = set()
        for key_node, value_node in root.value:
            key = self.value(key_node)
            sections.add(key)
            if key == "stories":
                yield from self.stories(path, value_node)
            elif key == "rules":
                self.rules(path, value_node)
            elif key != "version":
                what = "NLU examples (test them with `rasa test nlu`)" if key == "nlu" else f"key {key!r}"
                self.note(FindingKind.untranslated, path, key_node, None, f"{what}: not test stories, not imported")
        if not sections & {"stories", "rules"}:
            self.note(FindingKind.skipped, path, root, None, "no stories: in this file")

    def rules(self, path: Path, node: Node) -> None:
        if not isinstance(node, SequenceNode):
            self.note(FindingKind.skipped, path, node, None, "rules: is not a list of rules")
            return
        for item in node.value:
            self.skipped += 1
            self.note(
                FindingKind.skipped,
                path,
                item,
                self.item_name(item, "rule"),
                "a rule is a fragment of a conversation, not a conversation: rules are not imported"
                " (write the conversation it guards as a test story)",
            )

    def item_name(self, item: Node, key: str) -> str:
        if isinstance(item, MappingNode):
            for k, v in item.value:
                if self.value(k) == key:
                    return str(self.value(v) or "")
        return ""

    def stories(self, path: Path, node: Node) -> Iterator[ImportedStory]:
        if not isinstance(node, SequenceNode):
            self.note(FindingKind.skipped, path, node, None, "stories: is not a list of stories")
            return
        for item in node.value:
            if not isinstance(item, MappingNode):
                self.skipped += 1
                self.note(FindingKind.skipped, path, item, None, "a story must be a mapping with story: and steps:")
                continue
            imported = self.conversation(self.story(path, item))
            if imported is None:
                self.skipped += 1
            else:
                yield imported

    # -------------------------------------------------------------------------------------------------- one story

    def story(self, path: Path, item: MappingNode) -> _Story:
        fields = {self.value(k): (k, v) for k, v in item.value}
        name = self.value(fields["story"][1]) if "story" in fields else ""
        story = _Story(path, str(name or ""), _line(item))
        for key, (key_node, _) in fields.items():
            if key == "metadata":
                story.untranslated(_line(key_node), "story metadata is not imported")
            elif key not in ("story", "steps"):
                story.untranslated(_line(key_node), f"unknown story key {key!r} ignored (Rasa ignores it too)")
        steps = fields["steps"][1] if "steps" in fields else None
        if not isinstance(steps, SequenceNode) or not steps.value:
            story.blockers.append((_line(item), "the story has no steps"))
            return story
        last = len(steps.value) - 1
        for position, step in enumerate(steps.value):
            self.step(story, step, position, last)
        if not story.turns:
            story.blockers.append((_line(item), "no customer message (`user:` step) to replay"))
        return story

    def step(self, story: _Story, step: Node, position: int, last: int) -> None:
        line = _line(step)
        if not isinstance(step, MappingNode):
            story.untranslated(line, f"step {self.value(step)!r} is not a mapping: ignored (Rasa ignores it too)")
            return
        keys = {self.value(k): v for k, v in step.value}
        # A step's kind is its first known key in Rasa's order (YAMLStoryReader._parse_step).
        is_user = "user" in keys or "intent" in keys
        kind = "user" if is_user else next((k for k in STEP_KINDS if k in keys), None)
        if kind is None:
            close = difflib.get_close_matches(str(next(iter(keys), "")), [*STEP_KINDS, "user", "intent"], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            names = ", ".join(repr(k) for k in keys)
            story.untranslated(line, f"unknown step {names}{hint}: ignored (Rasa ignores it too)")
            return
        extra = [k for k in keys if k not in STEP_KEYS[kind]]
        if extra:
            story.untranslated(line, f"key(s) {', '.join(map(repr, extra))} of a {kind} step ignored")
        if kind == "user":
            self.user(story, keys, line)
        elif kind == "or":
            self.or_step(story, keys["or"], line)
        elif kind == "action":
            self.action(story, self.value(keys["action"]), line)
        elif kind == "bot":
            self.bot(story, self.text(keys["bot"]), line)
        elif kind == "checkpoint":
            self.checkpoint(story, self.value(keys["checkpoint"]), line, position, last)
        elif kind == "slot_was_set":
            self.slot_was_set(story, keys["slot_was_set"])
        elif kind == "active_loop":
            self.active_loop(story, self.value(keys["active_loop"]), line)
        else:
            story.untranslated(line, "metadata step is not imported")

    def user(self, story: _Story, keys: dict[Any, Node], line: int) -> None:
        intent_value = self.value(keys["intent"]) if "intent" in keys else None
        raw = self.text(keys["user"]) if "user" in keys else None
        text = None
        if "user" not in keys:
            story.blockers.append(
                (
                    line,
                    f"intent-only step (intent: {intent_value}): no customer text to send; add `user: <text>`"
                    " as in an end-to-end test story",
                )
            )
        elif not isinstance(raw, str) or not raw.strip():
            story.blockers.append((line, "empty `user:` text: nothing to send"))
        else:
            written = raw.strip()
            annotations = [m.group(0) for m in ENTITY_MARKUP.finditer(written)]
            text = ENTITY_MARKUP.sub(lambda m: m.group("entity_text"), written)
            if annotations:
                story.untranslated(
                    line,
                    f"entity annotation(s) {', '.join(annotations)} not checked (the eval set has no entity"
                    f" checks); sent as {text!r}",
                )
            if "entities" in keys:
                story.untranslated(line, "entities: not checked (the eval set has no entity checks)")
        bot_intent = self.bot_intent(story, intent_value, text or "", line)
        label = self.label(story, bot_intent, line)
        story.turns.append(_TurnDraft(text=text, intent=label, bot_intent=bot_intent, line=line))

    @staticmethod
    def bot_intent(story: _Story, value: object, text: str, line: int) -> str | None:
        """The intent a Rasa bot reports for this step: the written one without a leading `/` or a retrieval
        intent's response key; for text only, the intent of a `/intent{...}` payload, else None."""
        if value is None or (isinstance(value, str) and not value.strip()):
            payload = INTENT_PAYLOAD.match(text)
            return payload.group("intent") if payload else None
        if not isinstance(value, str):
            story.untranslated(line, f"intent {value!r} is not a name: the turn is unlabelled")
            return None
        name = value.strip().removeprefix("/")
        base, _, response_key = name.partition("/")
        if response_key:
            story.changed(
                line,
                f"retrieval intent {name!r} labelled {base!r} (what the bot reports; the response is checked"
                " only through its utter_ action, if the story lists it)",
            )
        return base

    @staticmethod
    def label(story: _Story, intent: str | None, line: int) -> str | None:
        """The eval-set label of a bot intent: `nlu_fallback` is the harness's `out_of_scope`."""
        if intent == NLU_FALLBACK:
            story.changed(line, f"intent {NLU_FALLBACK!r} labelled {OUT_OF_SCOPE!r} (a correct bot declines it)")
            return OUT_OF_SCOPE
        return intent

    def or_step(self, story: _Story, node: Node, line: int) -> None:
        alternatives = node.value if isinstance(node, SequenceNode) else []
        keys = [{self.value(k) for k, _ in a.value} if isinstance(a, MappingNode) else set() for a in alternatives]
        if keys and all(k == {"slot_was_set"} for k in keys):
            story.untranslated(line, "or: of slot values: the slots are not checked (a check needs one value)")
            return
        story.blockers.append(
            (line, "or: alternatives of customer messages: the turn is not one text; write one test story each")
        )
        # The alternatives are a customer turn: the steps after it belong to it, not to the previous turn.
        story.turns.append(_TurnDraft(text=None, intent=None, bot_intent=None, line=line))

    def action(self, story: _Story, name: object, line: int) -> None:
        if not isinstance(name, str) or not name.strip():
            story.untranslated(line, "action step without an action name ignored (Rasa ignores it too)")
            return
        name = name.strip()
        if name == ACTION_LISTEN:
            return
        turn = story.current(line, f"action {name!r}")
        if turn is not None:
            turn.add_action(name, line)

    @staticmethod
    def bot(story: _Story, text: object, line: int) -> None:
        if not isinstance(text, str) or not text.strip():
            story.untranslated(line, "bot step without text ignored")
            return
        turn = story.current(line, "bot utterance")
        if turn is not None:
            turn.bot_texts.append(text.strip())

    @staticmethod
    def checkpoint(story: _Story, name: object, line: int, position: int, last: int) -> None:
        if position == last:
            story.untranslated(
                line,
                f"checkpoint {name!r} ends the story: the stories continuing from it are not joined; the"
                " conversation stops here",
            )
            return
        where = "starts" if position == 0 else "sits in the middle of"
        story.blockers.append(
            (
                line,
                f"checkpoint {name!r} {where} the story: it continues another story's conversation; write the"
                " joined conversation as one test story",
            )
        )

    def slot_was_set(self, story: _Story, node: Node) -> None:
        for item in node.value if isinstance(node, SequenceNode) else [node]:
            line = _line(item)
            value = self.value(item)
            if isinstance(value, str):
                self.set_slot(story, value, UNKNOWN, line)
                story.untranslated(
                    line, f"slot_was_set of {value!r} without a value: not checked (a check needs the value)"
                )
            elif isinstance(value, dict):
                for slot, slot_value in value.items():
                    if isinstance(slot_value, (list, dict)):
                        self.set_slot(story, str(slot), UNKNOWN, line)
                        story.untranslated(
                            line, f"slot {slot!r} set to {slot_value!r}: list and mapping values are not checked"
                        )
                    else:
                        self.set_slot(story, str(slot), slot_value, line)
            else:
                story.untranslated(line, f"slot_was_set item {value!r} is neither a name nor name: value")

    @staticmethod
    def set_slot(story: _Story, slot: str, value: SlotValue, line: int) -> None:
        turn = story.current(line, f"slot_was_set of {slot!r}")
        if turn is None:
            story.before_first_turn[slot] = value
            return
        turn.events.append(("slot", slot, value, line))
        if isinstance(value, _Unknown):
            turn.slots.pop(slot, None)  # the last value is unknown: nothing left to check
            return
        if slot in turn.slots and turn.slots[slot] != value:
            story.changed(
                line,
                f"slot {slot!r} listed again in the same turn ({_show(turn.slots[slot])} at line"
                f" {turn.slot_lines[slot]}, now {_show(value)}): the last value is checked, as the bot reports it",
            )
        turn.slots[slot] = value
        turn.slot_lines[slot] = line

    def active_loop(self, story: _Story, name: object, line: int) -> None:
        if name is None:
            story.untranslated(line, "active_loop: null (the form ends) is not checked")
            return
        if not isinstance(name, str) or not name.strip():
            story.untranslated(line, f"active_loop {name!r} is not a form name: ignored")
            return
        if self.forms is not None and name not in self.forms:
            close = difflib.get_close_matches(name, sorted(self.forms), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            story.untranslated(line, f"active_loop {name!r} is not a form of the domain{hint}: not checked")
            return
        turn = story.current(line, f"active_loop {name!r}")
        if turn is not None:
            turn.add_action(name, line)

    # ----------------------------------------------------------------------------------------------- handoffs

    def handoff(self, story: _Story) -> _Handoff | None:
        """The first turn a mapping entry matches, as `harness.bots.handoff_mapping.detect_handoff` would see it."""
        if self.mapping is None:
            return None
        state: dict[str, SlotValue] = dict(story.before_first_turn)
        for index, turn in enumerate(story.turns):
            for entry in self.mapping.handoffs:
                match = _match(entry.when, turn)
                if match is None:
                    continue
                position, action = match
                line = turn.events[position][3] if action is not None else turn.line
                queue, why_queue = self.resolve(entry.queue, state, turn, position, action, self.mapping.queues)
                rule, why_rule = (None, None)
                if entry.rule is not None:
                    rule, why_rule = self.resolve(entry.rule, state, turn, position, action, self.mapping.rules)
                return _Handoff(index, line, queue, rule, why_queue, why_rule)
            state.update({name: value for kind, name, value, _ in turn.events if kind == "slot"})
        return None

    def resolve(
        self,
        source: HandoffSource,
        state: Mapping[str, SlotValue],
        turn: _TurnDraft,
        position: int,
        action: str | None,
        table: Mapping[str, str],
    ) -> tuple[str | None, str | None]:
        """(name, None), or (None, why not), for a handoff's queue or rule read from `source`."""
        assert self.mapping is not None  # only called for a matched mapping entry
        if source.value is not None:
            return source.value, None
        if source.payload is not None:
            return None, f"it comes from the bot's payload key {source.payload!r}, which test stories do not show"
        if source.slot is not None:
            value = _slot_at(source.slot, state, turn, position, action)
            if isinstance(value, _Unknown):
                return None, f"slot {source.slot!r} is listed without a value; give its value"
            if value is None:
                return None, (
                    f"slot {source.slot!r} has no value when the handoff happens (the harness reads it as it was"
                    f" when the handoff action ran); list `- slot_was_set: [{source.slot}: <value>]` before it"
                )
            word = value if isinstance(value, str) else json.dumps(value)
        else:
            word = action or ""
        if word in table:
            return table[word], None
        close = difflib.get_close_matches(word, sorted(table), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return None, f"{word!r} is not translated by {self.mapping.path}{hint}; add `{word}: <name>` to it"

    # ---------------------------------------------------------------------------------------------- conversation

    def conversation(self, story: _Story) -> ImportedStory | None:
        handoff = self.handoff(story)
        turns = story.turns
        notes, blockers = list(story.notes), list(story.blockers)
        if handoff is not None and handoff.turn + 1 < len(turns):
            # A handed-off conversation is the person's from then on: what the story says after it is not replayed.
            cut = turns[handoff.turn + 1].line
            notes = [n for n in notes if n[1] < cut]
            blockers = [b for b in blockers if b[0] < cut]
            notes.append(
                (
                    FindingKind.changed,
                    cut,
                    f"the handoff at line {handoff.line} ends the conversation: {len(turns) - handoff.turn - 1}"
                    " later customer turn(s) dropped (after a handoff a person answers, not the bot)",
                )
            )
            turns = turns[: handoff.turn + 1]
        if handoff is not None and handoff.queue is None:
            blockers.append((handoff.line, f"the turn hands off, but its queue is unknown: {handoff.why_no_queue}"))
        if blockers:
            for line, message in sorted(blockers):
                self.findings.append(Finding(FindingKind.skipped, story.file, line, story.name, message))
            return None
        expected = Expected(outcome=Outcome.self_served)
        if handoff is not None:
            if handoff.why_no_rule is not None:
                notes.append((FindingKind.untranslated, handoff.line, f"no expected rule: {handoff.why_no_rule}"))
            expected = Expected(outcome=Outcome.escalated, queue=handoff.queue, rule=handoff.rule)
        conversation_id, id_notes = self.unique_id(story)
        notes += id_notes
        try:
            conversation = Conversation(
                id=conversation_id,
                tags=[TAG, story.file.stem],
                turns=[turn.to_turn() for turn in turns],
                expected=expected,
                resolvable=expected.outcome is Outcome.self_served,
            )
        except ValidationError as exc:  # defensive: every field above is built to be valid
            self.findings.append(Finding(FindingKind.skipped, story.file, story.line, story.name, f"invalid: {exc}"))
            return None
        self.ids[conversation_id] = f"{story.file}:{story.line}"
        for kind, line, message in sorted(notes, key=lambda n: n[1]):
            self.findings.append(Finding(kind, story.file, line, story.name, message))
        return ImportedStory(conversation, story.file, story.line, story.name)

    def unique_id(self, story: _Story) -> tuple[str, list[tuple[FindingKind, int, str]]]:
        """The story's conversation id (its name slugified, numbered when taken) and notes on how it was made."""
        notes = []
        base = _slug(story.name)
        if not base:
            base = f"{_slug(story.file.stem) or 'story'}-line-{story.line}"
            notes.append((FindingKind.changed, story.line, f"the story has no usable name: id {base!r}"))
        candidate, n = base, 1
        while candidate in self.ids:
            n += 1
            candidate = f"{base}-{n}"
        if candidate != base:
            taken = f"id {base!r} already used by the story at {self.ids[base]}: this one is {candidate!r}"
            notes.append((FindingKind.changed, story.line, taken))
        return candidate, notes


def _match(when: HandoffWhen, turn: _TurnDraft) -> tuple[int, str | None] | None:
    """(position in the turn's events, matched action) when `when` is observed in the turn, else None."""
    if when.action is not None:
        wanted = _names(when.action)
        for position, (kind, name, _, _) in enumerate(turn.events):
            if kind == "action" and name in wanted:
                return position, name
        return None
    if when.intent is not None and turn.bot_intent is not None and turn.bot_intent in _names(when.intent):
        return len(turn.events), None
    return None


def _slot_at(
    name: str, state: Mapping[str, SlotValue], turn: _TurnDraft, position: int, action: str | None
) -> SlotValue:
    """The slot as the harness reads it at a handoff: its value when the matched action ran; for an intent match,
    at the end of the turn, or the turn's last value if the turn ended with the slot cleared."""
    value = state.get(name)
    for kind, slot, slot_value, _ in turn.events[:position]:
        if kind == "slot" and slot == name:
            value = slot_value
    if value is None and action is None:
        in_turn = [v for kind, slot, v, _ in turn.events if kind == "slot" and slot == name and v is not None]
        value = in_turn[-1] if in_turn else None
    return value


def _show(value: Scalar) -> str:
    """A slot value as YAML writes it, for messages."""
    return json.dumps(value) if value is None or isinstance(value, bool) else repr(value)


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _slug(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return SLUG_INVALID.sub("-", ascii_name.strip().lower()).strip("-._")


# -------------------------------------------------------------------------------------------------------- writing


def render_eval_set(result: ImportResult) -> str:
    """The eval-set YAML text of `result`, laid out as the hand-written sets are, each conversation preceded by a
    comment naming its story and where it is. InputError when no story could be imported."""
    if not result.conversations:
        raise InputError(
            "no test story could be imported, so there is no eval set to write",
            [str(f) for f in result.of_kind(FindingKind.skipped)] or ["the files hold no stories"],
        )
    lines = [
        f"version: {FORMAT_VERSION}",
        f"name: {_scalar(result.eval_set_name)}",
        f"description: {_quoted(result.description)}",
        "conversations:",
    ]
    for index, item in enumerate(result.conversations):
        c = item.conversation
        if index:
            lines.append("")
        lines.append(f"  # story {_quoted(' '.join(item.story.split()))} ({item.file.as_posix()}:{item.line})")
        lines.append(f"  - id: {_scalar(c.id)}")
        lines.append(f"    tags: {_flow(c.tags)}")
        lines.append("    turns:")
        for turn in c.turns:
            lines.append(f"      - text: {_quoted(turn.text)}")
            lines.append(f"        intent: {_scalar(turn.intent)}")
            if turn.expect is not None:
                lines.append("        expect:")
                if turn.expect.actions:
                    lines.append(f"          actions: {_flow(turn.expect.actions)}")
                if turn.expect.slots:
                    lines.append("          slots:")
                    lines += [f"            {_scalar(k)}: {_scalar(v)}" for k, v in turn.expect.slots.items()]
                if turn.expect.reply_matches is not None:
                    lines.append(f"          reply_matches: {_quoted(turn.expect.reply_matches)}")
        lines.append("    expected:")
        lines.append(f"      outcome: {c.expected.outcome.value}")
        if c.expected.queue is not None:
            lines.append(f"      queue: {_scalar(c.expected.queue)}")
        if c.expected.rule is not None:
            lines.append(f"      rule: {_scalar(c.expected.rule)}")
        lines.append(f"    resolvable: {_scalar(c.resolvable)}")
    text = "\n".join(lines) + "\n"
    _check_round_trip(text, result)
    return text


def write_eval_set(result: ImportResult, out_path: Path, *, overwrite: bool = False) -> Path:
    """Write `result` to `out_path` (parent folders created) and return the path.

    Raises InputError when the file exists and `overwrite` is false (it is left untouched), or when there is
    nothing to write. The file is written whole or not at all (a temporary file renamed into place).
    """
    if out_path.exists() and not overwrite:
        raise InputError(
            "the eval-set file already exists",
            [f"{out_path}: not replaced; pass --overwrite to replace it, or choose another --out"],
        )
    text = render_eval_set(result)
    partial = out_path.with_name(f".{out_path.name}.partial")
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, out_path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise InputError("cannot write the eval set", [f"{out_path}: {exc.strerror}"]) from None
    return out_path


def check_loads(
    result: ImportResult, *, intents: Iterable[str], queues: Iterable[str], rules: Iterable[str] = ()
) -> None:
    """Check the eval set loads with `harness.project.eval_set.load_eval_sets` against a bot's vocabulary (for
    the `rasa` kind: the domain's intents, the handoff mapping's queue and rule names) before it is written.

    Raises InputError listing every problem (an intent the domain lacks, ...) located by conversation id.
    """
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "imported.yml"
        path.write_text(render_eval_set(result), encoding="utf-8")
        try:
            load_eval_sets(path, intents=intents, queues=queues, rules=rules)
        except InputError as exc:
            problems = [p.replace(str(path), f"eval set {result.eval_set_name!r}") for p in exc.problems]
            raise InputError(
                f"the imported eval set does not fit the bot's vocabulary ({exc.summary})", problems
            ) from None


PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
YAML11_WORDS = {"y", "yes", "n", "no", "true", "false", "on", "off", "null"}
"""Words PyYAML (the eval-set loader, YAML 1.1) would read as booleans or null if left unquoted."""


def _scalar(value: Scalar) -> str:
    """A YAML scalar as PyYAML reads it back: plain names stay plain, everything else is quoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return yaml.safe_dump(value).split("\n", 1)[0]
    if PLAIN.match(value) and value.lower() not in YAML11_WORDS:
        return value
    return _quoted(value)


def _quoted(text: str) -> str:
    return yaml.safe_dump(text, default_style='"', allow_unicode=True, width=2**31).rstrip("\n")


def _flow(items: Iterable[str]) -> str:
    return "[" + ", ".join(_scalar(i) for i in items) + "]"


def _check_round_trip(text: str, result: ImportResult) -> None:
    """The text must read back as exactly the imported conversations (guards the hand-made layout)."""
    header = EvalSetHeader.model_validate(yaml.safe_load(text))
    read = [Conversation.model_validate(item) for item in header.conversations]
    if header.name != result.eval_set_name or read != [i.conversation for i in result.conversations]:
        raise RuntimeError("the eval-set text does not read back as the imported conversations (a harness bug)")
