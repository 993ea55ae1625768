"""The handoff mapping of a stock Rasa bot: one broken file per validation message (file, location, did-you-mean),
and `detect_handoff` on tracker events in Rasa's `as_dict` form."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.bots.base import Handoff
from harness.bots.handoff_mapping import (
    HandoffMapping,
    UnmappedHandoffValue,
    check_against_domain,
    detect_handoff,
    load_handoff_mapping,
)
from harness.errors import InputError

HELPDESK = Path(__file__).parents[2] / "fixtures" / "stock_rasa" / "helpdesk"


def load(tmp_path: Path, text: str) -> HandoffMapping:
    path = tmp_path / "handoff.yml"
    path.write_text(text)
    return load_handoff_mapping(path)


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(InputError) as info:
        load(tmp_path, text)
    prefix = f"{tmp_path / 'handoff.yml'}: "
    assert all(p.startswith(prefix) for p in info.value.problems)
    return [p.removeprefix(prefix) for p in info.value.problems]


def user(intent: str) -> dict:
    return {"event": "user", "text": "x", "parse_data": {"intent": {"name": intent, "confidence": 0.9}}}


def action(name: str) -> dict:
    return {"event": "action", "name": name}


def slot(name: str, value: object) -> dict:
    return {"event": "slot", "name": name, "value": value}


def test_the_helpdesk_mapping_loads_and_names_its_queues() -> None:
    mapping = load_handoff_mapping(HELPDESK / "handoff.yml")
    assert mapping.path == str(HELPDESK / "handoff.yml")
    assert mapping.queue_names() == ("billing", "general", "technical") and mapping.rule_names() == ()
    assert not mapping.declares_rules and not mapping.observes_pause


def test_unknown_keys_are_located_with_did_you_mean(tmp_path: Path) -> None:
    text = """
version: 1
handofs: []
handoffs:
  - when: {acton: action_handoff}
    queue: {slott: handoff_to}
    rul: {value: x}
queues: {human: general}
"""
    assert problems(tmp_path, text) == [
        "handoffs[0].when.acton: unknown key (did you mean 'action'?); allowed here: action, event, payload, intent, "
        "slot",
        "handoffs[0].queue.slott: unknown key (did you mean 'slot'?); allowed here: slot, value, payload, action",
        "handoffs[0].rul: unknown key (did you mean 'rule'?); allowed here: when, queue, rule",
        "handofs: unknown key (did you mean 'handoffs'?); allowed here: version, handoffs, queues, rules",
    ]


def test_each_when_and_source_takes_exactly_one_form(tmp_path: Path) -> None:
    text = """
version: 1
handoffs:
  - when: {action: a, intent: b}
    queue: {}
  - when: {event: paused}
    queue: {value: general}
  - when: {event: pause}
    queue: {action: true}
"""
    assert problems(tmp_path, text) == [
        "handoffs[0].when: `when` takes exactly one of action, event, payload, intent, slot (got action, intent)",
        "handoffs[0].queue: a queue or rule source takes exactly one of slot, value, payload, action",
        "handoffs[1].when.event: unknown event 'paused'; the only event is 'pause' (Rasa's ConversationPaused)",
        "handoffs[2]: queue: {action: true} names the action of `when: {action: ...}`, and this entry's `when` is "
        "not an action",
    ]


def test_a_bot_word_needs_a_translation_table(tmp_path: Path) -> None:
    text = "version: 1\nhandoffs:\n  - {when: {action: a}, queue: {slot: team}, rule: {payload: why}}\n"
    assert problems(tmp_path, text) == [
        "handoffs[0].queue: reads the bot's word from slot team, but the file has no `queues:` section to translate "
        "it; add `queues: {<bot's word>: <queue name>}`, or use `queue: {value: <queue name>}`",
        "handoffs[0].rule: reads the bot's word from payload key why, but the file has no `rules:` section to "
        "translate it; add `rules: {<bot's word>: <rule name>}`, or use `rule: {value: <rule name>}`",
    ]


def test_version_and_handoffs_are_required_and_an_empty_list_means_no_handoff(tmp_path: Path) -> None:
    assert problems(tmp_path, "version: 2\nhandoffs: []\n") == ["version: Input should be 1"]
    assert problems(tmp_path, "version: 1\n") == ["handoffs: Field required"]
    assert problems(tmp_path, "") == ["expected `version: 1` and `handoffs:`, got an empty file"]
    assert problems(tmp_path, "- a\n") == ["expected `version: 1` and `handoffs:`, got a list"]
    with pytest.raises(InputError, match="not valid YAML"):
        load(tmp_path, "version: [1\n")


def test_the_vocabulary_is_the_translations_and_the_constants(tmp_path: Path) -> None:
    mapping = load(
        tmp_path,
        """
version: 1
handoffs:
  - {when: {action: a}, queue: {slot: team}, rule: {value: asked}}
  - {when: {event: pause}, queue: {value: fraud}, rule: {payload: why}}
queues: {billing_team: billing, human: general}
rules: {too_many_fallbacks: repeated_fallback}
""",
    )
    assert mapping.queue_names() == ("billing", "fraud", "general")
    assert mapping.rule_names() == ("asked", "repeated_fallback")
    assert mapping.declares_rules and mapping.observes_pause


def test_the_first_matching_entry_decides(tmp_path: Path) -> None:
    mapping = load(
        tmp_path,
        """
version: 1
handoffs:
  - {when: {intent: report_fraud}, queue: {value: fraud}}
  - {when: {action: action_handoff}, queue: {slot: team}}
queues: {billing_team: billing}
""",
    )
    events = [user("report_fraud"), slot("team", "billing_team"), action("action_handoff")]
    assert detect_handoff(mapping, events, {"events": events}, []) == Handoff("fraud")
    events = [user("billing"), slot("team", "billing_team"), action("action_handoff")]
    assert detect_handoff(mapping, events, {"events": events}, []) == Handoff("billing")
    events = [user("billing"), action("utter_x")]
    assert detect_handoff(mapping, events, {"events": events}, []) is None


def test_a_slot_is_read_as_it_was_when_the_matched_action_ran(tmp_path: Path) -> None:
    mapping = load(
        tmp_path, "version: 1\nhandoffs:\n  - {when: {action: h}, queue: {slot: team}}\nqueues: {a: A, b: B}\n"
    )
    earlier = [user("x"), slot("team", "a"), action("utter")]
    turn = [user("y"), action("h"), slot("team", "b")]  # set after the action ran: not what it read
    assert detect_handoff(mapping, turn, {"events": earlier + turn, "slots": {"team": "b"}}, []) == Handoff("A")
    restarted = [*earlier, {"event": "restart"}]
    with pytest.warns(UnmappedHandoffValue, match="slot team has no value"):
        assert detect_handoff(mapping, turn, {"events": restarted + turn}, []) == Handoff(None)
    # a tracker without its events: the current slots stand in for the turn's start
    assert detect_handoff(mapping, turn, {"slots": {"team": "a"}}, []) == Handoff("A")


def test_a_slot_set_in_the_turn_is_a_handoff_and_the_other_slots_are_read_when_it_was_set(tmp_path: Path) -> None:
    mapping = load(
        tmp_path,
        "version: 1\nhandoffs:\n  - {when: {slot: ticket}, queue: {slot: team}, rule: {slot: why}}\n"
        "queues: {a: A}\nrules: {r: R}\n",
    )
    # the reference bot's escalation actions set the queue and rule, then the ticket, then clear nothing
    handed = [user("x"), action("esc"), slot("team", "a"), slot("why", "r"), slot("ticket", "T-1"), slot("team", None)]
    assert detect_handoff(mapping, handed, {"events": handed}, []) == Handoff("A", "R")
    # the same action clearing the ticket slot (set to null) or setting other slots only: no handoff
    kept = [user("x"), action("esc"), slot("team", "a"), slot("ticket", None)]
    assert detect_handoff(mapping, kept, {"events": kept}, []) is None
    text = "version: 1\nhandoffs:\n  - {when: {slot: tickt}, queue: {value: A}}\n"
    with pytest.raises(InputError) as raised:
        check_against_domain(load(tmp_path, text), intents=[], actions=[], slots=["ticket"])
    assert "handoffs[0].when.slot: unknown slot 'tickt' (did you mean 'ticket'?)" in str(raised.value.problems)


def test_a_pause_event_and_a_nested_payload_key(tmp_path: Path) -> None:
    mapping = load(
        tmp_path,
        """
version: 1
handoffs:
  - {when: {payload: handoff.team}, queue: {payload: handoff.team}, rule: {payload: handoff.reason}}
  - {when: {event: pause}, queue: {value: general}}
queues: {tech_support: technical}
rules: {line_dead: engineer_needed}
""",
    )
    events = [user("x"), action("action_handoff")]
    payloads = [{"other": 1}, {"handoff": {"team": "tech_support", "reason": "line_dead"}}]
    assert detect_handoff(mapping, events, {}, payloads) == Handoff("technical", "engineer_needed")
    assert detect_handoff(mapping, events, {}, [{"handoff": "yes"}]) is None  # no `team` key under `handoff`
    paused = [*events, {"event": "pause"}]
    assert detect_handoff(mapping, paused, {}, []) == Handoff("general")


def test_a_non_text_value_is_looked_up_as_json(tmp_path: Path) -> None:
    mapping = load(tmp_path, "version: 1\nhandoffs:\n  - {when: {action: h}, queue: {slot: n}}\nqueues: {'2': two}\n")
    events = [user("x"), slot("n", 2), action("h")]
    assert detect_handoff(mapping, events, {"events": events}, []) == Handoff("two")
    events = [user("x"), slot("n", True), action("h")]
    with pytest.warns(UnmappedHandoffValue, match=r"queue 'true' \(from slot n\)"):
        assert detect_handoff(mapping, events, {"events": events}, []) == Handoff(None)
