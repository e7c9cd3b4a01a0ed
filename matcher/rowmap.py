"""The bookkeeping of a `VectorIndex` (matcher.index) in numpy arrays rather than Python dicts.

A `VectorIndex` stores each distinct vector once, in a row, and keeps which ids hold which row
(`RowMap`) and which row holds a vector (`DigestMap`, by a 64-bit hash of its float16 bytes). As
three dicts of Python ints (id -> row, row -> sorted ids, digest -> row) they took 106 MB per
process at 100,000 generated residents (466,075 ids, 177,865 rows); as sorted arrays ~19 MB
(466,000 ids on 178,000 rows: 16.4 MB for the row map, 3.0 MB for the hashes).

Both maps are a compacted part (sorted arrays, searched with `np.searchsorted`) and the entries
written since the last compaction (small dicts). An id leaving the compacted part is marked there
(row -1). A compaction (one sort: ~0.1 s at 500,000 ids) folds the recent entries in once they,
with the marked ones, pass 1/RECENT_SHARE of the entries (or RECENT_MIN), and before the whole
table is read.
"""

from __future__ import annotations

import numpy as np

RECENT_SHARE = 16
RECENT_MIN = 2_048
_NONE = np.zeros(0, np.int64)


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique by sorting (numpy 2.4's np.unique hashes: 0.18 s for 400,000 ids, sorting 5 ms)."""
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


def lookup(keys: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """For each of `wanted`, the value beside it in `keys` (sorted, distinct), -1 if absent."""
    out = np.full(len(wanted), -1, np.int64)
    if len(keys) and len(wanted):
        at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
        hit = keys[at] == wanted
        out[hit] = values[at[hit]]
    return out


def overlay(out: np.ndarray, wanted: np.ndarray, recent: dict[int, int]) -> np.ndarray:
    """`out` (a `lookup` of `wanted`) with the entries written since the compaction put over it."""
    if not recent:
        return out
    for i, key in enumerate(wanted.tolist()):
        value = recent.get(key)
        if value is not None:
            out[i] = value
    return out


def _ragged(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The positions starts[i] .. starts[i] + counts[i] - 1 of every i, concatenated."""
    total = int(counts.sum())
    if not total:
        return _NONE
    offsets = np.cumsum(counts) - counts
    return np.arange(total) + np.repeat(starts - offsets, counts)


class RowMap:
    """Which ids hold which row: id -> row (one each) and row -> its ids (sorted).

    Compacted part: `_ids` sorted with their `_rows` (-1 once an id left), and by row: `_order`
    (positions sorted by row, then id) with `_by_row` (the rows as they were at compaction).
    `_per_row` counts the ids of every row: a row no id holds is not live."""

    def __init__(self) -> None:
        self._ids = _NONE
        self._rows = _NONE
        self._order = _NONE
        self._by_row = _NONE
        self._left = 0  # entries of the compacted part marked -1 since
        self._recent: dict[int, int] = {}
        self._recent_holders: dict[int, list[int]] = {}
        self._per_row = np.zeros(0, np.int32)
        self._count = 0
        self._live = 0

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        """Ids held."""
        return self._count

    @property
    def live_rows(self) -> int:
        """Rows held by at least one id."""
        return self._live

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, int | np.integer) and self.get(int(item_id)) is not None

    def is_live(self, row: int) -> bool:
        return 0 <= row < len(self._per_row) and self._per_row[row] > 0

    def get(self, item_id: int) -> int | None:
        """The row `item_id` holds, or None."""
        row = self._recent.get(item_id)
        if row is not None:
            return row
        at = int(np.searchsorted(self._ids, item_id))
        if at < len(self._ids) and self._ids[at] == item_id and self._rows[at] >= 0:
            return int(self._rows[at])
        return None

    def rows_of(self, wanted: np.ndarray) -> np.ndarray:
        """The row of each of `wanted` (sorted, distinct ids), -1 for an id not held."""
        out = lookup(self._ids, self._rows, wanted)
        if len(wanted) <= len(self._recent):
            return overlay(out, wanted, self._recent)
        if self._recent:  # many ids wanted: the recent ones looked up among them instead
            ids = np.fromiter(self._recent.keys(), np.int64, len(self._recent))
            rows = np.fromiter(self._recent.values(), np.int64, len(self._recent))
            at = np.minimum(np.searchsorted(wanted, ids), len(wanted) - 1)
            hit = wanted[at] == ids
            out[at[hit]] = rows[hit]
        return out

    def holders(self, row: int, limit: int | None = None) -> np.ndarray:
        """The ids holding `row`, sorted (the `limit` smallest when given: a row of a sentence
        thousands of residents wrote is not listed whole for a top 10)."""
        lo, hi = np.searchsorted(self._by_row, [row, row + 1])
        positions = self._order[lo:hi]
        held = self._ids[positions[self._rows[positions] == row]]
        recent = self._recent_holders.get(row)
        if recent:
            extra = np.asarray(recent if limit is None else recent[:limit], np.int64)
            held = np.sort(np.concatenate([held if limit is None else held[:limit], extra]))
        return held if limit is None else held[:limit]

    def expand(self, rows: np.ndarray, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ids holding each of `rows` (live rows), each row's sorted and at most `limit` of
        them (the smallest ids) when given: the ids concatenated, and how many each row gave."""
        rows = np.asarray(rows, np.int64)
        lo = np.searchsorted(self._by_row, rows, side="left")
        span = np.searchsorted(self._by_row, rows, side="right") - lo
        take = span if limit is None else np.minimum(span, limit)
        positions = self._order[_ragged(lo, take)]
        ids = self._ids[positions]
        moved = self._rows[positions] != np.repeat(rows, take)
        special = set(np.repeat(np.arange(len(rows)), take)[moved].tolist()) if moved.any() else set()
        if self._recent_holders:
            special.update(i for i, row in enumerate(rows.tolist()) if row in self._recent_holders)
        if not special:
            return ids, take
        # Rows an id left, or recent ids joined, since the compaction: those rows one at a time.
        parts, counts = [], take.copy()
        ends = np.cumsum(take)
        for i, row in enumerate(rows.tolist()):
            if i in special:
                part = self.holders(row, limit)
                counts[i] = len(part)
            else:
                part = ids[ends[i] - take[i]:ends[i]]
            parts.append(part)
        return (np.concatenate(parts) if parts else _NONE), counts

    def table(self) -> tuple[np.ndarray, np.ndarray]:
        """Every id held (sorted) and its row."""
        self.compact()
        return self._ids, self._rows

    def rows(self) -> np.ndarray:
        """The live rows, sorted."""
        return np.flatnonzero(self._per_row > 0)

    @property
    def nbytes(self) -> int:
        """Approximate bytes held (arrays, and ~150 per recent entry)."""
        arrays = (self._ids, self._rows, self._order, self._by_row, self._per_row)
        return sum(int(a.nbytes) for a in arrays) + 150 * len(self._recent)

    # ------------------------------------------------------------------ writing

    def attach(self, ids: np.ndarray, rows: np.ndarray) -> None:
        """Each of `ids` (distinct, none held) now holds the row beside it."""
        if not len(ids):
            return
        for item_id, row in zip(ids.tolist(), rows.tolist(), strict=True):
            self._recent[item_id] = row
            self._recent_holders.setdefault(row, []).append(item_id)
        touched = sorted_unique(rows)
        for row in touched.tolist():
            holders = self._recent_holders[row]
            if len(holders) > 1:
                holders.sort()
        if touched[-1] >= len(self._per_row):
            grown = np.zeros(max(int(touched[-1]) + 1, 2 * len(self._per_row)), np.int32)
            grown[:len(self._per_row)] = self._per_row
            self._per_row = grown
        before = np.count_nonzero(self._per_row[touched])
        np.add.at(self._per_row, rows, 1)
        self._live += len(touched) - int(before)
        self._count += len(ids)
        self._maybe_compact()

    def detach(self, item_id: int) -> int | None:
        """`item_id` holds nothing any more; the row it held (None if it held none)."""
        row = self._recent.pop(item_id, None)
        if row is not None:
            holders = self._recent_holders[row]
            holders.remove(item_id)
            if not holders:
                del self._recent_holders[row]
        else:
            at = int(np.searchsorted(self._ids, item_id))
            if at == len(self._ids) or self._ids[at] != item_id or self._rows[at] < 0:
                return None
            row = int(self._rows[at])
            self._rows[at] = -1
            self._left += 1
        self._per_row[row] -= 1
        if self._per_row[row] == 0:
            self._live -= 1
        self._count -= 1
        self._maybe_compact()
        return row

    def renumber(self, new_row: np.ndarray) -> None:
        """Rows move: row r becomes new_row[r] (increasing over the live rows, -1 elsewhere)."""
        self.compact()
        live = self._per_row > 0
        self._rows = new_row[self._rows] if len(self._rows) else _NONE
        self._by_row = self._rows[self._order]
        self._per_row = self._per_row[np.flatnonzero(live)]

    def compact(self) -> None:
        """Fold the recent entries into the sorted arrays."""
        if not self._recent and not self._left:
            return
        keep = self._rows >= 0
        ids = np.concatenate([self._ids[keep], np.fromiter(self._recent.keys(), np.int64, len(self._recent))])
        rows = np.concatenate([self._rows[keep],
                               np.fromiter(self._recent.values(), np.int64, len(self._recent))])
        self._arrange(ids, rows)
        self._recent, self._recent_holders, self._left = {}, {}, 0

    def _arrange(self, ids: np.ndarray, rows: np.ndarray) -> None:
        """The compacted part holding ids[i] on rows[i] (ids distinct, in any order)."""
        order = np.argsort(ids, kind="stable")
        self._ids, self._rows = ids[order].astype(np.int64), rows[order].astype(np.int64)
        self._order = np.lexsort((self._ids, self._rows))
        self._by_row = self._rows[self._order]

    def _maybe_compact(self) -> None:
        if len(self._recent) + self._left > max(RECENT_MIN, self._count // RECENT_SHARE):
            self.compact()

    @classmethod
    def of(cls, ids: np.ndarray, rows: np.ndarray) -> RowMap:
        """A map holding ids[i] on rows[i] (ids distinct)."""
        held = cls()
        held._arrange(ids, rows)
        held._per_row = np.bincount(held._rows, minlength=0).astype(np.int32) if len(rows) else held._per_row
        held._count, held._live = len(ids), int(np.count_nonzero(held._per_row))
        return held


class DigestMap:
    """Hash of a vector -> the row that stored it. Entries of rows no longer live are not removed
    (the caller checks the row); a compaction or `renumber` drops them."""

    def __init__(self) -> None:
        self._keys = np.zeros(0, np.uint64)
        self._rows = _NONE
        self._recent: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._keys) + len(self._recent)

    def get(self, key: int) -> int | None:
        row = self._recent.get(key)
        if row is not None:
            return row
        at = int(np.searchsorted(self._keys, np.uint64(key)))
        if at < len(self._keys) and int(self._keys[at]) == key:
            return int(self._rows[at])
        return None

    def rows_of(self, keys: np.ndarray) -> np.ndarray:
        """`get` for each of `keys` (uint64), -1 for a key not held."""
        return overlay(lookup(self._keys, self._rows, keys), keys, self._recent)

    def set(self, keys: np.ndarray, rows: np.ndarray) -> None:
        """rows[i] stores the vector hashed keys[i]."""
        self._recent.update(zip(keys.tolist(), rows.tolist(), strict=True))

    @property
    def crowded(self) -> bool:
        """Time to fold the recent entries in (`renumber`, dropping the dead rows' entries)."""
        return len(self._recent) > max(RECENT_MIN, len(self._keys) // RECENT_SHARE)

    @property
    def nbytes(self) -> int:
        """Approximate bytes held (arrays, and ~100 per recent entry)."""
        return int(self._keys.nbytes + self._rows.nbytes) + 100 * len(self._recent)

    def renumber(self, new_row: np.ndarray) -> None:
        """Rows move (row r becomes new_row[r], -1: gone); the recent entries are folded in."""
        keys = np.concatenate([self._keys, np.fromiter(self._recent.keys(), np.uint64, len(self._recent))])
        rows = np.concatenate([self._rows, np.fromiter(self._recent.values(), np.int64, len(self._recent))])
        inside = rows < len(new_row)
        rows = np.where(inside, new_row[np.where(inside, rows, 0)], -1) if len(rows) else rows
        self._recent = {}
        keep = rows >= 0
        self._set(keys[keep], rows[keep])

    def _set(self, keys: np.ndarray, rows: np.ndarray) -> None:
        # The last entry of a key wins (a recent one over a compacted one).
        order = np.lexsort((np.arange(len(keys)), keys))
        keys, rows = keys[order], rows[order]
        last = np.ones(len(keys), bool)
        last[:-1] = keys[1:] != keys[:-1]
        self._keys, self._rows = keys[last], rows[last]

    @classmethod
    def of(cls, keys: np.ndarray, rows: np.ndarray) -> DigestMap:
        made = cls()
        made._set(np.asarray(keys, np.uint64), np.asarray(rows, np.int64))
        return made
