"""An organisation presents itself in its own words (who, where, when to come): its members write
it, residents read it beside the needs proposed to them, social workers beside the need."""

from __future__ import annotations

import re
from datetime import date

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session, select

from models import AuditEvent, Match
from tests.conftest import Auth, World, add_resident, approved_opportunity, hand_proposals
from web.extensions import matching
from web.forms import closeness_label, reason_label
from web.services.needs import NeedInput, create_need

PAGE = "/structure/presentation"


@pytest.fixture(autouse=True)
def _use_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The proposals are written by hand: the ranker's e5 is not needed."""
    monkeypatch.setenv("RELAIS_ENCODERS", "use")


def describe(auth: Auth, text: str) -> str:
    done = auth.post(PAGE, {"description": text}, token_from=PAGE, follow_redirects=True)
    return done.get_data(as_text=True)  # type: ignore[attr-defined]


def events(session: Session) -> list[AuditEvent]:
    return list(session.exec(select(AuditEvent).where(AuditEvent.action == "organisation.describe")).all())


def test_a_member_writes_the_presentation_once_and_it_is_journaled(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    auth.login(world.member.email or "")
    home = client.get("/structure/").get_data(as_text=True)
    assert "ne savent pas encore qui vous êtes" in home and PAGE in home

    text = "Atelier de couture au 3 rue des Lilas.\r\nOuvert le mardi de 14 h à 17 h."
    assert "Présentation enregistrée." in describe(auth, text)
    session.expire_all()
    assert world.association.description == text.replace("\r\n", "\n")
    assert "ne savent pas encore qui vous êtes" not in client.get("/structure/").get_data(as_text=True)
    assert "3 rue des Lilas" in client.get(PAGE).get_data(as_text=True)  # the form shows what is held
    assert "Rien n&#39;a changé." in describe(auth, text)  # the same text again: nothing journaled
    [event] = events(session)
    assert (event.actor_id, event.object_id) == (world.member.id, world.association.id)
    # Another organisation's presentation is out of reach: the page is about the member's own.
    assert world.centre_a.description == ""


def test_a_presentation_too_long_is_refused_beside_the_field(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    auth.login(world.member.email or "")
    page = describe(auth, "x" * 4001)
    assert 'aria-invalid="true"' in page and "Présentation enregistrée." not in page
    session.expire_all()
    assert world.association.description == "" and events(session) == []


def test_an_account_without_an_organisation_has_no_presentation(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    world.admin.organisation_id = None
    session.add(world.admin)
    session.commit()
    auth.login(world.admin.email or "")
    assert client.get(PAGE).status_code == 404
    assert PAGE not in client.get("/structure/").get_data(as_text=True)


def test_the_resident_and_the_worker_read_it_beside_the_need(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    world.association.description = "Nous sommes <b>trois</b> couturières.\nVenez le mardi."
    session.add(world.association)
    session.commit()
    awa = approved_opportunity(session, world, "Animer un atelier de couture.")
    need = session.exec(select(Match)).one().need_id

    auth.code_login(awa.access_code)
    page = client.get("/moi/").get_data(as_text=True)
    assert "Qui est Les Mains Agiles ?" in page
    assert "Nous sommes &lt;b&gt;trois&lt;/b&gt; couturières.\nVenez le mardi." in page  # text, not markup
    auth.logout()

    auth.login(world.worker_a.email or "")
    assert "Venez le mardi." in client.get(f"/accompagnement/besoins/{need}").get_data(as_text=True)


def test_an_organisation_without_presentation_shows_no_empty_box(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Atelier couture", description="Animer un atelier de couture."), date.today())
    auth.login(world.worker_a.email or "")
    assert "Qui est" not in client.get(f"/accompagnement/besoins/{need.id}").get_data(as_text=True)


def test_residents_pages_speak_without_gender_dots(client: FlaskClient, auth: Auth, session: Session,
                                                   world: World) -> None:
    """« votre travailleur·se social·e », « mis·e en relation »: a screen reader reads « point se »,
    and a reader learning French stumbles on it. The residents' pages name « la personne qui vous
    accompagne » or « le centre social »."""
    awa = approved_opportunity(session, world, "Animer un atelier couture.")
    pages = {path: client.get(path).get_data(as_text=True) for path in ("/", "/code")}  # the first ones
    auth.code_login(awa.access_code)
    for path in ("/moi/", "/moi/donnees", "/moi/donnees/copie", "/moi/donnees/effacement",
                 "/moi/savoir-faire", "/moi/contact"):
        pages[path] = client.get(path).get_data(as_text=True)
    auth.logout()
    auth.login(world.relais.email or "")  # a habitant-relais is a resident too
    for path in ("/relais/", "/relais/personnes/nouvelle", "/relais/besoins/nouveau"):
        pages[path] = client.get(path).get_data(as_text=True)
    for path, page in pages.items():
        text = re.sub(r"<[^>]+>", " ", page)
        assert not re.search(r"\w·\w", text), (path, re.findall(r"\S*\w·\w\S*", text))
    # A proposal's reasons show in her copy of her data.
    reasons = " ".join(reason_label(r) for r in ("dormant", "territory", "availability"))
    assert not re.search(r"\w·\w", reasons)


def test_very_close_needs_the_rankers_score_too(client: FlaskClient, auth: Auth, session: Session,
                                                world: World) -> None:
    """« Très proche » came from one statement pair: a cooking profile and a homework-help need
    sharing the word « bénévole » read very close. The ranker's score must agree."""
    awa = add_resident(session, world, "Awa", "Je suis bénévole et je cuisine.", initial="K").resident
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Aide aux devoirs", description="Bénévole pour l'aide aux devoirs."), date.today())
    pair = {"resident_text": "Je suis bénévole", "need_text": "Bénévole pour l'aide aux devoirs",
            "similarity": 0.62}
    why = {"pairs": [pair], "shared_terms": ["bénévole"], "reasons": [], "score": 0.62}
    hand_proposals(session, [(need.id or 0, awa.id or 0, 0.62)], {**why, "rank": 0.9})
    auth.login(world.worker_a.email or "")
    desk = client.get("/accompagnement/propositions").get_data(as_text=True)
    assert ">Proche<" in desk and "Très proche" not in desk
    match = session.exec(select(Match)).one()
    match.explanation = {**why, "rank": 2.4}
    session.add(match)
    session.commit()
    assert "Très proche" in client.get("/accompagnement/propositions").get_data(as_text=True)
    assert closeness_label(0.62) == "Très proche"  # a worker's own pick: the pair alone


def test_a_resident_sees_what_relais_read_as_something_she_does_not_do(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    """« Ce que Relais a compris » left « je sais pas conduire » out without a word, and her copy of
    her data tagged it « lue comme un « non » »: she could not tell a misreading from a choice. It
    is listed under « Ce que vous ne faites pas », with how to say it is wrong."""
    created = add_resident(session, world, "Awa", "Je fais de la couture. Par contre je sais pas conduire.")
    auth.code_login(created.access_code)
    page = client.get("/moi/savoir-faire").get_data(as_text=True)
    understood, not_done = page.split("Ce que Relais a compris")[1].split("Ce que vous ne faites pas")
    assert "Je fais de la couture" in understood and "je sais pas conduire" not in understood
    assert "je sais pas conduire" in not_done and "dites-le ci-dessous" in not_done
    copy = client.get("/moi/donnees/copie").get_data(as_text=True)
    assert "vous ne le faites pas" in copy and "lue comme un" not in copy
