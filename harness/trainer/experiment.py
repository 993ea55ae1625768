"""Compare NLU pipelines, declared in an experiment file, under cross-validation on `intents/` and on the eval sets.

For each pipeline: k stratified folds over the training examples (train on k-1, predict the held-out one), then
one model on every example, predicting the customer turns of the eval sets (each turn alone, as the NLU sees it).
Training and prediction run in the bot environment (`bankbot.nlu.trial`), so a pipeline here is exactly what
`bot/config.yml` would run; scoring (harness.trainer.nlu_scores) and tracking happen here.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness.bots.reference_bot.nlu_build import render_nlu
from harness.bots.reference_bot.server import BotLayout, bot_env
from harness.errors import TrialError
from harness.project.eval_set import EvalSuite
from harness.project.intents import Catalog, plain_text
from harness.project.problems import load_yaml_model
from harness.trainer.nlu_scores import NluScores, Predictions, concatenate, score, tune_threshold

SCORE_NAMES = ("accuracy", "macro_f1", "recognition", "oos_rejection")


class PipelineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = Field(min_length=1)
    pipeline: list[dict[str, Any]] = Field(min_length=1)
    """Rasa NLU components, as in config.yml, without FallbackClassifier (the experiment applies the fallback)."""

    @field_validator("pipeline")
    @classmethod
    def _no_fallback(cls, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for component in pipeline:
            if "name" not in component:
                raise ValueError(f"every component needs a name; got {component}")
            if component["name"] == "FallbackClassifier":
                raise ValueError("leave FallbackClassifier out: set `fallback` in the experiment instead")
        return pipeline


class FallbackSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: float | Literal["tuned"] = "tuned"
    """A fixed confidence threshold, or `tuned`: per pipeline, the threshold with the best cross-validated
    recognition whose false acceptance of out-of-scope examples stays within `max_false_acceptance` (chosen on
    the folds, then applied unchanged to the eval sets, so the eval-set scores are not tuned on themselves)."""
    max_false_acceptance: float = Field(default=0.10, ge=0, le=1)
    ambiguity_threshold: float = Field(default=0.0, ge=0, le=1)

    @field_validator("threshold")
    @classmethod
    def _in_range(cls, value: float | str) -> float | str:
        if isinstance(value, float) and not 0 <= value <= 1:
            raise ValueError("a threshold is between 0 and 1 (or `tuned`)")
        return value


class ExperimentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=1)
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    description: str = ""
    folds: int = Field(default=5, ge=2, le=20)
    seed: int = 42
    fallback: FallbackSpec
    select: str = "eval.recognition"
    """The score that picks the winner (higher is better): `cv.<score>` or `eval.<score>`."""
    pipelines: list[PipelineSpec] = Field(min_length=1)

    @field_validator("select")
    @classmethod
    def _known_score(cls, value: str) -> str:
        allowed = [f"{part}.{name}" for part in ("cv", "eval") for name in SCORE_NAMES]
        if value not in allowed:
            raise ValueError(f"unknown score {value!r}; choose one of {', '.join(allowed)}")
        return value

    @field_validator("pipelines")
    @classmethod
    def _unique(cls, pipelines: list[PipelineSpec]) -> list[PipelineSpec]:
        names = [p.name for p in pipelines]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"pipeline names must be unique; repeated: {', '.join(twice)}")
        return pipelines


def load_spec(path: Path) -> ExperimentSpec:
    return load_yaml_model(path, ExperimentSpec, "experiment file")


@dataclass(frozen=True)
class Example:
    markup: str
    """As written in intents/ (with entity markup), for training."""
    text: str
    """As a customer types it, for prediction."""
    intent: str


def examples_of(catalog: Catalog) -> list[Example]:
    return [Example(ex, plain_text(ex), name) for name, intent in catalog.intents.items() for ex in intent.examples]


def eval_turns(suite: EvalSuite) -> tuple[list[str], list[str]]:
    """Texts and intent labels of every customer turn that has a label (free-text answers have none)."""
    turns = [t for c in suite.conversations for t in c.conversation.turns if t.intent is not None]
    return [t.text for t in turns], [str(t.intent) for t in turns]


def fold_indices(labels: list[str], folds: int, seed: int) -> list[np.ndarray]:
    """Held-out indices of each stratified fold (every intent spread over the folds; deterministic in `seed`)."""
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [test for _, test in splitter.split(np.zeros(len(labels)), labels)]


def training_yaml(catalog: Catalog, examples: list[Example]) -> str:
    """Rasa NLU data holding only `examples` (intents keep their catalog order)."""
    by_intent: dict[str, list[str]] = {}
    for example in examples:
        by_intent.setdefault(example.intent, []).append(example.markup)
    subset = {
        name: intent.model_copy(update={"examples": by_intent[name]})
        for name, intent in catalog.intents.items()
        if name in by_intent
    }
    return render_nlu(Catalog(intents=subset, sources={}))


def rasa_config(pipeline: PipelineSpec) -> str:
    body = {"recipe": "default.v1", "language": "en", "assistant_id": f"experiment-{pipeline.name}"}
    return yaml.safe_dump({**body, "pipeline": pipeline.pipeline, "policies": []}, sort_keys=False)


def run_trials(config: str, trials: list[dict[str, Any]], workdir: Path, layout: BotLayout) -> list[dict[str, Any]]:
    """Train and predict each trial in one bot-environment process; its log goes to `workdir/trial.log`."""
    (workdir / "config.yml").write_text(config)
    for trial in trials:
        path = workdir / f"{trial['name']}.nlu.yml"
        path.write_text(trial.pop("nlu_text"))
        trial["nlu"] = str(path)
    plan = workdir / "plan.json"
    plan.write_text(json.dumps({"config": str(workdir / "config.yml"), "trials": trials}))
    python = layout.venv / "bin" / "python"
    if not python.exists():
        raise TrialError(f"the bot environment is missing ({python}): run `make bot-env`")
    log = workdir / "trial.log"
    with log.open("w") as out, tempfile.TemporaryDirectory(prefix="trial-") as scratch:
        done = subprocess.run(
            [str(python), "-m", "bankbot.nlu.trial", str(plan), str(workdir / "results.json")],
            cwd=layout.bot_dir,
            # TMPDIR: TensorFlow's autograph and the CRF entity extractor leave files in the temporary folder.
            env=bot_env(layout, {"TF_CPP_MIN_LOG_LEVEL": "2", "TMPDIR": scratch}),
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise TrialError(f"the pipeline failed in the bot environment (exit {done.returncode}); log {log}:\n{tail}")
    return json.loads((workdir / "results.json").read_text())["trials"]


@dataclass
class PipelineResult:
    spec: PipelineSpec
    threshold: float
    """The fallback threshold the scores are at (fixed, or tuned on the folds)."""
    cv_folds: list[NluScores]
    cv: NluScores
    """Pooled over all held-out folds."""
    eval: NluScores
    eval_predictions: Predictions
    cv_predictions: Predictions
    train_seconds: list[float]
    """Per fold, then the full model last."""
    predict_ms_per_text: float

    def scores(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        out.update({f"cv.{k}": v for k, v in self.cv.as_dict().items()})
        for name in SCORE_NAMES:
            values = [v for v in (f.as_dict()[name] for f in self.cv_folds) if v is not None]
            out[f"cv.{name}_sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
        out.update({f"eval.{k}": v for k, v in self.eval.as_dict().items()})
        out["threshold"] = self.threshold
        out["train_seconds_full"] = self.train_seconds[-1]
        out["train_seconds_fold_mean"] = float(np.mean(self.train_seconds[:-1]))
        out["predict_ms_per_text"] = self.predict_ms_per_text
        return out


@dataclass
class ExperimentResult:
    spec: ExperimentSpec
    results: list[PipelineResult]
    data: dict[str, Any] = field(default_factory=dict)
    """What was compared: example and intent counts, eval turns, the suite's hash."""

    def winner(self) -> PipelineResult:
        return max(self.results, key=lambda r: r.scores()[self.spec.select] or -1.0)


def evaluate_pipeline(
    spec: ExperimentSpec,
    pipeline: PipelineSpec,
    catalog: Catalog,
    suite: EvalSuite,
    *,
    layout: BotLayout | None = None,
    progress: Any = print,
) -> PipelineResult:
    examples = examples_of(catalog)
    labels = [e.intent for e in examples]
    folds = fold_indices(labels, spec.folds, spec.seed)
    trials = []
    for number, held_out in enumerate(folds, start=1):
        held = set(held_out.tolist())
        train = [e for i, e in enumerate(examples) if i not in held]
        trials.append(
            {
                "name": f"fold{number}",
                "nlu_text": training_yaml(catalog, train),
                "texts": [examples[i].text for i in held_out],
            }
        )
    texts, eval_labels = eval_turns(suite)
    trials.append({"name": "full", "nlu_text": training_yaml(catalog, examples), "texts": texts})
    progress(f"{pipeline.name}: {spec.folds} folds + full model ({len(examples)} examples, {len(texts)} eval turns)")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"nlu-{pipeline.name}-") as tmp:
        outcome = run_trials(rasa_config(pipeline), trials, Path(tmp), layout or BotLayout())
    progress(f"{pipeline.name}: done in {time.perf_counter() - started:.0f} s")
    fold_predictions = [
        Predictions.from_records([labels[i] for i in held_out], result["predictions"])
        for held_out, result in zip(folds, outcome[:-1], strict=True)
    ]
    eval_predictions = Predictions.from_records(eval_labels, outcome[-1]["predictions"])
    pooled = concatenate(fold_predictions)
    fallback = spec.fallback
    threshold = (
        tune_threshold(
            pooled, max_false_acceptance=fallback.max_false_acceptance, ambiguity_threshold=fallback.ambiguity_threshold
        )
        if fallback.threshold == "tuned"
        else float(fallback.threshold)
    )
    options = {"threshold": threshold, "ambiguity_threshold": fallback.ambiguity_threshold}
    predicted = sum(len(r["predictions"]) for r in outcome)
    return PipelineResult(
        spec=pipeline,
        threshold=threshold,
        cv_folds=[score(p, **options) for p in fold_predictions],
        cv=score(pooled, **options),
        eval=score(eval_predictions, **options),
        eval_predictions=eval_predictions,
        cv_predictions=pooled,
        train_seconds=[float(r["train_seconds"]) for r in outcome],
        predict_ms_per_text=1000 * sum(r["predict_seconds"] for r in outcome) / max(predicted, 1),
    )


def describe_data(catalog: Catalog, suite: EvalSuite) -> dict[str, Any]:
    texts, labels = eval_turns(suite)
    return {
        "intents": len(catalog.intents),
        "examples": len(examples_of(catalog)),
        "eval_turns": len(texts),
        "eval_out_of_scope_turns": labels.count("out_of_scope"),
        "eval_set_hash": suite.content_hash,
    }


def environment_note() -> dict[str, str]:
    return {"machine_cpus": str(os.cpu_count()), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
