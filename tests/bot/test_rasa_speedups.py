"""The bot's fixes to Rasa's per-turn work: the same verdicts, errors and event classes as Rasa's own code."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from bankbot.nlu import rasa_speedups
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.events import Event
from rasa.shared.utils.common import all_subclasses

VALID = [
    {"events": [], "responses": []},
    {
        "events": [{"event": "slot", "name": "topic", "value": "check_balance", "timestamp": None}],
        "responses": [{"text": "Here are your balances"}],
    },
    {"events": [{"event": "action_execution_rejected", "name": "x"}, {"event": "followup", "name": "y"}]},
]
INVALID = [
    {"events": "not a list"},
    {"events": [{"event": "slot", "value": 1}]},
    {"events": [{"event": "no_such_event"}]},
    {"events": [], "responses": ["not an object"]},
    [],
]


@pytest.fixture
def rasa_own() -> Iterator[Any]:
    """Rasa's original response check (before bankbot.nlu installed the fix); the fixes re-installed after."""
    rasa_speedups.uninstall()
    original = RemoteAction._validate_action_result
    rasa_speedups.install()
    yield original
    rasa_speedups.install()


def action() -> RemoteAction:
    return RemoteAction("action_check_balance", None)


def test_importing_the_bots_components_installs_the_fixes() -> None:
    assert RemoteAction._validate_action_result is rasa_speedups.validate_action_result
    assert Event.resolve_by_type is rasa_speedups.resolve_event_type


@pytest.mark.parametrize("response", VALID)
def test_valid_responses_pass_as_with_rasas_check(rasa_own: Any, response: dict[str, Any]) -> None:
    assert rasa_own(action(), response) is True
    assert action()._validate_action_result(response) is True


@pytest.mark.parametrize("response", INVALID)
def test_invalid_responses_fail_with_the_error_rasa_raises(rasa_own: Any, response: Any) -> None:
    with pytest.raises(jsonschema.ValidationError) as rasas:
        rasa_own(action(), response)
    with pytest.raises(jsonschema.ValidationError) as ours:
        action()._validate_action_result(response)
    assert ours.value.message == rasas.value.message
    assert list(ours.value.absolute_path) == list(rasas.value.absolute_path)
    assert "Failed to validate Action server response" in ours.value.message


def test_the_schema_is_checked_once_not_per_response(monkeypatch: pytest.MonkeyPatch) -> None:
    cls = jsonschema.validators.validator_for(RemoteAction.action_response_format_spec())
    checks = []
    original = cls.check_schema.__func__
    monkeypatch.setattr(cls, "check_schema", classmethod(lambda c, s, *a, **k: checks.append(1) or original(c, s)))
    rasa_speedups.response_validator.cache_clear()
    for response in VALID * 3:
        action()._validate_action_result(response)
    assert len(checks) == 1
    rasa_speedups.response_validator.cache_clear()


def rasas_lookup(type_name: str, default: type | None = None) -> type | None:
    """Rasa 3.6's `Event.resolve_by_type`, the walk over every event class, as the reference."""
    for cls in all_subclasses(Event):
        if cls.type_name == type_name:
            return cls
    if type_name == "topic":
        return None
    if default is not None:
        return default
    raise ValueError(f"Unknown event name '{type_name}'.")


def test_every_event_name_resolves_to_the_class_rasas_lookup_finds() -> None:
    names = {cls.type_name for cls in all_subclasses(Event)}
    assert len(names) > 15
    for name in sorted(names):
        assert Event.resolve_by_type(name) is rasas_lookup(name)


def test_unknown_event_names_behave_as_in_rasa() -> None:
    assert Event.resolve_by_type("topic") is None
    assert Event.resolve_by_type("no_such_event", Event) is Event
    with pytest.raises(ValueError, match="Unknown event name 'no_such_event'"):
        Event.resolve_by_type("no_such_event")


def test_stored_events_come_back_as_the_same_objects() -> None:
    from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered

    events = [UserUttered("hi", {"name": "greet", "confidence": 0.9}), SlotSet("topic", "x"), ActionExecuted("a")]
    assert [Event.from_parameters(e.as_dict()) for e in events] == events


def test_event_classes_defined_later_are_still_found() -> None:
    rasa_speedups.event_classes()  # the table exists before the new class does

    class LateEvent(Event):
        type_name = "bankbot_test_late_event"

        def __eq__(self, other: Any) -> bool:
            return isinstance(other, LateEvent)

        def as_story_string(self) -> None:
            return None

    assert Event.resolve_by_type("bankbot_test_late_event") is LateEvent


def test_install_is_idempotent_and_uninstall_restores_rasas_methods() -> None:
    rasa_speedups.install()
    rasa_speedups.install()
    rasa_speedups.uninstall()
    assert RemoteAction._validate_action_result is not rasa_speedups.validate_action_result
    assert RemoteAction._validate_action_result.__module__ == "rasa.core.actions.action"
    assert Event.resolve_by_type is not rasa_speedups.resolve_event_type
    assert Event.resolve_by_type("slot").__name__ == "SlotSet"
    rasa_speedups.install()
    assert RemoteAction._validate_action_result is rasa_speedups.validate_action_result
    assert Event.resolve_by_type is rasa_speedups.resolve_event_type
