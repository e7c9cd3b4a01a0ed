"""Personal API tokens: created and revoked by their owner, stored as a SHA-256 digest only.

A token acts as its user: same role, same organisation, the same permission helpers decide.
Scopes only narrow it further ("read" tokens cannot change anything).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlmodel import Session, col, select

from models import ApiToken, User, utcnow
from web.services import ServiceError
from web.services.audit import record

TOKEN_PREFIX = "relais_"
READ, WRITE = "read", "write"
MAX_ACTIVE_TOKENS = 20
MAX_NAME_CHARS = 80
# last_used_at is written at most once a minute per token, not on every request.
TOUCH_EVERY = timedelta(minutes=1)


@dataclass
class CreatedToken:
    token: ApiToken
    secret: str  # shown once to its owner, never stored in clear


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    """'relais_' and 256 random bits, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def is_active(token: ApiToken, now: datetime) -> bool:
    return token.revoked_at is None and (token.expires_at is None or now < token.expires_at)


def tokens_of(session: Session, user: User) -> list[ApiToken]:
    """The user's tokens, newest first (revoked ones included, for the record)."""
    return list(session.exec(select(ApiToken).where(ApiToken.user_id == user.id)
                             .order_by(col(ApiToken.id).desc())).all())


def create_token(session: Session, user: User, name: str, write: bool,
                 valid_days: int | None) -> CreatedToken:
    """A new token for `user` (committed); the secret is returned once."""
    name = name.strip()
    errors: list[object] = []
    if not user.is_active or user.id is None:
        errors.append(_l("Ce compte ne peut pas créer de jeton."))
    if not name:
        errors.append(_l("Donnez un nom au jeton (par exemple, l'outil qui l'utilisera)."))
    if len(name) > MAX_NAME_CHARS:
        errors.append(_l("Le nom est trop long (80 caractères au plus)."))
    if valid_days is not None and not 1 <= valid_days <= 3660:
        errors.append(_l("Durée de validité inconnue."))
    now = utcnow()
    if sum(is_active(t, now) for t in tokens_of(session, user)) >= MAX_ACTIVE_TOKENS:
        errors.append(_l("Vous avez déjà 20 jetons actifs : révoquez-en un d'abord."))
    if errors:
        raise ServiceError(*errors)
    secret = new_secret()
    token = ApiToken(user_id=user.id or 0, name=name, token_digest=token_digest(secret),
                     prefix=secret[:len(TOKEN_PREFIX) + 4], scopes=[READ, WRITE] if write else [READ],
                     expires_at=now + timedelta(days=valid_days) if valid_days else None)
    session.add(token)
    session.flush()
    record(session, user, "api_token.create", "api_token", token.id, name=name, scopes=token.scopes)
    session.commit()
    return CreatedToken(token, secret)


def revoke_token(session: Session, user: User, token: ApiToken) -> None:
    """Stop a token at once (kept, revoked, for the record)."""
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.add(token)
        record(session, user, "api_token.revoke", "api_token", token.id)
        session.commit()


def authenticate_token(session: Session, secret: str) -> tuple[User, ApiToken] | None:
    """The active user and active token holding this secret, or None."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    token = session.exec(select(ApiToken).where(ApiToken.token_digest == token_digest(secret))).first()
    now = utcnow()
    if token is None or not is_active(token, now):
        return None
    user = session.get(User, token.user_id)
    if user is None or not user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
        token.last_used_at = now
        session.add(token)
        session.commit()
    return user, token
