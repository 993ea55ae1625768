"""Helpers to word input problems: where in a YAML document, and did-you-mean for unknown names."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


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
