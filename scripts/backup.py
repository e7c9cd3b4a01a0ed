#!/usr/bin/env python3
"""Back up and restore the database; the index is rebuilt from the restored rows.

    python scripts/backup.py backup  instance/backups/relais-2030-01-06.db
    python scripts/backup.py restore instance/backups/relais-2030-01-06.db   # then restart the service

SQLite (the embedded default) uses SQLite's online backup API: a consistent copy taken while the
service runs and writes. PostgreSQL (DATABASE_URL=postgresql://…) uses PostgreSQL's own tools, which
must match the server's major version:

    pg_dump --format=custom --no-owner --file=relais.dump "$DATABASE_URL"
    pg_restore --clean --if-exists --no-owner --single-transaction --dbname="$DATABASE_URL" relais.dump

A restore erases again the people erased since the backup was taken (read from the database's
journal before it is replaced): a backup must not bring back someone who asked to be forgotten.
Nor someone who left: the consents withdrawn and the erasure requests made since are withdrawn and
made again (the person stays out of matching, and the worker's page asks to erase them).
It also keeps the accounts' access as the replaced database had it: an account deactivated, a
password or access code changed, a token revoked since the backup must not open a door again.
`--print` prints the backup command instead of running it; a restore is never printed, since
pg_restore alone would do neither. After a restore the FAISS index files are
rebuilt from the vectors stored in the database (no text is re-encoded); running processes notice
the older database and rebuild too, but restart them anyway so no session outlives the restore.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select

from models import (
    ApiToken,
    AuditEvent,
    ClosedSession,
    Consent,
    Database,
    RequestKind,
    Resident,
    ResidentRequest,
    User,
    empty_write_ahead_log,
    utcnow,
)
from web.config import Config
from web.services.audit import record
from web.services.matching import MatchingService
from web.services.privacy import erase_resident
from web.services.proposals import withdraw_unreviewed


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    return Path(parsed.database or "") if parsed.get_backend_name() == "sqlite" else None


def libpq_url(url: str) -> str:
    """The URL PostgreSQL's tools read (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def pg_commands(url: str, path: Path) -> dict[str, list[str]]:
    target = libpq_url(url)
    return {"backup": ["pg_dump", "--format=custom", "--no-owner", f"--file={path}", target],
            "restore": ["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
                        f"--dbname={target}", str(path)]}


def sqlite_copy(source: Path, target: Path) -> None:
    """Copy one SQLite database into another with the online backup API (pages, under a lock)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target, timeout=30) as dst:
        src.backup(dst, pages=1024)
    src.close()
    dst.close()


def erasures(config: Config) -> list[tuple[int, datetime]]:
    """The erasures the database holds (its journal's resident.erase: id and instant), read before
    a restore: a backup taken before them would bring the people back, with their words and a
    working access code. None read from a database that cannot be opened (the reason to restore)."""
    try:
        with Database(config.database_url) as database, database.session() as session:
            rows = session.exec(select(AuditEvent.object_id, AuditEvent.at)
                                .where(AuditEvent.action == "resident.erase")).all()
    except SQLAlchemyError as exc:
        print(f"effacements illisibles / erasures unreadable ({exc.__class__.__name__}): après la "
              "restauration, effacez de nouveau les personnes effacées depuis la sauvegarde.",
              file=sys.stderr)
        return []
    return [(int(rid), at) for rid, at in rows if rid is not None]


@dataclass
class Access:
    """Who may get in, as the database a restore replaces has it: per account (id), who it is
    (address, resident, creation) and its door (active, password hash, access-code digest, forced
    change, session epoch); the revoked tokens (digest → when)."""

    accounts: dict[int, tuple[tuple[Any, ...], tuple[Any, ...]]] = field(default_factory=dict)
    revoked: dict[str, datetime] = field(default_factory=dict)
    closed: dict[str, datetime] = field(default_factory=dict)  # sessions logged out, till they expire


def access(config: Config) -> Access:
    """Read before a restore (an empty Access from a database that cannot be opened)."""
    try:
        with Database(config.database_url) as database, database.session() as session:
            users = session.exec(select(User)).all()
            tokens = session.exec(select(ApiToken.token_digest, ApiToken.revoked_at)
                                  .where(col(ApiToken.revoked_at).is_not(None))).all()
            closed = session.exec(select(ClosedSession).where(ClosedSession.expires_at > utcnow())).all() \
                if inspect(session.get_bind()).has_table(ClosedSession.__tablename__) else []
            return Access({u.id: (_who(u), _door(u)) for u in users if u.id is not None},
                          {digest: at for digest, at in tokens if at is not None},
                          {c.sid: c.expires_at for c in closed})
    except SQLAlchemyError as exc:
        print(f"comptes illisibles / accounts unreadable ({exc.__class__.__name__}): après la "
              "restauration, désactivez de nouveau les comptes et jetons retirés depuis la sauvegarde.",
              file=sys.stderr)
        return Access()


def _who(user: User) -> tuple[Any, ...]:
    """An account as itself: ids are given again after a restore (a resident's login has no address)."""
    return (user.email, user.resident_id, _naive(user.created_at))


def _door(user: User) -> tuple[Any, ...]:
    return (user.is_active, user.password_hash, user.access_code_digest, user.must_change_password,
            user.session_epoch)


def keep_access(config: Config, before: Access) -> tuple[int, int]:
    """Give the restored accounts (same id and address) the access the replaced database gave them,
    revoke again the tokens it had revoked and end again the sessions logged out since the backup
    (their cookies, up to 8 hours old, opened the door again). Return how many accounts and
    tokens changed."""
    accounts = tokens = sessions = 0
    with Database(config.database_url) as database, database.session() as session:
        for user in session.exec(select(User)).all():  # every resident has one: not an IN list
            if user.id not in before.accounts:
                continue
            who, door = before.accounts[user.id]
            if who != _who(user) or door == _door(user):  # another account under a reused id
                continue
            (user.is_active, user.password_hash, user.access_code_digest, user.must_change_password,
             epoch) = door
            user.session_epoch = max(epoch, user.session_epoch) + 1  # its sessions from the backup end
            session.add(user)
            accounts += 1
        for token in session.exec(select(ApiToken).where(col(ApiToken.revoked_at).is_(None))).all():
            if token.token_digest not in before.revoked:
                continue
            token.revoked_at = before.revoked[token.token_digest]
            session.add(token)
            tokens += 1
        # A backup older than the table (migration 0020) gets it at the next start, empty.
        if before.closed and inspect(session.get_bind()).has_table(ClosedSession.__tablename__):
            for sid, expires in before.closed.items():
                if session.get(ClosedSession, sid) is None:
                    session.add(ClosedSession(sid=sid, expires_at=expires))
                    sessions += 1
        if accounts or tokens or sessions:
            record(session, None, "backup.restore_access", "app_user", None, accounts=accounts, tokens=tokens,
                   sessions=sessions)
        session.commit()
    return accounts, tokens


@dataclass
class Leaving:
    """Who was leaving, as the database a restore replaces has it: the consents withdrawn (id →
    resident, recorded, withdrawn) and the erasure requests not dealt with yet (resident, sent,
    message)."""

    withdrawn: dict[int, tuple[int, datetime, datetime]] = field(default_factory=dict)
    asked: list[tuple[int, datetime, str]] = field(default_factory=list)
    # Erasure requests closed (the person changed their mind): (resident, sent) → (closed, by whom).
    kept: dict[tuple[int, datetime], tuple[datetime, int | None]] = field(default_factory=dict)


def leaving(config: Config) -> Leaving:
    """Read before a restore (an empty Leaving from a database that cannot be opened)."""
    try:
        with Database(config.database_url) as database, database.session() as session:
            consents = session.exec(select(Consent).where(col(Consent.withdrawn_at).is_not(None))).all()
            requests = session.exec(select(ResidentRequest).where(
                ResidentRequest.kind == RequestKind.ERASURE)).all()
            return Leaving({c.id: (c.resident_id, c.created_at, c.withdrawn_at)
                            for c in consents if c.id is not None and c.withdrawn_at is not None},
                           [(r.resident_id, r.created_at, r.message)
                            for r in requests if r.handled_at is None],
                           {(r.resident_id, _naive(r.created_at)): (r.handled_at, r.handled_by_id)
                            for r in requests if r.handled_at is not None})
    except SQLAlchemyError as exc:
        print(f"retraits illisibles / withdrawals unreadable ({exc.__class__.__name__}): après la "
              "restauration, retirez de nouveau les consentements retirés depuis la sauvegarde.",
              file=sys.stderr)
        return Leaving()


def withdraw_again(config: Config, before: Leaving) -> tuple[int, int, int]:
    """Withdraw again, in the restored database, the consents withdrawn since the backup (the same
    consent: id, person and moment), send again the erasure requests still open (for the same
    person: a profile made before the request), each withdrawing the person's consent as it did,
    and close again the ones closed since; their unreviewed proposals go. Return how many
    consents withdrawn, requests sent and requests closed."""
    consents = requests = closed_again = 0
    with Database(config.database_url) as database, database.session() as session:
        out: set[int] = set()
        for cid, (rid, created, withdrawn) in before.withdrawn.items():
            consent = session.get(Consent, cid)
            if consent is not None and consent.withdrawn_at is None and consent.resident_id == rid \
                    and _naive(consent.created_at) == _naive(created):
                consent.withdrawn_at = withdrawn
                session.add(consent)
                out.add(rid)
                consents += 1
        for rid, sent, message in before.asked:
            resident = session.get(Resident, rid)
            if resident is None or _naive(resident.created_at) > _naive(sent) or session.exec(
                    select(ResidentRequest.id).where(
                        ResidentRequest.resident_id == rid, ResidentRequest.kind == RequestKind.ERASURE,
                        col(ResidentRequest.handled_at).is_(None))).first() is not None:
                continue
            session.add(ResidentRequest(resident_id=rid, kind=RequestKind.ERASURE, message=message,
                                        created_at=sent))
            for consent in session.exec(select(Consent).where(
                    Consent.resident_id == rid, col(Consent.withdrawn_at).is_(None))).all():
                consent.withdrawn_at = sent
                session.add(consent)
            out.add(rid)
            requests += 1
        # A request closed since (the person changed their mind) stays closed: open again, the
        # retention run would erase the person once it is a month old.
        for request in session.exec(select(ResidentRequest).where(
                ResidentRequest.kind == RequestKind.ERASURE,
                col(ResidentRequest.handled_at).is_(None))).all():
            closed = before.kept.get((request.resident_id, _naive(request.created_at)))
            if closed is not None:
                request.handled_at, request.handled_by_id = closed
                session.add(request)
                closed_again += 1
        for rid in out:
            withdraw_unreviewed(session, resident_id=rid)
        if consents or requests or closed_again:
            record(session, None, "backup.restore_withdrawals", "resident", None, consents=consents,
                   requests=requests, closed=closed_again)
        session.commit()
    return consents, requests, closed_again


def erase_again(config: Config, erased: list[tuple[int, datetime]]) -> int:
    """Erase again, in the restored database, the people erased since the backup was taken: the
    same id, and a profile made before the erasure (an id given again after an older restore is
    someone else, made after it). Journaled as erasures (reason "restore")."""
    if not erased:
        return 0
    matching = MatchingService()
    matching.configure_from(config)
    count = 0
    with Database(config.database_url) as database, database.session() as session:
        for rid, at in erased:
            resident = session.get(Resident, rid)
            if resident is not None and _naive(resident.created_at) <= _naive(at):
                erase_resident(session, matching, None, resident, "restore")
                count += 1
        # SQLite: the restore wrote the backup's pages, their words included, through the
        # write-ahead log; the erasures overwrite the database's cells, not the log's copies.
        empty_write_ahead_log(session)
    return count


def _naive(moment: datetime) -> datetime:
    """An instant in UTC without its zone (SQLite gives them naive, PostgreSQL aware)."""
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def rebuild_index(config: Config) -> str:
    matching = MatchingService()
    matching.configure_from(config)
    with Database(config.database_url) as database, database.session() as session:
        matching.rebuild(session)
    return (f"index rebuilt: {len(matching.collections['residents'])} residents, "
            f"{len(matching.collections['needs'])} needs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["backup", "restore"])
    parser.add_argument("path", type=Path, help="the backup file")
    parser.add_argument("--print", action="store_true", dest="print_only",
                        help="PostgreSQL: print the pg_dump / pg_restore command, do not run it")
    args = parser.parse_args(argv)
    config = Config()
    path: Path = args.path.resolve()
    started = time.monotonic()
    database = sqlite_path(config.database_url)
    if args.action == "restore" and args.print_only:
        print("Une restauration n'est jamais affichée / a restore is never printed: pg_restore seul "
              "ramènerait les personnes effacées et les accès retirés depuis la sauvegarde. Lancez "
              f"« python scripts/backup.py restore {path} ».", file=sys.stderr)
        return 2
    if database is None:
        command = pg_commands(config.database_url, path)[args.action]
        if args.print_only:
            print(shlex.join(command))
            return 0
        if shutil.which(command[0]) is None:  # not the command itself: alone, a restore erases nothing
            print(f"{command[0]} introuvable / not found: install PostgreSQL's client tools "
                  "(Debian: postgresql-client), then run this script again.", file=sys.stderr)
            return 2
    erased = erasures(config) if args.action == "restore" else []
    doors = access(config) if args.action == "restore" else Access()
    left = leaving(config) if args.action == "restore" else Leaving()
    if database is None:
        if args.action == "backup":
            path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(command, check=True)
    elif args.action == "backup":
        sqlite_copy(database, path)
    else:
        if not path.exists():
            print(f"Sauvegarde introuvable / backup not found: {path}", file=sys.stderr)
            return 2
        sqlite_copy(path, database)
    done = f"{args.action} {'to' if args.action == 'backup' else 'from'} {path}"
    if args.action == "restore":
        done += f"; {erase_again(config, erased)} person(s) erased since the backup erased again"
        accounts, tokens = keep_access(config, doors)
        done += f"; access kept as it was: {accounts} account(s), {tokens} token(s) revoked again"
        consents, requests, closed = withdraw_again(config, left)
        done += (f"; {consents} consent(s) withdrawn again, {requests} erasure request(s) sent again, "
                 f"{closed} closed again")
        done += "; " + rebuild_index(config)
    print(f"{done} ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
