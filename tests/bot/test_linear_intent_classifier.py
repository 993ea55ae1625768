"""The reference bot's intent classifier: averaged logistic regressions on dense features and TF-IDF n-grams,
trained, persisted and loaded through Rasa's own model storage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bankbot.nlu.linear_intent_classifier import LinearIntentClassifier
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

EXAMPLES = {
    "card_lost": ["i lost my card", "my card is missing", "can't find my card", "card gone lost it"],
    "balance": ["what is my balance", "how much money do i have", "show my balance", "balance please"],
    "hours": ["when do you open", "opening hours", "what time do you close", "are you open on sunday"],
}
DIRECTION = {"card_lost": [1.0, 0.0, 0.0], "balance": [0.0, 1.0, 0.0], "hours": [0.0, 0.0, 1.0]}


def message(text: str, dense: list[float] | None, intent: str | None = None) -> Message:
    data: dict[str, Any] = {TEXT: text}
    if intent:
        data[INTENT] = intent
    out = Message(data=data)
    if dense is not None:
        out.add_features(Features(np.asarray([dense], dtype=np.float32), "sentence", TEXT, "dense"))
    return out


def training(with_dense: bool = True, intents: dict[str, list[str]] = EXAMPLES) -> TrainingData:
    rng = np.random.default_rng(0)
    return TrainingData(
        [
            message(t, (np.asarray(DIRECTION[i]) + rng.normal(0, 0.1, 3)).tolist() if with_dense else None, i)
            for i, texts in intents.items()
            for t in texts
        ]
    )


def component(tmp_path: Path, **config: Any) -> tuple[LinearIntentClassifier, LocalModelStorage, Resource]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    storage = LocalModelStorage(tmp_path)
    resource = Resource("classifier")
    full = {**LinearIntentClassifier.get_default_config(), **config}
    context = ExecutionContext(None, node_name="classifier")  # type: ignore[arg-type]
    return LinearIntentClassifier.create(full, storage, resource, context), storage, resource


def test_trains_predicts_a_full_ranking_and_reloads_the_same_model(tmp_path: Path) -> None:
    classifier, storage, resource = component(tmp_path, ranking_length=0)
    classifier.train(training())
    texts = [("i lost my card yesterday", [0.9, 0.1, 0.0]), ("what time do you open", [0.0, 0.1, 0.9])]
    predicted = classifier.process([message(t, d) for t, d in texts])
    assert [m.get(INTENT)["name"] for m in predicted] == ["card_lost", "hours"]
    ranking = predicted[0].get(INTENT_RANKING_KEY)
    confidences = [r["confidence"] for r in ranking]
    assert len(ranking) == 3 and confidences == sorted(confidences, reverse=True)
    assert sum(confidences) == pytest.approx(1.0)
    config = {**LinearIntentClassifier.get_default_config(), "ranking_length": 0}
    context = ExecutionContext(None, node_name="classifier")  # type: ignore[arg-type]
    loaded = LinearIntentClassifier.load(config, storage, resource, context)
    again = loaded.process([message(t, d) for t, d in texts])
    assert [m.get(INTENT_RANKING_KEY) for m in again] == [m.get(INTENT_RANKING_KEY) for m in predicted]


def test_the_lexical_model_alone_needs_no_dense_features_and_the_dense_model_alone_no_words(tmp_path: Path) -> None:
    lexical, _, _ = component(tmp_path / "lex", lexical_weight=1.0)
    lexical.train(training(with_dense=False))
    assert lexical.process([message("opening hours on sunday", None)])[0].get(INTENT)["name"] == "hours"
    dense, _, _ = component(tmp_path / "dense", lexical_weight=0.0)
    dense.train(training())
    assert dense.process([message("zzz", [0.0, 1.0, 0.0])])[0].get(INTENT)["name"] == "balance"


def test_averaging_moves_the_confidence_between_the_two_models(tmp_path: Path) -> None:
    # words say balance, the dense vector says hours: each model alone is sure of its own answer
    probe = ("show my balance", [0.0, 0.0, 1.0])
    seen = {}
    for weight in (0.0, 0.5, 1.0):
        classifier, _, _ = component(tmp_path / str(weight), lexical_weight=weight, ranking_length=0)
        classifier.train(training())
        ranking = classifier.process([message(*probe)])[0].get(INTENT_RANKING_KEY)
        seen[weight] = {r["name"]: r["confidence"] for r in ranking}
    assert max(seen[0.0], key=seen[0.0].get) == "hours" and max(seen[1.0], key=seen[1.0].get) == "balance"
    for intent in EXAMPLES:
        assert seen[0.5][intent] == pytest.approx((seen[0.0][intent] + seen[1.0][intent]) / 2)


def test_a_message_without_dense_features_is_a_clear_error(tmp_path: Path) -> None:
    classifier, _, _ = component(tmp_path)
    with pytest.raises(ValueError, match="no dense sentence features; put a dense featurizer"):
        classifier.train(training(with_dense=False))


def test_fewer_than_two_intents_train_nothing_and_predict_no_intent(tmp_path: Path) -> None:
    classifier, storage, resource = component(tmp_path)
    classifier.train(training(intents={"hours": EXAMPLES["hours"]}))
    assert classifier.process([message("hi", [0.0, 0.0, 1.0])])[0].get(INTENT)["name"] is None
    context = ExecutionContext(None, node_name="classifier")  # type: ignore[arg-type]
    loaded = LinearIntentClassifier.load(LinearIntentClassifier.get_default_config(), storage, resource, context)
    assert loaded.process([message("hi", [0.0, 0.0, 1.0])])[0].get(INTENT_RANKING_KEY) == []


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("C", 0),
        ("lexical_C", -1),
        ("tol", 0),
        ("lexical_weight", 1.5),
        ("word_ngrams", [2, 1]),
        ("char_ngrams", [0, 3]),
    ],
)
def test_out_of_range_options_are_refused_by_name(option: str, value: Any) -> None:
    with pytest.raises(ValueError, match=option):
        LinearIntentClassifier.validate_config({**LinearIntentClassifier.get_default_config(), option: value})


def test_lexical_weight_without_any_ngrams_is_refused() -> None:
    config = {**LinearIntentClassifier.get_default_config(), "word_ngrams": [], "char_ngrams": []}
    with pytest.raises(ValueError, match="needs word_ngrams or char_ngrams"):
        LinearIntentClassifier.validate_config(config)
    LinearIntentClassifier.validate_config({**config, "lexical_weight": 0.0})


def test_a_message_the_featurizer_skipped_gets_no_intent_and_the_others_are_classified(tmp_path: Path) -> None:
    classifier, _, _ = component(tmp_path)
    classifier.train(training())
    empty, real = message("", None), message("what time do you open", [0.0, 0.1, 0.9])
    classifier.process([empty, real])
    assert empty.get(INTENT)["name"] is None and empty.get(INTENT_RANKING_KEY) == []
    assert real.get(INTENT)["name"] == "hours"


def test_a_lexical_model_with_no_ngram_left_names_the_options(tmp_path: Path) -> None:
    classifier, _, _ = component(tmp_path, lexical_weight=1.0, word_ngrams=[], char_min_df=50)
    with pytest.raises(ValueError, match="lower char_min_df"):
        classifier.train(training(with_dense=False))


def test_no_dense_featurizer_is_required_by_the_graph() -> None:
    assert LinearIntentClassifier.required_components() == []


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("C", float("nan")),
        ("C", None),
        ("tol", "x"),
        ("word_ngrams", 2),
        ("word_ngrams", [True, 2]),
        ("ranking_length", -1),
        ("char_min_df", 0),
        ("max_iter", 1.5),
        ("class_weight", "bogus"),
    ],
)
def test_wrong_types_and_nan_are_refused_by_name(option: str, value: Any) -> None:
    with pytest.raises(ValueError, match=option):
        LinearIntentClassifier.validate_config({**LinearIntentClassifier.get_default_config(), option: value})
