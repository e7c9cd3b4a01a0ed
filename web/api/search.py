"""'Match this text': a free text in, ranked needs or residents out, each with why.

The text is ranked by the hybrid ranker within what the caller may read (the same rules as the
lists): the code path of proposals and of scripts/rank.py. The explanation quotes, for each
statement of the text, the closest stored statement of the document (`best_pairs_of` over their
stored vectors, as proposals do); `score` is the best pair's cosine, as on a proposal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from flask_babel import gettext as _
from sqlmodel import col

from matcher.analysis import Statement
from models import Need, NeedStatus, Resident, Role
from web.api.core import access, actor, bp, errors
from web.api.needs import READERS, needs_query
from web.api.problems import abort_problem
from web.api.residents import present_residents, residents_query
from web.api.schemas import (
    NeedSearchInput,
    NeedSearchResultSchema,
    ResidentSearchResultSchema,
    SearchInput,
)
from web.extensions import db_session, matching
from web.permissions import STAFF
from web.services import queries
from web.services.matching import NEEDS, RESIDENTS, Eligibility, to_blob
from web.services.privacy import record_reading_from_outside
from web.services.proposals import (
    Pairs,
    Quotable,
    Quoted,
    best_pairs_of,
    consenting,
    drop_refused,
    quoted_pairs,
    shared_terms,
    skills_and_refusals,
    statements_of_needs,
    with_valid_consent,
)


def analyse(collection: str, text: str) -> tuple[list[Statement], list[Quotable]]:
    """All statements of the text, and those searched (not negated) with their vectors."""
    statements = list(matching.analyze(text).statements)
    searched = [s for s in statements if not s.negated]
    if not searched:
        abort_problem(422, _("Ce texte ne contient rien à chercher : écrivez ce que la personne sait "
                             "faire, ou ce que la structure cherche."),
                      errors={"service": [_("Aucune phrase à chercher.")]})
    vectors = matching.encode_search(collection, text, [s.norm for s in searched])
    return statements, [Quoted(s.text, s.lemmas, to_blob(v)) for s, v in zip(searched, vectors, strict=True)]


def ranked(collection: str, text: str, limit: int, allowed: set[int] | Eligibility) -> list[int]:
    """The documents the hybrid ranker puts first."""
    return [int(r.doc_id) for r in matching.rank(db_session(), collection, text, limit, allowed)]


def explained(searched: Sequence[Quotable], order: Sequence[int],
              statements: Mapping[int, Sequence[Quotable]],
              refusals: Mapping[int, Sequence[Quotable]] | None = None) -> dict[int, dict[str, Any]]:
    """For each document, each statement of the text with the document's closest one, best first
    (three at most, chosen as proposals choose theirs: `quoted_pairs`); without the residents who
    said they cannot or will not do what the text asks (`refusals`, proposals.drop_refused)."""
    found = best_pairs_of(searched, {doc: statements.get(doc, []) for doc in order}, matching.dim)
    dropped = drop_refused(found, refusals, searched, matching.dim) if refusals else set()
    return {doc: _explanation(quoted_pairs(pairs, 3)) for doc, pairs in found.items() if doc not in dropped}


def _explanation(pairs: Pairs) -> dict[str, Any]:
    return {"score": round(pairs[0][2], 4) if pairs else 0.0,
            "pairs": [{"query_text": query.text, "matched_text": row.text, "similarity": round(similarity, 3)}
                      for query, row, similarity in pairs],
            "shared_terms": shared_terms(pairs)}


def ids_of(query: Any, table: type[Need] | type[Resident]) -> set[int]:
    """The ids a permission query (`needs_query`, `residents_query`) selects, without loading its
    rows: at 10,000+ residents loading them all was most of a search request."""
    return {i for i in db_session().exec(query.with_only_columns(col(table.id))).all() if i is not None}


def rows_by_id(table: Any, ids: Sequence[int]) -> dict[int, Any]:
    """Rows of `table` by id, for the few documents a search found."""
    return queries.rows_by_id(db_session(), table, ids)


@bp.route("/search/needs", methods=["POST"], tags=["Search"])
@access(*READERS)
@bp.arguments(NeedSearchInput)
@bp.response(200, NeedSearchResultSchema)
@errors(400, 422)
def search_needs(data: dict[str, Any]) -> Any:
    """Needs that fit a free text (what someone can do), best first, with why.

    Searches the needs the caller may read (as `GET /needs` lists them); open needs only unless
    `include_closed`."""
    statements, searched = analyse(NEEDS, data["text"])
    query = needs_query(actor())
    if not data["include_closed"]:
        query = query.where(Need.status == NeedStatus.OPEN)
    order = ranked(NEEDS, data["text"], data["limit"], ids_of(query, Need))
    needs = rows_by_id(Need, order)
    why = explained(searched, order, statements_of_needs(db_session(), order))
    return {"statements": statements, "results": [{"need": needs[doc], **why[doc]} for doc in order]}


@bp.route("/search/residents", methods=["POST"], tags=["Search"])
@access(*STAFF)
@bp.arguments(SearchInput)
@bp.response(200, ResidentSearchResultSchema)
@errors(400, 422)
def search_residents(data: dict[str, Any]) -> Any:
    """Residents whose declarations fit a free text (what a need asks for), best first, with why.

    Only residents the caller may manage (their organisation's; every one for admins) and whose
    consent covers matching today."""
    session = db_session()
    statements, searched = analyse(RESIDENTS, data["text"])
    today = date.today()
    allowed: set[int] | Eligibility
    if actor().role == Role.ADMIN:  # every resident: consent asked about the ones ranked first
        allowed = consenting(session, today)
    else:  # an organisation's residents, with valid consent: one query, few enough to list
        allowed = ids_of(residents_query(actor()).where(with_valid_consent(today)), Resident)
    order = ranked(RESIDENTS, data["text"], data["limit"], allowed)
    residents = rows_by_id(Resident, order)
    why = explained(searched, order, *skills_and_refusals(session, order))
    order = [doc for doc in order if doc in why]
    people = {p["id"]: p for p in present_residents([residents[doc] for doc in order])}
    found = {"statements": statements, "results": [{"resident": people[doc], **why[doc]} for doc in order]}
    record_reading_from_outside(session, actor(), [residents[doc] for doc in order], "search")
    return found

