"""The token page (/compte/jetons): a logged-in staff member creates a token, sees it once, uses
it, and revokes it. An ordinary web page: login and CSRF token required."""

from __future__ import annotations

import re
from datetime import date

from flask.testing import FlaskClient
from sqlmodel import Session, select

from models import ApiToken, AuditEvent
from tests.conftest import Auth, World, session_cookie
from web.extensions import matching
from web.services.profiles import ResidentInput, create_resident

SECRET = re.compile(r'data-testid="api-token"[^>]*>(relais_[A-Za-z0-9_-]+)</textarea>')


def create(auth: Auth, name: str, access: str = "write") -> str:
    response = auth.post("/compte/jetons", {"name": name, "access": access, "validity": "30"},
                         token_from="/compte/jetons", follow_redirects=True)
    page = response.get_data(as_text=True)  # type: ignore[attr-defined]
    found = SECRET.search(page)
    assert found, page
    return found.group(1)


def test_create_use_and_revoke_a_token(client: FlaskClient, auth: Auth, world: World,
                                       session: Session) -> None:
    auth.login(world.worker_a.email or "")
    secret = create(auth, "Tableur du centre")
    # Shown once: reloading the page does not show it again.
    assert secret not in client.get("/compte/jetons").get_data(as_text=True)
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200
    assert me.get_json()["role"] == "social_worker" and me.get_json()["token"]["scopes"] == ["read", "write"]
    assert me.get_json()["token"]["expires_at"]
    token = session.exec(select(ApiToken)).one()
    assert token.token_digest != secret and secret.startswith(token.prefix)
    page = client.get("/compte/jetons").get_data(as_text=True)
    assert "Tableur du centre" in page and token.prefix in page

    response = auth.post(f"/compte/jetons/{token.id}/revoquer", {}, token_from="/compte/jetons")
    assert response.status_code == 302  # type: ignore[attr-defined]
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    actions = [e.action for e in session.exec(select(AuditEvent)).all()]
    assert "api_token.create" in actions and "api_token.revoke" in actions


def test_a_new_token_crosses_the_redirect_sealed(client: FlaskClient, auth: Auth, world: World) -> None:
    """A write token with no end went in clear through the session cookie, and stayed there when
    the page that shows it did not load."""
    auth.login(world.worker_a.email or "")
    auth.post("/compte/jetons", {"name": "Tableur", "access": "write", "validity": "0"},
              token_from="/compte/jetons")
    raw = session_cookie(client)
    found = SECRET.search(client.get("/compte/jetons").get_data(as_text=True))
    assert found is not None and found.group(1).encode() not in raw and b"api_token" in raw
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {found.group(1)}"}).status_code == 200


def test_read_only_tokens_from_the_page(client: FlaskClient, auth: Auth, world: World) -> None:
    auth.login(world.member.email or "")
    secret = create(auth, "Lecture", access="read")
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).get_json()
    assert me["token"]["scopes"] == ["read"] and me["role"] == "association_member"


def test_only_the_owner_revokes_a_token(client: FlaskClient, auth: Auth, world: World,
                                        session: Session) -> None:
    auth.login(world.worker_a.email or "")
    create(auth, "A")
    token = session.exec(select(ApiToken)).one()
    auth.logout()
    auth.login(world.worker_b.email or "")
    response = auth.post(f"/compte/jetons/{token.id}/revoquer", {}, token_from="/compte/jetons")
    assert response.status_code == 404  # type: ignore[attr-defined]
    session.refresh(token)
    assert token.revoked_at is None


def test_the_page_is_for_logged_in_staff(client: FlaskClient, auth: Auth, world: World,
                                         session: Session) -> None:
    response = client.get("/compte/jetons")
    assert response.status_code == 302 and "/connexion" in response.headers["Location"]
    created = create_resident(session, matching, world.worker_a, ResidentInput(
        first_name="Awa", last_initial="K", territory_id=world.tilleuls.id,
        consent_given_on=date.today(), consent_method="paper_signed", consent_matching=True,
        declaration="Je couds."), 12, date.today())
    auth.code_login(created.access_code)
    assert client.get("/compte/jetons").status_code == 403


def test_the_form_needs_its_csrf_token(client: FlaskClient, auth: Auth, world: World,
                                       session: Session) -> None:
    auth.login(world.admin.email or "")
    response = client.post("/compte/jetons", data={"name": "x", "access": "read", "validity": "30"})
    assert response.status_code == 400
    assert session.exec(select(ApiToken)).first() is None


def test_docs_page_lists_every_operation_without_outside_assets(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for path, item in spec["paths"].items():
        for method in item:
            if method in {"get", "post", "put"}:
                assert f"{method.upper()} {path}" in html
    assert "http://" not in html.replace("http://localhost", "") and "https://" not in html
    scripts = re.findall(r"<script\b[^>]*>", html)  # the site's own, none inline (its CSP)
    assert scripts and all(re.search(r'src="/static/[\w.-]+\.js"', tag) for tag in scripts)
