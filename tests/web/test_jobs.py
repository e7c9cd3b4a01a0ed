"""Background jobs: progress on the row, inline in a thread without Redis, and for real on RQ with
Debian's redis-server (started here on a free 127.0.0.1 port) and a real RQ worker."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlmodel import Session, col, select, update

from models import AuditEvent, BackgroundJob, JobStatus, Resident, User, utcnow
from tests.conftest import Auth, World, add_resident
from tests.web.test_imports import draft_id, import_file, residents_csv, upload, wait_for
from web import create_app
from web.config import Config
from web.extensions import db
from web.services import ServiceError, imports, jobs
from web.services.jobs import JOB_TIMEOUT_S, SILENT_S, Progress, create_job, fail_abandoned, run_job

ROOT = Path(__file__).resolve().parents[2]
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway redis-server on 127.0.0.1 (no persistence), stopped after the module."""
    if not os.path.exists(REDIS_SERVER):
        pytest.fail("redis-server is missing: apt-get install redis-server (scripts/test does it as root)")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(folder)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from redis import Redis

    client = Redis(host="127.0.0.1", port=port)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except Exception:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        server.terminate()
        server.wait(10)


@pytest.fixture
def rq_app(config: Config, redis_url: str, migrated: object) -> Iterator[Flask]:
    """The app with REDIS_URL set: jobs go to RQ, never to a thread."""
    from redis import Redis

    Redis.from_url(redis_url).flushdb()
    config.redis_url = redis_url
    application = create_app(config)
    yield application
    db.dispose()


def count_residents() -> int:
    with db.session() as s:
        return int(s.exec(select(func.count()).select_from(Resident)).one())


def confirm(auth: Auth, job_id: int) -> None:
    response = auth.client.post(f"/accompagnement/import/{job_id}/valider",
                                data={"csrf_token": auth.token(f"/accompagnement/import/{job_id}")})
    assert response.status_code == 302


# ---------------------------------------------------------------------- progress and the inline path

def test_progress_is_visible_to_other_sessions_while_the_job_runs(app: Flask, session: Session,
                                                                  world: World) -> None:
    job = create_job(session, world.worker_a, "import_residents")
    session.commit()
    progress = Progress(job.id or 0, every_s=0)
    seen = []
    with app.app_context():
        progress.stage("analyse", total=4)
        for _step in range(4):
            progress.advance()
            with db.session() as other:  # what the progress page reads, from another connection
                row = other.get(BackgroundJob, job.id)
                assert row is not None
                seen.append((row.stage, row.progress, row.total))
    assert seen == [("analyse", 1, 4), ("analyse", 2, 4), ("analyse", 3, 4), ("analyse", 4, 4)]


def test_inline_import_job_reports_progress_and_result(client: FlaskClient, auth: Auth,
                                                       world: World) -> None:
    auth.login(world.worker_a.email or "")
    job_id = draft_id(upload(auth, residents_csv().encode()))
    confirm(auth, job_id)
    page = client.get(f"/accompagnement/taches/{job_id}").get_data(as_text=True)
    assert '<progress id="job-progress"' in page and "/static/jobs.js" in page
    assert "<script>" not in page  # CSP script-src 'self': the page polls through web/static/jobs.js
    assert "Actualiser" in page or "Terminé" in page  # without JavaScript: a link (or the result)
    job = wait_for(job_id)
    assert job.status == JobStatus.FINISHED, job.error
    state = client.get(f"/accompagnement/taches/{job_id}.json").get_json()
    assert state["status"] == "finished" and state["done"] is True and state["percent"] == 100
    assert state["progress"] == state["total"] == 9 and state["stage"] == "done"
    assert state["result"]["created"] == 3
    assert job.payload is None and job.started_at and job.finished_at
    assert count_residents() == 3
    page = client.get(f"/accompagnement/taches/{job_id}").get_data(as_text=True)
    assert "3 ligne(s) enregistrée(s)" in page


def test_a_running_job_beats_while_a_stage_writes_no_progress(app: Flask, session: Session,
                                                              world: World,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A stage may last minutes without a progress write (a long analysis, a rebuild): the job's
    heartbeat keeps its row moving, so it is not taken for one whose runner died; it stops with it."""
    job = create_job(session, world.admin, "slow")
    session.commit()
    monkeypatch.setattr(jobs, "HEARTBEAT_S", 0.05)
    long_ago = utcnow() - timedelta(hours=1)
    seen = []

    def slow(running: BackgroundJob, _progress: Progress) -> dict[str, int]:
        with db.session() as other:
            other.exec(update(BackgroundJob).where(col(BackgroundJob.id) == running.id)
                       .values(updated_at=long_ago))
            other.commit()
            time.sleep(0.5)
            other.expire_all()
            row = other.get(BackgroundJob, running.id)
            assert row is not None
            seen.append(row.updated_at)
            assert fail_abandoned(other) == 0
        return {}

    monkeypatch.setattr(jobs, "_handlers", lambda: {"slow": slow})
    with app.app_context():
        assert run_job(job.id or 0) == JobStatus.FINISHED
    assert seen[0] > long_ago + timedelta(minutes=59)
    with db.session() as other:  # finished: the heartbeat no longer writes
        other.exec(update(BackgroundJob).where(col(BackgroundJob.id) == job.id).values(updated_at=long_ago))
        other.commit()
    time.sleep(0.2)
    session.expire_all()
    finished = session.get(BackgroundJob, job.id)
    assert finished is not None and finished.updated_at == long_ago


def test_a_silent_running_job_fails_on_its_page_within_minutes(client: FlaskClient, auth: Auth,
                                                               session: Session, world: World) -> None:
    """Its runner killed, a job stayed « En cours » on the page that follows it for four hours (RQ's
    limit), until an upload or the retention run noticed. A running job beats every 30 s: silent
    for SILENT_S, the page (and its JSON poll, and the import page's list) says it stopped. A job
    still queued may wait behind others, and one that beat lately is left alone."""
    def job_at(status: str, seconds_ago: float) -> int:
        job = create_job(session, world.worker_a, "import_residents", status=status,
                         payload=b"Zoe;B;Les Tilleuls;couture", params={"entity": "residents",
                                                                        "filename": "a.csv"})
        session.commit()
        session.exec(update(BackgroundJob).where(col(BackgroundJob.id) == job.id).values(
            updated_at=utcnow() - timedelta(seconds=seconds_ago)))
        session.commit()
        return job.id or 0

    dead, beating, queued, listed = (job_at(JobStatus.RUNNING, SILENT_S + 60),
                                     job_at(JobStatus.RUNNING, SILENT_S - 60),
                                     job_at(JobStatus.QUEUED, SILENT_S + 60),
                                     job_at(JobStatus.RUNNING, SILENT_S + 60))
    auth.login(world.worker_a.email or "")
    page = client.get(f"/accompagnement/taches/{dead}").get_data(as_text=True)
    assert "Interrompue" in page and "En cours" not in page
    state = client.get(f"/accompagnement/taches/{beating}.json").get_json()
    assert state["status"] == JobStatus.RUNNING and not state["done"]
    assert client.get(f"/accompagnement/taches/{queued}.json").get_json()["status"] == JobStatus.QUEUED
    session.expire_all()
    row = session.get(BackgroundJob, listed)
    assert row is not None and row.status == JobStatus.RUNNING  # only the followed job was settled
    client.get("/accompagnement/import")
    session.expire_all()
    for job_id, status in ((dead, JobStatus.FAILED), (listed, JobStatus.FAILED),
                           (beating, JobStatus.RUNNING), (queued, JobStatus.QUEUED)):
        row = session.get(BackgroundJob, job_id)
        assert row is not None and row.status == status, (job_id, row)
        assert (row.payload is None) == (status == JobStatus.FAILED)


def test_a_job_runs_once(app: Flask, session: Session, world: World) -> None:
    job = create_job(session, world.admin, "reindex")
    session.commit()
    with app.app_context():
        assert run_job(job.id or 0) == JobStatus.FINISHED
        assert run_job(job.id or 0) == JobStatus.FINISHED  # a second delivery does nothing
        assert run_job(999_999) == "missing"


def test_a_double_tap_on_confirm_imports_once_and_cannot_cancel_the_import(
        client: FlaskClient, auth: Auth, session: Session, world: World,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two taps on "Importer" (or a tap and "Annuler") are two requests that both read the draft
    and check the file before either writes: each step is taken only from the state it leaves.
    Here the second request's reads are the test's own, made before the first confirmed."""
    auth.login(world.worker_a.email or "")
    job_id = draft_id(upload(auth, residents_csv().encode()))
    read_before = session.get(BackgroundJob, job_id)
    assert read_before is not None and read_before.status == JobStatus.DRAFT
    with client.application.test_request_context():
        checked_before = imports.preview(session, read_before)
    assert checked_before.ok
    monkeypatch.setattr(imports, "preview", lambda _session, _job: checked_before)
    confirm(auth, job_id)
    assert wait_for(job_id).status == JobStatus.FINISHED
    assert read_before.status == JobStatus.DRAFT  # the second request's view of the row
    with client.application.test_request_context():
        with pytest.raises(ServiceError, match="déjà lancé"):
            imports.confirm(session, world.worker_a, read_before)
        assert not imports.cancel(session, read_before)
    with db.session() as other:
        job = other.get(BackgroundJob, job_id)
        assert job is not None and job.status == JobStatus.FINISHED  # neither queued again nor deleted
        events = other.exec(select(func.count()).select_from(AuditEvent)
                            .where(AuditEvent.action == "import.confirm")).one()
    assert events == 1 and count_residents() == 3
    with client.application.app_context():
        assert run_job(job_id) == JobStatus.FINISHED  # a late delivery of the same job does nothing
    assert count_residents() == 3


def test_an_import_that_stops_after_saving_its_rows_says_they_are_saved(
        client: FlaskClient, auth: Auth, session: Session, world: World,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows are committed, then proposals are made. A failure there said « Erreur inattendue :
    rien n'a été enregistré. Réessayez », and a retry was refused as duplicates: the people were
    saved, without proposals. Now the job finishes and says which rows have none; a job whose
    process died at that stage says its rows are saved."""
    from web.services import proposals

    real = proposals.propose_for_resident

    def fails_for_one(session: Session, matching: object, person: Resident, today: object) -> int:
        if person.first_name == "Hélène":
            raise RuntimeError("the database went away")
        return real(session, matching, person, today)  # type: ignore[arg-type]

    monkeypatch.setattr(proposals, "propose_for_resident", fails_for_one)
    auth.login(world.worker_a.email or "")
    job = import_file(auth, residents_csv().encode())
    assert job.status == JobStatus.FINISHED, job.error
    assert (job.result["created"], job.result["missed"]) == (3, 1)
    assert count_residents() == 3
    page = client.get(f"/accompagnement/taches/{job.id}").get_data(as_text=True)
    assert "Pour 1 ligne(s), les propositions n'ont pas pu être faites" in page

    # A process killed while it made the proposals: the job row says the rows are saved.
    stopped = create_job(session, world.worker_a, "import_residents", status=JobStatus.RUNNING,
                         params={"entity": "residents", "filename": "b.csv"})
    stopped.stage, stopped.result = "propose", {"entity": "residents", "created": 3, "proposals": 0}
    session.add(stopped)
    session.commit()
    session.exec(update(BackgroundJob).where(col(BackgroundJob.id) == stopped.id).values(
        updated_at=utcnow() - timedelta(seconds=JOB_TIMEOUT_S + 60)))
    session.commit()
    with client.application.app_context():
        assert fail_abandoned(session) == 1
    session.commit()
    page = client.get(f"/accompagnement/taches/{stopped.id}").get_data(as_text=True)
    assert "3 ligne(s) enregistrée(s), puis la tâche s'est arrêtée" in page
    assert "Ne relancez pas l&#39;import" in page and "rien n'a été enregistré" not in page.lower()
    assert "Arrêtée : lignes enregistrées" in page

    # Failing for every row in a row, the cause is not the rows: the job stops, its rows saved.
    monkeypatch.setattr(proposals, "propose_for_resident", lambda *_args: 1 / 0)
    others = residents_csv().replace("Zoé;", "Zoë;").replace("Hélène;", "Hélena;") \
        .replace("Mamadou;", "Modou;")  # other people: the first three are held
    job = import_file(auth, others.encode())
    assert job.status == JobStatus.FAILED and job.result["created"] == 3 and count_residents() == 6
    assert job.error is not None and "Ne relancez pas l'import" in job.error


def test_admin_reindex_job(client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    add_resident(session, world, "Awa", "Je fais de la couture.")
    add_resident(session, world, "Binta", "Je cuisine pour les fêtes.")
    auth.login(world.worker_a.email or "")
    assert client.post("/accompagnement/taches/reindexation",
                       data={"csrf_token": auth.token()}).status_code == 403
    auth.logout()
    auth.login(world.admin.email or "")
    assert 'action="/accompagnement/taches/reindexation"' in client.get("/accompagnement/").get_data(
        as_text=True)  # the admins' button on the dashboard
    response = client.post("/accompagnement/taches/reindexation", data={"csrf_token": auth.token()})
    assert response.status_code == 302
    job_id = int(response.headers["Location"].rsplit("/", 1)[1])
    job = wait_for(job_id)
    assert job.status == JobStatus.FINISHED, job.error
    assert job.result["residents"] == 2 and job.result["needs"] == 0
    # While one waits or runs, a second press follows it rather than queueing another rebuild.
    waiting = create_job(session, world.admin, "reindex")
    session.commit()
    again = client.post("/accompagnement/taches/reindexation", data={"csrf_token": auth.token()})
    assert again.headers["Location"].endswith(f"/accompagnement/taches/{waiting.id}")
    assert len(session.exec(select(BackgroundJob).where(BackgroundJob.kind == "reindex")).all()) == 2
    # One left « en cours » by a process that died (its row still for longer than a job may run)
    # no longer stands for the rebuild: it is marked failed and a new one starts.
    session.exec(update(BackgroundJob).where(col(BackgroundJob.id) == waiting.id).values(
        status=JobStatus.RUNNING, updated_at=utcnow() - timedelta(seconds=JOB_TIMEOUT_S + 60)))
    session.commit()
    fresh = client.post("/accompagnement/taches/reindexation", data={"csrf_token": auth.token()})
    assert not fresh.headers["Location"].endswith(f"/accompagnement/taches/{waiting.id}")
    assert wait_for(int(fresh.headers["Location"].rsplit("/", 1)[1])).status == JobStatus.FINISHED
    session.expire_all()
    assert session.get(BackgroundJob, waiting.id).status == JobStatus.FAILED  # type: ignore[union-attr]
    auth.logout()
    auth.login(world.worker_a.email or "")  # a reindex is the admins' business
    assert client.get(f"/accompagnement/taches/{job_id}").status_code == 403


@pytest.mark.parametrize(("role", "expected"), [
    ("anonymous", "login"), ("worker_a", 200), ("worker_b", 403), ("member", 403), ("admin", 200),
])
def test_job_routes_permissions(client: FlaskClient, auth: Auth, session: Session, world: World,
                                role: str, expected: int | str) -> None:
    """The per-job routes (the MATRIX in test_permissions.py covers the others): a job belongs to
    the importer's organisation; admins follow every job."""
    job = create_job(session, world.worker_a, "import_residents", status=JobStatus.DRAFT,
                     payload=residents_csv().encode(), params={"entity": "residents", "filename": "a.csv"})
    done = create_job(session, world.worker_a, "import_residents", status=JobStatus.FAILED,
                      params={"entity": "residents", "filename": "b.csv"})
    session.commit()
    people = {"worker_a": world.worker_a, "worker_b": world.worker_b, "member": world.member,
              "admin": world.admin}
    if role in people:
        auth.login(people[role].email or "")
    routes = [("GET", f"/accompagnement/import/{job.id}"), ("GET", f"/accompagnement/taches/{done.id}"),
              ("GET", f"/accompagnement/taches/{done.id}.json"),
              ("POST", f"/accompagnement/import/{job.id}/annuler")]
    for method, path in routes:
        if method == "GET":
            response = client.get(path)
        else:
            response = client.post(path, data={"csrf_token": auth.token()})
        if expected == "login":
            assert response.status_code == 302 and "/connexion" in response.headers["Location"], path
        else:
            assert response.status_code == (302 if method == "POST" and expected == 200 else expected), path
    if role == "admin":
        assert client.get("/accompagnement/taches/999999").status_code == 404
        # A file that is not there (never was, or forgotten) sends back to the upload page.
        gone = client.post("/accompagnement/import/999999/valider", data={"csrf_token": auth.token()})
        assert gone.status_code == 302 and gone.headers["Location"].endswith("/accompagnement/import")


# ---------------------------------------------------------------------- RQ with a real Redis

def test_rq_path_with_a_real_worker(rq_app: Flask, redis_url: str) -> None:
    """REDIS_URL set: confirming queues the job on RQ (nothing runs in the web process); an RQ
    worker (SimpleWorker, burst mode, in this process) runs it."""
    from redis import Redis
    from rq import Queue, SimpleWorker

    from tests.conftest import make_world

    with db.session() as s:
        world = make_world(s)
    client = rq_app.test_client()
    auth = Auth(client)
    auth.login(world.worker_a.email or "")
    job_id = draft_id(upload(auth, residents_csv().encode("utf-8-sig")))
    confirm(auth, job_id)
    connection = Redis.from_url(redis_url)
    queue = Queue("relais", connection=connection)
    assert queue.count == 1
    with db.session() as s:
        assert s.get(BackgroundJob, job_id).status == JobStatus.QUEUED  # type: ignore[union-attr]
    assert count_residents() == 0
    state = client.get(f"/accompagnement/taches/{job_id}.json").get_json()
    assert state["status"] == "queued" and state["done"] is False and state["total"] == 9

    # An RQ worker installs its own SIGINT/SIGTERM handlers (it raises StopRequested on them):
    # give pytest its handlers back, or a later signal would land in the wrong place.
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)}
    try:
        with rq_app.app_context():
            worker = SimpleWorker([queue], connection=connection)
            assert worker.work(burst=True) is True
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    state = client.get(f"/accompagnement/taches/{job_id}.json").get_json()
    assert state["status"] == "finished", state["error"]
    assert state["progress"] == state["total"] == 9 and state["result"]["created"] == 3
    assert count_residents() == 3
    assert queue.count == 0 and len(queue.finished_job_registry) == 1


def test_rq_worker_script_runs_jobs_in_forked_work_horses(rq_app: Flask, redis_url: str,
                                                          config: Config) -> None:
    """scripts/worker.py --burst, in its own process, with the app's configuration from the
    environment, as the Procfile's `worker:` line runs it."""
    with db.session() as s:
        from tests.conftest import make_world

        world = make_world(s)
        admin = s.get(User, world.admin.id)
        assert admin is not None
    client = rq_app.test_client()
    auth = Auth(client)
    auth.login(world.worker_a.email or "")
    job_id = draft_id(upload(auth, residents_csv().encode("latin-1")))
    confirm(auth, job_id)
    env = {**os.environ, "DATABASE_URL": config.database_url, "REDIS_URL": redis_url,
           "RELAIS_INSTANCE_DIR": str(config.instance_dir), "SECRET_KEY": "test-secret"}
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "worker.py"), "--burst"], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    with db.session() as s:
        job = s.get(BackgroundJob, job_id)
        assert job is not None and job.status == JobStatus.FINISHED, (job and job.error, done.stderr[-3000:])
        assert job.result["created"] == 3
    assert count_residents() == 3


def test_redis_down_fails_the_job_and_writes_nothing(config: Config, migrated: object) -> None:
    config.redis_url = f"redis://127.0.0.1:{free_port()}/0"  # nobody listens there
    application = create_app(config)
    try:
        from tests.conftest import make_world

        with db.session() as s:
            world = make_world(s)
        auth = Auth(application.test_client())
        auth.login(world.worker_a.email or "")
        job_id = draft_id(upload(auth, residents_csv().encode()))
        confirm(auth, job_id)
        with db.session() as s:
            job = s.get(BackgroundJob, job_id)
            assert job is not None and job.status == JobStatus.FAILED
            assert job.error and job.error.startswith("La file d'attente ne répond pas")
        assert count_residents() == 0
    finally:
        db.dispose()


def test_following_a_live_job_writes_nothing_so_a_long_write_does_not_stop_it(
        app: Flask, client: FlaskClient, auth: Auth, session: Session, world: World,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The job's page, its poll and the import page only read while no job looks dead: with the
    write lock held (SQLite: an import writing its rows in one transaction), they used to wait for
    it, then answer 503. The resident's « Mes propositions » with nothing unread, the same."""
    import sqlite3

    import models.db

    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's one writer (PostgreSQL: fail_abandoned skips the rows others hold)")
    job = create_job(session, world.worker_a, "import_residents", status=JobStatus.RUNNING,
                     params={"entity": "residents", "filename": "a.csv"})
    awa = add_resident(session, world, "Awa", "Je fais de la couture.", initial="K")
    session.commit()
    monkeypatch.setattr(models.db, "BUSY_TIMEOUT_MS", 1000)
    db.engine.dispose()
    resident = Auth(app.test_client())
    resident.code_login(awa.access_code)
    auth.login(world.worker_a.email or "")
    writer = sqlite3.connect(db.engine.url.database, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # the import's « write » stage
    try:
        assert client.get(f"/accompagnement/taches/{job.id}.json").get_json()["status"] == JobStatus.RUNNING
        assert client.get(f"/accompagnement/taches/{job.id}").status_code == 200
        assert client.get("/accompagnement/import").status_code == 200
        assert resident.client.get("/moi/").status_code == 200
    finally:
        writer.execute("ROLLBACK")
        writer.close()
