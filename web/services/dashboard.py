"""What a social worker should look at today, and the residents they follow, a page at a time.

Everything here is asked of the database about the followed residents as a subquery, and each list
is cut to what a page shows, with its total: an admin follows every resident of the site (reading
100,000 residents to draw the home page took 9.5 s and made a 13 MB page).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import and_, func
from sqlmodel import Session, col, exists, select

from models import Consent, Match, MatchStatus, Need, NeedStatus, Resident, ValidationStatus
from models.tables import fold
from web.services.privacy import open_requests, retention_warnings
from web.services.proposals import reviewable
from web.services.queries import Page, count_rows, ids_subquery, numbered_page, rows_by_id
from web.services.validation import Submissions

T = TypeVar("T")

EXPIRY_NOTICE_DAYS = 30
SHOWN = 12  # names shown in each of the home page's panels ("and N others" after)
PAGE_SIZE = 50  # residents per page of the list


@dataclass
class Shortlist(Generic[T]):
    """The first items of a list, and how many there are in all."""

    items: list[T]
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.items)


@dataclass
class WorkerDashboard:
    followed: int  # residents followed
    validated: int  # of which in matching (the others wait for validation: no opportunity yet)
    pending: int  # proposals waiting for review
    without_opportunity: Shortlist[Resident]  # validated, never approved for anything
    needs_without_candidate: Shortlist[Need]  # open needs nobody was proposed for
    expiring: Shortlist[tuple[Resident, date]]  # consents ending within EXPIRY_NOTICE_DAYS
    to_validate: Submissions = field(default_factory=Submissions)  # from habitants-relais


def _shortlist(session: Session, query: Any, limit: int = SHOWN) -> Shortlist[Any]:
    """The first `limit` rows of `query` and how many it has, in one reading: the total is a window
    count over the rows before the limit (at 100,000 residents the list and a separate count each
    walked the same rows). A query of one table reads ids and the count first, then those rows:
    the window keeps every row it counts, ids only are cheap to keep."""
    described = query.column_descriptions
    table = described[0]["entity"] if len(described) == 1 else None
    if table is None:
        rows = session.execute(query.add_columns(func.count().over()).limit(limit)).all()
        return Shortlist([tuple(row[:-1]) for row in rows], int(rows[0][-1]) if rows else 0)
    rows = session.execute(query.with_only_columns(col(table.id), func.count().over()).limit(limit)).all()
    found = rows_by_id(session, table, [i for i, _ in rows])
    return Shortlist([found[i] for i, _ in rows], int(rows[0][-1]) if rows else 0)


# The home page's panels that name residents, each with its whole list a page at a time below
# ("and N others" leads there): the `liste` argument of the page.
WITHOUT_OPPORTUNITY = "sans-proposition"
CONSENT_ENDING = "consentement"
RETENTION_WARNED = "anonymisation"


def _without_opportunity() -> Any:
    """Validated residents never approved for anything (proposed or rejected only)."""
    opportunity = exists().where(col(Match.resident_id) == Resident.id, col(Match.status).not_in(
        (MatchStatus.PROPOSED, MatchStatus.REJECTED)))
    return and_(col(Resident.validation_status) == ValidationStatus.VALIDATED, ~opportunity)


def _latest_end() -> Any:
    return func.max(Consent.expires_on)


def _consents_in_force() -> tuple[Any, ...]:
    return col(Consent.withdrawn_at).is_(None), col(Consent.expires_on).is_not(None)


def _ending_soon(today: date) -> tuple[Any, ...]:
    """A resident's latest consent end (grouped per resident) falls within the notice period."""
    return _latest_end() >= today, _latest_end() <= today + timedelta(days=EXPIRY_NOTICE_DAYS)


def consent_ends_soon(consent: Consent | None, today: date) -> bool:
    """`_ending_soon` for one consent (the profile page's offer to renew): in force, and its end
    within the notice period."""
    return bool(consent and consent.withdrawn_at is None and consent.expires_on is not None
                and today <= consent.expires_on <= today + timedelta(days=EXPIRY_NOTICE_DAYS))


def list_condition(name: str, today: date) -> Any:
    """The condition on Resident of one of the panels' lists (WITHOUT_OPPORTUNITY, CONSENT_ENDING,
    RETENTION_WARNED), or None for any other name (every resident)."""
    if name == WITHOUT_OPPORTUNITY:
        return _without_opportunity()
    if name == CONSENT_ENDING:
        return col(Resident.id).in_(select(col(Consent.resident_id)).where(*_consents_in_force())
                                    .group_by(col(Consent.resident_id)).having(*_ending_soon(today)))
    if name == RETENTION_WARNED:
        return col(Resident.retention_warned_at).is_not(None)
    return None


def _needs_without_candidate() -> Any:
    """Open needs nobody was proposed for (a rejected proposal does not count), oldest first."""
    candidate = exists().where(col(Match.need_id) == Need.id, col(Match.status) != MatchStatus.REJECTED)
    return (select(Need).where(Need.status == NeedStatus.OPEN,
                               Need.validation_status == ValidationStatus.VALIDATED, ~candidate)
            .order_by(col(Need.created_at), col(Need.id)))


def needs_without_candidate_page(session: Session, page: int) -> Page[Need]:
    """A page of the needs without a candidate (the home panel's whole list)."""
    return numbered_page(session, _needs_without_candidate(), page, PAGE_SIZE)


def worker_dashboard(session: Session, followed: Any, today: date,
                     to_validate: Submissions | None = None) -> WorkerDashboard:
    """The panels of the worker's home page about the residents they follow (`followed`, a query
    of Resident rows; profiles waiting for validation are only in `to_validate`: they cannot have
    an opportunity yet)."""
    ids = ids_subquery(followed, Resident)
    pending = session.exec(select(func.count()).select_from(Match).where(  # as the review desk counts
        col(Match.resident_id).in_(reviewable(followed, today)), Match.status == MatchStatus.PROPOSED)).one()
    without = (select(Resident).where(col(Resident.id).in_(ids), _without_opportunity())
               .order_by(col(Resident.first_name), col(Resident.id)))
    lonely = _needs_without_candidate()
    # A resident's latest consent end, when it falls within the notice period.
    ending = (select(Resident, _latest_end())
              .join(Consent, col(Consent.resident_id) == Resident.id)
              .where(col(Resident.id).in_(ids), *_consents_in_force())
              .group_by(col(Resident.id)).having(*_ending_soon(today))
              .order_by(_latest_end(), col(Resident.id)))
    expiring = _shortlist(session, ending, limit=50)
    return WorkerDashboard(
        followed=count_rows(session, followed),
        validated=count_rows(session, followed.where(
            col(Resident.validation_status) == ValidationStatus.VALIDATED)),
        pending=pending,
        without_opportunity=_shortlist(session, without),
        needs_without_candidate=_shortlist(session, lonely),
        expiring=Shortlist([(r, _as_date(day)) for r, day in expiring.items], expiring.total),
        to_validate=to_validate or Submissions(),
    )


def _as_date(value: Any) -> date:
    """A date from SQL's max() (SQLite gives its ISO text back)."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))


@dataclass
class ResidentPage:
    """One page of the followed residents, by first name, optionally those whose name starts so."""

    residents: Sequence[Resident]
    total: int
    page: int
    pages: int
    name: str
    subset: str = ""  # one of the panels' lists (list_condition), or every followed resident


def resident_page(session: Session, followed: Any, page: int, name: str = "", subset: str = "",
                  today: date | None = None) -> ResidentPage:
    """A page of the followed residents, optionally of one of the home panels' lists (`subset`, an
    unknown name meaning all) and of the names starting with `name`."""
    name = name.strip()[:60]
    query = select(Resident).where(col(Resident.id).in_(ids_subquery(followed, Resident)))
    condition = list_condition(subset, today or date.today())
    if condition is None:
        subset = ""
    else:
        query = query.where(condition)
    if name:
        key = fold(name)
        escaped = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(col(Resident.name_key).like(f"{escaped}%", escape="\\"))
    found = numbered_page(session, query.order_by(col(Resident.first_name), col(Resident.id)),
                          page, PAGE_SIZE)
    return ResidentPage(found.items, found.total, found.page, found.pages, name, subset)


def privacy_panel(session: Session, followed: Any, grace_days: int) -> dict[str, Any]:
    """Open requests of the followed residents and the first profiles the retention run warned
    about (with how many in all), with the names to show (the dashboard's privacy panel)."""
    ids = ids_subquery(followed, Resident)
    requests = open_requests(session, ids)
    warned = _shortlist(session, select(Resident).where(
        col(Resident.id).in_(ids), list_condition(RETENTION_WARNED, date.today()))
        .order_by(col(Resident.retention_warned_at), col(Resident.id)), limit=50)
    named = warned.items + list(session.exec(select(Resident).where(
        col(Resident.id).in_({r.resident_id for r in requests}))).all())
    return {"requests": requests, "warnings": retention_warnings(warned.items, grace_days),
            "more_warnings": warned.more, "names": {r.id: r.public_name for r in named}}
