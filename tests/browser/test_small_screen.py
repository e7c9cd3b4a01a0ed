"""The narrowest phones in use (320 CSS pixels): a resident's page never scrolls sideways, even
when a need's text holds a word with no place to break (an e-mail address)."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from tests.browser.conftest import Contexts
from tests.conftest import World, approved_opportunity

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
    awa = approved_opportunity(session, world, "Animer un atelier. Inscription : "
                               "maisondesprojets.saintaubin@wanadoo.fr")
    page = contexts.new(**SMALL).new_page()
    page.goto("/code")
    page.get_by_label("Votre code").fill(awa.access_code)
    page.get_by_role("button", name="Entrer").click()
    page.goto("/moi/")
    page.get_by_text("Qui est Les Mains Agiles ?").click()  # the presentation, opened
    assert page.get_by_text("Inscription : maisondesprojets").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") == 0
