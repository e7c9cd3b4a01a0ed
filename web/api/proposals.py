"""Proposals (the review desk of social workers) and opportunities (what residents see).

web.permissions.get_match_to_review and get_match_for_resident decide, as on the web pages; the
changes go through web.services.review.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlmodel import col, exists, or_, select

from models import Consent, Match, MatchStatus, Need, Organisation, Resident, Role, User, WithdrawnProposal
from web.api.core import access, actor, bp, errors, page
from web.api.problems import abort_service_error
from web.api.schemas import (
    QUERY,
    AnswerInput,
    NoInput,
    OpportunityArgs,
    OpportunitySchema,
    ProposalArgs,
    ProposalSchema,
    RejectInput,
    WithdrawnArgs,
    WithdrawnSchema,
    page_schema,
)
from web.extensions import db_session
from web.permissions import STAFF, VISIBLE_TO_RESIDENT, get_match_for_resident, get_match_to_review
from web.services import ChangedMeanwhile, ServiceError
from web.services.privacy import record_reading_from_outside
from web.services.queries import rows_by_id
from web.services.review import answer, approve, closed_reasons, reject

MID = "<id:proposal_id>"


def proposals_query(user: User) -> Any:
    """Proposals about residents `user` may manage (get_match_to_review, as a query)."""
    query = select(Match)
    if user.role != Role.ADMIN:
        query = query.where(col(Match.resident_id).in_(
            select(Resident.id).where(Resident.organisation_id == user.organisation_id)))
    return query


@bp.route("/proposals", tags=["Proposals"])
@access(*STAFF)
@bp.etag
@bp.arguments(ProposalArgs, **QUERY)
@bp.response(200, page_schema(ProposalSchema, "ProposalPage"))
def proposals(**args: Any) -> Any:
    """Proposals about the residents the caller's organisation follows, ordered by id.

    `status=proposed` gives the ones waiting for review."""
    query = proposals_query(actor())
    for name in ("status", "need_id", "resident_id"):
        if args[name] is not None:
            query = query.where(getattr(Match, name) == args[name])
    since = args["changed_since"]
    if since is not None:
        # `closed` changes with the need's status and the person's consent, not with the row.
        query = query.where(or_(
            col(Match.created_at) >= since, col(Match.reviewed_at) >= since, col(Match.answered_at) >= since,
            exists().where(col(Need.id) == Match.need_id, col(Need.updated_at) >= since),
            exists().where(col(Consent.resident_id) == Match.resident_id,
                           or_(col(Consent.created_at) >= since, col(Consent.withdrawn_at) >= since))))
    found = page(db_session(), query, Match, args)
    return {**found, "items": present_proposals(found["items"], read=True)}


def present_proposals(matches: Sequence[Match], read: bool = False) -> list[dict[str, Any]]:
    """Proposals with `closed`: why one still waiting can no longer go on (as the desk knows).
    `read`: the caller reads them (an admin's reading of other centres' people is journaled)."""
    session = db_session()
    waiting = [m for m in matches if m.status in (MatchStatus.PROPOSED, MatchStatus.APPROVED)]
    closed = closed_reasons(session, waiting, date.today()) if waiting else {}
    if read and matches:
        residents = rows_by_id(session, Resident, sorted({m.resident_id for m in matches}))
        record_reading_from_outside(session, actor(), list(residents.values()), "api")
    return [{**m.model_dump(), "closed": closed.get(m.id or 0)} for m in matches]


@bp.route("/proposals/withdrawn", tags=["Proposals"])
@access(*STAFF)
@bp.etag
@bp.arguments(WithdrawnArgs, **QUERY)
@bp.response(200, page_schema(WithdrawnSchema, "WithdrawnPage"))
def withdrawn(**args: Any) -> Any:
    """Proposals withdrawn since an instant, ordered by id: a tool that keeps copies of
    `GET /proposals` deletes them too, since a withdrawn proposal is deleted, not listed with a
    status. A proposal is withdrawn before its review or its answer when its need or the person's
    text changes, its need is paused or closed, the person's consent is withdrawn, or, at the
    person's monthly cap, a closer proposal takes its place (before its review); an approved
    one also when the need's new languages or neighbourhood no longer fit the person. An erased
    person's proposals, whatever their state, are listed too (the person in `GET
    /residents/erased`). A social worker's token
    lists the proposals about its organisation's residents; an administrator's, every one.
    Withdrawals are kept a year (a tool away longer reads `GET /proposals` whole)."""
    query = select(WithdrawnProposal).where(col(WithdrawnProposal.withdrawn_at) >= args["since"])
    if actor().role != Role.ADMIN:
        query = query.where(WithdrawnProposal.organisation_id == actor().organisation_id)
    return page(db_session(), query, WithdrawnProposal, args)


@bp.route(f"/proposals/{MID}", tags=["Proposals"])
@access(*STAFF)
@bp.etag
@bp.response(200, ProposalSchema)
@errors(404)
def proposal(proposal_id: int) -> Any:
    """One proposal, with the explanation shown at review."""
    return present_proposals([get_match_to_review(db_session(), actor(), proposal_id)], read=True)[0]


@bp.route(f"/proposals/{MID}/approve", methods=["POST"], tags=["Proposals"])
@access(*STAFF, write=True)
@bp.arguments(NoInput, required=False)
@bp.response(200, ProposalSchema)
@errors(400, 404, 409, 422)
def approve_proposal(_body: dict[str, Any], proposal_id: int) -> Any:
    """Approve: the resident and the association will see it (409 if already reviewed)."""
    session = db_session()
    match = get_match_to_review(session, actor(), proposal_id)
    try:
        approve(session, actor(), match)
    except ServiceError as exc:
        abort_service_error(exc, 409)
    return present_proposals([match])[0]


@bp.route(f"/proposals/{MID}/reject", methods=["POST"], tags=["Proposals"])
@access(*STAFF, write=True)
@bp.arguments(RejectInput)
@bp.response(200, ProposalSchema)
@errors(400, 404, 409)
def reject_proposal(data: dict[str, Any], proposal_id: int) -> Any:
    """Set aside with a reason code (and a note, required for `other`); 409 if already reviewed."""
    session = db_session()
    match = get_match_to_review(session, actor(), proposal_id)
    try:
        reject(session, actor(), match, data["reason_code"], data["note"])
    except ChangedMeanwhile as exc:  # reviewed, or withdrawn (the row is gone), since it was read
        abort_service_error(exc, 409)
    except ServiceError as exc:
        abort_service_error(exc)
    return present_proposals([match])[0]


def present_opportunities(matches: Sequence[Match]) -> list[dict[str, Any]]:
    session = db_session()
    needs = {n.id: n for n in session.exec(
        select(Need).where(col(Need.id).in_([m.need_id for m in matches]))).all()}
    organisations = {o.id: o for o in session.exec(select(Organisation).where(
        col(Organisation.id).in_([n.organisation_id for n in needs.values()]))).all()}
    closed = closed_reasons(session, [m for m in matches if m.status == MatchStatus.APPROVED], date.today())
    out = []
    for m in matches:
        n = needs[m.need_id]
        out.append({**m.model_dump(), "closed": closed.get(m.id or 0), "need": {
            "title": n.title, "description": n.description, "kind": n.kind,
            "when_text": n.when_text, "where_text": n.where_text, "availability": n.availability,
            "languages": n.languages, "organisation_name": organisations[n.organisation_id].name,
            "organisation_description": organisations[n.organisation_id].description}})
    return out


@bp.route("/opportunities", tags=["Opportunities"])
@access(Role.RESIDENT)
@bp.etag
@bp.arguments(OpportunityArgs, **QUERY)
@bp.response(200, page_schema(OpportunitySchema, "OpportunityPage"))
def opportunities(**args: Any) -> Any:
    """The resident's approved opportunities (and their answers), ordered by id."""
    statuses = [args["status"]] if args["status"] else list(VISIBLE_TO_RESIDENT)
    query = select(Match).where(Match.resident_id == actor().resident_id,
                                col(Match.status).in_(statuses))
    result = page(db_session(), query, Match, args)
    result["items"] = present_opportunities(result["items"])
    return result


@bp.route(f"/opportunities/{MID}", tags=["Opportunities"])
@access(Role.RESIDENT)
@bp.etag
@bp.response(200, OpportunitySchema)
@errors(404)
def opportunity(proposal_id: int) -> Any:
    """One opportunity (404 for anything not approved for this resident)."""
    return present_opportunities([get_match_for_resident(db_session(), actor(), proposal_id)])[0]


@bp.route(f"/opportunities/{MID}/answer", methods=["POST"], tags=["Opportunities"])
@access(Role.RESIDENT, write=True)
@bp.arguments(AnswerInput)
@bp.response(200, OpportunitySchema)
@errors(400, 404, 409)
def answer_opportunity(data: dict[str, Any], proposal_id: int) -> Any:
    """Say yes (`accept: true`) or no; 409 once answered."""
    session = db_session()
    match = get_match_for_resident(session, actor(), proposal_id)
    try:
        answer(session, actor(), match, accept=data["accept"], comment=data["comment"])
    except ServiceError as exc:
        abort_service_error(exc, 409)
    return present_opportunities([match])[0]
