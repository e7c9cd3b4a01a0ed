"""Residents and their declarations: for the social workers of the resident's organisation and
for admins (web.permissions.get_resident decides, as on the web pages)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from flask import request
from flask_babel import gettext as _
from sqlalchemy import exists, or_
from sqlmodel import col, select

from matcher.sensitive import find_sensitive
from models import AuditEvent, Consent, Resident, Role, SkillDeclaration, SkillStatement, User
from web.api.core import access, actor, bp, errors, page
from web.api.problems import abort_problem, abort_service_error
from web.api.schemas import (
    QUERY,
    DeclarationInput,
    DeclarationSchema,
    DeclarationUpdateSchema,
    ErasedArgs,
    ErasedListSchema,
    ResidentArgs,
    ResidentPatch,
    ResidentSchema,
    ResidentUpdateSchema,
    page_schema,
)
from web.extensions import db_session, matching
from web.forms import SENSITIVE_LABELS
from web.permissions import STAFF, get_resident
from web.services import ChangedMeanwhile, ServiceError
from web.services.privacy import record_reading_from_outside
from web.services.profiles import ResidentInput, update_declaration, update_profile

RID = "<id:resident_id>"


def if_match(what: str) -> dict[str, Any]:
    """The optional If-Match header of a write, documented: the ETag of `what` the client read."""
    return {"parameters": [{"in": "header", "name": "If-Match", "required": False,
                            "schema": {"type": "string"},
                            "description": f"The ETag of the {what} you read: 412 if it has changed."}]}


def refuse_if_changed(schema: Any, current: Any | None) -> None:
    """412 when the request's If-Match names none of `current`'s ETag (as `schema` dumps it, as
    reads tag it); nothing without If-Match."""
    if request.if_match:
        etag = bp._generate_etag(schema.dump(current)) if current is not None else None
        if etag is None or etag not in request.if_match:
            abort_problem(412)


def tagged(schema: Any, current: Any) -> dict[str, str]:
    """The ETag a read of `current` would carry, for a write's response: the client's next
    conditional write needs no read first."""
    return {"ETag": f'"{bp._generate_etag(schema.dump(current))}"'}


def residents_query(user: User) -> Any:
    """The residents `user` may manage (web.permissions.can_manage_resident, as a query)."""
    query = select(Resident)
    if user.role != Role.ADMIN:  # a social worker: the access decorator let only staff in
        query = query.where(Resident.organisation_id == user.organisation_id)
    return query


def present_residents(residents: Sequence[Resident]) -> list[dict[str, Any]]:
    """Residents with their latest consent."""
    ids = [r.id for r in residents]
    consents: dict[int, Consent] = {}
    for consent in db_session().exec(select(Consent).where(col(Consent.resident_id).in_(ids))
                                     .order_by(col(Consent.id))).all():
        consents[consent.resident_id] = consent  # the latest wins
    today = date.today()
    out = []
    for r in residents:
        latest = consents.get(r.id or 0)
        out.append({
            **r.model_dump(), "public_name": r.public_name,
            "consent": None if latest is None else {
                "given_on": latest.given_on, "expires_on": latest.expires_on,
                "method": latest.method, "valid": latest.is_valid(today)},
        })
    return out


@bp.route("/residents", tags=["Residents"])
@access(*STAFF)
@bp.etag
@bp.arguments(ResidentArgs, **QUERY)
@bp.response(200, page_schema(ResidentSchema, "ResidentPage"))
def residents(**args: Any) -> Any:
    """Residents the caller's organisation follows (every resident for admins), ordered by id."""
    query = residents_query(actor())
    if args["territory_id"] is not None:
        query = query.where(Resident.territory_id == args["territory_id"])
    if args["organisation_id"] is not None:
        query = query.where(Resident.organisation_id == args["organisation_id"])
    if args["updated_since"] is not None:  # a consent given or withdrawn changes `consent` too
        since = args["updated_since"]
        query = query.where(or_(col(Resident.updated_at) >= since, exists().where(
            col(Consent.resident_id) == Resident.id,
            or_(col(Consent.created_at) >= since, col(Consent.withdrawn_at) >= since))))
    result = page(db_session(), query, Resident, args)
    listed = result["items"]
    result["items"] = present_residents(listed)
    record_reading_from_outside(db_session(), actor(), listed, "api")  # as each one read alone
    return result


@bp.route("/residents/erased", tags=["Residents"])
@access(*STAFF)
@bp.etag
@bp.arguments(ErasedArgs, **QUERY)
@bp.response(200, ErasedListSchema)
def erased(since: datetime) -> Any:
    """Residents erased since an instant (at their request, by their social worker, by the
    retention run, or again after a restore), oldest first: a tool that keeps copies of
    `GET /residents` deletes them too, since an erased person no longer appears there. A social
    worker's token lists their organisation's residents; an administrator's, every one (and the
    erasures journaled before this operation existed, which do not name the centre). Not paged:
    erasures are few."""
    events = db_session().exec(select(AuditEvent).where(
        AuditEvent.action == "resident.erase", col(AuditEvent.at) >= since)
        .order_by(col(AuditEvent.at), col(AuditEvent.id))).all()
    everyone = actor().role == Role.ADMIN
    return {"items": [{"id": e.object_id, "erased_at": e.at} for e in events
                      if everyone or (e.details or {}).get("organisation_id") == actor().organisation_id]}


@bp.route(f"/residents/{RID}", tags=["Residents"])
@access(*STAFF)
@bp.etag
@bp.response(200, ResidentSchema)
@errors(404)
def resident(resident_id: int) -> Any:
    """One resident (403 when another organisation follows them). An administrator's reading of
    a resident of another organisation is journaled (`profile.view`), as on the pages."""
    session = db_session()
    person = get_resident(session, actor(), resident_id)
    record_reading_from_outside(session, actor(), [person], "api")
    return present_residents([person])[0]


@bp.route(f"/residents/{RID}", methods=["PATCH"], tags=["Residents"])
@access(*STAFF, write=True)
@bp.arguments(ResidentPatch)
@bp.response(200, ResidentUpdateSchema)
@bp.doc(**if_match("resident"))
@errors(400, 404, 409, 412)
def update_resident(data: dict[str, Any], resident_id: int) -> Any:
    """Change the name, neighbourhood, languages, availability or wishes (not the declaration,
    not the consent) and propose needs again.

    Matching filters read these fields: proposals nobody reviewed yet are withdrawn, as they were
    made on the old ones. `new_proposals` is 0 when nothing changed. A change written by someone
    else between this one's read and its write refuses it (412 with If-Match, 409 without):
    the fields left out would have put back what they had changed."""
    session = db_session()
    person = get_resident(session, actor(), resident_id)
    refuse_if_changed(ResidentSchema(), present_residents([person])[0])
    wanted = ResidentInput(
        first_name=data.get("first_name", person.first_name),
        last_initial=data.get("last_initial", person.last_initial),
        territory_id=data.get("territory_id", person.territory_id),
        languages=data.get("languages", person.languages),
        availability=data.get("availability", person.availability),
        wants=data.get("wants", person.wants))
    try:
        # The version checked is the one changed (not one written since the check).
        added = update_profile(session, matching, actor(), person, wanted, date.today(),
                               read_version=person.updated_at)
    except ChangedMeanwhile as exc:  # between the If-Match check and the write
        abort_service_error(exc, 412 if request.if_match else 409)
    except ServiceError as exc:
        abort_service_error(exc)
    now = present_residents([person])[0]
    return {**now, "new_proposals": added or 0}, 200, tagged(ResidentSchema(), now)


def current_declaration(resident_id: int) -> dict[str, Any] | None:
    session = db_session()
    declaration = session.exec(select(SkillDeclaration).where(
        SkillDeclaration.resident_id == resident_id, col(SkillDeclaration.is_current).is_(True))
        .order_by(col(SkillDeclaration.id).desc())).first()
    if declaration is None:
        return None
    statements = session.exec(select(SkillStatement).where(
        SkillStatement.declaration_id == declaration.id).order_by(col(SkillStatement.position))).all()
    return {**declaration.model_dump(), "statements": [s.model_dump() for s in statements]}


@bp.route(f"/residents/{RID}/declaration", tags=["Declarations"])
@access(*STAFF)
@bp.etag
@bp.response(200, DeclarationSchema)
@errors(404)
def declaration(resident_id: int) -> Any:
    """The resident's current declaration, in their own words, and its statements (journaled as
    the resident's read)."""
    session = db_session()
    person = get_resident(session, actor(), resident_id)
    record_reading_from_outside(session, actor(), [person], "api")
    found = current_declaration(person.id or 0)
    if found is None:
        abort_problem(404, _("Cette personne n'a pas encore de texte."))
    return found


@bp.route(f"/residents/{RID}/declaration", methods=["PUT"], tags=["Declarations"])
@access(*STAFF, write=True)
@bp.arguments(DeclarationInput)
@bp.response(200, DeclarationUpdateSchema)
@bp.doc(**if_match("declaration"))
@errors(400, 404, 409, 412)
def replace_declaration(data: dict[str, Any], resident_id: int) -> Any:
    """Replace the declaration (the old version is kept) and propose needs again.

    Proposals nobody reviewed yet are withdrawn: they were made from the old text."""
    session = db_session()
    person = get_resident(session, actor(), resident_id)
    checked = current_declaration(person.id or 0)
    refuse_if_changed(DeclarationSchema(), checked)
    findings = find_sensitive(data["text"])
    if findings and not data["sensitive_ok"]:  # as the web page holds the text back
        abort_problem(422, _("Rien n'est enregistré : le texte semble contenir des informations "
                             "sensibles. Reformulez, ou confirmez avec sensitive_ok si elles sont "
                             "nécessaires."),
                      errors={"sensitive": {str(SENSITIVE_LABELS[f.category]): list(f.words)
                                            for f in findings}})
    try:
        # With If-Match, the version checked is the one replaced (not one written since the check).
        done = update_declaration(session, matching, actor(), person, data["text"],
                                  replacing=checked["id"] if request.if_match and checked else None)
    except ChangedMeanwhile as exc:  # between the If-Match check and the write
        abort_service_error(exc, 412 if request.if_match else 409)
    except ServiceError as exc:
        abort_service_error(exc)
    now = current_declaration(person.id or 0) or {}
    answer = {**now, "new_proposals": done.proposals, "languages_removed": done.languages_removed}
    return answer, 200, tagged(DeclarationSchema(), now)
