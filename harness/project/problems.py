"""Helpers to word input problems: where in a YAML document, and did-you-mean for unknown names."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from harness.errors import InputError

Model = TypeVar("Model", bound=BaseModel)


def yaml_location(loc: tuple, raw: object, *, name_key: str = "name") -> str:
    """A readable path such as `intents[3](card_lost).examples` from a pydantic error location, naming list
    items by their `name_key` where they have one."""
    parts: list[str] = []
    node = raw
    for item in loc:
        if isinstance(item, int):
            element = node[item] if isinstance(node, list) and item < len(node) else None
            name = element.get(name_key) if isinstance(element, dict) else None
            if parts:
                parts[-1] += f"[{item}]" + (f"({name})" if name else "")
            else:
                parts.append(f"[{item}]")
            node = element
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts) or "<file>"


def unknown(kind: str, value: object, known: Iterable[str]) -> str:
    """Message for an unknown name, with a did-you-mean when a close match exists."""
    names = sorted(known)
    message = f"unknown {kind} {value!r}"
    close = difflib.get_close_matches(str(value), names, n=1)
    if close:
        message += f" (did you mean {close[0]!r}?)"
    return message + f"; known: {', '.join(names)}"


def read_utf8(path: Path) -> str:
    """The text of the user's file `path`.

    Raises InputError naming the file when it cannot be read, or when it is not UTF-8 (with the line of the first
    bad byte and how to fix it): every reader of a user's file goes through here.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError("cannot read a file", [f"{path}: {exc.strerror or exc}"]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            "a file is not UTF-8 text",
            [f"{path}: line {line}: byte 0x{data[exc.start]:02x} is not UTF-8; re-save the file as UTF-8"],
        ) from None


def read_yaml(path: Path, what: str) -> Any:
    """The YAML document in the user's file `path` (None for an empty file); `what` names it in messages.

    Raises InputError naming the file: unreadable or not UTF-8 (`read_utf8`), or not valid YAML, located as
    `file:line:col: problem` (the line and column of the parser's mark, from 1).
    """
    text = read_utf8(path)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"the {what} is not valid YAML", [f"{where}: not valid YAML: {problem}"]) from None


def load_yaml_model(path: Path, model: type[Model], what: str, raw_hook=None) -> Model:  # type: ignore[no-untyped-def]
    """`model` validated from the YAML file at `path`; InputError naming `what`, the file and every location.

    `raw_hook` may adjust the parsed document first (for example to apply command-line overrides)."""
    raw = read_yaml(path, what)
    if raw_hook is not None:
        raw = raw_hook(raw)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise InputError(
            f"invalid {what}",
            [f"{path}: {yaml_location(e['loc'], raw)}: {problem_message(model, e)}" for e in exc.errors()],
        ) from None


def problem_message(model: type[BaseModel], error: Any) -> str:
    """The message of one pydantic error of `model`: pydantic's own, or for a key the model does not have, the keys it
    has at that place with a did-you-mean (`unknown`)."""
    if error["type"] == "extra_forbidden" and error["loc"]:
        keys = keys_at(model, tuple(error["loc"][:-1]))
        if keys:
            return unknown("key", error["loc"][-1], keys)
    return str(error["msg"])


def keys_at(model: type[BaseModel], loc: tuple) -> list[str] | None:
    """The keys `model` accepts in the mapping at the validation location `loc` (through nested models, lists and
    dicts of models, optional models); None when the location is not a model's mapping."""
    node: Any = model
    for part in loc:
        node = _model_or_self(node)
        if isinstance(node, type) and issubclass(node, BaseModel):
            fields = {(f.alias or name): f for name, f in node.model_fields.items()}
            if not isinstance(part, str) or part not in fields:
                return None
            node = fields[part].annotation
        elif get_origin(node) in (list, tuple, set, frozenset) and get_args(node):
            node = get_args(node)[0]
        elif get_origin(node) is dict and len(get_args(node)) == 2:
            node = get_args(node)[1]
        else:
            return None
    node = _model_or_self(node)
    if isinstance(node, type) and issubclass(node, BaseModel):
        return [f.alias or name for name, f in node.model_fields.items()]
    return None


def _model_or_self(node: Any) -> Any:
    """The one model inside an Optional/Union/Annotated type, else the type itself."""
    if get_origin(node) in (Union, UnionType, Annotated):
        models = [a for a in get_args(node) if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) == 1:
            return models[0]
        if get_origin(node) is Annotated:
            return _model_or_self(get_args(node)[0])
    return node
