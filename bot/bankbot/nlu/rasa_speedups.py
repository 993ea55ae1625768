"""Two fixes to Rasa 3.6's per-turn work that change no decision, only how long a turn takes on the event loop.

Measured in bench/results/bot-profile.md (`bench/bot_profile.py --baseline` runs turns with and without them):

- **The action server's responses, checked against a schema compiled once.** After every custom action Rasa
  (`RemoteAction._validate_action_result`) calls `jsonschema.validate(response, schema)`, which first validates
  the schema itself against the JSON Schema meta-schema. Rasa's events schema is large, so each call spent about
  60 ms of one core re-checking a constant: about half of a whole turn. The replacement checks the schema once,
  keeps one validator, and for each response does exactly what `jsonschema.validate` does after its schema check
  (raises the `best_match` of the validator's errors), with Rasa's hint appended to the message as Rasa does.
- **Event classes looked up by name from a table.** Rasa turns every stored event back into an object through
  `Event.resolve_by_type`, which walks the whole class tree of events (about 65 us) for each one; every read of a
  conversation from the tracker store does that for all its events, several times a turn. The replacement answers
  from a table of the same classes in the same order, built on first use; a name not in it (such as an event class
  defined after the table was built) goes to Rasa's own lookup, which also keeps Rasa's handling of unknown names.

This lives in `bankbot.nlu` because Rasa imports that package whenever it loads the bot's model, so the fixes are
active in every process that serves the model (`rasa run`, `rasa shell`, the pipeline experiments). `install()`
is idempotent; `uninstall()` restores Rasa's methods (for side-by-side measurements and tests).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

_SAVED = "_bankbot_rasa_original"


@lru_cache(maxsize=1)
def response_validator() -> Any:
    """A validator for Rasa's action-response schema, its schema checked once (SchemaError if it is invalid)."""
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_action_result(self: Any, result: dict[str, Any]) -> bool:
    """True if `result` fits Rasa's action-response schema; else raises Rasa's ValidationError, as Rasa does."""
    from jsonschema import exceptions
    from rasa.core.actions.action import DOCS_BASE_URL

    error = exceptions.best_match(response_validator().iter_errors(result))
    if error is None:
        return True
    error.message += (
        ". Failed to validate Action server response from API, make sure your response from the Action endpoint "
        f"is valid. For more information about the format visit {DOCS_BASE_URL}/custom-actions"
    )
    raise error


@lru_cache(maxsize=1)
def event_classes() -> dict[str, type]:
    """Event type name -> the class Rasa's lookup finds first (its subclass walk, in its order), built once."""
    from rasa.shared.core.events import Event
    from rasa.shared.utils.common import all_subclasses

    table: dict[str, type] = {}
    for cls in all_subclasses(Event):
        table.setdefault(cls.type_name, cls)
    return table


def resolve_event_type(type_name: str, default: type | None = None) -> type | None:
    """`Event.resolve_by_type` from the table; names not in it go to Rasa's own lookup."""
    from rasa.shared.core.events import Event

    found = event_classes().get(type_name)
    if found is not None:
        return found
    return Event.__dict__[_SAVED].__func__(type_name, default)


def install() -> None:
    """Makes Rasa use both fixes (idempotent)."""
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.core.events import Event

    if _SAVED not in RemoteAction.__dict__:
        setattr(RemoteAction, _SAVED, RemoteAction.__dict__["_validate_action_result"])
        RemoteAction._validate_action_result = validate_action_result
    if _SAVED not in Event.__dict__:
        setattr(Event, _SAVED, Event.__dict__["resolve_by_type"])
        Event.resolve_by_type = staticmethod(resolve_event_type)


def uninstall() -> None:
    """Restores Rasa's own methods."""
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.core.events import Event

    for cls, name in ((RemoteAction, "_validate_action_result"), (Event, "resolve_by_type")):
        original = cls.__dict__.get(_SAVED)
        if original is not None:
            setattr(cls, name, original)
            delattr(cls, _SAVED)
