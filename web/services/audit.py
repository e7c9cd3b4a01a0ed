"""The audit trail: one call records who did what to which object."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from models import AuditEvent, User


def record(session: Session, actor: User | None, action: str, object_type: str,
           object_id: int | None, **details: Any) -> None:
    """Add an audit event to the session (committed with the change it describes)."""
    session.add(AuditEvent(actor_id=actor.id if actor else None, action=action,
                           object_type=object_type, object_id=object_id, details=details))
