"""Custom Rasa NLU components of the reference bot (referenced from config.yml by their module path).

Rasa imports this package whenever it loads the bot's model, so it also installs the bot's fixes to Rasa's
per-turn work (bankbot.nlu.rasa_speedups), which change no decision, only the time a turn takes.
"""

from bankbot.nlu import rasa_speedups
from bankbot.nlu.linear_intent_classifier import LinearIntentClassifier
from bankbot.nlu.seeded_svm import SeededSklearnIntentClassifier
from bankbot.nlu.sentence_featurizer import SentenceEmbeddingFeaturizer

rasa_speedups.install()

__all__ = ["LinearIntentClassifier", "SeededSklearnIntentClassifier", "SentenceEmbeddingFeaturizer"]
