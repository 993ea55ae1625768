"""Train an NLU pipeline on some examples and predict others: one process, several trials (bot environment).

The harness's pipeline experiments (harness/nlu_experiment.py) call this with a plan and read the results:

    python -m bankbot.nlu.trial PLAN.json RESULTS.json

PLAN: {"config": "<rasa config.yml>", "trials": [{"name": str, "nlu": "<nlu.yml>", "texts": [str, ...]}, ...]}
RESULTS: {"trials": [{"name", "train_seconds", "predict_seconds", "predictions": [{"intent", "confidence",
"ranking": [[intent, confidence], ...], "ms"}, ...]}, ...]}

Texts are parsed one at a time, as a served bot meets them; "ms" is each parse's wall time in milliseconds (the
whole NLU pipeline: tokenizer, featurizers, classifiers, fallback).

Each trial trains from scratch (its own empty Rasa cache) so training times are comparable.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def parse_all(model_path: str, texts: list[str]) -> list[dict[str, Any]]:
    from rasa.core.agent import Agent

    agent = Agent.load(model_path)

    async def run() -> list[tuple[dict[str, Any], float]]:
        timed = []
        for text in texts:
            started = time.perf_counter()
            parsed = await agent.parse_message(text)
            timed.append((parsed, 1000 * (time.perf_counter() - started)))
        return timed

    out = []
    for parsed, ms in asyncio.run(run()):
        ranking = [[r["name"], float(r["confidence"])] for r in parsed.get("intent_ranking", [])[:10]]
        intent = parsed.get("intent") or {}
        confidence = float(intent.get("confidence") or 0.0)
        out.append({"intent": intent.get("name"), "confidence": confidence, "ranking": ranking, "ms": ms})
    return out


def run_trial(config: str, trial: dict[str, Any], workdir: Path) -> dict[str, Any]:
    from rasa.model_training import train_nlu

    os.environ["RASA_CACHE_DIRECTORY"] = str(workdir / "cache")
    started = time.perf_counter()
    model = train_nlu(config=config, nlu_data=trial["nlu"], output=str(workdir), fixed_model_name="nlu")
    trained = time.perf_counter()
    if model is None:
        raise SystemExit(f"training failed for trial {trial['name']}")
    predictions = parse_all(model, trial["texts"])
    return {
        "name": trial["name"],
        "train_seconds": trained - started,
        "predict_seconds": time.perf_counter() - trained,
        "predictions": predictions,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    plan = json.loads(Path(argv[0]).read_text())
    results = []
    for trial in plan["trials"]:
        with tempfile.TemporaryDirectory(prefix="nlu-trial-") as tmp:
            results.append(run_trial(plan["config"], trial, Path(tmp)))
        print(f"trial {trial['name']}: trained in {results[-1]['train_seconds']:.1f} s", file=sys.stderr, flush=True)
    Path(argv[1]).write_text(json.dumps({"trials": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
