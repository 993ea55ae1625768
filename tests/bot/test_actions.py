"""Custom actions: escalation and handoff tickets, not-understood handling, conversation bookkeeping, flows."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from bankbot.actions.accounts import ValidateUpdateAddressForm
from bankbot.actions.cards import ActionBlockCard, ValidateActivateCardForm, ValidateBlockCardForm
from bankbot.actions.conversation import ActionEscalate, ActionNotUnderstood, ActionValidateSlotMappings
from bankbot.actions.payments import ActionExchangeRates
from bankbot.escalation import DEFAULT_POLICY_PATH
from bankbot.handoff_store import HandoffStore
from conftest import tracker
from rasa_sdk.events import ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher


def run(action: Any, dispatcher: CollectingDispatcher, trk: Any, domain: dict) -> list[dict]:
    return asyncio.run(action.run(dispatcher, trk, domain))


def slots_of(events: list[dict]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def texts(dispatcher: CollectingDispatcher) -> list[str]:
    return [m.get("text") or m.get("response") for m in dispatcher.messages]


def test_fraud_creates_a_fraud_ticket_with_the_full_transcript(dispatcher, domain, handoff_db: Path) -> None:
    history = [("customer", "hi"), ("bot", "Hi, I'm Penny"), ("customer", "whats my balance"), ("bot", "£1,243.57")]
    trk = tracker(
        "report_fraud",
        "there's a payment I never made",
        history=history,
        slots={"topic": "check_balance", "not_understood_streak": 0.0},
    )
    events = run(ActionEscalate(), dispatcher, trk, domain)
    slots = slots_of(events)
    assert (slots["handoff_queue"], slots["handoff_rule"], slots["conversation_state"]) == (
        "fraud",
        "fraud_immediate",
        "handed_off",
    )
    ticket = HandoffStore(handoff_db).get(slots["handoff_ticket"])
    assert ticket is not None and (ticket.queue, ticket.priority, ticket.conversation_id) == ("fraud", "high", "conv-1")
    said = [(m.sender, m.text) for m in ticket.transcript]
    assert said[:5] == [*history, ("customer", "there's a payment I never made")]
    # The handoff message is the last line of the transcript and is what the customer was told, once.
    assert said[-1] == ("bot", texts(dispatcher)[0]) and len(dispatcher.messages) == 1
    assert ticket.ticket_id in texts(dispatcher)[0] and "Fraud team" in texts(dispatcher)[0]
    assert "fraud_immediate" in ticket.summary and "there's a payment I never made" in ticket.summary
    assert ticket.slots == {"topic": "check_balance"}


def test_the_handoff_ticket_stays_invisible_to_agents_until_the_turn_is_stored(dispatcher, domain, handoff_db) -> None:
    events = run(ActionEscalate(), dispatcher, tracker("report_fraud", "someone took money"), domain)
    store = HandoffStore(handoff_db)
    ticket_id = slots_of(events)["handoff_ticket"]
    assert store.get(ticket_id).status == "pending" and store.open_tickets() == []
    assert store.settle("conv-1", ticket_id) == (True, 0)
    assert [t.ticket_id for t in store.open_tickets()] == [ticket_id]


def test_a_conversation_with_an_open_ticket_gets_no_second_one(dispatcher, domain, handoff_db) -> None:
    store = HandoffStore(handoff_db)
    first = store.create_ticket(
        conversation_id="conv-1",
        queue="complaints",
        priority="normal",
        rule="complaint",
        summary="s",
        slots={},
        transcript=[("customer", "I want to complain")],
    )
    events = run(
        ActionEscalate(), dispatcher, tracker("report_fraud", "and now there's a payment I never made"), domain
    )
    slots = slots_of(events)
    assert (slots["handoff_ticket"], slots["handoff_queue"], slots["handoff_rule"]) == (
        first,
        "complaints",
        "complaint",
    )
    assert first in texts(dispatcher)[0] and "Customer Care" in texts(dispatcher)[0]
    (ticket,) = store.for_conversation("conv-1")
    assert [(m.sender, m.text) for m in ticket.transcript] == [
        ("customer", "I want to complain"),
        ("customer", "and now there's a payment I never made"),
        ("bot", texts(dispatcher)[0]),
    ]


def test_a_human_request_goes_to_the_queue_of_the_current_topic(dispatcher, domain, handoff_db: Path) -> None:
    events = run(
        ActionEscalate(),
        dispatcher,
        tracker("request_human", "agent please", slots={"topic": "transfer_status"}),
        domain,
    )
    assert slots_of(events)["handoff_queue"] == "payments"
    assert slots_of(events)["handoff_rule"] == "explicit_human_request"


def test_escalating_inside_a_form_closes_the_form(dispatcher, domain) -> None:
    trk = tracker(
        "request_human", "just get me a person", slots={"topic": "card_lost_stolen"}, active_loop="block_card_form"
    )
    events = run(ActionEscalate(), dispatcher, trk, domain)
    assert ActiveLoop(None) in events and SlotSet("requested_slot", None) in events
    assert slots_of(events)["handoff_queue"] == "cards"


def test_without_a_fraud_rule_the_bot_gives_advice_and_opens_no_ticket(
    dispatcher, domain, handoff_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = yaml.safe_load(DEFAULT_POLICY_PATH.read_text())
    raw["rules"] = [r for r in raw["rules"] if r["name"] != "fraud_immediate"]
    degraded = tmp_path / "no_fraud.yml"
    degraded.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("ESCALATION_POLICY", str(degraded))
    events = run(ActionEscalate(), dispatcher, tracker("report_fraud", "I've been scammed"), domain)
    assert events == [] and texts(dispatcher) == ["utter_fraud_advice"]
    assert HandoffStore(handoff_db).open_tickets() == []


def test_the_first_not_understood_turn_asks_to_rephrase(dispatcher, domain, handoff_db: Path) -> None:
    events = run(
        ActionNotUnderstood(),
        dispatcher,
        tracker("nlu_fallback", "blorp", slots={"not_understood_streak": 1.0}),
        domain,
    )
    assert events == [] and texts(dispatcher) == ["utter_rephrase"]
    assert HandoffStore(handoff_db).open_tickets() == []


def test_the_second_not_understood_turn_hands_off_to_the_topic_queue(dispatcher, domain) -> None:
    trk = tracker("nlu_fallback", "zzz", slots={"not_understood_streak": 2.0, "topic": "fees"})
    slots = slots_of(run(ActionNotUnderstood(), dispatcher, trk, domain))
    assert (slots["handoff_rule"], slots["handoff_queue"]) == ("not_understood_twice", "accounts")


def extract(method: str, trk: Any) -> dict:
    action = ActionValidateSlotMappings()
    return asyncio.run(getattr(action, method)(CollectingDispatcher(), trk, {}))


def test_the_not_understood_streak_counts_consecutive_fallbacks_and_resets() -> None:
    again = tracker("nlu_fallback", "x", slots={"not_understood_streak": 1.0})
    assert extract("extract_not_understood_streak", again) == {"not_understood_streak": 2.0}
    assert extract("extract_not_understood_streak", tracker("fees", "fees?", slots={"not_understood_streak": 1.0})) == {
        "not_understood_streak": 0.0
    }
    # Inside a flow the form judges the answer; it is not a misunderstanding.
    in_form = tracker("nlu_fallback", "4821", slots={"not_understood_streak": 1.0}, active_loop="activate_card_form")
    assert extract("extract_not_understood_streak", in_form) == {"not_understood_streak": 0.0}


def test_only_self_service_intents_set_the_topic() -> None:
    assert extract("extract_topic", tracker("refund_status", "refund?")) == {"topic": "refund_status"}
    assert extract("extract_topic", tracker("thanks", "ta")) == {}
    assert extract("extract_topic", tracker("request_human", "human")) == {}


def test_a_handed_off_conversation_stays_handed_off() -> None:
    assert extract("extract_conversation_state", tracker("greet", "hi", slots={"conversation_state": "ended"})) == {
        "conversation_state": "active"
    }
    assert (
        extract("extract_conversation_state", tracker("greet", "hi", slots={"conversation_state": "handed_off"})) == {}
    )


def validate(form: Any, slot: str, value: Any, trk: Any, dispatcher: CollectingDispatcher) -> dict:
    return asyncio.run(getattr(form, f"validate_{slot}")(value, dispatcher, trk, {}))


@pytest.mark.parametrize(
    ("said", "kind"),
    [("the debit one", "debit"), ("my Mastercard", "credit"), ("ending 7730", "credit"), ("visa", "debit")],
)
def test_which_card_answers_are_understood(said: str, kind: str, dispatcher) -> None:
    trk = tracker("inform", said, active_loop="block_card_form")
    assert validate(ValidateBlockCardForm(), "card_type", said, trk, dispatcher) == {"card_type": kind}


def test_three_invalid_card_answers_fail_the_flow(dispatcher) -> None:
    form = ValidateBlockCardForm()
    slots: dict[str, Any] = {"topic": "card_lost_stolen"}
    for attempt in (1, 2):
        result = validate(form, "card_type", "banana", tracker("inform", "banana", slots=slots), dispatcher)
        assert result == {"card_type": None, "invalid_inputs": float(attempt)}
        slots["invalid_inputs"] = result["invalid_inputs"]
    result = validate(form, "card_type", "both?", tracker("inform", "both?", slots=slots), dispatcher)
    assert result == {"card_type": None, "invalid_inputs": 3.0, "flow_failed": True, "requested_slot": None}
    # The customer was told twice what a valid answer looks like, not a third time (the handoff says it all).
    assert texts(dispatcher) == ["utter_invalid_card_type", "utter_invalid_card_type"]


def test_saying_no_to_which_card_cancels_the_block(dispatcher) -> None:
    result = validate(ValidateBlockCardForm(), "card_type", "no", tracker("deny", "no forget it"), dispatcher)
    assert result == {"card_type": None, "block_confirmed": False, "requested_slot": None}


def test_a_failed_block_flow_hands_off_to_cards(dispatcher, domain, handoff_db: Path) -> None:
    trk = tracker("inform", "dunno", slots={"topic": "card_lost_stolen", "flow_failed": True, "invalid_inputs": 3.0})
    slots = slots_of(run(ActionBlockCard(), dispatcher, trk, domain))
    assert (slots["handoff_rule"], slots["handoff_queue"]) == ("failed_self_service", "cards")
    assert slots["invalid_inputs"] == 0.0 and slots["flow_failed"] is None


def test_a_confirmed_block_blocks_the_named_card(dispatcher, domain) -> None:
    trk = tracker("affirm", "yes", slots={"card_type": "credit", "block_confirmed": True})
    run(ActionBlockCard(), dispatcher, trk, domain)
    assert "Mastercard credit card ending 7730 is now blocked" in texts(dispatcher)[0]


def test_a_full_card_number_is_refused_with_a_security_warning(dispatcher) -> None:
    said = "4929 1234 5678 5512"
    result = validate(ValidateActivateCardForm(), "activation_last4", said, tracker("nlu_fallback", said), dispatcher)
    assert result["activation_last4"] is None and texts(dispatcher) == ["utter_no_full_card_number"]


def test_the_last_four_digits_of_the_new_card_activate_it(dispatcher) -> None:
    said = "it's 5512"
    result = validate(ValidateActivateCardForm(), "activation_last4", said, tracker("inform", said), dispatcher)
    assert result == {"activation_last4": "5512"}


@pytest.mark.parametrize(("said", "expected"), [("sw1a1aa", "SW1A 1AA"), ("it's M1 1AE thanks", "M1 1AE")])
def test_postcodes_are_normalised(said: str, expected: str, dispatcher) -> None:
    result = validate(ValidateUpdateAddressForm(), "new_postcode", said, tracker("inform", said), dispatcher)
    assert result == {"new_postcode": expected}


def test_exchange_rates_answer_the_currency_asked_about(dispatcher, domain) -> None:
    run(ActionExchangeRates(), dispatcher, tracker("exchange_rates", "how many yen for a pound?"), domain)
    assert "JPY" in texts(dispatcher)[0] and "EUR" not in texts(dispatcher)[0]
