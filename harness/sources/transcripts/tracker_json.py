"""Tracker JSON as Rasa's HTTP API returns it (`GET /conversations/<id>/tracker?include_events=ALL`:
`{"sender_id": ..., "events": [...], ...}`), for teams that export their conversations rather than open their
database: a `.json` file holding one tracker (or a list of trackers), or a `.jsonl` file with one tracker per line.
A folder stands for the `.json` and `.jsonl` files in it.

Files have no row ids, so an event's key (its order within the tracker, and the conversation id's middle part)
is its timestamp. There is no watermark (`watermarked` is False): every import reads all the files it is given,
and the store skips each conversation whose id it already holds (ids are stable: source, first event's timestamp,
keyed hash of the sender), before masking, so re-importing an export is idempotent and cheap. A watermark cannot be
right for files: exports arrive late and out of order (a second bot instance, per-channel exports, a re-export
after a fix, back-filling last month), so a conversation older than the newest event already imported, even of a
sender already seen, may still be new; a global or per-sender timestamp watermark would drop it without a word.
Conversations still open at the newest event are deferred and stored by a later import that reads them again.
A file is read twice (first for the newest timestamp), one tracker at a time. Malformed trackers and events are
reported by every import that reads them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.sources.transcripts.events import RawEvent, checked


def json_files(paths: list[Path]) -> list[Path]:
    """The files the paths name (folders: their `.json` and `.jsonl` files, sorted). InputError for a path that
    does not exist or a folder without such files."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.suffix in (".json", ".jsonl") and p.is_file())
            if not inside:
                raise InputError("no tracker JSON", [f"{path}: no .json or .jsonl files in this folder"])
            found += inside
        elif path.is_file():
            found.append(path)
        else:
            raise InputError("no tracker JSON", [f"{path}: no such file or folder"])
    return found


class TrackerJson:
    """Trackers in JSON files (see the module docstring)."""

    watermarked = False

    def __init__(self, paths: list[Path]) -> None:
        self.files = json_files([Path(p) for p in paths])
        self.name = ", ".join(str(p) for p in self.files[:3]) + (
            f" and {len(self.files) - 3} more" if len(self.files) > 3 else ""
        )
        self._high: float | None = None

    def _trackers(self) -> Iterator[tuple[str, Any]]:
        """(position prefix, decoded tracker or a RawEvent problem) for each tracker in the files."""
        for path in self.files:
            if path.suffix == ".jsonl":
                with path.open(encoding="utf-8", errors="replace") as lines:
                    for number, line in enumerate(lines, start=1):
                        if not line.strip():
                            continue
                        where = f"{path.name}:{number}"
                        try:
                            yield where, json.loads(line)
                        except ValueError as exc:
                            yield where, RawEvent("", float("-inf"), where, None, "bad_line", str(exc)[:80])
            else:
                try:
                    body = json.loads(path.read_text(encoding="utf-8", errors="replace"))
                except ValueError as exc:
                    yield path.name, RawEvent("", float("-inf"), path.name, None, "bad_line", str(exc)[:80])
                    continue
                if isinstance(body, list) and all(isinstance(t, dict) and "events" in t for t in body):
                    for index, tracker in enumerate(body):
                        yield f"{path.name}:tracker {index}", tracker
                else:
                    yield path.name, body

    def _events(self, where: str, tracker: Any) -> tuple[str, list[RawEvent]]:
        if isinstance(tracker, RawEvent):
            return "", [tracker]
        if not isinstance(tracker, dict) or not isinstance(tracker.get("events"), list):
            return "", [RawEvent("", float("-inf"), where, None, "bad_line", "no `events` list")]
        sender = tracker.get("sender_id")
        if not isinstance(sender, str) or not sender:
            return "", [RawEvent("", float("-inf"), where, None, "no_sender", f"{len(tracker['events'])} events")]
        events: list[RawEvent] = []
        last = float("-inf")
        for index, data in enumerate(tracker["events"]):
            event = checked(sender, last, f"{where}:event {index}", data)
            if event.event is not None:
                last = event.timestamp
                event = replace(event, key=last)
            events.append(event)
        return sender, events

    def newest(self, after: float | None) -> float | None:
        newest: float | None = None
        for where, tracker in self._trackers():
            for event in self._events(where, tracker)[1]:
                if event.event is not None and (newest is None or event.timestamp > newest):
                    newest = event.timestamp
        self._high = newest
        return newest

    def high(self) -> float | None:
        """None: files keep no watermark (see the module docstring)."""
        return None

    def senders(self, after: float | None) -> Iterator[tuple[str, list[RawEvent]]]:
        for where, tracker in self._trackers():
            sender, events = self._events(where, tracker)
            yield sender, events

    def close(self) -> None:
        pass
