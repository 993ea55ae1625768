"""Registry[T]: pluggable parts (bot kinds, sources) under versioned names, loud on unknown names.

A name is `<base>.v<version>` (`rasa.v1`); a bare base (`rasa`) means its highest registered version. Lookups of
unknown names raise `UnknownName` with a did-you-mean, never return None (lm-evaluation-harness's `Registry`,
explosion's `catalogue`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from typing import Generic, TypeVar

from harness.errors import UnknownName

T = TypeVar("T")
_VERSIONED = re.compile(r"^(?P<base>[a-z][a-z0-9_]*)\.v(?P<version>[1-9][0-9]*)$")


class Registry(Generic[T]):
    """Entries of one kind (`what`, for messages) by versioned name."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        """Register `entry` as `name` (`<base>.v<n>`); ValueError on a malformed or duplicate name."""
        if not _VERSIONED.match(name):
            raise ValueError(f"{self.what} name {name!r} is not `<base>.v<version>`")
        if name in self._entries:
            raise ValueError(f"{self.what} {name} registered twice")
        self._entries[name] = entry
        return entry

    def resolve(self, name: str) -> str:
        """The versioned name `name` stands for: itself if registered, a bare base's latest version.

        Raises UnknownName with the closest registered name.
        """
        if name in self._entries:
            return name
        versions = [(int(m["version"]), key) for key in self._entries if (m := _VERSIONED.match(key))]
        latest = [key for version, key in sorted(versions) if key.split(".v")[0] == name]
        if latest:
            return latest[-1]
        choices = sorted({*self._entries, *(key.split(".v")[0] for key in self._entries)})
        close = difflib.get_close_matches(name, choices, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownName(f"unknown {self.what} {name!r}{hint}; registered: {', '.join(choices)}")

    def get(self, name: str) -> T:
        """The entry `name` (versioned, or a bare base for its latest version); raises UnknownName."""
        return self._entries[self.resolve(name)]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
