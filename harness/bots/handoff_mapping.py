"""The handoff mapping of a stock Rasa bot (`handoff.yml`): how the harness recognises, from a turn's tracker events
and REST reply, that the bot handed the conversation to a human, and which eval-set queue and rule that was.

A stock Rasa assistant has no notion of "handoff"; each project signals it its own way (a custom action, a
`ConversationPaused` event, a custom payload for the front end, an intent). The mapping says which:

```yaml
version: 1
handoffs:                       # the first entry whose `when` is observed in a turn is the turn's handoff
  - when: {action: action_handoff}    # an action ran (a name or a list of names), or {event: pause} (Rasa's
                                      # ConversationPaused), {payload: <key>} (a custom payload in the REST reply
                                      # has that key; dotted paths reach into nested objects), {intent: <name(s)>},
                                      # {slot: <name>} (the turn set that slot to a value, not null)
    queue: {slot: handoff_to}         # the slot's value when the handoff happened (see detect_handoff),
                                      # {value: <queue>} (a constant, already an eval-set queue name),
                                      # {payload: <key>} (that key's value in the custom payload),
                                      # {action: true} (the name of the action that matched `when`)
    rule: {value: bot_handoff}        # optional; the same forms as queue
queues:                         # the bot's words -> the eval sets' queue names (for slot, payload, action sources)
  billing_team: billing
rules:                          # the same for rules read from slots, payloads or actions (optional)
  too_many_fallbacks: repeated_fallback
```

A value that `queues` (or `rules`) does not list gives the turn a handoff with a null queue (rule) and a
`UnmappedHandoffValue` warning that names the value and how to add it.

A bot that never hands off (Rasa's starter) declares `handoffs: []`: containment, completion and the outcome matrix
are then measured, not undefined.

Rasa logs a custom action as run even when it failed (the action server was down; measured on Rasa 3.6.21,
`tests/fixtures/stock_rasa/wire/no_action_server.json`); such an action is followed at once by the fallback and a
reverted message, and is not counted as a handoff (`_failed`).
"""

from __future__ import annotations

import difflib
import json
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, model_validator

from harness.bots.base import Handoff
from harness.errors import InputError
from harness.project.problems import read_yaml, unknown, yaml_location


class UnmappedHandoffValue(UserWarning):
    """The bot handed off with a queue or rule value the handoff mapping does not translate."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _exactly_one(model: BaseModel, what: str) -> None:
    given = [name for name in type(model).model_fields if getattr(model, name) is not None]
    if len(given) != 1:
        keys = ", ".join(type(model).model_fields)
        got = f" (got {', '.join(given)})" if given else ""
        raise ValueError(f"{what} takes exactly one of {keys}{got}")


class When(_Strict):
    """What, observed in a turn, means the bot handed off."""

    action: str | list[str] | None = None
    """An action (or any of several actions) ran in the turn."""
    event: Literal["pause"] | None = None
    """Rasa's `ConversationPaused` event (`{"event": "pause"}`) was logged in the turn."""
    payload: str | None = None
    """A custom payload in the REST reply has this key (dotted path for nested keys)."""
    intent: str | list[str] | None = None
    """The turn's recognised intent is this one (or one of these)."""
    slot: str | None = None
    """The turn set this slot to a value (not null): for bots that signal a handoff by a slot, such as a ticket id."""

    @model_validator(mode="after")
    def _one(self) -> When:
        _exactly_one(self, "`when`")
        return self

    def actions(self) -> tuple[str, ...]:
        return _names(self.action)

    def intents(self) -> tuple[str, ...]:
        return _names(self.intent)


class Source(_Strict):
    """Where a handoff's queue (or rule) comes from."""

    slot: str | None = None
    """The slot's value when the handoff happened (see `detect_handoff`)."""
    value: str | None = None
    """A constant, already in the eval sets' vocabulary (not translated by `queues`/`rules`)."""
    payload: str | None = None
    """The value of this key (dotted path) in the REST reply's custom payload."""
    action: Literal[True] | None = None
    """The name of the action that matched `when: {action: ...}`."""

    @model_validator(mode="after")
    def _one(self) -> Source:
        _exactly_one(self, "a queue or rule source")
        return self

    @property
    def translated(self) -> bool:
        """True when the value is the bot's word, looked up in `queues` / `rules`."""
        return self.value is None

    def describe(self) -> str:
        if self.slot is not None:
            return f"slot {self.slot}"
        if self.payload is not None:
            return f"payload key {self.payload}"
        if self.action is not None:
            return "the action's name"
        return f"value {self.value}"


class HandoffEntry(_Strict):
    when: When
    queue: Source
    rule: Source | None = None

    @model_validator(mode="after")
    def _action_source(self) -> HandoffEntry:
        for name, source in (("queue", self.queue), ("rule", self.rule)):
            if source is not None and source.action and self.when.action is None:
                raise ValueError(
                    f"{name}: {{action: true}} names the action of `when: {{action: ...}}`, and this "
                    "entry's `when` is not an action"
                )
        return self


class HandoffMapping(_Strict):
    """A validated `handoff.yml` (see the module docstring). `path` is where it was read, for messages."""

    version: Literal[1]
    handoffs: list[HandoffEntry]
    """Empty (`handoffs: []`) for a bot that never hands off: handoffs are then observed, and there are none."""
    queues: dict[str, str] = {}
    """The bot's queue words -> eval-set queue names."""
    rules: dict[str, str] = {}
    """The bot's rule words -> eval-set rule names."""
    _path: str = PrivateAttr("handoff.yml")

    @property
    def path(self) -> str:
        """The file the mapping was read from, for messages."""
        return self._path

    @property
    def declares_rules(self) -> bool:
        return any(entry.rule is not None for entry in self.handoffs)

    @property
    def observes_pause(self) -> bool:
        return any(entry.when.event == "pause" for entry in self.handoffs)

    def queue_names(self) -> tuple[str, ...]:
        """The eval-set queue names this mapping can produce: `queues` values and `value:` queue constants."""
        constants = [e.queue.value for e in self.handoffs if e.queue.value is not None]
        return tuple(sorted({*self.queues.values(), *constants}))

    def rule_names(self) -> tuple[str, ...]:
        """The eval-set rule names this mapping can produce: `rules` values and `value:` rule constants."""
        constants = [e.rule.value for e in self.handoffs if e.rule is not None and e.rule.value is not None]
        return tuple(sorted({*self.rules.values(), *constants}))


_KEYS = {
    "top": ("version", "handoffs", "queues", "rules"),
    "entry": tuple(HandoffEntry.model_fields),
    "when": tuple(When.model_fields),
    "source": tuple(Source.model_fields),
}


def _keys_at(loc: tuple[Any, ...]) -> tuple[str, ...]:
    """The keys allowed where an unknown key `loc[-1]` was found."""
    parent = loc[:-1]
    if len(parent) == 0:
        return _KEYS["top"]
    if len(parent) == 2 and parent[0] == "handoffs":
        return _KEYS["entry"]
    if len(parent) == 3 and parent[2] == "when":
        return _KEYS["when"]
    if len(parent) == 3 and parent[2] in ("queue", "rule"):
        return _KEYS["source"]
    return ()


def _message(error: Mapping[str, Any]) -> str:
    loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden" and loc:
        allowed = _keys_at(loc)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown key{hint}; allowed here: {', '.join(allowed)}"
    if error["type"] == "literal_error" and loc and loc[-1] == "event":
        return f"unknown event {error['input']!r}; the only event is 'pause' (Rasa's ConversationPaused)"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def load_handoff_mapping(path: Path) -> HandoffMapping:
    """The mapping in the YAML file at `path`.

    Raises InputError listing every problem as `<file>: <location>: <message>` (unknown keys with did-you-mean).
    """
    raw = read_yaml(path, "handoff mapping")
    if not isinstance(raw, dict):
        got = "an empty file" if raw is None else f"a {type(raw).__name__}"
        raise InputError("invalid handoff mapping", [f"{path}: expected `version: 1` and `handoffs:`, got {got}"])
    try:
        mapping = HandoffMapping.model_validate(raw)
    except ValidationError as exc:
        raise InputError(
            "invalid handoff mapping",
            [f"{path}: {yaml_location(tuple(e['loc']), raw)}: {_message(e)}" for e in exc.errors()],
        ) from None
    problems = [f"{path}: {problem}" for problem in _translation_problems(mapping)]
    if problems:
        raise InputError("invalid handoff mapping", problems)
    mapping._path = str(path)
    return mapping


def _translation_problems(mapping: HandoffMapping) -> list[str]:
    """A queue (rule) read from the bot's words needs `queues:` (`rules:`) to translate them."""
    problems = []
    for index, entry in enumerate(mapping.handoffs):
        for name, source, table in (("queue", entry.queue, mapping.queues), ("rule", entry.rule, mapping.rules)):
            if source is not None and source.translated and not table:
                problems.append(
                    f"handoffs[{index}].{name}: reads the bot's word from {source.describe()}, but the file has no "
                    f"`{name}s:` section to translate it; add `{name}s: {{<bot's word>: <{name} name>}}`, or use "
                    f"`{name}: {{value: <{name} name>}}`"
                )
    return problems


def check_against_domain(
    mapping: HandoffMapping, *, intents: Iterable[str], actions: Iterable[str], slots: Iterable[str]
) -> None:
    """Check the names the mapping uses exist in the bot's domain (Rasa's default actions count as known).

    Raises InputError listing each unknown action, intent or slot with its location and a did-you-mean.
    """
    known = {"action": set(actions), "intent": {*intents, "nlu_fallback", "out_of_scope"}, "slot": set(slots)}
    problems: list[str] = []
    for index, entry in enumerate(mapping.handoffs):
        where = f"{mapping.path}: handoffs[{index}]"
        for action in entry.when.actions():
            if action not in known["action"]:
                problems.append(f"{where}.when.action: {unknown('action', action, known['action'])}")
        for intent in entry.when.intents():
            if intent not in known["intent"]:
                problems.append(f"{where}.when.intent: {unknown('intent', intent, known['intent'])}")
        if entry.when.slot is not None and entry.when.slot not in known["slot"]:
            problems.append(f"{where}.when.slot: {unknown('slot', entry.when.slot, known['slot'])}")
        for name, source in (("queue", entry.queue), ("rule", entry.rule)):
            if source is not None and source.slot is not None and source.slot not in known["slot"]:
                problems.append(f"{where}.{name}.slot: {unknown('slot', source.slot, known['slot'])}")
    if problems:
        raise InputError("the handoff mapping names what the bot's domain does not have", problems)


def detect_handoff(
    mapping: HandoffMapping,
    turn_events: Sequence[Mapping[str, Any]],
    tracker: Mapping[str, Any],
    payloads: Sequence[Any],
) -> Handoff | None:
    """The handoff observed in one turn, or None.

    `turn_events`: the tracker events of the turn (from its `user` event on, in the tracker's `as_dict` form);
    `tracker`: the tracker state after the turn; its `events`, when present, end with `turn_events`;
    `payloads`: the `custom` parts of the turn's REST reply, in order.

    The first mapping entry whose `when` is observed decides. A handoff action that failed (`_failed`: logged,
    then straight on to the fallback and a reverted message) is not a handoff: the customer got the fallback.
    A `{slot: ...}` source reads the slot as it was when the handoff happened: when the matched action ran (what
    that action itself read) or the pause was logged; for an intent or payload match, at the end of the turn, or
    the last value the turn gave it if it ended cleared. Bots often clear the slot in the handoff action, hence
    the care. A bot value `queues`/`rules` does not
    translate gives a null queue/rule and an `UnmappedHandoffValue` warning. No I/O.
    """
    user = next((e for e in turn_events if e.get("event") == "user"), None)
    intent = ((user or {}).get("parse_data") or {}).get("intent") or {}
    for entry in mapping.handoffs:
        match = _match(entry.when, turn_events, intent.get("name"), payloads)
        if match is None:
            continue
        context = _Context(mapping, turn_events, tracker, payloads, match)
        queue = context.resolve(entry.queue, "queue", mapping.queues)
        rule = context.resolve(entry.rule, "rule", mapping.rules) if entry.rule is not None else None
        return Handoff(queue, rule)
    return None


@dataclass(frozen=True)
class _Match:
    at: int
    """Index in the turn's events of the event that matched (the turn's length for intent and payload matches)."""
    action: str | None = None
    """The matched action's name."""


def _match(
    when: When, events: Sequence[Mapping[str, Any]], intent: str | None, payloads: Sequence[Any]
) -> _Match | None:
    if when.action is not None:
        wanted = when.actions()
        for index, event in enumerate(events):
            if event.get("event") == "action" and event.get("name") in wanted and not _failed(events, index):
                return _Match(index, str(event["name"]))
        return None
    if when.event is not None:
        return next((_Match(i) for i, e in enumerate(events) if e.get("event") == when.event), None)
    if when.slot is not None:
        return next(
            (
                _Match(i)
                for i, e in enumerate(events)
                if e.get("event") == "slot" and e.get("name") == when.slot and e.get("value") is not None
            ),
            None,
        )
    if when.payload is not None:
        found = any(_lookup(p, when.payload) is not _MISSING for p in payloads)
        return _Match(len(events)) if found else None
    return _Match(len(events)) if intent is not None and intent in when.intents() else None


def _failed(events: Sequence[Mapping[str, Any]], index: int) -> bool:
    """True when the action at `index` failed: Rasa still logs a custom action it could not run (action server
    down, an exception in the action), then goes straight on to another action (its fallback) with no event of the
    action's own (no message, no slot), and reverts the customer's message (`rewind`) later in the turn."""
    following = events[index + 1 : index + 2]
    went_on = bool(following) and following[0].get("event") == "action"
    return went_on and any(e.get("event") == "rewind" for e in events[index + 1 :])


class _Missing:
    pass


_MISSING: Any = _Missing()


def _lookup(payload: Any, path: str) -> Any:
    node = payload
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return _MISSING
        node = node[key]
    return node


_CLEARS_SLOTS = frozenset({"restart", "reset_slots", "session_started"})
"""Events after which Rasa's tracker has no slot values (a new session's carried-over slots are set again after)."""


def _slot_before(events: Iterable[Mapping[str, Any]], name: str, start: Any = None) -> Any:
    value = start
    for event in events:
        kind = event.get("event")
        if kind == "slot" and event.get("name") == name:
            value = event.get("value")
        elif kind in _CLEARS_SLOTS:
            value = None
    return value


class _Context:
    def __init__(
        self,
        mapping: HandoffMapping,
        events: Sequence[Mapping[str, Any]],
        tracker: Mapping[str, Any],
        payloads: Sequence[Any],
        match: _Match,
    ) -> None:
        self.mapping, self.events, self.tracker, self.payloads, self.match = mapping, events, tracker, payloads, match

    def slot(self, name: str) -> Any:
        history = list(self.tracker.get("events") or [])
        if len(history) >= len(self.events):
            before_turn = _slot_before(history[: len(history) - len(self.events)], name)
        else:  # a tracker without its events: undo nothing, start from its current value
            before_turn = (self.tracker.get("slots") or {}).get(name)
        value = _slot_before(self.events[: self.match.at], name, before_turn)
        if value is None and self.match.action is None:
            in_turn = [e.get("value") for e in self.events if e.get("event") == "slot" and e.get("name") == name]
            value = next((v for v in reversed(in_turn) if v is not None), None)
        return value

    def raw(self, source: Source) -> Any:
        if source.value is not None:
            return source.value
        if source.slot is not None:
            return self.slot(source.slot)
        if source.payload is not None:
            found = (_lookup(p, source.payload) for p in self.payloads)
            return next((value for value in found if value is not _MISSING), None)
        return self.match.action

    def resolve(self, source: Source, what: str, table: Mapping[str, str]) -> str | None:
        value = self.raw(source)
        if not source.translated:
            return str(value)
        if value is None:
            warnings.warn(
                f"{self.mapping.path}: the bot handed off but {source.describe()} has no value, so the turn's "
                f"handoff {what} is null",
                UnmappedHandoffValue,
                stacklevel=3,
            )
            return None
        word = value if isinstance(value, str) else json.dumps(value)
        if word in table:
            return table[word]
        warnings.warn(
            f"{self.mapping.path}: the bot handed off with {what} {word!r} (from {source.describe()}), which "
            f"`{what}s:` does not translate, so the turn's handoff {what} is null; add `{word}: <{what} name>` "
            f"under `{what}s:` in {self.mapping.path}",
            UnmappedHandoffValue,
            stacklevel=3,
        )
        return None


def _names(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)
