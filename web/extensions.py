"""Extensions, created once and bound to the application in the factory."""

from __future__ import annotations

from contextlib import ExitStack

from flask import g
from flask import session as flask_session
from flask_babel import Babel
from flask_login import LoginManager
from flask_wtf import CSRFProtect
from sqlmodel import Session

from models import ClosedSession, Database, User
from web.services.matching import MatchingService

db = Database()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
matching = MatchingService()


def db_session() -> Session:
    """The session of the current request (opened on first use, closed at teardown)."""
    if "db_session" not in g:
        g.db_exit = ExitStack()
        g.db_session = g.db_exit.enter_context(db.session())
    session: Session = g.db_session
    return session


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The logged-in user for this request ("id:epoch", see User.get_id): inactive accounts,
    sessions opened before the account's password, code or activation last changed, and sessions
    ended by a logout (a copy of the cookie kept elsewhere) are out."""
    number, _sep, epoch = user_id.partition(":")
    try:
        account = db_session().get(User, int(number))
        opened = int(epoch or 0)
    except ValueError:
        return None
    if account is None or not account.is_active or opened != account.session_epoch:
        return None
    sid = flask_session.get("sid")
    if sid is None or db_session().get(ClosedSession, sid) is not None:
        # Logged out (or opened before sessions had an id, which no logout could end): the
        # session is emptied too, else each refused request sent back a freshly signed copy
        # still naming the person, logged in again once the closed id was forgotten.
        fresh_session()
        return None
    return account


def fresh_session() -> None:
    """Empty the browser's session (a login, a logout, a refused one), keeping only the interface
    language chosen: nothing else from before survives (no session fixation)."""
    lang = flask_session.get("lang")
    flask_session.clear()
    if lang is not None:
        flask_session["lang"] = lang


def close_db_session(_exc: BaseException | None = None) -> None:
    stack = g.pop("db_exit", None)
    g.pop("db_session", None)
    if stack is not None:
        stack.close()
