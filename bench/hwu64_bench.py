"""The reference bot's NLU pipeline against a frozen MiniLM + logistic-regression baseline on HWU64, side by side.

    .venv/bin/python bench/hwu64_bench.py [--data ../shared/data/hwu64] [--limit-train N]

HWU64 (Liu et al. 2019, "Benchmarking Natural Language Understanding Services for building Conversational
Agents"; CC BY 4.0): 64 intents, 9,960 training and 1,076 test utterances, in `train.csv` and `test.csv`
(columns text, intent). Each pipeline is trained from scratch on the training split in one bot-environment process
(Rasa's `train_nlu`, featurisation included, empty cache) and parses every test utterance one at a time, as a
served bot meets them (bankbot.nlu.trial). Both run in the same invocation, one after the other, never at once.

- `baseline`: WhitespaceTokenizer, bankbot.nlu.SentenceEmbeddingFeaturizer (all-MiniLM-L6-v2 sentence
  embedding), bankbot.nlu.LinearIntentClassifier with `lexical_weight: 0, C: 1` (scikit-learn's logistic
  regression with its default strength on the frozen embedding): the frozen MiniLM + LR peer of issue 17.
- `reference_bot`: the NLU pipeline of bot/config.yml as it stands (entity components included), without its
  FallbackClassifier, whose threshold and ambiguity threshold are applied to the predictions instead.

Reported per pipeline: top-intent accuracy with its 95% Wilson interval, macro-F1, recognition at the bot's
threshold (correct intent, confidence >= threshold and the best two at least the ambiguity threshold apart:
every HWU64 test utterance is in scope), training seconds, and per-message parse time (median, p95, ms). The
targets of issue 17 are checked on the reference bot's row. McNemar's exact test compares the two pipelines'
correct/incorrect on the same utterances.

Writes bench/results/hwu64.json and hwu64.md. Takes about 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.stats import binomtest

from harness.bots.reference_bot.server import BotLayout
from harness.trainer.experiment import run_trials
from harness.trainer.nlu_scores import Predictions, score

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "hwu64"
TARGETS = {"accuracy": 0.93, "recognition_gap": 0.01, "train_seconds": 300.0, "p95_ms": 30.0}
BASELINE = [
    {"name": "WhitespaceTokenizer"},
    {"name": "bankbot.nlu.SentenceEmbeddingFeaturizer"},
    {"name": "bankbot.nlu.LinearIntentClassifier", "C": 1.0, "lexical_weight": 0.0},
]


def read_split(path: Path) -> tuple[list[str], list[str]]:
    """(texts, intents) of a HWU64 CSV (columns text, intent; a byte-order mark is allowed).

    Raises ValueError naming the file (and row) if a column is missing, a row lacks text or intent, a text spans
    lines (Rasa's training format is one example per line), or there are no rows.
    """
    texts, intents = [], []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"text", "intent"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}; the header must be text,intent")
        for row_number, row in enumerate(reader, start=2):
            text, intent = (row.get("text") or "").strip(), (row.get("intent") or "").strip()
            if not text or not intent:
                raise ValueError(f"{path}:{row_number}: a row needs both text and intent")
            if "\n" in text or "\r" in text:
                raise ValueError(f"{path}:{row_number}: the text spans lines; write it on one line")
            texts.append(text)
            intents.append(intent)
    if not texts:
        raise ValueError(f"{path}: no rows under the header")
    return texts, intents


def nlu_yaml(texts: list[str], intents: list[str]) -> str:
    """Rasa NLU training data holding the examples, one block per intent (YAML-quoted through the list form)."""
    by_intent: dict[str, list[str]] = {}
    for text, intent in zip(texts, intents, strict=True):
        by_intent.setdefault(intent, []).append(text)
    blocks = [
        {"intent": intent, "examples": "".join(f"- {t}\n" for t in examples)} for intent, examples in by_intent.items()
    ]
    return yaml.safe_dump({"version": "3.1", "nlu": blocks}, sort_keys=False, allow_unicode=True, width=10_000)


def bot_pipeline(config_path: Path) -> tuple[list[dict[str, Any]], float, float]:
    """(the bot's NLU pipeline without FallbackClassifier, its threshold, its ambiguity threshold)."""
    config = yaml.safe_load(config_path.read_text())
    pipeline, threshold, ambiguity = [], 0.0, 0.0
    for component in config["pipeline"]:
        if component["name"] == "FallbackClassifier":
            threshold = float(component.get("threshold", 0.3))
            ambiguity = float(component.get("ambiguity_threshold", 0.1))
        else:
            pipeline.append(component)
    return pipeline, threshold, ambiguity


def run_pipeline(name: str, pipeline: list[dict[str, Any]], train: tuple, test_texts: list[str]) -> dict[str, Any]:
    config = yaml.safe_dump(
        {
            "recipe": "default.v1",
            "language": "en",
            "assistant_id": f"hwu64-{name}",
            "pipeline": pipeline,
            "policies": [],
        },
        sort_keys=False,
    )
    trial = {"name": name, "nlu_text": nlu_yaml(*train), "texts": test_texts}
    with tempfile.TemporaryDirectory(prefix=f"hwu64-{name}-") as tmp:
        started = time.perf_counter()
        (result,) = run_trials(config, [trial], Path(tmp), BotLayout())
        result["wall_seconds"] = time.perf_counter() - started
    return result


def summarise(result: dict[str, Any], labels: list[str], threshold: float, ambiguity: float) -> dict[str, Any]:
    predictions = Predictions.from_records(labels, result["predictions"])
    raw = score(predictions, threshold=0.0, ambiguity_threshold=0.0)
    at_threshold = score(predictions, threshold=threshold, ambiguity_threshold=ambiguity)
    interval = raw.accuracy.interval
    ms = np.asarray([p["ms"] for p in result["predictions"]], dtype=float)
    return {
        "train_seconds": round(float(result["train_seconds"]), 1),
        "accuracy": raw.accuracy.value,
        "accuracy_ci": [float(interval[0]), float(interval[1])] if interval else None,
        "macro_f1": raw.macro_f1,
        "recognition": at_threshold.recognition.value,
        "threshold": threshold,
        "ambiguity_threshold": ambiguity,
        "median_ms": float(np.median(ms)),
        "p95_ms": float(np.percentile(ms, 95)),
        "correct": [bool(i == label) for i, label in zip(predictions.intents, labels, strict=True)],
    }


def mcnemar(a: list[bool], b: list[bool]) -> dict[str, Any]:
    """McNemar's exact test (two-sided binomial on the discordant pairs) of two classifiers on the same texts."""
    only_a = sum(x and not y for x, y in zip(a, b, strict=True))
    only_b = sum(y and not x for x, y in zip(a, b, strict=True))
    p = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return {"only_baseline_correct": only_a, "only_reference_correct": only_b, "p_value": float(p)}


def targets_met(row: dict[str, Any]) -> dict[str, bool]:
    return {
        "accuracy >= 93%": row["accuracy"] >= TARGETS["accuracy"],
        # rounded: 0.93 - 0.92 is 0.010000000000000009 in floating point, and exactly 1 point meets the target
        "recognition within 1 pt of accuracy": round(row["accuracy"] - row["recognition"], 9)
        <= TARGETS["recognition_gap"],
        "training <= 5 min": row["train_seconds"] <= TARGETS["train_seconds"],
        "p95 <= 30 ms": row["p95_ms"] <= TARGETS["p95_ms"],
    }


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def render(report: dict[str, Any]) -> str:
    lines = [
        "# HWU64: the reference bot's NLU against frozen MiniLM + logistic regression",
        "",
        f"Measured by `bench/hwu64_bench.py` on {report['measured_at']}, {report['cpus']} CPUs, Python "
        f"{report['python']}; {report['train_examples']} training and {report['test_texts']} test utterances over "
        f"{report['intents']} intents. Both pipelines ran in this one invocation, one after the other. Accuracy is "
        "the raw classifier's top intent; recognition applies the bot's fallback (threshold "
        f"{report['threshold']}, ambiguity {report['ambiguity_threshold']}). Training is Rasa's `train_nlu` from an "
        "empty cache, featurisation included; parse times are per message, one at a time.",
        "",
        "| pipeline | accuracy [95% CI] | macro-F1 | recognition at threshold | training (s) | median ms | p95 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in report["pipelines"].items():
        low, high = row["accuracy_ci"]
        lines.append(
            f"| `{name}` | {pct(row['accuracy'])} [{pct(low)}, {pct(high)}] | {pct(row['macro_f1'])} | "
            f"{pct(row['recognition'])} | {row['train_seconds']:.0f} | {row['median_ms']:.1f} | {row['p95_ms']:.1f} |"
        )
    test = report["mcnemar"]
    lines += [
        "",
        f"McNemar (exact) on the same {report['test_texts']} utterances: only the baseline right on "
        f"{test['only_baseline_correct']}, only the reference bot right on {test['only_reference_correct']}, "
        f"p = {test['p_value']:.3g}.",
        "",
        "Issue 17's targets for the reference bot's pipeline:",
        "",
    ]
    lines += [f"- {name}: {'met' if ok else 'NOT met'}" for name, ok in report["targets"].items()]
    lines += [
        "",
        "The reference bot's pipeline:",
        "",
        "```yaml",
        yaml.safe_dump(report["reference_pipeline"], sort_keys=False).rstrip(),
        "```",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with train.csv and test.csv")
    parser.add_argument("--limit-train", type=int, default=0, help="use only the first N training rows (smoke runs)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where hwu64.json and hwu64.md go")
    args = parser.parse_args()

    train_texts, train_intents = read_split(args.data / "train.csv")
    if args.limit_train:
        train_texts, train_intents = train_texts[: args.limit_train], train_intents[: args.limit_train]
    test_texts, test_intents = read_split(args.data / "test.csv")
    reference, threshold, ambiguity = bot_pipeline(ROOT / "bot" / "config.yml")

    rows = {}
    for name, pipeline in (("baseline", BASELINE), ("reference_bot", reference)):
        result = run_pipeline(name, pipeline, (train_texts, train_intents), test_texts)
        rows[name] = summarise(result, test_intents, threshold, ambiguity)
        print(f"{name}: accuracy {pct(rows[name]['accuracy'])}, training {rows[name]['train_seconds']} s", flush=True)

    report = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": __import__("os").cpu_count(),
        "python": platform.python_version(),
        "train_examples": len(train_texts),
        "test_texts": len(test_texts),
        "intents": len(set(train_intents)),
        "threshold": threshold,
        "ambiguity_threshold": ambiguity,
        "reference_pipeline": reference,
        "mcnemar": mcnemar(rows["baseline"]["correct"], rows["reference_bot"]["correct"]),
        "targets": targets_met(rows["reference_bot"]),
        "pipelines": {name: {k: v for k, v in row.items() if k != "correct"} for name, row in rows.items()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "hwu64.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "hwu64.md").write_text(render(report))
    print(render(report))


if __name__ == "__main__":
    main()
