"""Who may open what: a matrix over routes × roles, anonymous included (flaskr's style)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session, select

from models import Direction, Match, MatchStatus
from tests.conftest import Auth, World, add_resident
from web.extensions import matching
from web.services.needs import NeedInput, create_need
from web.services.proposals import Proposal, store_proposals


@dataclass
class Scene:
    world: World
    resident_id: int
    code: str
    other_code: str
    need_id: int
    proposed_id: int
    approved_id: int


@pytest.fixture
def scene(session: Session, world: World) -> Scene:
    today = date.today()

    def person(name: str, text: str) -> tuple[int, str]:
        created = add_resident(session, world, name, text, initial="K")
        return created.resident.id or 0, created.access_code

    rid, code = person("Awa", "Je fais de la couture et des retouches pour les voisines.")
    other_rid, other_code = person("Binta", "Je couds des boubous et je fais des ourlets.")
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Atelier couture", description="Animer un atelier couture le mercredi."), today)
    # Permissions must not depend on the matcher's ranking: make sure both proposals exist.
    store_proposals(session, [Proposal(need.id or 0, r, 0.5, {}) for r in (rid, other_rid)],
                    Direction.NEED_TO_RESIDENT)
    session.commit()
    matches = session.exec(select(Match).where(Match.need_id == need.id)).all()
    mine = next(m for m in matches if m.resident_id == rid)
    other = next(m for m in matches if m.resident_id != rid)
    other.status = MatchStatus.APPROVED  # approved for Binta, still proposed for Awa
    session.add(other)
    session.commit()
    return Scene(world, rid, code, other_code, need.id or 0, mine.id or 0, other.id or 0)


ROLES = ["anonymous", "worker_a", "worker_b", "member", "admin", "resident", "other_resident"]

# (method, route template, {role: expected status}); "login" = redirect to the login page.
MATRIX = [
    ("GET", "/accompagnement/", {"worker_a": 200, "worker_b": 200, "admin": 200}),
    ("GET", "/accompagnement/residents/nouveau", {"worker_a": 200, "worker_b": 200, "admin": 200}),
    ("GET", "/accompagnement/residents/{rid}", {"worker_a": 200, "worker_b": 403, "admin": 200}),
    ("POST", "/accompagnement/residents/{rid}/code", {"worker_a": 302, "worker_b": 403, "admin": 302}),
    ("GET", "/accompagnement/residents/{rid}/code", {"worker_a": 302, "worker_b": 403, "admin": 302}),
    ("POST", "/accompagnement/residents/{rid}/declaration",
     {"worker_a": 302, "worker_b": 403, "admin": 302}),
    ("GET", "/accompagnement/propositions", {"worker_a": 200, "worker_b": 200, "admin": 200}),
    ("POST", "/accompagnement/propositions/{proposed}/valider",
     {"worker_a": 302, "worker_b": 403, "admin": 302}),
    ("POST", "/accompagnement/propositions/{proposed}/refuser",
     {"worker_a": 302, "worker_b": 403, "admin": 302}),
    ("GET", "/structure/", {"member": 200, "admin": 200}),
    ("GET", "/structure/besoins/nouveau", {"member": 200, "admin": 200}),
    ("GET", "/structure/besoins/{need}", {"member": 200, "admin": 200}),
    ("GET", "/structure/besoins/{need}/modifier", {"member": 200, "admin": 200}),
    ("POST", "/structure/besoins/{need}/statut", {"member": 302, "admin": 302}),
    ("GET", "/moi/", {"resident": 200, "other_resident": 200}),
    # Unapproved proposals do not exist for residents; other people's opportunities neither.
    ("POST", "/moi/propositions/{proposed}/oui", {"resident": 404, "other_resident": 404}),
    ("POST", "/moi/propositions/{approved}/non", {"resident": 404, "other_resident": 302}),
]


def login_as(auth: Auth, scene: Scene, role: str) -> None:
    w = scene.world
    emails = {"worker_a": w.worker_a.email, "worker_b": w.worker_b.email,
              "member": w.member.email, "admin": w.admin.email}
    if role in emails:
        auth.login(emails[role] or "")
    elif role == "resident":
        auth.code_login(scene.code)
    elif role == "other_resident":
        auth.code_login(scene.other_code)


CASES = [(role, method, route, rules.get(role, "login" if role == "anonymous" else 403))
         for method, route, rules in MATRIX for role in ROLES]


@pytest.mark.parametrize(("role", "method", "route", "expected"), CASES,
                         ids=[f"{r}-{m}-{p}" for r, m, p, _ in CASES])
def test_route_permissions(client: FlaskClient, auth: Auth, scene: Scene, role: str, method: str,
                           route: str, expected: int | str) -> None:
    login_as(auth, scene, role)
    path = route.format(rid=scene.resident_id, need=scene.need_id, proposed=scene.proposed_id,
                        approved=scene.approved_id)
    if method == "GET":
        response = client.get(path)
    else:
        response = client.post(path, data={"csrf_token": auth.token(),
                                           "reason_code": "busy", "declaration": "Je cuisine."})
    if expected == "login":
        assert response.status_code == 302 and "/connexion" in response.headers["Location"]
    else:
        assert response.status_code == expected


@pytest.mark.parametrize("path", [
    "/accompagnement/residents/999999", "/structure/besoins/999999",
])
def test_missing_ids_are_404(client: FlaskClient, auth: Auth, scene: Scene, path: str) -> None:
    auth.login(scene.world.admin.email or "")
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("path", [
    "/accompagnement/propositions/999999/valider", "/moi/propositions/999999/oui",
])
def test_missing_proposals_are_404(client: FlaskClient, auth: Auth, scene: Scene,
                                   path: str) -> None:
    login_as(auth, scene, "resident" if path.startswith("/moi") else "admin")
    assert client.post(path, data={"csrf_token": auth.token()}).status_code == 404


def test_association_never_sees_unapproved_candidates(client: FlaskClient, auth: Auth,
                                                      scene: Scene) -> None:
    auth.login(scene.world.member.email or "")
    page = client.get(f"/structure/besoins/{scene.need_id}").get_data(as_text=True)
    assert "Binta K." in page  # approved
    assert "Awa" not in page  # only proposed


def test_a_resident_sees_only_their_own_approved_opportunities(
        client: FlaskClient, auth: Auth, scene: Scene) -> None:
    auth.code_login(scene.code)
    assert "Atelier couture" not in client.get("/moi/").get_data(as_text=True)
    auth.logout()
    auth.code_login(scene.other_code)
    assert "Atelier couture" in client.get("/moi/").get_data(as_text=True)


def test_forms_without_csrf_token_are_refused(client: FlaskClient, auth: Auth,
                                              scene: Scene) -> None:
    auth.login(scene.world.worker_a.email or "")
    response = client.post(f"/accompagnement/propositions/{scene.proposed_id}/valider")
    assert response.status_code == 400


def test_wrong_password_and_wrong_code_are_refused(client: FlaskClient, auth: Auth,
                                                   scene: Scene) -> None:
    page = client.post("/connexion", data={"email": scene.world.worker_a.email,
                                           "password": "nope", "csrf_token": auth.token()})
    assert page.status_code == 200 and "incorrect" in page.get_data(as_text=True)
    page = client.post("/code", data={"code": "AAAA-AAAA", "csrf_token": auth.token("/code")})
    assert page.status_code == 200 and "ne marche pas" in page.get_data(as_text=True)
    assert client.get("/moi/").status_code == 302
