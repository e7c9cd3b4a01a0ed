"""int8 rows: cosines close to float32's, subsets and joins keep the codes."""

from __future__ import annotations

import numpy as np

from matcher.embeddings import get_embedder
from matcher.quantized import Int8Rows, dense, joined, subset

SENTENCES = [
    "Je couds depuis toute petite, c'est ma mère qui m'a appris au pays",
    "atelier couture pour les femmes du quartier", "je répare les vélos et les téléphones",
    "Je parle arabe, tamazight et français", "je cuisine pour quarante aux mariages",
    "accompagner les familles chez le médecin", "cherche une salle gratuite le samedi",
    "je garde les enfants le soir", "I can drive a van", "jsais conduire g le permis",
]


def test_cosines_of_real_sentence_vectors_stay_within_a_thousandth() -> None:
    vectors = get_embedder().encode(SENTENCES)
    table = Int8Rows.of(vectors)
    assert table.codes.dtype == np.int8 and table.shape == vectors.shape
    assert table.nbytes == vectors.size + 4 * len(vectors)
    exact = vectors @ vectors.T
    approx = vectors @ table[:].T
    assert np.abs(approx - exact).max() < 1e-3
    assert np.abs(table[:] - vectors).max() <= (np.abs(vectors).max(axis=1) / 254 + 1e-7).max()
    # Two neighbours of a query further apart than twice the error bound keep their order.
    kept = 0
    for row in range(len(vectors)):
        for a in range(len(vectors)):
            for b in range(len(vectors)):
                if exact[row, a] > exact[row, b] + 2e-3:
                    assert approx[row, a] > approx[row, b]
                    kept += 1
    assert kept > len(vectors) ** 3 / 3

def test_random_rows_subsets_and_joins() -> None:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(40_000, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors[5] = 0  # an empty row stays empty
    table = Int8Rows.of(vectors)
    assert np.abs(table[:] - vectors).max() < 3e-3 and not table[5].any()
    picked = np.array([7, 39_999, 0, 7])
    np.testing.assert_array_equal(subset(table, picked)[:], table[picked])
    both = joined([subset(table, picked), vectors[:3]], quantize=True)
    assert isinstance(both, Int8Rows) and len(both) == 7
    np.testing.assert_array_equal(both[4:], table[:3])
    plain = joined([subset(table, picked), vectors[:3].astype(np.float16)], quantize=False, dtype=np.float32)
    assert isinstance(plain, np.ndarray) and plain.dtype == np.float32
    np.testing.assert_array_equal(plain[:4], table[picked])
    np.testing.assert_array_equal(dense(vectors), vectors)
    again = Int8Rows.of(table[:])  # rounding rounded rows changes nothing
    np.testing.assert_array_equal(again.codes, table.codes)
    np.testing.assert_allclose(again.scales, table.scales, rtol=1e-6)
