"""A first handoff mapping (`handoff.yml`, harness.bots.handoff_mapping) proposed from a stock Rasa bot's own files,
for `harness init`: the bot team reviews it, the harness never guesses silently at run time.

What is read: the domain's actions, responses, intents and slots (harness.bots.rasa_domain), and the custom
actions' Python source (`SlotSet("slot", "value")` literals and Rasa's `ConversationPaused()` event). Names are
matched against the words bots use for handing a conversation to a person (HANDOFF_WORDS) and for the team it
goes to (QUEUE_WORDS). The proposal is a YAML text with a comment on each choice and what to check.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness.bots.rasa_domain import RASA_DEFAULT_ACTIONS, RasaDomain

HANDOFF_WORDS = re.compile(r"hand_?off|human|agent|transfer|escalat|live_?chat|operator|representative", re.I)
"""Words in an action, response or intent name that mean handing the conversation to a person."""
QUEUE_WORDS = re.compile(r"hand_?off|queue|team|department|transfer|route|routing|escalat|skill", re.I)
"""Words in a slot name that mean the team or queue a handoff goes to."""
_SLOT_SET = re.compile(r"""SlotSet\(\s*(?:key\s*=\s*)?["'](\w+)["']\s*,\s*(?:value\s*=\s*)?["']([^"'\n]+)["']""")
_PAUSE = re.compile(r"\bConversationPaused\s*\(")


@dataclass(frozen=True)
class HandoffProposal:
    """A proposed handoff.yml: its text, and a line per choice for the person running `harness init`."""

    text: str
    notes: list[str] = field(default_factory=list)
    found: bool = False
    """True when a handoff signal was found (False: `handoffs: []`, the bot is measured as never handing off)."""


SKIPPED_FOLDERS = ("venv", "site-packages", "models", "node_modules")
"""Folders under a bot's project that hold no code or data of the bot (hidden folders are skipped too)."""


def _project_texts(project: Path, *patterns: str) -> Iterator[str]:
    """The texts of the files under `project` matching any glob pattern, in path order, outside hidden folders and
    SKIPPED_FOLDERS; unreadable files are passed over (the proposal is a draft the team checks)."""
    paths = sorted({p for pattern in patterns for p in project.rglob(pattern) if p.is_file()})
    for path in paths:
        parts = path.relative_to(project).parts[:-1]
        if any(part.startswith(".") or part in SKIPPED_FOLDERS for part in parts):
            continue
        try:
            yield path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue


def _collect(values: dict[str, list[str]], found: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Add (slot, value) pairs to `values` in first-seen order, without repeats or null-like values."""
    for slot, value in found:
        known = values.setdefault(slot, [])
        if value.lower() not in ("null", "none", "~", "true", "false") and value not in known:
            known.append(value)
    return values


def slot_values_set_in_code(project: Path) -> dict[str, list[str]]:
    """slot name -> the string values custom actions set it to (`SlotSet("team", "billing")`), in first-seen order,
    from the .py files under `project`."""
    values: dict[str, list[str]] = {}
    for source in _project_texts(project, "*.py"):
        _collect(values, _SLOT_SET.findall(source))
    return values


def slot_values_in_stories(project: Path, slots: list[str]) -> dict[str, list[str]]:
    """slot name -> the values stories, rules and test stories under `project` set it to (`- handoff_to: billing`
    under `slot_was_set`), in first-seen order; null values are not values."""
    if not slots:
        return {}
    pattern = re.compile(r"^\s*-?\s*(" + "|".join(map(re.escape, slots)) + r")\s*:\s*['\"]?([\w.-]+)['\"]?\s*$", re.M)
    values: dict[str, list[str]] = {}
    for text in _project_texts(project, "*.yml", "*.yaml"):
        _collect(values, pattern.findall(text))
    return values


def calls_pause(source: str) -> bool:
    """True when Python `source` calls `ConversationPaused(` in code: the name as a token followed by `(`, so a
    mention in a comment, a docstring or another string does not count. Source that does not tokenize (a file
    with a syntax error) is searched as text, comments removed line by line."""
    import io
    import tokenize

    try:
        tokens = [
            t
            for t in tokenize.generate_tokens(io.StringIO(source).readline)
            if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT)
        ]
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return any(_PAUSE.search(line.split("#", 1)[0]) for line in source.splitlines())
    return any(
        a.type == tokenize.NAME
        and a.string == "ConversationPaused"
        and b.type == tokenize.OP
        and b.string == "("
        and (i == 0 or tokens[i - 1].string not in ("def", "class"))  # defining one is not calling it
        for i, (a, b) in enumerate(zip(tokens, tokens[1:], strict=False))
    )


def pauses_in_code(project: Path) -> bool:
    """True when the code of a custom action under `project` calls Rasa's ConversationPaused (`calls_pause`)."""
    return any(calls_pause(source) for source in _project_texts(project, "*.py"))


def _queue_name(word: str) -> str:
    """An eval-set queue name for a bot's word: lower case, runs of other characters as `_`."""
    return re.sub(r"[^a-z0-9]+", "_", word.lower()).strip("_") or "general"


def propose_handoff(domain: RasaDomain, project: Path, *, shown_as: str | None = None) -> HandoffProposal:
    """The handoff mapping this bot's files suggest (see the module docstring); the file's comment names the domain
    as `shown_as` (default: where it was read)."""
    custom = [a for a in domain.actions if a not in RASA_DEFAULT_ACTIONS and not a.startswith("validate_")]
    actions = [a for a in custom if HANDOFF_WORDS.search(a)]
    intents = [i for i in domain.intents if HANDOFF_WORDS.search(i)]
    slots = [s for s in domain.slots if QUEUE_WORDS.search(s)]
    code_values = slot_values_set_in_code(project)  # comments rarely hold SlotSet("slot", "literal") calls
    for slot_name, found in slot_values_in_stories(project, slots).items():
        code_values[slot_name] = list(dict.fromkeys([*code_values.get(slot_name, []), *found]))
    slot = next((s for s in slots if code_values.get(s)), None)  # a slot read needs its values in `queues`
    notes: list[str] = []
    lines = [
        "# How the harness sees this bot hand a conversation to a person. Proposed by `harness init` from the",
        f"# domain ({shown_as or domain.source}) and the custom actions' code: check every entry against the bot.",
        "# The forms each key takes: the harness README, 'Measure your own bot' (step 2, the handoff mapping).",
        "version: 1",
    ]
    when: str | None = None
    if actions:
        when = "{action: " + (actions[0] if len(actions) == 1 else "[" + ", ".join(actions) + "]") + "}"
        notes.append(
            f"handoff: when the action{'s' * (len(actions) > 1)} {', '.join(actions)} run{'s' * (len(actions) == 1)}"
        )
    elif pauses_in_code(project):
        when = "{event: pause}"
        notes.append("handoff: when a custom action pauses the conversation (ConversationPaused)")
    if when is None:
        lines += [
            "# No action named like a handoff (handoff, human, agent, transfer, escalate, ...) and no action pausing",
            "# the conversation was found: the bot is measured as never handing off. If it does, add an entry:",
            "#   - when: {action: action_handoff}",
            "#     queue: {value: general}",
            "handoffs: []",
        ]
        notes.append("handoff: none found; the bot is measured as never handing off (edit handoff.yml if it does)")
        return HandoffProposal("\n".join(lines) + "\n", notes, found=False)
    values = code_values.get(slot, []) if slot else []
    lines.append("handoffs:")
    lines.append(f"  - when: {when}")
    if slot is not None:
        lines.append(f"    queue: {{slot: {slot}}}        # the team the bot names in this slot when it hands off")
        notes.append(
            f"queue: the value of slot {slot}"
            + (f" ({', '.join(values)} found in the actions and stories)" if values else "")
        )
    else:
        lines.append("    queue: {value: general}     # one queue: use {slot: <name>} if the bot names the team")
        notes.append("queue: one queue, `general` (no slot found whose values the actions set, to read the team from)")
    if intents:
        lines.append(f"# The customer asks for a person with {', '.join(intents)}; if the bot hands off on that intent")
        lines.append(f"# without an action, add: - when: {{intent: {intents[0]}}}")
    if slot is not None:
        lines.append("queues:                         # the bot's words -> the eval sets' queue names")
        lines += [f"  {value}: {_queue_name(value)}" for value in values]
    elif slots:
        lines.append(
            f"# Slot{'s' * (len(slots) > 1)} {', '.join(slots)} may name the team: no value was found in the code."
        )
        lines.append(
            "# To read it, set queue: {slot: <name>} and list its values under queues: (billing_team: billing)."
        )
    return HandoffProposal("\n".join(lines) + "\n", notes, found=True)
