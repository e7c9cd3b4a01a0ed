"""Logging in: staff with email and password, residents with the code from their social worker."""

from __future__ import annotations

import secrets
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask import session as flask_session
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from models import Role, User
from web.extensions import db_session, fresh_session
from web.forms import CodeForm, LoginForm, PasswordForm
from web.permissions import roles_required, user
from web.services import ServiceError
from web.services.accounts import authenticate, authenticate_code, end_session
from web.services.administration import STAFF_ROLES
from web.services.administration import change_password as replace_password
from web.services.audit import record
from web.views import local_path, show_refusal

bp = Blueprint("auth", __name__)

HOME_OF_ROLE = {
    Role.ADMIN: "worker.dashboard",
    Role.SOCIAL_WORKER: "worker.dashboard",
    Role.ASSOCIATION_MEMBER: "association.home",
    Role.RESIDENT: "resident.home",
    Role.HABITANT_RELAIS: "relais.home",
}


def home_url() -> str:
    return url_for(HOME_OF_ROLE[Role(current_user.role)])


@bp.get("/")
def index() -> Any:
    if current_user.is_authenticated:
        return redirect(home_url())
    return render_template("index.html")


@bp.route("/connexion", methods=["GET", "POST"])
def login() -> Any:
    form = LoginForm()
    if form.validate_on_submit():
        session = db_session()
        account = authenticate(session, form.email.data or "", form.password.data or "")
        if account is not None:
            _start_session(account)
            record(session, account, "login", "user", account.id)
            session.commit()
            return redirect(local_path(request.args.get("next")) or home_url())
        flash(_("Adresse e-mail ou mot de passe incorrect. Après cinq erreurs, le compte est "
                "bloqué quinze minutes."), "error")
    return render_template("auth/login.html", form=form)


@bp.route("/code", methods=["GET", "POST"])
def code_login() -> Any:
    form = CodeForm()
    if form.validate_on_submit():
        session = db_session()
        account = authenticate_code(session, form.code.data or "")
        if account is not None:
            _start_session(account)
            record(session, account, "login.code", "user", account.id)
            session.commit()
            return redirect(url_for("resident.home"))
        # Beside the field (a screen reader hears it there, see _field.html), which gets the focus.
        form.code.errors = [*form.code.errors,
                            _("Ce code ne marche pas. Vérifiez-le avec la personne qui vous l'a donné.")]
    return render_template("auth/code.html", form=form)


def _start_session(account: User) -> None:
    """Log in with a fresh session that expires (PERMANENT_SESSION_LIFETIME, 8 hours), under a
    random id a logout can end."""
    fresh_session()
    flask_session.permanent = True
    flask_session["sid"] = secrets.token_urlsafe(16)
    login_user(account)


@bp.post("/deconnexion")
def logout() -> Any:
    """The browser forgets its cookie, and the session's id is refused from now on: a copy of
    the cookie (a shared computer, a proxy's log) is no longer logged in."""
    sid = flask_session.get("sid")
    if sid is not None:
        end_session(db_session(), str(sid), current_app.permanent_session_lifetime)
    logout_user()
    fresh_session()
    return redirect(url_for("auth.index"))


@bp.route("/compte/mot-de-passe", methods=["GET", "POST"])
@roles_required(*STAFF_ROLES)
def change_password() -> Any:
    """A staff member replaces their password (the temporary one an administrator gave, say)."""
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            replace_password(db_session(), user(), form.current.data or "", form.new.data or "",
                             form.repeated.data or "")
        except ServiceError as exc:
            show_refusal(form, exc)
        else:
            login_user(user())  # this session goes on (the others ended with the old password)
            flash(_("Mot de passe changé : vos autres sessions sont fermées. Vos jetons d'accès API "
                    "restent valables (révoquez-les sur « Accès API » si besoin)."), "success")
            return redirect(home_url())
    elif form.is_submitted():
        flash(_("Le formulaire n'est pas complet : voyez les messages sous les champs."), "error")
    return render_template("auth/password.html", form=form)


# What a person with a temporary password may do before replacing it.
BEFORE_NEW_PASSWORD = {"auth.change_password", "auth.logout", "language.choose", "static"}


@bp.before_app_request
def replace_temporary_password() -> Any:
    """A temporary password (from an administrator) is replaced before anything else."""
    if request.endpoint in BEFORE_NEW_PASSWORD or request.path.startswith(("/api/", "/healthz")):
        return None  # the API has tokens, the health check no session
    if current_user.is_authenticated and current_user.must_change_password:
        if request.method == "GET" and request.accept_mimetypes.accept_html:  # not a page's own fetches
            flash(_("Choisissez d'abord votre mot de passe : celui qu'on vous a donné était provisoire."),
                  "error")
        return redirect(url_for("auth.change_password"))
    return None
