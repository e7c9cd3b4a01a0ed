"""Who am I, organisations and territories: reference data every token may read."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from sqlmodel import select

from models import Organisation, Role, Territory
from web.api.core import access, actor, bp, current_token, errors, page
from web.api.problems import abort_problem, abort_service_error
from web.api.residents import if_match, refuse_if_changed, tagged
from web.api.schemas import (
    QUERY,
    MeSchema,
    OrganisationPatch,
    OrganisationSchema,
    PageArgs,
    TerritorySchema,
    page_schema,
)
from web.extensions import db_session
from web.services import ServiceError
from web.services.administration import describe_organisation

ID = "<id:item_id>"


@bp.route("/me", tags=["Account"])
@access()
@bp.etag
@bp.response(200, MeSchema)
def me() -> Any:
    """The user this token acts for, and the token's scopes."""
    user, token = actor(), current_token()
    return {"id": user.id, "display_name": user.display_name, "role": user.role,
            "organisation_id": user.organisation_id, "resident_id": user.resident_id,
            "token": {"name": token.name, "prefix": token.prefix, "scopes": token.scopes,
                      "expires_at": token.expires_at}}


@bp.route("/organisations", tags=["Organisations"])
@access()
@bp.etag
@bp.arguments(PageArgs, **QUERY)
@bp.response(200, page_schema(OrganisationSchema, "OrganisationPage"))
def organisations(**args: Any) -> Any:
    """Centres sociaux, associations, tiers-lieux… ordered by id."""
    return page(db_session(), select(Organisation), Organisation, args)


@bp.route(f"/organisations/{ID}", tags=["Organisations"])
@access()
@bp.etag
@bp.response(200, OrganisationSchema)
@errors(404)
def organisation(item_id: int) -> Any:
    """One organisation."""
    found = db_session().get(Organisation, item_id)
    if found is None:
        abort_problem(404)
    return found


@bp.route(f"/organisations/{ID}", methods=["PATCH"], tags=["Organisations"])
@access(Role.ASSOCIATION_MEMBER, Role.SOCIAL_WORKER, Role.ADMIN, write=True)
@bp.arguments(OrganisationPatch)
@bp.response(200, OrganisationSchema)
@bp.doc(**if_match("organisation"))
@errors(400, 404, 412)
def describe(data: dict[str, Any], item_id: int) -> Any:
    """Change the organisation's presentation, which residents read beside its needs: the
    caller's own organisation (any one for admins). Its name, kind and neighbourhood are the
    administrators' (web pages under /admin)."""
    session = db_session()
    found = session.get(Organisation, item_id)
    if found is None:
        abort_problem(404)
    if actor().role != Role.ADMIN and actor().organisation_id != item_id:
        abort_problem(403, _("Seule la structure elle-même (ou un·e administrateur·rice) modifie sa "
                             "présentation."))
    refuse_if_changed(OrganisationSchema(), found)
    try:
        describe_organisation(session, actor(), found, data["description"])
    except ServiceError as exc:
        abort_service_error(exc)
    return found, 200, tagged(OrganisationSchema(), found)


@bp.route("/territories", tags=["Territories"])
@access()
@bp.etag
@bp.arguments(PageArgs, **QUERY)
@bp.response(200, page_schema(TerritorySchema, "TerritoryPage"))
def territories(**args: Any) -> Any:
    """Neighbourhoods and communes, ordered by id."""
    return page(db_session(), select(Territory), Territory, args)


@bp.route(f"/territories/{ID}", tags=["Territories"])
@access()
@bp.etag
@bp.response(200, TerritorySchema)
@errors(404)
def territory(item_id: int) -> Any:
    """One neighbourhood."""
    found = db_session().get(Territory, item_id)
    if found is None:
        abort_problem(404)
    return found
