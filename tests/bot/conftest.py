"""Fixtures for the bot's unit tests: trackers and dispatchers as the action server builds them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

BOT_DIR = Path(__file__).resolve().parents[2] / "bot"
sys.path.insert(0, str(BOT_DIR))

from rasa_sdk import Tracker  # noqa: E402
from rasa_sdk.executor import CollectingDispatcher  # noqa: E402


@pytest.fixture(autouse=True)
def handoff_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own ticket store and the committed escalation policy."""
    path = tmp_path / "handoff.sqlite3"
    monkeypatch.setenv("HANDOFF_DB", str(path))
    monkeypatch.delenv("ESCALATION_POLICY", raising=False)
    return path


@pytest.fixture(scope="session")
def domain() -> dict[str, Any]:
    return yaml.safe_load((BOT_DIR / "domain" / "responses.yml").read_text())


def tracker(
    intent: str | None,
    text: str = "",
    *,
    slots: dict[str, Any] | None = None,
    history: list[tuple[str, str]] = (),
    active_loop: str | None = None,
    sender: str = "conv-1",
) -> Tracker:
    """A tracker whose latest customer message is `text` with `intent`, after `history` of (sender, text)."""
    events: list[dict[str, Any]] = []
    for who, said in history:
        events.append({"event": "user" if who == "customer" else "bot", "text": said})
    events.append({"event": "user", "text": text, "parse_data": {"intent": {"name": intent, "confidence": 0.9}}})
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.9},
              "intent_ranking": [{"name": intent, "confidence": 0.9}], "entities": []}
    return Tracker(sender, slots or {}, latest, events, False, None,
                   {"name": active_loop} if active_loop else {}, "action_listen")


@pytest.fixture
def dispatcher() -> CollectingDispatcher:
    return CollectingDispatcher()
