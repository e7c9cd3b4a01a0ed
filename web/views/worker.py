"""Social workers: residents' profiles and the review desk."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask import session as flask_session
from flask_babel import gettext as _
from sqlmodel import col, select

from matcher.sensitive import Finding, find_sensitive
from models import (
    Match,
    MatchStatus,
    Need,
    Organisation,
    Resident,
    Role,
    SkillDeclaration,
)
from web.extensions import db_session, matching
from web.forms import (
    REJECTION_LABELS,
    ActionForm,
    ConsentForm,
    DeclarationForm,
    RejectForm,
    ResidentForm,
    choices,
)
from web.permissions import STAFF, get_match_to_review, get_resident, roles_required, user
from web.services import ServiceError
from web.services.dashboard import worker_dashboard
from web.services.profiles import (
    ResidentInput,
    create_resident,
    current_consent,
    renew_consent,
    reset_access_code,
    territories,
    update_declaration,
    withdraw_consent,
)
from web.services.proposals import current_statements
from web.services.review import approve, reject

bp = Blueprint("worker", __name__, url_prefix="/accompagnement")


def _my_residents_query() -> Any:
    query = select(Resident).order_by(col(Resident.first_name))
    if user().role != Role.ADMIN:
        query = query.where(Resident.organisation_id == user().organisation_id)
    return query


@bp.get("/")
@roles_required(*STAFF)
def dashboard() -> Any:
    session = db_session()
    residents = session.exec(_my_residents_query()).all()
    return render_template("worker/dashboard.html", residents=residents,
                           today=worker_dashboard(session, residents, date.today()))


@bp.route("/residents/nouveau", methods=["GET", "POST"])
@roles_required(*STAFF)
def new_resident() -> Any:
    session = db_session()
    form = ResidentForm()
    form.territory_id.choices = choices({t.id: f"{t.name} ({t.commune})" for t in territories(session)})
    findings = find_sensitive(form.declaration.data or "") if form.is_submitted() else []
    if findings and not form.sensitive_ok.data:
        form.validate()  # show the other messages too
    elif form.validate_on_submit():
        data = ResidentInput(
            first_name=form.first_name.data or "",
            last_initial=form.last_initial.data or "",
            territory_id=form.territory_id.data,
            languages=form.languages.data or [],
            availability=form.availability.data or [],
            wants=form.wants.data or [],
            consent_given_on=form.consent_given_on.data,
            consent_method=form.consent_method.data or "",
            consent_matching=bool(form.consent_matching.data),
            declaration=form.declaration.data or "",
        )
        try:
            created = create_resident(session, matching, user(), data,
                                      _config().consent_months, date.today())
        except ServiceError as exc:
            for message in exc.messages:
                flash(message, "error")
        else:
            flash(_("Profil enregistré. %(n)d proposition(s) à examiner.", n=created.proposals),
                  "success")
            return _show_code_once(created.resident.id or 0, created.access_code)
    elif form.is_submitted():
        flash(_("Le formulaire n'est pas complet : voyez les messages sous les champs."), "error")
    return render_template("worker/resident_form.html", form=form, findings=findings)


@bp.get("/residents/<int:resident_id>")
@roles_required(*STAFF)
def resident(resident_id: int) -> Any:
    session = db_session()
    return _resident_page(get_resident(session, user(), resident_id))


def _resident_page(person: Resident, form: DeclarationForm | None = None,
                   findings: list[Finding] | None = None) -> Any:
    session = db_session()
    declaration = session.exec(select(SkillDeclaration).where(
        SkillDeclaration.resident_id == person.id, col(SkillDeclaration.is_current).is_(True))
    ).first()
    statements = current_statements(session, person.id or 0, with_negated=True)
    matches = session.exec(select(Match).where(Match.resident_id == person.id)
                           .order_by(col(Match.score).desc())).all()
    needs = {n.id: n for n in session.exec(
        select(Need).where(col(Need.id).in_([m.need_id for m in matches]))).all()}
    form = form or DeclarationForm(declaration=declaration.text if declaration else "")
    consent = current_consent(session, person)
    return render_template("worker/resident.html", resident=person, declaration=declaration,
                           statements=statements, matches=matches, needs=needs, form=form,
                           action=ActionForm(), findings=findings or [], consent=consent,
                           consent_valid=bool(consent and consent.is_valid(date.today())),
                           consent_form=ConsentForm())


@bp.post("/residents/<int:resident_id>/declaration")
@roles_required(*STAFF)
def edit_declaration(resident_id: int) -> Any:
    session = db_session()
    person = get_resident(session, user(), resident_id)
    form = DeclarationForm()
    findings = find_sensitive(form.declaration.data or "")
    if findings and not form.sensitive_ok.data:
        return _resident_page(person, form, findings)
    if form.validate_on_submit():
        try:
            added = update_declaration(session, matching, user(), person, form.declaration.data or "")
        except ServiceError as exc:
            for message in exc.messages:
                flash(message, "error")
        else:
            flash(_("Texte enregistré. %(n)d nouvelle(s) proposition(s).", n=added), "success")
    return redirect(url_for("worker.resident", resident_id=person.id))


@bp.post("/residents/<int:resident_id>/consentement/retrait")
@roles_required(*STAFF)
def withdraw(resident_id: int) -> Any:
    session = db_session()
    person = get_resident(session, user(), resident_id)
    if ActionForm().validate_on_submit():
        withdraw_consent(session, user(), person)
        flash(_("Consentement retiré : la personne ne reçoit plus de proposition."), "success")
    return redirect(url_for("worker.resident", resident_id=person.id))


@bp.post("/residents/<int:resident_id>/consentement")
@roles_required(*STAFF)
def renew(resident_id: int) -> Any:
    session = db_session()
    person = get_resident(session, user(), resident_id)
    form = ConsentForm()
    if form.validate_on_submit():
        try:
            renew_consent(session, user(), person, form.method.data or "", date.today(),
                          _config().consent_months)
        except ServiceError as exc:
            flash(str(exc), "error")
        else:
            flash(_("Consentement enregistré."), "success")
    return redirect(url_for("worker.resident", resident_id=person.id))


@bp.post("/residents/<int:resident_id>/code")
@roles_required(*STAFF)
def new_code(resident_id: int) -> Any:
    session = db_session()
    person = get_resident(session, user(), resident_id)
    if not ActionForm().validate_on_submit():
        return redirect(url_for("worker.resident", resident_id=person.id))
    return _show_code_once(person.id or 0, reset_access_code(session, user(), person))


def _show_code_once(resident_id: int, code: str) -> Any:
    """Post/redirect/get: reloading the page must not create the person (or a code) again."""
    flask_session["access_code"] = {"resident_id": resident_id, "code": code}
    return redirect(url_for("worker.access_code", resident_id=resident_id))


@bp.get("/residents/<int:resident_id>/code")
@roles_required(*STAFF)
def access_code(resident_id: int) -> Any:
    person = get_resident(db_session(), user(), resident_id)
    shown = flask_session.pop("access_code", None)
    if not shown or shown.get("resident_id") != person.id:
        return redirect(url_for("worker.resident", resident_id=person.id))
    return render_template("worker/access_code.html", resident=person, code=shown["code"])


@bp.get("/propositions")
@roles_required(*STAFF)
def review_desk() -> Any:
    session = db_session()
    residents = {r.id: r for r in session.exec(_my_residents_query()).all()}
    proposals = session.exec(
        select(Match).where(col(Match.resident_id).in_(list(residents)),
                            Match.status == MatchStatus.PROPOSED)
        .order_by(col(Match.score).desc(), col(Match.id))).all()
    needs = {n.id: n for n in session.exec(
        select(Need).where(col(Need.id).in_([m.need_id for m in proposals]))).all()}
    organisations = {o.id: o for o in session.exec(select(Organisation)).all()}
    return render_template("worker/review.html", proposals=proposals, residents=residents,
                           needs=needs, organisations=organisations, action=ActionForm(),
                           reject_form=RejectForm(), reasons=REJECTION_LABELS)


@bp.post("/propositions/<int:match_id>/valider")
@roles_required(*STAFF)
def approve_match(match_id: int) -> Any:
    session = db_session()
    match = get_match_to_review(session, user(), match_id)
    if ActionForm().validate_on_submit():
        try:
            approve(session, user(), match)
        except ServiceError as exc:
            flash(str(exc), "error")
        else:
            flash(_("Proposition validée : la personne la verra dans son espace."), "success")
    return redirect(request.referrer or url_for("worker.review_desk"))


@bp.post("/propositions/<int:match_id>/refuser")
@roles_required(*STAFF)
def reject_match(match_id: int) -> Any:
    session = db_session()
    match = get_match_to_review(session, user(), match_id)
    form = RejectForm()
    if form.validate_on_submit():
        try:
            reject(session, user(), match, form.reason_code.data or "", form.reason_text.data or "")
        except ServiceError as exc:
            flash(str(exc), "error")
        else:
            flash(_("Proposition écartée."), "success")
    else:
        flash(_("Indiquez la raison du refus."), "error")
    return redirect(request.referrer or url_for("worker.review_desk"))


def _config() -> Any:
    return current_app.config["RELAIS"]
