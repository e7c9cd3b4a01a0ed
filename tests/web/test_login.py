"""Password guessing: five wrong passwords lock a staff account for fifteen minutes."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient
from sqlmodel import Session, select

from models import AuditEvent, User, utcnow
from tests.conftest import PASSWORD, Auth, World


def attempt(client: FlaskClient, auth: Auth, email: str, password: str) -> int:
    response = client.post("/connexion", data={"email": email, "password": password,
                                               "csrf_token": auth.token("/connexion")})
    return response.status_code


def test_five_wrong_passwords_lock_the_account(client: FlaskClient, auth: Auth, session: Session,
                                               world: World) -> None:
    email = world.worker_a.email or ""
    for _ in range(4):
        assert attempt(client, auth, email, "wrong") == 200
    assert attempt(client, auth, email, PASSWORD) == 302  # a success resets the count
    auth.logout()
    for _ in range(5):
        assert attempt(client, auth, email, "wrong") == 200
    # Locked: even the right password is refused, with the same answer as a wrong one.
    assert attempt(client, auth, email, PASSWORD) == 200
    page = client.post("/connexion", data={"email": email, "password": PASSWORD,
                                           "csrf_token": auth.token("/connexion")})
    assert "bloqué quinze minutes" in page.get_data(as_text=True)
    session.expire_all()
    user = session.exec(select(User).where(User.email == email)).one()
    assert user.locked_until is not None
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "login.locked")).one()
    # Fifteen minutes later the right password works again.
    user.locked_until = utcnow() - timedelta(seconds=1)
    session.add(user)
    session.commit()
    assert attempt(client, auth, email, PASSWORD) == 302
    # Another account was never affected.
    auth.logout()
    assert attempt(client, auth, world.member.email or "", PASSWORD) == 302


def test_code_and_password_attempts_are_throttled_per_address(app: object, client: FlaskClient,
                                                              auth: Auth, world: World) -> None:
    app.config["RELAIS_LOGIN_RATE_LIMIT"] = "3 per minute"  # type: ignore[attr-defined]
    token = auth.token("/code")
    statuses = [client.post("/code", data={"code": f"AAAA-AAA{i}", "csrf_token": token}).status_code
                for i in range(2, 6)]
    assert statuses == [200, 200, 200, 429]
    page = client.post("/code", data={"code": "AAAA-AAAA", "csrf_token": token})
    assert page.status_code == 429 and "Trop d&#39;essais" in page.get_data(as_text=True)
    assert client.get("/code").status_code == 200  # reading the page is never throttled
