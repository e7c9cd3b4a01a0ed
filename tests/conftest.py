"""Shared fixtures: a real database (SQLite file, or PostgreSQL when RELAIS_TEST_DB=postgres),
the real model and index, the app, a client and a `world` of organisations and people."""

from __future__ import annotations

import base64
import os
import re
import shutil
import threading
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import TypeVar, cast

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlmodel import Session, col, delete, select
from werkzeug.test import TestResponse

from models import Database, Direction, Match, Organisation, Role, Territory, User
from web import create_app
from web.config import Config
from web.extensions import db, matching
from web.services.accounts import hash_password
from web.services.jobs import join_inline_jobs
from web.services.profiles import CreatedResident, ResidentInput, create_resident

T = TypeVar("T")
PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@contextmanager
def postgres_database(template: str | None = None) -> Iterator[str]:
    """A new database on the test PostgreSQL server (optionally copied from `template`)."""
    server = os.environ["RELAIS_TEST_POSTGRES_URL"]
    name = f"relais_t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    copy = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def template_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated once per run; each test gets a copy (a file copy, or a PostgreSQL
    database created from it as a template)."""
    if os.environ.get("RELAIS_TEST_DB") != "postgres":
        url = f"sqlite:///{tmp_path_factory.mktemp('template') / 'relais.db'}"
        template = Database(url)
        template.upgrade()
        template.dispose()  # closing the last connection folds the WAL into the file we copy
        yield url
        return
    with postgres_database() as url:
        template = Database(url)
        template.upgrade()
        template.dispose()
        yield url.rsplit("/", 1)[1]


@contextmanager
def fresh_database(directory: Path, template: str) -> Iterator[str]:
    """A migrated, empty database copied from the session's template."""
    if os.environ.get("RELAIS_TEST_DB") != "postgres":
        path = directory / "relais.db"
        shutil.copyfile(template.removeprefix("sqlite:///"), path)
        yield f"sqlite:///{path}"
        return
    with postgres_database(template) as url:
        try:
            yield url
        finally:
            db.dispose()


@pytest.fixture
def database_url(tmp_path: Path, template_database: str) -> Iterator[str]:
    """A fresh, migrated, empty database for one test."""
    with fresh_database(tmp_path, template_database) as url:
        yield url


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Config:
    return Config(instance_dir=tmp_path / "instance", database_url=database_url,
                  secret_key="test-secret", testing=True)


@pytest.fixture
def migrated(config: Config) -> Iterator[Database]:
    database = Database(config.database_url)
    yield database
    database.dispose()


@pytest.fixture
def app(config: Config, migrated: Database) -> Iterator[Flask]:
    application = create_app(config)
    yield application
    join_inline_jobs()  # a job thread must not outlive its test's database
    db.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    with db.session() as s:
        yield s


@lru_cache(maxsize=1)
def password_hash() -> str:
    """scrypt is slow on purpose: hash the test password once per run."""
    return hash_password(PASSWORD)


@dataclass
class World:
    """Two centres sociaux, one association, their people, two neighbourhoods."""

    tilleuls: Territory
    bourg: Territory
    centre_a: Organisation
    centre_b: Organisation
    association: Organisation
    worker_a: User
    worker_b: User
    member: User
    admin: User
    relais: User  # a habitant-relais of centre A


@pytest.fixture
def world(session: Session) -> World:
    return make_world(session)


def make_world(session: Session) -> World:
    """Create the World's rows (the `world` fixture; the API tests add to it)."""
    tilleuls = Territory(name="Les Tilleuls", commune="Saint-Aubin", qpv_code="QN099001")
    bourg = Territory(name="Le Bourg", commune="Vaux")
    session.add_all([tilleuls, bourg])
    session.flush()
    centre_a = Organisation(name="Centre social A", kind="centre_social", territory_id=tilleuls.id)
    centre_b = Organisation(name="Centre social B", kind="centre_social", territory_id=bourg.id)
    association = Organisation(name="Les Mains Agiles", kind="association")
    session.add_all([centre_a, centre_b, association])
    session.flush()

    def staff(email: str, role: Role, org: Organisation) -> User:
        return User(email=email, display_name=email.split("@")[0], role=role,
                    organisation_id=org.id, password_hash=password_hash())

    people = [staff("worker.a@example.org", Role.SOCIAL_WORKER, centre_a),
              staff("worker.b@example.org", Role.SOCIAL_WORKER, centre_b),
              staff("member@example.org", Role.ASSOCIATION_MEMBER, association),
              staff("admin@example.org", Role.ADMIN, centre_a),
              staff("relais.a@example.org", Role.HABITANT_RELAIS, centre_a)]
    session.add_all(people)
    session.commit()
    return World(tilleuls, bourg, centre_a, centre_b, association, *people)


class Auth:
    """Log a test client in and out, and fetch CSRF tokens the way a browser would."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def token(self, path: str = "/connexion") -> str:
        page = self.client.get(path, follow_redirects=True).get_data(as_text=True)
        found = CSRF.search(page)
        assert found, f"no CSRF token on {path}"
        return found.group(1)

    def login(self, email: str, password: str = PASSWORD) -> None:
        response = self.client.post("/connexion", data={
            "email": email, "password": password, "csrf_token": self.token("/connexion")})
        assert response.status_code == 302, response.get_data(as_text=True)

    def code_login(self, code: str) -> None:
        response = self.client.post("/code", data={"code": code, "csrf_token": self.token("/code")})
        assert response.status_code == 302, response.get_data(as_text=True)

    def logout(self) -> None:
        self.client.post("/deconnexion", data={"csrf_token": self.token("/")})

    def post(self, path: str, data: dict[str, object], token_from: str = "/",
             follow_redirects: bool = False) -> object:
        return self.client.post(path, data={**data, "csrf_token": self.token(token_from)},
                                follow_redirects=follow_redirects)


@pytest.fixture
def auth(client: FlaskClient) -> Auth:
    return Auth(client)


def add_resident(session: Session, world: World, name: str, declaration: str, *,
                 initial: str = "", given_on: date | None = None, recorded_by: User | None = None,
                 **extra: object) -> CreatedResident:
    """A resident of Les Tilleuls, followed by worker A, recorded the day they consented:
    `given_on` (default today; earlier, for a consent since expired); `recorded_by` another account
    (e.g. world.relais: the profile then waits for validation)."""
    today = given_on or date.today()
    data = ResidentInput(first_name=name, last_initial=initial, territory_id=world.tilleuls.id,
                         consent_given_on=today, consent_method="paper_signed",
                         consent_matching=True, declaration=declaration)
    for key, value in extra.items():
        setattr(data, key, value)
    return create_resident(session, matching, recorded_by or world.worker_a, data, 12, today)


def at_once(*calls: Callable[[], T]) -> list[T]:
    """Run `calls` in threads released together (two taps, two tools, a cron and a person), and
    return their results in order: the requests race as they do in production."""
    start = threading.Barrier(len(calls))
    results: list[T | None] = [None] * len(calls)

    def run(i: int) -> None:
        start.wait(timeout=30)
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads) and all(r is not None for r in results)
    return cast("list[T]", results)


def session_cookie(client: FlaskClient) -> bytes:
    """The session cookie's payload as the browser holds it (signed, not encrypted: readable)."""
    cookie = client.get_cookie("session")
    assert cookie is not None
    payload = cookie.value.lstrip(".").split(".")[0]  # Flask's: [.]payload.time.signature
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    return zlib.decompress(raw) if cookie.value.startswith(".") else raw


def taps(client: FlaskClient, path: str, data: dict[str, object], count: int = 2) -> list[TestResponse]:
    """The same form sent `count` times at once by the person logged in on `client` (taps on a
    slow phone, a double click): each from its own tab, with the same session."""
    cookie = client.get_cookie("session")
    assert cookie is not None

    def tap() -> TestResponse:
        tab = client.application.test_client()
        tab.set_cookie("session", cookie.value)
        return tab.post(path, data=data)

    return at_once(*[tap] * count)


def approved_opportunity(session: Session, world: World, description: str) -> CreatedResident:
    """Awa K. (centre A) with one opportunity approved by worker A: the association's need
    « Atelier couture » (`description`), written by hand in place of the matcher's proposals."""
    from web.services.needs import NeedInput, create_need
    from web.services.review import approve

    awa = add_resident(session, world, "Awa", "Je fais de la couture.", initial="K")
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Atelier couture", description=description), date.today())
    hand_proposals(session, [(need.id or 0, awa.resident.id or 0, 0.5)])
    approve(session, world.worker_a, session.exec(select(Match)).one())
    return awa


def hand_proposals(session: Session, proposals: Sequence[tuple[int, int, float]],
                   explanation: dict[str, object] | None = None) -> list[Match]:
    """Proposals written by hand in place of the matcher's: every match of these needs goes,
    then each (need id, resident id, score) waits for review, in that order (with `explanation`)."""
    from web.services.proposals import Proposal, store_proposals

    session.exec(delete(Match).where(col(Match.need_id).in_({need for need, _r, _s in proposals})))
    session.commit()
    store_proposals(session, [Proposal(need, resident, score, dict(explanation or {}))
                              for need, resident, score in proposals], Direction.NEED_TO_RESIDENT)
    return [session.exec(select(Match).where(Match.need_id == need, Match.resident_id == resident)).one()
            for need, resident, _s in proposals]


def resident_form(declaration: str, territory: Territory, **overrides: object) -> dict[str, object]:
    """The new-resident form as a social worker fills it in."""
    form: dict[str, object] = {
        "first_name": "Fatma", "last_initial": "Y", "territory_id": territory.id,
        "languages": ["fr", "tr"], "availability": ["weekday_afternoon"], "wants": ["volunteering"],
        "declaration": declaration, "consent_matching": "y",
        "consent_given_on": date.today().isoformat(), "consent_method": "oral_in_person",
    }
    form.update(overrides)
    return form


def sent_back(auth: Auth, world: World, kind: str, row_id: int | None, note: str) -> None:
    """Worker A sends the habitant-relais's submission (`kind`: "personnes" or "besoins") back
    with `note`; the habitant-relais is logged in again after."""
    auth.logout()
    auth.login(world.worker_a.email or "")
    auth.post(f"/accompagnement/a-valider/{kind}/{row_id}/renvoyer", {"note": note},
              token_from="/accompagnement/a-valider")
    auth.logout()
    auth.login(world.relais.email or "")


def need_form(title: str, description: str, **overrides: object) -> dict[str, object]:
    form: dict[str, object] = {"title": title, "description": description, "kind": "skill",
                               "when_text": "le mercredi après-midi", "where_text": "Maison des projets",
                               "territory_id": 0}
    form.update(overrides)
    return form
