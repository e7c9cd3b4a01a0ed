"""The interface language: French by default, English on request (a form in every page's footer)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, redirect, request, url_for
from flask import session as flask_session
from werkzeug.exceptions import HTTPException

from web.forms import language_label
from web.views import local_path

bp = Blueprint("language", __name__)

LANGUAGES = {"fr": "Français", "en": "English"}  # each name in its own language: never translated
SESSION_KEY = "lang"


def chosen_language() -> str | None:
    """The language the person picked with the switch in this session, if any."""
    lang = flask_session.get(SESSION_KEY)
    return lang if lang in LANGUAGES else None


@bp.app_context_processor
def language_switch() -> dict[str, Any]:
    """What the footer's switch needs: the languages, and where to come back after choosing."""
    return {"languages": LANGUAGES, "language_next": _here()}


def _here() -> str:
    """The page to show again in the chosen language: this one, or, when it answered a form sent
    to an address that only takes forms (a text refused, shown again), the page the form was on."""
    if request.method == "GET":
        return request.full_path.rstrip("?")
    try:
        current_app.url_map.bind("relais").match(request.path, method="GET")
        return request.path
    except HTTPException:
        referrer = urlsplit(request.referrer or "")
        return local_path(referrer.path + (f"?{referrer.query}" if referrer.query else "")) or "/"


@bp.app_template_filter("language_names")
def language_names(codes: list[str] | None) -> str:
    """The languages a person speaks, by name in the interface language ("fr, tr" → "French, Turkish")."""
    return ", ".join(language_label(code) for code in codes or [])


@bp.post("/langue")
def choose() -> Any:
    """Store the choice in the session and go back to the page the person was on."""
    lang = request.form.get("lang", "")
    if lang in LANGUAGES:
        flask_session[SESSION_KEY] = lang
    return redirect(local_path(request.form.get("next", "")) or url_for("auth.index"))
