"""Residents: the opportunities approved for them, in plain French, on a phone."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from sqlmodel import col, select

from models import Match, MatchStatus, Need, Organisation, Role
from web.extensions import db_session
from web.forms import AnswerForm
from web.permissions import VISIBLE_TO_RESIDENT, get_match_for_resident, roles_required, user
from web.services import ServiceError
from web.services.review import answer

bp = Blueprint("resident", __name__, url_prefix="/moi")


@bp.get("/")
@roles_required(Role.RESIDENT)
def home() -> Any:
    session = db_session()
    matches = session.exec(select(Match).where(
        Match.resident_id == user().resident_id, col(Match.status).in_(VISIBLE_TO_RESIDENT))
        .order_by(col(Match.reviewed_at).desc())).all()
    needs = {n.id: n for n in session.exec(
        select(Need).where(col(Need.id).in_([m.need_id for m in matches]))).all()}
    organisations = {o.id: o for o in session.exec(select(Organisation).where(
        col(Organisation.id).in_([n.organisation_id for n in needs.values()]))).all()}
    return render_template("resident/home.html", matches=matches, needs=needs,
                           organisations=organisations, form=AnswerForm(),
                           approved=MatchStatus.APPROVED, accepted=MatchStatus.ACCEPTED)


@bp.post("/propositions/<int:match_id>/<choice>")
@roles_required(Role.RESIDENT)
def respond(match_id: int, choice: str) -> Any:
    session = db_session()
    match = get_match_for_resident(session, user(), match_id)
    form = AnswerForm()
    if choice not in {"oui", "non"}:
        return redirect(url_for("resident.home"))
    if form.validate_on_submit():
        try:
            answer(session, user(), match, accept=choice == "oui", comment=form.comment.data or "")
        except ServiceError as exc:
            flash(str(exc), "error")
        else:
            flash(_("Merci ! Votre réponse est envoyée.") if choice == "oui"
                  else _("C'est noté. Merci de votre réponse."), "success")
    return redirect(url_for("resident.home"))
