"""Associations and projects: their needs, and the approved candidates for each."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import case, func
from sqlmodel import col, select

from models import Match, Need, NeedStatus, Role, ValidationStatus
from web.extensions import db_session, matching
from web.forms import LANGUAGE_LABELS, STATUS_MESSAGES, ActionForm, NeedForm, PresentationForm, choices
from web.permissions import get_need, roles_required, user
from web.services import AlreadyDone, ServiceError
from web.services.administration import describe_organisation
from web.services.needs import NEED_FIELDS, NeedInput, create_need, languages_not_asked, update_need
from web.services.privacy import record_profile_views
from web.services.profiles import organisation_of, territories
from web.services.proposals import shown_to_association, unanswered_approvals, visible_candidates, yeses
from web.services.queries import numbered_page

bp = Blueprint("association", __name__, url_prefix="/structure")
MEMBERS = (Role.ASSOCIATION_MEMBER, Role.ADMIN)
NEEDS_PAGE_SIZE = 30  # needs per page of the home list


@bp.get("/")
@roles_required(*MEMBERS)
def home() -> Any:
    """The organisation's needs, a page at a time: open ones first (what still asks for people),
    then the paused and the closed, newest first within each."""
    session = db_session()
    # A centre's needs its habitants-relais noted wait for its social workers, unread by others.
    query = (select(Need).where(Need.organisation_id == user().organisation_id,
                                Need.validation_status == ValidationStatus.VALIDATED)
             .order_by(case((col(Need.status) == NeedStatus.OPEN, 0), else_=1), col(Need.created_at).desc(),
                       col(Need.id).desc()))
    found = numbered_page(session, query, request.args.get("page", 1, type=int) or 1, NEEDS_PAGE_SIZE)
    counts = _candidate_counts([n.id for n in found.items if n.id is not None])
    return render_template("association/home.html", found=found, counts=counts,
                           organisation=organisation_of(session, user()))


@bp.route("/presentation", methods=["GET", "POST"])
@roles_required(*MEMBERS)
def presentation() -> Any:
    """The organisation in its own words, as residents read it beside its needs."""
    session = db_session()
    organisation = organisation_of(session, user()) or abort(404)
    form = PresentationForm(obj=organisation if request.method == "GET" else None)
    if form.validate_on_submit():
        try:
            changed = describe_organisation(session, user(), organisation, form.description.data or "")
        except ServiceError as exc:
            for message in exc.messages:
                flash(message, "error")
        else:
            flash(_("Présentation enregistrée.") if changed else _("Rien n'a changé."), "success")
            return redirect(url_for("association.home"))
    return render_template("association/presentation.html", form=form, organisation=organisation)


def _candidate_counts(need_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per need, the candidates the association may see by status: who said yes, who has not
    answered yet (a no is no candidate; counted in SQL: the matches' explanations are large,
    and a busy need has hundreds)."""
    out: dict[int, dict[str, int]] = {}
    for need_id, status, count in db_session().exec(
            select(Match.need_id, Match.status, func.count()).where(
                col(Match.need_id).in_(need_ids), shown_to_association(date.today()))
            .group_by(col(Match.need_id), col(Match.status))).all():
        out.setdefault(need_id, {})[status] = count
    return out


@bp.route("/besoins/nouveau", methods=["GET", "POST"])
@roles_required(*MEMBERS)
def new_need() -> Any:
    session = db_session()
    form = _need_form(NeedForm())
    if form.validate_on_submit():
        try:
            need, _added = create_need(session, matching, user(), _need_input(form), date.today())
        except AlreadyDone as twin:  # a double click, a reload
            flash(_("Ce besoin vient d'être publié : le voici."), "success")
            return redirect(url_for("association.need", need_id=twin.row_id))
        except ServiceError as exc:
            for message in exc.messages:
                flash(message, "error")
        else:
            flash(_("Besoin publié. Les propositions arrivent après l'avis d'un·e "
                    "travailleur·se social·e."), "success")
            _languages_unticked(need)
            return redirect(url_for("association.need", need_id=need.id))
    elif form.is_submitted():
        flash(_("Le formulaire n'est pas complet : voyez les messages sous les champs."), "error")
    return render_template("association/need_form.html", form=form, need=None)


def _languages_unticked(need: Need) -> None:
    """Say the languages the text asks that are not ticked: « Interprète arabe » with no box
    ticked was proposed to people close in words who may not speak it."""
    codes = languages_not_asked(matching, need, LANGUAGE_LABELS)
    if codes:
        flash(_("Votre texte demande : %(languages)s. Les personnes sont choisies selon les langues "
                "cochées dans « Langues demandées » seulement : si la personne doit parler cette langue, "
                "modifiez le besoin pour la cocher.",
                languages=", ".join(str(LANGUAGE_LABELS[code]) for code in codes)), "info")


def _need_form(form: NeedForm) -> NeedForm:
    form.territory_id.choices = choices(
        {0: _("Tous les quartiers")}
        | {t.id: f"{t.name} ({t.commune})" for t in territories(db_session())})
    return form


def _need_input(form: NeedForm) -> NeedInput:
    return NeedInput(title=form.title.data or "", description=form.description.data or "",
                     kind=form.kind.data or "", territory_id=form.territory_id.data or None,
                     when_text=form.when_text.data or "", where_text=form.where_text.data or "",
                     languages=form.languages.data or [], availability=form.availability.data or [],
                     people_wanted=form.people_wanted.data)


@bp.route("/besoins/<id:need_id>/modifier", methods=["GET", "POST"])
@roles_required(*MEMBERS)
def edit_need(need_id: int) -> Any:
    session = db_session()
    item = get_need(session, user(), need_id, edit=True)
    form = _need_form(NeedForm(obj=item) if request.method == "GET" else NeedForm())
    form.offer_languages(item.languages)  # languages an import gave, beyond the boxes
    if request.method == "GET":
        form.territory_id.data = item.territory_id or 0
    waiting = unanswered_approvals(session, need_id, date.today())  # a change may take them back
    if form.validate_on_submit():
        values = {name: getattr(_need_input(form), name) for name in NEED_FIELDS}
        text = (item.title, item.description)
        try:
            made = update_need(session, matching, user(), item, values, date.today())
        except ServiceError as exc:
            for message in exc.messages:
                flash(message, "error")
        else:  # saved unchanged, or a second tap: nothing was written, and the page says so
            flash(_("Besoin modifié.") if made is not None else _("Rien n'a changé."), "success")
            if made is not None:  # said once a change is saved, not at each save of the same
                _languages_unticked(item)
            if made is not None and unanswered_approvals(session, need_id, date.today()) < waiting:
                flash(_withdrawn_after_edit(text != (item.title, item.description),
                                            item.status == NeedStatus.OPEN), "success")
            return redirect(url_for("association.need", need_id=item.id))
    elif form.is_submitted():
        flash(_("Le formulaire n'est pas complet : voyez les messages sous les champs."), "error")
    return render_template("association/need_form.html", form=form, need=item, waiting=waiting)


def _withdrawn_after_edit(text_changed: bool, still_open: bool) -> str:
    """What an edit that took approved candidates back says: a new text takes every one not yet
    answered; new languages or a new place, those who no longer fit."""
    who = (_("Le texte a changé : les personnes qui n'avaient pas encore répondu ne voient plus ce "
             "besoin.") if text_changed else
           _("Les personnes qui n'avaient pas encore répondu et ne parlent pas les langues demandées, ou "
             "vivent hors du quartier choisi, ne voient plus ce besoin."))
    then = (_("Relais cherche à nouveau, et un·e travailleur·se social·e examine les propositions.")
            if still_open else _("Relais cherchera à nouveau quand le besoin sera rouvert."))
    return f"{who} {then}"


@bp.post("/besoins/<id:need_id>/statut")
@roles_required(*MEMBERS)
def set_status(need_id: int) -> Any:
    session = db_session()
    item = get_need(session, user(), need_id, edit=True)
    status = request.form.get("status", "")
    if ActionForm().validate_on_submit():
        was = item.status
        try:
            update_need(session, matching, user(), item, {"status": status}, date.today())
        except ServiceError as exc:
            flash(str(exc), "error")
        else:  # a page left open, or a second tap: nothing ran, and the page does not say it did
            flash(str(STATUS_MESSAGES[NeedStatus(status)]) if status != was
                  else _("Rien n'a changé : le besoin était déjà dans cet état."), "success")
    return redirect(url_for("association.need", need_id=item.id))


@bp.get("/besoins/<id:need_id>")
@roles_required(*MEMBERS)
def need(need_id: int) -> Any:
    session = db_session()
    item = get_need(session, user(), need_id, edit=True)
    candidates = visible_candidates(session, item)
    # Seeing a candidate is seeing a profile: journaled, as the residents' export shows them.
    record_profile_views(session, user(), [r.id for _m, r in candidates if r.id is not None], need_id)
    return render_template("association/need.html", need=item, candidates=candidates, action=ActionForm(),
                           yeses=yeses(session, item) if item.people_wanted else None)
