"""The review workflow: a social worker approves or rejects, then the resident answers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlmodel import Session, col, select

from models import (
    Match,
    MatchStatus,
    Need,
    Organisation,
    RejectionReason,
    Resident,
    Territory,
    User,
    utcnow,
)
from web.services import ServiceError
from web.services.audit import record
from web.services.notifications import opportunity_approved, resident_answered
from web.services.proposals import forget_review_floor

MAX_REASON_CHARS = 1000


def approve(session: Session, reviewer: User, match: Match) -> None:
    """Make a proposal visible to the resident and the association."""
    _approve(session, reviewer, match)
    session.commit()
    forget_review_floor(session)


def bulk_approve(session: Session, reviewer: User, matches: Sequence[Match]) -> int:
    """Approve several proposals in one transaction: all of them, or none when one was already
    reviewed (one audit event per proposal). The caller checked the reviewer may review each."""
    if not matches:
        raise ServiceError(_l("Cochez au moins une proposition."))
    if any(m.status != MatchStatus.PROPOSED for m in matches):
        raise ServiceError(_l("Une des propositions cochées a déjà été examinée : rien n'a été "
                              "validé. Rechargez la page."))
    for match in matches:
        _approve(session, reviewer, match)
    session.commit()
    forget_review_floor(session)
    return len(matches)


def _approve(session: Session, reviewer: User, match: Match) -> None:
    if match.status != MatchStatus.PROPOSED:
        raise ServiceError(_l("Cette proposition a déjà été examinée."))
    match.status = MatchStatus.APPROVED
    match.reviewed_by_id, match.reviewed_at = reviewer.id, utcnow()
    session.add(match)
    record(session, reviewer, "match.approve", "match", match.id)
    opportunity_approved(session, match)


def reject(session: Session, reviewer: User, match: Match, code: str, note: str = "") -> None:
    """Set a proposal aside with a reason code (and a note), kept as a labelled pair."""
    if match.status != MatchStatus.PROPOSED:
        raise ServiceError(_l("Cette proposition a déjà été examinée."))
    note = note.strip()
    if code not in set(RejectionReason) or (code == RejectionReason.OTHER and not note):
        raise ServiceError(_l("Indiquez la raison du refus."))
    if len(note) > MAX_REASON_CHARS:
        raise ServiceError(_l("La raison est trop longue (1 000 caractères au plus)."))
    match.status = MatchStatus.REJECTED
    match.rejection_code, match.rejection_note = code, note or None
    match.reviewed_by_id, match.reviewed_at = reviewer.id, utcnow()
    session.add(match)
    # The note stays on the proposal (erased with it); the append-only audit never holds free text.
    record(session, reviewer, "match.reject", "match", match.id, code=code, has_note=bool(note))
    session.commit()
    forget_review_floor(session)


def answer(session: Session, resident_user: User, match: Match, accept: bool,
           comment: str = "") -> None:
    """The resident says yes or no to an approved opportunity."""
    if match.status != MatchStatus.APPROVED:
        raise ServiceError(_l("Vous avez déjà répondu à cette proposition."))
    match.status = MatchStatus.ACCEPTED if accept else MatchStatus.DECLINED
    match.answered_at = utcnow()
    match.resident_comment = comment.strip()[:MAX_REASON_CHARS] or None
    session.add(match)
    record(session, resident_user, "match.accept" if accept else "match.decline", "match", match.id)
    resident_answered(session, match)
    session.commit()


# ---------------------------------------------------------------- the review desk and timelines

FILTER_ARGS = {"territory_id": "quartier", "need_id": "besoin", "organisation_id": "structure"}


@dataclass(frozen=True)
class ReviewFilters:
    """The review desk's filters, read from and written back to the query string."""

    territory_id: int | None = None  # the resident's neighbourhood
    need_id: int | None = None
    organisation_id: int | None = None  # the structure that posted the need

    @classmethod
    def parse(cls, args: Mapping[str, str]) -> ReviewFilters:
        """Filters from GET parameters; anything that is not a positive id is ignored."""
        values: dict[str, int | None] = {}
        for name, arg in FILTER_ARGS.items():
            raw = (args.get(arg) or "").strip()
            values[name] = int(raw) if raw.isdigit() and 0 < int(raw) < 2**31 else None
        return cls(**values)

    def query_args(self) -> dict[str, Any]:
        """The parameters to keep in links and redirects (only the filters set)."""
        return {arg: value for name, arg in FILTER_ARGS.items()
                if (value := getattr(self, name)) is not None}

    def __bool__(self) -> bool:
        return bool(self.query_args())


@dataclass
class ReviewQueue:
    proposals: list[Match]  # waiting for review, after the filters, best first
    total: int  # waiting for review, before the filters
    residents: dict[int, Resident]
    needs: dict[int, Need]
    organisations: dict[int, Organisation]
    territories: dict[int, Territory]  # the options of each filter come from the whole queue
    filter_needs: list[Need] = field(default_factory=list)
    filter_organisations: list[Organisation] = field(default_factory=list)
    filter_territories: list[Territory] = field(default_factory=list)


def review_queue(session: Session, followed: Any, filters: ReviewFilters) -> ReviewQueue:
    """The proposals waiting for review about the residents the reviewer follows (`followed`, a
    query of Resident rows: asked inside SQL, and only the residents of waiting proposals are read,
    not every one followed, which was 100,000 objects for an admin at 100k)."""
    followed_ids = followed.with_only_columns(col(Resident.id)).order_by(None)
    waiting = list(session.exec(select(Match).where(
        col(Match.resident_id).in_(followed_ids), Match.status == MatchStatus.PROPOSED)
        .order_by(col(Match.score).desc(), col(Match.id))).all())
    by_id = {r.id or 0: r for r in session.exec(
        select(Resident).where(col(Resident.id).in_({m.resident_id for m in waiting}))).all()}
    needs = {n.id or 0: n for n in session.exec(
        select(Need).where(col(Need.id).in_({m.need_id for m in waiting}))).all()}
    organisations = {o.id or 0: o for o in session.exec(
        select(Organisation).where(col(Organisation.id).in_({n.organisation_id for n in needs.values()}))
    ).all()}
    territories = {t.id or 0: t for t in session.exec(
        select(Territory).where(col(Territory.id).in_({by_id[m.resident_id].territory_id
                                                      for m in waiting}))).all()}
    shown = [m for m in waiting
             if filters.territory_id in (None, by_id[m.resident_id].territory_id)
             and filters.need_id in (None, m.need_id)
             and filters.organisation_id in (None, needs[m.need_id].organisation_id)]
    return ReviewQueue(
        shown, len(waiting), by_id, needs, organisations, territories,
        sorted(needs.values(), key=lambda n: n.title.casefold()),
        sorted(organisations.values(), key=lambda o: o.name.casefold()),
        sorted(territories.values(), key=lambda t: t.name.casefold()))


@dataclass
class TimelineStep:
    kind: str  # "proposed", then a MatchStatus reached later (approved, rejected, accepted…)
    at: datetime
    reason_code: str | None = None  # why it was set aside
    note: str | None = None  # the worker's note, or the resident's word


@dataclass
class TimelineEntry:
    match: Match
    need: Need
    steps: list[TimelineStep]

    @property
    def last_at(self) -> datetime:
        return self.steps[-1].at


def proposal_timeline(session: Session, resident: Resident) -> list[TimelineEntry]:
    """Every proposal made for the resident: proposed → reviewed → answered, with dates; the
    most recent activity first."""
    matches = session.exec(select(Match).where(Match.resident_id == resident.id)).all()
    needs = {n.id: n for n in session.exec(
        select(Need).where(col(Need.id).in_({m.need_id for m in matches}))).all()}
    entries = []
    for m in matches:
        steps = [TimelineStep("proposed", m.created_at)]
        if m.reviewed_at is not None:
            rejected = m.status == MatchStatus.REJECTED
            steps.append(TimelineStep(MatchStatus.REJECTED if rejected else MatchStatus.APPROVED,
                                      m.reviewed_at, m.rejection_code if rejected else None,
                                      m.rejection_note if rejected else None))
        if m.answered_at is not None:
            said = MatchStatus.DECLINED if m.status == MatchStatus.DECLINED else MatchStatus.ACCEPTED
            steps.append(TimelineStep(said, m.answered_at, note=m.resident_comment))
        entries.append(TimelineEntry(m, needs[m.need_id], steps))
    return sorted(entries, key=lambda e: (e.last_at, e.match.id or 0), reverse=True)
