"""Retention with a frozen clock: inactive profiles are warned, then anonymised after the grace
period; any activity in between voids the warning. The day is always injected (`today`,
`--today`): nothing sleeps and nothing depends on the day the tests run."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session, select

from models import (
    AnonymousCount,
    AuditEvent,
    BackgroundJob,
    Consent,
    JobStatus,
    Resident,
    SkillStatement,
    User,
    WithdrawnProposal,
    utcnow,
)
from tests.conftest import Auth, World, add_resident
from web.config import Config
from web.extensions import matching
from web.services.jobs import JOB_TIMEOUT_S, create_job, drop_stale_drafts
from web.services.matching import RESIDENTS, MatchingService, from_blobs
from web.services.privacy import run_retention
from web.services.profiles import add_months
from web.services.proposals import WITHDRAWN_KEPT_DAYS

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import retention  # noqa: E402

MONTHS, GRACE = 24, 30


def _actions(session: Session, rid: int) -> list[str]:
    return [e.action for e in session.exec(select(AuditEvent).where(
        AuditEvent.object_type == "resident", AuditEvent.object_id == rid)
        .order_by(AuditEvent.id)).all()]  # type: ignore[arg-type]


def test_inactive_profiles_are_warned_then_anonymised(client: FlaskClient, auth: Auth,
                                                      session: Session, world: World) -> None:
    created = date.today()  # the profiles' timestamps; every "today" below is derived from it
    awa = add_resident(session, world, "Awa", "Je fais de la couture.").resident
    binta = add_resident(session, world, "Binta", "Je fais des gâteaux.").resident
    rid = awa.id or 0

    early = run_retention(session, matching, add_months(created, 23), MONTHS, GRACE)
    assert (early.warned, early.anonymised) == ([], [])

    # Binta logs in later than Awa: still active when Awa is not.
    login = session.exec(select(User).where(User.resident_id == binta.id)).one()
    login.last_login_at = login.created_at + timedelta(days=120)
    session.add(login)
    session.commit()

    warn_day = add_months(created, 25)
    report = run_retention(session, matching, warn_day, MONTHS, GRACE)
    assert (report.warned, report.anonymised) == ([rid], [])
    session.refresh(awa)
    assert awa.retention_warned_at is not None and awa.retention_warned_at.date() == warn_day
    warn = session.exec(select(AuditEvent).where(AuditEvent.action == "retention.warn")).one()
    assert warn.actor_id is None and warn.details["anonymise_on"] == (
        warn_day + timedelta(days=GRACE)).isoformat()

    # The warning shows on the dashboard and on the profile.
    auth.login(world.worker_a.email or "")
    day = (warn_day + timedelta(days=GRACE)).strftime("%d/%m/%Y")
    assert f"sera anonymisé·e le {day}" in client.get("/accompagnement/").get_data(as_text=True)
    page = client.get(f"/accompagnement/residents/{rid}").get_data(as_text=True)
    assert f"il sera anonymisé le {day}" in page

    # A second run the same day or within the grace period warns nobody again, erases nobody.
    within = run_retention(session, matching, warn_day + timedelta(days=GRACE - 1), MONTHS, GRACE)
    assert (within.warned, within.anonymised) == ([], [])
    assert session.get(Resident, rid) is not None

    vectors = from_blobs([s.vector for s in session.exec(select(SkillStatement).where(
        SkillStatement.resident_id == rid)).all()], matching.dim)
    after = run_retention(session, matching, warn_day + timedelta(days=GRACE), MONTHS, GRACE)
    assert after.anonymised == [rid]
    if session.get_bind().dialect.name == "sqlite":  # nor in the write-ahead log beside the file
        path = Path(session.get_bind().url.database or "")
        assert not any(b"couture" in f.read_bytes() for f in (path, path.with_name(path.name + "-wal"))
                       if f.exists())
    session.expire_all()
    assert session.get(Resident, rid) is None and session.get(Resident, binta.id) is not None
    erase = session.exec(select(AuditEvent).where(AuditEvent.action == "resident.erase")).one()
    assert erase.actor_id is None and erase.details["reason"] == "retention"
    assert [(c.metric, c.status) for c in session.exec(select(AnonymousCount)).all()
            if c.metric == "resident"] == [("resident", "retention")]
    hits = matching.search(session, RESIDENTS, vectors, 10, {rid, binta.id or 0})
    assert rid not in {h.doc_id for h in hits}
    assert _actions(session, rid)[-2:] == ["retention.warn", "resident.erase"]


def test_activity_after_the_warning_voids_it(session: Session, world: World) -> None:
    created = date.today()
    awa = add_resident(session, world, "Awa", "Je fais de la couture.").resident
    warn_day = add_months(created, 25)
    assert run_retention(session, matching, warn_day, MONTHS, GRACE).warned == [awa.id]
    login = session.exec(select(User).where(User.resident_id == awa.id)).one()
    login.last_login_at = awa.retention_warned_at + timedelta(days=3)  # type: ignore[operator]
    session.add(login)
    session.commit()
    report = run_retention(session, matching, warn_day + timedelta(days=GRACE + 5), MONTHS, GRACE)
    assert (report.cleared, report.anonymised, report.warned) == ([awa.id], [], [])
    session.refresh(awa)
    assert awa.retention_warned_at is None
    assert _actions(session, awa.id or 0)[-1] == "retention.cancel"
    # Inactive again for the whole period: a new warning, not an immediate erasure.
    later = add_months(warn_day, MONTHS + 1)
    assert run_retention(session, matching, later, MONTHS, GRACE).warned == [awa.id]


def test_withdrawing_consent_does_not_keep_the_profile_longer(session: Session, world: World) -> None:
    """A withdrawal is the person leaving, not a sign of life: the profile is warned, then erased,
    on the inactivity before it, as if it had not been withdrawn (a renewal counts)."""
    created = date.today()
    awa = add_resident(session, world, "Awa", "Je fais de la couture.").resident
    consent = session.exec(select(Consent).where(Consent.resident_id == awa.id)).one()
    consent.withdrawn_at = datetime.combine(add_months(created, 23), time(), UTC)
    session.add(consent)
    session.commit()
    assert run_retention(session, matching, add_months(created, 25), MONTHS, GRACE).warned == [awa.id]
    renewed = add_months(created, 25) + timedelta(days=2)
    session.add(Consent(resident_id=awa.id or 0, given_on=renewed, scope="matching", method="oral",
                        recorded_by_id=world.worker_a.id or 0,
                        created_at=datetime.combine(renewed, time(), UTC)))
    session.commit()
    report = run_retention(session, matching, add_months(created, 25) + timedelta(days=GRACE), MONTHS, GRACE)
    assert (report.cleared, report.anonymised) == ([awa.id], [])


def test_an_erasure_request_is_no_sign_of_life_and_is_carried_out_when_overdue(
        session: Session, world: World) -> None:
    """Asking for erasure counted as activity: the profile of a person who asked to be erased
    was kept two more years. Now it is the person leaving, as a withdrawal; and a request nobody
    carried out within the grace days (the RGPD's month) is carried out by the run. A request a
    worker closed (the person changed their mind) is not."""
    from models import RequestKind, ResidentRequest
    from web.services.privacy import create_request

    created = date.today()
    awa, binta, ines = (add_resident(session, world, name, "Je fais de la couture.").resident
                        for name in ("Awa", "Binta", "Inès"))
    first = add_months(created, 25)
    for person, handled in ((awa, None), (ines, utcnow())):
        login = session.exec(select(User).where(User.resident_id == person.id)).one()
        request = create_request(session, login, person, RequestKind.ERASURE, "")
        request.created_at = datetime.combine(first - timedelta(days=10), time(), UTC)
        request.handled_at = handled
        session.add(request)
    session.commit()
    report = run_retention(session, matching, first, MONTHS, GRACE)
    assert (report.warned, report.requested) == ([awa.id, binta.id, ines.id], [])
    later = run_retention(session, matching, first + timedelta(days=21), MONTHS, GRACE)
    assert (later.requested, later.anonymised) == ([awa.id], [])
    session.expire_all()
    assert session.get(Resident, awa.id) is None
    assert session.get(Resident, binta.id) is not None and session.get(Resident, ines.id) is not None
    erased = session.exec(select(AuditEvent).where(AuditEvent.action == "resident.erase")).one()
    assert (erased.object_id, erased.actor_id, erased.details["reason"]) == (awa.id, None, "request")
    assert session.exec(select(ResidentRequest).where(ResidentRequest.resident_id == awa.id)).all() == []


def test_the_cli_warns_then_anonymises_and_rebuilds_the_index(
        session: Session, world: World, config: Config, capsys: pytest.CaptureFixture[str]) -> None:
    created = date.today()
    awa = add_resident(session, world, "Awa", "Je fais de la couture.").resident
    rid = awa.id or 0
    vectors = from_blobs([s.vector for s in session.exec(select(SkillStatement).where(
        SkillStatement.resident_id == rid)).all()], matching.dim)
    warn_day = add_months(created, 25)
    args = ["--months", str(MONTHS), "--grace-days", str(GRACE)]

    assert retention.main(["--today", warn_day.isoformat(), "--dry-run", *args], config, matching) == 0
    assert "1 profile(s) would be warned" in capsys.readouterr().out
    session.expire_all()
    assert session.get(Resident, rid).retention_warned_at is None  # type: ignore[union-attr]

    assert retention.main(["--today", warn_day.isoformat(), *args], config, matching) == 0
    assert "1 profile(s) were warned, 0 were anonymised" in capsys.readouterr().out
    end = (warn_day + timedelta(days=GRACE)).isoformat()
    assert retention.main(["--today", end, *args], config, matching) == 0
    assert "0 profile(s) were warned, 1 were anonymised" in capsys.readouterr().out
    session.expire_all()
    assert session.get(Resident, rid) is None
    # The files the script rebuilt hold no vector of the erased person.
    fresh = MatchingService()
    fresh.configure_from(config)
    assert fresh.load_or_rebuild(session) == "loaded"
    assert fresh.search(session, RESIDENTS, vectors, 10, {rid}) == []

    with pytest.raises(SystemExit) as bad:
        retention.main(["--today", "yesterday"], config, matching)
    assert bad.value.code == 2


def test_files_uploaded_and_never_confirmed_are_dropped_whoever_uploaded_them(
        session: Session, world: World) -> None:
    """An import's draft holds names, declarations and consent dates: the retention run drops
    those left unconfirmed for a day, as a later upload does, not only its uploader's."""
    today = date.today()
    old, recent = (create_job(session, world.worker_a, "import_residents", status=JobStatus.DRAFT,
                              payload=b"Zoe;B;Les Tilleuls;couture") for _ in range(2))
    old.created_at -= timedelta(days=3)
    session.add(old)
    session.commit()
    assert run_retention(session, matching, today, 24, 30, dry_run=True).drafts == 0
    assert session.get(BackgroundJob, old.id) is not None
    assert run_retention(session, matching, today, 24, 30).drafts == 1
    session.expire_all()
    assert session.get(BackgroundJob, old.id) is None and session.get(BackgroundJob, recent.id) is not None
    # Every upload runs the same drop, for everyone's drafts (it dropped only its uploader's).
    stale = create_job(session, world.worker_a, "import_residents", status=JobStatus.DRAFT, payload=b"x")
    stale.created_at -= timedelta(days=2)
    session.add(stale)
    session.commit()
    assert drop_stale_drafts(session) == 1
    # 25 hours old at the run (by the clock), though less than a day before today's midnight.
    late = create_job(session, world.worker_a, "import_residents", status=JobStatus.DRAFT, payload=b"x")
    late.created_at = utcnow() - timedelta(hours=25)
    session.add(late)
    session.commit()
    assert run_retention(session, matching, today, 24, 30).drafts == 1


def test_a_job_whose_runner_died_is_failed_and_its_file_forgotten(client: FlaskClient, auth: Auth,
                                                                 session: Session, world: World) -> None:
    """A killed RQ work horse (or a recycled web process with a job in a thread) left the job
    « en cours » for ever, and its uploaded file (names, declarations) with it. One that still
    moves, or moved within the jobs' time limit, is left alone."""
    stale, alive = (create_job(session, world.worker_a, "import_residents", status=status,
                               payload=b"Zoe;B;Les Tilleuls;couture")
                    for status in (JobStatus.RUNNING, JobStatus.QUEUED))
    stale.updated_at -= timedelta(seconds=JOB_TIMEOUT_S + 60)
    alive.updated_at -= timedelta(seconds=JOB_TIMEOUT_S - 600)
    session.add_all([stale, alive])
    session.commit()
    assert run_retention(session, matching, date.today(), 24, 30, dry_run=True).abandoned == 0
    assert run_retention(session, matching, date.today(), 24, 30).abandoned == 1
    session.expire_all()
    failed = session.get(BackgroundJob, stale.id)
    assert failed is not None and failed.status == JobStatus.FAILED and failed.payload is None
    assert "Interrompue" in (failed.error or "")
    waiting = session.get(BackgroundJob, alive.id)
    assert waiting is not None and waiting.status == JobStatus.QUEUED and waiting.payload
    # Its page says so, instead of « En cours ».
    auth.login(world.worker_a.email or "")
    page = client.get(f"/accompagnement/taches/{stale.id}").get_data(as_text=True)
    assert "Interrompue" in page and "En cours" not in page


def test_withdrawn_proposals_ids_are_kept_a_year(session: Session) -> None:
    today = date(2031, 6, 1)
    noon = datetime.combine(today, time(12), UTC)
    for match_id, days in ((1, WITHDRAWN_KEPT_DAYS + 1), (2, WITHDRAWN_KEPT_DAYS - 1)):
        session.add(WithdrawnProposal(id=match_id, withdrawn_at=noon - timedelta(days=days)))
    session.commit()
    assert run_retention(session, matching, today, MONTHS, GRACE).withdrawals == 1
    assert [w.id for w in session.exec(select(WithdrawnProposal)).all()] == [2]
