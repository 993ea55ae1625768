"""Helpers to word input problems: where in a YAML document, and did-you-mean for unknown names."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

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
            f"invalid {what}", [f"{path}: {yaml_location(e['loc'], raw)}: {e['msg']}" for e in exc.errors()]
        ) from None
