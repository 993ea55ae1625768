"""NLU pipeline experiments: scores with the fallback applied, the tuned threshold, folds, and the spec's checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from intent_project import project

from harness.errors import InputError
from harness.project.intents import load_catalog
from harness.trainer.experiment import examples_of, fold_indices, load_spec, training_yaml
from harness.trainer.nlu_scores import Predictions, score, tune_threshold


def predictions(rows: list[tuple[str, str, float, float]]) -> Predictions:
    labels, intents, confidence, runner_up = zip(*rows, strict=True)
    return Predictions(
        np.array(labels, dtype=object), np.array(intents, dtype=object), np.array(confidence), np.array(runner_up)
    )


ROWS = [
    ("greet", "greet", 0.9, 0.05),  # recognised
    ("greet", "greet", 0.4, 0.1),  # right but below 0.5: falls back
    ("fees", "greet", 0.8, 0.1),  # wrong
    ("fees", "fees", 0.6, 0.58),  # right, but ambiguous (margin 0.02 < 0.05)
    ("out_of_scope", "fees", 0.7, 0.1),  # falsely accepted
    ("out_of_scope", "fees", 0.3, 0.2),  # rejected by the fallback
    ("out_of_scope", "out_of_scope", 0.9, 0.0),  # rejected as out of scope
]


def test_scores_apply_the_fallback_like_rasas_fallback_classifier() -> None:
    s = score(predictions(ROWS), threshold=0.5, ambiguity_threshold=0.05)
    assert (s.recognition.hits, s.recognition.n) == (1, 4)
    assert (s.oos_rejection.hits, s.oos_rejection.n) == (2, 3)
    assert (s.accuracy.hits, s.accuracy.n) == (4, 7)  # raw: the fallback does not matter
    low, high = s.recognition.interval
    assert low < 0.25 < high


def test_the_tuned_threshold_is_the_best_recognition_within_the_false_acceptance_limit() -> None:
    p = predictions(ROWS)
    # false acceptance 1/3 until the threshold passes 0.7; the best recognition then is at 0.75 (greet 0.9 only)
    assert tune_threshold(p, max_false_acceptance=0.0, ambiguity_threshold=0.05) == 0.75
    # allowing 1/3, the lowest threshold that rejects the 0.3 out-of-scope text keeps greet at 0.4 too
    assert tune_threshold(p, max_false_acceptance=0.34, ambiguity_threshold=0.05) == 0.35


def test_folds_are_stratified_deterministic_and_cover_every_example_once(tmp_path: Path) -> None:
    labels = ["a"] * 10 + ["b"] * 5
    folds = fold_indices(labels, 5, seed=1)
    assert sorted(np.concatenate(folds).tolist()) == list(range(15))
    assert all(sum(labels[i] == "b" for i in f) == 1 for f in folds)
    assert [f.tolist() for f in folds] == [f.tolist() for f in fold_indices(labels, 5, seed=1)]


def test_training_data_of_a_fold_holds_only_its_examples(tmp_path: Path) -> None:
    catalog = load_catalog(project(tmp_path) / "intents")
    examples = examples_of(catalog)
    nlu = yaml.safe_load(training_yaml(catalog, examples[:2]))["nlu"]
    assert nlu == [{"intent": "card_lost", "examples": "- I lost my card\n- my card is gone\n"}]


def test_a_pipeline_with_its_own_fallback_or_an_unknown_score_is_rejected(tmp_path: Path) -> None:
    spec = tmp_path / "exp.yml"
    spec.write_text(
        "version: 1\nname: x\nfallback: {threshold: tuned}\nselect: eval.speed\npipelines:\n"
        "  - name: a\n    description: d\n    pipeline: [{name: WhitespaceTokenizer}, {name: FallbackClassifier}]\n"
    )
    with pytest.raises(InputError) as caught:
        load_spec(spec)
    problems = "\n".join(caught.value.problems)
    assert "leave FallbackClassifier out" in problems and "unknown score 'eval.speed'" in problems


def test_the_committed_experiment_file_is_valid() -> None:
    spec = load_spec(Path(__file__).parents[2] / "experiments" / "nlu_pipelines.yml")
    assert [p.name for p in spec.pipelines] == [
        "diet_sparse",
        "diet_dense",
        "sklearn_embeddings",
        "linear_layers",
        "linear_layers_lexical",
    ]


def test_the_quick_experiment_is_the_full_one_without_diet() -> None:
    experiments = Path(__file__).parents[2] / "experiments"
    full, quick = load_spec(experiments / "nlu_pipelines.yml"), load_spec(experiments / "nlu_pipelines_linear.yml")
    assert quick.pipelines == [p for p in full.pipelines if not p.name.startswith("diet")]
    assert (quick.folds, quick.seed, quick.fallback, quick.select) == (
        full.folds,
        full.seed,
        full.fallback,
        full.select,
    )
