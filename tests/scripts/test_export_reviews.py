"""Rejections are stored as labelled pairs and exported."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from sqlmodel import Session, select

from models import AuditEvent, Direction, Match, MatchStatus, Need
from tests.conftest import World, add_resident
from web.config import Config
from web.services.profiles import withdraw_consent
from web.services.proposals import Proposal, store_proposals
from web.services.review import approve, reject

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import export_reviews  # noqa: E402


def test_export_reviews(session: Session, world: World, config: Config,
                        monkeypatch: pytest.MonkeyPatch) -> None:

    awa = add_resident(session, world, "Awa", "Je couds.", initial="K").resident
    needs = [Need(organisation_id=world.association.id or 0, title=t, description=t + " !",
                  created_by_id=world.member.id or 0) for t in ("Couture", "Cuisine", "Vélo")]
    session.add_all(needs)
    session.commit()
    store_proposals(session, [Proposal(n.id or 0, awa.id or 0, 0.4,
                                       {"pairs": [{"resident_text": "Je couds", "need_text": n.title,
                                                   "similarity": 0.4}]}) for n in needs],
                    Direction.NEED_TO_RESIDENT)
    first, second, _third = session.exec(select(Match).order_by(Match.id)).all()  # type: ignore[arg-type]
    approve(session, world.worker_a, first)
    reject(session, world.worker_a, second, "distance", "trop loin en bus")
    monkeypatch.setenv("DATABASE_URL", config.database_url)
    out = io.StringIO()
    assert export_reviews.main([], out=out) == 0
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["label"] for r in rows] == ["approved", "rejected"]  # the pending one is not a label
    assert rows[1]["rejection_code"] == "distance" and rows[1]["rejection_note"] == "trop loin en bus"
    assert rows[1]["need_title"] == "Cuisine" and rows[1]["resident_statements"] == ["Je couds"]
    assert "Awa" not in out.getvalue()
    journaled = session.exec(select(AuditEvent).where(AuditEvent.action == "reviews.export")).one()
    assert journaled.actor_id is None and journaled.details == {"pairs": 2, "residents": 1, "file": False}
    assert session.exec(select(Match).where(Match.status == MatchStatus.PROPOSED)).one()

    # Consent withdrawn: the person's reviews leave the next export.
    assert withdraw_consent(session, world.worker_a, awa)
    out = io.StringIO()
    assert export_reviews.main([], out=out) == 0
    assert out.getvalue() == ""
