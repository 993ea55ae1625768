"""The dense featurizer: word pieces aligned with Rasa's tokens, and real MiniLM features on real Rasa messages."""

from __future__ import annotations

import numpy as np
import pytest
from bankbot.nlu.sentence_featurizer import SentenceEmbeddingFeaturizer, token_vectors
from rasa.engine.graph import ExecutionContext
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData


def test_each_token_gets_the_mean_of_the_word_pieces_overlapping_it() -> None:
    tokens = [Token("unblock", 0), Token("it", 8)]
    offsets = [(0, 0), (0, 2), (2, 7), (8, 10), (0, 0)]  # [CLS] un ##block it [SEP]
    pieces = np.array([[9.0, 9.0], [1.0, 0.0], [3.0, 2.0], [5.0, 5.0], [9.0, 9.0]])
    assert token_vectors(tokens, offsets, pieces).tolist() == [[2.0, 1.0], [5.0, 5.0]]


def test_a_token_no_piece_covers_gets_zeros() -> None:
    assert token_vectors([Token("x", 20)], [(0, 3)], np.ones((1, 2))).tolist() == [[0.0, 0.0]]


def test_messages_get_sequence_and_sentence_features_that_separate_meanings() -> None:
    tokenizer = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())
    featurizer = SentenceEmbeddingFeaturizer(
        SentenceEmbeddingFeaturizer.get_default_config(),
        ExecutionContext(None, node_name="dense"),  # type: ignore[arg-type]
    )
    texts = ["my card was stolen", "someone took my card", "what time do you open"]
    messages = [Message(data={TEXT: t}) for t in texts]
    tokenizer.process(messages)
    featurizer.process(messages)
    sequence, sentence = messages[0].get_dense_features(TEXT)
    assert sequence.features.shape == (4, 384) and sentence.features.shape == (1, 384)
    vectors = np.vstack([m.get_dense_features(TEXT)[1].features for m in messages])
    similar, different = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > 0.5 > different


def test_inference_runs_the_encoder_on_one_torch_thread_and_training_on_torchs_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch
    from bankbot.nlu.sentence_featurizer import MODEL_PACKAGE, load_model

    model = load_model(MODEL_PACKAGE)
    seen: list[int] = []
    forward = model.forward
    monkeypatch.setattr(model, "forward", lambda *a, **k: seen.append(torch.get_num_threads()) or forward(*a, **k))
    tokenizer = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())
    featurizer = SentenceEmbeddingFeaturizer(
        SentenceEmbeddingFeaturizer.get_default_config(),
        ExecutionContext(None, node_name="dense"),  # type: ignore[arg-type]
    )
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        message = Message(data={TEXT: "my card was stolen"})
        tokenizer.process([message])
        featurizer.process([message])
        assert torch.get_num_threads() == 2
        training = TrainingData([Message(data={TEXT: "someone took my card"})])
        tokenizer.process(training.training_examples)
        featurizer.process_training_data(training)
    finally:
        torch.set_num_threads(before)
    assert seen == [1, 2]


def test_encode_gives_the_tensors_of_sentence_transformers_encode_bit_for_bit() -> None:
    import torch
    from bankbot.nlu.sentence_featurizer import ENCODE_BATCH, MODEL_PACKAGE, encode, load_model

    model = load_model(MODEL_PACKAGE)
    sentence = "my card was stolen yesterday at the station and I need a new one before friday please"
    words = sentence.split(" ")
    texts = [" ".join(words[: 1 + (i * 7) % len(words)]) for i in range(ENCODE_BATCH + 9)]  # two batches, ties
    ours = encode(model, texts)
    theirs = model.encode(texts, output_value=None, show_progress_bar=False)
    assert len(ours) == len(theirs) == len(texts)
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine.keys() == reference.keys()
        assert all(torch.equal(mine[name], reference[name]) for name in mine)


def test_pooled_layers_are_unit_length_means_of_each_hidden_layer_over_the_real_pieces() -> None:
    import torch
    from bankbot.nlu.sentence_featurizer import pooled_layers

    hidden = (torch.zeros(3, 2), torch.tensor([[3.0, 4.0], [0.0, 2.0], [100.0, 100.0]]))  # last row is padding
    row = {"all_layer_embeddings": hidden, "attention_mask": torch.tensor([1, 1, 0])}
    assert np.allclose(pooled_layers(row, [1]), np.array([[1.5, 3.0]]) / np.hypot(1.5, 3.0))
    assert pooled_layers(row, [0, 1]).shape == (1, 4)
    with pytest.raises(IndexError, match="layer 2 is not in 0..1"):
        pooled_layers(row, [2])


def test_pooled_layers_give_one_unit_vector_per_layer_from_the_real_model() -> None:
    config = {**SentenceEmbeddingFeaturizer.get_default_config(), "pooled_layers": [2, 4, 6]}
    tokenizer = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())
    featurizer = SentenceEmbeddingFeaturizer(config, ExecutionContext(None, node_name="dense"))  # type: ignore[arg-type]
    messages = [Message(data={TEXT: t}) for t in ["my card was stolen", "what time do you open", "hi"]]
    tokenizer.process(messages)
    featurizer.process(messages)
    sentence = messages[0].get_dense_features(TEXT)[1].features.reshape(3, 384)
    assert np.allclose(np.linalg.norm(sentence, axis=1), 1.0, atol=1e-5)
    # batched and one at a time give the same features (padding is masked out)
    alone = [Message(data={TEXT: "my card was stolen"})]
    tokenizer.process(alone)
    featurizer.process(alone)
    assert np.allclose(
        alone[0].get_dense_features(TEXT)[1].features, messages[0].get_dense_features(TEXT)[1].features, atol=1e-5
    )


@pytest.mark.parametrize("layers", [[-1], [2, 2], "2"])
def test_pooled_layers_config_is_checked(layers: object) -> None:
    with pytest.raises(ValueError, match="pooled_layers"):
        SentenceEmbeddingFeaturizer.validate_config({"pooled_layers": layers})


@pytest.mark.parametrize("layers", [[True], 0, {}, (2, 3)])
def test_pooled_layers_must_be_a_list_of_ints(layers: object) -> None:
    with pytest.raises(ValueError, match="pooled_layers"):
        SentenceEmbeddingFeaturizer.validate_config({"pooled_layers": layers})


def test_no_pooled_layers_is_the_sentence_embedding() -> None:
    SentenceEmbeddingFeaturizer.validate_config({"pooled_layers": None})
    SentenceEmbeddingFeaturizer.validate_config({"pooled_layers": []})
