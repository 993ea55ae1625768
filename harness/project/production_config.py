"""The production configuration (`experiments/production.yml`): where the production store lives and how real
conversations are cut and read. Shared by `harness logs import` (which writes the store) and the commands that read
it (`harness logs kpis`, `transfers`, `compare`, `harness review load --production`).

```yaml
version: 1
store: experiments/production          # the production store folder (relative to the repository root)
inactivity_timeout_minutes: 30         # a customer idle longer than this ends the conversation
handoff_mapping: bot/handoff.yml       # the `rasa` bot kind's handoff mapping (harness/bots/handoff_mapping.py)
fallback_intents: [nlu_fallback]
fallback_actions: [action_default_fallback, action_two_stage_fallback]
customer: sender                       # `sender`: a sender id is one customer (kept only as a keyed hash); `none`
repeat_contact_days: 7                 # window for repeat_contact.v1
masking: {names: false}                # harness.masking.MaskingOptions
```

Every key is optional; a missing file gives the defaults. Why 30 minutes: see `DEFAULT_INACTIVITY_MINUTES`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import InputError
from harness.masking import MaskingOptions
from harness.project.problems import problem_message, read_yaml, yaml_location

DEFAULT_CONFIG = Path("experiments/production.yml")
DEFAULT_STORE = Path("experiments/production")
DEFAULT_INACTIVITY_MINUTES = 30
"""A customer idle for more than 30 minutes has left: the next message starts a new conversation.

Rasa's own session expiry defaults to 60 minutes (`session_config.session_expiration_time`), which is a bot-side
memory setting, not a measure of a conversation: it would merge a customer's morning and lunchtime questions.
Contact-centre chat platforms close an idle chat far sooner (typically 10 to 30 minutes of customer silence), and a
web or app chat whose customer has not typed for half an hour has in practice been abandoned. 30 minutes is the
longest of those usual idle closes, so a slow customer (looking up a card number, fetching a statement) is not
cut in two, while a return later in the day counts as a new contact. A bot whose own sessions expire sooner still
splits there, at its `session_started` events."""
DEFAULT_REPEAT_DAYS = 7
# Kept here rather than imported from harness.bots.rasa (the layers: project sits below bots); a test checks they
# are the same.
DEFAULT_FALLBACK_INTENTS = ("nlu_fallback",)
DEFAULT_FALLBACK_ACTIONS = ("action_default_fallback", "action_two_stage_fallback")


class _Masking(BaseModel):
    model_config = ConfigDict(extra="forbid")
    names: bool = False


class _ProductionFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    store: Path = DEFAULT_STORE
    inactivity_timeout_minutes: float = Field(DEFAULT_INACTIVITY_MINUTES, gt=0)
    handoff_mapping: Path | None = None
    fallback_intents: list[str] = list(DEFAULT_FALLBACK_INTENTS)
    fallback_actions: list[str] = list(DEFAULT_FALLBACK_ACTIONS)
    customer: Literal["sender", "none"] = "sender"
    repeat_contact_days: float = Field(DEFAULT_REPEAT_DAYS, gt=0)
    masking: _Masking = _Masking()


@dataclass(frozen=True)
class ProductionSettings:
    """The production configuration, paths resolved against the repository root."""

    store: Path = DEFAULT_STORE
    """The production store folder."""
    inactivity_timeout: timedelta = timedelta(minutes=DEFAULT_INACTIVITY_MINUTES)
    """A gap longer than this between a customer or bot event and the next customer message ends a conversation
    (a gap of exactly this length does not)."""
    handoff_mapping: Path | None = None
    """The handoff mapping (`rasa` kind format); None: no handoff is recognised from events (the reference bot's
    tickets still are, with `--reference`)."""
    fallback_intents: tuple[str, ...] = DEFAULT_FALLBACK_INTENTS
    fallback_actions: tuple[str, ...] = DEFAULT_FALLBACK_ACTIONS
    customer: Literal["sender", "none"] = "sender"
    """`sender`: a sender id identifies one customer (stored as a keyed hash, `customer`); `none`: it does not."""
    repeat_contact: timedelta = timedelta(days=DEFAULT_REPEAT_DAYS)
    masking: MaskingOptions = field(default_factory=MaskingOptions)


def load_production_config(path: Path | None = None, root: Path | None = None) -> ProductionSettings:
    """The settings in `path` (default `experiments/production.yml` under `root`, the repository root, default the
    current folder); a missing file gives the defaults. Relative paths in the file are relative to `root`.

    Raises InputError listing every problem with its location (unknown keys, wrong types, a timeout <= 0).
    """
    root = Path(root) if root is not None else Path.cwd()
    path = Path(path) if path is not None else root / DEFAULT_CONFIG
    if not path.is_file():
        raw: Any = {}
    else:
        raw = read_yaml(path, "production configuration")
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise InputError(
                "invalid production configuration",
                [f"{path}: expected a mapping of settings, got a {type(raw).__name__}"],
            )
    try:
        parsed = _ProductionFile.model_validate(raw)
    except ValidationError as exc:
        raise InputError(
            "invalid production configuration",
            [
                f"{path}: {yaml_location(tuple(e['loc']), raw)}: {problem_message(_ProductionFile, e)}"
                for e in exc.errors()
            ],
        ) from None

    def resolved(value: Path) -> Path:
        return value if value.is_absolute() else root / value

    return ProductionSettings(
        store=resolved(parsed.store),
        inactivity_timeout=timedelta(minutes=parsed.inactivity_timeout_minutes),
        handoff_mapping=resolved(parsed.handoff_mapping) if parsed.handoff_mapping is not None else None,
        fallback_intents=tuple(parsed.fallback_intents),
        fallback_actions=tuple(parsed.fallback_actions),
        customer=parsed.customer,
        repeat_contact=timedelta(days=parsed.repeat_contact_days),
        masking=MaskingOptions(names=parsed.masking.names),
    )
