"""The impact dashboard's figures: aggregated counts only, small counts hidden.

Three views, each a table the page draws as a chart and exports as CSV:
- skills revealed: residents (with valid consent today) per skill category and neighbourhood,
  from the statements of their current declaration (a snapshot: the period does not apply);
- proposals per month: made, approved, accepted by the resident, completed (outcome "it happened");
- residents activated for the first time per month: the month of a resident's first "yes".

Every count from 1 to 4 is hidden ("< 5"): a small count in a small neighbourhood can point at a
person. Nothing is ever summed across hidden cells, and no chart shows totals that would let a
reader subtract their way to a hidden cell.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func
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
from web.services.categories import OTHER, categorise, category_labels
from web.services.proposals import with_valid_consent

__all__ = ["OTHER", "categorise", "category_labels"]  # the lexicon's names, used from here too

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

    def contains(self, moment: datetime | None) -> bool:
        return moment is not None and self.start <= _month_of(moment) <= self.end


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


def _month_of(moment: datetime) -> date:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).date().replace(day=1)


def month_label(day: date) -> str:
    return f"{day.month:02d}/{day.year % 100:02d}"


@dataclass
class Table:
    """One chart's data: row labels, column names, raw counts (never shown as they are)."""

    rows: list[str]
    columns: list[str]
    counts: list[list[int]]  # counts[row][column]

    def published(self) -> list[list[int | None]]:
        return [[hide_small(v) for v in row] for row in self.counts]

    def column(self, j: int) -> list[int | None]:
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


def _matches(session: Session, territory_id: int | None) -> list[Any]:
    """The dates and states of proposals (not their explanations: they can be large)."""
    query = select(Match.resident_id, Match.status, Match.created_at,  # type: ignore[call-overload]
                   Match.reviewed_at, Match.answered_at, Match.outcome, Match.outcome_at)
    if territory_id is not None:
        query = query.join(Resident, col(Resident.id) == Match.resident_id).where(
            Resident.territory_id == territory_id)
    return list(session.exec(query).all())


def proposals_per_month(session: Session, territory_id: int | None, period: Period) -> Table:
    """Per month: proposals made, approved by a worker, accepted by the resident, completed."""
    months = period.months()
    index = {m: i for i, m in enumerate(months)}
    counts = [[0] * len(PROPOSAL_COLUMNS) for _ in months]

    def add(moment: datetime | None, column: int) -> None:
        if period.contains(moment) and moment is not None:
            counts[index[_month_of(moment)]][column] += 1

    for m in _matches(session, territory_id):
        add(m.created_at, 0)
        if m.status in APPROVED_OR_LATER:
            add(m.reviewed_at, 1)
        if m.status == MatchStatus.ACCEPTED:
            add(m.answered_at, 2)
            if m.outcome == Outcome.HAPPENED:
                add(m.outcome_at, 3)
    # Proposals of erased people stay counted where they were made (erasure keeps no later dates).
    kept = select(AnonymousCount).where(AnonymousCount.metric == "proposal")
    if territory_id is not None:
        kept = kept.where(AnonymousCount.territory_id == territory_id)
    for row in session.exec(kept).all():
        month = _month(row.month)
        if month is not None and month in index:
            counts[index[month]][0] += row.count
    return Table(rows=[month_label(m) for m in months], columns=[str(c) for c in PROPOSAL_COLUMNS],
                 counts=counts)


def first_activations(session: Session, territory_id: int | None, period: Period) -> Table:
    """Per month: residents who said yes to an opportunity for the first time."""
    first: dict[int, datetime] = {}
    for m in _matches(session, territory_id):
        if m.status == MatchStatus.ACCEPTED and m.answered_at is not None \
                and (m.resident_id not in first or m.answered_at < first[m.resident_id]):
            first[m.resident_id] = m.answered_at
    months = period.months()
    index = {m: i for i, m in enumerate(months)}
    counts = [[0] for _ in months]
    for moment in first.values():
        if period.contains(moment):
            counts[index[_month_of(moment)]][0] += 1
    return Table(rows=[month_label(m) for m in months], columns=[str(_l("personnes"))], counts=counts)


def to_csv(table: Table, row_header: str) -> str:
    """The published table as CSV for French spreadsheets: ";" separated, BOM, "< 5" kept."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow([row_header, *table.columns])
    for label, values in zip(table.rows, table.published(), strict=True):
        writer.writerow([label, *("< 5" if v is None else v for v in values)])
    return out.getvalue()


def territory_choices(session: Session) -> Sequence[Territory]:
    return session.exec(select(Territory).order_by(col(Territory.name))).all()
