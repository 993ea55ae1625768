"""Production import from the real reference bot's own stores (issue 15, "Tests that must exist": import from a real
Rasa tracker store written by the real reference bot, on SQLite and on PostgreSQL, after a scripted set of
conversations, with the KPIs worked out by hand; incremental import; masking before storage).

Per database, one bot start: the script below talks to the real bot through the reference channel; then, with the
bot idle (no turn in progress: the log is complete as far as the test goes), `harness logs import --reference ...
--finish-open` reads its tracker store (SQLite file or PostgreSQL database) and its handoff ticket file. The KPIs
of that first import are computed by `score_production` and compared with figures derived by hand from what was
sent (comments derive each one).

The script (one sender per conversation, except the returning customer):
- SELF  "what are your opening hours on saturday": branch_hours, answered, nothing asked back: self-served.
- FRAUD a fraud report: handoff to queue fraud by rule fraud_immediate; then "hello? is anyone there", which the
        channel passes to the ticket without the dialogue engine: it is in the ticket's transcript and not in the
        tracker store; the import reads it from the ticket as a `silenced` turn of the handed-off conversation,
        neither a new conversation nor a turn the bot owned.
- HUMAN a late transfer, then "can I talk to a real person please": payments, explicit_human_request.
- MASH  NOT_UNDERSTOOD (conftest), two broken-off sentences: two fallbacks, the second hands off (general,
        not_understood_twice).
- FORM  "I think my card was stolen from my bag": the card-block form asks "Which card ...?"; the customer leaves.
- BACK  the same sender twice: "what are your opening hours on saturday", then, after more silence than the
        import's inactivity timeout, the same question again: two conversations of one customer.
Rasa's own session expiry is 60 minutes and the channel reads `/restart` as text, so the only deterministic way
to a second conversation of one sender in a short test is the importer's inactivity timeout: the imports use
TIMEOUT_MINUTES (12 s) and the test waits more than that between BACK's two conversations, while the gaps inside
a conversation (the client's next request right after the bot's answer) are well under a second.

After the first import: a second import finds nothing new; then one more conversation (NEW, a card number and an
email address in one message) and a third import stores exactly that one, masked.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import NOT_UNDERSTOOD, SCHEMA, Chat, handoff_store
from typer.testing import CliRunner

from harness.bots.reference_bot.server import BotServer, free_port, train
from harness.records.production import ProductionStore

sys.path.append(str(Path(__file__).parents[1] / "harness"))  # the throw-away PostgreSQL server of the review tests
from postgres_server import create_database, postgres  # noqa: E402, F401 - postgres is a fixture

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

TIMEOUT_MINUTES = 0.2
"""The imports' inactivity timeout: 12 s. Far above the gaps inside a conversation (from the bot's last message of
a turn to the customer's next message: the bot's post-processing, then the client's next request), measured at
under 0.3 s with the machine's load average at 6 on 2 cores."""
TIMEOUT_S = TIMEOUT_MINUTES * 60
TURN_LIMIT_S = 120
"""The channel's max_turn_s for this bot: the first turn after start-up (TensorFlow's first inference) took more
than the bot's 20 s on a loaded machine, and a turn cancelled with 504 may still have been recorded."""

HOURS = "what are your opening hours on saturday"
FRAUD = "there's a payment on my account I never made, I think someone has my details"
AFTER_HANDOFF = "hello? is anyone there"
CARD = "4111 1111 1111 1111"
EMAIL = "jane.doe@example.com"
PERSONAL = f"please update my email to {EMAIL}, my card is {CARD}"

CONFIG = """version: 1
inactivity_timeout_minutes: 30
handoff_mapping: bot/handoff.yml
fallback_intents: [nlu_fallback]
fallback_actions: [action_default_fallback, action_two_stage_fallback]
customer: sender
repeat_contact_days: 7
masking: {names: false}
"""


class PatientChat(Chat):
    """conftest's Chat, waiting as long as this bot's channel lets a turn run."""

    def say(self, text: str) -> dict[str, Any]:
        response = httpx.post(
            self.server.url,
            json={"sender": self.sender, "message": text},
            headers={"Authorization": f"Bearer {self.server.token}"},
            timeout=TURN_LIMIT_S + 30,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        SCHEMA.validate(body)
        self.replies.append(body)
        return body


@dataclass
class Scripted:
    """What one database's run produced."""

    database: str
    chats: dict[str, list[Chat]]
    """Conversation name -> the chats (BACK: the same sender twice, one Chat per conversation)."""
    store: Path
    """The live store (after all three imports)."""
    first: Path
    """A copy of the store right after the first import."""
    outputs: list[str] = field(default_factory=list)
    """The CLI's output of the three imports."""
    tickets: Path = Path()


def run_import(server: BotServer, tmp: Path, store: Path, *, installed: bool) -> str:
    """`harness logs import --reference` from the repository root: through the installed command as a team runs
    it (`installed`), else in this process (the same command, without paying the start-up again)."""
    arguments = [
        "logs",
        "import",
        "--reference",
        "--tracker-store",
        server.tracker_store_url,
        "--handoff-db",
        str(server.handoff_db),
        "--store",
        str(store),
        "--config",
        str(tmp / "production.yml"),
        "--timeout-minutes",
        str(TIMEOUT_MINUTES),
        "--finish-open",
    ]
    if installed:
        command = [str(REPO_ROOT / ".venv" / "bin" / "harness"), *arguments]
        result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stderr + result.stdout  # as CliRunner's output: warnings (stderr) come first
    from harness.cli import app

    with contextlib.chdir(REPO_ROOT):
        invoked = CliRunner().invoke(app, arguments)
    assert invoked.exit_code == 0, invoked.output
    return invoked.output


def talk(server: BotServer) -> dict[str, list[Chat]]:
    """The scripted conversations (module docstring), each reply checked for what the hand-derived KPIs assume."""
    chats: dict[str, list[Chat]] = {}

    def chat(name: str, sender: str | None = None) -> Chat:
        new = PatientChat(server, sender=sender or f"prod-{name.lower()}-{secrets.token_hex(3)}")
        chats.setdefault(name, []).append(new)
        return new

    def answered(reply: dict[str, Any], *, fallback: bool = False, handoff: bool = False) -> None:
        assert reply["messages"], reply
        assert reply["trace"]["fallback"] is fallback, reply
        assert (reply["trace"]["handoff"] is not None) is handoff, reply

    def self_served(reply: dict[str, Any]) -> None:
        answered(reply)
        assert reply["trace"]["intent"]["name"] == "branch_hours" and reply["state"] == "active"
        assert reply["trace"]["active_form"] is None
        assert not reply["messages"][-1]["text"].rstrip().endswith("?"), "the bot asked something back"

    back = chat("BACK")
    self_served(back.say(HOURS))
    back_answered = time.monotonic()

    self_served(chat("SELF").say(HOURS))

    fraud = chat("FRAUD")
    reply = fraud.say(FRAUD)
    answered(reply, handoff=True)
    assert (reply["trace"]["handoff"]["queue"], reply["trace"]["handoff"]["rule"]) == ("fraud", "fraud_immediate")
    later = fraud.say(AFTER_HANDOFF)
    assert later["messages"] == [] and later["trace"]["silenced"] is True

    human = chat("HUMAN")
    answered(human.say("my transfer to my landlord still hasn't arrived"))
    reply = human.say("can I talk to a real person please")
    answered(reply, handoff=True)
    assert (reply["trace"]["handoff"]["queue"], reply["trace"]["handoff"]["rule"]) == (
        "payments",
        "explicit_human_request",
    )

    mash = chat("MASH")
    answered(mash.say(NOT_UNDERSTOOD[0]), fallback=True)
    reply = mash.say(NOT_UNDERSTOOD[1])
    answered(reply, fallback=True, handoff=True)
    assert (reply["trace"]["handoff"]["queue"], reply["trace"]["handoff"]["rule"]) == (
        "general",
        "not_understood_twice",
    )

    reply = chat("FORM").say("I think my card was stolen from my bag")
    answered(reply)
    assert reply["trace"]["active_form"] is not None and reply["messages"][-1]["text"].rstrip().endswith("?")

    # BACK returns after more silence than the import's timeout (the other conversations took part of the wait).
    time.sleep(max(0.0, TIMEOUT_S + 2 - (time.monotonic() - back_answered)))
    self_served(chat("BACK", back.sender).say(HOURS))
    return chats


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def scripted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scripted]:
    database = request.param
    tmp = tmp_path_factory.mktemp(f"production-{database}")
    tracker = create_database(request.getfixturevalue("postgres"), "prod_tracker") if database == "postgresql" else None
    (tmp / "production.yml").write_text(CONFIG)
    credentials = tmp / "credentials.yml"
    bot_credentials = (REPO_ROOT / "bot" / "credentials.yml").read_text()
    assert "  max_turn_s: 20\n" in bot_credentials
    credentials.write_text(bot_credentials.replace("  max_turn_s: 20\n", f"  max_turn_s: {TURN_LIMIT_S}\n"))
    server = BotServer(
        model=train(),
        token=secrets.token_urlsafe(12),
        handoff_db=tmp / "handoff.sqlite3",
        rasa_port=free_port(),
        action_port=free_port(),
        log_dir=tmp / "logs",
        tracker_store=tracker,
        credentials=credentials,
    )
    store = tmp / "store"
    with server:
        if database == "postgresql":
            assert server.tracker_store_url.startswith("postgresql://")
        chats = talk(server)
        outputs = [run_import(server, tmp, store, installed=True)]
        shutil.copytree(store, tmp / "first")
        outputs.append(run_import(server, tmp, store, installed=False))
        new = PatientChat(server, sender=f"prod-new-{secrets.token_hex(3)}")
        assert new.say(PERSONAL)["messages"]
        chats["NEW"] = [new]
        outputs.append(run_import(server, tmp, store, installed=False))
    yield Scripted(database, chats, store, tmp / "first", outputs, server.handoff_db)


def customer_of(store: Path, sender: str) -> str:
    """The customer key the spec defines: HMAC-SHA256(<store>/secret, sender id), 16 hex digits."""
    secret = (store / "secret").read_text().strip().encode()
    return hmac.new(secret, sender.encode(), hashlib.sha256).hexdigest()[:16]


def values(column: pd.Series) -> list[Any]:
    """A column's values with missing ones (None, NaN, pd.NA) as None."""
    return [None if pd.isna(v) else v for v in column]


def conversations(store: Path, scripted: Scripted) -> dict[str, list[pd.DataFrame]]:
    """Conversation name -> its stored conversations' rows (by turn), in the order they started."""
    rows = ProductionStore(store).read()
    found: dict[str, list[pd.DataFrame]] = {}
    for name, chats in scripted.chats.items():
        mine = rows[rows["customer"] == customer_of(store, chats[0].sender)]
        ordered = mine.sort_values(["conversation_start", "turn_index"])
        found[name] = [
            group.sort_values("turn_index").reset_index(drop=True)
            for _, group in ordered.groupby("conversation_id", sort=False)
        ]
    return found


def test_the_stored_conversations_are_what_was_said(scripted: Scripted) -> None:
    found = conversations(scripted.first, scripted)
    assert "NEW" in scripted.chats and found.pop("NEW") == []  # not yet said at the first import
    # name -> per conversation: (customer texts, statuses, fallbacks, (queue, rule) per turn, ended_by, awaiting
    # reply after the last turn). FRAUD's message to the human is not in the tracker store (the channel hands it to
    # the ticket without the dialogue engine); the import reads it from the ticket as a silenced turn, with no bot
    # fields (no fallback, no handoff).
    no = (None, None)
    expected: dict[str, list[tuple[Any, ...]]] = {
        "SELF": [([HOURS], ["ok"], [False], [no], "timeout", False)],
        "FRAUD": [
            (
                [FRAUD, AFTER_HANDOFF],
                ["ok", "silenced"],
                [False, None],
                [("fraud", "fraud_immediate"), no],
                "handoff",
                False,
            )
        ],
        "HUMAN": [
            (
                ["my transfer to my landlord still hasn't arrived", "can I talk to a real person please"],
                ["ok", "ok"],
                [False, False],
                [no, ("payments", "explicit_human_request")],
                "handoff",
                None,
            )
        ],
        "MASH": [
            (
                list(NOT_UNDERSTOOD),
                ["ok", "ok"],
                [True, True],
                [no, ("general", "not_understood_twice")],
                "handoff",
                None,
            )
        ],
        "FORM": [(["I think my card was stolen from my bag"], ["ok"], [False], [no], "timeout", True)],
        # BACK's first conversation ends when the customer writes again after more than the timeout.
        "BACK": [([HOURS], ["ok"], [False], [no], "timeout", False)] * 2,
    }
    for name, want in expected.items():
        got = found[name]
        assert len(got) == len(want), name
        for rows, (texts, statuses, fallbacks, handoffs, ended_by, awaiting) in zip(got, want, strict=True):
            assert list(rows["text"]) == texts, name
            assert list(rows["status"]) == statuses, name
            assert values(rows["fallback"]) == fallbacks, name
            stored = zip(values(rows["handoff_queue"]), values(rows["handoff_rule"]), strict=True)
            assert list(stored) == handoffs, name
            assert set(rows["ended_by"]) == {ended_by}, name
            assert rows["conversation_id"].nunique() == 1 and rows["sender_id"].isna().all(), name
            if awaiting is not None:
                assert bool(rows["awaiting_reply"].iloc[-1]) is awaiting, name
    # The tickets the bot opened are the ones stored, and the silenced message reached the human.
    for name in ("FRAUD", "HUMAN", "MASH"):
        (chat,) = scripted.chats[name]
        ticket_ids = [r["trace"]["handoff"]["ticket_id"] for r in chat.replies if r["trace"]["handoff"]]
        assert [t for t in values(found[name][0]["ticket_id"]) if t is not None] == ticket_ids, name
    (ticket,) = handoff_store(scripted.tickets).for_conversation(scripted.chats["FRAUD"][0].sender)
    assert ticket.transcript[-1].text == AFTER_HANDOFF
    # One customer, two conversations; every other sender is another customer.
    back = [c.iloc[0]["customer"] for c in found["BACK"]]
    others = {c.iloc[0]["customer"] for name, convs in found.items() if name != "BACK" for c in convs}
    assert back[0] == back[1] and back[0] not in others and len(others) == 5


def kpi(card: Any, name: str, breakdown: str | None = None) -> Any:
    (found,) = [k for k in card.kpis if k.name == name and k.breakdown == breakdown and k.period == "all"]
    return found


def test_the_production_kpis_match_the_hand_count(scripted: Scripted) -> None:
    from harness.scoring.production import ProductionKpiOptions, score_production

    card = score_production(ProductionStore(scripted.first), options=ProductionKpiOptions(), engine="duckdb")
    # Conversations: SELF, FRAUD, HUMAN, MASH, FORM and BACK twice = 7 (FRAUD's message to the human opens none).
    assert (kpi(card, "conversation_count.v1").value, kpi(card, "conversation_count.v1").n) == (7.0, 7)
    # Handed off: FRAUD, HUMAN, MASH = 3 of 7; contained: SELF, FORM, BACK, BACK = 4 of 7.
    assert (kpi(card, "containment.v1").value, kpi(card, "containment.v1").n) == (4 / 7, 7)
    assert (kpi(card, "handoff_rate.v1").value, kpi(card, "handoff_rate.v1").n) == (3 / 7, 7)
    # One conversation to each queue and by each rule.
    for breakdown in ("queue=fraud", "queue=payments", "queue=general"):
        assert kpi(card, "handoff_rate.v1", breakdown).value == 1 / 7, breakdown
    for breakdown in ("rule=fraud_immediate", "rule=explicit_human_request", "rule=not_understood_twice"):
        assert kpi(card, "handoff_rate.v1", breakdown).value == 1 / 7, breakdown
    # ... and to no other.
    handed = {k.breakdown for k in card.kpis if k.name == "handoff_rate.v1" and k.period == "all" and k.value}
    assert handed == {
        None,
        "queue=fraud",
        "queue=payments",
        "queue=general",
        "rule=fraud_immediate",
        "rule=explicit_human_request",
        "rule=not_understood_twice",
    }
    # Turns the bot answered: SELF 1, FRAUD 1, HUMAN 2, MASH 2, FORM 1, BACK 1 + 1 = 9; MASH's two fell back, so 7
    # were answered without fallback: 7 / 9.
    assert (kpi(card, "coverage.v1").value, kpi(card, "coverage.v1").n) == (7 / 9, 9)
    # Not handed off: SELF, FORM, BACK, BACK; only FORM's last turn awaited the customer (the form's question): 1/7.
    assert (kpi(card, "abandonment.v1").value, kpi(card, "abandonment.v1").n) == (1 / 7, 7)
    # Customer turns: SELF 1, FRAUD 2 (the handoff and the silenced message to the human, read from the ticket: kpis.md
    # counts turns to a human after a handoff), HUMAN 2, MASH 2, FORM 1, BACK 1 + 1 = 10 over 7 conversations.
    assert kpi(card, "customer_turns_per_conversation.v1").value == pytest.approx(10 / 7)
    # Bot messages: what the channel returned to the client, counted over the 7 conversations.
    said = sum(
        len(r["messages"]) for name, chats in scripted.chats.items() if name != "NEW" for c in chats for r in c.replies
    )
    assert kpi(card, "messages_per_conversation.v1").value == pytest.approx(said / 7)
    # BACK's return is within 7 days, but so is everything before the newest conversation: all censored.
    assert kpi(card, "repeat_contact.v1").value is None and kpi(card, "repeat_contact.v1").n == 0
    # Server latency over the 9 answered turns, each positive.
    p50 = kpi(card, "server_latency_p50.v1")
    assert p50.n == 9 and p50.value is not None and p50.value > 0
    assert "recognition_rate" in card.undefined


def test_reimporting_adds_nothing_and_one_more_conversation_adds_exactly_one(scripted: Scripted) -> None:
    # Every import read the database under test.
    scheme = {"sqlite": "sqlite", "postgresql": "postgresql"}[scripted.database]
    # (a line may come first: the warning that names are not masked unless enabled)
    read = [re.search(rf"^imported from\s+{scheme}(\+\w+)?://", out, re.MULTILINE) for out in scripted.outputs]
    assert all(read), scripted.outputs
    assert all("names are NOT masked" in out for out in scripted.outputs), scripted.outputs
    first = ProductionStore(scripted.first).read()
    assert first["conversation_id"].nunique() == 7  # the seven scripted conversations (see the KPI test)
    again = json.loads((scripted.store / "state.json").read_text())["imports"]
    assert len(again) == 3 and [i["status"] for i in again] == ["ok"] * 3
    # The second import, right after the first with the bot silent: nothing new.
    assert again[1]["conversations_stored"] == 0 and again[1]["conversations_known"] == 0
    assert "conversations stored: 0 (0 customer turns)" in scripted.outputs[1]
    # The third: NEW only.
    assert again[2]["conversations_stored"] == 1 and again[2]["conversations_known"] == 0
    rows = ProductionStore(scripted.store).read()
    assert rows["conversation_id"].nunique() == 8
    added = rows[~rows["conversation_id"].isin(set(first["conversation_id"]))]
    assert set(added["customer"]) == {customer_of(scripted.store, scripted.chats["NEW"][0].sender)}
    assert len(added) == 1 and added.iloc[0]["turn_index"] == 0
    # The earlier rows are untouched.
    columns = ["conversation_id", "turn_index", "text", "status"]
    kept = rows[rows["conversation_id"].isin(set(first["conversation_id"]))]
    pd.testing.assert_frame_equal(
        kept[columns].sort_values(columns[:2]).reset_index(drop=True),
        first[columns].sort_values(columns[:2]).reset_index(drop=True),
    )


def test_personal_data_never_reaches_the_stored_files(scripted: Scripted) -> None:
    rows = ProductionStore(scripted.store).read()
    (text,) = rows[rows["customer"] == customer_of(scripted.store, scripted.chats["NEW"][0].sender)]["text"]
    assert text == "please update my email to [email], my card is [card number]"
    secrets_sent = [EMAIL, CARD, CARD.replace(" ", "")] + [c.sender for cs in scripted.chats.values() for c in cs]
    files = sorted((scripted.store / "turns").rglob("*.parquet"))
    assert files
    for path in files:
        raw = path.read_bytes()
        # Decoded too: a compressed page could hide the bytes from a plain search.
        decoded = json.dumps(pq.read_table(path).to_pylist(), default=str)
        for value in secrets_sent:
            assert value.encode() not in raw and value not in decoded, (path, value)
    state = (scripted.store / "state.json").read_text()
    assert not [v for v in secrets_sent if v in state]
