"""Entity markup in training examples (`lost my [debit card](card_type)`), read with Rasa's own grammar.

The harness environment cannot import Rasa, so the reader is a copy of Rasa 3.6's
`rasa/shared/nlu/training_data/entities_parser.py`: `ENTITY_REGEX` and `SINGLE_ENTITY_DICT` verbatim,
`find_entities_in_training_example` (here `find_entities`), `replace_entities` (here `plain_text`) and
`get_validated_dict` with the schema of `rasa/shared/nlu/training_data/schemas/data_schema.py`
(`entity_dict_schema`: an object whose `entity` is required, whose `entity`, `role` and `group` are strings and whose
`value` is a string or a number). The table `tests/data/entity_annotations.json` is checked against this module
(tests/harness/test_entity_markup.py) and against Rasa itself in the bot environment
(tests/bot/test_entity_markup_rasa.py), so a divergence fails a test.

The forms Rasa reads:
- `[text](entity)` and `[text](entity:value)`;
- `[text]{"entity": "name", "value": "v", "role": "r", "group": "g"}` (a JSON object);
- `[text][{"entity": "a"}, {"entity": "b", "role": "r"}]` (several entities on the same text).

Rasa reads more than a trainer means: `[Visa]("card_type")` is an entity named `"card_type"`, quotes included,
and `[Visa]( card_type)` one named ` card_type`. `lint` names such annotations, annotations Rasa refuses (the
JSON of a dict form that is not valid, or not an entity object), brackets Rasa leaves in the text, and entities
the bot's domain does not declare.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.project.problems import read_yaml

# Verbatim from rasa/shared/nlu/training_data/entities_parser.py (Rasa 3.6).
ENTITY_REGEX = re.compile(
    r"\[(?P<entity_text>[^\]]+?)\](\((?P<entity>[^:)]+?)(?:\:(?P<value>[^)]+))?\)|\{(?P<entity_dict>[^}]+?)\}|\[(?P<list_entity_dicts>.*?)\])"  # noqa: E501
)
SINGLE_ENTITY_DICT = re.compile(r"{(?P<entity_dict>[^}]+?)\}")

_DICT_STRING_KEYS = ("entity", "role", "group")
"""Properties of Rasa's `entity_dict_schema` of JSON type string when present (`value` may also be a number)."""
_LEFTOVER = re.compile(r"\[[^\]]*\][({\[]")
"""Brackets followed by `(`, `{` or `[` that survive `plain_text`: markup Rasa did not read as an annotation."""
_QUOTES = "\"'`\u2018\u2019\u201c\u201d"


class MarkupError(ValueError):
    """An annotation Rasa refuses (its training stops): the dict form's JSON is not valid, or not an entity."""


@dataclass(frozen=True, slots=True)
class Entity:
    """One entity as Rasa builds it (`rasa.shared.nlu.training_data.util.build_entity`)."""

    start: int
    """Offset of the annotated text in the plain text (markup removed)."""
    end: int
    entity: str
    """The entity name as Rasa reads it (a string; quotes or spaces included when the trainer wrote them)."""
    value: str | int | float
    """The value Rasa stores: the annotated text unless the markup gives one."""
    role: str | None = None
    group: str | None = None

    def as_rasa(self) -> dict[str, Any]:
        """The dict Rasa's parser returns for this entity (role and group only when set)."""
        found: dict[str, Any] = {"start": self.start, "end": self.end, "value": self.value, "entity": self.entity}
        if self.role:
            found["role"] = self.role
        if self.group:
            found["group"] = self.group
        return found


def plain_text(example: str) -> str:
    """The example as the customer typed it: every annotation replaced by its text (Rasa's `replace_entities`)."""
    return ENTITY_REGEX.sub(lambda m: m.group("entity_text"), example)


def find_entities(example: str) -> list[Entity]:
    """The entities Rasa reads in `example` (Rasa's `find_entities_in_training_example`); raises MarkupError where
    Rasa raises."""
    entities: list[Entity] = []
    offset = 0
    for match in ENTITY_REGEX.finditer(example):
        text = match.group("entity_text")
        start = match.start() - offset
        end = start + len(text)
        offset += len(match.group(0)) - len(text)
        if match.group("entity_dict") or match.group("entity"):
            if match.group("entity_dict"):
                entities.append(_from_dict(match.group("entity_dict"), text, start, end))
            else:
                entities.append(Entity(start, end, match.group("entity"), match.group("value") or text))
        else:
            for inner in SINGLE_ENTITY_DICT.finditer(match.group("list_entity_dicts")):
                entities.append(_from_dict(inner.group("entity_dict"), text, start, end))
    return entities


def _from_dict(body: str, text: str, start: int, end: int) -> Entity:
    """Rasa's `get_validated_dict` and `extract_entity_attributes_from_dict`."""
    written = "{" + body + "}"
    try:
        data = json.loads(written)
    except json.JSONDecodeError as exc:
        hint = " (JSON needs double quotes)" if "'" in body and '"' not in body else ""
        raise MarkupError(f"{written} is not valid JSON{hint}: {exc.msg}") from None
    if "entity" not in data:
        raise MarkupError(f'{written} has no "entity" key')
    for key in _DICT_STRING_KEYS:
        if key in data and not isinstance(data[key], str):
            raise MarkupError(f'{written}: "{key}" must be a string, got {json.dumps(data[key])}')
    value = data.get("value")
    if "value" in data and (isinstance(value, bool) or not isinstance(value, str | int | float)):
        raise MarkupError(f'{written}: "value" must be a string or a number, got {json.dumps(value)}')
    return Entity(start, end, data["entity"], data.get("value", text), role=data.get("role"), group=data.get("group"))


@dataclass(frozen=True, slots=True)
class Declared:
    """What the bot's domain declares about entities: names, and per name its roles and groups."""

    entities: frozenset[str]
    roles: dict[str, frozenset[str]]
    groups: dict[str, frozenset[str]]
    source: str
    """The files read, for messages (e.g. `bot/domain/slots_forms.yml`)."""


@dataclass(frozen=True, slots=True)
class MarkupNotice:
    """Something about an example's annotations a trainer should hear of."""

    severity: str
    """`error` (Rasa refuses the example, or reads an entity the trainer did not mean) or `warning`."""
    kind: str
    """What kind of notice, for counts (`undeclared entity`)."""
    subject: str
    """What it is about, the same for every example with the same fault (`unknown entity 'tier' (...)`)."""
    detail: str
    """What to do, or what Rasa does."""
    shown: str = ""
    """The annotated words."""

    @property
    def message(self) -> str:
        return f"{self.subject}{f' on {self.shown!r}' if self.shown else ''}: {self.detail}"


def lint(example: str, declared: Declared | None = None) -> list[MarkupNotice]:
    """What is wrong with the annotations of `example`, as Rasa would read them: refused annotations and quoted
    or space-padded entity names (errors); brackets left in the text and, given `declared`, entities, roles and
    groups the domain does not declare (warnings)."""
    try:
        entities = find_entities(example)
    except MarkupError as exc:
        return [
            MarkupNotice(
                "error", "entity markup Rasa refuses", f"Rasa cannot read the annotation {exc}", "its training stops"
            )
        ]
    notices: list[MarkupNotice] = []
    for item in entities:
        name = item.entity
        shown = example_text(example, item)
        bare = name.strip(_QUOTES + " \t")
        if bare != name and bare:
            notices.append(
                MarkupNotice(
                    "error",
                    "quoted or space-padded entity name",
                    f"entity {name!r}",
                    "Rasa keeps the quotes and spaces in the name, making a separate entity; write it without "
                    f"them: [{shown}]({bare})",
                    shown,
                )
            )
            continue
        if declared is None:
            continue
        if name not in declared.entities:
            close = difflib.get_close_matches(name, sorted(declared.entities), n=1)
            notices.append(
                MarkupNotice(
                    "warning",
                    "entity the domain does not declare",
                    f"unknown entity {name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""),
                    f"the bot's domain ({declared.source}) does not declare it (declared: "
                    f"{', '.join(sorted(declared.entities)) or 'none'}); declare it there or fix the name",
                    shown,
                )
            )
            continue
        for kind, value, known in (("role", item.role, declared.roles), ("group", item.group, declared.groups)):
            if value and value not in known.get(name, frozenset()):
                notices.append(
                    MarkupNotice(
                        "warning",
                        f"{kind} the domain does not declare",
                        f"{kind} {value!r} of entity {name!r}",
                        f"not declared in the bot's domain ({declared.source}); known: "
                        f"{', '.join(sorted(known.get(name, ()))) or 'none'}",
                        shown,
                    )
                )
    leftover = _LEFTOVER.search(plain_text(example))
    if leftover:
        notices.append(
            MarkupNotice(
                "warning",
                "markup Rasa leaves in the text",
                f"{leftover.group(0)!r} looks like entity markup",
                "Rasa does not read it as an annotation and keeps it in the text; write [text](entity)",
            )
        )
    return notices


def example_text(example: str, entity: Entity) -> str:
    """The annotated words of `entity` in `example`."""
    return plain_text(example)[entity.start : entity.end]


def entity_names(examples: Collection[str]) -> list[str]:
    """Every entity name Rasa reads in `examples` (annotations Rasa refuses are left out), sorted."""
    found: set[str] = set()
    for example in examples:
        try:
            found.update(str(e.entity) for e in find_entities(example))
        except MarkupError:
            continue
    return sorted(found)


def read_declared(domain: Path, *, generated: Collection[Path] = ()) -> Declared | None:
    """The entities the bot's domain declares by hand: every `entities:` list in the YAML files under `domain` (a
    file or a folder, searched as Rasa's `Domain.from_directory` does), except the `generated` files (the domain
    part `harness intents build` writes lists whatever intents/ uses, so it cannot tell a typo). None when no
    file declares entities (nothing to check against)."""
    files = sorted(_yaml_files(domain)) if domain.is_dir() else [domain] if domain.exists() else []
    skip = {p.resolve() for p in generated}
    names: set[str] = set()
    roles: dict[str, set[str]] = {}
    groups: dict[str, set[str]] = {}
    sources: list[str] = []
    for file in files:
        if file.resolve() in skip:
            continue
        document = read_yaml(file, "Rasa domain")
        entries = document.get("entities") if isinstance(document, dict) else None
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise InputError(
                "invalid Rasa domain", [f"{file}: entities: expected a list, got {type(entries).__name__}"]
            )
        sources.append(str(file))
        for index, entry in enumerate(entries):
            if isinstance(entry, str):
                names.add(entry)
            elif isinstance(entry, dict) and len(entry) == 1:
                ((name, options),) = entry.items()
                names.add(str(name))
                options = options if isinstance(options, dict) else {}
                roles.setdefault(str(name), set()).update(str(r) for r in options.get("roles") or [])
                groups.setdefault(str(name), set()).update(str(g) for g in options.get("groups") or [])
            else:
                raise InputError(
                    "invalid Rasa domain",
                    [f"{file}: entities[{index}]: expected an entity name or `name: {{roles: [...]}}`, got {entry!r}"],
                )
    if not sources:
        return None
    return Declared(
        entities=frozenset(names),
        roles={k: frozenset(v) for k, v in roles.items()},
        groups={k: frozenset(v) for k, v in groups.items()},
        source=", ".join(sources),
    )


def _yaml_files(folder: Path) -> list[Path]:
    return [
        Path(root) / name
        for root, _, names in os.walk(folder, followlinks=True)
        for name in names
        if name.endswith((".yml", ".yaml"))
    ]
