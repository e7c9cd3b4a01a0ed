"""The audit trail: one call records who did what to which object.

Events are append-only (models/tables.py refuses updates and deletes), so they outlive an erasure.
That is why **details never hold free text about a person** (declarations, notes, comments,
messages, names): only ids, codes, enumerations, field names, dates, and the before/after of
structured fields (languages, availability, wants, the id of the declaration version). An erasure
replaces those before/after values, in the events about the person, by the names of the fields
that changed (privacy.erase_resident: the one writer allowed, through SQL): a person's languages
can tell their origin. After it, the events that name the erased resident's id point at nothing:
the id is not personal data once the rows behind it are gone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlmodel import Session, col, select

from models import AuditEvent, User, utcnow
from web.services.queries import REPOST_MINUTES, numbered_page

JOURNAL_PAGE_SIZE = 50


def record(session: Session, actor: User | None, action: str, object_type: str,
           object_id: int | None, **details: Any) -> None:
    """Add an audit event to the session (committed with the change it describes)."""
    session.add(AuditEvent(actor_id=actor.id if actor else None, action=action,
                           object_type=object_type, object_id=object_id, details=details))


def done_just_now(session: Session, actor: User, action: str, object_type: str, object_id: int) -> bool:
    """Whether the journal says `actor` did `action` to the object within REPOST_MINUTES: a
    double click on a change that leaves nothing to find again (an erasure, an account whose
    creation refuses its address the second time)."""
    since = utcnow() - timedelta(minutes=REPOST_MINUTES)
    return session.exec(select(AuditEvent.id).where(
        AuditEvent.action == action, AuditEvent.object_type == object_type,
        AuditEvent.object_id == object_id, AuditEvent.actor_id == actor.id,
        col(AuditEvent.at) >= since)).first() is not None


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{field: {"before": …, "after": …}} for the fields whose value changed."""
    return {name: {"before": before.get(name), "after": after.get(name)}
            for name in dict.fromkeys([*before, *after]) if before.get(name) != after.get(name)}


@dataclass
class JournalPage:
    events: list[AuditEvent]
    actors: dict[int, User]
    page: int
    pages: int
    total: int


def journal(session: Session, *, object_type: str = "", object_id: int | None = None,
            actor_id: int | None = None, action: str = "", page: int = 1,
            per_page: int = JOURNAL_PAGE_SIZE) -> JournalPage:
    """One page of the journal, newest first, filtered by object, actor or action prefix."""
    conditions: list[Any] = []
    if object_type:
        conditions.append(col(AuditEvent.object_type) == object_type)
    if object_id is not None:
        conditions.append(col(AuditEvent.object_id) == object_id)
    if actor_id is not None:
        conditions.append(col(AuditEvent.actor_id) == actor_id)
    if action:
        conditions.append(col(AuditEvent.action).startswith(action))
    newest_first = select(AuditEvent).where(*conditions).order_by(col(AuditEvent.id).desc())
    found = numbered_page(session, newest_first, page, per_page)
    return JournalPage(found.items, actors_of(session, found.items), found.page, found.pages, found.total)


def actors_of(session: Session, events: list[AuditEvent]) -> dict[int, User]:
    """The users behind `events`, by id."""
    ids = {e.actor_id for e in events if e.actor_id is not None}
    return {u.id or 0: u for u in session.exec(select(User).where(col(User.id).in_(ids))).all()}
