"""Habitants-relais: on a phone, record a resident's profile (with consent) or a need seen in the
neighbourhood; a social worker of the same centre validates it before it enters matching. A
habitant-relais sees their own submissions and their status, never anyone else's data."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from matcher.sensitive import find_sensitive
from models import Need, Resident, Role, ValidationStatus
from web.extensions import db_session, matching
from web.forms import CorrectionForm, RelaisNeedForm, ResidentForm, choices, offer_languages
from web.permissions import get_own_submission, roles_required, user
from web.services import AlreadyDone, ServiceError
from web.services.needs import NeedInput, create_need
from web.services.profiles import ResidentInput, create_resident, territories, update_profile
from web.services.validation import current_declaration, resubmit_need, resubmit_resident, submitted_by
from web.views import open_on_own_territory, say_sensitive, show_refusal

bp = Blueprint("relais", __name__, url_prefix="/relais")


@bp.get("/")
@roles_required(Role.HABITANT_RELAIS)
def home() -> Any:
    session = db_session()
    return render_template("relais/home.html", mine=submitted_by(session, user()))


def _territory_choices(form: ResidentForm | RelaisNeedForm | CorrectionForm, new: bool = True) -> None:
    """The neighbourhoods; on a new form, the centre's own first chosen (the list's first one was,
    another village's, and a habitant-relais on a phone rarely looks)."""
    form.territory_id.choices = choices({t.id: f"{t.name} ({t.commune})" for t in territories(db_session())})
    if new:
        open_on_own_territory(form)


@bp.route("/personnes/nouvelle", methods=["GET", "POST"])
@roles_required(Role.HABITANT_RELAIS)
def new_resident() -> Any:
    session = db_session()
    form = ResidentForm()
    _territory_choices(form)
    findings = find_sensitive(form.fold_guided()) if form.is_submitted() else []
    if findings and not form.sensitive_ok.data:
        say_sensitive()
        form.validate()  # show the other messages too
    elif form.validate_on_submit():
        data = ResidentInput(
            first_name=form.first_name.data or "", last_initial=form.last_initial.data or "",
            territory_id=form.territory_id.data, languages=form.languages.data or [],
            availability=form.availability.data or [], wants=form.wants.data or [],
            consent_given_on=form.consent_given_on.data,
            consent_method=form.consent_method.data or "",
            consent_matching=bool(form.consent_matching.data), declaration=form.declaration.data or "")
        sent = False
        try:
            create_resident(session, matching, user(), data, current_app.config["RELAIS"].consent_months,
                            date.today())
            sent = True
        except ServiceError as exc:  # beside the fields they are about (consent, text)
            show_refusal(form, exc)
        except AlreadyDone:  # sent twice (a double tap, a reload): it went once, as this one says
            sent = True
        if sent:
            flash(_("Merci ! La fiche est envoyée au centre social, qui la validera."), "success")
            return redirect(url_for("relais.home"))
    elif form.is_submitted():
        flash(_("Le formulaire n'est pas complet : voyez les messages sous les champs."), "error")
    return render_template("relais/resident_form.html", form=form, findings=findings)


@bp.route("/besoins/nouveau", methods=["GET", "POST"])
@roles_required(Role.HABITANT_RELAIS)
def new_need() -> Any:
    session = db_session()
    form = RelaisNeedForm()
    _territory_choices(form)
    if form.validate_on_submit():
        data = NeedInput(title=form.title.data or "", description=form.description.data or "",
                         territory_id=form.territory_id.data, where_text=form.where_text.data or "",
                         languages=list(form.languages.data or []))
        sent = False
        try:
            create_need(session, matching, user(), data, date.today())
            sent = True
        except ServiceError as exc:
            for message in exc.messages:
                flash(message, "error")
        except AlreadyDone:  # sent twice (a double tap, a reload): it went once, as this one says
            sent = True
        if sent:
            flash(_("Merci ! Le besoin est envoyé au centre social, qui le validera."), "success")
            return redirect(url_for("relais.home"))
    elif form.is_submitted():
        flash(_("Le formulaire n'est pas complet : voyez les messages sous les champs."), "error")
    return render_template("relais/need_form.html", form=form)


@bp.route("/personnes/<id:resident_id>/corriger", methods=["GET", "POST"])
@roles_required(Role.HABITANT_RELAIS)
def fix_resident(resident_id: int) -> Any:
    """Correct a profile the social worker sent back (only that: validated ones are theirs)."""
    session = db_session()
    person = get_own_submission(session, user(), Resident, resident_id)
    # A correction sent for a profile no longer sent back is said beside the text (kept), or is the
    # same one sent twice: the service tells.
    if person.validation_status != ValidationStatus.RETURNED and request.method == "GET":
        return redirect(url_for("relais.home"))
    declaration = current_declaration(session, person)
    form = CorrectionForm(obj=None if request.method == "POST" else person,
                          declaration=declaration.text if declaration else "")  # the POST wins
    _territory_choices(form, new=False)
    form.offer_languages(person.languages)
    findings = find_sensitive(form.declaration.data or "") if form.is_submitted() else []
    if findings and not form.sensitive_ok.data:
        say_sensitive()
    if form.validate_on_submit() and not (findings and not form.sensitive_ok.data):
        sent = False
        try:
            resubmit_resident(session, matching, user(), person, form.declaration.data or "")
            sent = True
        except ServiceError as exc:  # nothing to read in it: said beside the text, as a worker sees it
            form.declaration.errors = [str(message) for message in exc.messages]
        except AlreadyDone:  # sent twice (a double tap): it went once, as this one says
            sent = True
        if sent:
            # Then who the person is, as the boxes say (the languages too: a new text dropped
            # those the old one named, and the boxes put back what the habitant-relais kept).
            try:
                update_profile(session, matching, user(), person, ResidentInput(
                    first_name=form.first_name.data or "", last_initial=form.last_initial.data or "",
                    territory_id=form.territory_id.data, languages=form.languages.data or [],
                    availability=form.availability.data or [], wants=form.wants.data or []), date.today())
            except ServiceError as exc:
                show_refusal(form, exc)
                sent = False
        if sent:
            flash(_("Merci ! La fiche corrigée est renvoyée au centre social."), "success")
            return redirect(url_for("relais.home"))
    elif form.is_submitted() and form.errors:
        flash(_("Le formulaire n'est pas complet : voyez les messages sous les champs."), "error")
    return render_template("relais/fix_resident.html", resident=person, form=form, findings=findings)


@bp.route("/besoins/<id:need_id>/corriger", methods=["GET", "POST"])
@roles_required(Role.HABITANT_RELAIS)
def fix_need(need_id: int) -> Any:
    """Correct a need the social worker sent back."""
    session = db_session()
    need = get_own_submission(session, user(), Need, need_id)
    if need.validation_status != ValidationStatus.RETURNED and request.method == "GET":
        return redirect(url_for("relais.home"))
    form = RelaisNeedForm(obj=need)
    del form.territory_id, form.where_text  # the words and the languages are corrected here
    offer_languages(form.languages, need.languages)  # one an import gave stays a box
    if form.validate_on_submit():
        sent = False
        try:
            resubmit_need(session, matching, user(), need, form.title.data or "",
                          form.description.data or "", list(form.languages.data or []), date.today())
            sent = True
        except ServiceError as exc:
            for message in exc.messages:
                flash(message, "error")
        except AlreadyDone:  # sent twice (a double tap): it went once, as this one says
            sent = True
        if sent:
            flash(_("Merci ! Le besoin corrigé est renvoyé au centre social."), "success")
            return redirect(url_for("relais.home"))
    return render_template("relais/fix_need.html", need=need, form=form)
