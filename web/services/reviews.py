"""Review history as labelled pairs: what the matcher proposed and what social workers decided."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from models import Match, MatchStatus, Need
from web.services.proposals import consent_query


def reviewed_pairs(session: Session, today: date) -> list[dict[str, Any]]:
    """Every reviewed proposal of a resident whose consent to matching holds `today`,
    pseudonymous (ids, texts, decisions; no names). Improving the matching is part of matching:
    a withdrawn or lapsed consent takes the person's reviews out of what is exported next."""
    matches = session.exec(select(Match).where(col(Match.status) != MatchStatus.PROPOSED,
                                               col(Match.resident_id).in_(consent_query(today)))
                           .order_by(col(Match.id))).all()
    needs = {n.id: n for n in session.exec(
        select(Need).where(col(Need.id).in_({m.need_id for m in matches}))).all()}
    rows = []
    for m in matches:
        need = needs[m.need_id]
        rows.append({
            "match_id": m.id, "need_id": m.need_id, "resident_id": m.resident_id,
            "need_title": need.title, "need_text": need.description,
            "resident_statements": [p["resident_text"] for p in m.explanation.get("pairs", [])],
            "score": m.score, "direction": m.direction,
            "label": "rejected" if m.status == MatchStatus.REJECTED else "approved",
            "resident_answer": {MatchStatus.ACCEPTED: "accepted",
                                MatchStatus.DECLINED: "declined"}.get(MatchStatus(m.status)),
            "rejection_code": m.rejection_code, "rejection_note": m.rejection_note,
            "reviewed_at": m.reviewed_at.isoformat() if m.reviewed_at else None,
        })
    return rows
