"""A resident answers an opportunity on a phone, in Debian's chromium: only a tap on « Oui » or
« Non merci » answers; the keyboard's Enter in the word for the worker does not."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlmodel import Session, select

from models import Match, MatchStatus
from tests.browser.conftest import Contexts
from tests.conftest import World, approved_opportunity

pytestmark = pytest.mark.browser
PHONE = {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True}


@pytest.fixture(autouse=True)
def _use_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The proposal is written by hand: the ranker's e5 is not needed."""
    monkeypatch.setenv("RELAIS_ENCODERS", "use")


def test_enter_in_the_word_for_the_worker_does_not_say_yes(contexts: Contexts, world: World,
                                                           session: Session) -> None:
    """The word was a one-line field before « Oui » and « Non merci »: Enter (the phone
    keyboard's « OK ») sent the form with its first button, and « Non merci, je travaille le
    samedi » became a yes that cannot be taken back, the structure told."""
    awa = approved_opportunity(session, world, "Animer un atelier de couture le samedi.")
    page = contexts.new(**PHONE).new_page()
    page.goto("/code")
    page.get_by_label("Votre code").fill(awa.access_code)
    page.get_by_role("button", name="Entrer").click()
    opportunity = page.get_by_role("article").filter(has_text="Atelier couture")
    word = opportunity.get_by_label("Un mot pour la personne qui vous accompagne (facultatif)")
    word.fill("Non merci, je travaille le samedi.")
    word.press("Enter")
    word.press_sequentially("Une autre fois peut-être.")
    expect(opportunity.get_by_role("button", name="Non merci")).to_be_visible()
    session.expire_all()
    match = session.exec(select(Match)).one()
    assert (match.status, match.resident_comment) == (MatchStatus.APPROVED, None)
    opportunity.get_by_role("button", name="Non merci").click()
    expect(page.get_by_text("Vous avez dit non.")).to_be_visible()
    session.expire_all()
    match = session.exec(select(Match)).one()
    assert match.status == MatchStatus.DECLINED
    assert match.resident_comment == "Non merci, je travaille le samedi.\nUne autre fois peut-être."


def test_a_yes_taken_back_is_asked_first(contexts: Contexts, world: World, session: Session) -> None:
    """One tap on « Je ne peux plus, finalement » told the association and the worker and freed her
    place for someone else: a slip of the thumb could lose it. The tap now opens the question;
    only its answer takes the yes back."""
    awa = approved_opportunity(session, world, "Animer un atelier de couture le samedi.")
    page = contexts.new(**PHONE).new_page()
    page.goto("/code")
    page.get_by_label("Votre code").fill(awa.access_code)
    page.get_by_role("button", name="Entrer").click()
    page.get_by_role("article").filter(has_text="Atelier couture").get_by_role(
        "button", name="Oui, ça m'intéresse").click()
    page.goto("/moi/")
    opportunity = page.get_by_role("article").filter(has_text="Atelier couture")
    opportunity.get_by_text("Je ne peux plus, finalement").click()
    expect(opportunity.get_by_text("votre place pourra aller à quelqu'un d'autre")).to_be_visible()
    session.expire_all()
    assert session.exec(select(Match)).one().status == MatchStatus.ACCEPTED
    opportunity.get_by_role("button", name="Oui, je ne peux plus").click()
    expect(page.get_by_text("Vous avez dit non.")).to_be_visible()
    session.expire_all()
    assert session.exec(select(Match)).one().status == MatchStatus.DECLINED
