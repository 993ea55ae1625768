"""Conversations with the real bot through the reference channel (Rasa server + action server on loopback)."""

from __future__ import annotations

import httpx
import pytest
from conftest import ERROR_SCHEMA, NOT_UNDERSTOOD, Chat, handoff_store

from harness.bots.reference_bot.server import BotServer, free_port, train

pytestmark = pytest.mark.integration


def test_a_lost_card_flow_completes_by_itself(chat: Chat) -> None:
    first = chat.say("I think my card was stolen from my bag")
    assert first["trace"]["intent"]["name"] == "card_lost_stolen" and "Which card" in first["messages"][0]["text"]
    assert first["trace"]["topic"] == "card_lost_stolen"
    second = chat.say("the debit one")
    assert second["trace"]["slots_set"]["card_type"] == "debit" and "Shall I block it" in second["messages"][0]["text"]
    third = chat.say("yes please")
    assert "action_block_card" in third["trace"]["actions"]
    assert "Visa debit card ending 4821 is now blocked" in third["messages"][0]["text"]
    assert all(r["trace"]["handoff"] is None and r["state"] == "active" for r in chat.replies)


def test_a_fraud_message_creates_a_fraud_ticket_holding_the_transcript(chat: Chat, bot: BotServer) -> None:
    chat.say("hello")
    chat.say("what's my balance")
    reply = chat.say("there's a payment on my account I never made, I think someone has my details")
    handoff = reply["trace"]["handoff"]
    assert reply["state"] == "handed_off"
    assert (handoff["queue"], handoff["rule"]) == ("fraud", "fraud_immediate")
    ticket = handoff_store(bot.handoff_db).get(handoff["ticket_id"])
    assert ticket is not None and ticket.priority == "high" and ticket.conversation_id == chat.sender
    expected = []
    for said, body in zip(
        ["hello", "what's my balance", "there's a payment on my account I never made, I think someone has my details"],
        chat.replies,
        strict=True,
    ):
        expected += [("customer", said)] + [("bot", m["text"]) for m in body["messages"]]
    assert [(m.sender, m.text) for m in ticket.transcript] == expected


def test_after_a_handoff_the_bot_stays_silent_and_the_human_gets_the_messages(chat: Chat, bot: BotServer) -> None:
    reply = chat.say("I want to make a formal complaint about how I was treated in your branch")
    assert reply["trace"]["handoff"]["queue"] == "complaints" and len(reply["messages"]) == 1
    later = chat.say("hello? is anyone there")
    assert later["messages"] == [] and later["state"] == "handed_off" and later["trace"]["silenced"] is True
    ticket = handoff_store(bot.handoff_db).get(reply["trace"]["handoff"]["ticket_id"])
    assert ticket.transcript[-1].text == "hello? is anyone there"


def test_an_explicit_human_request_routes_to_the_topics_queue(chat: Chat) -> None:
    chat.say("my transfer to my landlord still hasn't arrived")
    reply = chat.say("can I talk to a real person please")
    assert reply["trace"]["handoff"]["queue"] == "payments"
    assert reply["trace"]["handoff"]["rule"] == "explicit_human_request"


def test_two_not_understood_turns_escalate(chat: Chat) -> None:
    # Two sentences broken off before they say anything: turns no intent covers, below the fallback threshold.
    # (Keyboard mash, fillers such as "errr" and many other fragments are trained or taken as `out_of_scope`: the
    # bot says what it can help with instead of counting them as not understood.)
    first = chat.say(NOT_UNDERSTOOD[0])
    assert first["trace"]["fallback"] is True and first["trace"]["handoff"] is None and first["state"] == "active"
    second = chat.say(NOT_UNDERSTOOD[1])
    assert second["trace"]["fallback"] is True
    assert second["trace"]["handoff"]["rule"] == "not_understood_twice"
    assert second["trace"]["handoff"]["queue"] == "general"


def test_three_invalid_answers_in_a_flow_hand_off_to_the_topics_queue(chat: Chat) -> None:
    chat.say("how do I activate my new card")
    for answer in ("not sure", "0000"):
        assert chat.say(answer)["state"] == "active"
    reply = chat.say("9999")
    assert reply["trace"]["handoff"]["rule"] == "failed_self_service"
    assert reply["trace"]["handoff"]["queue"] == "cards"


def test_the_trace_carries_ranking_and_model(chat: Chat) -> None:
    reply = chat.say("what are your opening hours on saturday")
    trace = reply["trace"]
    assert trace["intent"]["name"] == "branch_hours" and 0 < trace["intent"]["confidence"] <= 1
    assert len(trace["ranking"]) == 3 and trace["ranking"][0]["name"] == "branch_hours"
    assert trace["model"].startswith("bankbot-") and trace["latency_ms"] > 0


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"not json", "not valid JSON"),
        (b'{"sender": "x"}', "message: required"),
        (b'{"sender": "x", "message": "hi", "extra": 1}', "unknown key(s) extra"),
    ],
)
def test_a_bad_body_gets_400_naming_the_problem(bot: BotServer, body: bytes, problem: str) -> None:
    response = httpx.post(bot.url, content=body, headers={"Authorization": f"Bearer {bot.token}"}, timeout=30)
    assert response.status_code == 400
    ERROR_SCHEMA.validate(response.json())
    assert response.json()["error"]["code"] == "bad_request" and problem in response.json()["error"]["message"]


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", "Basic abc"])
def test_a_missing_or_wrong_token_gets_401(bot: BotServer, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = httpx.post(bot.url, json={"sender": "x", "message": "hi"}, headers=headers, timeout=30)
    ERROR_SCHEMA.validate(response.json())
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"


def test_a_failing_action_server_gives_500_with_an_error_body_never_an_empty_200(tmp_path) -> None:
    server = BotServer(
        model=train(),
        token="t0k",
        handoff_db=tmp_path / "h.sqlite3",
        rasa_port=free_port(),
        action_port=free_port(),
        log_dir=tmp_path / "logs",
    )
    with server:
        server.process("actions").kill()
        server.process("actions").wait()
        response = httpx.post(
            server.url,
            json={"sender": "c", "message": "what's my balance"},
            headers={"Authorization": "Bearer t0k"},
            timeout=60,
        )
    assert response.status_code == 500
    ERROR_SCHEMA.validate(response.json())
    assert response.json()["error"]["code"] == "empty_reply"
    assert "action server" in response.json()["error"]["message"]
