"""Who may open what: a matrix over routes × roles, anonymous included (flaskr's style)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from models import Direction, Match, MatchStatus
from tests.conftest import Auth, World, add_resident
from web.extensions import matching
from web.services.needs import NeedInput, create_need
from web.services.proposals import Proposal, store_proposals


@pytest.fixture(autouse=True)
def _use_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ranker without e5 for this module's apps: an access decision never depends on the
    ranking (the proposals below are written by hand), and e5 was ~0.5 s of each of the matrix's
    ~640 cases (the whole matrix: ~11 min a database)."""
    monkeypatch.setenv("RELAIS_ENCODERS", "use")


@dataclass
class Scene:
    world: World
    resident_id: int
    code: str
    other_code: str
    need_id: int
    proposed_id: int
    approved_id: int
    pending_rid: int = 0  # recorded by world.relais, waiting for validation
    pending_need: int = 0  # seen in the neighbourhood by world.relais, waiting too


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
    waiting = add_resident(session, world, "Sira", "Je tresse les cheveux.", initial="T",
                           recorded_by=world.relais).resident
    seen, _ = create_need(session, matching, world.relais, NeedInput(
        title="Aide aux devoirs", description="L'école cherche quelqu'un pour les devoirs."), today)
    return Scene(world, rid, code, other_code, need.id or 0, mine.id or 0, other.id or 0,
                 pending_rid=waiting.id or 0, pending_need=seen.id or 0)


ROLES = ["anonymous", "worker_a", "worker_b", "member", "admin", "resident", "other_resident",
         "relais"]

# (method, route template, {role: expected status}); "login" = redirect to the login page.
MATRIX = [
    ("GET", "/accompagnement/", {"worker_a": 200, "worker_b": 200, "admin": 200}),
    ("GET", "/accompagnement/residents/nouveau", {"worker_a": 200, "worker_b": 200, "admin": 200}),
    ("GET", "/accompagnement/residents/{rid}", {"worker_a": 200, "worker_b": 404, "admin": 200}),
    ("POST", "/accompagnement/residents/{rid}/code", {"worker_a": 302, "worker_b": 404, "admin": 302}),
    ("GET", "/accompagnement/residents/{rid}/code", {"worker_a": 302, "worker_b": 404, "admin": 302}),
    ("POST", "/accompagnement/residents/{rid}/declaration",
     {"worker_a": 302, "worker_b": 404, "admin": 302}),
    ("GET", "/accompagnement/residents/{rid}/profil", {"worker_a": 200, "worker_b": 404, "admin": 200}),
    ("POST", "/accompagnement/residents/{rid}/profil",  # no first name: the form again
     {"worker_a": 200, "worker_b": 404, "admin": 200}),
    ("GET", "/accompagnement/propositions", {"worker_a": 200, "worker_b": 200, "admin": 200}),
    ("POST", "/accompagnement/propositions/{proposed}/valider",
     {"worker_a": 302, "worker_b": 404, "admin": 302}),
    ("POST", "/accompagnement/propositions/{proposed}/refuser",
     {"worker_a": 302, "worker_b": 404, "admin": 302}),
    ("POST", "/accompagnement/propositions/valider-la-selection",
     {"worker_a": 302, "worker_b": 404, "admin": 302}),  # match_ids = the proposed one
    ("GET", "/accompagnement/a-valider", {"worker_a": 200, "worker_b": 200, "admin": 200}),
    # Staff read every validated need, and the needs waiting for their own centre's validation; a
    # worker proposes only the people their centre follows (resident_id = Awa, already proposed:
    # refused with a message, then back to the page).
    ("GET", "/accompagnement/besoins/{need}", {"worker_a": 200, "worker_b": 200, "admin": 200}),
    ("GET", "/accompagnement/besoins/{pending_need}", {"worker_a": 200, "admin": 200}),
    ("GET", "/accompagnement/besoins/sans-candidat", {"worker_a": 200, "worker_b": 200, "admin": 200}),
    ("POST", "/accompagnement/besoins/{need}/proposer", {"worker_a": 302, "worker_b": 404, "admin": 302}),
    # CSV import/export and background jobs (per-job routes: tests/web/test_jobs.py).
    ("GET", "/accompagnement/import", {"worker_a": 200, "worker_b": 200, "admin": 200}),
    ("POST", "/accompagnement/import", {"worker_a": 200, "worker_b": 200, "admin": 200}),  # no file
    ("GET", "/accompagnement/export/residents.csv", {"worker_a": 200, "worker_b": 200, "admin": 200}),
    ("GET", "/accompagnement/export/besoins.csv", {"worker_a": 200, "worker_b": 200, "admin": 200}),
    ("POST", "/accompagnement/taches/reindexation", {"admin": 302}),
    ("POST", "/accompagnement/a-valider/personnes/{pending_rid}/valider",
     {"worker_a": 302, "worker_b": 404, "admin": 302}),
    ("POST", "/accompagnement/a-valider/personnes/{pending_rid}/renvoyer",
     {"worker_a": 302, "worker_b": 404, "admin": 302}),
    ("POST", "/accompagnement/a-valider/besoins/{pending_need}/valider",
     {"worker_a": 302, "worker_b": 404, "admin": 302}),
    ("POST", "/accompagnement/a-valider/besoins/{pending_need}/renvoyer",
     {"worker_a": 302, "worker_b": 404, "admin": 302}),
    ("GET", "/relais/", {"relais": 200}),
    ("GET", "/relais/personnes/nouvelle", {"relais": 200}),
    ("GET", "/relais/besoins/nouveau", {"relais": 200}),
    # Their own submissions only (still pending here, so back to their list); nobody else's.
    ("GET", "/relais/personnes/{pending_rid}/corriger", {"relais": 302}),
    ("GET", "/relais/personnes/{rid}/corriger", {"relais": 404}),  # not hers: it does not exist for her
    ("GET", "/relais/besoins/{pending_need}/corriger", {"relais": 302}),
    ("GET", "/relais/besoins/{need}/corriger", {"relais": 404}),
    ("GET", "/structure/", {"member": 200, "admin": 200}),
    ("GET", "/structure/besoins/nouveau", {"member": 200, "admin": 200}),
    ("GET", "/structure/presentation", {"member": 200, "admin": 200}),
    ("GET", "/structure/besoins/{need}", {"member": 200, "admin": 200}),
    ("GET", "/structure/besoins/{need}/modifier", {"member": 200, "admin": 200}),
    ("POST", "/structure/besoins/{need}/statut", {"member": 302, "admin": 302}),
    ("GET", "/moi/", {"resident": 200, "other_resident": 200}),
    # Unapproved proposals do not exist for residents; other people's opportunities neither: « n'est
    # plus disponible », as for one withdrawn (test_missing_proposals_are_said_to_residents…).
    ("POST", "/moi/propositions/{proposed}/oui", {"resident": 302, "other_resident": 302}),
    ("POST", "/moi/propositions/{approved}/non", {"resident": 302, "other_resident": 302}),
    # Impact: aggregated figures for staff and associations; notifications: everyone logged in.
    ("GET", "/impact/", {"worker_a": 200, "worker_b": 200, "member": 200, "admin": 200}),
    ("GET", "/impact/propositions.csv", {"worker_a": 200, "worker_b": 200, "member": 200, "admin": 200}),
    ("GET", "/notifications/", {"worker_a": 200, "worker_b": 200, "member": 200, "admin": 200,
                                "resident": 200, "other_resident": 200, "relais": 200}),
    ("POST", "/notifications/lues", {"worker_a": 302, "worker_b": 302, "member": 302, "admin": 302,
                                     "resident": 302, "other_resident": 302, "relais": 302}),
    # Follow-up after a yes: the need's association and the resident's centre; unapproved: 404.
    ("GET", "/suivi/propositions/{approved}",
     {"worker_a": 200, "worker_b": 404, "member": 200, "admin": 200}),
    ("GET", "/suivi/propositions/{proposed}",
     {"worker_a": 404, "worker_b": 404, "member": 404, "admin": 404}),
    ("POST", "/suivi/propositions/{approved}/bilan",  # an empty form: the page again, with why
     {"worker_a": 200, "worker_b": 404, "member": 200, "admin": 200}),
    ("GET", "/moi/contact", {"resident": 200, "other_resident": 200}),
    ("GET", "/accompagnement/residents/{rid}/contact", {"worker_a": 200, "worker_b": 404, "admin": 200}),
    # Personal data: export and erasure by the resident's centre and admins (erasure needs a
    # ticked confirmation, absent here: back to the profile); the resident's own pages; the journal.
    ("GET", "/accompagnement/residents/{rid}/export", {"worker_a": 200, "worker_b": 404, "admin": 200}),
    ("GET", "/accompagnement/residents/{rid}/export.json", {"worker_a": 200, "worker_b": 404, "admin": 200}),
    ("POST", "/accompagnement/residents/{rid}/effacer", {"worker_a": 302, "worker_b": 404, "admin": 302}),
    ("POST", "/accompagnement/residents/{rid}/demandes/999999/traitee",
     {"worker_a": 404, "worker_b": 404, "admin": 404}),
    ("GET", "/moi/savoir-faire", {"resident": 200, "other_resident": 200}),
    ("POST", "/moi/savoir-faire", {"resident": 302, "other_resident": 302}),
    ("GET", "/moi/donnees", {"resident": 200, "other_resident": 200}),
    ("GET", "/moi/donnees/export.json", {"resident": 200, "other_resident": 200}),
    ("GET", "/moi/donnees/copie", {"resident": 200, "other_resident": 200}),
    ("GET", "/moi/donnees/effacement", {"resident": 200, "other_resident": 200}),  # « Tout effacer ? »
    ("POST", "/moi/donnees/effacement", {"resident": 302, "other_resident": 302}),  # no « Oui »: the question
    ("GET", "/moi/donnees/accord/retrait", {"resident": 200, "other_resident": 200}),
    ("POST", "/moi/donnees/accord/retrait", {"resident": 302, "other_resident": 302}),
    ("GET", "/admin/journal", {"admin": 200}),
    ("GET", "/admin/", {"admin": 200}),
    ("GET", "/admin/quartiers", {"admin": 200}),
    ("POST", "/admin/quartiers", {"admin": 200}),  # no name: the form again
    ("GET", "/admin/quartiers/999999", {"admin": 404}),
    ("POST", "/admin/quartiers/999999", {"admin": 404}),
    ("GET", "/admin/structures", {"admin": 200}),
    ("POST", "/admin/structures", {"admin": 200}),
    ("GET", "/admin/structures/999999", {"admin": 404}),
    ("POST", "/admin/structures/999999", {"admin": 404}),
    ("GET", "/admin/comptes/999999/mot-de-passe", {"admin": 404}),
    ("GET", "/admin/comptes", {"admin": 200}),
    ("POST", "/admin/comptes", {"admin": 200}),
    ("POST", "/admin/comptes/999999/desactiver", {"admin": 404}),
    ("POST", "/admin/comptes/999999/mot-de-passe", {"admin": 404}),
    # A staff member's own password; residents have a code, not a password.
    ("GET", "/compte/mot-de-passe", {"worker_a": 200, "worker_b": 200, "member": 200, "admin": 200,
                                     "relais": 200}),
    ("POST", "/compte/mot-de-passe", {"worker_a": 200, "worker_b": 200, "member": 200, "admin": 200,
                                      "relais": 200}),
    # Forms posted with a dummy body (a new person, a need, a contact…), and rows that do not
    # exist (999999): the permission is decided before the row is looked up, for the roles refused.
    ("POST", "/accompagnement/residents/nouveau",
     {'worker_a': 200, 'worker_b': 200, 'admin': 200}),
    ("POST", "/accompagnement/residents/{rid}/consentement/retrait",
     {'worker_a': 302, 'worker_b': 404, 'admin': 302}),
    ("POST", "/accompagnement/residents/{rid}/consentement",
     {'worker_a': 302, 'worker_b': 404, 'admin': 302}),
    ("POST", "/accompagnement/a-valider/personnes/{pending_rid}/renvoyer",
     {'worker_a': 302, 'worker_b': 404, 'admin': 302}),
    ("POST", "/structure/besoins/nouveau",
     {'member': 200, 'admin': 200}),
    ("POST", "/structure/presentation",
     {'member': 302, 'admin': 302}),
    ("POST", "/structure/besoins/{need}/modifier",
     {'member': 200, 'admin': 200}),
    ("POST", "/relais/personnes/nouvelle",
     {'relais': 200}),
    ("POST", "/relais/besoins/nouveau",
     {'relais': 200}),
    ("POST", "/relais/personnes/{pending_rid}/corriger",  # the form again, its words kept
     {'relais': 200}),
    ("POST", "/relais/besoins/{pending_need}/corriger",
     {'relais': 302}),
    ("POST", "/moi/contact",
     {'resident': 302, 'other_resident': 302}),
    ("POST", "/accompagnement/residents/{rid}/contact",
     {'worker_a': 302, 'worker_b': 404, 'admin': 302}),
    ("GET", "/impact/competences.csv",
     {'worker_a': 200, 'worker_b': 200, 'member': 200, 'admin': 200}),
    ("POST", "/notifications/999999/ouvrir",
     {'worker_a': 404, 'worker_b': 404, 'member': 404, 'admin': 404, 'resident': 404,
      'other_resident': 404, 'relais': 404}),
    # A file that is not there (never was, or forgotten: 24 h, an erasure) sends back to the
    # upload page, which says so; another centre's file is still refused (403).
    ("GET", "/accompagnement/import/999999",
     {'worker_a': 302, 'worker_b': 302, 'admin': 302}),
    ("POST", "/accompagnement/import/999999/valider",
     {'worker_a': 302, 'worker_b': 302, 'admin': 302}),
    ("POST", "/accompagnement/import/999999/annuler",
     {'worker_a': 302, 'worker_b': 302, 'admin': 302}),
    ("GET", "/accompagnement/taches/999999",
     {'worker_a': 404, 'worker_b': 404, 'admin': 404}),
    ("GET", "/accompagnement/taches/999999.json",
     {'worker_a': 404, 'worker_b': 404, 'admin': 404}),
    ("GET", "/compte/jetons",
     {'worker_a': 200, 'worker_b': 200, 'member': 200, 'admin': 200}),
    ("POST", "/compte/jetons",
     {'worker_a': 200, 'worker_b': 200, 'member': 200, 'admin': 200}),
    ("POST", "/compte/jetons/999999/revoquer",
     {'worker_a': 404, 'worker_b': 404, 'member': 404, 'admin': 404}),
]


def login_as(auth: Auth, scene: Scene, role: str) -> None:
    w = scene.world
    emails = {"worker_a": w.worker_a.email, "worker_b": w.worker_b.email,
              "member": w.member.email, "admin": w.admin.email, "relais": w.relais.email}
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
                        approved=scene.approved_id, pending_rid=scene.pending_rid,
                        pending_need=scene.pending_need)
    if method == "GET":
        response = client.get(path)
    else:
        response = client.post(path, data={"csrf_token": auth.token(),
                                           "reason_code": "busy", "declaration": "Je cuisine.",
                                           "match_ids": scene.proposed_id,
                                           "resident_id": scene.resident_id})
    if expected == "login":  # residents' pages lead to the access-code page, the others to the staff login
        assert response.status_code == 302
        assert response.headers["Location"] == "/code" if path.startswith("/moi/") else \
            "/connexion" in response.headers["Location"]
    else:
        assert response.status_code == expected


@pytest.mark.parametrize("path", [
    "/accompagnement/residents/999999", "/structure/besoins/999999",
])
def test_missing_ids_are_404(client: FlaskClient, auth: Auth, scene: Scene, path: str) -> None:
    auth.login(scene.world.admin.email or "")
    assert client.get(path).status_code == 404


def test_missing_proposals_are_said_to_residents_and_on_the_desk(client: FlaskClient, auth: Auth,
                                                                 scene: Scene, session: Session) -> None:
    """Withdrawn since the page was loaded (a need's text changed, a proposal was refused): a
    sentence, as on the review desk, not « Cette page n'existe pas ou plus »."""
    login_as(auth, scene, "resident")
    response = client.post("/moi/propositions/999999/oui", data={"csrf_token": auth.token()})
    assert response.status_code == 302 and response.headers["Location"].endswith("/moi/")
    assert "plus disponible" in client.get(response.headers["Location"]).get_data(as_text=True)
    # Someone else's opportunity, or one not shown to her, reads the same: a 404 there told which
    # numbers are proposals made to other people. Nothing is answered.
    for taken in (scene.approved_id, scene.proposed_id):
        response = client.post(f"/moi/propositions/{taken}/oui", data={"csrf_token": auth.token()})
        assert response.status_code == 302 and response.headers["Location"].endswith("/moi/")
        assert "plus disponible" in client.get(response.headers["Location"]).get_data(as_text=True)
    session.expire_all()
    assert {m.status for m in session.exec(select(Match)).all()} == {MatchStatus.PROPOSED,
                                                                   MatchStatus.APPROVED}
    auth.logout()
    login_as(auth, scene, "admin")
    for action in ("valider", "refuser"):  # a number that never was a proposal: not found (one
        # withdrawn is said on the desk: test_review_desk's withdrawn-meanwhile test)
        response = client.post(f"/accompagnement/propositions/999999/{action}",
                               data={"csrf_token": auth.token(), "reason_code": "busy"})
        assert response.status_code == 404


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


# Routes every visitor may open (no permission to decide), and the JSON API (its own matrix in
# tests/api/test_matrix.py and tests/api/test_api_permission_matrix.py).
OPEN_TO_ALL = {"/", "/connexion", "/code", "/deconnexion", "/healthz", "/langue", "/static/<path:filename>"}


def test_every_page_route_is_in_the_matrix(app: Flask) -> None:
    """A new route cannot ship without saying who may open it."""
    urls = app.url_map.bind("localhost")
    covered = set()
    for method, route, _ in MATRIX:
        endpoint, _args = urls.match(re.sub(r"\{\w+\}", "1", route), method=method)
        covered.add((method, endpoint))
    missing = [f"{method} {rule.rule}" for rule in app.url_map.iter_rules()
               if rule.rule not in OPEN_TO_ALL and not rule.rule.startswith("/api/")
               for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
               if (method, rule.endpoint) not in covered]
    assert not missing, "routes missing from MATRIX:\n" + "\n".join(missing)
