"""The interface language: French by default, English on request (a form in every page's footer)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, request, url_for
from flask import session as flask_session

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
    here = request.full_path.rstrip("?") if request.method == "GET" else request.path
    return {"languages": LANGUAGES, "language_next": here}


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
