"""Fixtures for the API: one app and one scene per test module (building them per test would cost
a second each), tokens for every role, and validation of responses against the OpenAPI document.

Tests that change data create what they change (`fresh_match`), so the order of tests within a
module does not matter.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_core import Config as OpenAPIConfig
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.deserializing.media_types.util import json_loads
from sqlmodel import Session, select
from werkzeug.test import TestResponse

from models import Direction, Match, MatchStatus, Need, Organisation, Role, User
from tests.conftest import fresh_database, make_world
from web import create_app
from web.api.tokens import create_token
from web.config import Config
from web.extensions import db, matching
from web.services.needs import NeedInput, create_need
from web.services.profiles import ResidentInput, create_resident
from web.services.proposals import Proposal, store_proposals

# Every role a request can come from; "anonymous" sends no token.
ROLES = ["anonymous", "worker_a", "worker_b", "member", "member_b", "admin", "resident",
         "other_resident", "relais"]
MISSING = 999_999


class SentRequest(WerkzeugOpenAPIRequest):  # type: ignore[misc]
    """The request a test client sent, for response validation (its body was read already)."""

    @property
    def body(self) -> bytes | None:
        return None


@dataclass
class ApiEnv:
    app: Flask
    client: FlaskClient
    tokens: dict[str, str]  # role → secret (write scope)
    ids: dict[str, int]
    users: dict[str, User]
    openapi: OpenAPI
    spec: dict[str, Any] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)  # residents' access codes

    def call(self, method: str, path: str, role: str = "admin", json: Any = None,
             headers: dict[str, str] | None = None, token: str | None = None) -> TestResponse:
        sent = dict(headers or {})
        secret = token or self.tokens.get(role)
        if secret:
            sent["Authorization"] = f"Bearer {secret}"
        return self.client.open(path, method=method, json=json, headers=sent)

    def validate(self, response: TestResponse) -> None:
        """The response is what the OpenAPI document says (status, content type, body)."""
        self.openapi.validate_response(SentRequest(response.request),
                                       WerkzeugOpenAPIResponse(response))

    def fresh_match(self, status: MatchStatus, resident: str = "rid") -> int:
        """A new proposal about a resident, on a new need of the association (no matching)."""
        with db.session() as session:
            need = Need(organisation_id=self.ids["association"], title="Besoin de test",
                        description="Un besoin pour un test.", created_by_id=self.users["member"].id or 0)
            session.add(need)
            session.flush()
            match = Match(need_id=need.id or 0, resident_id=self.ids[resident], score=0.5,
                          direction=Direction.NEED_TO_RESIDENT, status=status,
                          explanation={"pairs": [], "shared_terms": [], "reasons": [], "score": 0.5})
            session.add(match)
            session.commit()
            return match.id or 0

    def token(self, role: str, write: bool = True, days: int | None = None) -> str:
        with db.session() as session:
            user = session.get(User, self.users[role].id)
            assert user is not None
            return create_token(session, user, f"test {uuid.uuid4().hex[:6]}", write, days).secret


def build_scene(session: Session) -> tuple[dict[str, int], dict[str, User], dict[str, str]]:
    """Two centres sociaux, two associations, their people, two residents, needs, proposals.

    Returns ids, users and the residents' access codes."""
    today = date.today()
    world = make_world(session)  # the same places and people as the page tests
    tilleuls, centre_a, association = world.tilleuls, world.centre_a, world.association
    association_b = Organisation(name="La Grange", kind="association")
    session.add(association_b)
    session.flush()
    member_b = User(email="member.b@example.org", display_name="Member B",
                    role=Role.ASSOCIATION_MEMBER, organisation_id=association_b.id)
    session.add(member_b)
    session.commit()
    users = {"worker_a": world.worker_a, "worker_b": world.worker_b, "member": world.member,
             "member_b": member_b, "admin": world.admin, "relais": world.relais}

    def person(name: str, text_: str, worker: User) -> tuple[int, str]:
        created = create_resident(session, matching, worker, ResidentInput(
            first_name=name, last_initial="K", territory_id=tilleuls.id, languages=["fr"],
            consent_given_on=today, consent_method="paper_signed", consent_matching=True,
            declaration=text_), 12, today)
        return created.resident.id or 0, created.access_code

    rid, code = person("Awa", "Je fais de la couture et des retouches pour les voisines.", users["worker_a"])
    other_rid, other_code = person("Binta", "Je couds des boubous et je fais des ourlets.",
                                   users["worker_b"])
    need, _ = create_need(session, matching, users["member"], NeedInput(
        title="Atelier couture", description="Animer un atelier couture le mercredi."), today)
    need_b, _ = create_need(session, matching, users["member_b"], NeedInput(
        title="Chantier bois", description="Construire des bancs en bois pour la grange."), today)
    store_proposals(session, [Proposal(need.id or 0, r, 0.5, {}) for r in (rid, other_rid)],
                    Direction.NEED_TO_RESIDENT)
    matches = {m.resident_id: m for m in session.exec(
        select(Match).where(Match.need_id == need.id)).all()}
    approved = matches[rid]
    approved.status = MatchStatus.APPROVED
    session.add(approved)
    session.commit()
    for role, user in users.items():
        session.refresh(user)
        users[role] = user
    for role, resident_id in (("resident", rid), ("other_resident", other_rid)):
        users[role] = session.exec(select(User).where(User.resident_id == resident_id)).one()
    ids = {"rid": rid, "other_rid": other_rid, "need": need.id or 0, "need_b": need_b.id or 0,
           "approved": approved.id or 0, "proposed_b": matches[other_rid].id or 0,
           "tilleuls": tilleuls.id or 0, "centre_a": centre_a.id or 0,
           "association": association.id or 0, "association_b": association_b.id or 0}
    return ids, users, {"resident": code, "other_resident": other_code}


@contextmanager
def api_environment(directory: Path, template: str,
                    test_config: dict[str, Any] | None = None) -> Iterator[ApiEnv]:
    with fresh_database(directory, template) as url:
        config = Config(instance_dir=directory / "instance", database_url=url,
                        secret_key="test-secret", testing=True)
        app = create_app(config, {"RELAIS_API_RATE_LIMIT": "100000 per minute", **(test_config or {})})
        with db.session() as session:
            ids, users, codes = build_scene(session)
            tokens = {role: create_token(session, user, f"test {role}", True, None).secret
                      for role, user in users.items()}
        client = app.test_client()
        spec = client.get("/api/v1/openapi.json").get_json()
        openapi = OpenAPI.from_dict(spec, config=OpenAPIConfig(
            extra_media_type_deserializers={"application/problem+json": json_loads},
            response_properties_default_policy=True))
        yield ApiEnv(app, client, tokens, ids, users, openapi, spec, codes)
        db.dispose()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, template_database: str) -> Iterator[ApiEnv]:
    with api_environment(tmp_path_factory.mktemp("api"), template_database) as env:
        yield env
