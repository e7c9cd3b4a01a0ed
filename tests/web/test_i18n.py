"""French by default, English available: the language switch, and a catalogue that keeps up.

Every UI string is a French msgid; web/translations/en holds its English. These tests extract the
msgids from the code like `pybabel extract` does and fail when one is missing from the catalogue
(or untranslated, or fuzzy), when the compiled .mo lags behind the .po, when a template holds
text outside `_()`, and when a page rendered in English still shows a French UI string.
"""

from __future__ import annotations

import html
import os
import re
import shutil
from dataclasses import dataclass
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from models import Direction, Match, MatchStatus
from tests.conftest import Auth, World, add_resident
from web.catalogs import compile_catalogs
from web.extensions import matching
from web.services.needs import NeedInput, create_need
from web.services.proposals import Proposal, store_proposals

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "web" / "translations"
EN_PO = TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po"
EN_MO = EN_PO.with_suffix(".mo")
EXTRACT = f"cd {ROOT} && .venv/bin/pybabel extract -F web/babel.cfg -k _l -o /tmp/messages.pot ."
UPDATE = (".venv/bin/pybabel update --no-fuzzy-matching --ignore-obsolete -i /tmp/messages.pot "
          "-d web/translations")
COMPILE = ".venv/bin/pybabel compile -d web/translations"
ENGLISH = {"Accept-Language": "en-GB,en;q=0.9"}


def extracted_msgids() -> set[str]:
    """Every msgid in the code, extracted with web/babel.cfg (what `pybabel extract` finds)."""
    method_map: list[tuple[str, str]] = []
    for line in (ROOT / "web" / "babel.cfg").read_text().splitlines():
        found = re.fullmatch(r"\[(\w+): (.+)\]", line.strip())
        if found:
            method_map.append((found.group(2), found.group(1)))
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None,
                "N_": None}
    return {message if isinstance(message, str) else message[0]
            for _file, _line, message, _comments, _context
            in extract_from_dir(str(ROOT), method_map, keywords=keywords)}


def english_catalogue() -> Catalog:
    with EN_PO.open("rb") as po:
        return read_po(po)


def test_every_msgid_in_the_code_has_an_english_translation() -> None:
    catalogue = english_catalogue()
    translated = {m.id for m in catalogue if m.id and m.string and not m.fuzzy}
    missing = sorted(extracted_msgids() - translated)
    assert not missing, (
        f"{len(missing)} UI string(s) have no English translation yet: {missing[:10]}. Run\n"
        f"  {EXTRACT} && {UPDATE}\nthen translate the empty msgstr in {EN_PO.relative_to(ROOT)} "
        f"and run {COMPILE}")


def test_the_catalogue_keeps_no_string_the_code_no_longer_uses() -> None:
    stale = sorted({m.id for m in english_catalogue() if m.id} - extracted_msgids())
    assert not stale, f"remove (pybabel update does it) these msgids: {stale[:10]}"


def test_the_compiled_catalogue_is_in_step_with_the_po_file() -> None:
    assert EN_MO.exists(), f"{EN_MO.relative_to(ROOT)} is missing: run scripts/test or {COMPILE}"
    with EN_MO.open("rb") as mo:
        compiled = {m.id: m.string for m in read_mo(mo) if m.id}
    source = {m.id: m.string for m in english_catalogue() if m.id and m.string and not m.fuzzy}
    assert compiled == source, f"the .mo lags behind the .po: run {COMPILE}"


def test_a_site_started_without_compiled_catalogues_compiles_them(tmp_path: Path) -> None:
    """A deployment from the Procfile never runs scripts/bootstrap: the app compiles at start-up
    what is missing or older than its .po (web.catalogs), and only that."""
    copy = tmp_path / "translations"
    shutil.copytree(TRANSLATIONS, copy)
    mo = copy / "en" / "LC_MESSAGES" / "messages.mo"
    mo.unlink()
    assert compile_catalogs(copy) == [mo]
    assert mo.stat().st_mode & 0o777 == 0o644  # readable by the user serving pages, as pybabel's
    english = Translations.load(str(copy), ["en"])
    assert english.gettext("Se connecter") != "Se connecter"
    with EN_MO.open("rb") as ours, mo.open("rb") as theirs:  # what pybabel compile makes
        assert {m.id: m.string for m in read_mo(theirs)} == {m.id: m.string for m in read_mo(ours)}
    assert compile_catalogs(copy) == []  # up to date: left alone
    os.utime(mo, (0, 0))  # older than its .po
    assert compile_catalogs(copy) == [mo]
    assert not list(copy.rglob(".messages-*"))


def test_translations_keep_every_placeholder() -> None:
    placeholder = re.compile(r"%\((\w+)\)[sd]|%%")
    broken = [m.id for m in english_catalogue() if m.id and m.string
              and sorted(placeholder.findall(str(m.id))) != sorted(placeholder.findall(str(m.string)))]
    assert not broken, broken


# Text that is the same in every language: the product's name, code samples on the API page,
# JSON words, punctuation and single letters.
TEMPLATE_TEXT_ALLOWED = re.compile(
    r"^(· )?Relais$|^Authorization: Bearer relais_…$|^\?limit=50&offset=0$|^\?updated_since=[\dTZ:-]+$"
    r"|^\?changed_since=…$|^application/problem\+json$|^curl -H \"Authorization: Bearer \"$"
    r"|^[a-z_]+(\.[a-z_]+)+$")  # an audit action's code, e.g. resident.export


def _is_language_neutral(text: str) -> bool:
    words = re.sub(r"\b(null|true|false)\b", "", text)
    return bool(TEMPLATE_TEXT_ALLOWED.match(text)) or not re.search(r"[^\W\d_]{2,}", words)


class _TextNodes(HTMLParser):
    """Text and human-readable attributes left in a template once its Jinja parts are removed."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self.in_code = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.in_code += tag in {"script", "style"}
        for name, value in attrs:
            if name in {"title", "alt", "placeholder", "aria-label"} and value and value.strip():
                self.found.append(value.strip())

    def handle_endtag(self, tag: str) -> None:
        self.in_code -= tag in {"script", "style"}

    def handle_data(self, data: str) -> None:
        if not self.in_code and data.strip():
            self.found.append(" ".join(data.split()))


def raw_template_text(source: str) -> list[str]:
    without_jinja = re.sub(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", "", source, flags=re.S)
    parser = _TextNodes()
    parser.feed(without_jinja)
    return [text for text in parser.found if not _is_language_neutral(text)]


def test_templates_hold_no_text_outside_the_translation_layer() -> None:
    raw = {str(path.relative_to(ROOT)): found
           for path in sorted((ROOT / "web" / "templates").rglob("*.html"))
           if (found := raw_template_text(path.read_text(encoding="utf-8")))}
    assert not raw, f"wrap these in {{{{ _(\"…\") }}}}: {raw}"


def test_the_raw_text_check_can_fail() -> None:
    assert raw_template_text('<p>{{ _("Bonjour") }}</p>') == []
    assert raw_template_text('<p title="Aide">Bonjour {{ name }}</p>') == ["Aide", "Bonjour"]
    assert raw_template_text("<p>v{{ version }} ([], null) —</p><b>Relais</b><code>a</code>") == []


# --- choosing the language -------------------------------------------------------------------

def test_french_is_the_default(client: FlaskClient) -> None:
    page = client.get("/").get_data(as_text=True)
    assert '<html lang="fr">' in page
    assert "J&#39;ai un code" in page or "J'ai un code" in page


def test_the_browser_language_is_followed_when_a_catalogue_exists(client: FlaskClient) -> None:
    page = client.get("/", headers=ENGLISH).get_data(as_text=True)
    assert '<html lang="en">' in page and "I have a code" in page
    page = client.get("/", headers={"Accept-Language": "de-DE,de;q=0.9"}).get_data(as_text=True)
    assert '<html lang="fr">' in page  # no German catalogue: French


@pytest.mark.parametrize("header", ["fr-FR,en-US;q=0.9,en;q=0.8", "fr-FR,en;q=0.9", "fr-CA, en;q=0.5",
                                    "de-DE,fr-FR;q=0.9,en;q=0.8"])
def test_a_french_browser_gets_french_though_it_also_lists_english(client: FlaskClient, header: str) -> None:
    """Chromium in France sends « fr-FR,en-US;q=0.9,en;q=0.8 »: Werkzeug's best_match preferred
    the exact « en » to « fr-FR » and French browsers got the English interface."""
    page = client.get("/", headers={"Accept-Language": header}).get_data(as_text=True)
    assert '<html lang="fr">' in page
    page = client.get("/", headers={"Accept-Language": "en-US,fr-FR;q=0.8"}).get_data(as_text=True)
    assert '<html lang="en">' in page


def test_the_switch_in_the_footer_stores_the_choice_in_the_session(
        client: FlaskClient, auth: Auth) -> None:
    page = client.get("/code").get_data(as_text=True)
    assert 'name="lang" value="en"' in page and 'lang="en"' in page
    response = client.post("/langue", data={"lang": "en", "next": "/code",
                                            "csrf_token": auth.token("/code")})
    assert response.status_code == 302 and response.headers["Location"] == "/code"
    page = client.get("/code").get_data(as_text=True)
    assert '<html lang="en">' in page and "Enter my code" in page
    assert 'name="lang" value="fr"' in page  # and back to French from there
    # The choice beats the browser's languages, both ways.
    client.post("/langue", data={"lang": "fr", "csrf_token": auth.token("/code")})
    assert '<html lang="fr">' in client.get("/code", headers=ENGLISH).get_data(as_text=True)


def test_the_choice_survives_logging_in(client: FlaskClient, auth: Auth, world: World) -> None:
    client.post("/langue", data={"lang": "en", "csrf_token": auth.token()})
    auth.login(world.worker_a.email or "")
    page = client.get("/accompagnement/").get_data(as_text=True)
    assert '<html lang="en">' in page and "New person" in page


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example",
                                    "javascript:alert(1)", "/\t/evil.example", "/\n/x"])
def test_the_switch_never_sends_people_to_another_site(client: FlaskClient, auth: Auth,
                                                       target: str) -> None:
    response = client.post("/langue", data={"lang": "en", "next": target,
                                            "csrf_token": auth.token()})
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_an_unknown_language_changes_nothing(client: FlaskClient, auth: Auth) -> None:
    client.post("/langue", data={"lang": "xx", "csrf_token": auth.token()})
    assert '<html lang="fr">' in client.get("/").get_data(as_text=True)


def test_the_switch_needs_the_csrf_token(client: FlaskClient) -> None:
    assert client.post("/langue", data={"lang": "en"}).status_code == 400


# --- every page in English ---------------------------------------------------------------------

@dataclass
class Scene:
    world: World
    resident_id: int
    code: str
    need_id: int
    match_id: int


@pytest.fixture
def scene(session: Session, world: World) -> Scene:
    """A resident with an approved opportunity and one still to review: every page has content."""
    awa = add_resident(session, world, "Awa", "Je fais de la couture et des retouches.", initial="K")
    binta = add_resident(session, world, "Binta", "Je couds des boubous. Je ne sais pas conduire.",
                         initial="D")
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Atelier couture", description="Animer un atelier couture le mercredi.",
        when_text="le mercredi", where_text="Maison des projets"), date.today())
    store_proposals(session, [Proposal(need.id or 0, r.resident.id or 0, 0.5, {})
                              for r in (awa, binta)], Direction.NEED_TO_RESIDENT)
    session.commit()
    approved = session.exec(select(Match).where(Match.resident_id == awa.resident.id)).one()
    approved.status = MatchStatus.APPROVED
    session.add(approved)
    session.commit()
    return Scene(world, awa.resident.id or 0, awa.access_code, need.id or 0, approved.id or 0)


def french_ui_strings() -> list[tuple[str, str]]:
    """(fragment, msgid): the fixed parts of every msgid whose English differs, long enough to be
    unmistakable (a short word like « Où » could be in a person's own text)."""
    fragments = []
    for message in english_catalogue():
        if not message.id or message.string == message.id:
            continue
        for part in re.split(r"%\(\w+\)[sd]", str(message.id)):
            part = part.replace("%%", "%").strip(" :.,()")
            if len(part) >= 14:
                fragments.append((part, str(message.id)))
    return fragments


def visible_text(page: str) -> str:
    """What a person reads: tags removed, entities decoded, spaces collapsed. Code samples
    (<code>: CSV column names, API parameters) are the same in every language."""
    page = re.sub(r"<(script|style|code)\b.*?</\1>", " ", page, flags=re.S)
    attributes = " ".join(re.findall(r'(?:aria-label|title|alt|placeholder)="([^"]*)"', page))
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page) + " " + attributes).split())


def pages_of(app: Flask, scene: Scene) -> dict[str, list[str]]:
    """The pages of each role: every GET address whose parameters the scene knows (so that a
    page added later is checked too); the JSON API and static files aside."""
    ids = {"resident_id": scene.resident_id, "need_id": scene.need_id, "match_id": scene.match_id}
    adapter = app.url_map.bind("localhost")
    every = sorted({adapter.build(rule.endpoint, {name: ids[name] for name in rule.arguments})
                    for rule in app.url_map.iter_rules()
                    if "GET" in (rule.methods or set()) and rule.arguments <= ids.keys()
                    and not rule.rule.startswith(("/static", "/healthz"))
                    and not (rule.rule.startswith("/api/v1/") and rule.rule != "/api/v1/docs")})
    return {"anonymous": ["/", "/connexion", "/code", "/cette-page-n-existe-pas"],
            "worker_a": every, "member": every, "admin": every, "resident": every}


def test_every_page_in_english_shows_no_french_ui_string(app: Flask, client: FlaskClient,
                                                         auth: Auth, scene: Scene) -> None:
    fragments = french_ui_strings()
    assert len(fragments) > 100  # the check has something to check
    emails = {"worker_a": scene.world.worker_a.email, "member": scene.world.member.email,
              "admin": scene.world.admin.email}
    checked: list[str] = []
    leftovers: dict[str, list[str]] = {}
    for role, paths in pages_of(app, scene).items():
        if role in emails:
            auth.login(emails[role] or "")
        elif role == "resident":
            auth.code_login(scene.code)
        for path in paths:
            response = client.get(path, headers=ENGLISH)
            if response.mimetype != "text/html" or response.status_code in {301, 302, 303, 403}:
                continue
            page = response.get_data(as_text=True)
            assert '<html lang="en">' in page, (role, path)
            text = visible_text(page)
            found = sorted({msgid for fragment, msgid in fragments if fragment in text})
            if found:
                leftovers[f"{role} {path}"] = found
            checked.append(f"{role} {path}")
        auth.logout()
    assert not leftovers, leftovers
    for must in ("worker_a /accompagnement/propositions", "member /structure/",
                 "resident /moi/", "worker_a /accompagnement/residents/nouveau"):
        assert must in checked, checked


def test_the_french_check_finds_french(app: Flask, client: FlaskClient) -> None:
    """The English check above is not blind: the same fragments are found on a French page."""
    text = visible_text(client.get("/").get_data(as_text=True))
    assert any(fragment in text for fragment, _msgid in french_ui_strings())


def test_a_form_error_in_english(client: FlaskClient, auth: Auth, world: World) -> None:
    client.post("/langue", data={"lang": "en", "csrf_token": auth.token()})
    auth.login(world.worker_a.email or "")
    page = client.post("/accompagnement/residents/nouveau", data={
        "csrf_token": auth.token("/accompagnement/residents/nouveau")}).get_data(as_text=True)
    assert "The form is not complete" in page
    assert "This field is required." in page  # WTForms' own messages follow the locale too


def test_a_json_error_follows_the_locale(client: FlaskClient) -> None:
    response = client.get("/nulle-part", headers={**ENGLISH, "Accept": "application/json"})
    assert response.status_code == 404
    assert response.get_json()["detail"] == "This page does not exist, or no longer exists."



def test_choosing_a_language_on_a_form_shown_again_comes_back_to_its_page(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    """A text held back (sensitive words) is shown again at the address it was sent to, which
    only takes forms: the switch led there and the browser got « Method not allowed »."""
    awa = add_resident(session, world, "Awa", "Je fais de la couture.", initial="K")
    auth.login(world.worker_a.email or "")
    page = f"/accompagnement/residents/{awa.resident.id}"
    held = client.post(f"{page}/declaration", headers={"Referer": f"http://localhost{page}"}, data={
        "declaration": "Je suis musulmane et je fais la cuisine.", "csrf_token": auth.token(page)})
    found = re.search(r'name="next" value="([^"]+)"', held.get_data(as_text=True))
    assert held.status_code == 200 and found is not None and found.group(1) == page
    chosen = client.post("/langue", data={"lang": "en", "next": found.group(1),
                                          "csrf_token": auth.token(page)})
    assert chosen.headers["Location"] == page and client.get(page).status_code == 200


def test_what_people_typed_in_french_is_marked_french_on_english_pages(client: FlaskClient, auth: Auth,
                                                                       scene: Scene) -> None:
    """The page says lang="en"; the need, her own words and what Relais understood stay in French:
    without lang="fr" on them a screen reader read them with an English voice (WCAG 3.1.2). On a
    French page they need nothing."""
    auth.code_login(scene.code)
    marked = re.compile(r'<(\w+)[^>]* lang="fr"[^>]*>\s*([^<]*)')
    for path, typed in (("/moi/", ["Atelier couture", "Animer un atelier couture le mercredi.",
                                   "le mercredi", "Maison des projets"]),
                        ("/moi/savoir-faire", ["Je fais de la couture et des retouches."]),
                        ("/moi/donnees/copie", ["Je fais de la couture et des retouches.",
                                                "Atelier couture"])):
        english = client.get(path, headers=ENGLISH).get_data(as_text=True)
        assert '<html lang="en">' in english
        found = " ".join(text for _tag, text in marked.findall(english))
        for words in typed:
            assert words in found, (path, words)
        french = client.get(path).get_data(as_text=True)
        in_french = " ".join(text for _tag, text in marked.findall(french))
        assert '<html lang="fr">' in french and not any(words in in_french for words in typed), path


@pytest.mark.parametrize(("slots", "french", "english"), [
    (["weekday_morning"], "en semaine, le matin", "weekdays, mornings"),
    (["weekend", "weekday_afternoon", "weekday_morning"],
     "en semaine, le matin et l'après-midi ; le week-end", "weekdays, mornings and afternoons; weekends"),
    (["weekday_morning", "weekday_afternoon", "weekday_evening"],
     "en semaine, le matin, l'après-midi et le soir", "weekdays, mornings, afternoons, and evenings"),
    (["weekend"], "le week-end", "weekends"),
    ([], "", ""),
])
def test_time_slots_say_weekdays_once(app: Flask, slots: list[str], french: str, english: str) -> None:
    """A profile read « en semaine, le matin, en semaine, l'après-midi » (a journey reviewer)."""
    from web.forms import slot_labels

    with app.test_request_context("/"):
        assert slot_labels(slots) == french
    with app.test_request_context("/", headers=ENGLISH):
        assert slot_labels(slots) == english
