"""Health checks of `intents/` beyond the schema: confusable intents, thin intents, and leakage into eval sets.

- Confusable pairs: two intents with near-same examples (MiniLM cosine at or above a threshold) teach the
  classifier contradictory things; each pair is reported with its closest examples.
- Too few examples: an intent with fewer than `min_examples` examples is a warning.
- Leakage: a training example that repeats an eval-set turn makes the eval measure memory. An exact repeat of a
  turn longer than two words is an error; near repeats and short small talk are warnings. Texts are compared
  `normalise`d (Unicode NFC, so a composed and a decomposed copy are one sentence).
- Entity markup, read with Rasa's grammar (`entity_markup.lint`): a quoted or space-padded entity name is an error
  (Rasa makes it a separate entity); entities, roles and groups the bot's domain does not declare, and brackets
  Rasa leaves in the text, are warnings.

Every finding has a kind, so a long report can be summarised by kind (`IntentReport.counts`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from harness.project.entity_markup import Declared, lint
from harness.project.eval_set import EvalSuite
from harness.project.intents import Catalog, normalise, plain_text
from harness.project.overlap import SHORT_WORDS, find_overlap

CONFUSABLE_THRESHOLD = 0.90
MIN_EXAMPLES = 10
BLOCK_ROWS = 1024
"""Examples compared at a time when looking for confusable pairs: memory stays O(BLOCK_ROWS x examples)."""


@dataclass(frozen=True)
class ConfusablePair:
    first: str
    second: str
    similarity: float
    first_example: str
    second_example: str


@dataclass(frozen=True)
class Finding:
    severity: str
    """`error` or `warning`."""
    kind: str
    """What kind of problem, for counts (`thin intent`, `repeats an eval turn`)."""
    message: str
    """`file: intent: what`, as printed."""


@dataclass
class IntentReport:
    findings: list[Finding] = field(default_factory=list)
    confusable: list[ConfusablePair] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return [f.message for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[str]:
        return [f.message for f in self.findings if f.severity == "warning"]

    def error(self, kind: str, message: str) -> None:
        self.findings.append(Finding("error", kind, message))

    def warning(self, kind: str, message: str) -> None:
        self.findings.append(Finding("warning", kind, message))

    def counts(self) -> list[tuple[str, str, int]]:
        """(severity, kind, count), errors first, then the most frequent kinds first."""
        counted = Counter((f.severity, f.kind) for f in self.findings)
        return sorted(
            ((severity, kind, n) for (severity, kind), n in counted.items()),
            key=lambda item: (item[0] != "error", -item[2], item[1]),
        )


def example_texts(catalog: Catalog) -> list[str]:
    """The plain text of every example, intent by intent in catalog order (the rows of `embed_examples`)."""
    return [plain_text(e) for intent in catalog.intents.values() for e in intent.examples]


def embed_examples(catalog: Catalog) -> np.ndarray:
    """MiniLM embeddings of `example_texts(catalog)`, computed once and shared by the checks."""
    from harness.embeddings import embed

    texts = example_texts(catalog)
    return embed(texts) if texts else np.zeros((0, 0), dtype=np.float32)


def confusable_pairs(
    catalog: Catalog, threshold: float = CONFUSABLE_THRESHOLD, *, vectors: np.ndarray | None = None
) -> list[ConfusablePair]:
    """Intent pairs whose closest examples have cosine similarity >= threshold, most similar first. `vectors`:
    `embed_examples(catalog)` when already computed."""
    texts = example_texts(catalog)
    names = catalog.names()
    owners = [index for index, name in enumerate(names) for _ in catalog.intents[name].examples]
    if not texts:
        return []
    if vectors is None:
        vectors = embed_examples(catalog)
    owner = np.asarray(owners)
    pairs: dict[tuple[int, int], ConfusablePair] = {}
    # Block by block (an all-pairs matrix of 10,000 examples is 400 MB); only examples of different intents,
    # each pair of examples once (j > i).
    for first in range(0, len(texts), BLOCK_ROWS):
        block = vectors[first : first + BLOCK_ROWS] @ vectors.T
        rows = np.arange(first, first + block.shape[0])
        hit = (block >= threshold) & (owner[rows][:, None] != owner[None, :]) & (rows[:, None] < np.arange(len(texts)))
        for r, j in zip(*np.nonzero(hit), strict=True):
            i = int(rows[r])
            key = (int(min(owner[i], owner[j])), int(max(owner[i], owner[j])))
            score = float(block[r, j])
            if key not in pairs or score > pairs[key].similarity:
                a, b = (i, int(j)) if owner[i] == key[0] else (int(j), i)
                pairs[key] = ConfusablePair(names[key[0]], names[key[1]], score, texts[a], texts[b])
    return sorted(pairs.values(), key=lambda p: -p.similarity)


def check_intents(
    catalog: Catalog,
    suite: EvalSuite | None,
    *,
    embeddings: bool = True,
    min_examples: int = MIN_EXAMPLES,
    threshold: float = CONFUSABLE_THRESHOLD,
    reviewed: dict[str, set[str]] | None = None,
    declared: Declared | None = None,
) -> IntentReport:
    """Warnings and errors about `catalog`, each naming the file and the example. `reviewed` (from
    provenance.reviewed_from) lists examples that QA reviews exported on purpose from an eval conversation: their
    repeats of that conversation are warnings, not errors. `declared` (the bot's domain, `read_declared`) turns
    on the check that every annotated entity is declared."""
    report = IntentReport()
    for name, intent in catalog.intents.items():
        if len(intent.examples) < min_examples:
            report.warning(
                "thin intent",
                f"{catalog.sources[name]}: {name}: only {len(intent.examples)} examples "
                f"(at least {min_examples} recommended)",
            )
    for name, intent in catalog.intents.items():
        for index, example in enumerate(intent.examples):
            if "[" not in example:
                continue
            for notice in lint(example, declared):
                message = f"{catalog.sources[name]}: {name}.examples[{index}]: {notice.message}"
                (report.error if notice.severity == "error" else report.warning)(notice.kind, message)
    vectors = embed_examples(catalog) if embeddings else None
    if embeddings:
        report.confusable = confusable_pairs(catalog, threshold, vectors=vectors)
        for pair in report.confusable:
            report.warning(
                "confusable intents",
                f"{catalog.sources[pair.first]}: {pair.first} and {pair.second} are confusable (cosine "
                f"{pair.similarity:.2f}): {pair.first_example!r} ~ {pair.second_example!r}",
            )
    if suite is not None:
        where = {normalise(e): (n, e) for n, i in catalog.intents.items() for e in i.examples}
        if embeddings:
            overlap = find_overlap(suite, catalog, training_vectors=vectors)
            hits = [(h, "exact") for h in overlap.exact] + [(h, "near") for h in overlap.near]
        else:
            hits = [(h, "exact") for h in find_exact_overlap(suite, catalog)]
        for hit, kind in hits:
            name, example = where.get(normalise(hit.training_example), (hit.training_intent, hit.training_example))
            message = (
                f"{catalog.sources[name]}: {name}: example {plain_text(example)!r} "
                f"{'repeats' if kind == 'exact' else 'nearly repeats'} eval turn {hit.conversation_id} "
                f"turn {hit.turn} ({hit.text!r})"
            )
            deliberate = hit.conversation_id in (reviewed or {}).get(normalise(hit.training_example), set())
            if deliberate:
                message += (
                    ": exported from a QA review of this conversation, which now checks that fix, not generalisation"
                )
                report.warning("repeats an eval turn it was reviewed from", message)
            elif kind == "exact":
                report.error("repeats an eval turn", message)
            else:
                report.warning("nearly repeats an eval turn", message)
    return report


def find_exact_overlap(suite: EvalSuite, catalog: Catalog) -> list:  # type: ignore[type-arg]
    """Exact (normalised) repeats of eval turns longer than SHORT_WORDS words, without embeddings."""
    from harness.project.overlap import OverlapHit

    by_norm = {normalise(e): (plain_text(e), n) for n, i in catalog.intents.items() for e in i.examples}
    hits = []
    for item in suite.conversations:
        for index, turn in enumerate(item.conversation.turns):
            key = normalise(turn.text)
            if key in by_norm and len(key.split()) > SHORT_WORDS:
                example, name = by_norm[key]
                hits.append(OverlapHit(item.conversation.id, index, turn.text, example, name, 1.0))
    return hits
