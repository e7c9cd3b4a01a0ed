"""Needs: staff read every validated need (and their centre's waiting ones), association members
read (and post) their organisation's own;
web.permissions.get_need decides for one need, as on the web pages."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import col, or_, select

from models import Need, Role, User, ValidationStatus
from web.api.core import access, actor, bp, errors, page
from web.api.feed import import_missions
from web.api.problems import abort_service_error
from web.api.schemas import (
    QUERY,
    CandidateSchema,
    FeedInput,
    ImportResultSchema,
    NeedArgs,
    NeedInput,
    NeedSchema,
    page_schema,
)
from web.extensions import db_session, matching
from web.permissions import STAFF, get_need
from web.services import AlreadyDone, ServiceError
from web.services.needs import NeedInput as NeedData
from web.services.needs import create_need
from web.services.privacy import record_profile_views
from web.services.proposals import visible_candidates
from web.views.association import MEMBERS

NID = "<id:need_id>"
READERS = (*STAFF, Role.ASSOCIATION_MEMBER)


def needs_query(user: User) -> Any:
    """The needs `user` may read (web.permissions.get_need, as a query)."""
    query = select(Need)
    if user.role == Role.SOCIAL_WORKER:  # another centre's needs once that centre validated them
        query = query.where(or_(Need.validation_status == ValidationStatus.VALIDATED,
                                Need.organisation_id == user.organisation_id))
    elif user.role not in STAFF:  # a centre's needs waiting for its social workers: not yet
        query = query.where(Need.organisation_id == user.organisation_id,
                            Need.validation_status == ValidationStatus.VALIDATED)
    return query


@bp.route("/needs", tags=["Needs"])
@access(*READERS)
@bp.etag
@bp.arguments(NeedArgs, **QUERY)
@bp.response(200, page_schema(NeedSchema, "NeedPage"))
def needs(**args: Any) -> Any:
    """Needs the caller may read, ordered by id: every validated need for staff (and those of
    their own centre waiting for its validation), their organisation's own for association
    members."""
    query = needs_query(actor())
    for name in ("organisation_id", "territory_id", "status", "kind", "external_id"):
        if args[name] is not None:
            query = query.where(getattr(Need, name) == args[name])
    if args["updated_since"] is not None:
        query = query.where(col(Need.updated_at) >= args["updated_since"])
    return page(db_session(), query, Need, args)


@bp.route("/needs", methods=["POST"], tags=["Needs"])
@access(*MEMBERS, write=True)
@bp.arguments(NeedInput)
@bp.response(201, NeedSchema)
@bp.alt_response(200, schema=NeedSchema, description="The same need, posted by the caller moments "
                 "ago (a retried call): nothing new is published.")
@errors(400, 422)
def post_need(data: dict[str, Any]) -> Any:
    """Post a need for the caller's organisation; Relais proposes residents for review.

    The same need (every field) posted again by the same person within ten minutes is not
    published twice: the answer is the first one, with 200."""
    try:
        need, _added = create_need(db_session(), matching, actor(), NeedData(**data), date.today())
    except AlreadyDone as twin:
        return get_need(db_session(), actor(), twin.row_id), 200
    except ServiceError as exc:
        abort_service_error(exc)
    return need


@bp.route(f"/needs/{NID}", tags=["Needs"])
@access(*READERS)
@bp.etag
@bp.response(200, NeedSchema)
@errors(404)
def need(need_id: int) -> Any:
    """One need (403 for another organisation's need, unless staff)."""
    return get_need(db_session(), actor(), need_id)


@bp.route(f"/needs/{NID}/candidates", tags=["Needs"])
@access(*MEMBERS)
@bp.etag
@bp.response(200, CandidateSchema(many=True))
@errors(404)
def candidates(need_id: int) -> Any:
    """The approved candidates for one of the organisation's needs, by first name and initial."""
    session = db_session()
    item = get_need(session, actor(), need_id, edit=True)
    candidates = visible_candidates(session, item)
    # Journaled as the need's page does: the resident's "who looked at my profile" counts it.
    record_profile_views(session, actor(), [r.id for _m, r in candidates if r.id is not None], need_id)
    return [{"proposal_id": m.id, "public_name": resident.public_name,
             "status": m.status, "reviewed_at": m.reviewed_at, "answered_at": m.answered_at}
            for m, resident in candidates]


@bp.route("/needs/import", methods=["POST"], tags=["Needs"])
@access(*MEMBERS, write=True)
@bp.arguments(FeedInput)
@bp.response(200, ImportResultSchema)
@errors(400, 422)
def import_needs(data: dict[str, Any]) -> Any:
    """Import missions from an API Engagement feed as needs of the caller's organisation.

    Send the feed as API Engagement serves it (`{"data": [missions]}`). Idempotent on the mission
    id (`_id`, else `clientId`): a mission seen before updates its need (matching runs again only
    when its text changed); a deleted or finished mission closes it."""
    try:
        return import_missions(db_session(), matching, actor(), data["data"], date.today())
    except ServiceError as exc:
        abort_service_error(exc)
