"""The Relais web application: `create_app()` builds it; nothing runs at import time."""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from flask import (
    Flask,
    Request,
    current_app,
    flash,
    g,
    has_request_context,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale, to_user_timezone
from flask_babel import gettext as _
from flask_login import current_user, login_url
from flask_wtf.csrf import CSRFError
from markupsafe import Markup, escape
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.utils import cached_property

from matcher.requirements import check_requirements
from web.catalogs import compile_catalogs
from web.config import Config
from web.extensions import babel, close_db_session, csrf, db, db_session, login_manager, matching
from web.forms import (
    NEED_STATUS_LABELS,
    SENSITIVE_LABELS,
    answer_label,
    closeness_label,
    consent_method_label,
    journal_label,
    reason_label,
    slot_labels,
    status_label,
    want_labels,
)
from web.services.notifications import shown_text
from web.services.validation import can_correct
from web.views.language import chosen_language


def create_app(config: Config | None = None, test_config: dict[str, Any] | None = None) -> Flask:
    """Build the application from `config` (default: the environment)."""
    config = config or Config()
    check_requirements(config.embedder)  # refuse to start, in French and English, without a model
    app = Flask(__name__, instance_path=str(config.instance_dir), instance_relative_config=True)
    app.request_class = FormRequest
    app.config.update(config.flask_mapping())
    app.config["RELAIS"] = config
    if test_config:
        app.config.update(test_config)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    if config.proxy_hops > 0:  # behind them, every visitor would otherwise share the proxy's address
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config.proxy_hops,  # type: ignore[method-assign]
                                x_proto=config.proxy_hops)
    db.configure(config.database_url)
    csrf.init_app(app)
    compile_catalogs(Path(app.root_path) / "translations")
    babel.init_app(app, locale_selector=_select_locale)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    login_manager.unauthorized_handler(_to_login)
    app.teardown_appcontext(close_db_session)

    matching.configure_from(config)
    with app.app_context():
        matching.load_or_rebuild(db_session())

    from web.api import init_api
    from web.api.core import IdConverter
    from web.views import (
        admin,
        association,
        auth,
        followup,
        impact,
        imports,
        language,
        notifications,
        relais,
        resident,
        worker,
    )

    # `<id:...>` in every address: a number out of the databases' integer range is "not found",
    # where `<int:...>` handed 2**64 to the database (a 500).
    app.url_map.converters["id"] = IdConverter
    app.register_blueprint(auth.bp)
    app.register_blueprint(language.bp)
    app.register_blueprint(worker.bp)
    app.register_blueprint(association.bp)
    app.register_blueprint(resident.bp)
    app.register_blueprint(relais.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(followup.bp)  # contact after a yes, outcomes
    app.register_blueprint(impact.bp)
    app.register_blueprint(notifications.bp)
    app.register_blueprint(imports.bp)  # CSV import/export, background jobs
    init_api(app)  # /api/v1 (JSON API, OpenAPI document, docs page) and /compte/jetons
    _limit_logins(app)
    app.add_template_filter(status_label, "status_label")
    app.add_template_filter(answer_label, "answer_label")
    app.add_template_filter(journal_label, "journal_label")
    app.add_template_filter(closeness_label, "closeness_label")
    app.add_template_filter(reason_label, "reason_label")
    app.add_template_filter(consent_method_label, "consent_method_label")
    app.add_template_filter(slot_labels, "slot_labels")
    app.add_template_filter(want_labels, "want_labels")
    app.add_template_filter(local_time, "local_time")
    app.add_template_filter(stored_day, "stored_day")
    app.add_template_filter(quoted, "quoted")
    app.add_template_filter(shown_text, "notification_text")
    app.add_template_global(can_correct, "can_correct")
    app.add_template_global(typed_in_french, "typed_in_french")  # macros imported without context too
    app.context_processor(lambda: {"get_locale": get_locale, "sensitive_labels": SENSITIVE_LABELS,
                                   "need_status_labels": NEED_STATUS_LABELS})
    _register_health(app)
    _register_errors(app)
    app.after_request(_security_headers)
    return app


def stored_day(value: str | None, pattern: str = "%d/%m/%Y") -> str:
    """A day or an instant as a data copy stores it (ISO 8601: « 2026-12-06 »,
    « 2026-12-06T21:54:00+00:00 ») as people read it: 06/12/2026, on the site's clock."""
    if not value:
        return "—"
    if len(value) == 10:
        return date.fromisoformat(value).strftime(pattern)
    moment = datetime.fromisoformat(value)
    return local_time(moment if moment.tzinfo else moment.replace(tzinfo=UTC), pattern)


def quoted(value: str) -> Markup:
    """What someone wrote, between the reader's quotation marks (« … » in French, “…” in English:
    the English pages showed French guillemets), escaped."""
    return Markup(_("« %(text)s »", text=escape(value)))


def typed_in_french() -> Markup:
    """` lang="fr"` on what people typed (a need, a declaration, a presentation) when the page is
    in another language: a screen reader read the French with an English voice (WCAG 3.1.2)."""
    return Markup("") if str(get_locale()) == "fr" else Markup(' lang="fr"')


def local_time(moment: datetime, pattern: str = "%d/%m/%Y") -> str:
    """A stored instant (UTC) as the site's clock shows it (BABEL_DEFAULT_TIMEZONE, Paris): a
    notification written at 17:54 in Paris said 16:54, and after 23:00 the day before."""
    return to_user_timezone(moment).strftime(pattern)


def _limit_logins(app: Flask) -> None:
    """Throttle failed password and access-code attempts per address (RELAIS_LOGIN_RATE_LIMIT).

    Residents' codes are short by design (read aloud, typed on phones): guessing them must be
    slow. Staff accounts are also locked after five wrong passwords (services/accounts.py).
    """
    app.config.setdefault("RELAIS_LOGIN_RATE_LIMIT",
                          os.environ.get("RELAIS_LOGIN_RATE_LIMIT", "").strip()
                          or "20 per minute; 200 per hour")
    limiter = app.extensions["relais_limiter"]
    for endpoint in ("auth.login", "auth.code_login"):
        app.view_functions[endpoint] = limiter.limit(
            lambda: str(app.config["RELAIS_LOGIN_RATE_LIMIT"]), methods=["POST"],
            key_func=lambda: "login:" + (request.remote_addr or "unknown"),
            # Only failures count: a workshop of residents logging in on the centre's wifi (one
            # address) must not lock itself out; a login that works answers with a redirect.
            deduct_when=lambda response: response.status_code != 302,
        )(app.view_functions[endpoint])


def _to_login() -> Any:
    """A page asked without a session (it ended, or a bookmark): residents' pages (/moi/…) lead
    to the access-code page, the others to the staff login, which comes back to them."""
    if request.path == "/moi" or request.path.startswith("/moi/"):
        return redirect(url_for("auth.code_login"))
    return redirect(login_url("auth.login", next_url=request.full_path.rstrip("?")))


class FormRequest(Request):
    """Form fields and query strings never carry a NUL character: nobody types one, PostgreSQL
    refuses them in text (a filter of the journal or of the residents' list was a 500), and SQLite
    would keep them. (Invalid UTF-8 already arrives as U+FFFD; the API refuses both.)"""

    @cached_property
    def args(self) -> Any:
        args = super().args
        if any("\x00" in key + value for key, value in args.items(multi=True)):
            return self.parameter_storage_class([(key.replace("\x00", ""), value.replace("\x00", ""))
                                                 for key, value in args.items(multi=True)])
        return args

    def _load_form_data(self) -> None:
        super()._load_form_data()
        form = self.__dict__.get("form")
        if form and any("\x00" in value for _key, value in form.items(multi=True)):
            self.__dict__["form"] = self.parameter_storage_class(
                [(key, value.replace("\x00", "")) for key, value in form.items(multi=True)])


def _select_locale() -> str:
    """The person's choice (footer switch), else their browser's languages, else French.

    Only languages with a compiled catalogue are offered (French, the msgids, always is).
    """
    if not has_request_context():  # background jobs (RQ work horse, inline thread) speak French
        return "fr"
    if request.blueprint == "api_v1":  # documented as French; it never reads the session cookie
        return "fr"
    available = [str(locale) for locale in babel.list_translations()]
    chosen = chosen_language()
    if chosen in available:
        return chosen
    # The browser's first language that Relais speaks, by its primary tag: Werkzeug's best_match
    # prefers an exact "en" at q=0.8 to "fr-FR" at q=1 (Chromium in France sends
    # "fr-FR,en-US;q=0.9,en;q=0.8"), which gave French browsers the English interface.
    for value, quality in request.accept_languages:  # best first
        primary = value.replace("_", "-").split("-")[0].lower()
        if quality > 0 and primary in available:
            return primary
    return "fr"


def _register_health(app: Flask) -> None:
    @app.get("/healthz")
    def healthz() -> Any:
        """Liveness and readiness: the database answers and the index is loaded."""
        try:
            db_session().exec(text("SELECT 1"))  # type: ignore[call-overload]
        except OperationalError:
            return jsonify(status="error", database="unavailable"), 503
        health: dict[str, Any] = {"status": "ok", "database": "ok", "index_generation": matching.generation}
        # How many people are indexed is for the machine's own checks (scripts/crash_test.py), not
        # for anyone on the Internet: the impact page hides counts under 5, this gave the exact one.
        if _from_this_machine():
            health.update(residents_indexed=len(matching.collections.get("residents", [])),
                          needs_indexed=len(matching.collections.get("needs", [])))
        return jsonify(health)


def _from_this_machine() -> bool:
    """A request from the loopback address that no proxy passed on (a proxy on the same machine
    must say whom it forwards for: X-Forwarded-For, Forwarded or X-Real-IP)."""
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack bind: ::ffff:127.0.0.1
    return address.is_loopback and not any(
        name in request.headers for name in ("X-Forwarded-For", "Forwarded", "X-Real-IP"))


def _minutes_to_wait() -> int:
    """Minutes until the limit this request broke lets the next one through (1 if unknown)."""
    limiter = current_app.extensions.get("relais_limiter")
    broken = limiter.current_limit if limiter is not None else None
    if broken is None:
        return 1
    return max(1, round((broken.reset_at - time.time()) / 60))


def _register_errors(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        messages = {
            403: _("Vous n'avez pas accès à cette page."),
            404: _("Cette page n'existe pas ou plus."),
            405: _("Cette action n'est pas possible ici."),
            413: _("Le texte envoyé est trop long."),
            429: _("Trop d'essais en peu de temps. Attendez une minute avant de réessayer."),
            500: _("Une erreur est survenue de notre côté. Réessayez dans un moment ; si cela "
                   "recommence, prévenez votre centre social."),
        }
        # Any other code (400 above all): werkzeug's description is English.
        message = messages.get(exc.code or 500, _("Cette demande n'a pas pu être traitée. Revenez en "
                                                  "arrière, rechargez la page et recommencez."))
        if exc.code == 429 and (wait := _minutes_to_wait()) > 1:  # the hour's limit, not the minute's
            message = _("Trop d'essais en peu de temps. Attendez %(n)d minutes avant de réessayer.", n=wait)
        if request.accept_mimetypes.best == "application/json":
            return jsonify(status=exc.code, detail=message), exc.code
        if exc.code == 413 and request.endpoint == "imports.upload":  # a file, not a text: its form again
            flash(_("Le fichier dépasse %(mb)d Mo : coupez-le en plusieurs fichiers et importez-les l'un "
                    "après l'autre.", mb=app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)), "error")
            return redirect(url_for("imports.upload"))
        return render_template("error.html", code=exc.code, message=message), exc.code

    @app.errorhandler(CSRFError)
    def form_expired(_exc: CSRFError) -> Any:
        """A form sent without its token, or after it expired (a page left open on a phone for
        hours): a French page, not Flask-WTF's English description."""
        message = _("Cette page était ouverte depuis trop longtemps : rien n'a été envoyé. "
                    "Revenez en arrière, rechargez la page et recommencez.")
        again = None
        if not current_user.is_authenticated and (request.path == "/moi" or request.path.startswith("/moi/")):
            # The session ended: reloading leads to a login, which the page says.
            message = _("Votre connexion a pris fin : rien n'a été envoyé. Tapez à nouveau votre code, "
                        "puis recommencez.")
            again = (url_for("auth.code_login"), _("Taper mon code"))
        elif not current_user.is_authenticated:
            message = _("Votre session a pris fin : rien n'a été envoyé. Reconnectez-vous, puis recommencez.")
            again = (login_url("auth.login", next_url=request.path), _("Se connecter"))
        if request.accept_mimetypes.best == "application/json":
            return jsonify(status=400, detail=message), 400
        return render_template("error.html", code=400, message=message, again=again), 400

    @app.errorhandler(OperationalError)
    def database_down(_exc: OperationalError) -> Any:
        # The page must not ask the database again (who is logged in, what is unread): the failed
        # session is closed and the page is drawn for an anonymous visitor.
        close_db_session()
        g._login_user = login_manager.anonymous_user()
        message = _("Le service est momentanément indisponible. Réessayez dans quelques minutes.")
        if request.accept_mimetypes.best == "application/json":
            return jsonify(status=503, detail=message), 503
        return render_template("error.html", code=503, message=message), 503


def _security_headers(response: Any) -> Any:
    # Which process answered: to follow a request across gunicorn workers (and to test that a
    # change written through one worker is served by the others).
    response.headers["X-Relais-Worker"] = str(os.getpid())
    if response.mimetype == "text/html" and request.endpoint != "static" and current_user.is_authenticated:
        # A logged-in page shows people's data: kept by no cache, nor by the browser's history
        # on a phone or a centre's shared computer once its user has logged out.
        response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    )
    return response
