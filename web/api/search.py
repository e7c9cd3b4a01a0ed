"""'Match this text': a free text in, ranked needs or residents out, each with why.

The text is ranked by the hybrid ranker within what the caller may read (the same rules as the
lists): the code path of proposals and of scripts/rank.py. The explanation quotes the stored
statements that met the text's statements (the FAISS statement search, restricted to the ranked
documents), as proposals do; `score` is the best pair's cosine, as on a proposal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from flask_babel import gettext as _
from sqlmodel import col, select

from matcher.analysis import Statement
from matcher.engine import Hit
from models import Need, NeedStatement, NeedStatus, Resident, Role, SkillStatement
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
from web.services.matching import NEEDS, RESIDENTS, Eligibility
from web.services.proposals import consent_query, consenting


def analyse(text: str) -> tuple[list[Statement], list[Statement], Any]:
    """All statements of the text, those searched (not negated), and their vectors."""
    statements = list(matching.analyze(text).statements)
    searched = [s for s in statements if not s.negated]
    if not searched:
        abort_problem(422, _("Ce texte ne contient rien à chercher : écrivez ce que la personne sait "
                             "faire, ou ce que la structure cherche."),
                      errors={"service": [_("Aucune phrase à chercher.")]})
    return statements, searched, matching.encode([s.norm for s in searched])


def ranked(collection: str, text: str, vectors: Any, limit: int, allowed: set[int] | Eligibility
           ) -> list[Hit | int]:
    """The documents the hybrid ranker puts first, each with its statement pairs when the
    statement search finds some (else only its id)."""
    session = db_session()
    order = [int(r.doc_id) for r in matching.rank(session, collection, text, limit, allowed)]
    if not order:
        return []
    hits = {h.doc_id: h for h in matching.search(session, collection, vectors, len(order), set(order))}
    return [hits.get(doc, doc) for doc in order]


def _doc(hit: Hit | int) -> int:
    return hit if isinstance(hit, int) else int(hit.doc_id)


def explain(hit: Hit | int, searched: Sequence[Statement],
            rows: dict[int, NeedStatement | SkillStatement]) -> dict[str, Any]:
    if isinstance(hit, int):  # ranked on shared words alone: no statement pair to quote
        return {"score": 0.0, "pairs": [], "shared_terms": []}
    pairs, shared = [], {}
    for pair in hit.pairs[:3]:
        query, row = searched[pair.query_index], rows.get(pair.statement_id)
        if row is None:
            continue
        pairs.append({"query_text": query.text, "matched_text": row.text,
                      "similarity": round(float(pair.similarity), 3)})
        shared.update(dict.fromkeys(sorted(set(query.lemmas) & set(row.lemmas))))
    return {"score": round(float(hit.score), 4), "pairs": pairs, "shared_terms": list(shared)[:6]}


def ids_of(query: Any, table: type[Need] | type[Resident]) -> set[int]:
    """The ids a permission query (`needs_query`, `residents_query`) selects, without loading its
    rows: at 10,000+ residents loading them all was most of a search request."""
    return {i for i in db_session().exec(query.with_only_columns(col(table.id))).all() if i is not None}


def rows_by_id(table: Any, ids: Iterable[int]) -> dict[int, Any]:
    """Rows of `table` by id, for the few documents or statements a search found."""
    return {r.id: r for r in db_session().exec(select(table).where(col(table.id).in_(set(ids)))).all()}


def _statement_rows(table: Any, hits: Sequence[Hit | int]) -> dict[int, Any]:
    return rows_by_id(table, (p.statement_id for h in hits if not isinstance(h, int) for p in h.pairs[:3]))


@bp.route("/search/needs", methods=["POST"], tags=["Search"])
@access(*READERS)
@bp.arguments(NeedSearchInput)
@bp.response(200, NeedSearchResultSchema)
@errors(400, 422)
def search_needs(data: dict[str, Any]) -> Any:
    """Needs that fit a free text (what someone can do), best first, with why.

    Searches the needs the caller may read: every need for staff, the organisation's own for
    association members; open needs only unless `include_closed`."""
    statements, searched, vectors = analyse(data["text"])
    query = needs_query(actor())
    if not data["include_closed"]:
        query = query.where(Need.status == NeedStatus.OPEN)
    hits = ranked(NEEDS, data["text"], vectors, data["limit"], ids_of(query, Need))
    needs = rows_by_id(Need, map(_doc, hits))
    rows = _statement_rows(NeedStatement, hits)
    return {"statements": statements,
            "results": [{"need": needs[_doc(h)], **explain(h, searched, rows)} for h in hits]}


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
    statements, searched, vectors = analyse(data["text"])
    today = date.today()
    allowed: set[int] | Eligibility
    if actor().role == Role.ADMIN:  # every resident: consent asked about the ones ranked first
        allowed = consenting(session, today)
    else:  # an organisation's residents, with valid consent: one query, few enough to list
        allowed = ids_of(residents_query(actor()).where(col(Resident.id).in_(consent_query(today))), Resident)
    hits = ranked(RESIDENTS, data["text"], vectors, data["limit"], allowed)
    rows = _statement_rows(SkillStatement, hits)
    residents = rows_by_id(Resident, map(_doc, hits))
    people = {p["id"]: p for p in present_residents([residents[_doc(h)] for h in hits])}
    return {"statements": statements,
            "results": [{"resident": people[_doc(h)], **explain(h, searched, rows)} for h in hits]}

