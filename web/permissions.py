"""Every permission decision, in one place. Views call these and never repeat a check.

Each `get_*` helper returns the row the current user may act on, or aborts: 404 when the row does
not exist *or must stay invisible* (an unapproved proposal for a resident or an association),
403 when it exists but belongs to someone else's organisation.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import abort
from flask_login import current_user, login_required
from sqlmodel import Session

from models import Match, MatchStatus, Need, Resident, Role, User

F = TypeVar("F", bound=Callable[..., Any])

VISIBLE_TO_RESIDENT = {MatchStatus.APPROVED, MatchStatus.ACCEPTED, MatchStatus.DECLINED}
VISIBLE_TO_ASSOCIATION = VISIBLE_TO_RESIDENT
STAFF = {Role.ADMIN, Role.SOCIAL_WORKER}


def roles_required(*roles: Role) -> Callable[[F], F]:
    """Logged-in users with one of `roles` only (anonymous → login page, others → 403)."""

    def decorator(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorator


def user() -> User:
    """The logged-in user as the table row."""
    return cast(User, current_user._get_current_object())


def can_manage_resident(actor: User, resident: Resident) -> bool:
    return actor.role == Role.ADMIN or (
        actor.role == Role.SOCIAL_WORKER and actor.organisation_id == resident.organisation_id)


def get_resident(session: Session, actor: User, resident_id: int) -> Resident:
    """A resident the social worker's organisation follows."""
    resident = session.get(Resident, resident_id)
    if resident is None:
        abort(404)
    if not can_manage_resident(actor, resident):
        abort(403)
    return resident


def get_need(session: Session, actor: User, need_id: int, edit: bool = False) -> Need:
    """A need: staff read every need; association members read and edit their own."""
    need = session.get(Need, need_id)
    if need is None:
        abort(404)
    own = actor.organisation_id is not None and actor.organisation_id == need.organisation_id
    if actor.role == Role.ADMIN or own:
        return need
    if actor.role == Role.SOCIAL_WORKER and not edit:
        return need
    abort(403)


def get_match_to_review(session: Session, actor: User, match_id: int) -> Match:
    """A proposal about a resident the social worker's organisation follows."""
    match = session.get(Match, match_id)
    if match is None:
        abort(404)
    resident = session.get(Resident, match.resident_id)
    if resident is None or not can_manage_resident(actor, resident):
        abort(403)
    return match


def get_match_for_resident(session: Session, actor: User, match_id: int) -> Match:
    """An approved opportunity of the logged-in resident (anything else does not exist)."""
    match = session.get(Match, match_id)
    if match is None or match.resident_id != actor.resident_id or \
            match.status not in VISIBLE_TO_RESIDENT:
        abort(404)
    return match
