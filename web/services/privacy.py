"""Personal-data rights: export, erasure, retention, and the requests residents send their worker.

- **Export** gathers every row held about a resident (profile, consents, every declaration version
  and its statements, proposals with their explanation, review decisions and answers, requests,
  rows other tables hold about them, and the audit events about them) as plain JSON.
- **Erasure** deletes the person's rows, writes an index delete event (every process drops the
  vectors before its next search; the rebuild reads only stored vectors, which are gone) and keeps
  only anonymous counts (``AnonymousCount``) for statistics. The resident's login becomes an
  inactive, nameless tombstone: audit events are append-only and point at it. The one change
  made to them: the before/after values of the person's structured fields (languages, which can
  tell an origin, availability, wishes) are scrubbed from the events about them, leaving which
  field changed, when and by whom.
- **Retention** warns, then erases ("anonymises") profiles nobody touched for a configurable time.

Rows are found through the foreign keys of the metadata, so a table another part of Relais adds
(notifications, outcomes…) is exported and erased without changes here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol

from flask_babel import lazy_gettext as _l
from sqlalchemy import Table, delete, insert, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, col, select

from models import (
    AnonymousCount,
    AuditEvent,
    Consent,
    Match,
    Need,
    Notification,
    Organisation,
    RequestKind,
    Resident,
    ResidentRequest,
    SkillDeclaration,
    SkillStatement,
    Territory,
    User,
    empty_write_ahead_log,
    utcnow,
)
from web.services import AlreadyDone, ServiceError, notifications
from web.services.accounts import drop_closed_sessions
from web.services.audit import record
from web.services.jobs import drop_resident_drafts, drop_stale_drafts, fail_abandoned
from web.services.matching import RESIDENTS, MatchingService
from web.services.profiles import add_months, withdraw_consent
from web.services.proposals import consent_query, drop_old_withdrawals, keep_withdrawn_ids
from web.services.queries import REPOST_MINUTES, update_if, written_once

EXPORT_FORMAT = "relais-export/1"
MAX_REQUEST_CHARS = 1000
ERASED_NAME = "—"  # the display name left on an erased resident's login tombstone
# Tables whose rows are handled explicitly (or never deleted: the audit is append-only).
_EXPLICIT = {"resident", "app_user", "consent", "skilldeclaration", "skillstatement", "match",
             "resident_request", "auditevent"}
# Columns never exported: secrets' digests and vectors are not information about the person.
_HIDDEN = ("digest", "hash", "vector")


# ---------------------------------------------------------------------------------------- export

def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _row(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(v) for k, v in values.items()
            if not isinstance(v, bytes | bytearray) and not any(h in k for h in _HIDDEN)}


def _dump(row: SQLModel) -> dict[str, Any]:
    return _row(row.model_dump())


def _login(session: Session, resident_id: int | None) -> User | None:
    return session.exec(select(User).where(User.resident_id == resident_id)).first()


def _references(target: str) -> list[tuple[Table, Any]]:
    """(table, column) pairs whose column is a foreign key to `target`.id."""
    found = []
    for table in SQLModel.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table.name == target and fk.column.name == "id":
                found.append((table, fk.parent))
    return found


def _other_rows(session: Session, targets: dict[str, list[int]]) -> dict[str, list[dict[str, Any]]]:
    """Rows of the other tables that point at the person's resident, login or proposals."""
    out: dict[str, list[dict[str, Any]]] = {}
    for target, ids in targets.items():
        if not ids:
            continue
        for table, column in _references(target):
            if table.name in _EXPLICIT:
                continue
            rows = session.connection().execute(sa_select(table).where(column.in_(ids))).mappings().all()
            if rows:  # a heading with nothing under it said nothing, in a table's name
                out.setdefault(table.name, []).extend(_row(dict(r)) for r in rows)
    return out


def audit_events_about(session: Session, resident: Resident, login: User | None,
                       matches: Sequence[Match]) -> list[AuditEvent]:
    """Events about the resident, their login, their proposals, or done with their login, since
    each of them exists: SQLite gives a deleted row's id to the next row (an erased resident's, a
    withdrawn proposal's), and the journal keeps the ids of the one before. Logins are anonymised,
    never deleted, so their ids are not reused today; the same rule guards them anyway."""
    born: dict[tuple[str, int | None], datetime] = {("resident", resident.id): resident.created_at}
    born |= {("match", m.id): m.created_at for m in matches}
    about = (col(AuditEvent.object_type) == "resident") & (col(AuditEvent.object_id) == resident.id)
    if matches:
        about |= (col(AuditEvent.object_type) == "match") & col(AuditEvent.object_id).in_(
            [m.id for m in matches])
    if login is not None:
        born[("user", login.id)] = login.created_at
        about |= ((col(AuditEvent.object_type) == "user") & (col(AuditEvent.object_id) == login.id)) \
            | (col(AuditEvent.actor_id) == login.id)

    def theirs(event: AuditEvent) -> bool:
        since = born.get((event.object_type, event.object_id))
        if since is not None and event.at >= since:
            return True
        return login is not None and event.actor_id == login.id and event.at >= login.created_at

    return [e for e in session.exec(select(AuditEvent).where(about).order_by(col(AuditEvent.id))).all()
            if theirs(e)]


def resident_export(session: Session, resident: Resident) -> dict[str, Any]:
    """Everything Relais holds about the resident, as JSON-ready data."""
    rid = resident.id or 0
    login = _login(session, rid)
    territory = session.get(Territory, resident.territory_id)
    organisation = session.get(Organisation, resident.organisation_id)
    declarations = session.exec(select(SkillDeclaration).where(SkillDeclaration.resident_id == rid)
                                .order_by(col(SkillDeclaration.id))).all()
    statements: dict[int, list[dict[str, Any]]] = {}
    for st in session.exec(select(SkillStatement).where(SkillStatement.resident_id == rid)
                           .order_by(col(SkillStatement.declaration_id),
                                     col(SkillStatement.position))).all():
        statements.setdefault(st.declaration_id, []).append(_dump(st))
    matches = session.exec(select(Match).where(Match.resident_id == rid).order_by(col(Match.id))).all()
    needs = {n.id: n for n in session.exec(select(Need).where(
        col(Need.id).in_([m.need_id for m in matches]))).all()}
    organisations = {o.id: o.name for o in session.exec(select(Organisation)).all()}
    events = audit_events_about(session, resident, login, matches)
    told = [n for n in notifications.about_resident(session, rid, [m.id for m in matches if m.id is not None])
            if login is None or n.user_id != login.id]  # their own are under "other"
    users = {u.id: u for u in session.exec(select(User).where(
        col(User.id).in_({e.actor_id for e in events if e.actor_id is not None}
                         | {n.user_id for n in told}))).all()}
    return {
        "format": EXPORT_FORMAT,
        "exported_at": utcnow().isoformat(),
        "resident": _dump(resident) | {
            "territory": {"id": territory.id, "name": territory.name, "commune": territory.commune}
            if territory else None,
            "organisation": {"id": organisation.id, "name": organisation.name} if organisation else None,
        },
        "account": {"created_at": _plain(login.created_at), "last_login_at": _plain(login.last_login_at),
                    "is_active": login.is_active} if login else None,
        "consents": [_dump(c) for c in session.exec(select(Consent).where(Consent.resident_id == rid)
                                                    .order_by(col(Consent.id))).all()],
        "declarations": [_dump(d) | {"statements": statements.get(d.id or 0, [])} for d in declarations],
        "proposals": [_dump(m) | {"need": {
            "id": m.need_id, "title": needs[m.need_id].title,
            "organisation": organisations.get(needs[m.need_id].organisation_id)}}
            for m in matches],
        "requests": [_dump(r) for r in session.exec(select(ResidentRequest).where(
            ResidentRequest.resident_id == rid).order_by(col(ResidentRequest.id))).all()],
        "other": _other_rows(session, {"resident": [rid],
                                       "app_user": [login.id] if login and login.id else [],
                                       "match": [m.id for m in matches if m.id is not None]}),
        "notifications_to_staff": [_notice(n, users.get(n.user_id)) for n in told],
        "audit": [_dump(e) | {"actor": {"role": users[e.actor_id].role,
                                        "name": users[e.actor_id].display_name}
                              if e.actor_id in users else None} for e in events],
    }


def _notice(notification: Notification, to: User | None) -> dict[str, Any]:
    """A notification a staff member received about the person, with whom it went to."""
    return {"kind": notification.kind, "text": notification.text,
            "created_at": _plain(notification.created_at), "read_at": _plain(notification.read_at),
            "to": {"role": to.role, "name": to.display_name} if to else None}


def record_export(session: Session, actor: User, resident: Resident, form: str) -> None:
    """Audit an export (`form` is "json" or "page") and commit."""
    record(session, actor, "resident.export", "resident", resident.id, format=form)
    session.commit()


# ---------------------------------------------------------------------------------------- erasure

@dataclass
class Erasure:
    resident_id: int
    removed: dict[str, int] = field(default_factory=dict)  # rows deleted per table
    scrubbed: int = 0  # journal events about the person whose before/after values were removed


def _month(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m") if moment else ""


def _keep_counts(session: Session, resident: Resident, matches: Sequence[Match], reason: str) -> None:
    """The anonymous statistics that outlive the person: one resident, proposals per need."""
    session.add(AnonymousCount(metric="resident", month=_month(resident.created_at),
                               territory_id=resident.territory_id,
                               organisation_id=resident.organisation_id, status=reason))
    groups: dict[tuple[int, str, str], int] = {}
    for m in matches:
        key = (m.need_id, str(m.status), _month(m.created_at))
        groups[key] = groups.get(key, 0) + 1
    needs = {n.id: n for n in session.exec(select(Need).where(
        col(Need.id).in_([k[0] for k in groups]))).all()}
    for (need_id, status, month), count in sorted(groups.items()):
        need = needs.get(need_id)
        session.add(AnonymousCount(metric="proposal", month=month, territory_id=resident.territory_id,
                                   organisation_id=need.organisation_id if need else None,
                                   need_id=need_id, status=status, count=count))


def _delete_rows(session: Session, table: Table, column: Any, ids: list[int], removed: dict[str, int],
                 seen: frozenset[str] = frozenset()) -> None:
    """Delete the rows of `table` whose `column` is in `ids`, after the rows that depend on them
    (nullable references are set to NULL instead: they belong to someone else)."""
    if not ids or table.name in seen or table.name == "auditevent":
        return
    conn = session.connection()
    if "id" in table.c:
        own = [int(i) for i in conn.execute(sa_select(table.c.id).where(column.in_(ids))).scalars()]
        for child, child_column in _references(table.name):
            if child_column.nullable:
                if own:
                    conn.execute(update(child).where(child_column.in_(own)).values({child_column.name: None}))
            else:
                _delete_rows(session, child, child_column, own, removed, seen | {table.name})
    count = conn.execute(delete(table).where(column.in_(ids))).rowcount or 0
    if count:
        removed[table.name] = removed.get(table.name, 0) + count


def erase_resident(session: Session, matching: MatchingService, actor: User | None,
                   resident: Resident, reason: str) -> Erasure:
    """Erase the person: their rows, stored vectors, index entries and proposals; keep anonymous
    counts; leave their login as a nameless, inactive tombstone; audit it (without personal data).

    Commits. `reason`: "request" (the person asked), "worker", "retention".
    """
    rid, centre = resident.id or 0, resident.organisation_id
    matches = session.exec(select(Match).where(Match.resident_id == rid)).all()
    logins = session.exec(select(User).where(User.resident_id == rid)).all()
    about = audit_events_about(session, resident, logins[0] if logins else None, matches)
    _keep_counts(session, resident, matches, reason)
    # Staff notifications about the person and their proposals name them ("Awa K. a dit oui").
    forgotten = notifications.forget_resident(session, rid, [m.id for m in matches if m.id is not None])
    matching.mark(session, RESIDENTS, rid, op="delete")
    erasure = Erasure(rid)
    if forgotten:
        erasure.removed["notification"] = forgotten
    erasure.scrubbed = _scrub_changes(session, about)
    for login in logins:
        login.resident_id, login.access_code_digest, login.is_active = None, None, False
        login.display_name, login.email, login.password_hash, login.last_login_at = \
            ERASED_NAME, None, None, None
        session.add(login)
    session.flush()
    conn = session.connection()
    user_ids = [u.id for u in logins if u.id is not None]
    for table, column in _references("app_user"):
        # What the login owned and nothing else points at (tokens, notifications); the audit stays.
        if table.name != "auditevent" and not column.nullable and not _references(table.name):
            count = (conn.execute(delete(table).where(column.in_(user_ids))).rowcount or 0) if user_ids else 0
            if count:
                erasure.removed[table.name] = erasure.removed.get(table.name, 0) + count
    # Their proposals' ids, for partner tools' copies and a desk still showing one (ids only).
    keep_withdrawn_ids(session, [(m.id, centre) for m in matches if m.id is not None])
    for table, column in _references("resident"):
        if column.nullable:
            continue  # the logins, handled above
        _delete_rows(session, table, column, [rid], erasure.removed, frozenset({"resident"}))
    for row in [resident, *matches]:  # deleted underneath the ORM: forget them
        if row in session:
            session.expunge(row)
    conn.execute(delete(SQLModel.metadata.tables["resident"]).where(
        SQLModel.metadata.tables["resident"].c.id == rid))
    erasure.removed["resident"] = 1
    if drafts := drop_resident_drafts(session, centre):  # an unconfirmed file may hold her row
        erasure.removed["background_job"] = drafts
    notifications.settle_to_review(session, [centre])  # their proposals no longer wait at the desk
    # Its centre (no person): partner tools of that centre learn of the erasure (GET /residents/erased).
    record(session, actor, "resident.erase", "resident", rid, reason=reason, removed=erasure.removed,
           scrubbed=erasure.scrubbed, organisation_id=centre)
    session.commit()
    return erasure


def _scrub_changes(session: Session, events: Sequence[AuditEvent]) -> int:
    """Replace the before/after values of the events' `changes` by the names of the fields that
    changed (`changed`), under SQL rather than the ORM, which refuses any change to an audit event:
    an erasure is the one writer allowed. Returns how many events were scrubbed."""
    table = SQLModel.metadata.tables["auditevent"]
    count = 0
    for event in events:
        details = dict(event.details or {})
        if not details.get("changes"):
            continue
        details["changed"] = sorted(details.pop("changes"))
        session.connection().execute(update(table).where(table.c.id == event.id).values(details=details))
        session.expunge(event)  # its loaded copy holds the old values
        count += 1
    return count


def erase_and_forget(session: Session, matching: MatchingService, actor: User | None,
                     resident: Resident, reason: str) -> Erasure:
    """Erase, then apply the delete event to this process's index and rewrite its files, so the
    person's vectors leave the disk now rather than at the next periodic save."""
    erasure = erase_resident(session, matching, actor, resident, reason)
    matching.sync(session)
    matching.save()
    empty_write_ahead_log(session)
    return erasure


# -------------------------------------------------------------------------------------- retention

def last_activity(session: Session, residents: Sequence[Resident]) -> dict[int, datetime]:
    """The latest sign of life per resident: profile changes, declarations, consents given,
    logins, answers, requests for a change. A withdrawal is none, nor a request for erasure: it
    is the person leaving, and it must not keep their data longer."""
    ids = [r.id for r in residents if r.id is not None]
    latest: dict[int, datetime] = {}

    def seen(pairs: Iterable[tuple[int | None, datetime | None]]) -> None:
        for rid, moment in pairs:
            if rid is not None and moment is not None and (rid not in latest or moment > latest[rid]):
                latest[rid] = moment

    seen((r.id, max(r.created_at, r.updated_at)) for r in residents)
    if not ids:
        return latest
    signs: list[tuple[Any, Any]] = [
        (User.resident_id, User.last_login_at), (Consent.resident_id, Consent.created_at),
        (SkillDeclaration.resident_id, SkillDeclaration.created_at),
        (Match.resident_id, Match.answered_at),
    ]
    for resident_column, moment in signs:
        seen(session.exec(select(resident_column, moment).where(col(resident_column).in_(ids))).all())
    seen(session.exec(select(ResidentRequest.resident_id, ResidentRequest.created_at).where(
        col(ResidentRequest.resident_id).in_(ids), ResidentRequest.kind == RequestKind.CHANGE)).all())
    return latest


@dataclass
class Retention:
    warned: list[int] = field(default_factory=list)
    anonymised: list[int] = field(default_factory=list)
    requested: list[int] = field(default_factory=list)  # erased as they asked, the request left open
    cleared: list[int] = field(default_factory=list)  # warnings voided by a new activity
    drafts: int = 0  # uploaded files never confirmed, dropped (jobs.DRAFT_HOURS)
    abandoned: int = 0  # jobs whose runner died, failed and their files forgotten (jobs.fail_abandoned)
    closed_sessions: int = 0  # logged-out sessions whose cookie has expired, forgotten
    notices: int = 0  # associations' notices naming someone whose consent lapsed, deleted
    withdrawals: int = 0  # withdrawn proposals' ids kept longer than WITHDRAWN_KEPT_DAYS, forgotten


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def run_retention(session: Session, matching: MatchingService, today: date, months: int,
                  grace_days: int, dry_run: bool = False) -> Retention:
    """Warn residents inactive for `months`; anonymise those warned `grace_days` ago and still
    inactive. `today` is injected (the CLI's --today), so the rule is tested without a clock."""
    cutoff = _midnight(add_months(today, -months))
    report = Retention()
    residents = list(session.exec(select(Resident).order_by(col(Resident.id))).all())
    activity = last_activity(session, residents)
    overdue = {r.resident_id for r in open_erasure_requests(session) if erasure_due(r, grace_days) <= today}
    for resident in residents:
        rid = resident.id or 0
        if rid in overdue:  # they asked, and nobody did it within the grace days
            report.requested.append(rid)
            if not dry_run:
                session.commit()
                erase_resident(session, matching, None, resident, "request")
            continue
        last = activity[rid]
        warned = resident.retention_warned_at
        if last >= cutoff:
            if warned is not None:
                report.cleared.append(rid)
                if not dry_run:
                    resident.retention_warned_at = None
                    session.add(resident)
                    record(session, None, "retention.cancel", "resident", rid)
            continue
        if warned is None or warned < last:
            report.warned.append(rid)
            if not dry_run:
                resident.retention_warned_at = _midnight(today)
                session.add(resident)
                record(session, None, "retention.warn", "resident", rid,
                       last_activity=last.date().isoformat(),
                       anonymise_on=(today + timedelta(days=grace_days)).isoformat())
        elif warned.date() + timedelta(days=grace_days) <= today:
            report.anonymised.append(rid)
            if not dry_run:
                session.commit()
                erase_resident(session, matching, None, resident, "retention")
    if not dry_run:
        # By the clock, unless `today` is ahead of it: at midnight, a file sent at 01:00 the day
        # before outlived its 24 hours until the next night's run.
        report.drafts = drop_stale_drafts(session, max(utcnow(), _midnight(today)))
        report.abandoned = fail_abandoned(session)  # by the clock: a job runs now, not on `today`
        report.closed_sessions = drop_closed_sessions(session)
        lapsed = select(Resident.id).where(col(Resident.id).not_in(consent_query(today)))
        report.notices = notifications.forget_for_lapsed_consents(session, lapsed)
        report.withdrawals = drop_old_withdrawals(session, max(utcnow(), _midnight(today)))
    session.commit()
    if not dry_run:  # also what an erasure could not empty (a reader kept the log then)
        empty_write_ahead_log(session)
    return report


def open_erasure_requests(session: Session) -> list[ResidentRequest]:
    return list(session.exec(select(ResidentRequest).where(
        ResidentRequest.kind == RequestKind.ERASURE, col(ResidentRequest.handled_at).is_(None))).all())


def erasure_due(request: ResidentRequest, grace_days: int) -> date:
    """The day the retention run carries out an erasure request still open: the person asked
    (RGPD art. 17: without undue delay, a month at most) and their worker has not done it. The
    first run more than `grace_days` whole days (UTC) after the request; the worker's page says
    the same day."""
    return request.created_at.astimezone(UTC).date() + timedelta(days=grace_days + 1)


def retention_warnings(residents: Sequence[Resident], grace_days: int) -> dict[int, date]:
    """Residents warned by the retention run, with the day their profile will be anonymised."""
    return {r.id or 0: r.retention_warned_at.date() + timedelta(days=grace_days)
            for r in residents if r.retention_warned_at is not None}


# ---------------------------------------------------------------------------------------- requests

def create_request(session: Session, resident_user: User, resident: Resident, kind: str,
                   message: str) -> ResidentRequest:
    """A resident asks their social worker for a change of their text, or for erasure. Asking
    for erasure withdraws the consent at once (RGPD art. 17.1.b): nothing is proposed, and no
    association sees the person, while the worker has yet to carry it out."""
    message = message.strip()
    if kind not in set(RequestKind):
        raise ServiceError(_l("Demande inconnue."))
    if kind == RequestKind.CHANGE and not message:
        raise ServiceError(_l("Écrivez ce qu'il faut changer."))
    if len(message) > MAX_REQUEST_CHARS:
        raise ServiceError(_l("Le message est trop long (1 000 caractères au plus)."))

    def twin(besides: int | None) -> int | None:
        """One erasure request open at a time, and a message sent again moments ago (a second tap
        on « Envoyer ») is the same request: the worker read it twice."""
        query = select(ResidentRequest.id).where(
            ResidentRequest.resident_id == resident.id, ResidentRequest.kind == kind,
            col(ResidentRequest.handled_at).is_(None), col(ResidentRequest.id) != (besides or 0))
        if kind != RequestKind.ERASURE:
            since = utcnow() - timedelta(minutes=REPOST_MINUTES)
            query = query.where(ResidentRequest.message == message, col(ResidentRequest.created_at) >= since)
        return session.exec(query.order_by(col(ResidentRequest.id))).first()

    def add() -> ResidentRequest:
        request = ResidentRequest(resident_id=resident.id or 0, kind=kind, message=message)
        session.add(request)
        session.flush()
        return request

    try:  # taps sent at once on a slow phone too (written_once: a lock, and a look after the insert)
        request: ResidentRequest = written_once(session, resident_user, twin, add)
    except AlreadyDone as already:
        pending = session.get(ResidentRequest, already.row_id)
        assert pending is not None
        return pending
    record(session, resident_user, "request.create", "resident", resident.id, kind=kind,
           request_id=request.id)
    notifications.request_received(session, resident, erasure=kind == RequestKind.ERASURE)
    session.commit()
    if kind == RequestKind.ERASURE:
        withdraw_consent(session, resident_user, resident)  # commits; nothing if already withdrawn
    return request


def handle_request(session: Session, worker: User, request: ResidentRequest) -> None:
    """The social worker marks a request as dealt with (once: a second tap, or a colleague at the
    same time, writes nothing)."""
    if request.handled_at is not None or not update_if(
            session, request, col(ResidentRequest.handled_at), None, handled_at=utcnow(),
            handled_by_id=worker.id):
        return
    record(session, worker, "request.handle", "resident", request.resident_id, kind=request.kind,
           request_id=request.id)
    session.commit()


def open_requests(session: Session, resident_ids: Sequence[int | None] | Any) -> list[ResidentRequest]:
    """Requests not dealt with yet, oldest first, of residents given as ids or as a subquery."""
    return list(session.exec(select(ResidentRequest).where(
        col(ResidentRequest.resident_id).in_(resident_ids),
        col(ResidentRequest.handled_at).is_(None)).order_by(col(ResidentRequest.id))).all())


def record_profile_views(session: Session, actor: User, resident_ids: Sequence[int], need_id: int
                         ) -> None:
    """Audit that `actor` (an association member) saw these candidates' profiles; commit."""
    _record_views(session, actor, resident_ids, {"need_id": need_id})


class Followed(Protocol):
    """A resident, or a row of its id and organisation (a bulk read's)."""

    @property
    def id(self) -> int | None: ...

    @property
    def organisation_id(self) -> int: ...


def record_reading_from_outside(session: Session, actor: User, residents: Sequence[Followed],
                                via: str) -> None:
    """Audit that `actor` read profiles followed by another organisation (an administrator:
    their reach is the whole site); a centre's workers read their own people daily, unaudited.
    The person sees it in their history and export, as a structure's view. Commit."""
    outside = [r.id for r in residents if r.id is not None and r.organisation_id != actor.organisation_id]
    _record_views(session, actor, outside, {"via": via})


def _record_views(session: Session, actor: User, resident_ids: Sequence[int], details: dict[str, Any]
                  ) -> None:
    """One `profile.view` event per resident, in one INSERT (as ORM objects, ~4 ms for a search's
    twenty, and a busy need's page lists hundreds); commit."""
    if resident_ids:
        now = utcnow()
        session.execute(insert(AuditEvent), [
            {"at": now, "actor_id": actor.id, "action": "profile.view", "object_type": "resident",
             "object_id": rid, "details": details} for rid in resident_ids])
        session.commit()


# ---------------------------------------------------------------------------------------- history

@dataclass
class HistoryEntry:
    at: datetime
    action: str
    actor: User | None
    changes: dict[str, dict[str, Any]]
    details: dict[str, Any]


def profile_history(session: Session, resident: Resident) -> list[HistoryEntry]:
    """What happened to the profile, newest first (from the audit trail's before/after)."""
    events = session.exec(select(AuditEvent).where(  # since it exists (see audit_events_about)
        AuditEvent.object_type == "resident", AuditEvent.object_id == resident.id,
        col(AuditEvent.at) >= resident.created_at).order_by(col(AuditEvent.id).desc())).all()
    actors = {u.id: u for u in session.exec(select(User).where(
        col(User.id).in_({e.actor_id for e in events if e.actor_id is not None}))).all()}
    return [HistoryEntry(e.at, e.action, actors.get(e.actor_id), dict(e.details.get("changes", {})),
                         {k: v for k, v in e.details.items() if k != "changes"})
            for e in events]


def declaration_versions(session: Session, resident: Resident) -> list[tuple[SkillDeclaration, User | None]]:
    """Every version of the resident's text, newest first, with its author."""
    versions = session.exec(select(SkillDeclaration).where(SkillDeclaration.resident_id == resident.id)
                            .order_by(col(SkillDeclaration.id).desc())).all()
    authors = {u.id: u for u in session.exec(select(User).where(
        col(User.id).in_({v.created_by_id for v in versions}))).all()}
    return [(v, authors.get(v.created_by_id)) for v in versions]
