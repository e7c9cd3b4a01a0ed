"""Social workers and admins: CSV import (upload, preview, confirm), CSV export, and the pages that
follow background jobs (imports, the admins' full reindex)."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, url_for
from flask_babel import gettext as _

from models import BackgroundJob, JobStatus, Role
from web.extensions import db_session
from web.forms import ImportForm
from web.permissions import STAFF, get_job, roles_required, user
from web.services import AlreadyDone, ServiceError
from web.services import imports as csv_io
from web.services.jobs import enqueue, followed, job_state, job_status_label, recent_jobs, start_reindex

bp = Blueprint("imports", __name__, url_prefix="/accompagnement")


@bp.route("/import", methods=["GET", "POST"])
@roles_required(*STAFF)
def upload() -> Any:
    form = ImportForm()
    if form.validate_on_submit():
        upload = form.file.data
        try:
            job = csv_io.upload(db_session(), user(), form.entity.data or "", upload.filename or "",
                                upload.read())
        except ServiceError as exc:
            for message in exc.messages:
                flash(message, "error")
        else:
            return redirect(url_for("imports.preview", job_id=job.id))
    return render_template("worker/import.html", form=form, columns=csv_io.HEADERS,
                           required=csv_io.REQUIRED, jobs=recent_jobs(db_session(), user()),
                           job_status_label=job_status_label)


@bp.get("/import/<id:job_id>")
@roles_required(*STAFF)
def preview(job_id: int) -> Any:
    session = db_session()
    if session.get(BackgroundJob, job_id) is None:
        return _gone()
    job = get_job(session, user(), job_id)
    if job.status != JobStatus.DRAFT:
        return redirect(url_for("imports.job", job_id=job.id))
    parsed = csv_io.preview(session, job)
    return render_template("worker/import_preview.html", job=job, parsed=parsed,
                           headers=csv_io.HEADERS[parsed.entity], shown=parsed.rows[:csv_io.PREVIEW_ROWS])


@bp.post("/import/<id:job_id>/valider")
@roles_required(*STAFF)
def confirm(job_id: int) -> Any:
    session = db_session()
    if session.get(BackgroundJob, job_id) is None:
        return _gone()
    job = get_job(session, user(), job_id)
    try:
        csv_io.confirm(session, user(), job)
    except ServiceError as exc:
        for message in exc.messages:
            flash(message, "error")
        return redirect(url_for("imports.preview", job_id=job.id))
    _start(job.id or 0)
    return redirect(url_for("imports.job", job_id=job.id))


@bp.post("/import/<id:job_id>/annuler")
@roles_required(*STAFF)
def cancel(job_id: int) -> Any:
    session = db_session()
    if session.get(BackgroundJob, job_id) is None:
        return _gone()
    if csv_io.cancel(session, get_job(session, user(), job_id)):
        flash(_("Import annulé : le fichier a été oublié."), "success")
    else:
        flash(_("Cet import est déjà lancé : il ne peut plus être annulé."), "error")
    return redirect(url_for("imports.upload"))


@bp.get("/export/residents.csv")
@roles_required(*STAFF)
def export_residents() -> Any:
    text, _count = csv_io.export_residents(db_session(), user())
    return _download(text, f"relais-personnes-{date.today().isoformat()}.csv")


@bp.get("/export/besoins.csv")
@roles_required(*STAFF)
def export_needs() -> Any:
    text, _count = csv_io.export_needs(db_session(), user())
    return _download(text, f"relais-besoins-{date.today().isoformat()}.csv")


@bp.get("/taches/<id:job_id>")
@roles_required(*STAFF)
def job(job_id: int) -> Any:
    found = followed(db_session(), get_job(db_session(), user(), job_id))
    if found.status == JobStatus.DRAFT:
        return redirect(url_for("imports.preview", job_id=found.id))
    return render_template("worker/job.html", job=found, state=job_state(found))


@bp.get("/taches/<id:job_id>.json")
@roles_required(*STAFF)
def job_json(job_id: int) -> Any:
    response = jsonify(job_state(followed(db_session(), get_job(db_session(), user(), job_id))))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/taches/reindexation")
@roles_required(Role.ADMIN)
def reindex() -> Any:
    try:
        job = start_reindex(db_session(), user())
    except AlreadyDone as running:  # one is queued or running: follow it
        return redirect(url_for("imports.job", job_id=running.row_id))
    _start(job.id or 0)
    return redirect(url_for("imports.job", job_id=job.id))


def _gone() -> Any:
    """An uploaded file's preview, confirmation or cancellation after the file was forgotten (24 hours
    unconfirmed, or a person of the centre erased: jobs.drop_stale_drafts, drop_resident_drafts):
    say so on the upload page, where it can be sent again, instead of a bare 404."""
    flash(_("Ce fichier n'est plus là : un import qui n'a pas été lancé est oublié après 24 heures, "
            "ou dès qu'une personne de la structure est effacée. Déposez le fichier à nouveau."), "error")
    return redirect(url_for("imports.upload"))


def _start(job_id: int) -> None:
    if enqueue(job_id) == "failed":
        flash(_("La file d'attente ne répond pas : rien n'a été enregistré. Réessayez plus tard."),
              "error")


def _download(text: str, filename: str) -> Response:
    return Response(text.encode("utf-8"), content_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})
