"""The narrowest phones in use (320 CSS pixels): a resident's page never scrolls sideways, even
when a need's text holds a word with no place to break (an e-mail address)."""

from __future__ import annotations

from datetime import date

import pytest
from playwright.sync_api import expect
from sqlmodel import Session

from tests.browser.conftest import Contexts
from tests.browser.test_story_browser import log_in
from tests.conftest import World, add_resident, approved_opportunity
from web.extensions import matching
from web.services.needs import NeedInput, create_need

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

WIDER = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


@pytest.mark.parametrize("zoom", ["100%", "200%"])
def test_staff_pages_fit_a_phone_even_with_large_text(contexts: Contexts, world: World, session: Session,
                                                      zoom: str) -> None:
    """A social worker reviews on a phone: at 320 px the desk's rejection form (16rem wide) and,
    with the text at 200 % (WCAG 1.4.4) on a 360 px phone, the header's « Se déconnecter », the
    filters, the dashboard's panels and the tick boxes widened every page."""
    add_resident(session, world, "Awa", "Je fais de la couture et je répare les vélos.", initial="K")
    create_need(session, matching, world.member, NeedInput(
        title="Atelier couture", description="Animer un atelier couture."), date.today())
    width = 320 if zoom == "100%" else 360
    page = contexts.new(**{**SMALL, "viewport": {"width": width, "height": 640}}).new_page()
    log_in(page, world.worker_a.email or "")
    for path in ("/accompagnement/", "/accompagnement/propositions", "/accompagnement/a-valider",
                 "/accompagnement/residents/nouveau", "/impact/"):
        page.goto(path)
        page.evaluate(f"document.documentElement.style.fontSize = '{zoom}'")
        assert page.evaluate(WIDER) == 0, (path, zoom)


@pytest.mark.parametrize("zoom", ["100%", "200%"])
def test_residents_own_pages_fit_a_phone_even_with_large_text(contexts: Contexts, world: World,
                                                              session: Session, zoom: str) -> None:
    """The copy of her data (« Voir mes données ») was 385 px wide on a 360 px phone: its facts'
    first column took the width of its longest label, and every value was cut at the edge."""
    awa = approved_opportunity(session, world, "Animer un atelier de couture pour les jeunes du quartier.")
    width = 320 if zoom == "100%" else 360
    page = contexts.new(**{**SMALL, "viewport": {"width": width, "height": 640}}).new_page()
    page.goto("/code")
    page.get_by_label("Votre code").fill(awa.access_code)
    page.get_by_role("button", name="Entrer").click()
    for path in ("/moi/", "/moi/savoir-faire", "/moi/donnees", "/moi/donnees/copie",
                 "/moi/donnees/effacement", "/moi/donnees/accord/retrait", "/notifications/"):
        page.goto(path)
        page.evaluate(f"document.documentElement.style.fontSize = '{zoom}'")
        assert page.evaluate(WIDER) == 0, (path, zoom)


SMALL_TARGETS = """() => [...document.querySelectorAll(
    '.top nav a, .logout button, label.check, .big-button, button')]
  .filter(e => e.offsetParent !== null)
  .map(e => [e.textContent.trim().slice(0, 40), Math.round(e.getBoundingClientRect().height)])
  .filter(([_text, height]) => height < 44)"""


def test_what_a_thumb_taps_is_44_pixels_high(contexts: Contexts, world: World, session: Session) -> None:
    """The header's links were 21 px high, « Se déconnecter » 36 px and a tick box's line 27 px:
    below the 44 px a thumb needs (WCAG 2.5.5), on a resident's pages and on the form a
    habitant-relais fills in on her phone."""
    awa = approved_opportunity(session, world, "Animer un atelier de couture pour les jeunes du quartier.")
    page = contexts.new(**{**SMALL, "viewport": {"width": 360, "height": 740}}).new_page()
    page.goto("/code")
    page.get_by_label("Votre code").fill(awa.access_code)
    page.get_by_role("button", name="Entrer").click()
    for path in ("/moi/", "/moi/contact", "/moi/donnees"):
        page.goto(path)
        assert page.evaluate(SMALL_TARGETS) == [], path
    relais = contexts.new(**{**SMALL, "viewport": {"width": 360, "height": 740}}).new_page()
    log_in(relais, world.relais.email or "")
    relais.goto("/relais/personnes/nouvelle")
    assert relais.evaluate(SMALL_TARGETS) == []


def test_the_tables_of_a_residents_data_read_as_rows_on_a_phone(contexts: Contexts, world: World,
                                                                  session: Session) -> None:
    """On a 390 px phone the copy of her data squeezed five columns side by side: dates and names
    broke inside words (« 07/12/2 026 », « Nadia Benal i »). Each row is now a block, each value
    after its label, as wide as the page."""
    awa = approved_opportunity(session, world, "Animer un atelier de couture pour les jeunes du quartier.")
    page = contexts.new(**{**SMALL, "viewport": {"width": 390, "height": 800}}).new_page()
    page.goto("/code")
    page.get_by_label("Votre code").fill(awa.access_code)
    page.get_by_role("button", name="Entrer").click()
    page.goto("/moi/donnees/copie")
    shown = "[...document.querySelectorAll('.export table td')].filter(td => td.offsetParent !== null)"
    widths = page.evaluate(f"{shown}.map(td => td.getBoundingClientRect().width)")
    assert len(widths) >= 4 and min(widths) > 300, widths
    labels = page.evaluate(f"{shown}.map(td => getComputedStyle(td, '::before').content)")
    assert labels[0] == '"Donné le\u00a0: "'  # the label, before the value
    assert page.evaluate(WIDER) == 0


def test_a_link_alone_on_its_line_is_a_thumbs_size(contexts: Contexts, world: World,
                                                   session: Session) -> None:
    """« Retour » on the contact page was 60 x 21 px and « Retour à l'accueil » on an error page
    155 x 21: hard to tap. And the error page's tab was named by a number only (« 404 · Relais »)."""
    awa = approved_opportunity(session, world, "Animer un atelier de couture pour les jeunes du quartier.")
    page = contexts.new(**SMALL).new_page()
    page.goto("/code")
    page.get_by_label("Votre code").fill(awa.access_code)
    page.get_by_role("button", name="Entrer").click()
    for path, name in (("/moi/contact", "Retour"), ("/moi/nulle-part", "Retour à l'accueil")):
        page.goto(path)
        box = page.get_by_role("link", name=name, exact=True).bounding_box()
        assert box is not None and box["height"] >= 44 and box["width"] >= 44, (path, box)
    assert page.title().startswith("Cette page n") and "404" in page.title()


def test_impact_charts_keep_readable_labels_on_a_phone(contexts: Contexts, world: World,
                                                      session: Session) -> None:
    """The charts (drawn 720 wide) shrank to the phone's width, their 12 px labels to 6 px: a
    chart now keeps a readable size and scrolls sideways in its own box, not the page."""
    add_resident(session, world, "Awa", "Je fais de la couture et je répare les vélos.", initial="K")
    page = contexts.new(**{**SMALL, "viewport": {"width": 390, "height": 800}}).new_page()
    log_in(page, world.worker_a.email or "")
    page.goto("/impact/")
    chart = page.locator("#competences svg.chart")
    box = chart.bounding_box()
    assert box is not None and box["width"] >= 36 * 16
    label = chart.locator("text").first.bounding_box()
    assert label is not None and label["height"] >= 10  # a 12 px label, at 36rem / 720
    assert page.evaluate(WIDER) == 0


def test_the_need_forms_languages_fold_away_until_asked_for(contexts: Contexts, world: World) -> None:
    """28 language boxes were 1,500 px of the association's form on a phone, for what most needs
    leave empty: folded, opened by a tap, and open again when the form comes back with one ticked."""
    page = contexts.new(**{**SMALL, "viewport": {"width": 390, "height": 800}}).new_page()
    log_in(page, world.member.email or "")
    page.goto("/structure/besoins/nouveau")
    arabic = page.get_by_role("checkbox", name="arabe", exact=True)
    expect(arabic).to_be_hidden()
    page.get_by_text("Une langue est nécessaire ?").click()
    arabic.check()
    page.get_by_label("Description : quoi, quand, où").fill("Accompagner des familles à la mairie.")
    page.get_by_label("Titre").fill("   ")  # no title (the browser lets blanks through): the form comes back
    page.get_by_role("button", name="Publier", exact=True).click()
    expect(page.get_by_text("Une langue est nécessaire ? (1)")).to_be_visible()
    expect(arabic).to_be_visible()
    expect(arabic).to_be_checked()
    expect(page.get_by_role("link", name="Retour")).to_have_attribute("href", "/structure/")
