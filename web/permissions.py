"""Every permission decision, in one place. Views call these and never repeat a check.

Each `get_*` helper returns the row the current user may act on, or aborts: 404 when the row does
not exist *or must stay invisible* (an unapproved proposal for a resident or an association),
403 when it exists but belongs to someone else's organisation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import abort
from flask_login import current_user, login_required
from sqlmodel import Session

from models import (
    BackgroundJob,
    Match,
    MatchStatus,
    Need,
    Notification,
    Resident,
    ResidentRequest,
    Role,
    User,
    ValidationStatus,
)

F = TypeVar("F", bound=Callable[..., Any])
Submission = TypeVar("Submission", Resident, Need)

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
    """A resident the social worker's organisation follows (another centre's does not exist for
    the caller: a 403 told which numbers are people, and which were erased)."""
    resident = session.get(Resident, resident_id)
    if resident is None or not can_manage_resident(actor, resident):
        abort(404)
    return resident


def get_own_resident(session: Session, actor: User) -> Resident:
    """The profile behind a resident's login (their own data, and nobody else's)."""
    resident = session.get(Resident, actor.resident_id) if actor.resident_id is not None else None
    if resident is None or actor.role != Role.RESIDENT:
        abort(404)
    return resident


def get_resident_request(session: Session, actor: User, resident: Resident,
                         request_id: int) -> ResidentRequest:
    """A request of `resident` (already checked with get_resident) to their social worker."""
    request = session.get(ResidentRequest, request_id)
    if request is None or request.resident_id != resident.id:
        abort(404)
    return request


def get_job(session: Session, actor: User, job_id: int) -> BackgroundJob:
    """A background job (an import and its uploaded file, a reindex): admins follow every job,
    social workers their organisation's imports."""
    job = session.get(BackgroundJob, job_id)
    if job is None:
        abort(404)
    if actor.role == Role.ADMIN:
        return job
    if actor.role == Role.SOCIAL_WORKER and job.kind != "reindex" \
            and actor.organisation_id is not None and actor.organisation_id == job.organisation_id:
        return job
    abort(403)


def get_need(session: Session, actor: User, need_id: int, edit: bool = False) -> Need:
    """A need: staff read every validated need, and those their centre's habitants-relais recorded
    (the centre's social workers validate them: nobody else reads their words before, not even an
    association member's account in the centre); association members read and edit their own."""
    need = session.get(Need, need_id)
    if need is None:
        abort(404)
    # A habitant-relais records needs for their centre but never manages the centre's needs.
    validated = need.validation_status == ValidationStatus.VALIDATED
    own = actor.organisation_id is not None and actor.organisation_id == need.organisation_id \
        and (actor.role == Role.SOCIAL_WORKER or actor.role == Role.ASSOCIATION_MEMBER and validated)
    if actor.role == Role.ADMIN or own:
        return need
    if actor.role == Role.SOCIAL_WORKER and not edit and validated:
        return need
    abort(403)


def get_match_to_review(session: Session, actor: User, match_id: int) -> Match:
    """A proposal about a resident the social worker's organisation follows (others do not exist
    for the caller)."""
    match = session.get(Match, match_id)
    resident = session.get(Resident, match.resident_id) if match is not None else None
    if match is None or resident is None or not can_manage_resident(actor, resident):
        abort(404)
    return match


def get_matches_to_review(session: Session, actor: User, match_ids: Iterable[int]) -> list[Match]:
    """Several proposals at once (bulk review): all of them or none (404/403 on the first bad id)."""
    return [get_match_to_review(session, actor, match_id) for match_id in dict.fromkeys(match_ids)]


def can_validate(actor: User, organisation_id: int) -> bool:
    """Social workers validate what the habitants-relais of their own organisation recorded."""
    return actor.role == Role.ADMIN or (
        actor.role == Role.SOCIAL_WORKER and actor.organisation_id == organisation_id)


def get_submission_to_validate(session: Session, actor: User, model: type[Submission],
                               row_id: int) -> Submission:
    """A profile or a need of the social worker's organisation (to validate or send back; others
    do not exist for the caller)."""
    row = session.get(model, row_id)
    if row is None or not can_validate(actor, row.organisation_id):
        abort(404)
    return row


def get_own_submission(session: Session, actor: User, model: type[Submission],
                       row_id: int) -> Submission:
    """A profile or a need the logged-in habitant-relais recorded: nobody else's, ever."""
    row = session.get(model, row_id)
    if row is None or actor.role != Role.HABITANT_RELAIS or row.created_by_id != actor.id \
            or row.organisation_id != actor.organisation_id:
        abort(404)
    return row


def get_match_for_resident(session: Session, actor: User, match_id: int) -> Match:
    """An approved opportunity of the logged-in resident (anything else does not exist)."""
    match = session.get(Match, match_id)
    if match is None or match.resident_id != actor.resident_id or \
            match.status not in VISIBLE_TO_RESIDENT:
        abort(404)
    return match


FOLLOWUP_ROLES = {Role.ADMIN, Role.SOCIAL_WORKER, Role.ASSOCIATION_MEMBER}
IMPACT_ROLES = (Role.ADMIN, Role.SOCIAL_WORKER, Role.ASSOCIATION_MEMBER)  # aggregated figures only


def get_match_for_followup(session: Session, actor: User, match_id: int) -> Match:
    """A proposal the association that posted the need, or the resident's worker, follows up
    (contact after a yes, outcome): 404 while it is not approved, and for anybody else (a 403
    told every association when other organisations' proposals were approved)."""
    match = session.get(Match, match_id)
    if match is None or match.status not in VISIBLE_TO_ASSOCIATION:
        abort(404)
    need, resident = session.get(Need, match.need_id), session.get(Resident, match.resident_id)
    if need is None or resident is None:
        abort(404)
    own_need = actor.organisation_id is not None and actor.organisation_id == need.organisation_id
    if actor.role not in FOLLOWUP_ROLES or not (own_need or can_manage_resident(actor, resident)):
        abort(404)
    return match


def get_notification(session: Session, actor: User, notification_id: int) -> Notification:
    """One of the logged-in user's notifications (other people's do not exist)."""
    notification = session.get(Notification, notification_id)
    if notification is None or notification.user_id != actor.id:
        abort(404)
    return notification
