"""The index's row maps against plain dicts, across many compactions and renumberings."""

from __future__ import annotations

import random

import numpy as np
import pytest

from matcher import rowmap
from matcher.rowmap import DigestMap, RowMap


@pytest.fixture(autouse=True)
def small_recent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rowmap, "RECENT_MIN", 8)
    monkeypatch.setattr(rowmap, "RECENT_SHARE", 4)


def check(held: RowMap, model: dict[int, int], rows: int, rng: random.Random) -> None:
    assert len(held) == len(model)
    holders: dict[int, list[int]] = {}
    for item_id, row in sorted(model.items()):
        holders.setdefault(row, []).append(item_id)
    assert held.live_rows == len(holders)
    assert held.rows().tolist() == sorted(holders)
    for row in range(rows):
        assert held.is_live(row) == (row in holders)
        assert held.holders(row).tolist() == holders.get(row, [])
        assert held.holders(row, 2).tolist() == holders.get(row, [])[:2]
    probe = sorted(set(rng.sample(range(300), 60)) | set(list(model)[:10]))
    assert held.rows_of(np.array(probe, np.int64)).tolist() == [model.get(i, -1) for i in probe]
    assert [held.get(i) for i in probe] == [model.get(i) for i in probe]
    live = sorted(holders)
    if live:
        asked = np.array(rng.sample(live, min(6, len(live))), np.int64)
        for limit in (None, 1, 3):
            ids, counts = held.expand(asked, limit)
            want = [holders[r] if limit is None else holders[r][:limit] for r in asked.tolist()]
            assert counts.tolist() == [len(w) for w in want]
            assert ids.tolist() == [i for w in want for i in w]


@pytest.mark.parametrize("seed", range(6))
def test_row_map_behaves_as_a_dict(seed: int) -> None:
    rng = random.Random(seed)
    held, model, rows = RowMap(), {}, 40
    for step in range(1500):
        item_id = rng.randrange(300)
        if item_id in model and rng.random() < 0.5:
            assert held.detach(item_id) == model.pop(item_id)
        elif item_id not in model:
            row = rng.randrange(rows)
            held.attach(np.array([item_id]), np.array([row]))
            model[item_id] = row
        else:
            assert held.detach(item_id + 1000) is None
        if step % 97 == 0:
            check(held, model, rows, rng)
        if step % 401 == 400:  # the index drops its dead rows and renumbers the live ones
            live = sorted(set(model.values()))
            new_row = np.full(rows, -1, np.int64)
            new_row[live] = np.arange(len(live))
            held.renumber(new_row)
            model = {i: int(new_row[r]) for i, r in model.items()}
            check(held, model, rows, rng)
    ids, table_rows = held.table()
    assert dict(zip(ids.tolist(), table_rows.tolist(), strict=True)) == model
    rebuilt = RowMap.of(ids[::-1].copy(), table_rows[::-1].copy())
    check(rebuilt, model, rows, rng)


def test_digest_map_recent_entries_win_and_dead_rows_go() -> None:
    digests = DigestMap.of(np.array([5, 1, 9], np.uint64), np.array([0, 1, 2]))
    assert [digests.get(k) for k in (1, 5, 9, 7)] == [1, 0, 2, None]
    digests.set(np.array([5, 2**64 - 1], np.uint64), np.array([3, 4]))
    assert digests.rows_of(np.array([1, 5, 7, 2**64 - 1], np.uint64)).tolist() == [1, 3, -1, 4]
    assert digests.get(5) == 3 and digests.get(2**64 - 1) == 4
    digests.renumber(np.array([-1, 0, 1, 2, 3]))  # row 0 died; the others move down by one
    assert [digests.get(k) for k in (1, 5, 9, 2**64 - 1)] == [0, 2, 1, 3]
    assert len(digests) == 4
    digests.set(np.arange(10, 110, dtype=np.uint64), np.arange(4, 104))
    assert digests.crowded


def test_attaching_many_at_once_sorts_each_rows_holders() -> None:
    held = RowMap()
    held.attach(np.array([9, 3, 7, 1]), np.array([2, 0, 2, 2]))
    held.attach(np.array([5]), np.array([2]))
    assert held.holders(2).tolist() == [1, 5, 7, 9] and held.holders(0).tolist() == [3]
    assert held.live_rows == 2 and len(held) == 5
    ids, counts = held.expand(np.array([2, 0]), 2)
    assert ids.tolist() == [1, 5, 3] and counts.tolist() == [2, 1]
