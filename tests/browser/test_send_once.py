"""A form sent once per click (web/static/once.js), in Debian's chromium: a double click, or a
second tap while a slow phone is still sending, must not do the work twice."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from sqlmodel import Session, select

from models import ApiToken
from tests.browser.test_story_browser import log_in
from tests.conftest import World


def slow_network(page: Page) -> None:
    """Every request of the page takes 400 ms more, as on a phone with a weak signal."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 400,
                                                  "downloadThroughput": -1, "uploadThroughput": -1})


def tokens_named(session: Session, name: str) -> list[ApiToken]:
    session.expire_all()
    return list(session.exec(select(ApiToken).where(ApiToken.name == name)).all())


def test_a_double_click_creates_one_token_and_shows_its_secret(page: Page, session: Session,
                                                                world: World) -> None:
    log_in(page, world.worker_a.email or "")
    page.goto("/compte/jetons")
    page.get_by_label("Nom du jeton").fill("Tableur du centre")
    slow_network(page)
    button = page.get_by_role("button", name="Créer le jeton")
    box = button.bounding_box()
    assert box is not None
    for _ in range(2):  # a person's double click: the second lands while the first is on its way
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_timeout(150)
    secret = page.get_by_test_id("api-token")
    expect(secret).to_be_visible()
    made = tokens_named(session, "Tableur du centre")
    assert len(made) == 1  # before: two, one of them active with a secret nobody saw
    assert secret.input_value().startswith(made[0].prefix)


def test_a_form_can_be_sent_again_after_coming_back(page: Page, session: Session, world: World) -> None:
    """Back to a sent form with the browser's back button: it sends again (a page the browser
    kept in memory is freed on `pageshow`; this one is loaded again, its pages are never stored)."""
    log_in(page, world.worker_a.email or "")
    page.goto("/compte/jetons")
    page.get_by_label("Nom du jeton").fill("Premier")
    page.get_by_role("button", name="Créer le jeton").click()
    expect(page.get_by_test_id("api-token")).to_be_visible()
    page.go_back()
    page.get_by_label("Nom du jeton").fill("Second")
    page.get_by_role("button", name="Créer le jeton").click()
    expect(page.get_by_test_id("api-token")).to_be_visible()
    assert [len(tokens_named(session, n)) for n in ("Premier", "Second")] == [1, 1]


def test_a_form_the_page_stopped_is_not_held(page: Page, session: Session, world: World) -> None:
    """A form whose sending the browser refused (a required field left empty) is not taken as sent."""
    log_in(page, world.worker_a.email or "")
    page.goto("/compte/jetons")
    button = page.get_by_role("button", name="Créer le jeton")
    button.click()  # the name is required: the browser keeps the form
    expect(page.get_by_test_id("api-token")).to_have_count(0)
    page.get_by_label("Nom du jeton").fill("Après coup")
    button.click()
    expect(page.get_by_test_id("api-token")).to_be_visible()
    assert len(tokens_named(session, "Après coup")) == 1


def test_revoking_a_token_is_asked_first(page: Page, session: Session, world: World) -> None:
    """One tap on « Révoquer » revoked the token for good, and the tool using it stopped: the tap
    now opens the question, only its answer revokes."""
    log_in(page, world.worker_a.email or "")
    page.goto("/compte/jetons")
    page.get_by_label("Nom du jeton").fill("Tableur bénévoles")
    page.get_by_role("button", name="Créer le jeton").click()
    expect(page.get_by_test_id("api-token")).to_be_visible()
    page.goto("/compte/jetons")
    card = page.get_by_test_id(f"token-{tokens_named(session, 'Tableur bénévoles')[0].id}")
    answer = card.get_by_role("button", name="Oui, révoquer « Tableur bénévoles »")
    expect(answer).to_be_hidden()
    card.get_by_text("Révoquer", exact=True).click()
    expect(card.get_by_text("ne pourra plus rien lire ni écrire")).to_be_visible()
    assert tokens_named(session, "Tableur bénévoles")[0].revoked_at is None
    answer.click()
    expect(page.get_by_text("Jeton révoqué")).to_be_visible()
    assert tokens_named(session, "Tableur bénévoles")[0].revoked_at is not None
