"""Administrators: the audit journal (who did what, when, before and after)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from models import Role
from web.extensions import db_session
from web.permissions import roles_required
from web.services.audit import journal as read_journal
from web.services.queries import row_id

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _int_arg(name: str) -> int | None:
    return row_id(request.args.get(name))


@bp.get("/journal")
@roles_required(Role.ADMIN)
def journal() -> Any:
    """The append-only journal, newest first, filtered by object, actor or action; 50 a page."""
    object_type = request.args.get("object_type", "").strip()[:32]
    action = request.args.get("action", "").strip()[:64]
    object_id, actor_id = _int_arg("object_id"), _int_arg("actor_id")
    page = read_journal(db_session(), object_type=object_type, object_id=object_id,
                        actor_id=actor_id, action=action, page=_int_arg("page") or 1)
    filters: dict[str, str | int | None] = {"object_type": object_type, "object_id": object_id,
                                            "actor_id": actor_id, "action": action}
    query = {k: v for k, v in filters.items() if v not in ("", None)}
    return render_template("admin/journal.html", page=page, filters=filters, query=query)
