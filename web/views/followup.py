"""After a yes: the contact a resident chose, and the outcome the association or worker records."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlmodel import select

from models import Match, Need, Resident, Role
from web.extensions import db_session
from web.forms import CHANNEL_LABELS, OUTCOME_LABELS, ContactForm, OutcomeForm, outcome_label
from web.permissions import FOLLOWUP_ROLES, STAFF, get_match_for_followup, get_resident, roles_required, user
from web.services import ServiceError
from web.services.outcomes import contact_for, record_outcome, set_contact
from web.services.privacy import record_profile_views, record_reading_from_outside
from web.services.profiles import consent_state
from web.services.proposals import shown_to_association
from web.views import show_refusal

bp = Blueprint("followup", __name__)
bp.add_app_template_filter(outcome_label, "outcome_label")


def _followed(match_id: int) -> Match:
    """The proposal the user may follow up, while the association may see it (an approved one
    waiting for an answer whose resident's consent ended is no longer shown: 404)."""
    session = db_session()
    match = get_match_for_followup(session, user(), match_id)
    if session.exec(select(Match.id).where(Match.id == match.id,
                                           shown_to_association(date.today()))).first() is None:
        abort(404)
    return match


@bp.get("/suivi/propositions/<id:match_id>")
@roles_required(*FOLLOWUP_ROLES)
def proposal(match_id: int) -> Any:
    session = db_session()
    match = _followed(match_id)
    need, resident = session.get(Need, match.need_id), session.get(Resident, match.resident_id)
    assert need is not None and resident is not None  # checked by get_match_for_followup
    # Journaled as the need's page is, for everyone but the person's own social workers (a worker
    # of the centre that posted the need reads another centre's resident's contact here).
    own_worker = user().role == Role.SOCIAL_WORKER and user().organisation_id == resident.organisation_id
    if not own_worker and resident.id is not None:
        record_profile_views(session, user(), [resident.id], need.id or 0)
    form = OutcomeForm(outcome=match.outcome, note=match.outcome_note)  # a correction starts from them
    return _page(match, need, resident, form)


def _page(match: Match, need: Need, resident: Resident, form: OutcomeForm) -> Any:
    return render_template("followup/proposal.html", match=match, need=need, resident=resident,
                           contact=contact_for(db_session(), match, resident, date.today()), form=form,
                           channels=CHANNEL_LABELS, outcomes=OUTCOME_LABELS)


@bp.post("/suivi/propositions/<id:match_id>/bilan")
@roles_required(*FOLLOWUP_ROLES)
def outcome(match_id: int) -> Any:
    session = db_session()
    match = _followed(match_id)
    form = OutcomeForm()
    if form.validate_on_submit():
        try:
            record_outcome(session, user(), match, form.outcome.data or "", form.note.data or "")
        except ServiceError as exc:
            flash(str(exc), "error")
        else:
            flash(_("Bilan enregistré. Merci !"), "success")
            return redirect(url_for("followup.proposal", match_id=match.id))
    else:
        flash(_("Le formulaire n'est pas complet : voyez les messages sous les champs."), "error")
    # The page again with what was typed, the message beside the field (a redirect lost the note).
    need, resident = session.get(Need, match.need_id), session.get(Resident, match.resident_id)
    assert need is not None and resident is not None
    return _page(match, need, resident, form)


def _contact_page(resident: Resident, action: str, back: str) -> Any:
    session = db_session()
    form = ContactForm(channel=resident.contact_channel, value=resident.contact_value or "")
    if form.validate_on_submit():
        try:
            set_contact(session, user(), resident, form.channel.data or "", form.value.data or "")
        except ServiceError as exc:
            show_refusal(form, exc)  # beside the field, which a screen reader reads with it
        else:
            flash(_("C'est noté."), "success")
            return redirect(back)
    return render_template("followup/contact.html", form=form, resident=resident, action=action,
                           back=back, for_resident=user().role == Role.RESIDENT,
                           consent=consent_state(session, resident.id or 0, date.today()))


@bp.route("/moi/contact", methods=["GET", "POST"])
@roles_required(Role.RESIDENT)
def my_contact() -> Any:
    resident = db_session().get(Resident, user().resident_id)
    if resident is None:
        return redirect(url_for("resident.home"))
    return _contact_page(resident, url_for("followup.my_contact"), url_for("resident.home"))


@bp.route("/accompagnement/residents/<id:resident_id>/contact", methods=["GET", "POST"])
@roles_required(*STAFF)
def resident_contact(resident_id: int) -> Any:
    resident = get_resident(db_session(), user(), resident_id)
    if request.method == "GET":  # the person's phone or address, read by another centre's admin
        record_reading_from_outside(db_session(), user(), [resident], "contact")
    return _contact_page(resident, url_for("followup.resident_contact", resident_id=resident_id),
                         url_for("worker.resident", resident_id=resident_id))
