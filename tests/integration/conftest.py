"""The real bot on loopback: NLU data generated from intents/, the model trained (or reused when a model of
the same training inputs exists), the Rasa server and action server started on free ports, and both stopped
when the session ends."""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from harness.bots.reference_bot.nlu_build import build
from harness.bots.reference_bot.server import BotServer, free_port, train
from harness.project.paths import ProjectPaths


@dataclass
class Chat:
    """One conversation through the reference channel."""

    server: BotServer
    sender: str = field(default_factory=lambda: "it-" + secrets.token_hex(4))
    replies: list[dict[str, Any]] = field(default_factory=list)

    def say(self, text: str) -> dict[str, Any]:
        response = httpx.post(
            self.server.url,
            json={"sender": self.sender, "message": text},
            headers={"Authorization": f"Bearer {self.server.token}"},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        SCHEMA.validate(body)
        self.replies.append(body)
        return body


def _schema(name: str) -> jsonschema.Draft202012Validator:
    document = json.loads((ProjectPaths().root / "docs" / "channel.schema.json").read_text())
    return jsonschema.Draft202012Validator({**document, "$ref": f"#/$defs/{name}"})


SCHEMA = _schema("response")
ERROR_SCHEMA = _schema("error")
NOT_UNDERSTOOD = ("I was just going to", "and my")
"""Two sentences broken off before they say anything, which the reference bot does not understand (below its
fallback threshold; many other fragments it takes for `out_of_scope`, whose reply is not a fallback). Checked in
tests/integration/test_reference_channel.py::test_two_not_understood_turns_escalate; tests/eval_sets/resume and the
resume unit tests use the first."""


@pytest.fixture(scope="session")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotServer]:
    build(ProjectPaths())
    model = train()
    tmp = tmp_path_factory.mktemp("bot")
    server = BotServer(
        model=model,
        token=secrets.token_urlsafe(12),
        handoff_db=tmp / "handoff.sqlite3",
        rasa_port=free_port(),
        action_port=free_port(),
        log_dir=tmp / "logs",
    )
    with server:
        yield server


@pytest.fixture
def chat(bot: BotServer) -> Chat:
    return Chat(bot)


def handoff_store(path: Path) -> Any:
    """The bot's ticket store, read directly: `bankbot.handoff_store` uses only the standard library."""
    if str(ProjectPaths().bot) not in sys.path:
        sys.path.append(str(ProjectPaths().bot))
    from bankbot.handoff_store import HandoffStore

    return HandoffStore(path)
