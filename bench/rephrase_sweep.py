"""How well the review's `repetition` rule tells a customer repeating or rephrasing from a new request.

Reads the hand-labelled pairs of customer turns in bench/data/rephrase_pairs.yml and, for each threshold,
counts how many pairs the character-level rule (a repeat) and the MiniLM meaning rule (a rephrasing) would
flag: precision, recall and F1 against the labels. Also scores the rule as configured in experiments/review.yml
(either similarity at or above its threshold), on those pairs and on the held-out pairs of
bench/data/rephrase_pairs_heldout.yml, written after the thresholds were chosen and never used to choose them.
Counts how many conversations of eval_sets/ each threshold would flag, as a measure of the review load it adds.
Writes bench/results/rephrase.{json,md}.

    make bench-rephrase        # or: .venv/bin/python bench/rephrase_sweep.py
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from harness.embeddings import embed
from harness.review.config import Repetition, load_review_config
from harness.review.similarity import Meaning, lexical, long_enough

ROOT = Path(__file__).resolve().parent
PAIRS = ROOT / "data" / "rephrase_pairs.yml"
HELD_OUT = ROOT / "data" / "rephrase_pairs_heldout.yml"
RESULTS = ROOT / "results"
THRESHOLDS = [round(0.3 + 0.05 * step, 2) for step in range(14)]
EVAL_SETS = ROOT.parent / "eval_sets"


def scores(flagged: list[bool], labels: list[bool]) -> dict[str, float | int]:
    true_pos = sum(f and y for f, y in zip(flagged, labels, strict=True))
    flagged_n, positives = sum(flagged), sum(labels)
    precision = true_pos / flagged_n if flagged_n else 1.0
    recall = true_pos / positives if positives else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"flagged": flagged_n, "true_positives": true_pos, "precision": precision, "recall": recall, "f1": f1}


def eval_conversations() -> dict[str, list[str]]:
    """Conversation id -> its customer turns (long enough to count), for every conversation in eval_sets/."""
    conversations = {}
    for path in sorted(EVAL_SETS.glob("*.yml")):
        for conversation in yaml.safe_load(path.read_text(encoding="utf-8"))["conversations"]:
            conversations[conversation["id"]] = [t["text"] for t in conversation["turns"] if long_enough(t["text"])]
    return conversations


def highest(turns: list[str], similarity: Callable[[str, str], float]) -> float:
    """The highest similarity of two turns of one conversation (0 with fewer than two turns)."""
    return max((similarity(a, b) for i, a in enumerate(turns) for b in turns[i + 1 :]), default=0.0)


def configured_scores(
    pairs: list[dict], rule: Repetition, meaning: Callable[[str, str], float]
) -> dict[str, float | int | list[dict]]:
    """The rule as configured on `pairs`: its scores, and the pairs it misses or flags wrongly."""
    labels = [bool(p["rephrase"]) for p in pairs]
    flagged = []
    for p in pairs:
        a, b = p["first"], p["second"]
        alike = lexical(a, b) >= rule.similarity or (rule.meaning is not None and meaning(a, b) >= rule.meaning)
        flagged.append(long_enough(a) and long_enough(b) and alike)
    return {
        **scores(flagged, labels),
        "missed": [p for p, f, y in zip(pairs, flagged, labels, strict=True) if y and not f],
        "wrongly_flagged": [p for p, f, y in zip(pairs, flagged, labels, strict=True) if f and not y],
    }


def main() -> int:
    pairs = yaml.safe_load(PAIRS.read_text(encoding="utf-8"))["pairs"]
    held_out = yaml.safe_load(HELD_OUT.read_text(encoding="utf-8"))["pairs"]
    labels = [bool(p["rephrase"]) for p in pairs]
    conversations = eval_conversations()
    texts = [t for p in [*pairs, *held_out] for t in (p["first"], p["second"])]
    meaning = Meaning(texts + [t for c in conversations.values() for t in c], embed)
    eval_characters = [highest(turns, lexical) for turns in conversations.values()]
    eval_meaning = [highest(turns, meaning) for turns in conversations.values()]
    eligible = [long_enough(p["first"]) and long_enough(p["second"]) for p in pairs]
    by_characters = [lexical(p["first"], p["second"]) for p in pairs]
    by_meaning = [meaning(p["first"], p["second"]) for p in pairs]

    def at(threshold: float, similarities: list[float]) -> list[bool]:
        return [e and s >= threshold for e, s in zip(eligible, similarities, strict=True)]

    sweep = []
    for threshold in THRESHOLDS:
        sweep.append(
            {
                "threshold": threshold,
                "characters": scores(at(threshold, by_characters), labels),
                "meaning": scores(at(threshold, by_meaning), labels),
                "eval_conversations_flagged": {
                    "characters": sum(s >= threshold for s in eval_characters),
                    "meaning": sum(s >= threshold for s in eval_meaning),
                },
            }
        )
    rule = load_review_config().flags.repetition
    configured = configured_scores(pairs, rule, meaning)
    held_out_scores = configured_scores(held_out, rule, meaning)
    eval_flagged = []
    for conversation_id, turns in conversations.items():
        for i, first in enumerate(turns):
            for second in turns[i + 1 :]:
                c, m = lexical(first, second), meaning(first, second)
                if c >= rule.similarity or (rule.meaning is not None and m >= rule.meaning):
                    eval_flagged.append(
                        {
                            "conversation": conversation_id,
                            "first": first,
                            "second": second,
                            "characters": c,
                            "meaning": m,
                        }
                    )
    result = {
        "pairs": len(pairs),
        "rephrasings": sum(labels),
        "too_short": len(pairs) - sum(eligible),
        "eval_conversations": len(conversations),
        "sweep": sweep,
        "rule": {"similarity": rule.similarity, "meaning": rule.meaning},
        "configured": configured,
        "held_out_pairs": len(held_out),
        "held_out_rephrasings": sum(bool(p["rephrase"]) for p in held_out),
        "held_out": held_out_scores,
        "eval_flagged": eval_flagged,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "rephrase.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "rephrase.md").write_text(report(result), encoding="utf-8")
    print(report(result))
    return 0


def report(result: dict) -> str:
    c = result["configured"]
    lines = [
        "# Repetition rule: repeats and rephrasings on hand-labelled pairs",
        "",
        f"`bench/rephrase_sweep.py` on `bench/data/rephrase_pairs.yml`: {result['pairs']} pairs of customer turns, "
        f"{result['rephrasings']} of them the customer saying the first again; {result['too_short']} pairs have a "
        "turn under 3 words, which the rule never flags. The last columns count the conversations of `eval_sets/` "
        f"(of {result['eval_conversations']}) in which two customer turns reach the threshold: the review load.",
        "",
        "| threshold | characters: precision | recall | F1 | meaning (MiniLM): precision | recall | F1 "
        "| eval conversations flagged: characters | meaning |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["sweep"]:
        ch, me, load = row["characters"], row["meaning"], row["eval_conversations_flagged"]
        lines.append(
            f"| {row['threshold']:.2f} | {ch['precision']:.2f} | {ch['recall']:.2f} | {ch['f1']:.2f} "
            f"| {me['precision']:.2f} | {me['recall']:.2f} | {me['f1']:.2f} "
            f"| {load['characters']} | {load['meaning']} |"
        )
    rule, held = result["rule"], result["held_out"]

    def listed(title: str, found: list[dict]) -> list[str]:
        return [title, *[f"- {p['first']!r} / {p['second']!r}" for p in found], ""]

    lines += [
        "",
        f"As configured in `experiments/review.yml` (characters >= {rule['similarity']} or meaning >= "
        f"{rule['meaning']}), on these pairs, which chose the thresholds: {c['flagged']} flagged, precision "
        f"{c['precision']:.2f}, recall {c['recall']:.2f}, F1 {c['f1']:.2f}.",
        "",
        f"**Held out** (`bench/data/rephrase_pairs_heldout.yml`, {result['held_out_pairs']} pairs, "
        f"{result['held_out_rephrasings']} rephrasings, written after the thresholds were chosen): {held['flagged']} "
        f"flagged, precision {held['precision']:.2f}, recall {held['recall']:.2f}, F1 {held['f1']:.2f}.",
        "",
        *listed("Missed rephrasings (tuning pairs):", c["missed"]),
        *listed("Flagged, but a different request (tuning pairs):", c["wrongly_flagged"]),
        *listed("Missed rephrasings (held out):", held["missed"]),
        *listed("Flagged, but a different request (held out):", held["wrongly_flagged"]),
        f"In `eval_sets/`, as configured, the rule fires on {len(result['eval_flagged'])} pair(s) of customer turns "
        "(unlabelled: judge them yourself):",
        *[
            f"- {f['conversation']}: {f['first']!r} / {f['second']!r} "
            f"(characters {f['characters']:.2f}, meaning {f['meaning']:.2f})"
            for f in result["eval_flagged"]
        ],
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
