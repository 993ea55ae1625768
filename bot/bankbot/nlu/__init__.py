"""Custom Rasa NLU components of the reference bot (referenced from config.yml by their module path)."""

from bankbot.nlu.seeded_svm import SeededSklearnIntentClassifier
from bankbot.nlu.sentence_featurizer import SentenceEmbeddingFeaturizer

__all__ = ["SeededSklearnIntentClassifier", "SentenceEmbeddingFeaturizer"]
