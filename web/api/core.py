"""The API's plumbing: the flask-smorest Api and blueprint, token authentication, who may call
what, pagination and problem responses in the OpenAPI document.

Authentication is by personal token only (`Authorization: Bearer relais_…`): the browser session
cookie is ignored here, which is what makes it safe to exempt the API from CSRF protection.
"""

from __future__ import annotations

import http
import json
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import current_app, g, request
from flask_babel import gettext as _
from flask_smorest import Api, Blueprint
from flask_smorest.utils import prepare_response
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.exceptions import abort as werkzeug_abort
from werkzeug.routing import IntegerConverter

from models import ApiToken, Role, User
from web.api.problems import PROBLEM_MIMETYPE, abort_problem, http_error, problem
from web.api.schemas import MAX_ID, ProblemSchema
from web.api.tokens import WRITE, authenticate_token
from web.extensions import db_session
from web.services.queries import count_rows

F = TypeVar("F", bound=Callable[..., Any])

RESPONSE_HEADERS = {
    401: {"WWW-Authenticate": {"description": "Bearer realm=\"relais\"", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds to wait before the next request.",
                          "schema": {"type": "integer"}}},
}


class RelaisApi(Api):  # type: ignore[misc]
    """flask-smorest's Api, with errors documented (and returned) as problem+json.

    flask-smorest would register an application-wide error handler: the web pages keep theirs,
    the API blueprint registers its own (at the end of this module)."""

    ERROR_SCHEMA = ProblemSchema
    DEFAULT_ERROR_RESPONSE_NAME = None  # every operation lists the errors it can return

    def _register_error_handlers(self) -> None:
        pass

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            if status in RESPONSE_HEADERS:
                response["headers"] = RESPONSE_HEADERS[status]
            prepare_response(response, self.spec, PROBLEM_MIMETYPE)
            self.spec.components.response(status.name, response, lazy=True)


def document_common_errors(api: Api) -> None:
    """Add to every operation of the document the problems any of them can answer: 500 and 503
    (the database busy), and for those reading a body 413 (over the size limit) and 415 (not
    JSON). Called once the blueprint is registered: flask-smorest documents only what each
    operation declares."""
    for item in api.spec._paths.values():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            codes = [500, 503] + ([413, 415] if "requestBody" in operation else [])
            responses = operation.setdefault("responses", {})
            for code in codes:
                responses.setdefault(str(code), api.spec.components.get_ref(
                    "response", http.HTTPStatus(code).name))


class JsonParser(FlaskParser):  # type: ignore[misc]
    """webargs' parser; a body Python's parser refuses otherwise than as bad syntax is unreadable
    JSON (400), not a 500: nested too deep (RecursionError: 3 KB of brackets did it), or an
    integer of more than 4,300 digits (a plain ValueError)."""

    def _raw_load_json(self, req: Any) -> Any:
        try:
            return super()._raw_load_json(req)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise  # webargs answers those
        except (RecursionError, ValueError) as exc:
            raise json.JSONDecodeError(str(exc)[:80], "[", 0) from None  # a doc: not "no body"


class ApiBlueprint(Blueprint):  # type: ignore[misc]
    ARGUMENTS_PARSER = JsonParser()

    def _check_not_modified(self, etag: str) -> None:
        """If-None-Match matched, weakly (RFC 9110: a proxy that compresses answers weakens their
        ETags): 304 with the ETag, no body."""
        if request.method in self.METHODS_CHECKING_NOT_MODIFIED and request.if_none_match.contains_weak(etag):
            response = current_app.response_class(status=304)
            response.set_etag(etag)
            abort_response(response)


def abort_response(response: Any) -> None:
    werkzeug_abort(response)


class IdConverter(IntegerConverter):
    """`<id:name>`: a database id. Out of range is "not found" (404), never "no such route",
    which would turn into a 405 where the path has other methods; documented as 1 to MAX_ID."""

    def __init__(self, map: Any) -> None:  # noqa: A002 - werkzeug's name
        super().__init__(map, min=1, max=MAX_ID)

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= MAX_ID:
            raise NotFound()
        return number


bp = ApiBlueprint("api_v1", __name__, url_prefix="/api/v1",
                  description="Relais JSON API, version 1.")


# ---------------------------------------------------------------- authentication

def bearer_secret() -> str | None:
    """The token sent as `Authorization: Bearer <token>`, if any."""
    scheme, _sep, secret = request.headers.get("Authorization", "").partition(" ")
    secret = secret.strip()
    return secret if scheme.lower() == "bearer" and secret else None


def rate_limit_key() -> str:
    """Who a request counts for: its token (hashed), or its address when it has none or one that
    is not valid (each made-up token would otherwise get a limit of its own: none at all)."""
    found = _token_holder()
    return "token:" + found[1].token_digest if found else "addr:" + (request.remote_addr or "unknown")


def _token_holder() -> tuple[User, ApiToken] | None:
    """The user and token of the request's bearer secret, looked up once per request (the rate
    limiter asks before `authenticate`)."""
    if "api_token_holder" not in g:
        secret = bearer_secret()
        g.api_token_holder = authenticate_token(db_session(), secret) if secret else None
    return cast("tuple[User, ApiToken] | None", g.api_token_holder)


@bp.before_request
def authenticate() -> None:
    """Every API request carries a valid token, or stops here with 401."""
    if bearer_secret() is None:
        abort_problem(401)
    found = _token_holder()
    if found is None:
        abort_problem(401, _("Ce jeton d'API est inconnu, expiré ou révoqué."),
                      headers={"WWW-Authenticate": 'Bearer realm="relais", error="invalid_token"'})
    g.api_user, g.api_token = found


@bp.before_request
def json_bodies_only() -> None:
    """A body sent as anything but JSON is refused (415): webargs read it as no body at all, so a
    PATCH without its Content-Type answered 200 and changed nothing."""
    has_body = bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "")
    if request.method in ("POST", "PUT", "PATCH") and has_body and not request.is_json:
        abort_problem(415)


def actor() -> User:
    """The user the request's token acts for."""
    return cast(User, g.api_user)


def current_token() -> ApiToken:
    return cast(ApiToken, g.api_token)


def access(*roles: Role, write: bool = False) -> Callable[[F], F]:
    """Who may call an operation: users with one of `roles` (any user when none is given);
    operations that change data also need a token with the "write" scope. Documents 401/403/429."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if roles and actor().role not in roles:
                abort_problem(403)
            if write and WRITE not in current_token().scopes:
                abort_problem(403, _("Ce jeton est en lecture seule : créez un jeton avec le droit "
                                     "d'écrire pour cette opération."))
            return view(*args, **kwargs)

        allowed = [r.value for r in roles or tuple(Role)]
        who = ", ".join(allowed) if roles else "every role"
        scope = "write" if write else "read"
        wrapper.__doc__ = ((view.__doc__ or "").rstrip()
                           + f"\n\nAllowed roles: {who}. Token scope: {scope}.")
        documented: Any = wrapper
        for code in (401, 403, 429):
            documented = bp.alt_response(code, response=http.HTTPStatus(code).name)(documented)
        documented._apidoc.setdefault("manual_doc", {}).update(
            {"x-roles": allowed,
             "x-scope": scope})
        return cast(F, documented)

    return decorator


def errors(*codes: int) -> Callable[[F], F]:
    """Document further problem responses of an operation (404, 409, 422…)."""

    def decorator(view: F) -> F:
        documented: Any = view
        for code in codes:
            documented = bp.alt_response(code, response=http.HTTPStatus(code).name)(documented)
        return cast(F, documented)

    return decorator


# ---------------------------------------------------------------- pages

def page(session: Session, query: Any, model: Any, args: dict[str, Any]) -> dict[str, Any]:
    """One page of `query`, ordered by id (stable across pages), with the total count."""
    limit, offset = int(args["limit"]), int(args["offset"])
    total = count_rows(session, query)
    items = list(session.exec(query.order_by(col(model.id)).offset(offset).limit(limit)).all())
    following = offset + len(items)
    return {"items": items, "total": total, "limit": limit, "offset": offset,
            "next_offset": following if following < total else None}


# ---------------------------------------------------------------- errors and caching

@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    return http_error(exc)


@bp.errorhandler(OperationalError)
def _database_down(_exc: OperationalError) -> Any:
    return problem(503)


@bp.after_request
def _private(response: Any) -> Any:
    """Answers depend on the token: caches must not share them, and must revalidate (ETag)."""
    response.headers.setdefault("Cache-Control", "private, no-cache")
    response.vary.add("Authorization")
    return response
