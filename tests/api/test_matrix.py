"""Who may call what: every API operation × every role, anonymous included, plus missing ids.

The expected statuses are the web pages' rules (tests/web/test_permissions.py), applied by the
same helpers of web/permissions.py. Every response, allowed or refused, is also checked against
the OpenAPI document.
"""

from __future__ import annotations

from typing import Any

import pytest

from models import MatchStatus
from tests.api.conftest import MISSING, ROLES, ApiEnv

NEED_BODY = {"title": "Repas partagé", "description": "Cuisiner pour la fête du quartier.",
             "languages": ["fr"], "availability": ["weekend"]}
FEED = {"ok": True, "total": 1, "data": [{
    "_id": "matrix-{role}", "title": "Aide aux devoirs", "description": "Accompagner des collégiens.",
    "organizationName": "Les Mains Agiles", "startAt": "2030-01-06T00:00:00.000Z",
    "endAt": "2030-06-30T00:00:00.000Z", "city": "Saint-Aubin", "postalCode": "45000"}]}
STAFF = {"worker_a": 200, "worker_b": 200, "admin": 200}
READERS = {**STAFF, "member": 200, "member_b": 200}
EVERYONE = {role: 200 for role in ROLES if role != "anonymous"}

# (method, path, body, {role: expected}); a role left out gets 403 (401 when anonymous).
# {fresh_proposed} and {fresh_approved} are new proposals about Awa (followed by centre A), made
# for each case, so that changing one never changes what the next case sees.
MATRIX: list[tuple[str, str, Any, dict[str, int]]] = [
    ("GET", "/api/v1/me", None, EVERYONE),
    ("GET", "/api/v1/organisations", None, EVERYONE),
    ("GET", "/api/v1/organisations/{centre_a}", None, EVERYONE),
    ("GET", f"/api/v1/organisations/{MISSING}", None, {r: 404 for r in EVERYONE}),
    # An organisation's presentation: its own members (and admins) change it; every token reads it.
    ("PATCH", "/api/v1/organisations/{association}", {"description": "Atelier ouvert le mardi."},
     {"member": 200, "member_b": 403, "worker_a": 403, "worker_b": 403, "admin": 200}),
    ("PATCH", "/api/v1/organisations/{centre_a}", {"description": "Accueil du lundi au vendredi."},
     {"member": 403, "member_b": 403, "worker_a": 200, "worker_b": 403, "admin": 200}),
    ("PATCH", f"/api/v1/organisations/{MISSING}", {"description": ""},
     {"member": 404, "member_b": 404, "worker_a": 404, "worker_b": 404, "admin": 404}),
    ("GET", "/api/v1/territories", None, EVERYONE),
    ("GET", "/api/v1/territories/{tilleuls}", None, EVERYONE),
    ("GET", f"/api/v1/territories/{MISSING}", None, {r: 404 for r in EVERYONE}),
    ("GET", "/api/v1/residents", None, STAFF),
    ("GET", "/api/v1/residents/erased?since=2020-01-01T00:00:00Z", None, STAFF),
    ("GET", "/api/v1/proposals/withdrawn?since=2020-01-01T00:00:00Z", None, STAFF),
    ("GET", "/api/v1/residents/{rid}", None, {"worker_a": 200, "worker_b": 404, "admin": 200}),
    ("GET", f"/api/v1/residents/{MISSING}", None, {"worker_a": 404, "worker_b": 404, "admin": 404}),
    ("PATCH", "/api/v1/residents/{rid}", {"availability": ["weekend"]},
     {"worker_a": 200, "worker_b": 404, "admin": 200}),
    ("PATCH", f"/api/v1/residents/{MISSING}", {"wants": ["job"]},
     {"worker_a": 404, "worker_b": 404, "admin": 404}),
    ("GET", "/api/v1/residents/{rid}/declaration", None,
     {"worker_a": 200, "worker_b": 404, "admin": 200}),
    ("GET", f"/api/v1/residents/{MISSING}/declaration", None, {"worker_a": 404, "admin": 404,
                                                              "worker_b": 404}),
    ("PUT", "/api/v1/residents/{rid}/declaration", {"text": "Je couds et je cuisine des tajines."},
     {"worker_a": 200, "worker_b": 404, "admin": 200}),
    ("PUT", f"/api/v1/residents/{MISSING}/declaration", {"text": "Je couds."},
     {"worker_a": 404, "worker_b": 404, "admin": 404}),
    ("GET", "/api/v1/needs", None, READERS),
    ("GET", "/api/v1/needs/{need}", None, {**STAFF, "member": 200, "member_b": 403}),
    ("GET", f"/api/v1/needs/{MISSING}", None, {r: 404 for r in READERS}),
    ("POST", "/api/v1/needs", NEED_BODY, {"member": 201, "member_b": 201, "admin": 201}),
    ("GET", "/api/v1/needs/{need}/candidates", None, {"member": 200, "member_b": 403, "admin": 200}),
    ("GET", f"/api/v1/needs/{MISSING}/candidates", None, {"member": 404, "member_b": 404,
                                                         "admin": 404}),
    ("POST", "/api/v1/needs/import", FEED, {"member": 200, "member_b": 200, "admin": 200}),
    ("GET", "/api/v1/proposals", None, STAFF),
    ("GET", "/api/v1/proposals/{fresh_proposed}", None,
     {"worker_a": 200, "worker_b": 404, "admin": 200}),
    ("GET", f"/api/v1/proposals/{MISSING}", None, {"worker_a": 404, "worker_b": 404, "admin": 404}),
    ("POST", "/api/v1/proposals/{fresh_proposed}/approve", None,
     {"worker_a": 200, "worker_b": 404, "admin": 200}),
    ("POST", f"/api/v1/proposals/{MISSING}/approve", None,
     {"worker_a": 404, "worker_b": 404, "admin": 404}),
    ("POST", "/api/v1/proposals/{fresh_proposed}/reject", {"reason_code": "busy", "note": ""},
     {"worker_a": 200, "worker_b": 404, "admin": 200}),
    ("POST", f"/api/v1/proposals/{MISSING}/reject", {"reason_code": "busy"},
     {"worker_a": 404, "worker_b": 404, "admin": 404}),
    # Residents see only their own approved opportunities: anything else does not exist (404).
    ("GET", "/api/v1/opportunities", None, {"resident": 200, "other_resident": 200}),
    ("GET", "/api/v1/opportunities/{fresh_approved}", None, {"resident": 200, "other_resident": 404}),
    ("GET", "/api/v1/opportunities/{fresh_proposed}", None, {"resident": 404, "other_resident": 404}),
    ("GET", f"/api/v1/opportunities/{MISSING}", None, {"resident": 404, "other_resident": 404}),
    ("POST", "/api/v1/opportunities/{fresh_approved}/answer", {"accept": True, "comment": "Oui !"},
     {"resident": 200, "other_resident": 404}),
    ("POST", "/api/v1/opportunities/{fresh_proposed}/answer", {"accept": True},
     {"resident": 404, "other_resident": 404}),
    ("POST", "/api/v1/search/needs", {"text": "Je sais coudre."}, READERS),
    ("POST", "/api/v1/search/residents", {"text": "Un atelier couture."}, STAFF),
]

CASES = [(role, method, path, body, rules.get(role, 401 if role == "anonymous" else 403))
         for method, path, body, rules in MATRIX for role in ROLES]


def _fill(api: ApiEnv, template: str, role: str) -> str:
    values: dict[str, Any] = dict(api.ids)
    if "{fresh_proposed}" in template:
        values["fresh_proposed"] = api.fresh_match(MatchStatus.PROPOSED)
    if "{fresh_approved}" in template:
        values["fresh_approved"] = api.fresh_match(MatchStatus.APPROVED)
    values["role"] = role
    return template.format(**values)


@pytest.mark.parametrize(("role", "method", "path", "body", "expected"), CASES,
                         ids=[f"{m} {p} as {r}" for r, m, p, _, _ in CASES])
def test_permissions(api: ApiEnv, role: str, method: str, path: str, body: Any,
                     expected: int) -> None:
    if isinstance(body, dict) and "data" in body:  # a mission id per role: imports do not collide
        body = {**body, "data": [{**m, "_id": m["_id"].format(role=role)} for m in body["data"]]}
    response = api.call(method, _fill(api, path, role), role, json=body)
    assert response.status_code == expected, response.get_data(as_text=True)
    if expected >= 400:
        assert response.mimetype == "application/problem+json"
        problem = response.get_json()
        assert problem["status"] == expected and problem["detail"]
    api.validate(response)


def test_every_operation_is_in_the_matrix(api: ApiEnv) -> None:
    """A new endpoint must say who may call it."""
    documented = {(method.upper(), path) for path, item in api.spec["paths"].items()
                  for method in item if method in {"get", "post", "put", "patch", "delete"}}
    tested = set()
    for method, path, _body, _rules in MATRIX:
        template = path.split("?")[0]  # a query string some operations require
        for name in ("rid", "need", "centre_a", "association", "tilleuls", "fresh_proposed", "fresh_approved",
                     str(MISSING)):
            template = template.replace("{" + name + "}" if not name.isdigit() else name, "{id}")
        tested.add((method, template))
    normalised = set()
    for method, path in documented:
        for name in ("resident_id", "need_id", "item_id", "proposal_id"):
            path = path.replace("{" + name + "}", "{id}")
        normalised.add((method, path))
    assert normalised == tested


def test_the_openapi_document_is_valid_and_complete(api: ApiEnv) -> None:
    from openapi_spec_validator import validate

    validate(api.spec)  # raises on any error
    assert api.spec["openapi"].startswith("3.")
    assert api.spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path, item in api.spec["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            codes = set(operation["responses"])
            assert {"401", "403", "429"} <= codes, (method, path)
            assert operation["x-roles"] and operation["x-scope"] in {"read", "write"}
            if "{" in path:
                assert "404" in codes, (method, path)
            if "requestBody" in operation:
                assert {"400", "422"} <= codes, (method, path)
            for code, response in operation["responses"].items():
                if code.startswith(("4", "5")):
                    name = response["$ref"].rsplit("/", 1)[-1]
                    content = api.spec["components"]["responses"][name]["content"]
                    assert list(content) == ["application/problem+json"]
