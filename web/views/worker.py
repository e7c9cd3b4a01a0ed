"""Social workers: residents' profiles and the review desk."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from sqlmodel import Session, col, select

from matcher.sensitive import Finding, find_sensitive
from models import (
    Match,
    MatchStatus,
    Need,
    Organisation,
    RequestKind,
    Resident,
    Role,
    SkillDeclaration,
    Territory,
    User,
    ValidationStatus,
    WithdrawnProposal,
)
from web.extensions import db_session, matching
from web.forms import (
    CHANNEL_LABELS,
    NEED_KIND_LABELS,
    REJECTION_LABELS,
    REJECTION_SHOWN,
    ActionForm,
    ConsentForm,
    DeclarationForm,
    EraseForm,
    ProfileForm,
    RejectForm,
    ResidentForm,
    SendBackForm,
    choices,
)
from web.permissions import (
    STAFF,
    get_match_to_review,
    get_matches_to_review,
    get_need,
    get_resident,
    get_resident_request,
    get_submission_to_validate,
    roles_required,
    user,
)
from web.services import AlreadyDone, ServiceError
from web.services.audit import done_just_now
from web.services.dashboard import (
    consent_ends_soon,
    needs_without_candidate_page,
    privacy_panel,
    resident_page,
    worker_dashboard,
)
from web.services.privacy import (
    declaration_versions,
    erase_and_forget,
    erasure_due,
    handle_request,
    open_requests,
    profile_history,
    record_export,
    record_reading_from_outside,
    resident_export,
    retention_warnings,
)
from web.services.profiles import (
    ResidentInput,
    create_resident,
    current_consent,
    renew_consent,
    reset_access_code,
    territories,
    update_declaration,
    update_profile,
    withdraw_consent,
)
from web.services.proposals import current_statements, nearest_residents, valid_consent_residents, yeses
from web.services.queries import row_id, rows_by_id
from web.services.review import (
    ReviewFilters,
    approve,
    bulk_approve,
    done_as_asked,
    proposal_timeline,
    proposals_of_need,
    propose_and_approve,
    reject,
    review_queue,
    waiting_review,
)
from web.services.validation import (
    MAX_NOTE_CHARS,
    current_declaration,
    pending_for,
    send_back,
    submission_authors,
    validate_need,
    validate_resident,
)
from web.views import (
    json_download,
    never_stored,
    open_on_own_territory,
    say_sensitive,
    show_refusal,
    stash_secret,
    take_secret,
)
from web.views.language import language_names

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
    followed = _my_residents_query()
    people = resident_page(session, followed, request.args.get("page", 1, type=int) or 1,
                           request.args.get("nom", ""), request.args.get("liste", ""), date.today())
    return render_template("worker/dashboard.html", people=people,
                           today=worker_dashboard(session, followed, date.today(),
                                                  pending_for(session, user())),
                           privacy=privacy_panel(session, followed, _config().retention_grace_days))


@bp.route("/residents/nouveau", methods=["GET", "POST"])
@roles_required(*STAFF)
def new_resident() -> Any:
    session = db_session()
    form = ResidentForm()
    form.territory_id.choices = _territory_choices(session)
    open_on_own_territory(form)
    findings = find_sensitive(form.fold_guided()) if form.is_submitted() else []
    if findings and not form.sensitive_ok.data:
        say_sensitive()
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
        except AlreadyDone as twin:  # a double click, a reload while the text was analysed
            flash(_("Cette personne vient d'être enregistrée : voici sa fiche. Si vous n'avez pas noté "
                    "son code, donnez-lui-en un nouveau ici."), "success")
            return redirect(url_for("worker.resident", resident_id=twin.row_id))
        except ServiceError as exc:  # beside the fields they are about (consent, text)
            show_refusal(form, exc)
        else:
            flash(_("Profil enregistré. %(n)d proposition(s) à examiner.", n=created.proposals),
                  "success")
            return _show_code_once(created.resident.id or 0, created.access_code)
    elif form.is_submitted():
        flash(_("Le formulaire n'est pas complet : voyez les messages sous les champs."), "error")
    return render_template("worker/resident_form.html", form=form, findings=findings)


def _territory_choices(session: Session) -> list[Any]:
    return choices({t.id: f"{t.name} ({t.commune})" for t in territories(session)})


@bp.get("/residents/<id:resident_id>")
@roles_required(*STAFF)
def resident(resident_id: int) -> Any:
    session = db_session()
    person = get_resident(session, user(), resident_id)
    record_reading_from_outside(session, user(), [person], "page")
    return _resident_page(person)


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
    places = {t.id: t for t in territories(session)}
    return render_template("worker/resident.html", resident=person, declaration=declaration,
                           territory=places.get(person.territory_id),
                           territory_names={place: t.name for place, t in places.items()},
                           timeline=proposal_timeline(session, person), send_back_form=SendBackForm(),
                           author=(None if person.validation_status == ValidationStatus.VALIDATED
                                   else session.get(User, person.created_by_id)),
                           pending_findings=(find_sensitive(declaration.text) if declaration and
                                             person.validation_status != ValidationStatus.VALIDATED else []),
                           rejection_labels=REJECTION_SHOWN,
                           statements=statements, matches=matches, needs=needs, form=form,
                           action=ActionForm(), findings=findings or [], consent=consent,
                           consent_valid=bool(consent and consent.is_valid(date.today())), today=date.today(),
                           consent_ending=consent_ends_soon(consent, date.today()),
                           consent_form=ConsentForm(), privacy=_privacy_context([person]),
                           history=profile_history(session, person),
                           versions=declaration_versions(session, person), erase_form=EraseForm())


@bp.route("/residents/<id:resident_id>/profil", methods=["GET", "POST"])
@roles_required(*STAFF)
def edit_profile(resident_id: int) -> Any:
    """The person's name, neighbourhood, languages, availability and wishes, as they change."""
    session = db_session()
    person = get_resident(session, user(), resident_id)
    form = ProfileForm(obj=None if request.method == "POST" else person)
    form.territory_id.choices = _territory_choices(session)
    form.offer_languages(person.languages)
    if form.validate_on_submit():
        data = ResidentInput(first_name=form.first_name.data or "", last_initial=form.last_initial.data or "",
                             territory_id=form.territory_id.data, languages=form.languages.data or [],
                             availability=form.availability.data or [], wants=form.wants.data or [])
        try:
            added = update_profile(session, matching, user(), person, data, date.today())
        except ServiceError as exc:
            show_refusal(form, exc)
        else:
            if added is None:
                flash(_("Rien n'a changé."), "info")
            else:
                # The proposals nobody reviewed were remade on the new fields, most of them the
                # same: « 2 nouvelle(s) proposition(s) » at each edit counted them as new.
                flash(_("Profil modifié. Propositions à examiner pour cette personne : %(n)d.",
                        n=waiting_review(session, person.id, date.today())), "success")
            return redirect(url_for("worker.resident", resident_id=person.id))
    elif form.is_submitted():
        flash(_("Le formulaire n'est pas complet : voyez les messages sous les champs."), "error")
    else:  # an administrator reading another centre's person, as on their page
        record_reading_from_outside(session, user(), [person], "page")
    return render_template("worker/profile_form.html", form=form, resident=person)


@bp.post("/residents/<id:resident_id>/declaration")
@roles_required(*STAFF)
def edit_declaration(resident_id: int) -> Any:
    session = db_session()
    person = get_resident(session, user(), resident_id)
    form = DeclarationForm()
    findings = find_sensitive(form.declaration.data or "")
    if findings and not form.sensitive_ok.data:
        say_sensitive()
        return _resident_page(person, form, findings)
    if form.validate_on_submit():
        try:
            done = update_declaration(session, matching, user(), person, form.declaration.data or "")
        except ServiceError as exc:
            form.declaration.errors = [str(message) for message in exc.messages]
        else:
            flash(_("Texte enregistré. Propositions à examiner pour cette personne : %(n)d.",
                    n=waiting_review(session, person.id, date.today())), "success")
            if done.languages_removed:
                flash(_("Langues retirées avec l'ancien texte : %(names)s. Cochez-les sur la fiche si la "
                        "personne les parle.", names=language_names(done.languages_removed)), "success")
            return redirect(url_for("worker.resident", resident_id=person.id))
    elif not form.declaration.errors:  # the form's token: a page left open too long
        flash(_("Le texte n'a pas été enregistré : recommencez."), "error")
    # The page again, the text as typed and what stopped it beside the field (a text over
    # 10,000 characters, or nothing to read in it): a redirect lost the text.
    return _resident_page(person, form, findings)


@bp.post("/residents/<id:resident_id>/consentement/retrait")
@roles_required(*STAFF)
def withdraw(resident_id: int) -> Any:
    session = db_session()
    person = get_resident(session, user(), resident_id)
    if ActionForm().validate_on_submit():
        if withdraw_consent(session, user(), person):
            flash(_("Consentement retiré : la personne ne reçoit plus de proposition."), "success")
        else:
            flash(_("Le consentement était déjà retiré."), "info")
    return redirect(url_for("worker.resident", resident_id=person.id))


@bp.post("/residents/<id:resident_id>/consentement")
@roles_required(*STAFF)
def renew(resident_id: int) -> Any:
    session = db_session()
    person = get_resident(session, user(), resident_id)
    form = ConsentForm()
    if form.validate_on_submit():
        try:
            added = renew_consent(session, matching, user(), person, form.method.data or "", date.today(),
                                  _config().consent_months)
        except AlreadyDone:  # a double tap: the first one recorded it
            flash(_("Consentement enregistré."), "success")
        except ServiceError as exc:
            flash(str(exc), "error")
        else:
            flash(_("Consentement enregistré : %(n)d nouvelle(s) proposition(s) à examiner.", n=added),
                  "success")
    else:
        flash(_("Indiquez comment le consentement a été recueilli."), "error")
    return redirect(url_for("worker.resident", resident_id=person.id))


@bp.post("/residents/<id:resident_id>/code")
@roles_required(*STAFF)
def new_code(resident_id: int) -> Any:
    session = db_session()
    person = get_resident(session, user(), resident_id)
    if not ActionForm().validate_on_submit():
        return redirect(url_for("worker.resident", resident_id=person.id))
    if person.validation_status != ValidationStatus.VALIDATED:
        flash(_("Le code sera donné quand le profil sera validé."), "error")
        return redirect(url_for("worker.resident", resident_id=person.id))
    return _show_code_once(person.id or 0, reset_access_code(session, user(), person))


def _show_code_once(resident_id: int, code: str) -> Any:
    """Post/redirect/get: reloading the page must not create the person (or a code) again. The
    code crosses the redirect sealed in the session cookie (`stash_secret`)."""
    stash_secret("access_code", code, resident_id=resident_id)
    return redirect(url_for("worker.access_code", resident_id=resident_id))


@bp.get("/residents/<id:resident_id>/code")
@roles_required(*STAFF)
def access_code(resident_id: int) -> Any:
    person = get_resident(db_session(), user(), resident_id)
    kept = take_secret("access_code")
    if kept is None or kept[0].get("resident_id") != person.id:
        return redirect(url_for("worker.resident", resident_id=person.id))
    return never_stored(make_response(render_template("worker/access_code.html", resident=person,
                                                      code=kept[1])))


@bp.get("/propositions")
@roles_required(*STAFF)
def review_desk() -> Any:
    session = db_session()
    filters = ReviewFilters.parse(request.args)
    queue = review_queue(session, _my_residents_query(), filters,
                         request.args.get("page", 1, type=int) or 1)
    # An admin's desk shows every centre's people (their words, their names): journaled.
    record_reading_from_outside(session, user(), list(queue.residents.values()), "review")
    return render_template("worker/review.html", queue=queue, filters=filters, action=ActionForm(),
                           reject_form=RejectForm(), reasons=REJECTION_LABELS)


def _back_to_desk(at_next: bool = False) -> Any:
    """Back to the review desk's page, with the same filters (they travel in the forms' query
    string; the desk shows its last page if this one has emptied). After a card is done
    (`at_next`), at the card its form names as next: on a phone, fifty cards are ~60,000 px and
    the desk opened at the top after every « Valider ». After an error, at the top, where it is said."""
    args = ReviewFilters.parse(request.args).query_args()
    page = request.args.get("page", 1, type=int) or 1
    if page > 1:
        args["page"] = page
    following = row_id(request.form.get("next")) if at_next else None
    if following is not None:
        args["_anchor"] = f"proposal-{following}"
    return redirect(url_for("worker.review_desk", **args))


def _withdrawn_meanwhile(match_ids: list[int]) -> bool:
    """Whether a proposal the page showed was withdrawn since (the person's or the need's text
    changed, a closer proposal for the person took its place, the person was erased): said, and
    nothing is done (ids are never given again, migration 0016). The rows are loaded for the
    permission check that follows (session.get finds them without a query)."""
    found = db_session().exec(select(Match).where(col(Match.id).in_(match_ids))).all()
    if len(found) == len(set(match_ids)):
        return False
    # Withdrawn, as kept for the API (about the worker's own centre's people): an id that never
    # was, or another centre's, is not found (get_match_to_review), as it would be on its own.
    gone = set(match_ids) - {m.id for m in found}
    mine = select(WithdrawnProposal.id).where(col(WithdrawnProposal.id).in_(gone))
    if user().role != Role.ADMIN:
        mine = mine.where(WithdrawnProposal.organisation_id == user().organisation_id)
    if not db_session().exec(mine).first():
        return False
    flash(_("Une proposition de cette page a été retirée entre-temps (le texte de la personne ou du "
            "besoin a changé, une proposition plus proche pour cette personne l'a remplacée, ou sa fiche "
            "a été effacée) : rien n'a été fait. Voici les propositions à jour."), "error")
    return True


@bp.post("/propositions/<id:match_id>/valider")
@roles_required(*STAFF)
def approve_match(match_id: int) -> Any:
    session = db_session()
    if _withdrawn_meanwhile([match_id]):
        return _back_to_desk()
    match = get_match_to_review(session, user(), match_id)
    if ActionForm().validate_on_submit():
        try:
            approve(session, user(), match)
        except ServiceError as exc:
            if not done_as_asked(session, [match_id], MatchStatus.APPROVED, user()):  # else a double tap
                flash(str(exc), "error")
                return _back_to_desk()
        flash(_("Proposition validée : la personne la verra dans son espace."), "success")
        return _back_to_desk(at_next=True)
    return _back_to_desk()


@bp.post("/propositions/valider-la-selection")
@roles_required(*STAFF)
def bulk_approve_matches() -> Any:
    session = db_session()
    if not ActionForm().validate_on_submit():
        abort(400)
    ids = [row_id(value) for value in request.form.getlist("match_ids")]
    if None in ids:
        abort(400)
    if _withdrawn_meanwhile([i for i in ids if i is not None]):
        return _back_to_desk()
    # Every id must be one the worker may review (404/403 otherwise): nothing is applied before.
    wanted = [i for i in ids if i is not None]
    matches = get_matches_to_review(session, user(), wanted)
    try:
        count = bulk_approve(session, user(), matches)
    except ServiceError as exc:
        if not done_as_asked(session, wanted, MatchStatus.APPROVED, user()):  # else a double tap
            flash(str(exc), "error")
            return _back_to_desk()
        count = len(set(wanted))
    flash(_("%(n)d proposition(s) validée(s) : les personnes les verront dans leur espace.", n=count),
          "success")
    return _back_to_desk()


@bp.post("/propositions/<id:match_id>/refuser")
@roles_required(*STAFF)
def reject_match(match_id: int) -> Any:
    session = db_session()
    if _withdrawn_meanwhile([match_id]):
        return _back_to_desk()
    match = get_match_to_review(session, user(), match_id)
    form = RejectForm()
    if form.validate_on_submit():
        try:
            reject(session, user(), match, form.reason_code.data or "", form.reason_text.data or "")
        except ServiceError as exc:
            flash(str(exc), "error")
        else:
            flash(_("Proposition écartée."), "success")
            return _back_to_desk(at_next=True)
    elif form.reason_text.errors:  # the service's limit, said as the service says it
        flash(_("La raison est trop longue (1 000 caractères au plus)."), "error")
    else:
        flash(_("Indiquez la raison du refus."), "error")
    return _back_to_desk()


# ------------------------------------------------------------------------ a need, seen by a worker

@bp.get("/besoins/sans-candidat")
@roles_required(*STAFF)
def needs_without_candidate() -> Any:
    """The whole list of the home panel "Besoins sans candidat·e", a page at a time."""
    session = db_session()
    found = needs_without_candidate_page(session, request.args.get("page", 1, type=int) or 1)
    return render_template("worker/needs_without_candidate.html", found=found, organisations=rows_by_id(
        session, Organisation, {n.organisation_id for n in found.items}))


@bp.get("/besoins/<id:need_id>")
@roles_required(*STAFF)
def need(need_id: int) -> Any:
    """A need as a social worker sees it: what it asks, its proposals for the people they follow,
    and, while it is open, the people closest to it whom the matcher did not propose."""
    session = db_session()
    item = get_need(session, user(), need_id)
    followed = _my_residents_query()
    nearby = (nearest_residents(session, matching, item, date.today(), followed)
              if item.open_to_proposals else [])
    proposals = proposals_of_need(session, item, followed)
    # An administrator follows everyone: reading another centre's people here (their words, the
    # closest ones) is journaled, as the API's search and the profile page journal it.
    record_reading_from_outside(session, user(), [near.resident for near in nearby]
                                + [resident for _m, resident in proposals], "need")
    return render_template("worker/need.html", need=item,
                           organisation=session.get(Organisation, item.organisation_id),
                           territory=session.get(Territory, item.territory_id) if item.territory_id else None,
                           proposals=proposals, nearby=nearby,
                           yeses=yeses(session, item) if item.people_wanted else None,
                           # the review desk leaves out a proposal whose person's consent lapsed
                           consenting=valid_consent_residents(session, date.today(),
                                                              [r.id or 0 for _m, r in proposals]))


@bp.post("/besoins/<id:need_id>/proposer")
@roles_required(*STAFF)
def propose(need_id: int) -> Any:
    """The worker proposes a person they follow for the need, approved at once."""
    session = db_session()
    item = get_need(session, user(), need_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    resident_id = row_id(request.form.get("resident_id"))
    if resident_id is None:
        abort(400)
    person = get_resident(session, user(), resident_id)
    try:
        propose_and_approve(session, user(), matching, item, person, date.today())
    except ServiceError as exc:
        flash(str(exc), "error")
    else:
        flash(_("%(name)s verra ce besoin dans son espace et pourra répondre.", name=person.public_name),
              "success")
    return redirect(url_for("worker.need", need_id=item.id))


# ------------------------------------------------ what habitants-relais recorded, to validate

@bp.get("/a-valider")
@roles_required(*STAFF)
def submissions() -> Any:
    session = db_session()
    waiting = pending_for(session, user())
    # An administrator's list holds every centre's submissions (names, texts): journaled.
    record_reading_from_outside(session, user(), waiting.residents, "submissions")
    declarations = {r.id: current_declaration(session, r) for r in waiting.residents}
    sensitive = {rid: find_sensitive(d.text) for rid, d in declarations.items() if d is not None}
    places = {r.territory_id for r in waiting.residents} | {n.territory_id for n in waiting.needs}
    return render_template("worker/submissions.html", waiting=waiting, declarations=declarations,
                           sensitive=sensitive,
                           authors=submission_authors(session, waiting), send_back_form=SendBackForm(),
                           territories=rows_by_id(session, Territory, [t for t in places if t]),
                           kinds=NEED_KIND_LABELS)


@bp.post("/a-valider/personnes/<id:resident_id>/valider")
@roles_required(*STAFF)
def validate_resident_submission(resident_id: int) -> Any:
    session = db_session()
    person = get_submission_to_validate(session, user(), Resident, resident_id)
    if ActionForm().validate_on_submit():
        try:
            done = validate_resident(session, matching, user(), person, date.today(),
                                     sensitive_ok=request.form.get("sensitive_ok") == "y")
        except AlreadyDone:  # a double click: the first showed the code, which the second lost
            flash(_("Ce profil vient d'être validé : voici sa fiche. Si vous n'avez pas noté son code, "
                    "donnez-lui-en un nouveau ici."), "success")
            return redirect(url_for("worker.resident", resident_id=person.id))
        except ServiceError as exc:
            flash(str(exc), "error")
        else:
            flash(_("Profil validé. %(n)d proposition(s) à examiner.", n=done.proposals), "success")
            if done.access_code:
                return _show_code_once(person.id or 0, done.access_code)
    if request.form.get("from") == "fiche":  # back to the profile the worker was reading
        return redirect(url_for("worker.resident", resident_id=person.id))
    return redirect(url_for("worker.submissions"))


@bp.post("/a-valider/besoins/<id:need_id>/valider")
@roles_required(*STAFF)
def validate_need_submission(need_id: int) -> Any:
    session = db_session()
    need = get_submission_to_validate(session, user(), Need, need_id)
    if ActionForm().validate_on_submit():
        try:
            count = validate_need(session, matching, user(), need, date.today())
        except AlreadyDone:  # a double click
            flash(_("Besoin validé."), "success")
        except ServiceError as exc:
            flash(str(exc), "error")
        else:
            flash(_("Besoin validé. %(n)d proposition(s) à examiner.", n=count), "success")
    return redirect(url_for("worker.submissions"))


@bp.post("/a-valider/<any(personnes, besoins):kind>/<id:row_id>/renvoyer")
@roles_required(*STAFF)
def send_back_submission(kind: str, row_id: int) -> Any:
    session = db_session()
    row: Resident | Need = (
        get_submission_to_validate(session, user(), Resident, row_id) if kind == "personnes"
        else get_submission_to_validate(session, user(), Need, row_id))
    form = SendBackForm()
    if form.validate_on_submit():
        try:
            send_back(session, user(), row, form.note.data or "")
        except ServiceError as exc:
            flash(str(exc), "error")
        else:
            flash(_("Fiche renvoyée avec votre mot."), "success")
    elif len(form.note.data or "") > MAX_NOTE_CHARS:
        flash(_("Le mot est trop long (500 caractères au plus) : la fiche n'est pas renvoyée."), "error")
    else:
        flash(_("Écrivez un mot pour la personne qui a fait la fiche : que faut-il revoir ?"), "error")
    return redirect(url_for("worker.submissions"))


def _config() -> Any:
    return current_app.config["RELAIS"]


# ------------------------------------------------------------- personal data (services/privacy.py)

def _privacy_context(residents: Sequence[Resident]) -> dict[str, Any]:
    """Residents' open requests (an erasure's with the day the retention run carries it out) and
    retention warnings, for the dashboard and the profile page."""
    grace = _config().retention_grace_days
    requests = open_requests(db_session(), [r.id for r in residents])
    return {"requests": requests,
            "erase_on": {r.id: erasure_due(r, grace) for r in requests if r.kind == RequestKind.ERASURE},
            "warnings": retention_warnings(residents, _config().retention_grace_days),
            "names": {r.id: r.public_name for r in residents}}


@bp.get("/residents/<id:resident_id>/export")
@roles_required(*STAFF)
def export_page(resident_id: int) -> Any:
    """Everything held about the person, as a page to read or print (audited)."""
    session = db_session()
    person = get_resident(session, user(), resident_id)
    data = resident_export(session, person)
    record_export(session, user(), person, "page")
    return render_template("worker/export.html", resident=person, data=data, channels=CHANNEL_LABELS,
                           rejection_labels=REJECTION_SHOWN)


@bp.get("/residents/<id:resident_id>/export.json")
@roles_required(*STAFF)
def export_json(resident_id: int) -> Any:
    """Everything held about the person, as a JSON file to download (audited)."""
    session = db_session()
    person = get_resident(session, user(), resident_id)
    data = resident_export(session, person)
    record_export(session, user(), person, "json")
    return json_download(data, f"relais-personne-{person.id}.json")


@bp.post("/residents/<id:resident_id>/effacer")
@roles_required(*STAFF)
def erase(resident_id: int) -> Any:
    """Erase the person (their request, or the worker's decision): no way back."""
    session = db_session()
    if session.get(Resident, resident_id) is None and done_just_now(session, user(), "resident.erase",
                                                                  "resident", resident_id):
        # A double click: the first erased the person; say so rather than "page not found".
        flash(_("Les données de la personne sont effacées. Seuls des chiffres anonymes restent."),
              "success")
        return redirect(url_for("worker.dashboard"))
    person = get_resident(session, user(), resident_id)
    if not EraseForm().validate_on_submit():
        flash(_("Cochez la case de confirmation pour effacer les données."), "error")
        return redirect(url_for("worker.resident", resident_id=person.id))
    asked = any(r.kind == RequestKind.ERASURE for r in open_requests(session, [person.id]))
    erase_and_forget(session, matching, user(), person, "request" if asked else "worker")
    flash(_("Les données de la personne sont effacées. Seuls des chiffres anonymes restent."),
          "success")
    return redirect(url_for("worker.dashboard"))


@bp.post("/residents/<id:resident_id>/demandes/<id:request_id>/traitee")
@roles_required(*STAFF)
def request_done(resident_id: int, request_id: int) -> Any:
    session = db_session()
    person = get_resident(session, user(), resident_id)
    item = get_resident_request(session, user(), person, request_id)
    if ActionForm().validate_on_submit():
        handle_request(session, user(), item)
        if item.kind == RequestKind.ERASURE:
            flash(_("C'est noté : rien n'est effacé. Son accord reste retiré : renouvelez-le avec la "
                    "personne si elle veut de nouveau des propositions."), "success")
        else:
            flash(_("Demande marquée comme traitée."), "success")
    return redirect(url_for("worker.resident", resident_id=person.id))
