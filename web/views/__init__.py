"""Blueprints, one per audience."""

from __future__ import annotations

import hmac
import json
import secrets
from typing import Any
from urllib.parse import urlsplit

from flask import Response, current_app, flash
from flask import session as flask_session
from flask_babel import gettext as _
from flask_wtf import FlaskForm

from models import Organisation
from web.extensions import db_session
from web.permissions import user
from web.services import ServiceError


def json_download(data: Any, filename: str) -> Response:
    """`data` as a JSON file the browser saves (never cached: it holds personal data)."""
    response = current_app.response_class(json.dumps(data, ensure_ascii=False, indent=2),
                                          mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return never_stored(response)


def stash_secret(key: str, secret: str, **about: Any) -> None:
    """Keep a secret shown once (a resident's access code, a temporary password, an API token)
    across a post/redirect/get in the session cookie, which is signed, not encrypted: it goes
    sealed (`_seal`), so the browser never holds it in clear, even if the page that shows it never
    loads. `about` (ids) goes as it is."""
    nonce = secrets.token_hex(16)
    flask_session[key] = {**about, "nonce": nonce, "sealed": _seal(key, nonce, secret.encode()).hex()}


def take_secret(key: str) -> tuple[dict[str, Any], str] | None:
    """The secret `stash_secret` kept under `key`, with what was said about it, once."""
    kept = flask_session.pop(key, None)
    if not isinstance(kept, dict) or "sealed" not in kept or "nonce" not in kept:
        return None
    secret = _seal(key, str(kept["nonce"]), bytes.fromhex(str(kept["sealed"]))).decode()
    return {k: v for k, v in kept.items() if k not in ("nonce", "sealed")}, secret


def _seal(purpose: str, nonce: str, data: bytes) -> bytes:
    """`data` XOR a key stream drawn from the app's secret and a fresh nonce (HMAC-SHA256 as the
    pseudo-random function, as in a stream cipher's counter mode): the same call opens it."""
    key = str(current_app.secret_key).encode()
    stream = b"".join(hmac.digest(key, f"{purpose}:{nonce}:{block}".encode(), "sha256")
                      for block in range(len(data) // 32 + 1))
    return bytes(a ^ b for a, b in zip(data, stream, strict=False))


def local_path(target: str | None) -> str | None:
    """`target` when it is a path of this site (the page asked before logging in, the page a
    language was chosen on), else None: never another host (no open redirect). Browsers drop
    tabs and line breaks from an address, so "/\t/evil.example" reaches them as
    "//evil.example": any control character or space refuses the target, as a backslash does."""
    if not target or not target.startswith("/") or "\\" in target:
        return None
    if any(ch <= " " or ch == "\x7f" for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return None
    return target


def never_stored(response: Response) -> Response:
    """`response` kept in no cache nor the browser's history: personal data, one-time secrets."""
    response.headers["Cache-Control"] = "no-store"
    return response


def show_refusal(form: FlaskForm, exc: ServiceError) -> None:
    """A service's refusal on the form's page: each message about a field beside it (with the
    field's aria attributes, see _field.html), the others flashed at the top."""
    placed: set[str] = set()
    for name, messages in exc.fields.items():
        if name in form:
            form[name].errors = [*form[name].errors, *messages]
            placed.update(messages)
    if placed:
        flash(_("Le formulaire n'est pas complet : voyez les messages sous les champs."), "error")
    for message in exc.messages:
        if message not in placed:
            flash(message, "error")


def say_sensitive() -> None:
    """A text held back for sensitive words: said at the top of the page, where a phone shows the
    form again (the warning itself sits under the text, screens further down)."""
    flash(_("Rien n'est enregistré : le texte semble contenir des informations sensibles. Lisez "
            "l'avertissement sous le texte, puis reformulez ou confirmez."), "error")


def open_on_own_territory(form: Any) -> None:
    """A new profile or need form opens on the user's centre's neighbourhood, not the list's first
    (another village's: on a phone one rarely looks). A form sent keeps what was chosen."""
    organisation = user().organisation_id
    centre = db_session().get(Organisation, organisation) if organisation else None
    if not form.is_submitted() and centre is not None and centre.territory_id:
        form.territory_id.data = centre.territory_id
