"""The escalation policy: which conversations go to a human, and to which queue.

The policy is data (`bot/escalation.yml`); `decide` is a pure function of it and of the conversation's
signals, so every rule can be unit-tested without Rasa. Standard library and PyYAML only: the action server,
the harness and the tests all import this module.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DEFAULT_POLICY_PATH = Path(__file__).resolve().parent.parent / "escalation.yml"
PRIORITIES = ("high", "normal", "low")
TOPIC = "topic"
CONDITIONS = ("intent", "consecutive_not_understood", "invalid_flow_inputs")


class PolicyError(ValueError):
    """The escalation policy file is invalid; the message names the file, the location and the fix."""


@dataclass(frozen=True)
class Queue:
    name: str
    """Queue identifier, as stored on tickets and named in eval sets."""
    priority: str
    """One of PRIORITIES; orders the human team's work."""
    description: str = ""


@dataclass(frozen=True)
class Rule:
    name: str
    """Stable identifier stored on the ticket and reported in the channel trace."""
    route_to: str
    """A queue name, or `topic` for the queue owning the conversation's current topic."""
    intent: str | None = None
    """Fires when the customer's latest intent is this one."""
    consecutive_not_understood: int | None = None
    """Fires when this many consecutive customer turns were not understood."""
    invalid_flow_inputs: int | None = None
    """Fires when a self-service flow received this many invalid inputs."""
    description: str = ""


@dataclass(frozen=True)
class Signals:
    """What the policy looks at for one customer turn."""

    intent: str | None
    """The intent the bot acted on for the latest turn (None or `nlu_fallback` if not understood)."""
    topic_queue: str | None = None
    """The queue owning the conversation's current topic, if a topic is known."""
    consecutive_not_understood: int = 0
    """Consecutive customer turns, ending with the latest, that the bot did not understand."""
    invalid_flow_inputs: int = 0
    """Invalid inputs the customer gave to the self-service flow that is (or was just) running."""


@dataclass(frozen=True)
class Decision:
    """A handoff the policy requires."""

    rule: str
    queue: str
    priority: str


@dataclass(frozen=True)
class Policy:
    queues: Mapping[str, Queue]
    default_queue: str
    rules: tuple[Rule, ...]

    def resolve_queue(self, route_to: str, topic_queue: str | None) -> str:
        """The queue a rule's `route_to` means for a conversation whose topic is owned by `topic_queue`."""
        if route_to == TOPIC:
            return topic_queue if topic_queue in self.queues else self.default_queue
        return route_to


def decide(policy: Policy, signals: Signals) -> Decision | None:
    """The first rule of `policy` that fires on `signals`, as a handoff decision; None if the bot keeps going."""
    for rule in policy.rules:
        if _fires(rule, signals):
            queue = policy.resolve_queue(rule.route_to, signals.topic_queue)
            return Decision(rule=rule.name, queue=queue, priority=policy.queues[queue].priority)
    return None


def _fires(rule: Rule, signals: Signals) -> bool:
    if rule.intent is not None and signals.intent != rule.intent:
        return False
    if (
        rule.consecutive_not_understood is not None
        and signals.consecutive_not_understood < rule.consecutive_not_understood
    ):
        return False
    return rule.invalid_flow_inputs is None or signals.invalid_flow_inputs >= rule.invalid_flow_inputs


def load_policy(path: Path | str = DEFAULT_POLICY_PATH) -> Policy:
    """Read and check an escalation policy file; raises PolicyError listing every problem found."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyError(f"{path}: escalation policy file not found") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}") from None
    return parse_policy(raw, source=str(path))


def parse_policy(raw: Any, *, source: str = "<policy>") -> Policy:
    """Build a Policy from the parsed YAML document; raises PolicyError listing every problem found."""
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise PolicyError(f"{source}: expected a mapping with keys version, queues, default_queue, rules")
    _unknown_keys(raw, {"version", "queues", "default_queue", "rules"}, source, "", problems)
    if raw.get("version") != 1:
        problems.append(f"{source}: version: expected 1, got {raw.get('version')!r}")

    queues: dict[str, Queue] = {}
    raw_queues = raw.get("queues")
    if not isinstance(raw_queues, dict) or not raw_queues:
        problems.append(f"{source}: queues: expected a non-empty mapping of queue name to settings")
        raw_queues = {}
    for name, settings in raw_queues.items():
        where = f"queues.{name}"
        if not isinstance(settings, dict):
            problems.append(f"{source}: {where}: expected a mapping with priority and description")
            continue
        _unknown_keys(settings, {"priority", "description"}, source, where, problems)
        priority = settings.get("priority")
        if priority not in PRIORITIES:
            problems.append(f"{source}: {where}.priority: expected one of {', '.join(PRIORITIES)}, got {priority!r}")
            continue
        queues[str(name)] = Queue(str(name), priority, str(settings.get("description", "")))

    default_queue = raw.get("default_queue")
    if raw_queues and default_queue not in raw_queues:
        problems.append(f"{source}: default_queue: {_unknown('queue', default_queue, raw_queues)}")

    rules: list[Rule] = []
    raw_rules = raw.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        problems.append(f"{source}: rules: expected a non-empty list of rules")
        raw_rules = []
    seen: set[str] = set()
    for index, item in enumerate(raw_rules):
        where = f"rules[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{source}: {where}: expected a mapping with name, when and route_to")
            continue
        _unknown_keys(item, {"name", "description", "when", "route_to"}, source, where, problems)
        name = item.get("name")
        if not isinstance(name, str) or not name:
            problems.append(f"{source}: {where}.name: every rule needs a name")
            continue
        if name in seen:
            problems.append(f"{source}: {where}.name: duplicate rule name {name!r}")
        seen.add(name)
        when = item.get("when")
        if not isinstance(when, dict) or not when:
            problems.append(f"{source}: {where}.when: expected a mapping with one or more of {', '.join(CONDITIONS)}")
            continue
        _unknown_keys(when, set(CONDITIONS), source, f"{where}.when", problems)
        for counter in ("consecutive_not_understood", "invalid_flow_inputs"):
            value = when.get(counter)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                problems.append(f"{source}: {where}.when.{counter}: expected a positive integer, got {value!r}")
        route_to = item.get("route_to")
        if route_to is None:
            problems.append(f"{source}: {where}.route_to: required: a queue name or 'topic'")
        elif route_to != TOPIC and route_to not in raw_queues:
            problems.append(f"{source}: {where}.route_to: {_unknown('queue', route_to, [TOPIC, *raw_queues])}")
        rules.append(
            Rule(
                name=name,
                route_to=str(route_to),
                intent=when.get("intent"),
                consecutive_not_understood=when.get("consecutive_not_understood"),
                invalid_flow_inputs=when.get("invalid_flow_inputs"),
                description=str(item.get("description", "")),
            )
        )
    if problems:
        raise PolicyError("invalid escalation policy:\n  " + "\n  ".join(problems))
    return Policy(queues=queues, default_queue=str(default_queue), rules=tuple(rules))


def _unknown_keys(mapping: dict, allowed: set[str], source: str, where: str, problems: list[str]) -> None:
    for key in mapping:
        if key not in allowed:
            location = f"{where}.{key}" if where else str(key)
            problems.append(f"{source}: {location}: {_unknown('key', key, allowed)}")


def _unknown(kind: str, value: Any, known: Any) -> str:
    message = f"unknown {kind} {value!r}"
    close = difflib.get_close_matches(str(value), [str(k) for k in known], n=1)
    if close:
        message += f" (did you mean {close[0]!r}?)"
    return message + f"; expected one of: {', '.join(sorted(str(k) for k in known))}"
