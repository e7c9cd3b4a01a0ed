"""The whole story in a real browser, clicked and typed like a person would.

Social worker records two residents → association posts needs → the worker reviews the proposals
→ the resident answers on her phone with her code → the association sees her as "Fatma Y.".
Locators are accessible ones (labels, roles, names): a field without a label fails this test.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import Contexts
from tests.conftest import PASSWORD, World
from tests.web.test_story import MECHANIC, SEAMSTRESS, SEWING_NEED

pytestmark = pytest.mark.browser

SEWING_TITLE = "Animer l'atelier couture"
# A second need, also about mending, so that Fatma gets a proposal the worker turns down:
# the resident must then see the approved opportunity only.
FRIPERIE_TITLE = "Retouches à la friperie"
FRIPERIE_NEED = ("Friperie solidaire : nous cherchons une personne qui fait des ourlets et des "
                 "retouches sur les vêtements donnés, le samedi matin à la friperie.")
CODE = re.compile(r"^[A-Z0-9]{4}-[A-Z0-9]{4}$")

Shot = Callable[[Page, str], Path]


def log_in(page: Page, email: str) -> None:
    page.goto("/connexion")
    expect(page.get_by_role("heading", name="Connexion", level=1)).to_be_visible()
    page.get_by_label("Adresse e-mail").fill(email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("button", name="Se déconnecter")).to_be_visible()


def log_out(page: Page) -> None:
    page.get_by_role("button", name="Se déconnecter").click()
    expect(page.get_by_role("link", name="J'ai un code")).to_be_visible()
    expect(page.get_by_role("button", name="Se déconnecter")).to_have_count(0)


def status_message(page: Page, text: str) -> Locator:
    """A success flash (role=status) containing `text`."""
    return page.get_by_role("status").filter(has_text=text)


def nav(page: Page, name: str) -> Locator:
    return page.get_by_role("navigation", name="Menu principal").get_by_role(
        "link", name=name, exact=True)


def add_resident(page: Page, *, first_name: str, initial: str, languages: list[str],
                 declaration: str) -> str:
    """Fill the new-person form from the worker's dashboard; return the access code shown."""
    nav(page, "Personnes").click()
    page.get_by_role("link", name="Nouvelle personne").click()
    expect(page.get_by_role("heading", name="Nouvelle personne", level=1)).to_be_visible()

    page.get_by_label("Prénom ou pseudonyme").fill(first_name)
    page.get_by_label("Initiale du nom").fill(initial)
    page.get_by_label("Quartier").select_option(label="Les Tilleuls (Saint-Aubin)")
    spoken = page.get_by_role("group", name="Langues parlées")
    for language in languages:
        spoken.get_by_label(language, exact=True).check()
    page.get_by_role("group", name="Disponibilités").get_by_label(
        "en semaine, l'après-midi").check()
    page.get_by_role("group", name="Ce que la personne souhaite").get_by_label(
        "faire du bénévolat").check()
    page.get_by_label("Ce que la personne sait faire, avec ses mots").fill(declaration)

    consent = page.get_by_role("group", name="Consentement")
    consent.get_by_label("La personne accepte que Relais lui propose des activités").check()
    consent.get_by_label("Date du consentement").fill(date.today().isoformat())
    consent.get_by_role("radio", name="accord oral, en personne").check()
    page.get_by_role("button", name="Enregistrer le profil").click()

    expect(status_message(page, "Profil enregistré.")).to_be_visible()
    expect(page.get_by_role("heading", name=f"Code d'accès de {first_name} {initial}.")
           ).to_be_visible()
    code = page.get_by_test_id("access-code").inner_text().strip()
    assert CODE.match(code), code
    return code


def post_need(page: Page, title: str, description: str, when: str, where: str) -> None:
    nav(page, "Nos besoins").click()
    page.get_by_role("link", name="Publier un besoin").click()
    expect(page.get_by_role("heading", name="Publier un besoin", level=1)).to_be_visible()
    page.get_by_label("Titre").fill(title)
    expect(page.get_by_role("radio", name="des personnes avec un savoir-faire")).to_be_checked()
    page.get_by_label("Description : quoi, quand, où").fill(description)
    page.get_by_label("Quand", exact=True).fill(when)
    page.get_by_label("Où", exact=True).fill(where)
    page.get_by_label("Quartier").select_option(label="Tous les quartiers")
    page.get_by_role("button", name="Publier", exact=True).click()
    expect(status_message(page, "Besoin publié.")).to_be_visible()
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()
    # Nobody is shown to the association before a social worker has reviewed.
    expect(page.get_by_text("Pas encore de personne proposée.")).to_be_visible()
    expect(page.get_by_text("Fatma")).to_have_count(0)


def proposal(page: Page, resident: str, need: str) -> Locator:
    """The card of one proposal on the review desk, found by its heading."""
    heading = page.get_by_role("heading", name=f"{resident} → {need}", level=2)
    return page.get_by_role("listitem").filter(has=heading)


def reject(page: Page, card: Locator, reason: str, note: str) -> None:
    card.get_by_label("Raison du refus").select_option(label=reason)
    card.get_by_label("Précision").fill(note)
    card.get_by_role("button", name="Écarter").click()
    expect(status_message(page, "Proposition écartée.")).to_be_visible()
    expect(card).to_have_count(0)


def test_whole_story_in_a_browser(page: Page, contexts: Contexts, world: World,
                                  screenshot: Shot) -> None:
    worker, member = world.worker_a.email or "", world.member.email or ""

    # 1. The social worker records two residents, with consent, in their own words.
    log_in(page, worker)
    expect(page.get_by_role("heading", name="Personnes accompagnées")).to_be_visible()
    fatma_code = add_resident(page, first_name="Fatma", initial="Y", languages=["français", "turc"],
                              declaration=SEAMSTRESS)
    screenshot(page, "01-worker-access-code")
    add_resident(page, first_name="Antonio", initial="R", languages=["portugais", "français"],
                 declaration=MECHANIC)
    nav(page, "Personnes").click()
    people = page.get_by_role("region", name="Personnes accompagnées")
    expect(people.get_by_role("link", name="Fatma Y.")).to_be_visible()
    expect(people.get_by_role("link", name="Antonio R.")).to_be_visible()
    log_out(page)

    # 2. An association member posts the sewing workshop (and a mending need).
    log_in(page, member)
    expect(page.get_by_role("heading", name=re.compile("^Nos besoins"))).to_be_visible()
    post_need(page, SEWING_TITLE, SEWING_NEED, "le mercredi après-midi", "Maison des projets")
    post_need(page, FRIPERIE_TITLE, FRIPERIE_NEED, "le samedi matin", "La friperie solidaire")
    log_out(page)

    # 3. The worker reviews: each proposal comes with its reason, in French.
    log_in(page, worker)
    nav(page, "Propositions à examiner").click()
    expect(page.get_by_role("heading", name="Propositions à examiner", level=1)).to_be_visible()
    sewing = proposal(page, "Fatma Y.", SEWING_TITLE)
    expect(sewing).to_have_count(1)
    why = sewing.get_by_role("listitem")
    expect(why.first).to_contain_text("rejoint")
    expect(why.first).to_contain_text("ressemblance")
    # « her words » rejoint « the need's words » (ressemblance NN %)
    expect(why.first).to_have_text(
        re.compile(r"^« .+ » rejoint « .+ » \(ressemblance \d{1,3} %\)$"))
    mechanic = proposal(page, "Antonio R.", SEWING_TITLE)
    expect(mechanic).to_have_count(1)
    friperie = proposal(page, "Fatma Y.", FRIPERIE_TITLE)
    expect(friperie).to_have_count(1)
    screenshot(page, "02-worker-review-desk")

    sewing.get_by_role("button", name="Valider").click()
    expect(status_message(page, "Proposition validée")).to_be_visible()
    expect(sewing).to_have_count(0)
    reject(page, mechanic, "Horaires incompatibles", "travaille le mercredi")
    reject(page, friperie, "Trop loin", "la friperie est à l'autre bout de la ville")
    expect(page.get_by_text("Aucune proposition en attente.")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_count(0)
    log_out(page)

    # 4. On her phone, the resident types her code and sees the approved opportunity only.
    phone = contexts.phone().new_page()
    phone.goto("/")
    phone.get_by_role("link", name="J'ai un code").tap()
    expect(phone.get_by_role("heading", name="Entrer mon code", level=1)).to_be_visible()
    code_box = phone.get_by_label("Votre code")
    code_box.tap()
    code_box.press_sequentially(fatma_code.lower().replace("-", " "))  # typed loosely
    phone.get_by_role("button", name="Entrer").tap()
    expect(phone.get_by_role("heading", name="Mes propositions", level=1)).to_be_visible()
    opportunity = phone.get_by_role("article")
    expect(opportunity).to_have_count(1)
    expect(opportunity.get_by_role("heading", name=SEWING_TITLE)).to_be_visible()
    expect(opportunity).to_contain_text("Les Mains Agiles")
    expect(opportunity).to_contain_text("le mercredi après-midi")
    expect(opportunity).to_contain_text("Maison des projets")
    expect(phone.get_by_text(FRIPERIE_TITLE)).to_have_count(0)  # the rejected need stays hidden
    yes = opportunity.get_by_role("button", name="Oui, ça m'intéresse")
    expect(yes).to_be_visible()
    screenshot(phone, "03-resident-phone")

    opportunity.get_by_label("Un mot pour la personne qui vous accompagne (facultatif)").fill("avec plaisir")
    yes.tap()
    expect(status_message(phone, "Merci ! Votre réponse est envoyée.")).to_be_visible()
    # After a yes: how the association may reach her (through her social worker, phone or e-mail).
    expect(phone.get_by_role("heading", name="Votre contact", level=1)).to_be_visible()
    # The question is asked once, by the choice itself (it was the page's heading too).
    expect(phone.get_by_text("Comment la structure peut vous joindre")).to_have_count(1)
    phone.get_by_label("Par téléphone").check()
    phone.get_by_label("Numéro de téléphone ou adresse e-mail", exact=False).fill("06 12 34 56 78")
    screenshot(phone, "04a-resident-phone-contact")
    phone.get_by_role("button", name="Enregistrer").tap()  # back to her opportunities
    expect(phone.get_by_text("Vous avez dit oui.")).to_be_visible()
    expect(phone.get_by_role("button", name="Oui, ça m'intéresse")).to_have_count(0)
    screenshot(phone, "04-resident-phone-answered")
    log_out(phone)

    # 5. The association now sees her, by first name and initial only, and that she said yes.
    log_in(page, member)
    page.get_by_role("link", name=SEWING_TITLE).click()
    expect(page.get_by_role("heading", name=SEWING_TITLE, level=1)).to_be_visible()
    candidate = page.get_by_role("listitem").filter(has_text="Fatma Y.")
    expect(candidate).to_have_count(1)
    expect(candidate).to_contain_text("a dit oui")
    expect(page.get_by_text("Antonio")).to_have_count(0)
    screenshot(page, "05-association-need")
    # She said yes: the association may now see the contact she chose, and later record the outcome.
    candidate.get_by_role("link", name="Contact et bilan : Fatma Y.").click()
    expect(page.get_by_test_id("contact")).to_contain_text("06 12 34 56 78")
