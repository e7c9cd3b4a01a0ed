"""The JSON API (/api/v1), its OpenAPI document and documentation page, and the token page.

`init_api(app)` wires it into the application: flask-smorest builds the OpenAPI 3 document from
the routes and marshmallow schemas, Flask-Limiter limits each token, the API blueprint is exempt
from CSRF (it never reads the session cookie: tokens only), and every error under /api/ is
returned as application/problem+json.

Settings (environment, or the app config with the same name):

    RELAIS_API_RATE_LIMIT          "300 per minute"  per token (anonymous calls: per address);
                                   any Flask-Limiter string, e.g. "100 per minute;5000 per day"
    RELAIS_API_RATE_LIMIT_STORAGE  "memory://"       counters per process; "redis://…" to share
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, current_app, request
from flask_limiter import Limiter
from werkzeug.exceptions import HTTPException

from web.api.problems import http_error

API_PREFIX = "/api/"
DEFAULT_RATE_LIMIT = "300 per minute"

DESCRIPTION = """\
Relais connects residents' skills with associations' needs. This API gives programs the same
data, under the same rules, as the web pages.

**Authentication**: `Authorization: Bearer <token>`, a personal token created by a logged-in user
on /compte/jetons. A token acts as its user (role and organisation); a read-only token cannot
change anything. **Pages**: `limit`/`offset`, ordered by id; **sync**: `updated_since` /
`changed_since` and ETags (`If-None-Match` → 304). **Errors**: `application/problem+json` with a
French `detail`. **Rate limit**: per token, 429 with `Retry-After` beyond it.
"""

TAGS = [
    {"name": "Account", "description": "The token's user."},
    {"name": "Residents", "description": "Residents followed by the caller's organisation."},
    {"name": "Declarations", "description": "What a resident can do, in their own words."},
    {"name": "Needs", "description": "Needs posted by associations and projects, and feed import."},
    {"name": "Proposals", "description": "Matches waiting for (or after) a social worker's review."},
    {"name": "Opportunities", "description": "Approved proposals, as the resident sees them."},
    {"name": "Search", "description": "Match a free text against needs or residents."},
    {"name": "Organisations", "description": "Centres sociaux, associations, tiers-lieux…"},
    {"name": "Territories", "description": "Neighbourhoods."},
]


def _rate_limit() -> str:
    return str(current_app.config["RELAIS_API_RATE_LIMIT"])


def init_api(app: Flask) -> None:
    """Register the API, its documentation, the token page and the rate limiter on `app`."""
    from web.api import account, docs, needs, proposals, reference, residents, search  # noqa: F401
    from web.api.core import IdConverter, RelaisApi, bp, document_common_errors, rate_limit_key
    from web.extensions import csrf

    app.config.setdefault("RELAIS_API_RATE_LIMIT",
                          os.environ.get("RELAIS_API_RATE_LIMIT", "").strip() or DEFAULT_RATE_LIMIT)
    app.config.setdefault("RATELIMIT_STORAGE_URI",
                          os.environ.get("RELAIS_API_RATE_LIMIT_STORAGE", "").strip() or "memory://")
    app.config.update({
        "API_TITLE": "Relais API", "API_VERSION": "1.0.0", "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api/v1", "OPENAPI_JSON_PATH": "openapi.json",
        "API_SPEC_OPTIONS": {
            "info": {"description": DESCRIPTION},
            "tags": TAGS,
            "security": [{"bearerAuth": []}],
            "components": {"securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer",
                "description": "A personal API token (relais_…), created on /compte/jetons."}}},
        },
    })
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # French text as UTF-8, not \u00e9
    app.url_map.converters["id"] = IdConverter
    api = RelaisApi(app)
    api.register_blueprint(bp)
    document_common_errors(api)
    app.extensions["relais_api"] = api
    csrf.exempt(bp)

    limiter = Limiter(rate_limit_key, app=app, storage_uri=app.config["RATELIMIT_STORAGE_URI"],
                      headers_enabled=True, retry_after="delta-seconds")
    limiter.shared_limit(_rate_limit, scope="api")(bp)
    app.extensions["relais_limiter"] = limiter

    app.register_blueprint(account.bp)
    app.register_blueprint(docs.bp)
    _route_errors_as_problems(app)


def _route_errors_as_problems(app: Flask) -> None:
    """A wrong path or method under /api/ gets problem+json too (those errors happen before any
    blueprint is chosen). Registered per status code, so the application's own handler (HTML or
    JSON) still answers for every other path, whatever the order of registration."""

    def handler(exc: HTTPException) -> Any:
        if request.path.startswith(API_PREFIX):
            return http_error(exc)
        fallback = app.error_handler_spec.get(None, {}).get(None, {}).get(HTTPException)
        return fallback(exc) if fallback is not None else exc

    for code in (404, 405):
        app.register_error_handler(code, handler)
