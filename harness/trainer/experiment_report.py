"""Outputs of a pipeline experiment: results.md / results.json, plots, and MLflow runs (a parent run for the
experiment, one child run per pipeline, linked by MLflow's parent-run tag)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pandas as pd

from harness.sinks.tracking import TrackingError, experiment_id_of
from harness.trainer.experiment import ExperimentResult, PipelineResult

ROWS = [
    ("threshold", "Fallback threshold"),
    ("cv.accuracy", "CV accuracy (raw)"),
    ("cv.macro_f1", "CV macro-F1 (raw)"),
    ("cv.recognition", "CV recognition"),
    ("cv.oos_rejection", "CV out-of-scope rejection"),
    ("eval.accuracy", "Eval-set accuracy (raw)"),
    ("eval.recognition", "Eval-set recognition"),
    ("eval.oos_rejection", "Eval-set out-of-scope rejection"),
    ("train_seconds_full", "Training time, full data (s)"),
    ("predict_ms_per_text", "Prediction time per text (ms)"),
]


def _cell(result: PipelineResult, key: str) -> str:
    value = result.scores()[key]
    if value is None:
        return "n/a"
    if key.endswith(("seconds_full", "ms_per_text")):
        return f"{value:.1f}"
    if key == "threshold":
        return f"{value:g}"
    text = f"{value:.1%}"
    sd = result.scores().get(f"{key}_sd")
    if sd is not None:
        text += f" ± {sd:.1%}"
    part = key.split(".", 1)
    if part[0] == "eval" and part[1] in ("recognition", "oos_rejection", "accuracy"):
        interval = getattr(result.eval, part[1]).interval
        if interval:
            text += f" [{interval[0]:.1%}, {interval[1]:.1%}]"
    return text


def _fallback_text(spec: Any) -> str:
    f = spec.fallback
    margin = f"or the top-2 margin is below {f.ambiguity_threshold}"
    if f.threshold == "tuned":
        return (
            f"A text falls back when its confidence is below the pipeline's threshold {margin}; each pipeline's "
            "threshold is tuned on its cross-validation predictions (best recognition with false acceptance of "
            f"out-of-scope examples within {f.max_false_acceptance:.0%}) and then applied unchanged to the eval sets."
        )
    return f"A text falls back when its confidence is below {f.threshold} {margin}, for every pipeline."


def markdown(result: ExperimentResult, command: str) -> str:
    spec, data = result.spec, result.data
    winner = result.winner()
    lines = [
        f"# Pipeline experiment `{spec.name}`",
        "",
        spec.description.strip(),
        "",
        f"Reproduce: `{command}`. Data: {data['examples']} training examples over {data['intents']} intents "
        f"({spec.folds}-fold stratified cross-validation, seed {spec.seed}); eval sets: {data['eval_turns']} labelled "
        f"customer turns ({data['eval_out_of_scope_turns']} out of scope), hash {data['eval_set_hash'][:12]}. "
        f"{_fallback_text(spec)} CV scores are pooled over folds, ± the standard deviation across "
        "folds; eval-set proportions carry a 95% Wilson interval. Recognition: in-scope texts given the right intent "
        "without falling back; out-of-scope rejection: out-of-scope texts that fell back or were classified "
        "`out_of_scope`; raw accuracy and macro-F1 ignore the fallback. Machine: "
        f"{data.get('machine_cpus', '?')} CPUs, started {data.get('started', '?')}.",
        "",
        "| | " + " | ".join(f"`{r.spec.name}`" for r in result.results) + " |",
        "|---|" + "---|" * len(result.results),
    ]
    for key, label in ROWS:
        lines.append(f"| {label} | " + " | ".join(_cell(r, key) for r in result.results) + " |")
    lines += [
        "",
        f"**Winner by `{spec.select}`: `{winner.spec.name}`** ({winner.spec.description.strip()})",
        "",
        "Pipelines:",
        "",
    ]
    for r in result.results:
        names = " → ".join(c["name"].split(".")[-1] for c in r.spec.pipeline)
        lines.append(f"- `{r.spec.name}`: {r.spec.description.strip()} ({names})")
    return "\n".join(lines) + "\n"


def comparison_plot(result: ExperimentResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["cv.accuracy", "cv.recognition", "eval.recognition", "eval.oos_rejection"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(result.results)
    for i, r in enumerate(result.results):
        scores = r.scores()
        values = [scores[k] or 0.0 for k in keys]
        errors = [scores.get(f"{k}_sd") or 0.0 for k in keys]
        positions = [x + i * width for x in range(len(keys))]
        ax.bar(positions, values, width, yerr=errors, capsize=3, label=r.spec.name)
    ax.set_xticks([x + width * (len(result.results) - 1) / 2 for x in range(len(keys))], keys)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share")
    ax.set_title(f"{result.spec.name}: NLU pipelines (fallback threshold: {result.spec.fallback.threshold})")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def confusion_plot(r: PipelineResult, path: Path) -> None:
    """Eval-set confusion matrix (raw classifier), rows normalised to the label's turns."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    labels = sorted(set(r.eval_predictions.labels) | set(r.eval_predictions.intents))
    fig, ax = plt.subplots(figsize=(12, 11))
    ConfusionMatrixDisplay.from_predictions(
        r.eval_predictions.labels.astype(str),
        r.eval_predictions.intents.astype(str),
        labels=labels,
        normalize="true",
        xticks_rotation="vertical",
        include_values=False,
        ax=ax,
        colorbar=True,
    )
    ax.set_title(f"{r.spec.name}: eval-set confusion (row-normalised)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def intent_table(r: PipelineResult) -> pd.DataFrame:
    from sklearn.metrics import precision_recall_fscore_support

    labels = sorted(set(r.cv_predictions.labels))
    p, rec, f1, n = precision_recall_fscore_support(
        r.cv_predictions.labels, r.cv_predictions.intents, labels=labels, zero_division=0
    )
    return pd.DataFrame({"intent": labels, "precision": p, "recall": rec, "f1": f1, "n": n})


def write_outputs(result: ExperimentResult, out_dir: Path, command: str) -> dict[str, Path]:
    """results.md, results.json, comparison.png and per-pipeline files in `out_dir`; returns them by name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"results.md": out_dir / "results.md", "results.json": out_dir / "results.json"}
    files["results.md"].write_text(markdown(result, command))
    body: dict[str, Any] = {
        "experiment": result.spec.model_dump(),
        "data": result.data,
        "winner": result.winner().spec.name,
        "pipelines": {r.spec.name: {**r.scores(), "train_seconds": r.train_seconds} for r in result.results},
    }
    files["results.json"].write_text(json.dumps(body, indent=2) + "\n")
    files["comparison.png"] = out_dir / "comparison.png"
    comparison_plot(result, files["comparison.png"])
    for r in result.results:
        confusion = out_dir / f"{r.spec.name}.confusion.png"
        confusion_plot(r, confusion)
        table = out_dir / f"{r.spec.name}.intents.csv"
        intent_table(r).to_csv(table, index=False, float_format="%.4f")
        files[confusion.name], files[table.name] = confusion, table
    return files


def log_experiment(result: ExperimentResult, files: dict[str, Path], *, tracking_uri: str, artifact_root: Path) -> str:
    """A parent run for the experiment and a child run per pipeline; returns the parent's run id."""
    import mlflow
    from mlflow.entities import Metric, Param

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    created: list[str] = []
    try:
        experiment_id = experiment_id_of(
            client, result.spec.name, tracking_uri=tracking_uri, artifact_root=artifact_root
        )
        winner = result.winner().spec.name
        parent = client.create_run(
            experiment_id,
            run_name=f"{result.spec.name} ({len(result.results)} pipelines)",
            tags={"winner": winner, "select": result.spec.select, "eval_set_hash": result.data["eval_set_hash"]},
        ).info.run_id
        created.append(parent)
        params = {"folds": result.spec.folds, "seed": result.spec.seed, "fallback": result.spec.fallback}
        client.log_batch(parent, params=[Param(k, str(v)) for k, v in {**params, **result.data}.items()])
        for name in ("results.md", "results.json", "comparison.png"):
            client.log_artifact(parent, str(files[name]))
        for r in result.results:
            child = client.create_run(
                experiment_id,
                run_name=r.spec.name,
                tags={"mlflow.parentRunId": parent, "winner": str(r.spec.name == winner).lower()},
            )
            run_id = child.info.run_id
            created.append(run_id)
            stamp = int(child.info.start_time)
            metrics = [Metric(k, float(v), stamp, 0) for k, v in r.scores().items() if v is not None]
            metrics += [Metric("fold_train_seconds", s, stamp, i) for i, s in enumerate(r.train_seconds[:-1])]
            client.log_batch(
                run_id,
                params=[
                    Param("pipeline", json.dumps(r.spec.pipeline)[:6000]),
                    Param("description", r.spec.description[:500]),
                    *[Param(k, str(v)) for k, v in params.items()],
                ],
                metrics=metrics,
            )
            for name in (f"{r.spec.name}.confusion.png", f"{r.spec.name}.intents.csv"):
                client.log_artifact(run_id, str(files[name]))
            client.set_terminated(run_id, "FINISHED")
        client.set_terminated(parent, "FINISHED")
    except Exception as exc:  # noqa: BLE001 - any MLflow failure: remove what was created and say so
        for run_id in created:
            with contextlib.suppress(Exception):
                client.delete_run(run_id)
        raise TrackingError(
            f"could not log the experiment to MLflow at {tracking_uri}: {type(exc).__name__}: {exc}; "
            "the results are complete on disk, nothing was left in MLflow"
        ) from None
    return parent
