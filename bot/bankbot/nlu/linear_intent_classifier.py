"""An intent classifier for Rasa 3.6's NLU pipeline: two multinomial logistic regressions, one on dense sentence
features and one on TF-IDF word and character n-grams, whose probabilities are averaged.

Why this shape (measured in bench/results/hwu64.md and by `make experiment`): a frozen sentence encoder with a
linear classifier is a strong intent baseline (Casanueva et al. 2020, "Efficient Intent Detection with Dual
Sentence Encoders", ACL NLP4ConvAI), and lexical n-grams recover what the encoder blurs: names of products,
merchants, digits and typos. Logistic regression gives a probability per intent directly (softmax of the linear
scores), so there is no calibration step: Rasa's SVC(probability=True) fits Platt scaling by 5-fold
cross-validation inside a grid search over C, which is where most of its training time went. Two models averaged
(a product-of-experts-style late fusion) rather than one on the joined features: on the HWU64 split the joined
model took five times as long to fit (the sparse and dense blocks condition lbfgs badly) for the same accuracy.

- The dense model sees the sentence features of every dense featurizer before this component, concatenated
  (e.g. bankbot.nlu.SentenceEmbeddingFeaturizer: 384 values, or 384 per pooled layer), with L2 strength 1/`C`.
- The lexical model sees TF-IDF of word n-grams (`word_ngrams`) and of character n-grams within word boundaries
  (`char_ngrams`, kept if in at least `char_min_df` training texts), sublinear term frequency, rows L2-normalised
  (scikit-learn's TfidfVectorizer), with L2 strength 1/`lexical_C`.
- P(intent) = (1 - `lexical_weight`) * P_dense + `lexical_weight` * P_lexical; `lexical_weight: 0` fits no lexical
  model, `1` ignores the dense one.

Both are scikit-learn's LogisticRegression (lbfgs, `tol`, `max_iter`, `class_weight`), deterministic for the same
inputs. The ranking holds the `ranking_length` most likely intents with their probabilities (which sum to one over
all intents). A model trained on fewer than two intents predicts nothing (intent None), as Rasa's own classifiers
do.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)

MODEL_FILE = "linear_intent_classifier.joblib"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class LinearIntentClassifier(GraphComponent, IntentClassifier):
    """Logistic regressions on dense sentence features and on TF-IDF n-grams, averaged (see the module doc)."""

    @classmethod
    def required_components(cls) -> list[type]:
        # None: with `lexical_weight: 1` no dense featurizer is needed; otherwise training says so if one is missing.
        return []

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            "C": 1.0,  # inverse L2 strength of the dense model
            "lexical_C": 10.0,  # inverse L2 strength of the lexical model
            "lexical_weight": 0.5,  # share of the lexical model in the averaged probabilities (0: dense only)
            "word_ngrams": [1, 2],  # [min, max] word n-gram lengths; [] for none
            "char_ngrams": [2, 5],  # [min, max] char n-gram lengths within word boundaries; [] for none
            "char_min_df": 2,  # a char n-gram must occur in at least this many training texts
            "class_weight": None,  # or "balanced": weigh intents inversely to their number of examples
            "max_iter": 3000,  # lbfgs iterations
            "tol": 1e-4,  # lbfgs stopping tolerance
            "ranking_length": 10,  # intents in the ranking (0: all)
        }

    @staticmethod
    def required_packages() -> list[str]:
        return ["sklearn", "joblib"]

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        """Raises ValueError naming the option if a value is of the wrong type or out of bounds."""

        def number(key: str) -> float:
            try:
                return float(config[key])
            except (TypeError, ValueError):
                raise ValueError(f"LinearIntentClassifier: {key} must be a number, got {config[key]!r}") from None

        for key in ("C", "lexical_C", "tol"):
            if not number(key) > 0:  # also refuses NaN
                raise ValueError(f"LinearIntentClassifier: {key} must be > 0, got {config[key]!r}")
        if not 0 <= number("lexical_weight") <= 1:
            raise ValueError(
                f"LinearIntentClassifier: lexical_weight must be in [0, 1], got {config['lexical_weight']!r}"
            )
        for key in ("word_ngrams", "char_ngrams"):
            value = config[key]
            if value and not (
                isinstance(value, list | tuple)
                and len(value) == 2
                and all(isinstance(x, int) and not isinstance(x, bool) for x in value)
                and 1 <= value[0] <= value[1]
            ):
                raise ValueError(
                    f"LinearIntentClassifier: {key} must be [] or [min, max] with 1 <= min <= max, got {value!r}"
                )
        if float(config["lexical_weight"]) > 0 and not (config["word_ngrams"] or config["char_ngrams"]):
            raise ValueError("LinearIntentClassifier: lexical_weight > 0 needs word_ngrams or char_ngrams")
        for key, low in (("char_min_df", 1), ("ranking_length", 0), ("max_iter", 1)):
            value = config[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"LinearIntentClassifier: {key} must be an integer >= {low}, got {value!r}")
        if config["class_weight"] not in (None, "balanced") and not isinstance(config["class_weight"], dict):
            raise ValueError(
                'LinearIntentClassifier: class_weight must be null, "balanced" or a mapping of intent to weight, '
                f"got {config['class_weight']!r}"
            )

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> LinearIntentClassifier:
        cls.validate_config(config)
        return cls(config, model_storage, resource)

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        fitted: dict[str, Any] | None = None,
    ) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._fitted = fitted  # {"dense": LogisticRegression | None, "vectorizers": [...], "lexical": ... | None}

    def _weights(self) -> tuple[float, float]:
        lexical = float(self._config["lexical_weight"])
        return 1.0 - lexical, lexical

    def _vectorizers(self) -> list[Any]:
        from sklearn.feature_extraction.text import TfidfVectorizer

        out = []
        if self._config["word_ngrams"]:
            low, high = self._config["word_ngrams"]
            out.append(TfidfVectorizer(ngram_range=(int(low), int(high)), sublinear_tf=True))
        if self._config["char_ngrams"]:
            low, high = self._config["char_ngrams"]
            out.append(
                TfidfVectorizer(
                    analyzer="char_wb",
                    ngram_range=(int(low), int(high)),
                    sublinear_tf=True,
                    min_df=int(self._config["char_min_df"]),
                )
            )
        return out

    def _classifier(self, strength: float) -> Any:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(
            C=strength,
            class_weight=self._config["class_weight"],
            max_iter=int(self._config["max_iter"]),
            tol=float(self._config["tol"]),
        )

    @staticmethod
    def _lexical_features(messages: list[Message], vectorizers: list[Any], fit: bool = False) -> Any:
        """The (len(messages), n_ngrams) CSR matrix of TF-IDF word and char n-grams."""
        from scipy import sparse

        texts = [m.get(TEXT) or "" for m in messages]
        blocks = [v.fit_transform(texts) if fit else v.transform(texts) for v in vectorizers]
        return sparse.hstack(blocks, format="csr")

    def train(self, training_data: TrainingData) -> Resource:
        """Fits the vectorizers and both models on the intent examples; persists them; returns the resource.

        Raises ValueError if the dense model is used and an example has no dense sentence features.
        """
        examples = training_data.intent_examples
        labels = [m.get(INTENT) for m in examples]
        if len(set(labels)) < 2:
            logger.warning("LinearIntentClassifier: need examples of at least two intents; not training.")
            return self._resource
        dense_weight, lexical_weight = self._weights()
        fitted: dict[str, Any] = {"dense": None, "vectorizers": [], "lexical": None}
        if dense_weight > 0:
            fitted["dense"] = self._classifier(float(self._config["C"]))
            fitted["dense"].fit(_dense_features(examples), labels)
        if lexical_weight > 0:
            fitted["vectorizers"] = self._vectorizers()
            fitted["lexical"] = self._classifier(float(self._config["lexical_C"]))
            try:
                lexical = self._lexical_features(examples, fitted["vectorizers"], fit=True)
            except ValueError as error:  # scikit-learn: "empty vocabulary", "After pruning, no terms remain"
                raise ValueError(
                    f"LinearIntentClassifier: no n-gram survives in the training texts ({error}); lower char_min_df, "
                    "widen word_ngrams/char_ngrams, or set lexical_weight: 0"
                ) from error
            fitted["lexical"].fit(lexical, labels)
        self._fitted = fitted
        self.persist()
        return self._resource

    def _probabilities(self, messages: list[Message]) -> tuple[np.ndarray, np.ndarray]:
        """(intent names, (len(messages), n_intents) averaged probabilities); both models share the label order."""
        fitted = self._fitted or {}
        dense_weight, lexical_weight = self._weights()
        total: np.ndarray | None = None
        classes: np.ndarray | None = None
        for model, weight, features in (
            (fitted.get("dense"), dense_weight, lambda: _dense_features(messages)),
            (fitted.get("lexical"), lexical_weight, lambda: self._lexical_features(messages, fitted["vectorizers"])),
        ):
            if model is None or weight == 0:
                continue
            part = weight * model.predict_proba(features())
            total = part if total is None else total + part
            classes = model.classes_
        assert total is not None and classes is not None  # train fits every model whose weight is > 0
        return classes, total  # the weights sum to one

    def process(self, messages: list[Message]) -> list[Message]:
        """Sets `intent` and `intent_ranking` on each message (in place, batched); returns the messages."""
        if not messages:
            return messages
        if self._fitted is None:
            for message in messages:
                message.set(INTENT, {INTENT_NAME_KEY: None, PREDICTED_CONFIDENCE_KEY: 0.0}, add_to_output=True)
                message.set(INTENT_RANKING_KEY, [], add_to_output=True)
            return messages
        dense_used = self._fitted.get("dense") is not None
        unfeaturized = [m for m in messages if dense_used and m.get_dense_features(TEXT)[1] is None]
        for message in unfeaturized:  # e.g. an empty text, which the featurizer skips: nothing to classify
            message.set(INTENT, {INTENT_NAME_KEY: None, PREDICTED_CONFIDENCE_KEY: 0.0}, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [], add_to_output=True)
        skipped = {id(m) for m in unfeaturized}
        todo = [m for m in messages if id(m) not in skipped]
        if not todo:
            return messages
        classes, probabilities = self._probabilities(todo)
        length = int(self._config["ranking_length"]) or len(classes)
        for message, row in zip(todo, probabilities, strict=True):
            order = np.argsort(-row, kind="stable")[:length]
            ranking = [{INTENT_NAME_KEY: str(classes[i]), PREDICTED_CONFIDENCE_KEY: float(row[i])} for i in order]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages

    def persist(self) -> None:
        import joblib

        with self._model_storage.write_to(self._resource) as directory:
            joblib.dump(self._fitted, directory / MODEL_FILE)

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> LinearIntentClassifier:
        """The trained component, or an untrained one (predicting no intent) if nothing was persisted."""
        import joblib

        try:
            with model_storage.read_from(resource) as directory:
                path = directory / MODEL_FILE
                fitted = joblib.load(path) if path.exists() else None
        except ValueError:  # Rasa raises it when the resource has no directory (nothing was trained)
            fitted = None
        return cls(config, model_storage, resource, fitted)


def _dense_features(messages: list[Message]) -> np.ndarray:
    """The (len(messages), n_dense) array of the messages' dense sentence features."""
    return np.stack([_sentence_features(m) for m in messages])


def _sentence_features(message: Message) -> np.ndarray:
    """The message's dense sentence features (all dense featurizers', concatenated) as a 1-D float array.

    Raises ValueError if the message has none: a dense featurizer must run before this component.
    """
    _, sentence = message.get_dense_features(TEXT)
    if sentence is None:
        raise ValueError(
            "LinearIntentClassifier: the message has no dense sentence features; put a dense featurizer "
            "(e.g. bankbot.nlu.SentenceEmbeddingFeaturizer) before it in the pipeline, or set lexical_weight: 1"
        )
    return np.asarray(sentence.features, dtype=np.float64).reshape(-1)
