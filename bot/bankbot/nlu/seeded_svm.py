"""Rasa's SklearnIntentClassifier (a linear SVM chosen by grid search over C) with a fixed random seed.

The stock component builds `SVC(probability=True)` without a `random_state`, so libsvm's Platt scaling draws its
internal cross-validation folds at random and every training run gives slightly different confidences. The bot's
release gate compares runs conversation by conversation; a retrain of unchanged inputs must give the same bot.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.classifiers.sklearn_intent_classifier import SklearnIntentClassifier


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class SeededSklearnIntentClassifier(SklearnIntentClassifier):
    """SklearnIntentClassifier whose SVM is seeded by `random_seed` (default 42)."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {**SklearnIntentClassifier.get_default_config(), "random_seed": 42}

    def _create_classifier(self, num_threads: int, y: np.ndarray) -> Any:
        search = super()._create_classifier(num_threads, y)
        search.estimator.set_params(random_state=int(self.component_config["random_seed"]))
        return search
