"""NLU pipelines at two scales: training time and recognition of each pipeline of experiments/nlu_pipelines.yml
on the reference bot's data and on a generated set of over 5,000 examples over over 50 intents; embedding
throughput. All in one run, side by side.

    .venv/bin/python bench/nlu_bench.py [--train-per-intent 100] [--test-per-intent 20] [--large-diet-epochs 80]

- Reference data: train on all of intents/, predict every labelled customer turn of the eval sets.
- Large set: generated from bench/data/large_bank_intents.yml. Each intent's training examples come from its
  `train` frames and its test examples from its `test` frames, written with different wording: the test measures
  recognition of held-out paraphrases, not of re-filled templates. Slots are filled at random and the surface
  varied (casing, greetings, punctuation) with a fixed seed, so the set is the same on every run.
- DIET's epochs on the large set can be capped (--large-diet-epochs; default 80, the experiment's own value, so
  no cap). A cap saves time but is unfair to DIET: at 20 epochs it reached only 17% accuracy on the large set.
  The value used is reported with the results.
- Embedding throughput: MiniLM sentences per second (batches of 64, after a warm-up), in the harness environment.

Writes bench/results/nlu.json and nlu.md. Takes about 50 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import random
import re
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

from harness.bots.reference_bot.server import BotLayout
from harness.pipeline import load_suite
from harness.project.config import load_config
from harness.project.intents import Catalog, Intent, IntentKind
from harness.project.paths import ProjectPaths
from harness.trainer.experiment import (
    PipelineSpec,
    eval_turns,
    examples_of,
    load_spec,
    rasa_config,
    run_trials,
    training_yaml,
)
from harness.trainer.nlu_scores import Predictions, score

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TEMPLATES = ROOT / "bench" / "data" / "large_bank_intents.yml"
OPENERS = ["", "", "", "hi, ", "hello ", "hey ", "excuse me, ", "quick question: ", "good morning, "]
CLOSERS = ["", "", "", " please", " thanks", " pls", "?", " thank you", "!!"]


def fill(frame: str, slots: dict[str, list[str]], rng: random.Random) -> str:
    text = re.sub(r"\{(\w+)\}", lambda m: str(rng.choice(slots[m.group(1)])), frame)
    text = rng.choice(OPENERS) + text + rng.choice(CLOSERS)
    style = rng.random()
    if style < 0.25:
        text = text.lower()
    elif style < 0.35:
        text = re.sub(r"[?.!,']", "", text.lower())
    return " ".join(text.split())


def generate(per_intent: int, frames_key: str, seed: int) -> list[tuple[str, str]]:
    """(text, intent) pairs: `per_intent` distinct texts per intent from its `frames_key` frames."""
    data = yaml.safe_load(TEMPLATES.read_text())
    rng = random.Random(seed)
    pairs = []
    for intent in data["intents"]:
        frames, texts, attempts = intent[frames_key], set(), 0
        while len(texts) < per_intent and attempts < per_intent * 50:
            texts.add(fill(frames[attempts % len(frames)], data["slots"], rng))
            attempts += 1
        pairs.extend((t, intent["name"]) for t in sorted(texts))
    return pairs


def as_catalog(pairs: list[tuple[str, str]]) -> Catalog:
    by_intent: dict[str, list[str]] = {}
    for text, name in pairs:
        by_intent.setdefault(name, []).append(text.replace("[", "(").replace("]", ")"))
    intents = {
        name: Intent(name=name, description="generated", queue="general", kind=IntentKind.self_service, examples=ex)
        for name, ex in by_intent.items()
    }
    return Catalog(intents=intents, sources={})


def measure(pipeline: PipelineSpec, catalog: Catalog, texts: list[str], labels: list[str]) -> dict:
    examples = examples_of(catalog)
    trial = {"name": "bench", "nlu_text": training_yaml(catalog, examples), "texts": texts}
    with tempfile.TemporaryDirectory(prefix=f"bench-{pipeline.name}-") as tmp:
        (result,) = run_trials(rasa_config(pipeline), [trial], Path(tmp), BotLayout())
    predictions = Predictions.from_records(labels, result["predictions"])
    raw = score(predictions, threshold=0.0, ambiguity_threshold=0.0)
    at_half = score(predictions, threshold=0.5, ambiguity_threshold=0.0)
    return {
        "train_examples": len(examples),
        "intents": len(catalog.intents),
        "test_texts": len(texts),
        "train_seconds": result["train_seconds"],
        "predict_ms_per_text": 1000 * result["predict_seconds"] / max(len(texts), 1),
        "accuracy": raw.accuracy.value,
        "accuracy_interval": raw.accuracy.interval,
        "macro_f1": raw.macro_f1,
        "recognition_at_0.5": at_half.recognition.value,
        "oos_rejection_at_0.5": at_half.oos_rejection.value,
    }


def with_epochs(pipeline: PipelineSpec, epochs: int) -> PipelineSpec:
    changed = copy.deepcopy(pipeline.pipeline)
    for component in changed:
        if component["name"] == "DIETClassifier":
            component["epochs"] = min(int(component.get("epochs", 300)), epochs)
    return pipeline.model_copy(update={"pipeline": changed})


def embedding_throughput(texts: list[str]) -> dict:
    from harness.embeddings import embed

    embed(texts[:64])
    started = time.perf_counter()
    embed(texts)
    batch = len(texts) / (time.perf_counter() - started)
    started = time.perf_counter()
    for text in texts[:100]:
        embed([text])
    single_ms = 1000 * (time.perf_counter() - started) / 100
    return {"sentences": len(texts), "batched_per_second": batch, "single_sentence_ms": single_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-per-intent", type=int, default=100)
    parser.add_argument("--test-per-intent", type=int, default=20)
    parser.add_argument("--large-diet-epochs", type=int, default=80)
    parser.add_argument("--only", action="append", help="Only these pipelines (repeatable).")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    spec = load_spec(ROOT / "experiments" / "nlu_pipelines.yml")
    pipelines = [p for p in spec.pipelines if not args.only or p.name in args.only]
    paths = ProjectPaths()
    from harness.project.intents import load_catalog

    reference = load_catalog(paths.intents)
    ref_texts, ref_labels = eval_turns(load_suite(load_config().resolved(), paths))
    train = generate(args.train_per_intent, "train", seed=7)
    test = generate(args.test_per_intent, "test", seed=11)
    large = as_catalog(train)
    results: dict = {"reference": {}, "large": {}}
    for pipeline in pipelines:
        print(f"{pipeline.name}: reference data...", flush=True)
        results["reference"][pipeline.name] = measure(pipeline, reference, ref_texts, ref_labels)
        print(f"{pipeline.name}: large set...", flush=True)
        results["large"][pipeline.name] = measure(
            with_epochs(pipeline, args.large_diet_epochs), large, [t for t, _ in test], [n for _, n in test]
        )
        print(json.dumps({k: results[k][pipeline.name] for k in ("reference", "large")}, indent=1), flush=True)
    results["embedding"] = embedding_throughput([t for t, _ in test])
    results["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    results["settings"] = vars(args) | {"out": str(args.out)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "nlu.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (args.out / "nlu.md").write_text(markdown(results, args))
    print((args.out / "nlu.md").read_text())


def markdown(results: dict, args: argparse.Namespace) -> str:
    def row(data: dict, name: str) -> str:
        r = data[name]
        low, high = r["accuracy_interval"]
        return (
            f"| `{name}` | {r['train_examples']} / {r['intents']} | {r['test_texts']} | {r['train_seconds']:.0f} | "
            f"{r['accuracy']:.1%} [{low:.1%}, {high:.1%}] | {r['macro_f1']:.1%} | {r['recognition_at_0.5']:.1%} | "
            f"{r['predict_ms_per_text']:.1f} |"
        )

    header = (
        "| pipeline | train examples / intents | test texts | training (s) | accuracy [95% CI] | macro-F1 | "
        "recognition at 0.5 | ms per text |\n|---|---|---|---|---|---|---|---|"
    )
    e, m = results["embedding"], results["machine"]
    return "\n".join(
        [
            "# NLU pipelines: training time and recognition at two scales",
            "",
            f"Measured by `bench/nlu_bench.py` on {m['date']}, {m['cpus']} CPUs, Python {m['python']}. Accuracy is"
            " the raw classifier's (no fallback); recognition at 0.5 is the share of in-scope texts classified"
            " correctly with confidence at least 0.5. Training time is Rasa's `train_nlu` in the bot environment,"
            " from an empty cache, including featurization.",
            "",
            "## Reference bot data (intents/ → eval-set customer turns, out-of-scope turns included)",
            "",
            header,
            *[row(results["reference"], n) for n in results["reference"]],
            "",
            f"## Generated large set (held-out paraphrases; DIET epochs: at most {args.large_diet_epochs})",
            "",
            header,
            *[row(results["large"], n) for n in results["large"]],
            "",
            "## Embedding throughput (all-MiniLM-L6-v2, CPU)",
            "",
            f"{e['batched_per_second']:.0f} sentences/s in batches of 64 over {e['sentences']} sentences; "
            f"{e['single_sentence_ms']:.1f} ms per single sentence.",
            "",
        ]
    )


if __name__ == "__main__":
    main()
