"""`harness validate`: check eval sets against intents/ and the bot's queues, and report what they cover."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from harness.bot_config import load_queue_config
from harness.eval_set import OUT_OF_SCOPE, EvalSuite, load_eval_sets
from harness.intents import load_catalog
from harness.paths import ProjectPaths


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

    def lines(self) -> list[str]:
        turns = sum(len(c.conversation.turns) for c in self.suite.conversations)
        out = [
            f"eval sets are valid: {len(self.suite)} conversations, {turns} customer turns, "
            f"{len(self.suite.files)} file(s), content hash {self.suite.content_hash[:12]}"
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


def validate_eval_sets(paths: ProjectPaths, location: Path, *, overlap: bool = True) -> ValidationReport:
    """Load and check the eval sets (InputError on any problem) and report coverage and overlap warnings."""
    queue_config = load_queue_config(paths.escalation_policy)
    catalog = load_catalog(paths.intents, known_queues=queue_config.queues)
    suite = load_eval_sets(location, intents=catalog.names(), queues=queue_config.queues, rules=queue_config.rules)
    report = ValidationReport(
        suite, coverage_of(suite, catalog.names(), list(queue_config.queues), list(queue_config.rules))
    )
    if overlap:
        from harness.overlap import find_overlap

        report.warnings += find_overlap(suite, catalog).warnings()
    return report
