"""Errors as problem details (RFC 9457, `application/problem+json`), with a French `detail`.

Every error the API returns, whatever raised it (a permission helper's `abort(403)`, webargs'
validation, Flask-Limiter, a routing miss, a service refusing a change), goes through
`http_error` and comes out in the same shape:

    {"type": "about:blank", "title": "Accès refusé", "status": 403,
     "detail": "Votre compte n'a pas accès à cette ressource.", "instance": "/api/v1/…"}

with `errors` added for invalid input (field → messages, in French where marshmallow's usual
messages are known).
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any, NoReturn

from flask import Response, current_app, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.exceptions import abort as werkzeug_abort

from web.services import ServiceError

PROBLEM_MIMETYPE = "application/problem+json"


def _titles() -> dict[int, str]:
    return {
        400: _("Requête mal formée"),
        401: _("Authentification requise"),
        403: _("Accès refusé"),
        404: _("Introuvable"),
        405: _("Méthode non permise"),
        409: _("Conflit"),
        412: _("Précondition non remplie"),
        413: _("Requête trop volumineuse"),
        415: _("Type de contenu non pris en charge"),
        422: _("Données invalides"),
        429: _("Trop de requêtes"),
        500: _("Erreur interne"),
        503: _("Service indisponible"),
    }


def _details() -> dict[int, str]:
    return {
        400: _("La requête est mal formée (JSON illisible ?)."),
        401: _("Authentification requise : envoyez un jeton d'API dans l'en-tête "
               "« Authorization: Bearer <jeton> »."),
        403: _("Votre compte n'a pas accès à cette ressource."),
        404: _("Cette ressource n'existe pas ou plus."),
        405: _("Cette méthode n'est pas possible sur cette adresse."),
        409: _("Cette action n'est plus possible dans l'état actuel de la ressource."),
        412: _("La ressource a changé depuis votre dernière lecture."),
        413: _("Le texte envoyé est trop long."),
        415: _("Envoyez du JSON (Content-Type: application/json)."),
        422: _("Certaines données sont invalides : voyez le détail dans « errors »."),
        429: _("Trop de requêtes pour ce jeton : réessayez dans quelques instants."),
        500: _("Une erreur interne est survenue. Réessayez plus tard."),
        503: _("Le service est momentanément indisponible. Réessayez dans quelques minutes."),
    }


def problem(status: int, detail: str | None = None, *, errors: Any = None,
            headers: dict[str, str] | None = None) -> Response:
    """A problem+json response."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _titles().get(status, phrase),
        "status": status,
        "detail": detail or _details().get(status, phrase),
        "instance": request.path,
    }
    if errors:
        body["errors"] = errors
    response = current_app.response_class(current_app.json.dumps(body), status=status,
                                           mimetype=PROBLEM_MIMETYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    if status == 401:
        response.headers.setdefault("WWW-Authenticate", 'Bearer realm="relais"')
    return response


def abort_problem(status: int, detail: str | None = None, *, errors: Any = None,
                  headers: dict[str, str] | None = None) -> NoReturn:
    """Stop the request with a problem response."""
    werkzeug_abort(problem(status, detail, errors=errors, headers=headers))


def abort_service_error(exc: ServiceError, status: int = 422) -> NoReturn:
    """A change a service refused: its French messages become the detail."""
    abort_problem(status, " ".join(exc.messages), errors={"service": exc.messages})


def http_error(exc: HTTPException) -> Response:
    """Every HTTP error of the API, as problem+json."""
    if exc.response is not None:  # built by abort_problem (or a 304 with its ETag)
        return exc.response  # type: ignore[return-value]
    code = exc.code or 500
    if code == 304:
        return current_app.response_class(status=304)
    headers: dict[str, str] = {}
    errors = None
    detail = None
    data = getattr(exc, "data", None)  # webargs' validation errors and headers
    if isinstance(data, dict):
        errors = data.get("errors") or data.get("messages")
        headers.update(data.get("headers") or {})
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        headers["Allow"] = ", ".join(exc.valid_methods)
    if code == 400 and errors:
        detail = _("Le corps de la requête n'est pas du JSON valide.")
    return problem(code, detail, errors=french(errors), headers=headers)


# marshmallow's and webargs' usual messages, in French.
_MESSAGES = {
    "Missing data for required field.": "Champ obligatoire.",
    "Field may not be null.": "Ce champ ne peut pas être vide (null).",
    "Unknown field.": "Champ inconnu.",
    "Not a valid integer.": "Nombre entier attendu.",
    "Not a valid number.": "Nombre attendu.",
    "Not a valid string.": "Texte attendu.",
    "Not a valid boolean.": "Booléen attendu (true ou false).",
    "Not a valid list.": "Liste attendue.",
    "Not a valid datetime.": "Date et heure attendues (ISO 8601).",
    "Not a valid date.": "Date attendue (AAAA-MM-JJ).",
    "Invalid input type.": "Type de donnée invalide.",
    "Invalid value.": "Valeur invalide.",
    "Invalid JSON body.": "Le corps de la requête n'est pas du JSON valide.",
    "Not a valid datetime with timezone.": "Date et heure attendues (ISO 8601).",
}
_PATTERNS = [
    (re.compile(r"^Must be one of: (.*)\.$"), "Valeur inconnue. Valeurs possibles : {0}."),
    (re.compile(r"^Length must be between (\d+) and (\d+)\.$"),
     "La longueur doit être comprise entre {0} et {1}."),
    (re.compile(r"^Shorter than minimum length (\d+)\.$"), "Trop court ({0} caractère(s) au moins)."),
    (re.compile(r"^Longer than maximum length (\d+)\.$"), "Trop long ({0} caractères au plus)."),
    (re.compile(r"^Must be greater than or equal to (\S+) and less than or equal to (\S+)\.$"),
     "La valeur doit être comprise entre {0} et {1}."),
    (re.compile(r"^Must be greater than or equal to (\S+)\.$"), "La valeur doit être au moins {0}."),
    (re.compile(r"^Must be less than or equal to (\S+)\.$"), "La valeur doit être au plus {0}."),
]


def french(errors: Any) -> Any:
    """marshmallow's messages translated where known, whatever the nesting."""
    if isinstance(errors, dict):
        return {str(key): french(value) for key, value in errors.items()}
    if isinstance(errors, list | tuple):
        return [french(value) for value in errors]
    if isinstance(errors, str):
        if errors in _MESSAGES:
            return _MESSAGES[errors]
        for pattern, template in _PATTERNS:
            found = pattern.match(errors)
            if found:
                return template.format(*found.groups())
    return errors
