"""Logging in: five wrong passwords lock a staff account for fifteen minutes; failed attempts are
throttled per address; a page asked without a session leads to the right login and back."""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from datetime import date, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select, update

from models import AuditEvent, ClosedSession, User, utcnow
from tests.conftest import PASSWORD, Auth, World, add_resident
from web import create_app
from web.config import Config
from web.extensions import db, matching
from web.services.jobs import join_inline_jobs
from web.services.privacy import run_retention


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


def test_a_locked_account_answers_after_the_same_work_as_any_other(
        client: FlaskClient, auth: Auth, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A locked account skipped the password hash and answered ~15 times faster than an unknown
    address: anyone could lock accounts to learn which staff addresses exist."""
    from web.services import accounts

    hashed: list[str] = []
    real = accounts.check_password_hash
    monkeypatch.setattr(accounts, "check_password_hash",
                        lambda digest, password: hashed.append(password) or real(digest, password))
    email = world.worker_a.email or ""
    for _ in range(5):
        attempt(client, auth, email, "wrong")
    for who in (email, "nobody@example.org", world.member.email or ""):  # locked, unknown, unlocked
        hashed.clear()
        assert attempt(client, auth, who, "wrong") == 200
        assert len(hashed) == 1, who


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
    assert "Attendez une minute" in page.get_data(as_text=True)


def test_a_person_stopped_for_the_hour_is_told_how_long_to_wait(app: object, client: FlaskClient,
                                                                  auth: Auth) -> None:
    """Past the hour's limit, « Attendez une minute » sent a resident back to be refused again,
    for up to an hour, with no word why."""
    app.config["RELAIS_LOGIN_RATE_LIMIT"] = "2 per hour"  # type: ignore[attr-defined]
    token = auth.token("/code")
    for i in range(2):
        client.post("/code", data={"code": f"AAAA-AAA{i}", "csrf_token": token})
    page = client.post("/code", data={"code": "AAAA-AAAA", "csrf_token": token})
    assert page.status_code == 429
    assert re.search(r"Attendez 6[01] minutes", page.get_data(as_text=True))


@pytest.mark.parametrize("hops", [0, 1])
def test_behind_a_proxy_each_visitor_counts_for_their_own_address(config: Config, migrated: object,
                                                                   hops: int) -> None:
    """Behind nginx every request comes from the proxy's address: the login limit stopped every
    resident of the site after one person's mistakes. With RELAIS_PROXY_HOPS the proxy's
    X-Forwarded-For names the client; without it, the header (anyone can send it) is ignored."""
    app = create_app(dataclasses.replace(config, proxy_hops=hops))
    app.config["RELAIS_LOGIN_RATE_LIMIT"] = "2 per minute"
    client = app.test_client()
    token = Auth(client).token("/code")

    def attempt(address: str) -> int:
        return client.post("/code", data={"code": "AAAA-AAAA", "csrf_token": token},
                           headers={"X-Forwarded-For": address}).status_code

    assert [attempt("203.0.113.7") for _ in range(3)] == [200, 200, 429]
    assert attempt("198.51.100.9") == (200 if hops else 429)  # another visitor through the proxy
    db.dispose()
    join_inline_jobs()


def test_a_group_logging_in_from_one_address_is_not_throttled(
        app: object, client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    """A workshop on the centre's wifi: every resident's good code counts for nothing; only
    failures do."""
    app.config["RELAIS_LOGIN_RATE_LIMIT"] = "3 per minute"  # type: ignore[attr-defined]
    code = add_resident(session, world, "Awa", "Je fais de la couture.").access_code

    def send(typed: str) -> int:
        return client.post("/code", data={"code": typed, "csrf_token": auth.token("/code")}).status_code

    statuses = []
    for _ in range(6):
        statuses.append(send(code))
        auth.logout()
    assert statuses == [302] * 6
    assert [send(f"AAAA-AAA{i}") for i in range(2, 6)] == [200, 200, 200, 429]


def test_a_page_asked_without_a_session_leads_to_the_right_login(client: FlaskClient, world: World) -> None:
    """A resident whose session ended (or who opens a bookmark) meets the access-code page, not
    the staff e-mail and password; staff come back to their page after logging in."""
    for path in ("/moi/", "/moi/donnees", "/moi/contact"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"] == "/code", path
    response = client.get("/accompagnement/propositions?quartier=1")
    assert response.headers["Location"] == "/connexion?next=%2Faccompagnement%2Fpropositions%3Fquartier%3D1"


@pytest.mark.parametrize(("asked", "lands"), [
    ("/accompagnement/propositions?quartier=1", "/accompagnement/propositions?quartier=1"),
    ("//evil.example/x", "/accompagnement/"), ("https://evil.example/", "/accompagnement/"),
    ("/\\\\evil.example", "/accompagnement/"),
    # Browsers drop tabs and line breaks from an address: "/<tab>/evil.example" is "//evil.example"
    # to them; a line break in a header was a server error after the password was accepted.
    ("/\t/evil.example", "/accompagnement/"), ("/\n/evil.example", "/accompagnement/"),
    ("/\r\n/x", "/accompagnement/"), ("/ /evil.example", "/accompagnement/"),
])
def test_staff_come_back_to_the_page_they_asked_and_never_elsewhere(
        client: FlaskClient, auth: Auth, world: World, asked: str, lands: str) -> None:
    path = "/connexion?" + urllib.parse.urlencode({"next": asked})
    response = client.post(path, data={"email": world.worker_a.email, "password": PASSWORD,
                                       "csrf_token": auth.token("/connexion")})
    assert (response.status_code, response.headers["Location"]) == (302, lands)


def test_a_wrong_code_is_said_beside_the_field_which_gets_the_focus(client: FlaskClient, auth: Auth) -> None:
    """A screen reader on the code field hears why it was refused; the cursor is back in it."""
    sent = {"code": "AAAA-AAAA", "csrf_token": auth.token("/code")}
    page = client.post("/code", data=sent).get_data(as_text=True)
    field = re.search(r'<input[^>]*id="code"[^>]*>', page)
    assert field, page[-2000:]
    assert 'aria-invalid="true"' in field.group(0) and "autofocus" in field.group(0)
    assert 'aria-describedby="code-error"' in field.group(0)
    assert re.search(r'id="code-error"[^>]*>\s*<p>Ce code ne marche pas', page)
    assert "autofocus" not in client.get("/code").get_data(as_text=True)


@pytest.mark.parametrize("who", ["worker", "resident"])
def test_a_copy_of_the_cookie_is_logged_out_with_the_browser(app: Flask, client: FlaskClient, auth: Auth,
                                                            session: Session, world: World, who: str) -> None:
    """« Se déconnecter » only made this browser forget its signed cookie, valid for 8 hours: a
    copy (a centre computer's other profile, a proxy's log) still read the worker's desk, or the
    resident's whole data file. The logged-out session is refused; the same account's session
    on another device stays open; the ended ids are forgotten once their cookie has expired."""
    if who == "worker":
        def log_in(browser: Auth) -> None:
            browser.login(world.worker_a.email or "")
        page = "/accompagnement/"
    else:
        code = add_resident(session, world, "Awa", "Je fais de la couture.", initial="K").access_code

        def log_in(browser: Auth) -> None:
            browser.code_login(code)
        page = "/moi/donnees/export.json"
    log_in(auth)
    cookie = client.get_cookie("session")
    assert cookie is not None and client.get(page).status_code == 200
    other_device = Auth(app.test_client())
    log_in(other_device)
    auth.logout()
    auth.logout()  # a second tap, or another tab: nothing more
    assert client.get(page).status_code == 302
    copy = app.test_client()
    copy.set_cookie("session", cookie.value)
    refused = copy.get(page)
    assert refused.status_code == 302
    assert any(login in refused.headers["Location"] for login in ("/connexion", "/code"))
    assert other_device.client.get(page).status_code == 200
    [ended] = session.exec(select(ClosedSession)).all()
    assert ended.expires_at > utcnow() + timedelta(hours=7)
    # Once the cookie would have expired anyway, the retention run forgets it. The copy, refused,
    # was emptied: kept alive by a visit every few hours, it does not come back as the person.
    session.exec(update(ClosedSession).values(expires_at=utcnow() - timedelta(minutes=1)))
    session.commit()
    assert run_retention(session, matching, date.today(), 24, 30).closed_sessions == 1
    session.commit()
    assert session.exec(select(ClosedSession)).all() == []
    assert copy.get(page).status_code == 302


def test_a_session_without_an_id_is_not_logged_in(app: Flask, world: World) -> None:
    """Sessions opened before logins carried an id could not be ended by a logout: they end."""
    browser = app.test_client()
    with browser.session_transaction() as cookie:
        cookie["_user_id"] = world.worker_a.get_id()
        cookie["_fresh"] = True
    assert browser.get("/accompagnement/").status_code == 302
    with browser.session_transaction() as cookie:
        assert "_user_id" not in cookie


def test_a_code_typed_with_a_letter_for_a_look_alike_digit_opens(session: Session, world: World) -> None:
    """« 5Y8C-5MGR » read from a paper was typed « SY8C-5MGR » and refused. New codes hold no B, S or
    Z, so a typed B, S or Z is read as the 8, 5 or 2 it resembles; a code made before, which may
    hold the letter itself, still opens as typed."""
    from web.services.accounts import CODE_ALPHABET, authenticate_code, code_digest

    assert not set("BSZ01IOL") & set(CODE_ALPHABET)
    created = add_resident(session, world, "Awa", "Je fais de la couture.")
    login = session.exec(select(User).where(User.resident_id == created.resident.id)).one()
    login.access_code_digest = code_digest("5Y8C-52GR")
    session.add(login)
    session.commit()
    assert authenticate_code(session, "sy8c 5zgr") is not None
    assert authenticate_code(session, "5YBC-52GR") is not None
    login.access_code_digest = code_digest("SY8C-Z2GR")  # from before: its letters are its own
    session.add(login)
    session.commit()
    assert authenticate_code(session, "SY8C-Z2GR") is not None
    assert authenticate_code(session, "5Y8C-52GR") is None
