"""Residents: the opportunities approved for them, in plain French, on a phone."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlmodel import col, select

from models import (
    ContactChannel,
    Match,
    MatchStatus,
    Need,
    Organisation,
    RequestKind,
    Resident,
    Role,
    SkillDeclaration,
    Territory,
)
from web.extensions import db_session, matching
from web.forms import CONTACT_CHOICES, REJECTION_SHOWN, ActionForm, AnswerForm, RequestForm
from web.permissions import (
    VISIBLE_TO_RESIDENT,
    get_own_resident,
    roles_required,
    user,
)
from web.services import ServiceError
from web.services.notifications import Kind, mark_read
from web.services.privacy import create_request, open_requests, record_export, resident_export
from web.services.profiles import consent_state, current_consent, withdraw_consent
from web.services.proposals import current_statements, is_filled, propose_for_need
from web.services.review import CLOSED_FOR_RESIDENT, answer, closed_reasons, done_as_asked
from web.views import json_download

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
    open_answers = [m for m in matches if m.status in (MatchStatus.APPROVED, MatchStatus.DECLINED)]
    closed = {mid: CLOSED_FOR_RESIDENT[reason]
              for mid, reason in closed_reasons(session, open_answers, date.today()).items()}
    # A no may become a yes while the need has a place left (answer(change=True) checks it again).
    filled = {n.id for n in needs.values() if any(
        m.need_id == n.id and m.status == MatchStatus.DECLINED for m in matches) and is_filled(session, n)}
    # « Nouvelle proposition… »: the opportunity is shown here, so it is read (the header's red
    # counter stayed after she had answered, until she opened the notices' page). One withdrawn
    # is not shown here: its notice waits for the notices' page.
    mark_read(session, user(), kind=Kind.OPPORTUNITY)
    consent = consent_state(session, user().resident_id or 0, date.today())
    return render_template("resident/home.html", matches=matches, needs=needs,
                           organisations=organisations, form=AnswerForm(), closed=closed,
                           consent=consent, filled=filled,
                           contact=_contact_given(session.get(Resident, user().resident_id)),
                           approved=MatchStatus.APPROVED, accepted=MatchStatus.ACCEPTED)


def _contact_given(me: Resident | None) -> str | None:
    """The contact detail the resident gave associations ("phone", "email"), None for none (they go
    through the worker): what a withdrawn consent hides from them."""
    channel = me.contact_channel if me is not None else ContactChannel.WORKER
    return None if channel == ContactChannel.WORKER else channel


@bp.post("/propositions/<id:match_id>/<choice>")
@roles_required(Role.RESIDENT)
def respond(match_id: int, choice: str) -> Any:
    session = db_session()
    match = session.get(Match, match_id)
    # Withdrawn since the page loaded (the need changed); another's, or not shown to her, answers
    # the same: a 404 there told which numbers are proposals made to someone else.
    if match is None or match.resident_id != user().resident_id or match.status not in VISIBLE_TO_RESIDENT:
        flash(_("Cette proposition n'est plus disponible : le besoin a changé ou n'est plus ouvert. "
                "Votre réponse n'est pas envoyée."), "error")
        return redirect(url_for("resident.home"))
    form = AnswerForm()
    if choice not in {"oui", "non"}:
        return redirect(url_for("resident.home"))
    change = request.form.get("change") == "y"  # a yes become a no, or a no a yes
    if form.validate_on_submit():
        try:
            answer(session, user(), match, accept=choice == "oui", comment=form.comment.data or "",
                   change=change)
        except ServiceError as exc:
            said = MatchStatus.ACCEPTED if choice == "oui" else MatchStatus.DECLINED
            if not done_as_asked(session, [match_id], said):  # else a double tap: the first one went
                flash(str(exc), "error")
                return redirect(url_for("resident.home"))
        if change and choice == "non":
            # Her place is free again: if her yes had filled the need, the others had gone.
            need = session.get(Need, match.need_id)
            if need is not None:
                propose_for_need(session, matching, need, date.today())
            flash(_("C'est noté : la structure et la personne qui vous accompagne sont prévenues."),
                  "success")
        else:
            flash(_("Merci ! Votre réponse est envoyée.") if choice == "oui"
                  else _("C'est noté. Merci de votre réponse."), "success")
        if choice == "oui":  # then: how the association may reach them (shown after a yes only)
            return redirect(url_for("followup.my_contact"))
    elif form.comment.errors:  # the phone's field stops at 500 characters; an old page may not
        flash(_("Votre mot est trop long (500 caractères au plus) : votre réponse n'est pas envoyée."),
              "error")
    else:
        flash(_("Votre réponse n'est pas envoyée : rechargez la page et recommencez."), "error")
    return redirect(url_for("resident.home"))


@bp.get("/savoir-faire")
@roles_required(Role.RESIDENT)
def skills() -> Any:
    """"Ce que je sais faire": the current text, what Relais understood, and asking a change."""
    session = db_session()
    me = get_own_resident(session, user())
    declaration = session.exec(select(SkillDeclaration).where(
        SkillDeclaration.resident_id == me.id, col(SkillDeclaration.is_current).is_(True))).first()
    return render_template("resident/skills.html", declaration=declaration,
                           statements=current_statements(session, me.id or 0, with_negated=True),
                           requests=[r for r in open_requests(session, [me.id])
                                     if r.kind == RequestKind.CHANGE],
                           form=RequestForm())


@bp.post("/savoir-faire")
@roles_required(Role.RESIDENT)
def ask_change() -> Any:
    return _send_request(RequestKind.CHANGE, "resident.skills",
                         _("Merci ! Votre message est envoyé à la personne qui vous accompagne."))


def _send_request(kind: RequestKind, back_to: str, thanks: str) -> Any:
    """Store the resident's request for their social worker, then back to the page it came from."""
    session = db_session()
    me = get_own_resident(session, user())
    form = RequestForm()
    if form.validate_on_submit():
        try:
            create_request(session, user(), me, kind, form.message.data or "")
        except ServiceError as exc:
            flash(str(exc), "error")
        else:
            flash(thanks, "success")
    else:
        flash(_("Le message est trop long (1 000 caractères au plus)."), "error")
    return redirect(url_for(back_to))


@bp.get("/donnees")
@roles_required(Role.RESIDENT)
def my_data() -> Any:
    """"Mes données": what Relais keeps, in plain words; download it; ask for erasure."""
    session = db_session()
    me = get_own_resident(session, user())
    consent = current_consent(session, me)
    config = current_app.config["RELAIS"]
    return render_template("resident/data.html", me=me, territory=session.get(Territory, me.territory_id),
                           consent=consent, consent_valid=bool(consent and consent.is_valid(date.today())),
                           erasure=next((r for r in open_requests(session, [me.id])
                                         if r.kind == RequestKind.ERASURE), None),
                           retention_months=config.retention_months, form=RequestForm())


@bp.get("/donnees/copie")
@roles_required(Role.RESIDENT)
def my_data_page() -> Any:
    """Everything held about the person, as a page to read or print: the JSON file is for
    another service, not for reading (RGPD art. 15: in an intelligible form)."""
    session = db_session()
    me = get_own_resident(session, user())
    data = resident_export(session, me)
    record_export(session, user(), me, "page")
    return render_template("worker/export.html", resident=me, data=data, channels=CONTACT_CHOICES,
                           rejection_labels=REJECTION_SHOWN, own=True)


@bp.get("/donnees/export.json")
@roles_required(Role.RESIDENT)
def my_data_json() -> Any:
    session = db_session()
    me = get_own_resident(session, user())
    data = resident_export(session, me)
    record_export(session, user(), me, "json")
    return json_download(data, "mes-donnees-relais.json")


@bp.get("/donnees/accord/retrait")
@roles_required(Role.RESIDENT)
def withdraw_confirm() -> Any:
    """"Are you sure?": one tap by mistake would stop every proposal until the person finds their
    worker again."""
    session = db_session()
    me = get_own_resident(session, user())
    consent = current_consent(session, me)
    if not (consent and consent.is_valid(date.today())):
        return redirect(url_for("resident.my_data"))
    return render_template("resident/withdraw.html", contact=_contact_given(me))


@bp.post("/donnees/accord/retrait")
@roles_required(Role.RESIDENT)
def withdraw() -> Any:
    """The person withdraws their consent themselves: as easy as it was to give (RGPD art. 7.3),
    two taps (the button, then « Oui » on the question)."""
    session = db_session()
    me = get_own_resident(session, user())
    form = ActionForm()
    if form.validate_on_submit() and request.form.get("confirm") != "y":
        return redirect(url_for("resident.withdraw_confirm"))
    if form.validate_on_submit():
        if withdraw_consent(session, user(), me):
            flash(_("C'est fait : vous ne recevrez plus de proposition. La personne qui vous accompagne "
                    "est prévenue. Pour recommencer, parlez-lui."), "success")
        else:
            flash(_("Votre accord était déjà retiré."), "success")
    return redirect(url_for("resident.my_data"))


@bp.get("/donnees/effacement")
@roles_required(Role.RESIDENT)
def erasure_confirm() -> Any:
    """« Tout effacer ? », with the person's word for their worker: a page of its own (not the
    answer to a POST), so Back to it after « Non, garder mes données » shows it again instead of
    the browser's « Confirm Form Resubmission »."""
    session = db_session()
    me = get_own_resident(session, user())
    if any(r.kind == RequestKind.ERASURE for r in open_requests(session, [me.id])):
        return redirect(url_for("resident.my_data"))
    return render_template("resident/erase.html")


@bp.post("/donnees/effacement")
@roles_required(Role.RESIDENT)
def ask_erasure() -> Any:
    """Two taps, as withdrawing consent: the button, then « Oui » on the question. The request
    withdraws the consent at once (every proposal stops) and the person cannot take it back."""
    if request.form.get("confirm") != "y":  # a page from before the question had its own address
        return redirect(url_for("resident.erasure_confirm"))
    return _send_request(RequestKind.ERASURE, "resident.my_data", _(
        "Votre demande est envoyée. La personne qui vous accompagne va effacer vos données."))
