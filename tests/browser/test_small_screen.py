"""The narrowest phones in use (320 CSS pixels): a resident's page never scrolls sideways, even
when a need's text holds a word with no place to break (an e-mail address)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import Session, select

from models import Direction, Match
from tests.browser.conftest import Contexts
from tests.conftest import World, add_resident
from web.extensions import matching
from web.services.needs import NeedInput, create_need
from web.services.proposals import Proposal, store_proposals
from web.services.review import approve

pytestmark = pytest.mark.browser
SMALL = {"viewport": {"width": 320, "height": 640}, "device_scale_factor": 2, "is_mobile": True,
         "has_touch": True}


@pytest.fixture(autouse=True)
def _use_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The proposal is written by hand: the ranker's e5 is not needed."""
    monkeypatch.setenv("RELAIS_ENCODERS", "use")


def test_an_email_address_in_a_need_does_not_widen_the_residents_page(
        contexts: Contexts, world: World, session: Session) -> None:
    world.association.description = "Écrivez-nous : maisondesprojets.saintaubin@wanadoo.fr"
    session.add(world.association)
    awa = add_resident(session, world, "Awa", "Je fais de la couture.", initial="K")
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Atelier couture", description="Animer un atelier. Inscription : "
        "maisondesprojets.saintaubin@wanadoo.fr"), date.today())
    for m in session.exec(select(Match)).all():
        session.delete(m)
    session.commit()
    store_proposals(session, [Proposal(need.id or 0, awa.resident.id or 0, 0.5, {})],
                    Direction.NEED_TO_RESIDENT)
    approve(session, world.worker_a, session.exec(select(Match)).one())
    page = contexts.new(**SMALL).new_page()
    page.goto("/code")
    page.get_by_label("Votre code").fill(awa.access_code)
    page.get_by_role("button", name="Entrer").click()
    page.goto("/moi/")
    page.get_by_text("Qui est Les Mains Agiles ?").click()  # the presentation, opened
    assert page.get_by_text("Inscription : maisondesprojets").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") == 0
