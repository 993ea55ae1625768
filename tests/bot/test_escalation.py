"""The escalation policy: each named rule, its order, routing to the topic's queue, and policy-file errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from bankbot.catalog import load_catalog
from bankbot.escalation import DEFAULT_POLICY_PATH, Decision, PolicyError, Signals, decide, load_policy, parse_policy

POLICY = load_policy()


def test_fraud_goes_to_the_fraud_queue_at_once_with_high_priority() -> None:
    decision = decide(POLICY, Signals("report_fraud", topic_queue="payments"))
    assert decision == Decision("fraud_immediate", "fraud", "high")


def test_complaint_goes_to_complaints_at_once() -> None:
    assert decide(POLICY, Signals("complaint", topic_queue="cards")) == Decision(
        "complaint_immediate", "complaints", "normal"
    )


@pytest.mark.parametrize(("topic_queue", "queue"), [("cards", "cards"), ("payments", "payments"), (None, "general")])
def test_explicit_human_request_routes_to_the_topic_queue_or_general(topic_queue: str | None, queue: str) -> None:
    decision = decide(POLICY, Signals("request_human", topic_queue=topic_queue))
    assert decision is not None and (decision.rule, decision.queue) == ("explicit_human_request", queue)


def test_one_not_understood_turn_does_not_escalate_two_do() -> None:
    assert decide(POLICY, Signals("nlu_fallback", topic_queue="accounts", consecutive_not_understood=1)) is None
    decision = decide(POLICY, Signals("nlu_fallback", topic_queue="accounts", consecutive_not_understood=2))
    assert decision == Decision("not_understood_twice", "accounts", "normal")


def test_not_understood_without_a_topic_goes_to_general_with_low_priority() -> None:
    assert decide(POLICY, Signals("nlu_fallback", consecutive_not_understood=2)) == Decision(
        "not_understood_twice", "general", "low"
    )


def test_a_failed_self_service_flow_escalates_on_the_third_invalid_input() -> None:
    assert decide(POLICY, Signals("inform", topic_queue="cards", invalid_flow_inputs=2)) is None
    assert decide(POLICY, Signals("inform", topic_queue="cards", invalid_flow_inputs=3)) == Decision(
        "failed_self_service", "cards", "normal"
    )


def test_an_understood_self_service_turn_never_escalates() -> None:
    assert decide(POLICY, Signals("check_balance", topic_queue="accounts")) is None


def test_rules_are_checked_in_file_order() -> None:
    # Fraud after two misunderstood turns is still a fraud case, not a "not understood" case.
    decision = decide(POLICY, Signals("report_fraud", topic_queue="cards", consecutive_not_understood=2))
    assert decision is not None and decision.rule == "fraud_immediate"


def test_a_topic_queue_that_does_not_exist_falls_back_to_the_default_queue() -> None:
    decision = decide(POLICY, Signals("request_human", topic_queue="mortgages"))
    assert decision is not None and decision.queue == "general"


def test_the_committed_policy_names_only_intents_that_exist() -> None:
    catalog = load_catalog()
    assert {r.intent for r in POLICY.rules if r.intent} <= set(catalog)
    assert {info.queue for info in catalog.values()} <= set(POLICY.queues)


def test_the_committed_policy_has_at_least_five_queues_and_the_four_required_behaviours() -> None:
    assert len(POLICY.queues) >= 5
    names = {r.name for r in POLICY.rules}
    assert {"explicit_human_request", "fraud_immediate", "complaint_immediate", "not_understood_twice",
            "failed_self_service"} <= names


def _raw() -> dict:
    return yaml.safe_load(DEFAULT_POLICY_PATH.read_text())


def test_unknown_key_is_reported_with_a_suggestion() -> None:
    raw = _raw()
    raw["rules"][0]["rout_to"] = raw["rules"][0].pop("route_to")
    with pytest.raises(PolicyError) as info:
        parse_policy(raw, source="escalation.yml")
    message = str(info.value)
    assert "escalation.yml: rules[0].rout_to: unknown key 'rout_to' (did you mean 'route_to'?)" in message
    assert "escalation.yml: rules[0].route_to: required: a queue name or 'topic'" in message


def test_every_problem_is_reported_at_once() -> None:
    raw = _raw()
    raw["queues"]["fraud"]["priority"] = "urgent"
    raw["rules"][1]["route_to"] = "complaint"
    raw["rules"][2]["name"] = raw["rules"][0]["name"]
    raw["rules"][3]["when"]["consecutive_not_understood"] = 0
    with pytest.raises(PolicyError) as info:
        parse_policy(raw, source="p.yml")
    message = str(info.value)
    assert "p.yml: queues.fraud.priority: expected one of high, normal, low, got 'urgent'" in message
    assert "p.yml: rules[1].route_to: unknown queue 'complaint' (did you mean 'complaints'?)" in message
    assert "p.yml: rules[2].name: duplicate rule name 'fraud_immediate'" in message
    assert "p.yml: rules[3].when.consecutive_not_understood: expected a positive integer, got 0" in message


def test_missing_and_malformed_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="nowhere.yml: escalation policy file not found"):
        load_policy(tmp_path / "nowhere.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("queues: [unclosed\n")
    with pytest.raises(PolicyError, match="bad.yml: not valid YAML"):
        load_policy(bad)
