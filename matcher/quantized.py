"""Rows of vectors in int8, one float32 scale per row: the hybrid ranker's big USE table.

At 100,000 generated residents the table holds ~262,000 distinct segment vectors (dim 512): 537 MB
in float32, 268 MB in float16, 136 MB here. Each row is scaled so that its largest component is
127, then rounded: a component moves by at most half a step (max|x| / 254, ~6e-4 on a unit USE
vector) and a cosine with a unit query by ~1e-3 at most (~2e-4 typically; measured in
tests/matcher/test_quantized.py). Rows are dequantized into float32 when gathered (candidates).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

_CHUNK = 16_384  # rows quantized at a time (bounds the float32 temporaries)


class Int8Rows:
    """A read-only matrix of int8 codes with one scale per row; indexing gives float32 rows."""

    __slots__ = ("codes", "scales")

    def __init__(self, codes: np.ndarray, scales: np.ndarray) -> None:
        self.codes, self.scales = codes, scales

    @classmethod
    def of(cls, vectors: np.ndarray) -> Int8Rows:
        """The rows of `vectors` (any float dtype), quantized."""
        rows, dim = vectors.shape
        codes = np.empty((rows, dim), np.int8)
        scales = np.empty(rows, np.float32)
        for start in range(0, rows, _CHUNK):
            chunk = np.asarray(vectors[start:start + _CHUNK], np.float32)
            peak = np.abs(chunk).max(axis=1) if dim else np.zeros(len(chunk), np.float32)
            scale = np.where(peak > 0, peak / 127, 1).astype(np.float32)
            codes[start:start + len(chunk)] = np.rint(chunk / scale[:, None])
            scales[start:start + len(chunk)] = scale
        return cls(codes, scales)

    @classmethod
    def concat(cls, tables: Sequence[Int8Rows]) -> Int8Rows:
        return cls(np.concatenate([t.codes for t in tables]), np.concatenate([t.scales for t in tables]))

    def rows(self, index: Any) -> Int8Rows:
        """A subset of the rows, still quantized."""
        return Int8Rows(self.codes[index], self.scales[index])

    def __getitem__(self, index: Any) -> np.ndarray:
        """The rows at `index` (an integer array or a slice), dequantized (2,500 rows of 512: ~1.8
        ms, a float16 gather and conversion ~4.9)."""
        out = self.codes[index].astype(np.float32)
        out *= self.scales[index][..., None]
        return out

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.codes.shape)

    @property
    def nbytes(self) -> int:
        return int(self.codes.nbytes + self.scales.nbytes)


Table = np.ndarray | Int8Rows


def subset(table: Table, index: Any) -> Table:
    """Rows of a table, in its own storage."""
    return table.rows(index) if isinstance(table, Int8Rows) else table[index]


def dense(table: Table) -> np.ndarray:
    """The whole table as a numpy array (float32 when quantized)."""
    return table[:] if isinstance(table, Int8Rows) else table


def joined(tables: Sequence[Table], quantize: bool, dtype: Any = np.float32) -> Table:
    """The tables' rows one after the other: quantized, or as a `dtype` array (a lone table
    already so is returned as it is, not copied)."""
    if len(tables) == 1:
        lone = tables[0]
        if isinstance(lone, Int8Rows) and quantize:
            return lone
        if isinstance(lone, np.ndarray) and not quantize:
            return lone.astype(dtype, copy=False)
    if quantize:
        return Int8Rows.concat([t if isinstance(t, Int8Rows) else Int8Rows.of(t) for t in tables])
    return np.concatenate([dense(t) for t in tables]).astype(dtype, copy=False)
