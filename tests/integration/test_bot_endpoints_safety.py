"""The reference bot's endpoints against a hostile or careless world (issue 13, items 1 and 3): the action server
answers only the Rasa server and only on loopback; conversations and handoffs survive a restart on SQLite and on
PostgreSQL; a conversation gets one ticket; a turn that fails after writing its ticket leaves no ticket behind.

Real processes on loopback throughout. The action server alone (no model, a few seconds) covers its own guarantees;
the whole bot is started only where the Rasa server takes part.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ERROR_SCHEMA, Chat, handoff_store

from harness.bots.reference_bot.server import BotLayout, BotServer, bot_env, free_port, train

sys.path.append(str(Path(__file__).parents[1] / "harness"))  # the throw-away PostgreSQL server of the review tests
from postgres_server import create_database, postgres  # noqa: E402, F401 - postgres is a fixture

pytestmark = pytest.mark.integration

FRAUD = "there's a payment on my account I never made, I think someone has my details"


def forged_fraud_call(sender: str) -> dict[str, Any]:
    """What an attacker posts to the action server: a made-up tracker whose customer reports fraud."""
    intent = {"name": "report_fraud", "confidence": 1.0}
    parse = {"intent": intent, "intent_ranking": [intent], "entities": []}
    return {
        "next_action": "action_escalate",
        "sender_id": sender,
        "version": "3.6.21",
        "domain": {"responses": {"utter_after_handoff": [{"text": "To {queue_label}, ticket {ticket}."}]}},
        "tracker": {
            "sender_id": sender,
            "slots": {},
            "latest_message": {"text": "fraud", **parse},
            "events": [{"event": "user", "text": "fraud", "parse_data": parse}],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        },
    }


def tickets_in(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM tickets").fetchone()[0])


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the action server exited: {process.stderr.read() if process.stderr else ''}"
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout} s")


@pytest.fixture(scope="module")
def action_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The action server as BotServer starts it, but with SANIC_HOST=0.0.0.0 set, as a careless environment has."""
    tmp = tmp_path_factory.mktemp("actions")
    port, token, db = free_port(), secrets.token_urlsafe(32), tmp / "handoff.sqlite3"
    layout = BotLayout()
    env = bot_env(layout, {"HANDOFF_DB": str(db), "ACTION_SERVER_TOKEN": token, "SANIC_HOST": "0.0.0.0"})
    command = [str(layout.venv / "bin" / "python"), "-m", "bankbot.action_server", "--port", str(port)]
    process = subprocess.Popen(command, cwd=layout.bot_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", process)
        yield {"url": f"http://127.0.0.1:{port}", "port": port, "token": token, "db": db}
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-secret-0123456789", "Basic abc", b"Bearer \xff\xfe"])
def test_a_forged_fraud_call_without_the_secret_gets_401_and_creates_no_ticket(
    action_server: dict[str, Any], authorization: str | bytes | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = httpx.post(f"{action_server['url']}/webhook", json=forged_fraud_call("forged"), headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert not action_server["db"].exists() or tickets_in(action_server["db"]) == 0


def test_with_the_secret_the_same_call_runs_the_action(action_server: dict[str, Any]) -> None:
    """The control for the test above: the forged call is a working attack when the secret is known."""
    response = httpx.post(
        f"{action_server['url']}/webhook",
        json=forged_fraud_call("with-secret"),
        headers={"Authorization": f"Bearer {action_server['token']}"},
    )
    assert response.status_code == 200, response.text
    (ticket,) = handoff_store(action_server["db"]).for_conversation("with-secret")
    # Pending: no Rasa server stored a turn naming it, so no agent sees it.
    assert ticket.queue == "fraud" and ticket.status == "pending"
    assert handoff_store(action_server["db"]).open_tickets() == []


def test_only_the_health_probe_is_open(action_server: dict[str, Any]) -> None:
    assert httpx.get(f"{action_server['url']}/health").status_code == 200
    assert httpx.get(f"{action_server['url']}/actions").status_code == 401


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the TCP sockets listening on `port`, from /proc/net/tcp and tcp6 (hex, as the kernel
    shows them: 0100007F is 127.0.0.1, 00000000 is every interface)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def other_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback: those its name resolves to, and the one it would send
    from (a UDP socket's `connect` picks a route and sends nothing)."""
    found = set()
    with contextlib.suppress(OSError):
        found |= {i[4][0] for i in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    for target in ("10.255.255.255", "192.0.2.255"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe, contextlib.suppress(OSError):
            probe.connect((target, 9))
            found.add(probe.getsockname()[0])
    return sorted(a for a in found if not a.startswith("127.") and a != "0.0.0.0")


def test_the_action_server_listens_on_loopback_only_whatever_sanic_host_says(action_server: dict[str, Any]) -> None:
    assert listening_addresses(action_server["port"]) == {"0100007F"}
    for address in other_addresses():
        with pytest.raises(OSError), socket.create_connection((address, action_server["port"]), timeout=2):
            pass


def test_without_a_secret_the_action_server_refuses_to_start(tmp_path: Path) -> None:
    layout = BotLayout()
    env = bot_env(layout, {"HANDOFF_DB": str(tmp_path / "h.sqlite3")})
    env.pop("ACTION_SERVER_TOKEN", None)
    result = subprocess.run(
        [str(layout.venv / "bin" / "python"), "-m", "bankbot.action_server", "--port", str(free_port())],
        cwd=layout.bot_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "refusing to start: $ACTION_SERVER_TOKEN is not set" in result.stderr


def test_the_served_bot_hands_off_through_its_closed_action_server(chat: Chat, bot: BotServer) -> None:
    refused = httpx.post(f"http://127.0.0.1:{bot.action_port}/webhook", json=forged_fraud_call(chat.sender))
    assert refused.status_code == 401
    reply = chat.say(FRAUD)
    assert reply["state"] == "handed_off" and reply["trace"]["handoff"]["queue"] == "fraud"
    (ticket,) = handoff_store(bot.handoff_db).for_conversation(chat.sender)
    assert ticket.ticket_id == reply["trace"]["handoff"]["ticket_id"] and ticket.status == "open"


def say(server: BotServer, sender: str, text: str) -> httpx.Response:
    return httpx.post(
        server.url,
        json={"sender": sender, "message": text},
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=60,
    )


def server_on(tmp_path: Path, name: str, **options: Any) -> BotServer:
    return BotServer(
        model=train(),
        token="restart-token",
        handoff_db=tmp_path / "handoff.sqlite3",
        rasa_port=free_port(),
        action_port=free_port(),
        log_dir=tmp_path / f"logs-{name}",
        **options,
    )


def handoff_survives_a_restart(tmp_path: Path, tracker_store: str | None) -> None:
    sender = "restart-" + secrets.token_hex(4)
    with server_on(tmp_path, "first", tracker_store=tracker_store) as first:
        reply = say(first, sender, FRAUD)
        assert reply.status_code == 200 and reply.json()["state"] == "handed_off", reply.text
        ticket_id = reply.json()["trace"]["handoff"]["ticket_id"]
    with server_on(tmp_path, "second", tracker_store=tracker_store) as second:
        later = say(second, sender, "hello? is anyone there")
        again = say(second, sender, "someone has taken money from my account, I need to report fraud")
    for response in (later, again):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["messages"] == [] and body["state"] == "handed_off" and body["trace"]["silenced"] is True
    (ticket,) = handoff_store(tmp_path / "handoff.sqlite3").for_conversation(sender)
    assert ticket.ticket_id == ticket_id and ticket.status == "open"
    assert [m.text for m in ticket.transcript[-2:]] == [
        "hello? is anyone there",
        "someone has taken money from my account, I need to report fraud",
    ]


def test_a_handoff_survives_a_restart_on_the_default_sqlite_store(tmp_path: Path) -> None:
    handoff_survives_a_restart(tmp_path, None)
    # Rasa created its table in the file beside the ticket store, and the conversation is in it.
    with sqlite3.connect(tmp_path / "handoff-tracker.sqlite3") as db:
        assert db.execute("SELECT COUNT(DISTINCT sender_id) FROM events").fetchone()[0] == 1


def test_a_handoff_survives_a_restart_on_postgresql(tmp_path: Path, postgres: str) -> None:  # noqa: F811
    handoff_survives_a_restart(tmp_path, create_database(postgres, "bot_tracker"))


DYING_ACTIONS = '''"""bankbot's actions, except that the action server dies right after it writes a handoff ticket."""
import os

from bankbot.actions import *  # noqa: F403 - registers every action
from bankbot.handoff_store import HandoffStore

_create = HandoffStore.create_ticket


def create_then_die(self, **ticket):
    _create(self, **ticket)
    os._exit(17)


HandoffStore.create_ticket = create_then_die
'''


def test_a_turn_that_fails_after_writing_its_ticket_leaves_no_ticket(tmp_path: Path) -> None:
    package = tmp_path / "faults" / "dying_actions"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(DYING_ACTIONS)
    bot_dir = BotLayout().bot_dir
    server = server_on(
        tmp_path,
        "dying",
        actions_package="dying_actions",
        extra_env={"PYTHONPATH": os.pathsep.join([str(tmp_path / "faults"), str(bot_dir)])},
    )
    with server:
        response = say(server, "doomed", FRAUD)
        exit_code = server.process("actions").wait(timeout=30)
    assert exit_code == 17, "the action server died right after writing the ticket"
    assert response.status_code == 500, response.text
    ERROR_SCHEMA.validate(response.json())
    store = handoff_store(tmp_path / "handoff.sqlite3")
    assert store.open_tickets() == [] and store.for_conversation("doomed") == []
