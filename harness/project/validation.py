"""`harness validate`: check eval sets against the vocabulary of the bot they will run against (for the reference
bot intents/ and bot/escalation.yml; for a Rasa bot its domain and handoff mapping; for an HTTP bot its
configuration), check that every reply check asks only for what that bot observes, and report what they cover."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.project.bot_config import load_queue_config
from harness.project.eval_set import OUT_OF_SCOPE, EvalSuite, load_eval_sets
from harness.project.intents import load_catalog
from harness.project.paths import ProjectPaths

CHECK_NEEDS = {
    "actions": "actions",
    "not_actions": "actions",
    "slots": "slots",
    "reply_matches": "messages",
    "reply_excludes": "messages",
}
"""Which observation (`harness.records.Observation` name) each kind of reply check is judged on
(harness.scoring.checks)."""


@dataclass(frozen=True)
class Coverage:
    """What the eval sets exercise, and what of the bot they leave untested."""

    intents: Counter
    queues: Counter
    rules: Counter
    missing_intents: list[str]
    missing_queues: list[str]
    missing_rules: list[str]


@dataclass
class ValidationReport:
    suite: EvalSuite
    coverage: Coverage
    warnings: list[str] = field(default_factory=list)
    checked_against: str = "intents/ and bot/escalation.yml"
    """Where the names the eval sets may use came from (the bot's vocabulary)."""

    def lines(self) -> list[str]:
        turns = sum(len(c.conversation.turns) for c in self.suite.conversations)
        out = [
            f"eval sets are valid: {len(self.suite)} conversations, {turns} customer turns, "
            f"{len(self.suite.files)} file(s), content hash {self.suite.content_hash[:12]}",
            f"names checked against {self.checked_against}",
        ]
        cov = self.coverage
        out.append(f"covers {len(cov.intents)} intents, {len(cov.queues)} queues, {len(cov.rules)} escalation rules")
        for kind, missing in (
            ("intents", cov.missing_intents),
            ("queues", cov.missing_queues),
            ("escalation rules", cov.missing_rules),
        ):
            if missing:
                out.append(f"warning: no conversation covers these {kind}: {', '.join(missing)}")
        out += [w if w.startswith("  ") else f"warning: {w}" for w in self.warnings]
        return out


def coverage_of(suite: EvalSuite, intents: list[str], queues: list[str], rules: list[str]) -> Coverage:
    intent_counts: Counter = Counter()
    queue_counts: Counter = Counter()
    rule_counts: Counter = Counter()
    for item in suite.conversations:
        conversation = item.conversation
        intent_counts.update(t.intent for t in conversation.turns if t.intent)
        if conversation.expected.queue:
            queue_counts[conversation.expected.queue] += 1
        if conversation.expected.rule:
            rule_counts[conversation.expected.rule] += 1
    return Coverage(
        intents=intent_counts,
        queues=queue_counts,
        rules=rule_counts,
        missing_intents=[i for i in dict.fromkeys([*intents, OUT_OF_SCOPE]) if i not in intent_counts],
        missing_queues=[q for q in queues if q not in queue_counts],
        missing_rules=[r for r in rules if r not in rule_counts],
    )


def unobservable_checks(suite: EvalSuite, observes: frozenset[str], kind: str) -> list[str]:
    """Problems ('file: conversation: turn: ...') for reply checks the bot cannot be judged on: an action check on
    a bot that does not report its actions would pass or fail on nothing."""
    problems = []
    for item in suite.conversations:
        for index, turn in enumerate(item.conversation.turns):
            if turn.expect is None:
                continue
            for name, value in turn.expect:
                if value and CHECK_NEEDS[name] not in observes:
                    problems.append(
                        f"{item.source}: {item.conversation.id}: turns[{index}].expect.{name}: a {kind} bot does not "
                        f"report {CHECK_NEEDS[name]}; drop this check or map it in the bot's configuration"
                    )
    return problems


def check_observable(suite: EvalSuite, observes: frozenset[str], kind: str) -> None:
    """Raise InputError listing every reply check the bot cannot be judged on (see `unobservable_checks`)."""
    if problems := unobservable_checks(suite, observes, kind):
        raise InputError("reply checks ask for what the bot does not report", problems)


def validate_eval_sets(
    paths: ProjectPaths, location: Path, *, overlap: bool = True, vocabulary: Any = None
) -> ValidationReport:
    """Load and check the eval sets (InputError on any problem) and report coverage and overlap warnings.

    `vocabulary` (a `harness.bots.base.Vocabulary`) is what the eval sets may name; None means the reference bot's
    (intents/ and bot/escalation.yml). Overlap with training examples is checked for the reference bot only.
    """
    if vocabulary is not None:
        suite = load_eval_sets(location, intents=vocabulary.intents, queues=vocabulary.queues, rules=vocabulary.rules)
        return ValidationReport(
            suite,
            coverage_of(suite, list(vocabulary.intents), list(vocabulary.queues), list(vocabulary.rules)),
            checked_against=vocabulary.source,
        )
    queue_config = load_queue_config(paths.escalation_policy)
    catalog = load_catalog(paths.intents, known_queues=queue_config.queues)
    suite = load_eval_sets(location, intents=catalog.names(), queues=queue_config.queues, rules=queue_config.rules)
    report = ValidationReport(
        suite, coverage_of(suite, catalog.names(), list(queue_config.queues), list(queue_config.rules))
    )
    if overlap:
        from harness.project.overlap import find_overlap

        report.warnings += find_overlap(suite, catalog).warnings()
    return report
