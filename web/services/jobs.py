"""Background jobs (bulk imports, full reindex): RQ on Redis when `REDIS_URL` is set, otherwise a
thread of the web process. Either way the job keeps its progress on its `BackgroundJob` row, the
page that follows it reads that row, and the job receives only the row's id: it opens its own
database sessions, so the same code runs in a web process, in a forked RQ work horse, or on
another machine sharing the database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app, has_app_context
from flask_babel import lazy_gettext as _l
from sqlmodel import Session, and_, col, delete, func, or_, select, update

from models import BackgroundJob, JobStatus, User, utcnow
from web.services import ServiceError
from web.services.audit import record
from web.services.queries import written_once

log = logging.getLogger(__name__)

QUEUE = "relais"
JOB_TIMEOUT_S = 4 * 3600  # the largest import a 2 MB file holds takes minutes; be generous
HEARTBEAT_S = 30.0  # a running job touches its row at least this often, however long a stage lasts
SILENT_S = 5 * 60  # a running job whose row has not moved for this long has lost its runner
DRAFT_HOURS = 24  # an uploaded file nobody confirmed is dropped after this
REINDEX = "reindex"

STAGE_LABELS = {
    "": _l("En attente"),
    "read": _l("Lecture du fichier"),
    "analyse": _l("Analyse des textes"),
    "write": _l("Enregistrement"),
    "propose": _l("Recherche de propositions"),
    "reencode": _l("Ré-encodage des phrases"),
    "rebuild": _l("Reconstruction de l'index"),
    "done": _l("Terminé"),
}
STATUS_LABELS = {
    JobStatus.DRAFT: _l("Aperçu, pas encore lancé"),
    JobStatus.QUEUED: _l("En file d'attente"),
    JobStatus.RUNNING: _l("En cours"),
    JobStatus.FINISHED: _l("Terminé"),
    JobStatus.FAILED: _l("Échec : rien n'a été enregistré"),
}
STOPPED_AFTER_SAVING = _l("Arrêtée : lignes enregistrées, des propositions manquent")


def job_status_label(job: BackgroundJob) -> str:
    """A job's state in words: a failed import whose rows were saved says so."""
    if job.status == JobStatus.FAILED and (job.result or {}).get("created"):
        return str(STOPPED_AFTER_SAVING)
    return str(STATUS_LABELS.get(JobStatus(job.status), job.status))

Handler = Callable[[BackgroundJob, "Progress"], dict[str, Any]]


class JobFailed(ServiceError):
    """A job that stops on purpose, with French messages (e.g. one per bad row of a file)."""


class Progress:
    """Writes a job's progress to its row through a session of its own, so pages (and other
    machines) see it while the job works. Writes are spaced out; stages are written at once."""

    def __init__(self, job_id: int, every_s: float = 0.5) -> None:
        self.job_id = job_id
        self.every_s = every_s
        self.progress = 0
        self.total = 0
        self.stage_name = ""
        self._written_at = 0.0

    def stage(self, name: str, total: int | None = None) -> None:
        """Enter a stage (and optionally say how many steps the whole job has)."""
        self.stage_name = name
        if total is not None:
            self.total = total
        self.write()

    def advance(self, steps: int = 1) -> None:
        self.progress = min(self.progress + steps, self.total) if self.total else self.progress + steps
        if time.monotonic() - self._written_at >= self.every_s or self.progress == self.total:
            self.write()

    def write(self) -> None:
        from web.extensions import db

        with db.session() as session:
            job = session.get(BackgroundJob, self.job_id)
            if job is not None:
                job.stage, job.progress, job.total = self.stage_name, self.progress, self.total
                job.updated_at = utcnow()
                session.add(job)
                session.commit()
        self._written_at = time.monotonic()


def _handlers() -> dict[str, Handler]:
    from web.services.imports import NEEDS_KIND, RESIDENTS_KIND, run_import

    return {RESIDENTS_KIND: run_import, NEEDS_KIND: run_import, REINDEX: run_reindex}


# ---------------------------------------------------------------------- creating and enqueueing

def create_job(session: Session, actor: User, kind: str, *, params: dict[str, Any] | None = None,
               payload: bytes | None = None, status: str = JobStatus.QUEUED) -> BackgroundJob:
    """Add a job row for `actor` (committed by the caller)."""
    job = BackgroundJob(kind=kind, status=status, params=params or {}, payload=payload,
                        created_by_id=actor.id or 0, organisation_id=actor.organisation_id)
    session.add(job)
    session.flush()
    return job


def move(session: Session, job: BackgroundJob, leaving: str, **values: Any) -> bool:
    """Move `job` out of the state `leaving` (status and `values` written) if it is still there:
    one conditional UPDATE, so two requests (a double tap on "Importer", two work horses given
    the same job) cannot both take the same step. False, with nothing written, when another did.
    Not committed; `job` is refreshed."""
    moved = session.exec(update(BackgroundJob)  # type: ignore[call-overload]
                         .where(col(BackgroundJob.id) == job.id, col(BackgroundJob.status) == leaving)
                         .values(updated_at=utcnow(), **values))
    session.refresh(job)
    return bool(moved.rowcount)


def drop_stale_drafts(session: Session, now: datetime | None = None) -> int:
    """Forget the files uploaded but never confirmed for DRAFT_HOURS, whoever uploaded them (they
    hold names, declarations and consent dates); run at each upload and by the retention run.
    Return how many."""
    cutoff = (now or utcnow()) - timedelta(hours=DRAFT_HOURS)
    result = session.exec(delete(BackgroundJob).where(  # type: ignore[call-overload]
        col(BackgroundJob.status) == JobStatus.DRAFT, col(BackgroundJob.created_at) < cutoff))
    return int(result.rowcount or 0)


def drop_resident_drafts(session: Session, organisation_id: int | None) -> int:
    """Forget the residents' files uploaded for this centre (or by an administrator, who has none)
    and not confirmed: after an erasure one may hold the person's row (name, text, consent date)
    until DRAFT_HOURS, and every backup in between. Whoever uploaded one sends it again (its
    preview is gone, as after DRAFT_HOURS). Not committed; return how many."""
    from web.services.imports import RESIDENTS_KIND

    result = session.exec(delete(BackgroundJob).where(  # type: ignore[call-overload]
        col(BackgroundJob.status) == JobStatus.DRAFT, col(BackgroundJob.kind) == RESIDENTS_KIND,
        or_(col(BackgroundJob.organisation_id) == organisation_id,
            col(BackgroundJob.organisation_id).is_(None))))
    return int(result.rowcount or 0)


ABANDONED = _l("Interrompue (le programme qui la faisait s'est arrêté) : rien n'a été enregistré. "
                "Relancez-la.")
# An import's rows are written in one transaction, then proposals are made (stage "propose"):
# stopped there, its rows are saved, and running it again would refuse them as duplicates.
SAVED_STAGE = "propose"
SAVED_THEN_STOPPED = _l("Les lignes sont enregistrées, mais la tâche s'est arrêtée pendant les "
                        "propositions : certaines manquent. Ne relancez pas l'import ; les propositions "
                        "manquantes viendront avec les prochaines fiches et les prochains besoins.")


def fail_abandoned(session: Session, now: datetime | None = None, job_id: int | None = None) -> int:
    """Mark failed the jobs whose runner died, and forget their uploaded file: names and
    declarations kept for a job that will never end. A running job beats every HEARTBEAT_S
    (`run_job`), so one silent for SILENT_S lost its process (a work horse killed, a web process
    recycled with a job in a thread); a queued one may wait behind others, up to JOB_TIMEOUT_S
    (RQ's limit). Run at each upload, by the retention run, and for one job (`job_id`) by the page
    that follows it; return how many."""
    moment = now or utcnow()
    count = 0
    stale = (or_(and_(col(BackgroundJob.status) == JobStatus.RUNNING,
                      col(BackgroundJob.updated_at) < moment - timedelta(seconds=SILENT_S)),
                 and_(col(BackgroundJob.status) == JobStatus.QUEUED,
                      col(BackgroundJob.updated_at) < moment - timedelta(seconds=JOB_TIMEOUT_S))),
             *([col(BackgroundJob.id) == job_id] if job_id is not None else []))
    # Read first: with none dead (nearly always), a page that follows a job writes nothing, and so
    # does not wait for SQLite's write lock that an import holds while it writes its rows.
    if session.exec(select(BackgroundJob.id).where(*stale).limit(1)).first() is None:
        return 0
    stage = func.coalesce(col(BackgroundJob.stage), "")
    for saved in (True, False):
        # A row another transaction holds (PostgreSQL: an import writing its rows, its heartbeat
        # waiting) has a live runner: skipped, not waited for by the page that polls it.
        at_stage = stage == SAVED_STAGE if saved else stage != SAVED_STAGE
        dead = select(BackgroundJob.id).where(*stale, at_stage).with_for_update(skip_locked=True)
        result = session.exec(update(BackgroundJob)  # type: ignore[call-overload]
                              .where(col(BackgroundJob.id).in_(dead))
                              .values(status=JobStatus.FAILED, payload=None,
                                      error=str(SAVED_THEN_STOPPED if saved else ABANDONED),
                                      finished_at=moment, updated_at=moment))
        count += int(result.rowcount or 0)
    return count


class Heartbeat:
    """Touches a running job's row every HEARTBEAT_S from a thread of its own, so a stage that
    writes no progress for minutes (a long analysis, a rebuild) is not taken for a dead job. It
    dies with the process that runs the job: that silence is what `fail_abandoned` reads."""

    def __init__(self, job_id: int, every_s: float | None = None) -> None:
        self.job_id, self.every_s = job_id, HEARTBEAT_S if every_s is None else every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"relais-job-{job_id}-heartbeat",
                                        daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        from web.extensions import db

        while not self._stop.wait(self.every_s):
            try:
                with db.session() as session:
                    session.exec(update(BackgroundJob)  # type: ignore[call-overload]
                                 .where(col(BackgroundJob.id) == self.job_id,
                                        col(BackgroundJob.status) == JobStatus.RUNNING)
                                 .values(updated_at=utcnow()))
                    session.commit()
            except Exception:  # the database busy (SQLite, during a long write): beat again later
                log.warning("job %s: heartbeat not written", self.job_id, exc_info=True)


def enqueue(job_id: int) -> str:
    """Start the job: on RQ when the app has a Redis URL, else in a thread of this process.
    Return "rq", "inline", or "failed" (Redis unreachable: the job is marked failed, nothing
    was written). Call after the job row is committed."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    redis_url = app.config["RELAIS"].redis_url
    if redis_url:
        from redis.exceptions import RedisError

        try:
            queue(redis_url).enqueue_call("web.services.jobs.run_job", args=(job_id,),
                                          timeout=JOB_TIMEOUT_S, result_ttl=3600,
                                          failure_ttl=7 * 86400, description=f"relais job {job_id}")
        except RedisError:
            log.exception("could not queue job %s on %s", job_id, redis_url)
            _finish(job_id, JobStatus.FAILED, error=str(_l(
                "La file d'attente ne répond pas : rien n'a été enregistré. Réessayez plus tard.")))
            return "failed"
        return "rq"
    thread = threading.Thread(target=_run_in_app, args=(app, job_id), name=f"relais-job-{job_id}",
                              daemon=True)
    with _inline_lock:
        _inline_threads.add(thread)
    thread.start()
    return "inline"


_inline_threads: set[threading.Thread] = set()
_inline_lock = threading.Lock()


def join_inline_jobs(timeout_s: float = 300.0) -> None:
    """Wait for the jobs running in threads of this process (tests, and a clean shutdown)."""
    with _inline_lock:
        threads = list(_inline_threads)
    for thread in threads:
        thread.join(timeout_s)
    with _inline_lock:
        _inline_threads.difference_update(t for t in threads if not t.is_alive())


def queue(redis_url: str) -> Any:
    """The RQ queue Relais's jobs go to (imported here: only sites with Redis need it loaded)."""
    from redis import Redis
    from rq import Queue

    return Queue(QUEUE, connection=Redis.from_url(redis_url))


def start_reindex(session: Session, admin: User) -> BackgroundJob:
    """Queue a full rebuild of the index from the stored vectors (what scripts/reindex.py does);
    AlreadyDone(its id) while one is queued or running (a second press queued a second rebuild).
    A rebuild left « en cours » by a process that died is marked failed first: followed, it
    blocked every later rebuild until an upload or the retention run noticed it."""
    fail_abandoned(session)

    def waiting(besides: int | None) -> int | None:
        return session.exec(select(BackgroundJob.id).where(
            BackgroundJob.kind == REINDEX, col(BackgroundJob.id) != (besides or 0),
            col(BackgroundJob.status).in_([JobStatus.QUEUED, JobStatus.RUNNING]))
            .order_by(col(BackgroundJob.id))).first()

    job: BackgroundJob = written_once(session, admin, waiting, lambda: create_job(session, admin, REINDEX))
    record(session, admin, "index.rebuild_requested", "background_job", job.id)
    session.commit()
    return job


# ---------------------------------------------------------------------- running

def _run_in_app(app: Flask, job_id: int) -> None:
    with app.app_context():
        run_job(job_id)


def run_job(job_id: int) -> str:
    """Run one job to its end (the RQ entry point, and the inline thread's). Return its status.

    Inside an application context it uses that app's database and matching service (the web
    process, the RQ worker started by scripts/worker.py, a test); a bare `rq worker` has none, so
    it builds the app once from the environment.
    """
    if not has_app_context():
        with worker_app().app_context():
            return run_job(job_id)
    from web.extensions import db

    with db.session() as session:
        job = session.get(BackgroundJob, job_id)
        if job is None or not move(session, job, JobStatus.QUEUED, status=JobStatus.RUNNING,
                                   started_at=utcnow()):
            log.warning("job %s is not waiting to run (%s): skipped", job_id,
                        job.status if job else "missing")
            return job.status if job else "missing"
        session.commit()
    handler = _handlers().get(job.kind)
    progress = Progress(job_id)
    progress.total = job.total  # what the confirmation announced, until the job knows better
    try:
        if handler is None:
            raise JobFailed(_l("Tâche inconnue."))
        with Heartbeat(job_id):
            result = handler(job, progress)
    except JobFailed as exc:
        return _finish(job_id, JobStatus.FAILED, error="\n".join(exc.messages))
    except Exception:
        log.exception("job %s (%s) failed", job_id, job.kind)
        if progress.stage_name == SAVED_STAGE:  # after the rows' commit
            return _finish(job_id, JobStatus.FAILED, error=str(SAVED_THEN_STOPPED))
        return _finish(job_id, JobStatus.FAILED, error=str(_l(
            "Erreur inattendue : rien n'a été enregistré. Réessayez, ou prévenez l'administrateur.")))
    return _finish(job_id, JobStatus.FINISHED, result=result, progress=progress)


def _finish(job_id: int, status: str, *, error: str | None = None,
            result: dict[str, Any] | None = None, progress: Progress | None = None) -> str:
    from web.extensions import db

    with db.session() as session:
        job = session.get(BackgroundJob, job_id)
        assert job is not None
        job.status, job.error = status, error[:4000] if error else None
        if result is not None or status != JobStatus.FAILED:  # a failed import keeps what it saved
            job.result = result or {}
        job.payload = None  # the uploaded file is personal data: keep it no longer than the job
        if progress is not None:
            job.progress = job.total = max(progress.total, progress.progress)
            job.stage = "done"
        job.finished_at = job.updated_at = utcnow()
        session.add(job)
        session.commit()
    return status


_worker_app: Flask | None = None
_worker_app_lock = threading.Lock()


def worker_app() -> Flask:
    """The application a bare `rq worker` process runs jobs in (built once, from the environment)."""
    global _worker_app
    with _worker_app_lock:
        if _worker_app is None:
            from web import create_app

            _worker_app = create_app()
        return _worker_app


# ---------------------------------------------------------------------- the reindex job

def run_reindex(job: BackgroundJob, progress: Progress) -> dict[str, Any]:
    """Re-encode statements left by another model, then rebuild both index files from the stored
    vectors (scripts/reindex.py's work, for admins, from the web)."""
    from web.extensions import db, matching

    progress.stage("reencode", total=2)
    with db.session() as session:
        reencoded = matching.reencode_stale(session)
        progress.advance()
        progress.stage("rebuild")
        started = time.monotonic()
        matching.rebuild(session)
        progress.advance()
    return {"residents": len(matching.collections["residents"]),
            "needs": len(matching.collections["needs"]), "reencoded": reencoded,
            "generation": matching.generation, "seconds": round(time.monotonic() - started, 2)}


def followed(session: Session, job: BackgroundJob) -> BackgroundJob:
    """`job` as the page that follows it shows it: failed, if its runner died (committed)."""
    if job.status in (JobStatus.QUEUED, JobStatus.RUNNING) and fail_abandoned(session, job_id=job.id):
        session.commit()
        session.refresh(job)
    return job


def job_state(job: BackgroundJob) -> dict[str, Any]:
    """What the progress page shows (and polls as JSON)."""
    done = job.status in (JobStatus.FINISHED, JobStatus.FAILED)
    percent = 100 if job.status == JobStatus.FINISHED else (
        int(100 * job.progress / job.total) if job.total else 0)
    return {"id": job.id, "kind": job.kind, "status": job.status,
            "status_label": job_status_label(job),
            "stage": job.stage, "stage_label": str(STAGE_LABELS.get(job.stage, job.stage)),
            "progress": job.progress, "total": job.total, "percent": percent, "done": done,
            "error": job.error, "result": job.result}


def recent_jobs(session: Session, actor: User, limit: int = 10) -> list[BackgroundJob]:
    """The latest jobs `actor` may follow (their organisation's; every job for admins), those
    whose runner died marked failed first (committed)."""
    from models import Role

    if fail_abandoned(session):
        session.commit()

    query = select(BackgroundJob).where(col(BackgroundJob.status) != JobStatus.DRAFT)
    if actor.role != Role.ADMIN:
        query = query.where(col(BackgroundJob.organisation_id) == actor.organisation_id,
                            col(BackgroundJob.kind) != REINDEX)
    return list(session.exec(query.order_by(col(BackgroundJob.id).desc()).limit(limit)).all())
