"""The review desk from the keyboard (web/static/review.js) and the guided prompts of the profile
form (web/static/guided.js), in Debian's chromium: the progressive enhancements really work."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from playwright.sync_api import Page, expect
from sqlmodel import Session, select

from models import Match, MatchStatus, SkillDeclaration
from tests.browser.conftest import Contexts
from tests.browser.test_story_browser import log_in, status_message
from tests.conftest import World, add_resident, hand_proposals
from web.extensions import matching
from web.services.needs import NeedInput, create_need

Check = Callable[[Page, str], list[dict[str, object]]]
Shot = Callable[[Page, str], Path]


def focused_card(page: Page) -> str:
    return str(page.evaluate("document.activeElement.closest('.proposal')?.id || ''"))


def test_review_desk_shortcuts(page: Page, session: Session, world: World,
                               check_accessibility: Check, screenshot: Shot) -> None:
    awa = add_resident(session, world, "Awa", "Je fais de la couture.", initial="K").resident
    ben = add_resident(session, world, "Ben", "Je répare les vélos.", initial="L").resident
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Atelier couture", description="Animer un atelier couture."), date.today())
    first, second = (f"proposal-{m.id}" for m in hand_proposals(
        session, [(need.id or 0, awa.id or 0, 0.6), (need.id or 0, ben.id or 0, 0.5)]))

    log_in(page, world.worker_a.email or "")
    page.goto("/accompagnement/propositions")
    check_accessibility(page, "review desk")
    page.keyboard.press("j")
    assert focused_card(page) == first
    page.keyboard.press("j")
    assert focused_card(page) == second
    page.keyboard.press("k")
    assert focused_card(page) == first
    page.keyboard.press("x")
    expect(page.locator(f"#{first} [data-pick]")).to_be_checked()
    page.keyboard.press("r")
    expect(page.locator(f"#{first} [data-reason]")).to_be_focused()
    page.keyboard.press("j")  # typed in a list: not a shortcut
    assert focused_card(page) == first
    # "Autre raison" makes the note required in the browser too.
    page.locator(f"#{first} [data-reason]").select_option("other")
    expect(page.locator(f"#{first} [data-note]")).to_have_attribute("required", "")
    page.keyboard.press("?")  # in the list, still ignored
    expect(page.locator("#shortcuts")).not_to_have_attribute("open", "")
    page.locator(f"#{first}").focus()
    page.keyboard.press("?")
    expect(page.locator("#shortcuts")).to_have_attribute("open", "")
    screenshot(page, "review-desk-keyboard")
    page.locator(f"#{first} a").first.focus()  # on the card's link, « a » is a slip: nothing
    page.keyboard.press("a")
    page.locator(f"#{first}").focus()
    page.keyboard.press("a")
    expect(status_message(page, "Proposition validée")).to_be_visible()
    session.expire_all()
    statuses = {m.resident_id: m.status for m in session.exec(select(Match)).all()}
    assert statuses == {awa.id: MatchStatus.APPROVED, ben.id: MatchStatus.PROPOSED}
    # The one-letter shortcuts can be turned off (WCAG 2.1.4), and stay off on this device.
    page.locator("#shortcuts summary").click()
    page.get_by_label("Raccourcis d'une lettre actifs", exact=False).uncheck()
    page.reload()
    expect(page.get_by_label("Raccourcis d'une lettre actifs", exact=False)).not_to_be_checked()
    page.locator(".proposal").first.focus()
    page.keyboard.press("a")
    page.wait_for_timeout(300)
    session.expire_all()
    still = {m.resident_id: m.status for m in session.exec(select(Match)).all()}
    assert still[ben.id] == MatchStatus.PROPOSED


def test_guided_prompts_add_to_the_text(contexts: Contexts, session: Session, world: World,
                                        check_accessibility: Check, screenshot: Shot) -> None:
    phone = contexts.phone().new_page()
    log_in(phone, world.relais.email or "")
    phone.goto("/relais/personnes/nouvelle")
    check_accessibility(phone, "habitant-relais profile form")
    text = phone.get_by_label("Ce que la personne sait faire, avec ses mots")
    text.fill("Elle parle bambara.")
    home = phone.get_by_label("À la maison")
    home.fill("Je cuisine pour quarante personnes.")
    phone.locator("[data-guided-add='guide_home']").click()
    expect(text).to_have_value("Elle parle bambara.\nJe cuisine pour quarante personnes.")
    expect(home).to_have_value("")
    expect(phone.locator("#guided-status")).to_have_text("Ajouté au texte.")
    phone.get_by_label("Au travail").fill("J'étais vendeuse au marché.")  # left for the server
    phone.get_by_label("Prénom ou pseudonyme").fill("Sira")
    phone.get_by_label("Quartier").select_option(label="Les Tilleuls (Saint-Aubin)")
    consent = phone.get_by_role("group", name="Consentement")
    consent.get_by_label("La personne accepte", exact=False).check()
    consent.get_by_role("radio", name="accord oral, en personne").check()
    screenshot(phone, "relais-guided-form-phone")
    phone.get_by_role("button", name="Envoyer au centre social").click()
    expect(status_message(phone, "Merci ! La fiche est envoyée")).to_be_visible()
    check_accessibility(phone, "habitant-relais home")
    assert session.exec(select(SkillDeclaration.text)).one() == (
        "Elle parle bambara.\nJe cuisine pour quarante personnes.\nJ'étais vendeuse au marché.")


def test_after_valider_on_a_phone_the_desk_opens_at_the_next_card(contexts: Contexts, session: Session,
                                                                  world: World, check_accessibility: Check
                                                                  ) -> None:
    """Fifty cards are ~60,000 px on a phone, and every « Valider » or « Écarter » opened the desk
    at the top again: it opens at the next card, which has the focus (« a » acts on it)."""
    people = [add_resident(session, world, name, "Je fais de la couture.", initial="K").resident
              for name in ("Awa", "Ben", "Chloé", "Dina")]
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Atelier couture", description="Animer un atelier couture."), date.today())
    cards = [f"proposal-{m.id}" for m in hand_proposals(
        session, [(need.id or 0, p.id or 0, 0.6 - i / 100) for i, p in enumerate(people)])]
    phone = contexts.phone().new_page()
    log_in(phone, world.worker_a.email or "")
    phone.goto("/accompagnement/propositions")
    assert phone.evaluate("[...document.querySelectorAll('.proposal')].map(c => c.id)") == cards
    phone.locator(f"#{cards[2]} [data-approve]").click()
    phone.wait_for_url(f"**/accompagnement/propositions#{cards[3]}")
    expect(phone.locator(f"#{cards[3]}")).to_be_focused()
    expect(phone.locator(f"#{cards[3]}")).to_be_in_viewport()
    # What was done is said beside it, not only at the top of the page, out of view.
    said = phone.locator(".cards li.done [role=status]")
    expect(said).to_have_text("Proposition validée : la personne la verra dans son espace.")
    expect(said).to_be_in_viewport()
    check_accessibility(phone, "review desk at the next card")
    assert phone.evaluate("window.scrollY") > 0
    phone.keyboard.press("a")
    phone.wait_for_url(f"**/accompagnement/propositions#{cards[1]}")  # the last card: the previous one
    expect(phone.locator(f"#{cards[1]}")).to_be_focused()
    session.expire_all()
    assert [m.status for m in session.exec(select(Match).order_by(Match.id)).all()] == [
        MatchStatus.PROPOSED, MatchStatus.PROPOSED, MatchStatus.APPROVED, MatchStatus.APPROVED]
