"""The token page for logged-in staff (/compte/jetons): create a token (shown once), revoke one.

An ordinary web page: session login and CSRF-protected forms, unlike the API itself.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, SelectField, StringField
from wtforms.validators import DataRequired, Length

from models import ApiToken, Role, utcnow
from web.api.tokens import create_token, is_active, revoke_token, tokens_of
from web.extensions import db_session
from web.forms import choices
from web.permissions import roles_required, user
from web.services import ServiceError
from web.views import stash_secret, take_secret

bp = Blueprint("api_tokens", __name__, url_prefix="/compte")
STAFF_ROLES = (Role.ADMIN, Role.SOCIAL_WORKER, Role.ASSOCIATION_MEMBER)
VALIDITY = {"90": _l("90 jours"), "30": _l("30 jours"), "365": _l("1 an"), "0": _l("sans limite")}
ACCESS = {"read": _l("lecture seule"), "write": _l("lecture et écriture")}


class TokenForm(FlaskForm):
    name = StringField(_l("Nom du jeton (l'outil qui l'utilisera)"),
                       validators=[DataRequired(), Length(max=80)])
    access = RadioField(_l("Droits"), choices=choices(ACCESS), default="read")
    validity = SelectField(_l("Validité"), choices=choices(VALIDITY), default="90")


class RevokeForm(FlaskForm):
    """A button: only the CSRF token."""


@bp.route("/jetons", methods=["GET", "POST"])
@roles_required(*STAFF_ROLES)
def tokens() -> Any:
    session = db_session()
    form = TokenForm()
    if form.validate_on_submit():
        try:
            created = create_token(session, user(), form.name.data or "", form.access.data == "write",
                                   int(form.validity.data or 0) or None)
        except ServiceError as exc:
            for message in exc.messages:
                flash(message, "error")
        else:
            # Post/redirect/get: the secret is shown once, on the next page only.
            stash_secret("api_token", created.secret, id=created.token.id)
            return redirect(url_for("api_tokens.tokens"))
    elif form.is_submitted():
        flash(_("Le formulaire n'est pas complet : voyez les messages sous les champs."), "error")
    kept = take_secret("api_token")
    shown = {**kept[0], "secret": kept[1]} if kept else None
    now = utcnow()
    return render_template("api/tokens.html", form=form, shown=shown,
                           tokens=[(t, is_active(t, now)) for t in tokens_of(session, user())])


@bp.post("/jetons/<id:token_id>/revoquer")
@roles_required(*STAFF_ROLES)
def revoke(token_id: int) -> Any:
    session = db_session()
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user().id:
        abort(404)
    if RevokeForm().validate_on_submit():
        revoke_token(session, user(), token)
        flash(_("Jeton révoqué : il ne fonctionne plus."), "success")
    return redirect(url_for("api_tokens.tokens"))
