"""The reference channel's pure parts: request validation and the per-turn decision trace."""

from __future__ import annotations

import json

import pytest
from bankbot.channel import BadRequest, ReferenceChannel, conversation_state, parse_body, turn_trace


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "body is not valid JSON"),
        (b"{not json", "body is not valid JSON"),
        (b"[1, 2]", "body must be a JSON object"),
        (b'{"message": "hi"}', "sender: required"),
        (b'{"sender": "  ", "message": "hi"}', "sender: required"),
        (b'{"sender": "c1"}', "message: required"),
        (b'{"sender": "c1", "message": 42}', "message: required"),
        (b'{"sender": "c1", "message": "hi", "text": "x"}', "unknown key(s) text"),
        (b'{"sender": "c1", "message": "hi", "metadata": []}', "metadata: must be a JSON object"),
        (json.dumps({"sender": "c1", "message": "x" * 4001}).encode(), "message: at most 4000 characters"),
    ],
)
def test_malformed_bodies_are_rejected_naming_the_problem(body: bytes, problem: str) -> None:
    with pytest.raises(BadRequest, match=problem.replace("(", r"\(").replace(")", r"\)")):
        parse_body(body)


def test_a_valid_body_parses() -> None:
    assert parse_body(b'{"sender": "c1", "message": "hi", "metadata": {"a": 1}}') == ("c1", "hi", {"a": 1})
    assert parse_body(b'{"sender": "c1", "message": "hi"}') == ("c1", "hi", {})


def test_the_channel_refuses_to_start_without_a_token() -> None:
    with pytest.raises(ValueError, match="needs a bearer token"):
        ReferenceChannel.from_credentials({"token": ""})


EVENTS = [
    {"event": "user", "text": "hi", "message_id": "m0", "parse_data": {"intent": {"name": "greet"}}},
    {"event": "action", "name": "utter_greet"},
    {"event": "action", "name": "action_listen"},
    {"event": "user", "text": "blah", "message_id": "m1", "parse_data": {
        "intent": {"name": "nlu_fallback", "confidence": 0.5},
        "intent_ranking": [{"name": "nlu_fallback", "confidence": 0.5}, {"name": "fees", "confidence": 0.41},
                           {"name": "top_up", "confidence": 0.3}, {"name": "greet", "confidence": 0.2},
                           {"name": "thanks", "confidence": 0.05}],
        "entities": []}},
    {"event": "action", "name": "action_extract_slots"},
    {"event": "slot", "name": "not_understood_streak", "value": 2.0},
    {"event": "action", "name": "action_not_understood"},
    {"event": "slot", "name": "handoff_queue", "value": "general"},
    {"event": "slot", "name": "handoff_rule", "value": "not_understood_twice"},
    {"event": "slot", "name": "handoff_ticket", "value": "T-1"},
    {"event": "slot", "name": "card_type", "value": None},
    {"event": "action", "name": "action_listen"},
]


def test_the_trace_reports_the_turns_decision_not_earlier_ones() -> None:
    slots = {"handoff_queue": "general", "handoff_rule": "not_understood_twice", "handoff_ticket": "T-1"}
    trace = turn_trace(EVENTS, "m1", slots)
    assert trace["fallback"] is True
    assert trace["intent"] == {"name": "fees", "confidence": 0.41}
    assert [r["name"] for r in trace["ranking"]] == ["fees", "top_up", "greet"]
    assert trace["actions"] == ["action_not_understood"]
    assert trace["slots_set"]["not_understood_streak"] == 2.0 and trace["slots_cleared"] == ["card_type"]
    assert trace["handoff"] == {"queue": "general", "rule": "not_understood_twice", "ticket_id": "T-1"}
    assert conversation_state(slots) == "handed_off"


def test_an_understood_turn_has_no_handoff() -> None:
    trace = turn_trace(EVENTS[:3], "m0", {})
    assert trace["fallback"] is False and trace["handoff"] is None and trace["actions"] == ["utter_greet"]
    assert conversation_state({"conversation_state": "ended"}) == "ended"


def test_a_turn_missing_from_the_tracker_is_an_error_not_an_empty_trace() -> None:
    with pytest.raises(RuntimeError, match="no user event for message m9"):
        turn_trace(EVENTS, "m9", {})
