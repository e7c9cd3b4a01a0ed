"""The review workflow: a social worker approves or rejects, then the resident answers."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlmodel import Session

from models import Match, MatchStatus, RejectionReason, User, utcnow
from web.services import ServiceError
from web.services.audit import record

MAX_REASON_CHARS = 1000


def approve(session: Session, reviewer: User, match: Match) -> None:
    """Make a proposal visible to the resident and the association."""
    if match.status != MatchStatus.PROPOSED:
        raise ServiceError(_l("Cette proposition a déjà été examinée."))
    match.status = MatchStatus.APPROVED
    match.reviewed_by_id, match.reviewed_at = reviewer.id, utcnow()
    session.add(match)
    record(session, reviewer, "match.approve", "match", match.id)
    session.commit()


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
    record(session, reviewer, "match.reject", "match", match.id, code=code, note=note)
    session.commit()


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
    session.commit()
