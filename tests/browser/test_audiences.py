"""Each audience's main flow, on a desktop and on a phone, with axe-core on every page it shows.

Social worker (create a person, review), association member (post a need, see the approved
candidate), resident (log in with the code, answer), habitant-relais when the role has pages;
then every other page each role can open (found in the URL map, so new pages are checked
too). Every page visited: zero serious or critical axe-core violations, no console error (a CSP
refusal shows there), and a screenshot under $RELAIS_ARTIFACTS/screenshots/<audience>/.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import ConsoleMessage, Page, Response, expect
from sqlmodel import Session, select

from models import Match, MatchStatus, Role, User
from tests.browser.conftest import PHONE, AxeViolations, Contexts
from tests.browser.test_story_browser import log_in, proposal, status_message
from tests.conftest import PASSWORD, World, password_hash
from tests.web.test_story import MECHANIC, SEAMSTRESS, SEWING_NEED

pytestmark = pytest.mark.browser

DEVICES: dict[str, dict[str, object]] = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": PHONE,
}
NEED_TITLE = "Animer l'atelier couture"
MAX_FULL_PAGE_PX = 6000
IMPORT_CSV = ("prénom;initiale;quartier;ce que je sais faire;consentement date;consentement méthode\n"
              f"Leïla;B;Les Tilleuls;Je fais du pain pour tout l'immeuble.;{date.today():%d/%m/%Y};oral\n"
              f"Omar;K;Nulle Part;Je répare les vélos.;{date.today():%d/%m/%Y};oral\n")
Check = Callable[[Page, str], list[dict[str, object]]]


@dataclass
class Visits:
    """Checks and photographs each page an audience sees on one device."""

    device: str
    screenshots: Path
    check: Check
    seen: list[str] = field(default_factory=list)
    errors: dict[int, list[str]] = field(default_factory=dict)
    minor: dict[str, list[str]] = field(default_factory=dict)  # moderate/minor axe findings

    def watch(self, page: Page) -> Page:
        """Record the page's console errors (a script or style refused by the CSP shows there)."""
        errors = self.errors.setdefault(id(page), [])

        def on_console(message: ConsoleMessage) -> None:
            # A failed download is reported by on_response, with its address.
            if message.type == "error" and not message.text.startswith("Failed to load resource"):
                errors.append(message.text)

        def on_response(response: Response) -> None:
            if response.status >= 400 and response.request.resource_type != "document":
                errors.append(f"{response.status} {response.url}")

        page.on("console", on_console)
        page.on("response", on_response)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    def __call__(self, page: Page, audience: str, name: str) -> None:
        page.wait_for_load_state("load")
        where = f"{audience}/{self.device}-{name}"
        self.minor[where] = [f"{v['impact']} {v['id']}: {v['help']}" for v in self.check(page, where)]
        errors = self.errors.get(id(page), [])
        assert not errors, f"{where}: console errors {errors}"
        folder = self.screenshots / audience
        folder.mkdir(parents=True, exist_ok=True)
        # The whole page, unless it is very long (the API reference): its top is enough there.
        full = page.evaluate("document.documentElement.scrollHeight") <= MAX_FULL_PAGE_PX
        page.screenshot(path=str(folder / f"{self.device}-{name}.png"), full_page=full)
        self.seen.append(where)


@pytest.fixture
def visits(request: pytest.FixtureRequest, screenshots_dir: Path,
           check_accessibility: Check) -> Iterator[Visits]:
    """The pages' checker; the moderate and minor axe findings go to accessibility-<device>.json
    beside the screenshots (for the record: only serious and critical ones fail the test)."""
    device = request.node.callspec.params["device"]
    done = Visits(device, screenshots_dir, check_accessibility)
    yield done
    report = screenshots_dir.parent / f"accessibility-{device}.json"
    report.write_text(json.dumps(done.minor, indent=1, ensure_ascii=False), encoding="utf-8")


def addresses(app: Flask, ids: dict[str, int]) -> list[str]:
    """Every GET address of the app whose parameters are all known in `ids` (resident_id,
    need_id, match_id…): the pages of the flows, and those added later. Not the static files,
    the health check or the JSON API (its documentation page yes)."""
    adapter = app.url_map.bind("127.0.0.1")
    found = set()
    for rule in app.url_map.iter_rules():
        if ("GET" not in (rule.methods or set()) or not rule.arguments <= ids.keys()
                or rule.rule.startswith(("/static", "/healthz"))
                or (rule.rule.startswith("/api/v1/") and rule.rule != "/api/v1/docs")):
            continue
        found.add(adapter.build(rule.endpoint, {name: ids[name] for name in rule.arguments}))
    return sorted(found)


def slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "accueil"


def visit_other_pages(page: Page, addresses: list[str], visits: Visits, audience: str,
                      already: set[str]) -> None:
    """Every page this role may open and no audience before it has checked (each page once:
    the API documentation alone takes seconds to check)."""
    for path in addresses:
        if path in already:
            continue
        # Ask first (same cookies): a download (CSV, JSON) or a page for another role is skipped.
        response = page.request.get(path, max_redirects=0)
        if response.status != 200 or "text/html" not in response.headers.get("content-type", ""):
            continue
        page.goto(path)
        visits(page, audience, f"page-{slug(path)}")
        already.add(path)


@pytest.mark.parametrize("device", list(DEVICES))
def test_each_audience_main_flow_is_accessible(device: str, app: Flask, contexts: Contexts,
                                               session: Session, world: World,
                                               visits: Visits) -> None:
    options = DEVICES[device]
    worker_email, member_email = world.worker_a.email or "", world.member.email or ""

    # Anyone: the welcome page, the staff login page, an unknown page.
    anonymous = visits.watch(contexts.new(**options).new_page())
    anonymous.goto("/")
    visits(anonymous, "anonymous", "01-welcome")
    anonymous.get_by_role("link", name=re.compile("Je travaille dans une structure")).click()
    expect(anonymous.get_by_role("heading", name="Connexion", level=1)).to_be_visible()
    visits(anonymous, "anonymous", "02-login")
    anonymous.goto("/cette-page-n-existe-pas")
    expect(anonymous.get_by_role("heading", level=1)).to_contain_text("n'existe pas")
    visits(anonymous, "anonymous", "03-not-found")

    # 1. The social worker records a person with her consent and her own words.
    worker = visits.watch(contexts.new(**options).new_page())
    log_in(worker, worker_email)
    visits(worker, "worker", "01-dashboard")
    worker.get_by_role("link", name="Nouvelle personne").first.click()
    expect(worker.get_by_role("heading", name="Nouvelle personne", level=1)).to_be_visible()
    visits(worker, "worker", "02-new-person-form")
    fill_person(worker, "Fatma", "Y", "turc", SEAMSTRESS)
    worker.get_by_role("button", name="Enregistrer le profil").click()
    expect(status_message(worker, "Profil enregistré.")).to_be_visible()
    code = worker.get_by_test_id("access-code").inner_text().strip()
    visits(worker, "worker", "03-access-code")
    worker.get_by_role("link", name="Voir le profil").click()
    expect(worker.get_by_role("heading", name=re.compile("Fatma Y"), level=1)).to_be_visible()
    visits(worker, "worker", "04-person")
    person_url = worker.url
    # She speaks Arabic too, the worker learns later: the person's own form, then the page again.
    worker.get_by_role("link", name=re.compile("Modifier le quartier, les langues")).click()
    heading = worker.get_by_role("heading", name=re.compile("Modifier le profil de Fatma Y"), level=1)
    expect(heading).to_be_visible()
    visits(worker, "worker", "04a-person-profile-form")
    worker.get_by_label("arabe", exact=True).check()
    worker.get_by_role("button", name="Enregistrer").click()
    expect(status_message(worker, "Profil modifié.")).to_be_visible()
    expect(worker.get_by_text("turc, arabe").or_(worker.get_by_text("arabe, turc")).first).to_be_visible()

    # 1b. A habitant-relais records a neighbour on a phone; the social worker validates it.
    relay = habitant_relais(session, world)
    if relay is not None:
        mediator = visits.watch(contexts.new(**options).new_page())
        log_in(mediator, relay.email or "")
        visits(mediator, "habitant-relais", "01-home")
        mediator.get_by_role("link", name="Noter une personne et ce qu'elle sait faire").click()
        visits(mediator, "habitant-relais", "02-person-form")
        fill_person(mediator, "Antonio", "R", "portugais", MECHANIC)
        mediator.get_by_role("button", name="Envoyer au centre social").click()
        expect(status_message(mediator, "Merci ! La fiche est envoyée")).to_be_visible()
        visits(mediator, "habitant-relais", "03-sent")
        worker.goto("/accompagnement/")
        worker.get_by_role("link", name=re.compile("fiche.s. à valider")).click()
        expect(worker.get_by_text("Antonio R.").first).to_be_visible()
        visits(worker, "worker", "04b-records-to-approve")
        worker.get_by_role("button", name="Valider : la personne entre dans Relais").click()
        expect(status_message(worker, "Profil validé.")).to_be_visible()

    # 2. The association posts a need; nobody is shown before a social worker has reviewed.
    member = visits.watch(contexts.new(**options).new_page())
    log_in(member, member_email)
    visits(member, "association", "01-needs")
    member.get_by_role("link", name="Publier un besoin").click()
    visits(member, "association", "02-need-form")
    member.get_by_label("Titre").fill(NEED_TITLE)
    member.get_by_label("Description : quoi, quand, où").fill(SEWING_NEED)
    member.get_by_label("Quand", exact=True).fill("le mercredi après-midi")
    member.get_by_label("Où", exact=True).fill("Maison des projets")
    member.get_by_role("button", name="Publier", exact=True).click()
    expect(status_message(member, "Besoin publié.")).to_be_visible()
    visits(member, "association", "03-need-without-candidate")
    need_url = member.url

    # 3. The worker reviews the proposal, with its reason, and approves it.
    worker.goto("/accompagnement/propositions")
    card = proposal(worker, "Fatma Y.", NEED_TITLE)
    expect(card).to_have_count(1)
    visits(worker, "worker", "05-review-desk")
    card.get_by_role("button", name="Valider").click()
    expect(status_message(worker, "Proposition validée")).to_be_visible()
    visits(worker, "worker", "06-review-desk-done")

    # 4. The resident types her code and says yes.
    resident = visits.watch(contexts.new(**options).new_page())
    resident.goto("/")
    resident.get_by_role("link", name="J'ai un code").click()
    visits(resident, "resident", "01-code")
    resident.get_by_label("Votre code").fill(code.lower())
    resident.get_by_role("button", name="Entrer").click()
    expect(resident.get_by_role("heading", name="Mes propositions", level=1)).to_be_visible()
    opportunity = resident.get_by_role("article").filter(has_text=NEED_TITLE)
    expect(opportunity).to_have_count(1)
    visits(resident, "resident", "02-opportunities")
    opportunity.get_by_label("Un mot pour la personne qui vous accompagne (facultatif)").fill("avec plaisir")
    opportunity.get_by_role("button", name="Oui, ça m'intéresse").click()
    expect(status_message(resident, "Merci !")).to_be_visible()
    visits(resident, "resident", "03-answered")

    # 5. The association sees her by first name and initial, and that she said yes.
    member.goto(need_url)
    candidate = member.get_by_role("listitem").filter(has_text="Fatma Y.")
    expect(candidate).to_contain_text("a dit oui")
    visits(member, "association", "04-need-with-candidate")

    # 6. Every other page of each audience (dashboards, imports, impact, notifications, data…).
    ids = {"resident_id": int(person_url.rstrip("/").rsplit("/", 1)[1]),
           "need_id": int(need_url.rstrip("/").rsplit("/", 1)[1]),
           "match_id": session.exec(select(Match.id).where(
               Match.status == MatchStatus.ACCEPTED)).one() or 0,  # Fatma's yes
           "territory_id": world.tilleuls.id or 0, "organisation_id": world.centre_a.id or 0}
    pages = addresses(app, ids)
    checked = {"/", "/code", "/connexion"}
    for audience, page in {"worker": worker, "association": member, "resident": resident}.items():
        visit_other_pages(page, pages, visits, audience, checked)
    if relay is not None:
        visit_other_pages(mediator, pages, visits, "habitant-relais", checked)
    admin = visits.watch(contexts.new(**options).new_page())
    log_in(admin, world.admin.email or "")
    visit_other_pages(admin, pages, visits, "admin", checked)  # the admin's own pages (journal…)

    # 7. The social worker's spreadsheet import: the preview, with a row in error, checked too.
    worker.goto("/accompagnement/import")
    worker.get_by_label("Fichier CSV", exact=False).set_input_files(files={
        "name": "personnes.csv", "mimeType": "text/csv", "buffer": IMPORT_CSV.encode("utf-8")})
    worker.get_by_role("button", name="Voir l'aperçu").click()
    expect(worker.get_by_role("heading", name="Aperçu de l'import", level=1)).to_be_visible()
    expect(worker.get_by_text("Quartier inconnu").first).to_be_visible()
    visits(worker, "worker", "07-import-preview-with-errors")

    for must in ("worker", "association", "resident", "anonymous"):
        assert any(seen.startswith(f"{must}/") for seen in visits.seen), visits.seen


def fill_person(page: Page, first_name: str, initial: str, language: str, words: str) -> None:
    """The new-person form (the social worker's, and the habitant-relais' which reuses it)."""
    page.get_by_label("Prénom ou pseudonyme").fill(first_name)
    page.get_by_label("Initiale du nom").fill(initial)
    page.get_by_label("Quartier").select_option(label="Les Tilleuls (Saint-Aubin)")
    page.get_by_role("group", name="Langues parlées").get_by_label(language, exact=True).check()
    page.get_by_label("Ce que la personne sait faire, avec ses mots").fill(words)
    consent = page.get_by_role("group", name="Consentement")
    consent.get_by_label(re.compile("La personne accepte")).check()
    consent.get_by_label("Date du consentement").fill(date.today().isoformat())
    consent.get_by_role("radio", name="accord oral, en personne").check()


def habitant_relais(session: Session, world: World) -> User | None:
    """A habitant-relais of centre A, when that role logs in to pages of its own."""
    from web.views.auth import HOME_OF_ROLE

    if Role.HABITANT_RELAIS not in HOME_OF_ROLE:
        return None
    relay = User(email="relais.habitant@example.org", display_name="Samira (habitante-relais)",
                 role=Role.HABITANT_RELAIS, organisation_id=world.centre_a.id,
                 password_hash=password_hash())
    session.add(relay)
    session.commit()
    return relay


def test_the_accessibility_check_fails_on_a_page_with_a_serious_violation(
        contexts: Contexts, check_accessibility: Check) -> None:
    page = contexts.new().new_page()
    page.set_content('<html><body><main><img src="data:,"><input></main></body></html>')
    with pytest.raises(AxeViolations, match=r"(?s)critical image-alt.*critical label"):
        check_accessibility(page, "a page without alt text, label or language")


def test_the_language_switch_in_the_footer(contexts: Contexts, world: World,
                                           check_accessibility: Check, screenshots_dir: Path) -> None:
    """French first; one press on « English » (a plain form button) and the pages follow,
    logging in included; the <html lang> follows too."""
    page = contexts.phone().new_page()
    page.goto("/code")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    page.get_by_role("contentinfo").get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="Enter my code", level=1)).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    check_accessibility(page, "the code page in English")
    (screenshots_dir / "anonymous").mkdir(exist_ok=True)
    page.screenshot(path=str(screenshots_dir / "anonymous" / "phone-english-code.png"), full_page=True)
    page.goto("/connexion")
    page.get_by_label("Email address").fill(world.worker_a.email or "")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("link", name="New person").first).to_be_visible()
    check_accessibility(page, "the worker's dashboard in English")
    (screenshots_dir / "worker").mkdir(exist_ok=True)
    page.screenshot(path=str(screenshots_dir / "worker" / "phone-english-dashboard.png"), full_page=True)
    page.get_by_role("contentinfo").get_by_role("button", name="Français").click()
    expect(page.get_by_role("link", name="Nouvelle personne").first).to_be_visible()
