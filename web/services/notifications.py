"""In-app notifications, and what the email digest sends.

Each event that asks someone to act adds rows in the same transaction as the change itself:
new proposals → the social workers of the resident's centre; an approved opportunity → the
resident; a resident's answer → the need's author and the worker who approved; an outcome → the
other side. Texts are French sentences built here, holding no free text typed by a resident (a
first name and an initial at most), so that they can go into an email as they are; each keeps its
msgid and values too, so the list shows it in the reader's language (`shown_text`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import and_, or_
from sqlmodel import Session, col, delete, func, select, update

from models import Match, MatchStatus, Need, Notification, Resident, Role, User, utcnow
from web.permissions import FOLLOWUP_ROLES, VISIBLE_TO_ASSOCIATION

MAX_TEXT = 300
LIST_LIMIT = 100
CHUNK = 500  # links per DELETE ... IN (...)

# Paths inside Relais (services run without a request too, e.g. the demo load: no url_for).
REVIEW_DESK = "/accompagnement/propositions"
RESIDENT_HOME = "/moi/"


class Kind:
    TO_REVIEW = "to_review"
    OPPORTUNITY = "opportunity"
    ANSWERED = "answered"
    OUTCOME = "outcome"
    CONSENT = "consent"
    WITHDRAWN = "withdrawn"
    RETURNED = "returned"
    REQUEST = "request"


class _Proposed(Protocol):
    @property
    def resident_id(self) -> int: ...


def followup_link(match_id: int | None) -> str:
    return f"/suivi/propositions/{match_id}"


def N_(message: str) -> str:  # noqa: N802 (gettext_noop's usual name: pybabel extracts it)
    """A msgid marked for translation, translated when shown."""
    return message


@dataclass(frozen=True)
class Said:
    text: str  # in French
    message: str = ""  # its msgid
    values: dict[str, Any] = field(default_factory=dict)


def _french(message: str, **values: Any) -> Said:
    """Notifications are kept as French text (the recipients' language, and the digest's),
    whatever the actor's; with the msgid and values, for a reader of another language."""
    with force_locale("fr"):
        return Said(_(message, **values)[:MAX_TEXT], message, values)


def shown_text(notification: Notification | Mapping[str, Any]) -> str:
    """The notification (a row, or a row as a person's data export holds it) in the reader's
    language (the current locale): its French text when it has no msgid (written before they
    were kept) or the catalogue's sentence does not fit."""
    if isinstance(notification, Mapping):
        text, message, values = (notification.get(name) for name in ("text", "message", "message_values"))
    else:
        text, message, values = notification.text, notification.message, notification.message_values
    if not message:
        return str(text or "")
    try:
        return _(message, **(values or {}))[:MAX_TEXT]
    except (KeyError, ValueError, TypeError):
        return str(text or "")


def notify(session: Session, user_ids: Iterable[int | None], kind: str, said: Said, link: str) -> int:
    """Add one notification per distinct user (committed with the caller's change)."""
    ids = sorted({i for i in user_ids if i is not None})
    session.add_all(Notification(user_id=i, kind=kind, text=said.text, message=said.message,
                                 message_values=said.values, link=link) for i in ids)
    return len(ids)


def _workers_of(session: Session, organisation_ids: Iterable[int]) -> dict[int, list[int]]:
    """Active social workers per organisation."""
    rows = session.exec(select(User.id, User.organisation_id).where(
        User.role == Role.SOCIAL_WORKER, col(User.is_active).is_(True),
        col(User.organisation_id).in_(set(organisation_ids)))).all()
    out: dict[int, list[int]] = {}
    for uid, org in rows:
        if uid is not None and org is not None:
            out.setdefault(org, []).append(uid)
    return out


def new_proposals(session: Session, proposals: Sequence[_Proposed], made_at: datetime) -> None:
    """Tell the social workers of each resident's centre how many proposals wait for them
    (`made_at`: when these were stored). A worker's « to review » notice neither read nor emailed
    yet is replaced by one counting the proposals still waiting among those made since the first
    it counted: a need edited, paused and reopened remade the same two proposals each time, and
    the worker read « 2 nouvelles propositions » three times (and got them in the digest)."""
    if not proposals:
        return
    rows = session.exec(select(Resident.id, Resident.organisation_id).where(
        col(Resident.id).in_({p.resident_id for p in proposals}))).all()
    org_of = dict(rows)
    per_org: dict[int, int] = {}
    for p in proposals:
        if (org := org_of.get(p.resident_id)) is not None:
            per_org[org] = per_org.get(org, 0) + 1
    for org, workers in _workers_of(session, per_org).items():
        for worker in workers:
            unread = session.exec(select(Notification).where(
                col(Notification.user_id) == worker, _UNREAD_TO_REVIEW)).all()
            since = min([made_at, *(_counted_since(n) for n in unread)])
            if unread:
                session.exec(delete(Notification).where(col(Notification.id).in_([n.id for n in unread])))
            n = (_waiting(session, org, since) if unread else 0) or per_org[org]
            notify(session, [worker], Kind.TO_REVIEW, _to_review(n, since), REVIEW_DESK)


_UNREAD_TO_REVIEW = and_(col(Notification.kind) == Kind.TO_REVIEW, col(Notification.read_at).is_(None),
                         col(Notification.emailed_at).is_(None))


def _to_review(n: int, since: datetime) -> Said:
    """« n nouvelles propositions à examiner », with when the first of them was made."""
    said = (_french(N_("Une nouvelle proposition à examiner.")) if n == 1
            else _french(N_("%(n)d nouvelles propositions à examiner."), n=n))
    return Said(said.text, said.message, {**said.values, "since": since.isoformat()})


def _counted_since(notice: Notification) -> datetime:
    """When the first proposal a « to review » notice counts was made. Notices from before this
    was kept were written just after their proposals, in the same transaction."""
    stamp = notice.message_values.get("since")
    if isinstance(stamp, str):
        return datetime.fromisoformat(stamp)
    return notice.created_at - timedelta(seconds=5)


def _waiting(session: Session, organisation_id: int, since: datetime) -> int:
    """Proposals for the centre's residents made since `since` and not reviewed yet."""
    return int(session.exec(select(func.count()).select_from(Match).join(
        Resident, col(Resident.id) == Match.resident_id).where(
        Resident.organisation_id == organisation_id, Match.status == MatchStatus.PROPOSED,
        col(Match.created_at) >= since)).one())


def settle_to_review(session: Session, organisation_ids: Iterable[int] | None = None) -> int:
    """Say each « to review » notice neither read nor emailed yet again with what still waits:
    proposals reviewed at the desk, or withdrawn (a need paused, closed or rewritten, a profile
    changed, a consent withdrawn, a person erased) no longer count, and a notice about none goes.
    A closed need left the worker's badge at « 2 nouvelles propositions » over an empty desk, and
    the next morning's digest e-mailed it. Only the workers of `organisation_ids` when given (the
    centres of the residents whose proposals changed). Returns how many notices changed (caller
    commits)."""
    query = select(Notification, User.organisation_id).join(
        User, col(User.id) == Notification.user_id).where(_UNREAD_TO_REVIEW)
    if organisation_ids is not None:
        query = query.where(col(User.organisation_id).in_(set(organisation_ids)))
    changed = 0
    # Written by id, not through the loaded rows: another process may have replaced a notice
    # meanwhile (its statement then matches nothing; the ORM would fail the caller's review).
    for notice, organisation_id in session.exec(query).all():
        since = _counted_since(notice)
        n = _waiting(session, organisation_id, since) if organisation_id is not None else 0
        if n == 0:
            session.exec(delete(Notification).where(col(Notification.id) == notice.id))
        elif n != notice.message_values.get("n", 1):
            said = _to_review(n, since)
            session.exec(update(Notification).where(col(Notification.id) == notice.id).values(
                text=said.text, message=said.message, message_values=said.values))
        else:
            continue
        session.expunge(notice)
        changed += 1
    return changed


def consent_withdrawn_by_resident(session: Session, resident: Resident) -> None:
    """Tell the resident's social workers that the person withdrew consent themselves."""
    workers = _workers_of(session, [resident.organisation_id]).get(resident.organisation_id, [])
    notify(session, workers, Kind.CONSENT,
           _french(N_("%(name)s a retiré son accord : plus de proposition pour cette personne."),
                   name=resident.public_name), resident_link(resident.id))


def request_received(session: Session, resident: Resident, erasure: bool) -> None:
    """Tell the resident's social workers the person asked, on « Mes données », for their data to
    be erased or their text changed (the requests only showed in a dashboard list: an erasure
    asked after a withdrawal reached nobody)."""
    workers = _workers_of(session, [resident.organisation_id]).get(resident.organisation_id, [])
    message = (N_("%(name)s demande l'effacement de ses données.") if erasure
               else N_("%(name)s demande un changement de son texte."))
    notify(session, workers, Kind.REQUEST, _french(message, name=resident.public_name),
           resident_link(resident.id))


def _resident_user(session: Session, resident_id: int) -> int | None:
    return session.exec(select(User.id).where(User.resident_id == resident_id,
                                              col(User.is_active).is_(True))).first()


def opportunity_approved(session: Session, match: Match) -> None:
    """Tell the resident a worker approved an opportunity for them."""
    need = session.get(Need, match.need_id)
    if need is None:
        return
    said = _french(N_("Nouvelle proposition pour vous : « %(title)s »."), title=need.title)
    said.values["need_id"] = need.id  # which need it is about, if it is withdrawn (titles repeat)
    notify(session, [_resident_user(session, match.resident_id)], Kind.OPPORTUNITY, said, RESIDENT_HOME)


def _active(session: Session, ids: Iterable[int | None]) -> list[int]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return []
    return [i for i in session.exec(select(User.id).where(
        col(User.id).in_(wanted), col(User.is_active).is_(True))).all() if i is not None]


def _need_side(session: Session, need: Need) -> list[int]:
    """Who hears about a need's proposals for its side: its author while their account is active
    and may open the follow-up page; else (they left, or a habitant-relais noted the need) the
    active members of its organisation who may."""
    active = col(User.is_active).is_(True)
    author = session.exec(select(User.id).where(  # an administrator who wrote it too (they were never told)
        User.id == need.created_by_id, active, col(User.role).in_([r.value for r in FOLLOWUP_ROLES]))).first()
    if author is not None:
        return [author]
    members = [role.value for role in FOLLOWUP_ROLES if role != Role.ADMIN]  # not every administrator
    return sorted(int(i) for i in session.exec(select(User.id).where(
        col(User.organisation_id) == need.organisation_id, active, col(User.role).in_(members))).all()
        if i is not None)


def resident_answered(session: Session, match: Match, changed_mind: bool = False) -> None:
    """Tell the need's author and the worker who approved that the resident answered (or changed
    their mind)."""
    need, resident = session.get(Need, match.need_id), session.get(Resident, match.resident_id)
    if need is None or resident is None:
        return
    if changed_mind and match.status == MatchStatus.ACCEPTED:
        said = _french(N_("%(name)s a changé d'avis : finalement oui pour « %(title)s »."),
                       name=resident.public_name, title=need.title)
    elif changed_mind:
        said = _french(N_("%(name)s a changé d'avis : finalement non pour « %(title)s ». Ne comptez plus "
                          "sur sa venue."), name=resident.public_name, title=need.title)
    elif match.status == MatchStatus.ACCEPTED:
        said = _french(N_("%(name)s a dit oui pour « %(title)s »."), name=resident.public_name,
                       title=need.title)
    else:
        said = _french(N_("%(name)s a dit non pour « %(title)s »."), name=resident.public_name,
                       title=need.title)
    told = set(_need_side(session, need)) | set(_active(session, [match.reviewed_by_id]))
    notify(session, told, Kind.ANSWERED, said, followup_link(match.id))


def outcome_recorded(session: Session, match: Match, actor: User) -> None:
    """Tell the other side (need's author, the resident's workers) what became of a proposal."""
    need, resident = session.get(Need, match.need_id), session.get(Resident, match.resident_id)
    if need is None or resident is None:
        return
    workers = _workers_of(session, [resident.organisation_id]).get(resident.organisation_id, [])
    recipients = set(_need_side(session, need)) | set(workers)
    recipients.discard(actor.id or 0)
    said = _french(N_("Bilan noté pour %(name)s et « %(title)s »."), name=resident.public_name,
                   title=need.title)
    notify(session, recipients, Kind.OUTCOME, said, followup_link(match.id))


# Why the matcher's approved opportunity went before the person answered, as the worker who
# approved it reads it (a need's text, its languages, its place: `approvals_withdrawn`).
WITHDRAWN_BECAUSE = {
    "text": N_("« %(title)s » a été modifié : la proposition validée pour %(name)s est retirée avant "
               "sa réponse. Le besoin repasse dans les propositions."),
    # Changed while paused or closed: nothing is proposed until it reopens.
    "text_paused": N_("« %(title)s » a été modifié pendant sa pause : la proposition validée pour "
                      "%(name)s est retirée avant sa réponse. Le besoin repassera dans les propositions "
                      "s'il rouvre."),
    "filled": N_("« %(title)s » a trouvé toutes les personnes demandées : la proposition validée pour "
                 "%(name)s est retirée avant sa réponse."),
    "text_closed": N_("« %(title)s » a été modifié après sa clôture : la proposition validée pour "
                      "%(name)s est retirée avant sa réponse."),
    "languages": N_("« %(title)s » demande maintenant une langue que %(name)s ne parle pas : la "
                    "proposition validée est retirée avant sa réponse."),
    "distance": N_("« %(title)s » a changé de quartier, trop loin de %(name)s : la proposition "
                   "validée est retirée avant sa réponse."),
    "territory": N_("« %(title)s » a changé de quartier, hors de celui de %(name)s : la proposition "
                    "validée est retirée avant sa réponse."),
    "availability": N_("« %(title)s » a changé de créneaux, aucun ne correspond à ceux de %(name)s : la "
                       "proposition validée est retirée avant sa réponse."),
}


def approvals_withdrawn(session: Session, need: Need, approvals: Sequence[tuple[int, int | None]],
                        why: str = "text", titled: str | None = None) -> None:
    """Tell each worker who approved one of the matcher's opportunities (`approvals`: resident,
    reviewer) that a change of the need (`why`: a key of WITHDRAWN_BECAUSE) took it away before
    the person answered: it went without a word, the worker waiting for an answer that could no
    longer come. The resident's notice of it goes if unread (it led to a page without it), else
    they are told it went. `titled`: the need's title when the notice was written, if changed."""
    for resident_id, reviewer in approvals:
        resident = session.get(Resident, resident_id)
        if resident is not None:
            said = _french(WITHDRAWN_BECAUSE[why], title=need.title, name=resident.public_name)
            notify(session, _active(session, [reviewer]), Kind.WITHDRAWN, said, resident_link(resident_id))
            _opportunity_gone(session, resident_id, need, titled or need.title, filled=why == "filled")


def _opportunity_gone(session: Session, resident_id: int, need: Need, titled: str,
                      filled: bool = False) -> None:
    """The resident's notice of `need`'s opportunity goes if unread; else they are told it went,
    under the title they read (`titled`)."""
    account = _resident_user(session, resident_id)
    if account is None:
        return
    unread = [n for n in session.exec(select(Notification).where(
        Notification.user_id == account, Notification.kind == Kind.OPPORTUNITY,
        col(Notification.read_at).is_(None))).all() if (n.message_values or {}).get("need_id") == need.id]
    for notice in unread:
        session.delete(notice)
    if not unread and filled:
        notify(session, [account], Kind.WITHDRAWN, _french(N_(
            "La proposition « %(title)s » n'est plus disponible : les places sont prises. La personne "
            "qui vous accompagne vous dira s'il y a autre chose pour vous."), title=titled), RESIDENT_HOME)
    elif not unread:
        notify(session, [account], Kind.WITHDRAWN, _french(N_(
            "La proposition « %(title)s » n'est plus disponible : le besoin a changé. La personne qui "
            "vous accompagne vous dira s'il y a du nouveau."), title=titled), RESIDENT_HOME)


def resident_link(resident_id: int | None) -> str:
    return f"/accompagnement/residents/{resident_id}"


def correction_link(row: Resident | Need) -> str:
    """Where a habitant-relais corrects a submission sent back."""
    return _correction_path("personnes" if isinstance(row, Resident) else "besoins", row.id)


def _correction_path(kind: str, row_id: int | None) -> str:
    return f"/relais/{kind}/{row_id}/corriger"


def submission_returned(session: Session, row: Resident | Need) -> None:
    """Tell the habitant-relais who noted a profile or a need that a social worker sent it back.
    The worker's word is free text: it stays on the correction page, out of the notice (and of
    the digest)."""
    if isinstance(row, Resident):
        said = _french(N_("La fiche de %(name)s vous est renvoyée avec un mot du centre social : "
                          "ouvrez-la pour le lire et la corriger."), name=row.public_name)
    else:
        said = _french(N_("Le besoin « %(title)s » vous est renvoyé avec un mot du centre social : "
                          "ouvrez-le pour le lire et le corriger."), title=row.title)
    notify(session, _active(session, [row.created_by_id]), Kind.RETURNED, said, correction_link(row))


def forget_returned(session: Session, row: Resident | Need) -> None:
    """The « renvoyée » notice of a submission that is no longer sent back (corrected, or validated
    anyway): it asked for a correction the page no longer offers. Not committed."""
    session.exec(delete(Notification).where(  # type: ignore[call-overload]
        col(Notification.kind) == Kind.RETURNED, col(Notification.link) == correction_link(row)))


def _links_about(resident_id: int, match_ids: Iterable[int]) -> list[str]:
    return [resident_link(resident_id), _correction_path("personnes", resident_id),
            *(followup_link(i) for i in match_ids)]


def about_resident(session: Session, resident_id: int, match_ids: Iterable[int]) -> list[Notification]:
    """The notifications staff received about a resident and their proposals (for their export)."""
    links = _links_about(resident_id, match_ids)
    return list(session.exec(select(Notification).where(col(Notification.link).in_(links))
                             .order_by(col(Notification.id))).all())


def forget_resident(session: Session, resident_id: int, match_ids: Iterable[int]) -> int:
    """Delete the notifications about a resident and their proposals (they name the person):
    for erasure. Not committed: the caller erases the rest in the same transaction."""
    links = _links_about(resident_id, match_ids)
    result = session.exec(delete(Notification).where(  # type: ignore[call-overload]
        col(Notification.link).in_(links)))
    return int(result.rowcount or 0)


def forget_for_need_side(session: Session, resident: Resident) -> int:
    """After the person withdrew consent the associations no longer see them under their needs,
    unless they said yes (`shown_to_association`): the notices they received about the person's
    other proposals (« Awa K. a dit non… », whose link now ends on « n'existe plus ») go too. The
    staff of the person's centre, and administrators, keep theirs. Not committed."""
    ids = session.exec(select(Match.id).where(Match.resident_id == resident.id,
                                              Match.status != MatchStatus.ACCEPTED)).all()
    return _forget_outside(session, resident.organisation_id, ids)


def forget_for_lapsed_consents(session: Session, lapsed: Any) -> int:
    """`forget_for_need_side` for every person in `lapsed` (a subquery of resident ids: those
    whose consent expired, which no event announces, so the retention's nightly run asks). Only
    proposals an association saw are looked at. Not committed."""
    rows = session.exec(select(Match.id, Resident.organisation_id)
                        .join(Resident, col(Resident.id) == Match.resident_id)
                        .where(col(Match.status).in_(VISIBLE_TO_ASSOCIATION - {MatchStatus.ACCEPTED}),
                               col(Match.resident_id).in_(lapsed))).all()
    by_centre: dict[int | None, list[int | None]] = {}
    for match_id, organisation_id in rows:
        by_centre.setdefault(organisation_id, []).append(match_id)
    return sum(_forget_outside(session, centre, ids) for centre, ids in by_centre.items())


def _forget_outside(session: Session, organisation_id: int | None, match_ids: Sequence[int | None]) -> int:
    """Delete the notices about these proposals held by anyone outside the person's centre
    (administrators aside)."""
    outside = select(User.id).where(col(User.role) != Role.ADMIN, or_(
        col(User.organisation_id).is_(None), col(User.organisation_id) != organisation_id))
    removed = 0
    for start in range(0, len(match_ids), CHUNK):
        links = [followup_link(i) for i in match_ids[start:start + CHUNK]]
        result = session.exec(delete(Notification).where(  # type: ignore[call-overload]
            col(Notification.link).in_(links), col(Notification.user_id).in_(outside)))
        removed += int(result.rowcount or 0)
    return removed


def unread_count(session: Session, user_id: int) -> int:
    """How many notifications the user has not read (the header's counter)."""
    return int(session.exec(select(func.count()).select_from(Notification).where(
        Notification.user_id == user_id, col(Notification.read_at).is_(None))).one())


def recent(session: Session, user_id: int, limit: int = LIST_LIMIT) -> list[Notification]:
    """The user's latest notifications, newest first."""
    return list(session.exec(select(Notification).where(Notification.user_id == user_id)
                             .order_by(col(Notification.created_at).desc(), col(Notification.id).desc())
                             .limit(limit)).all())


def mark_read(session: Session, user: User, notification: Notification | None = None,
              kind: str | None = None) -> int:
    """Mark one notification (or those of `kind`: the page showing what they announce was shown;
    or all of the user's) as read; return how many changed. Nothing unread: nothing written (a
    page that only reads does not wait for the database's write lock)."""
    which = [col(Notification.user_id) == user.id, col(Notification.read_at).is_(None)]
    if notification is not None:
        which.append(col(Notification.id) == notification.id)
    if kind is not None:
        which.append(col(Notification.kind) == kind)
    if session.exec(select(Notification.id).where(*which).limit(1)).first() is None:
        return 0
    query = update(Notification).where(*which)
    result = session.exec(query.values(read_at=utcnow()))  # type: ignore[call-overload]
    session.commit()
    return int(result.rowcount or 0)


STAFF_ROLES = (Role.ADMIN, Role.SOCIAL_WORKER, Role.ASSOCIATION_MEMBER)


def digest_batches(session: Session) -> list[tuple[User, list[Notification]]]:
    """Staff users with an email and unread notifications never sent in a digest, with those
    (« to review » notices said again first: `settle_to_review`)."""
    if settle_to_review(session):
        session.commit()
    pending = session.exec(select(Notification).where(
        col(Notification.read_at).is_(None), col(Notification.emailed_at).is_(None))
        .order_by(col(Notification.created_at), col(Notification.id))).all()
    by_user: dict[int, list[Notification]] = {}
    for n in pending:
        by_user.setdefault(n.user_id, []).append(n)
    if not by_user:
        return []
    users = session.exec(select(User).where(
        col(User.id).in_(list(by_user)), col(User.is_active).is_(True),
        col(User.email).is_not(None), col(User.role).in_(list(STAFF_ROLES)))
        .order_by(col(User.id))).all()
    return [(u, by_user[u.id or 0]) for u in users]


def mark_emailed(session: Session, notifications: Sequence[Notification], at: datetime) -> None:
    """Record that these notifications went out in a digest (committed)."""
    session.exec(update(Notification).where(  # type: ignore[call-overload]
        col(Notification.id).in_([n.id for n in notifications])).values(emailed_at=at))
    session.commit()
