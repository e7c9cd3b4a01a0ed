"""The API permission matrix, completed: token scopes and dead tokens × every operation, and every
/api/v1 route of the application accounted for.

tests/api/test_matrix.py covers every operation × every role with a read-write token (anonymous
included) and missing ids. This module adds the other axis of a token: the same operations with a
read-only token (an operation documented `x-scope: write` answers 403 whatever the object, before
anything is looked up; a read operation answers as with a write token), and with a revoked or
expired token (401 everywhere). Expected statuses come from that module's MATRIX, so the two stay
one table.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from models import ApiToken
from tests.api.conftest import ROLES, ApiEnv
from tests.api.test_matrix import MATRIX, _fill
from web.api.tokens import token_digest
from web.extensions import db

STAFF_ROLES = [role for role in ROLES if role != "anonymous"]


def operation(api: ApiEnv, method: str, url: str) -> dict[str, Any]:
    """The OpenAPI operation that serves `method url`."""
    found = []
    for path, item in api.spec["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", r"[^/]+", path) + "$"
        if method.lower() in item and re.match(pattern, url.split("?")[0]):
            found.append((path.count("{"), item[method.lower()]))
    assert found, (method, url)
    return sorted(found, key=lambda f: f[0])[0][1]  # literal segments win ("needs/import")


def read_only_expectation(scope: str, with_write_token: int) -> int:
    """What a read-only token gets where a write token gets `with_write_token`."""
    if scope == "write" and with_write_token != 403:
        return 403  # allowed role, refused scope (checked before the object is looked up)
    return with_write_token


CASES = [(role, method, path, body, rules.get(role, 403))
         for method, path, body, rules in MATRIX for role in STAFF_ROLES]


@pytest.mark.parametrize(("role", "method", "path", "body", "with_write_token"), CASES,
                         ids=[f"{m} {p} as {r} read-only" for r, m, p, _, _ in CASES])
def test_read_only_tokens(api: ApiEnv, role: str, method: str, path: str, body: Any,
                          with_write_token: int, read_tokens: dict[str, str]) -> None:
    if isinstance(body, dict) and "data" in body:
        body = {**body, "data": [{**m, "_id": m["_id"].format(role=role) + "-ro"} for m in body["data"]]}
    url = _fill(api, path, role)
    expected = read_only_expectation(operation(api, method, url)["x-scope"], with_write_token)
    response = api.call(method, url, token=read_tokens[role], json=body)
    assert response.status_code == expected, response.get_data(as_text=True)
    if expected == 403 and with_write_token != 403:
        assert "lecture seule" in response.get_json()["detail"]
    api.validate(response)


@pytest.fixture(scope="module")
def read_tokens(api: ApiEnv) -> dict[str, str]:
    return {role: api.token(role, write=False) for role in STAFF_ROLES}


@pytest.fixture(scope="module")
def dead_tokens(api: ApiEnv) -> dict[str, str]:
    """A revoked and an expired write token of the admin, who may otherwise call nearly anything."""
    revoked, expired = api.token("admin"), api.token("admin")
    with db.session() as session:
        for secret, change in ((revoked, "revoked_at"), (expired, "expires_at")):
            row = session.exec(select(ApiToken).where(ApiToken.token_digest == token_digest(secret))).one()
            setattr(row, change, datetime.now(UTC) - timedelta(minutes=1))
            session.add(row)
        session.commit()
    return {"revoked": revoked, "expired": expired}


DEAD = [(kind, method, path, body) for method, path, body, _ in MATRIX for kind in ("revoked", "expired")]


@pytest.mark.parametrize(("kind", "method", "path", "body"), DEAD,
                         ids=[f"{m} {p} {k}" for k, m, p, _ in DEAD])
def test_revoked_and_expired_tokens_get_401_everywhere(api: ApiEnv, dead_tokens: dict[str, str],
                                                       kind: str, method: str, path: str,
                                                       body: Any) -> None:
    response = api.call(method, _fill(api, path, "admin"), token=dead_tokens[kind], json=body)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


# Routes under /api/ that are not operations of the document: the document itself and its page.
NOT_OPERATIONS = {("GET", "/api/v1/openapi.json"), ("GET", "/api/v1/docs")}


def test_every_api_route_is_a_documented_operation(api: ApiEnv) -> None:
    """A route added to the API blueprint without its OpenAPI operation would escape the matrix."""
    documented = {(m.upper(), re.sub(r"\{[^}]+\}", "{}", path))
                  for path, item in api.spec["paths"].items() for m in item if m != "parameters"}
    routed = set()
    for rule in api.app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = re.sub(r"<[^>]+>", "{}", rule.rule)
        for method in rule.methods or ():
            if method not in {"HEAD", "OPTIONS"}:
                routed.add((method, path))
    assert routed - NOT_OPERATIONS == documented
    assert {path for _m, path in documented} >= {re.sub(r"\{[^}]+\}", "{}", p.split("?")[0])
                                                  for _m, p, _b, _r in MATRIX if "99" not in p}
