"""Bad input: a clear French message, and nothing written."""

from __future__ import annotations

import html
import re
from datetime import date, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select
from werkzeug.routing import IntegerConverter

from models import AuditEvent, Consent, IndexEvent, Need, Resident, SkillStatement, User
from tests.conftest import Auth, World, add_resident, need_form, resident_form

NEW_RESIDENT = "/accompagnement/residents/nouveau"
NEW_NEED = "/structure/besoins/nouveau"


def nothing_written(session: Session) -> None:
    session.expire_all()
    for table in (Resident, Consent, SkillStatement, IndexEvent):
        assert session.exec(select(table)).all() == []
    assert session.exec(select(User).where(User.role == "resident")).all() == []


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"declaration": ""}, "declaration", "Écrivez ce que la personne sait faire"),
    ({"declaration": "   \n  "}, "declaration", "Écrivez ce que la personne sait faire"),
    ({"declaration": "?!…"}, "declaration", "Écrivez ce que la personne sait faire"),
    ({"consent_matching": ""}, "consent_matching", "consentement de la personne est obligatoire"),
    ({"consent_method": ""}, "consent_method", "comment le consentement a été recueilli"),
    ({"consent_given_on": "2999-01-01"}, "consent_given_on", "date du consentement"),
    ({"consent_given_on": (date.today() - timedelta(days=400)).isoformat()}, "consent_given_on",
     "Ce consentement date de plus de 12 mois : il n'est plus valable."),
    ({"first_name": ""}, "first_name", "Ce champ est requis."),
    ({"territory_id": 999999}, "territory_id", "N'est pas un choix valide"),
    ({"declaration": "je cuisine " * 1200}, "declaration", "plus de 10000 caractères"),
])
@pytest.mark.parametrize("who", ["worker_a", "relais"])
def test_invalid_profile_is_refused_beside_its_field(client: FlaskClient, auth: Auth, world: World,
                                                     session: Session, overrides: dict[str, object],
                                                     field: str, message: str, who: str) -> None:
    """What the form checks and what the service checks (the consent's age, a text with nothing
    to read) are both said under the field they are about, which a screen reader hears as
    invalid, on the worker's form and on the habitant-relais' phone form alike."""
    auth.login(getattr(world, who).email or "")
    url = NEW_RESIDENT if who == "worker_a" else "/relais/personnes/nouvelle"
    form = {**resident_form("Je cuisine pour les fêtes.", world.tilleuls), **overrides}
    if overrides.get("consent_matching") == "":
        form.pop("consent_matching")
    response = auth.post(url, form, token_from=url)
    page = response.get_data(as_text=True).replace("&#39;", "'")  # type: ignore[attr-defined]
    assert response.status_code == 200  # type: ignore[attr-defined]
    said = re.search(rf'id="{field}-error">(.*?)</div>', page, re.S)
    assert said and message in said.group(1)
    assert "Le formulaire n'est pas complet : voyez les messages sous les champs." in page
    assert page.count(message) == 1  # not at the top as well
    assert 'aria-invalid="true"' in page
    nothing_written(session)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"description": ""}, "Ce champ est requis."),
    ({"title": ""}, "Ce champ est requis."),
    ({"kind": "spaceship"}, "N'est pas un choix valide"),
])
def test_invalid_need_is_refused(client: FlaskClient, auth: Auth, world: World, session: Session,
                                 overrides: dict[str, object], message: str) -> None:
    auth.login(world.member.email or "")
    response = auth.post(NEW_NEED, {**need_form("Atelier", "Un atelier couture."), **overrides},
                         token_from=NEW_NEED)
    assert message in response.get_data(as_text=True).replace("&#39;", "'")  # type: ignore[attr-defined]
    assert session.exec(select(Need)).all() == []


def test_rejecting_without_a_reason_is_refused(client: FlaskClient, auth: Auth, world: World,
                                               session: Session) -> None:

    from models import Direction
    from web.services.proposals import Proposal, store_proposals

    created = add_resident(session, world, "Awa", "Je couds.")
    need = Need(organisation_id=world.association.id or 0, title="Couture", description="Couture",
                created_by_id=world.member.id or 0)
    session.add(need)
    session.commit()
    store_proposals(session, [Proposal(need.id or 0, created.resident.id or 0, 0.5, {})],
                    Direction.NEED_TO_RESIDENT)
    session.commit()
    auth.login(world.worker_a.email or "")
    from models import Match

    match = session.exec(select(Match)).one()
    response = auth.post(f"/accompagnement/propositions/{match.id}/refuser",
                         {"reason_code": "other", "reason_text": "  "})
    page = client.get("/accompagnement/propositions").get_data(as_text=True)
    assert response.status_code == 302  # type: ignore[attr-defined]
    assert "Indiquez la raison du refus" in page
    session.expire_all()
    assert session.get(Match, match.id).status == "proposed"  # type: ignore[union-attr]
    assert not session.exec(select(AuditEvent).where(AuditEvent.action == "match.reject")).all()


def test_unknown_ids_give_a_french_404_page(client: FlaskClient, auth: Auth, world: World) -> None:
    auth.login(world.worker_a.email or "")
    response = client.get("/accompagnement/residents/424242")
    assert response.status_code == 404
    assert "Cette page n&#39;existe pas ou plus." in response.get_data(as_text=True)
    assert client.get("/accompagnement/residents/abc").status_code == 404
    json = client.get("/nope", headers={"Accept": "application/json"})
    assert json.status_code == 404 and json.json == {"status": 404,
                                                     "detail": "Cette page n'existe pas ou plus."}


def test_oversized_request_is_refused(client: FlaskClient, auth: Auth, world: World,
                                      session: Session) -> None:
    auth.login(world.worker_a.email or "")
    form = resident_form("x" * (3 * 1024 * 1024), world.tilleuls)
    response = client.post(NEW_RESIDENT, data={**form, "csrf_token": auth.token(NEW_RESIDENT)})
    assert response.status_code == 413
    nothing_written(session)


def test_healthz(client: FlaskClient, session: Session, world: World) -> None:
    """Anyone may ask whether Relais is up; how many people it indexes only the machine itself
    (a visitor counted the residents exactly, where the impact page hides counts under 5)."""
    add_resident(session, world, "Awa", "Je fais de la couture.")
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json is not None and response.json["status"] == "ok"
    assert response.json["residents_indexed"] == 1  # asked from 127.0.0.1
    mapped = client.get("/healthz", environ_base={"REMOTE_ADDR": "::ffff:127.0.0.1"})  # dual-stack
    assert mapped.json is not None and mapped.json["residents_indexed"] == 1
    for outside in (client.get("/healthz", environ_base={"REMOTE_ADDR": "203.0.113.7"}),
                    *(client.get("/healthz", headers={header: "203.0.113.7"})  # via a proxy on the machine
                      for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"))):
        assert outside.status_code == 200 and outside.json is not None and outside.json["status"] == "ok"
        assert "residents_indexed" not in outside.json and "needs_indexed" not in outside.json


def test_sensitive_words_need_a_second_look_before_saving(client: FlaskClient, auth: Auth,
                                                          world: World, session: Session) -> None:
    auth.login(world.worker_a.email or "")
    text = "Elle cuisine pour l'Aïd et elle est diabétique."
    response = auth.post(NEW_RESIDENT, resident_form(text, world.tilleuls), token_from=NEW_RESIDENT)
    page = response.get_data(as_text=True).replace("&#39;", "'")  # type: ignore[attr-defined]
    assert "Ce texte contient des informations sensibles" in page
    assert "santé : diabétique" in page and "religion ou convictions : Aïd" in page
    nothing_written(session)
    response = auth.post(NEW_RESIDENT, {**resident_form(text, world.tilleuls), "sensitive_ok": "y"},
                         token_from=NEW_RESIDENT)
    assert response.status_code == 302  # type: ignore[attr-defined]
    assert session.exec(select(Resident)).one().first_name == "Fatma"


def test_a_field_in_error_is_tied_to_its_message(client: FlaskClient, auth: Auth, world: World,
                                                 session: Session) -> None:
    """A screen reader hears the error with the field (aria-describedby) and that it is invalid;
    editing a need says the form is incomplete, as creating one does."""
    auth.login(world.member.email or "")
    auth.post(NEW_NEED, need_form("Atelier couture", "Animer un atelier de couture."), token_from=NEW_NEED)
    need = session.exec(select(Need)).one()
    edit = f"/structure/besoins/{need.id}/modifier"
    page = auth.post(edit, need_form("", "Animer un atelier de couture."), token_from=edit)
    html = page.get_data(as_text=True)  # type: ignore[attr-defined]
    title = re.search(r'<input[^>]*\bid="title"[^>]*>', html)
    assert title and 'aria-invalid="true"' in title.group(0)
    assert 'aria-describedby="title-error"' in title.group(0)
    assert re.search(r'id="title-error"[^>]*>\s*<p>Ce champ est requis.</p>', html)
    assert "Le formulaire n&#39;est pas complet" in html
    description = re.search(r'<textarea[^>]*\bid="description"[^>]*>', html)
    assert description and "aria-invalid" not in description.group(0)


def test_a_form_sent_without_its_token_gets_a_french_page(client: FlaskClient, auth: Auth,
                                                          world: World) -> None:
    auth.login(world.member.email or "")
    response = client.post(NEW_NEED, data=need_form("Atelier couture", "Animer un atelier."))
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Cette page était ouverte depuis trop longtemps" in page and "CSRF" not in page
    json = client.post(NEW_NEED, data={}, headers={"Accept": "application/json"})
    assert json.status_code == 400 and json.json is not None and "CSRF" not in json.json["detail"]


def test_a_form_sent_after_the_session_ended_says_to_log_in_again(client: FlaskClient, auth: Auth,
                                                                   world: World) -> None:
    """« Rechargez la page et recommencez » led to the login page with nothing said about it: a
    resident whose session ended while she wrote her answer is told to type her code again."""
    for path, login, button in (("/moi/propositions/1/oui", "/code", "Taper mon code"),
                                (NEW_NEED, "/connexion", "Se connecter")):
        response = client.post(path, data={"comment": "Je peux le mercredi."})
        page = html.unescape(response.get_data(as_text=True))
        assert response.status_code == 400 and "rien n'a été envoyé" in page and button in page
        assert f'href="{login}' in page and "rechargez la page" not in page


def test_ids_beyond_the_databases_integers_are_not_found(app: Flask, client: FlaskClient, auth: Auth,
                                                         world: World) -> None:
    """`<int:...>` handed 2**64 to the database (OverflowError, a 500): every address takes ids
    with the `id` converter, out of range is a 404."""
    assert not [rule.rule for rule in app.url_map.iter_rules()
                if any(type(c) is IntegerConverter for c in rule._converters.values())]
    huge = 2**64
    auth.login(world.member.email or "")
    for path in (f"/structure/besoins/{huge}", f"/structure/besoins/{huge}/modifier",
                 f"/suivi/propositions/{huge}"):
        assert client.get(path).status_code == 404, path
    assert auth.post(f"/structure/besoins/{huge}/statut", {"status": "closed"}).status_code == 404  # type: ignore[attr-defined]
    auth.logout()
    auth.login(world.worker_a.email or "")
    assert client.get(f"/accompagnement/residents/{huge}").status_code == 404
