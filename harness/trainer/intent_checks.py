"""Health checks of `intents/` beyond the schema: confusable intents, thin intents, and leakage into eval sets.

- Confusable pairs: two intents with near-same examples (MiniLM cosine at or above a threshold) teach the
  classifier contradictory things; each pair is reported with its closest examples.
- Too few examples: an intent with fewer than `min_examples` examples is a warning.
- Leakage: a training example that repeats an eval-set turn makes the eval measure memory. An exact repeat of a
  turn longer than two words is an error; near repeats and short small talk are warnings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness.project.eval_set import EvalSuite
from harness.project.intents import Catalog, normalise, plain_text
from harness.project.overlap import SHORT_WORDS, find_overlap

CONFUSABLE_THRESHOLD = 0.90
MIN_EXAMPLES = 10


@dataclass(frozen=True)
class ConfusablePair:
    first: str
    second: str
    similarity: float
    first_example: str
    second_example: str


@dataclass
class IntentReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    confusable: list[ConfusablePair] = field(default_factory=list)


def confusable_pairs(catalog: Catalog, threshold: float = CONFUSABLE_THRESHOLD) -> list[ConfusablePair]:
    """Intent pairs whose closest examples have cosine similarity >= threshold, most similar first."""
    from harness.embeddings import embed

    texts: list[str] = []
    owners: list[int] = []
    names = catalog.names()
    for index, name in enumerate(names):
        for example in catalog.intents[name].examples:
            texts.append(plain_text(example))
            owners.append(index)
    if not texts:
        return []
    vectors = embed(texts)
    similarity = vectors @ vectors.T
    owner = np.asarray(owners)
    similarity[owner[:, None] == owner[None, :]] = -1.0  # only compare examples of different intents
    pairs: dict[tuple[int, int], ConfusablePair] = {}
    rows, cols = np.nonzero(np.triu(similarity >= threshold, k=1))
    for i, j in zip(rows, cols, strict=True):
        key = tuple(sorted((owner[i], owner[j])))
        score = float(similarity[i, j])
        if key not in pairs or score > pairs[key].similarity:
            a, b = (i, j) if owner[i] == key[0] else (j, i)
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
) -> IntentReport:
    """Warnings and errors about `catalog`, each naming the file and the example. `reviewed` (from
    provenance.reviewed_from) lists examples that QA reviews exported on purpose from an eval conversation: their
    repeats of that conversation are warnings, not errors."""
    report = IntentReport()
    for name, intent in catalog.intents.items():
        if len(intent.examples) < min_examples:
            report.warnings.append(
                f"{catalog.sources[name]}: {name}: only {len(intent.examples)} examples "
                f"(at least {min_examples} recommended)"
            )
    if embeddings:
        report.confusable = confusable_pairs(catalog, threshold)
        for pair in report.confusable:
            report.warnings.append(
                f"{catalog.sources[pair.first]}: {pair.first} and {pair.second} are confusable (cosine "
                f"{pair.similarity:.2f}): {pair.first_example!r} ~ {pair.second_example!r}"
            )
    if suite is not None:
        where = {normalise(e): (n, e) for n, i in catalog.intents.items() for e in i.examples}
        if embeddings:
            overlap = find_overlap(suite, catalog)
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
            (report.errors if kind == "exact" and not deliberate else report.warnings).append(message)
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
