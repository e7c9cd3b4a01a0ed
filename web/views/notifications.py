"""In-app notifications: the header's counter, the list, marking them read."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user, login_required
from sqlalchemy.exc import SQLAlchemyError

from web.extensions import db_session
from web.forms import ActionForm
from web.permissions import get_notification, user
from web.services.notifications import mark_read, recent, unread_count

bp = Blueprint("notifications", __name__, url_prefix="/notifications")


@bp.app_context_processor
def _counter() -> dict[str, Any]:
    """`unread_notifications()` for the header: counted only when a page asks for it."""
    def unread_notifications() -> int:
        if not current_user.is_authenticated:
            return 0
        try:
            return unread_count(db_session(), user().id or 0)
        except SQLAlchemyError:  # the 503 page renders this header too, with the database down
            return 0

    return {"unread_notifications": unread_notifications}


@bp.get("/")
@login_required
def index() -> Any:
    return render_template("notifications/list.html", items=recent(db_session(), user().id or 0),
                           action=ActionForm())


@bp.post("/lues")
@login_required
def read_all() -> Any:
    if ActionForm().validate_on_submit():
        mark_read(db_session(), user())
    return redirect(url_for("notifications.index"))


@bp.post("/<id:notification_id>/ouvrir")
@login_required
def open_one(notification_id: int) -> Any:
    """Mark one read and go where it points (only ever a path inside Relais)."""
    session = db_session()
    item = get_notification(session, user(), notification_id)
    if not ActionForm().validate_on_submit():
        return redirect(url_for("notifications.index"))
    mark_read(session, user(), item)
    link = item.link if item.link.startswith("/") and not item.link.startswith("//") else ""
    return redirect(link or url_for("notifications.index"))
