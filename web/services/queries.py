"""Query helpers the pages and the API share: a query's row count, a numbered page of it, rows by
id, and the ids a query selects as a subquery (never as a list: past 65,535 ids a list passes
PostgreSQL's parameters per statement)."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import func
from sqlmodel import Session, col, select, update

from models import User
from web.services import AlreadyDone

T = TypeVar("T")

MAX_ID = 2**31 - 1  # both engines' integer keys (PostgreSQL's integer)
_DIGITS = re.compile(r"[0-9]{1,10}")  # ASCII: "²".isdigit() is true, and int("²") fails


def row_id(raw: str | None) -> int | None:
    """A row id typed into a form or an address: 1 to MAX_ID, else None."""
    text = (raw or "").strip()
    if not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


def update_if(session: Session, row: Any, state: Any, expected: Any, *also: Any, **values: Any) -> bool:
    """Write `values` on `row` only if the database still holds `expected` in its `state` column
    (and the conditions `also` hold): one conditional UPDATE, for a decision two people may take
    at once from what they both read (the second must not write over the first). Written: `row`
    is refreshed. Not: the session is rolled back (its other pending changes with it) and False
    is returned."""
    table = type(row)
    written = session.exec(update(table).where(col(table.id) == row.id, state == expected, *also)
                           .values(**values))
    if written.rowcount != 1:
        session.rollback()
        return False
    session.refresh(row)
    return True


def count_rows(session: Session, query: Any) -> int:
    """How many rows `query` gives (its order ignored)."""
    return int(session.exec(select(func.count()).select_from(query.order_by(None).subquery())).one())


@dataclass
class Page(Generic[T]):
    items: list[T]
    total: int  # rows of the whole query
    page: int  # from 1
    pages: int


def numbered_page(session: Session, query: Any, page: int, per_page: int) -> Page[Any]:
    """Page `page` of `query` (which gives the order), kept within the pages there are."""
    total = count_rows(session, query)
    pages = max(1, -(-total // per_page))
    page = min(max(page, 1), pages)
    items = list(session.exec(query.offset((page - 1) * per_page).limit(per_page)).all())
    return Page(items, total, page, pages)


def ids_subquery(query: Any, table: Any) -> Any:
    """The ids of `table` that a query of its rows selects, as a subquery for `IN`."""
    return query.with_only_columns(col(table.id)).order_by(None)


def rows_by_id(session: Session, table: Any, ids: Collection[int] | Any) -> dict[int, Any]:
    """Rows of `table` by id, for ids given as a collection or a subquery."""
    return {row.id or 0: row for row in session.exec(select(table).where(col(table.id).in_(ids))).all()}


REPOST_MINUTES = 10  # the same thing sent again by the same person within this is the same thing


def written_once(session: Session, author: Any, twin: Callable[[int | None], int | None],
                 add: Callable[[], Any]) -> Any:
    """`add()` (rows added, not committed), unless `twin` finds the same thing written moments ago
    by `author`: then AlreadyDone, nothing written. `twin(besides)` looks for it (`besides`: the
    id `add` just gave, to leave out). Two copies sent at once both pass the first look: on
    PostgreSQL the author's row, locked until the commit, lines them up; on SQLite the insert waits
    for the other's commit. Either way the second look, after the insert, sees the first copy."""
    if (found := twin(None)) is not None:
        raise AlreadyDone(found)
    session.exec(select(User.id).where(col(User.id) == author.id).with_for_update())
    row = add()
    if (found := twin(row.id)) is not None:
        session.rollback()
        raise AlreadyDone(found)
    return row
