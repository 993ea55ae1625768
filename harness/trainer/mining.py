"""Mining what the bot did not understand: group the turns of a run that fell back or were classified out of
scope into clusters of similar wording (MiniLM sentence embeddings, scikit-learn agglomerative clustering on cosine
distance), each a candidate new intent with its most representative examples and the closest existing intent.

The output is a CSV in the import format (`text,intent,queue`) with a proposed intent name per cluster: a trainer
renames, deletes or re-queues rows and brings them in with `harness intents import`. Turns that are eval-set turns
are refused by the import (leakage), so on a replay run the clusters show what is missing; on production logs
they become training data.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.project.eval_set import OUT_OF_SCOPE
from harness.project.intents import Catalog, plain_text

# fmt: off
STOPWORDS = frozenset({
    "a", "an", "the", "i", "i'm", "im", "me", "my", "we", "you", "your", "it", "is", "are", "was", "be", "to",
    "of", "in", "on", "for", "and", "or", "but", "with", "can", "could", "would", "do", "does", "did", "have",
    "has", "how", "what", "when", "where", "why", "which", "who", "this", "that", "there", "please", "hi", "hello",
    "hey", "just", "want", "need", "like", "get", "about", "any", "some", "so", "if", "at", "from", "up", "out",
    "not", "no", "yes", "u", "i've", "ive", "it's", "its", "am",
})
# fmt: on


KNOWN_INTENT_SIMILARITY = 0.6
"""Cosine similarity between a cluster's centre and an intent's centre above which the cluster is proposed as
more examples of that intent rather than a new one."""


@dataclass(frozen=True)
class Cluster:
    name: str
    """Proposed intent name, from the cluster's most frequent content words."""
    texts: list[str]
    """All turns of the cluster, most representative (closest to its centre) first."""
    conversations: list[str]
    nearest_intent: str | None
    nearest_similarity: float

    @property
    def proposed_intent(self) -> str:
        """The nearest existing intent when the cluster is close to it (the bot lacks examples of a known
        intent), otherwise the new name."""
        if self.nearest_intent is not None and self.nearest_similarity >= KNOWN_INTENT_SIMILARITY:
            return self.nearest_intent
        return self.name


def not_understood(records: pd.DataFrame) -> pd.DataFrame:
    """Customer turns the bot answered but did not understand: fell back, or classified as out of scope. Answers
    to the bot's own question (a form was active before the turn: postcodes, card digits) are free text by design
    and left out."""
    ordered = records.sort_values(["conversation_id", "turn_index"])
    asked = ordered.groupby("conversation_id")["active_form"].shift(1).notna()
    answered = ordered[(ordered["status"] == "ok") & ~asked]
    mask = answered["fallback"].fillna(False).astype(bool) | (answered["intent"] == OUT_OF_SCOPE)
    return answered[mask]


def top_terms(texts: list[str], k: int = 5) -> list[str]:
    """The `k` content words (not STOPWORDS, at least 3 letters) found in the most texts, most frequent first;
    each text counts a word once; ties keep the order of first appearance (not set order, which varies by run)."""
    words = Counter(
        w for t in texts for w in dict.fromkeys(re.findall(r"[a-z]+", t.lower())) if w not in STOPWORDS and len(w) > 2
    )
    return [w for w, _ in words.most_common(k)]


def proposed_name(texts: list[str], taken: set[str]) -> str:
    words = top_terms(texts, 2)
    base = "candidate_" + "_".join(words) if words else "candidate"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


def cluster_texts(
    texts: list[str], embeddings: np.ndarray, *, distance_threshold: float = 0.45, min_size: int = 2
) -> list[list[int]]:
    """Indices of each cluster of at least `min_size` texts, biggest first; each cluster's indices ordered from
    the most to the least representative (cosine similarity to the cluster's mean embedding)."""
    if len(texts) < max(min_size, 2):
        return []
    from sklearn.cluster import AgglomerativeClustering

    labels = AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="average", distance_threshold=distance_threshold
    ).fit_predict(embeddings)
    clusters = []
    for label in set(labels.tolist()):
        members = np.flatnonzero(labels == label)
        if len(members) < min_size:
            continue
        centre = embeddings[members].mean(axis=0)
        order = np.argsort(-(embeddings[members] @ centre), kind="stable")
        clusters.append(members[order].tolist())
    return sorted(clusters, key=lambda c: (-len(c), texts[c[0]]))


def mine(
    records: pd.DataFrame, catalog: Catalog, *, distance_threshold: float = 0.45, min_size: int = 2
) -> tuple[list[Cluster], int]:
    """Clusters of not-understood turns of a run's records (`ScoredRun.records`; repeated texts counted once), and
    how many such turns there were."""
    turns = not_understood(records)
    return cluster_turns(turns, catalog, distance_threshold=distance_threshold, min_size=min_size), len(turns)


def cluster_turns(
    turns: pd.DataFrame, catalog: Catalog | None, *, distance_threshold: float = 0.45, min_size: int = 2
) -> list[Cluster]:
    """Clusters of similar wording among any customer turns (`text` and `conversation_id` columns; repeated texts
    embedded once, their conversations pooled), biggest first, each with its closest intent of `catalog` (None
    without a catalog or intents). Used for not-understood turns (`mine`) and for the turns before a handoff
    (`harness.trainer.transfer_reasons`)."""
    from harness.embeddings import embed

    first = turns.drop_duplicates(subset="text")
    texts = first["text"].astype(str).tolist()
    if not texts:
        return []
    vectors = embed(texts)
    groups = cluster_texts(texts, vectors, distance_threshold=distance_threshold, min_size=min_size)
    intents = catalog.intents if catalog is not None else {}
    names = list(intents)
    centres = np.zeros((0, vectors.shape[1]))
    if names:
        centres = np.stack([embed([plain_text(e) for e in i.examples]).mean(axis=0) for i in intents.values()])
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    by_text = turns.groupby("text")["conversation_id"].apply(lambda s: sorted(set(s.astype(str))))
    taken = set(names)
    clusters = []
    for group in groups:
        centre = vectors[group].mean(axis=0)
        centre /= np.linalg.norm(centre)
        similarities = centres @ centre
        best = int(similarities.argmax()) if len(names) else -1
        members = [texts[i] for i in group]
        name = proposed_name(members, taken)
        taken.add(name)
        clusters.append(
            Cluster(
                name=name,
                texts=members,
                conversations=sorted({c for t in members for c in by_text.get(t, [])}),
                nearest_intent=names[best] if best >= 0 else None,
                nearest_similarity=float(similarities[best]) if best >= 0 else 0.0,
            )
        )
    return clusters


def candidates_csv(clusters: list[Cluster]) -> str:
    """The import format: one row per text and the cluster's proposed intent; the queue is left for the trainer
    (an existing intent keeps its own)."""
    rows = [{"text": t, "intent": c.proposed_intent, "queue": ""} for c in clusters for t in c.texts]
    return pd.DataFrame(rows, columns=["text", "intent", "queue"]).to_csv(index=False)


def markdown(clusters: list[Cluster], total: int, run: str) -> str:
    lines = [
        f"# Not understood in run {run}",
        "",
        f"{total} customer turns fell back or were classified out of scope; {sum(len(c.texts) for c in clusters)} "
        f"distinct texts form {len(clusters)} clusters of similar wording (the rest stand alone).",
        "",
    ]
    for c in clusters:
        lines += [
            f"## `{c.proposed_intent}` ({len(c.texts)} texts)",
            "",
            ("More examples of a known intent? " if c.proposed_intent != c.name else "A new intent? ")
            + f"Closest existing intent: `{c.nearest_intent}` (cosine {c.nearest_similarity:.2f}). "
            f"Conversations: {', '.join(c.conversations[:8])}{' ...' if len(c.conversations) > 8 else ''}",
            "",
            *[f"- {t}" for t in c.texts[:5]],
            "",
        ]
    return "\n".join(lines)
