"""Administrators: the site's neighbourhoods, organisations and staff accounts, and the audit
journal (who did what, when, before and after)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlmodel import col, select

from models import Organisation, Role, Territory
from web.extensions import db_session
from web.forms import (
    ORGANISATION_KIND_LABELS,
    ROLE_LABELS,
    ActionForm,
    OrganisationForm,
    StaffForm,
    TerritoryForm,
    choices,
)
from web.permissions import roles_required, user
from web.services import AlreadyDone, ServiceError
from web.services.administration import (
    OrganisationInput,
    StaffInput,
    TerritoryInput,
    create_staff,
    reset_password,
    save_organisation,
    save_territory,
    set_active,
    staff_account,
    staff_accounts,
)
from web.services.audit import journal as read_journal
from web.services.queries import row_id
from web.views import never_stored, show_refusal, stash_secret, take_secret

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _int_arg(name: str) -> int | None:
    return row_id(request.args.get(name))


@bp.get("/journal")
@roles_required(Role.ADMIN)
def journal() -> Any:
    """The append-only journal, newest first, filtered by object, actor or action; 50 a page."""
    object_type = request.args.get("object_type", "").strip()[:32]
    action = request.args.get("action", "").strip()[:64]
    object_id, actor_id = _int_arg("object_id"), _int_arg("actor_id")
    page = read_journal(db_session(), object_type=object_type, object_id=object_id,
                        actor_id=actor_id, action=action, page=_int_arg("page") or 1)
    filters: dict[str, str | int | None] = {"object_type": object_type, "object_id": object_id,
                                            "actor_id": actor_id, "action": action}
    query = {k: v for k, v in filters.items() if v not in ("", None)}
    return render_template("admin/journal.html", page=page, filters=filters, query=query, roles=ROLE_LABELS)


@bp.get("/")
@roles_required(Role.ADMIN)
def home() -> Any:
    return render_template("admin/home.html")


def _saved(save: Callable[[], Any], said: Callable[[Any], str], back: str) -> Any | None:
    """Run `save`: its errors flashed (None: the form again), or its success said and back to the list."""
    try:
        row = save()
    except ServiceError as exc:
        for message in exc.messages:
            flash(message, "error")
        return None
    flash(said(row), "success")
    return redirect(url_for(back))


# ------------------------------------------------------------------------------- territories

def _territories() -> list[Territory]:
    query = select(Territory).order_by(col(Territory.commune), col(Territory.name))
    return list(db_session().exec(query).all())


def _territory_input(form: TerritoryForm) -> TerritoryInput:
    return TerritoryInput(name=form.name.data or "", commune=form.commune.data or "",
                          qpv_code=form.qpv_code.data or "", latitude=form.latitude.data,
                          longitude=form.longitude.data)


@bp.route("/quartiers", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def territories() -> Any:
    """The neighbourhoods people live in and needs happen in; a new one."""
    form = TerritoryForm()
    if form.validate_on_submit() and (done := _saved(
            lambda: save_territory(db_session(), user(), _territory_input(form)),
            lambda added: _("Quartier ajouté : %(name)s.", name=added.name), "admin.territories")):
        return done
    return render_template("admin/territories.html", form=form, territories=_territories())


@bp.route("/quartiers/<id:territory_id>", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def territory(territory_id: int) -> Any:
    row = db_session().get(Territory, territory_id) or abort(404)
    form = TerritoryForm(obj=None if request.method == "POST" else row)
    if form.validate_on_submit() and (done := _saved(
            lambda: save_territory(db_session(), user(), _territory_input(form), row),
            lambda _row: _("Quartier modifié."), "admin.territories")):
        return done
    return render_template("admin/territory.html", form=form, territory=row)


# ----------------------------------------------------------------------------- organisations

def _organisation_form(obj: Organisation | None = None) -> OrganisationForm:
    form = OrganisationForm(obj=None if request.method == "POST" else obj)
    places = {t.id: f"{t.name} ({t.commune})" for t in _territories()}
    form.territory_id.choices = choices({0: _("aucun"), **places})
    return form


def _organisation_input(form: OrganisationForm) -> OrganisationInput:
    return OrganisationInput(name=form.name.data or "", kind=form.kind.data or "",
                             territory_id=form.territory_id.data or None,
                             description=form.description.data or "")


@bp.route("/structures", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def organisations() -> Any:
    """Centres sociaux, associations, tiers-lieux…: who follows residents and who posts needs."""
    form = _organisation_form()
    if form.validate_on_submit() and (done := _saved(
            lambda: save_organisation(db_session(), user(), _organisation_input(form)),
            lambda added: _("Structure ajoutée : %(name)s.", name=added.name), "admin.organisations")):
        return done
    rows = db_session().exec(select(Organisation).order_by(col(Organisation.name))).all()
    places = {t.id: t for t in _territories()}
    return render_template("admin/organisations.html", form=form, organisations=rows, places=places,
                           kinds=ORGANISATION_KIND_LABELS)


@bp.route("/structures/<id:organisation_id>", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def organisation(organisation_id: int) -> Any:
    row = db_session().get(Organisation, organisation_id) or abort(404)
    form = _organisation_form(row)
    if form.validate_on_submit() and (done := _saved(
            lambda: save_organisation(db_session(), user(), _organisation_input(form), row),
            lambda _row: _("Structure modifiée."), "admin.organisations")):
        return done
    return render_template("admin/organisation.html", form=form, organisation=row)


# ---------------------------------------------------------------------------------- accounts

@bp.route("/comptes", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def accounts() -> Any:
    """Staff accounts: who they are, their role and organisation, active or not; a new one."""
    session = db_session()
    form = StaffForm()
    names = {o.id: o.name for o in session.exec(select(Organisation).order_by(col(Organisation.name))).all()}
    form.organisation_id.choices = choices({0: _("aucune (administrateur·rice)"), **names})
    if form.validate_on_submit():
        try:
            account, password = create_staff(session, user(), StaffInput(
                display_name=form.display_name.data or "", email=form.email.data or "",
                role=form.role.data or "", organisation_id=form.organisation_id.data or None))
        except AlreadyDone:  # a double click: the first answer showed the password, lost now
            flash(_("Ce compte vient d'être créé. Si vous n'avez pas noté son mot de passe provisoire, "
                    "donnez-en un nouveau dans la liste."), "success")
            return redirect(url_for("admin.accounts"))
        except ServiceError as exc:
            show_refusal(form, exc)
        else:
            return _show_password_once(account.id or 0, password, _("Compte créé."))
    elif form.is_submitted():
        flash(_("Le formulaire n'est pas complet : voyez les messages sous les champs."), "error")
    return render_template("admin/accounts.html", form=form, accounts=staff_accounts(session),
                           organisations=names, roles=ROLE_LABELS, me=user())


def _account(user_id: int) -> Any:
    return staff_account(db_session(), user_id) or abort(404)


@bp.post("/comptes/<id:user_id>/<any(activer, desactiver):change>")
@roles_required(Role.ADMIN)
def activation(user_id: int, change: str) -> Any:
    account = _account(user_id)
    if ActionForm().validate_on_submit():
        try:
            set_active(db_session(), user(), account, change == "activer")
        except ServiceError as exc:
            flash(str(exc), "error")
        else:
            flash(_("Compte réactivé.") if change == "activer"
                  else _("Compte désactivé : ses sessions et ses jetons ne marchent plus."), "success")
    return redirect(url_for("admin.accounts"))


@bp.post("/comptes/<id:user_id>/mot-de-passe")
@roles_required(Role.ADMIN)
def new_password(user_id: int) -> Any:
    account = _account(user_id)
    if not ActionForm().validate_on_submit():
        return redirect(url_for("admin.accounts"))
    try:
        password = reset_password(db_session(), user(), account)
    except ServiceError as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.accounts"))
    return _show_password_once(account.id or 0, password, _("Nouveau mot de passe provisoire."))


def _show_password_once(user_id: int, password: str, message: str) -> Any:
    """Post/redirect/get, as for residents' access codes: a reload shows it no more."""
    stash_secret("temporary_password", password, user_id=user_id)
    flash(message, "success")
    return redirect(url_for("admin.password", user_id=user_id))


@bp.get("/comptes/<id:user_id>/mot-de-passe")
@roles_required(Role.ADMIN)
def password(user_id: int) -> Any:
    account = _account(user_id)
    kept = take_secret("temporary_password")
    if kept is None or kept[0].get("user_id") != account.id:
        return redirect(url_for("admin.accounts"))
    return never_stored(make_response(render_template("admin/password.html", account=account,
                                                      password=kept[1])))
