"""scripts/backup.py for real: back up, change the data, restore, and find the old state (rows and
index) again. SQLite through its online backup API; PostgreSQL through pg_dump / pg_restore."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlmodel import Session, select

from models import ApiToken, AuditEvent, ClosedSession, Database, Resident, SkillDeclaration, User
from tests.conftest import World, add_resident
from web.config import Config
from web.extensions import db, matching
from web.services.matching import RESIDENTS, MatchingService
from web.services.privacy import erase_and_forget
from web.services.profiles import update_declaration

ROOT = Path(__file__).resolve().parents[2]


def run(config: Config, *args: str) -> str:
    env = {**os.environ, "RELAIS_INSTANCE_DIR": str(config.instance_dir),
           "DATABASE_URL": config.database_url}
    done = subprocess.run([sys.executable, "scripts/backup.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def ranking(service: MatchingService, session: Session, text: str) -> list[int]:
    vectors = service.encode([st.norm for st in service.analyze(text).statements])
    hits = service.search(session, RESIDENTS, vectors, 10, allowed=set(range(1, 1000)))
    return [hit.doc_id for hit in hits]


def test_backup_then_restore_gives_back_the_old_state(app: object, session: Session, world: World,
                                                      config: Config, tmp_path: Path) -> None:
    awa = add_resident(session, world, "Awa", "Je couds des robes et je fais des retouches.").resident
    add_resident(session, world, "Li", "Je cuisine pour quarante personnes.")
    query = "Un atelier couture pour les voisines"
    before = ranking(matching, session, query)
    assert before[0] == awa.id

    backup = tmp_path / "backups" / "relais.backup"
    printed = run(config, "backup", str(backup))
    assert backup.exists() and backup.stat().st_size > 0 and "backup to" in printed

    # Changes after the backup: a new person, and Awa's text replaced.
    add_resident(session, world, "Jorge", "Je répare les vélos des enfants.")
    update_declaration(session, matching, world.worker_a, awa, "Je conduis le minibus le samedi.")
    assert ranking(matching, session, query)[0] != awa.id
    session.close()
    db.dispose()  # the restore replaces the database under the service, as an operator would

    printed = run(config, "restore", str(backup))
    assert "index rebuilt: 2 residents" in printed

    with Database(config.database_url) as restored, restored.session() as s2:
        assert sorted(r.first_name for r in s2.exec(select(Resident)).all()) == ["Awa", "Li"]
        current = s2.exec(select(SkillDeclaration).where(
            SkillDeclaration.resident_id == awa.id, SkillDeclaration.is_current == True)).one()  # noqa: E712
        assert current.text == "Je couds des robes et je fais des retouches."
        # A process started after the restore loads the rebuilt files and ranks as before.
        fresh = MatchingService()
        fresh.configure_from(config)
        assert fresh.load_or_rebuild(s2) == "loaded"
        assert ranking(fresh, s2, query) == before
        # The running service sees an older database and rebuilds on its next search.
        assert ranking(matching, s2, query) == before


def test_a_restore_never_brings_back_someone_erased_since_the_backup(
        app: object, session: Session, world: World, config: Config, tmp_path: Path) -> None:
    """Restored from a backup taken before her erasure, Awa was back: her words, her proposals and
    an access code that opened her space. The restore erases her again (journaled); Li stays."""
    created = add_resident(session, world, "Awa", "Je couds des robes et je fais des retouches.")
    add_resident(session, world, "Li", "Je cuisine pour quarante personnes.")
    backup = tmp_path / "relais.backup"
    run(config, "backup", str(backup))
    erase_and_forget(session, matching, world.worker_a, created.resident, "request")
    session.close()
    db.dispose()
    sqlite = config.database_url.startswith("sqlite:///")
    # SQLite: a connection stays open, as the running service's do (the log outlives the restore).
    with db.engine.connect() if sqlite else contextlib.nullcontext() as service:
        if service is not None:
            service.exec_driver_sql("SELECT count(*) FROM resident").all()
        printed = run(config, "restore", str(backup))
    assert "1 person(s) erased since the backup erased again" in printed
    if sqlite:  # the restore wrote her pages through the write-ahead log: they leave it too
        database = Path(config.database_url.removeprefix("sqlite:///"))
        files = [database, database.with_name(database.name + "-wal")]
        assert not any(b"robes" in f.read_bytes() for f in files if f.exists())
    with Database(config.database_url) as restored, restored.session() as s2:
        assert [r.first_name for r in s2.exec(select(Resident)).all()] == ["Li"]
        assert not s2.exec(select(SkillDeclaration).where(
            SkillDeclaration.text.contains("robes"))).all()  # type: ignore[attr-defined]
        again = s2.exec(select(AuditEvent).where(AuditEvent.action == "resident.erase")).one()
        assert again.object_id == created.resident.id and again.details["reason"] == "restore"
        login = s2.exec(select(User).where(User.role == "resident", User.is_active == True)).all()  # noqa: E712
        assert [u.resident_id for u in login] != [created.resident.id] and len(login) == 1


def test_a_restore_keeps_who_may_get_in_as_the_replaced_database_had_it(
        app: object, session: Session, world: World, config: Config, tmp_path: Path) -> None:
    """Restored from a backup taken before, a deactivated account, a revoked API token, a password
    reset and a logout since all opened the door again."""
    from web.api.tokens import create_token, revoke_token
    from web.services.accounts import end_session
    from web.services.administration import reset_password, set_active

    leaked = create_token(session, world.worker_a, "tableur", False, 30)
    backup = tmp_path / "relais.backup"
    run(config, "backup", str(backup))
    set_active(session, world.admin, world.worker_b, False)
    revoke_token(session, world.worker_a, session.get(ApiToken, leaked.token.id))
    reset_password(session, world.admin, world.member)
    end_session(session, "logged-out-since", timedelta(hours=8))  # a copy of its cookie may be about
    session.expire_all()
    ids = {name: getattr(world, name).id for name in ("worker_a", "worker_b", "member")}
    new_hash = session.get(User, ids["member"]).password_hash  # type: ignore[union-attr]
    token_id = leaked.token.id
    session.close()
    db.dispose()
    printed = run(config, "restore", str(backup))
    assert "access kept as it was: 2 account(s), 1 token(s) revoked again" in printed
    with Database(config.database_url) as restored, restored.session() as s2:
        assert s2.get(User, ids["worker_b"]).is_active is False  # type: ignore[union-attr]
        member = s2.get(User, ids["member"])
        assert member is not None and member.password_hash == new_hash and member.must_change_password
        assert s2.get(ApiToken, token_id).revoked_at is not None  # type: ignore[union-attr]
        assert s2.get(User, ids["worker_a"]).session_epoch == 0  # unchanged since: untouched
        assert s2.get(ClosedSession, "logged-out-since") is not None
        kept = s2.exec(select(AuditEvent).where(AuditEvent.action == "backup.restore_access")).one()
        assert kept.details["sessions"] == 1


def test_a_restore_keeps_the_people_who_left_since_out_of_matching(
        app: object, session: Session, world: World, config: Config, tmp_path: Path) -> None:
    """Restored from a backup taken before, a consent withdrawn since was valid again and an
    erasure request was gone: the person back in matching, seen by associations, nobody told."""
    from datetime import date

    from models import RequestKind, ResidentRequest
    from web.services.privacy import create_request, handle_request
    from web.services.profiles import withdraw_consent
    from web.services.proposals import valid_consent_residents

    people = {name: add_resident(session, world, name, text).resident for name, text in (
        ("Awa", "Je couds des robes."), ("Binta", "Je cuisine pour les fêtes."), ("Li", "Je tricote."),
        ("Inès", "Je jardine."))}
    logins = {name: session.exec(select(User).where(User.resident_id == r.id)).one()
              for name, r in people.items()}
    changed_mind = create_request(session, logins["Inès"], people["Inès"], RequestKind.ERASURE, "")
    backup = tmp_path / "relais.backup"
    run(config, "backup", str(backup))
    assert withdraw_consent(session, logins["Awa"], people["Awa"])
    create_request(session, logins["Binta"], people["Binta"], RequestKind.ERASURE, "Je déménage.")
    handle_request(session, world.worker_a, changed_mind)  # « La personne a changé d'avis »
    ids = {name: r.id for name, r in people.items()}
    session.close()
    db.dispose()
    said = "2 consent(s) withdrawn again, 1 erasure request(s) sent again, 1 closed again"
    printed = run(config, "restore", str(backup))
    assert said in printed

    def check() -> None:
        with Database(config.database_url) as restored, restored.session() as s2:
            assert valid_consent_residents(s2, date.today()) == {ids["Li"]}
            asked = s2.exec(select(ResidentRequest).order_by(ResidentRequest.id)).all()  # type: ignore[arg-type]
            assert [(r.resident_id, r.message, r.handled_at is None) for r in asked] == [
                (ids["Inès"], "", False), (ids["Binta"], "Je déménage.", True)]
            assert s2.exec(select(AuditEvent).where(AuditEvent.action == "backup.restore_withdrawals")).all()

    check()
    assert said in run(config, "restore", str(backup))  # the same backup again: the same state
    check()


def test_an_id_given_again_after_a_restore_is_someone_else(
        app: object, session: Session, world: World, config: Config, tmp_path: Path) -> None:
    """Restore an older backup, record someone (their login takes the id of a login the newer
    backup holds), then restore the newer one: that login must not get the newcomer's code."""
    run(config, "backup", str(tmp_path / "older.backup"))
    add_resident(session, world, "Awa", "Je couds des robes.")
    run(config, "backup", str(tmp_path / "newer.backup"))
    session.close()
    db.dispose()
    run(config, "restore", str(tmp_path / "older.backup"))
    with db.session() as s1:
        add_resident(s1, world, "Li", "Je cuisine pour quarante personnes.")
    db.dispose()
    printed = run(config, "restore", str(tmp_path / "newer.backup"))
    assert "access kept as it was: 0 account(s)" in printed
    with Database(config.database_url) as restored, restored.session() as s2:
        awa = s2.exec(select(Resident).where(Resident.first_name == "Awa")).one()
        login = s2.exec(select(User).where(User.resident_id == awa.id)).one()
        assert login.is_active and login.session_epoch == 0


def test_postgres_commands_are_printed(config: Config, tmp_path: Path) -> None:
    """The backup's command; never the restore's alone: pg_restore would bring back the people
    erased and the doors closed since the backup."""
    pg = Config(instance_dir=config.instance_dir, database_url="postgresql://relais:secret@db.local/relais",
                secret_key="x")
    out = run(pg, "backup", str(tmp_path / "r.dump"), "--print")
    assert out.startswith("pg_dump --format=custom --no-owner")
    assert "postgresql://relais:secret@db.local/relais" in out
    env = {**os.environ, "RELAIS_INSTANCE_DIR": str(pg.instance_dir), "DATABASE_URL": pg.database_url}
    refused = subprocess.run([sys.executable, "scripts/backup.py", "restore", str(tmp_path / "r.dump"),
                              "--print"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and refused.stdout == ""
    assert "a restore is never printed" in refused.stderr
