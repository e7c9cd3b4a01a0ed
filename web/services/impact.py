"""The impact dashboard's figures: aggregated counts only, small counts hidden.

Three views, each a table the page draws as a chart and exports as CSV:
- skills revealed: residents (with valid consent today) per skill category and neighbourhood,
  from the statements of their current declaration (a snapshot: the period does not apply);
- proposals per month: made, approved, accepted by the resident, completed (outcome "it happened");
- residents activated for the first time per month: the month of a resident's first "yes".

Every count from 1 to 4 is hidden ("< 5"): a small count in a small neighbourhood can point at a
person. Nothing is ever summed across hidden cells. The monthly views have a total (every
neighbourhood) beside each neighbourhood's own: one neighbourhood's hidden count would be the total
minus the others', so hidden counts come at least two at a time in a month's column, the smallest
others masked too (« masqué ») until the hidden ones add up to 5 or more (`_masked`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, null
from sqlmodel import Session, col, select

from models import (
    AnonymousCount,
    Match,
    MatchStatus,
    Outcome,
    Resident,
    SkillDeclaration,
    SkillStatement,
    Territory,
)
from web.services import spreadsheet_cell
from web.services.categories import category_labels
from web.services.charts import MASKED, Value
from web.services.proposals import with_valid_consent

SMALL_COUNT = 5  # counts under this are hidden
MAX_MONTHS = 60

def hide_small(value: int) -> int | None:
    """A count as published: None (shown "< 5") from 1 to 4."""
    return None if 0 < value < SMALL_COUNT else value


@dataclass(frozen=True)
class Period:
    """Whole months, from `start` (first day) to `end` (first day of the last month)."""

    start: date
    end: date

    @classmethod
    def parse(cls, start: str | None, end: str | None, today: date) -> Period:
        """From "YYYY-MM" strings; default the last 12 months; at most MAX_MONTHS."""
        last = _month(end) or today.replace(day=1)
        first = _month(start) or _add_months(last, -11)
        if first > last:
            first, last = last, first
        if _months_between(first, last) >= MAX_MONTHS:
            first = _add_months(last, -(MAX_MONTHS - 1))
        return cls(first, last)

    def months(self) -> list[date]:
        return [_add_months(self.start, i) for i in range(_months_between(self.start, self.end) + 1)]


def _month(text: str | None) -> date | None:
    if not text or not re.fullmatch(r"\d{4}-\d{2}", text):
        return None
    year, month = int(text[:4]), int(text[5:])
    return date(year, month, 1) if 1 <= month <= 12 and 2000 <= year <= 2100 else None


def _add_months(day: date, n: int) -> date:
    index = day.year * 12 + day.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def _months_between(a: date, b: date) -> int:
    return (b.year - a.year) * 12 + b.month - a.month


def month_label(day: date) -> str:
    return f"{day.month:02d}/{day.year % 100:02d}"


@dataclass
class Table:
    """One chart's data: row labels, column names, raw counts (never shown as they are)."""

    rows: list[str]
    columns: list[str]
    counts: list[list[int]]  # counts[row][column]
    masked: set[tuple[int, int]] = field(default_factory=set)  # (row, column) hidden, though not small

    def published(self) -> list[list[Value]]:
        return [[MASKED if (i, j) in self.masked else hide_small(v) for j, v in enumerate(row)]
                for i, row in enumerate(self.counts)]

    def column(self, j: int) -> list[Value]:
        return [row[j] for row in self.published()]


def skills_by_category(session: Session, territory_id: int | None, today: date) -> Table:
    """Residents with valid consent per skill category (rows) and neighbourhood (columns),
    counted in SQL from each statement's category (stored when the statement is written)."""
    territories = session.exec(select(Territory).order_by(col(Territory.name))).all()
    if territory_id is not None:
        territories = [t for t in territories if t.id == territory_id]
    query = (select(SkillStatement.category, Resident.territory_id,  # type: ignore[call-overload]
                    func.count(func.distinct(SkillStatement.resident_id)))
             .join(SkillDeclaration, col(SkillDeclaration.id) == SkillStatement.declaration_id)
             .join(Resident, col(Resident.id) == SkillStatement.resident_id)
             .where(col(SkillDeclaration.is_current).is_(True), col(SkillStatement.negated).is_(False),
                    with_valid_consent(today))
             .group_by(col(SkillStatement.category), col(Resident.territory_id)))
    if territory_id is not None:
        query = query.where(Resident.territory_id == territory_id)
    people: dict[tuple[str, int], int] = {(k, tid): n for k, tid, n in session.exec(query).all()}
    labels = category_labels()
    keys = [k for k in labels if any((k, t.id) in people for t in territories)]
    return Table(rows=[labels[k] for k in keys], columns=[t.name for t in territories],
                 counts=[[people.get((k, t.id or 0), 0) for t in territories] for k in keys])


PROPOSAL_COLUMNS = (_l("faites"), _l("validées"), _l("acceptées"), _l("réalisées"))
APPROVED_OR_LATER = (MatchStatus.APPROVED, MatchStatus.ACCEPTED, MatchStatus.DECLINED)


def _month_sql(session: Session, moment: Any) -> Any:
    """A UTC timestamp's month as "YYYY-MM", in SQL (SQLite keeps ISO text in UTC)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", moment), "YYYY-MM")
    return func.substr(moment, 1, 7)


PerTerritory = dict[str, dict[int | None, int]]  # "YYYY-MM" -> neighbourhood -> count


def _bounds(period: Period) -> tuple[datetime, datetime]:
    """The period's instants, UTC: from its first month's first day to the next month's after it."""
    return (datetime.combine(period.start, time(), UTC),
            datetime.combine(_add_months(period.end, 1), time(), UTC))


def _per_month(session: Session, moment: Any, period: Period, by_territory: bool, *where: Any
               ) -> PerTerritory:
    """Matches of the period counted by the month of `moment` (and by their resident's
    neighbourhood when `by_territory`; else under None), by the database."""
    month = _month_sql(session, moment)
    start, end = _bounds(period)
    within = (col(moment) >= start, col(moment) < end, *where)
    query: Any
    if by_territory:
        query = (select(month, Resident.territory_id, func.count()).select_from(Match)
                 .join(Resident, col(Resident.id) == Match.resident_id)
                 .where(*within).group_by(month, col(Resident.territory_id)))
    else:
        query = select(month, null(), func.count()).select_from(Match).where(*within).group_by(month)
    out: PerTerritory = {}
    for key, territory, n in session.exec(query).all():
        out.setdefault(key, {})[territory] = int(n)
    return out


def _masked(cells: dict[int | None, int]) -> set[int | None]:
    """The neighbourhoods whose count of one month's column is hidden though not small: beside
    the total, a count hidden alone is the total minus the others'. The smallest others are
    masked until at least two are hidden and the hidden ones add up to SMALL_COUNT."""
    hidden = {t for t, n in cells.items() if 0 < n < SMALL_COUNT}
    if not hidden:
        return set()
    others = sorted((n, t is None, t or 0) for t, n in cells.items() if n >= SMALL_COUNT)
    masked: set[int | None] = set()
    while others and (len(hidden | masked) < 2 or sum(cells[t] for t in hidden | masked) < SMALL_COUNT):
        _n, unknown, territory = others.pop(0)
        masked.add(None if unknown else territory)
    return masked


def _monthly(columns: Sequence[PerTerritory], names: Sequence[str], territory_id: int | None,
             months: list[date]) -> Table:
    """Months (rows) × columns: every neighbourhood's total, or one neighbourhood's counts with
    the ones `_masked` hides."""
    counts: list[list[int]] = []
    masked: set[tuple[int, int]] = set()
    for i, m in enumerate(months):
        key = f"{m.year:04d}-{m.month:02d}"
        row = []
        for j, column in enumerate(columns):
            cells = column.get(key, {})
            if territory_id is None:
                row.append(sum(cells.values()))
            else:
                row.append(cells.get(territory_id, 0))
                if territory_id in _masked(cells):
                    masked.add((i, j))
        counts.append(row)
    return Table(rows=[month_label(m) for m in months], columns=list(names), counts=counts, masked=masked)


def proposals_per_month(session: Session, territory_id: int | None, period: Period) -> Table:
    """Per month: proposals made, approved by a worker, accepted by the resident, completed."""
    accepted = Match.status == MatchStatus.ACCEPTED
    split = territory_id is not None  # the total needs no neighbourhood: no join then
    columns = [
        _per_month(session, Match.created_at, period, split),
        _per_month(session, Match.reviewed_at, period, split, col(Match.status).in_(APPROVED_OR_LATER)),
        _per_month(session, Match.answered_at, period, split, accepted),
        _per_month(session, Match.outcome_at, period, split, accepted, Match.outcome == Outcome.HAPPENED),
    ]
    # Proposals of erased people stay counted where they were made (erasure keeps no later dates).
    kept = (select(AnonymousCount.month, AnonymousCount.territory_id, func.sum(AnonymousCount.count))
            .where(AnonymousCount.metric == "proposal")
            .group_by(col(AnonymousCount.month), col(AnonymousCount.territory_id)))
    for month, territory, count in session.exec(kept).all():
        cells = columns[0].setdefault(month, {})
        cells[territory] = cells.get(territory, 0) + int(count)
    return _monthly(columns, [str(c) for c in PROPOSAL_COLUMNS], territory_id, period.months())


def first_activations(session: Session, territory_id: int | None, period: Period) -> Table:
    """Per month: residents who said yes to an opportunity for the first time."""
    first = (select(Match.resident_id, func.min(Match.answered_at).label("first"))
             .where(Match.status == MatchStatus.ACCEPTED, col(Match.answered_at).is_not(None))
             .group_by(col(Match.resident_id))).subquery()
    month = _month_sql(session, first.c.first)
    start, end = _bounds(period)
    counted: PerTerritory = {}
    for key, territory, n in session.exec(
            select(month, Resident.territory_id, func.count()).select_from(first)
            .join(Resident, col(Resident.id) == first.c.resident_id)
            .where(first.c.first >= start, first.c.first < end)
            .group_by(month, col(Resident.territory_id))).all():
        counted.setdefault(key, {})[territory] = int(n)
    return _monthly([counted], [str(_l("personnes"))], territory_id, period.months())


def to_csv(table: Table, row_header: str) -> str:
    """The published table as CSV for French spreadsheets: ";" separated, BOM, "< 5" kept."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    # Neighbourhood names are typed by admins: none may run as a formula.
    writer.writerow([spreadsheet_cell(row_header), *map(spreadsheet_cell, table.columns)])
    for label, values in zip(table.rows, table.published(), strict=True):
        writer.writerow([spreadsheet_cell(label), *("< 5" if v is None else v for v in values)])
    return out.getvalue()


def territory_choices(session: Session) -> Sequence[Territory]:
    return session.exec(select(Territory).order_by(col(Territory.name))).all()
