"""What a social worker should look at today."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlmodel import Session, col, select

from models import Consent, Match, MatchStatus, Need, NeedStatus, Resident, ValidationStatus
from web.services.validation import Submissions

EXPIRY_NOTICE_DAYS = 30


@dataclass
class WorkerDashboard:
    pending: int  # proposals waiting for review
    without_opportunity: list[Resident]  # never approved for anything
    needs_without_candidate: list[Need]  # open needs nobody was proposed for
    expiring: list[tuple[Resident, date]]  # consents ending within EXPIRY_NOTICE_DAYS
    to_validate: Submissions = field(default_factory=Submissions)  # from habitants-relais


def worker_dashboard(session: Session, residents: Sequence[Resident], today: date,
                     to_validate: Submissions | None = None) -> WorkerDashboard:
    """The lists of the worker's home page, for the residents they follow (profiles waiting for
    validation are only in `to_validate`: they cannot have an opportunity yet)."""
    ids = [r.id for r in residents]
    # Columns, not Match objects (each with its explanation): only statuses are read here.
    statuses = session.exec(select(Match.resident_id, Match.status)
                            .where(col(Match.resident_id).in_(ids))).all()
    pending = sum(1 for _, status in statuses if status == MatchStatus.PROPOSED)
    opportunity = {rid for rid, status in statuses
                   if status not in (MatchStatus.PROPOSED, MatchStatus.REJECTED)}
    open_needs = session.exec(select(Need).where(Need.status == NeedStatus.OPEN,
                                                 Need.validation_status == ValidationStatus.VALIDATED)
                              .order_by(col(Need.created_at))).all()
    # Asked about the open needs only (every need's matches were read before).
    with_candidate = set(session.exec(select(Match.need_id).distinct().where(
        col(Match.need_id).in_([n.id for n in open_needs]),
        col(Match.status) != MatchStatus.REJECTED)).all())
    consents = session.exec(select(Consent).where(
        col(Consent.resident_id).in_(ids), col(Consent.withdrawn_at).is_(None),
        col(Consent.expires_on).is_not(None))).all()
    horizon = today + timedelta(days=EXPIRY_NOTICE_DAYS)
    by_id = {r.id: r for r in residents}
    latest: dict[int, date] = {}
    for c in consents:
        if c.expires_on is not None:
            latest[c.resident_id] = max(latest.get(c.resident_id, c.expires_on), c.expires_on)
    expiring = sorted(((by_id[rid], day) for rid, day in latest.items() if today <= day <= horizon),
                      key=lambda item: item[1])
    return WorkerDashboard(
        pending=pending,
        without_opportunity=[r for r in residents if r.id not in opportunity
                             and r.validation_status == ValidationStatus.VALIDATED],
        needs_without_candidate=[n for n in open_needs if n.id not in with_candidate],
        expiring=expiring,
        to_validate=to_validate or Submissions(),
    )
