"""Accounts: password logins for staff, short access codes for residents."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select
from werkzeug.security import check_password_hash, generate_password_hash

from models import ApiToken, ClosedSession, Role, User, utcnow
from web.services.audit import record

# No 0/O, 1/I/L, nor B/S/Z beside 8/5/2: codes are read aloud and typed on phones by people who
# may not read French well (« 5Y8C » was typed « SY8C »). Codes made before B, S and Z went keep them.
CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY23456789"
# What a letter typed for a digit of the alphabet stands for (older codes may hold the letter).
_LOOK_ALIKES = str.maketrans({"B": "8", "S": "5", "Z": "2"})
CODE_LENGTH = 8
LOCK_AFTER = 5
LOCK_MINUTES = 15
# A deliberately slow check for a password that does not exist, so timing does not reveal emails.
_DUMMY_HASH = generate_password_hash("relais-dummy-password")


def hash_password(password: str) -> str:
    return generate_password_hash(password)  # scrypt, werkzeug's default


def new_access_code() -> str:
    """A code like 'K7PM-Q2XD' (28 symbols, 8 of them: 38 bits of randomness)."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:4]}-{raw[4:]}"


def code_digest(code: str) -> str:
    """Digest of a code as typed, ignoring case, spaces and dashes."""
    canonical = "".join(ch for ch in code.upper() if ch.isalnum())
    return hashlib.sha256(canonical.encode()).hexdigest()


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The active staff user with this email and password, or None.

    Five wrong passwords in a row lock the account for fifteen minutes, even against the right
    password; the answer is the same as for a wrong password, so it reveals nothing.
    """
    user = session.exec(select(User).where(User.email == email.strip().lower())).first()
    if user is None or not user.password_hash or user.role == Role.RESIDENT:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not password_matches(session, user, password) or not user.is_active:
        return None
    user.last_login_at = utcnow()
    session.add(user)
    session.commit()
    return user


def password_matches(session: Session, user: User, password: str) -> bool:
    """Whether `password` is the account's, counted against guessing: five wrong ones in a row
    lock the account for fifteen minutes, even against the right one (committed either way)."""
    locked = locked_minutes(user) > 0
    # A locked account's answer takes a hash's time as well: skipped, it came ~15 times faster than
    # an unknown address's, which told anyone who locked an account that its address exists.
    checked = check_password_hash(user.password_hash or _DUMMY_HASH, password)
    if locked or not user.password_hash or not checked:
        if not locked:
            user.failed_logins += 1
            if user.failed_logins >= LOCK_AFTER:
                user.locked_until, user.failed_logins = utcnow() + timedelta(minutes=LOCK_MINUTES), 0
                record(session, None, "login.locked", "user", user.id)
        session.add(user)
        session.commit()
        return False
    if user.failed_logins or user.locked_until:
        user.failed_logins, user.locked_until = 0, None
        session.add(user)
        session.commit()
    return True


def locked_minutes(user: User) -> int:
    """Minutes left of the account's lock after wrong passwords (0: not locked)."""
    left = (user.locked_until - utcnow()).total_seconds() if user.locked_until is not None else 0
    return int(left // 60) + 1 if left > 0 else 0


def end_sessions(session: Session, user: User, *, tokens: bool) -> None:
    """Every session the account has open ends at its next request (web.extensions.load_user);
    with `tokens`, its API tokens are revoked too. The caller commits."""
    user.session_epoch = User.session_epoch + 1  # in SQL: two resets at once both count
    session.add(user)
    if tokens:
        for token in session.exec(select(ApiToken).where(ApiToken.user_id == user.id,
                                                         col(ApiToken.revoked_at).is_(None))).all():
            token.revoked_at = utcnow()
            session.add(token)


def end_session(session: Session, sid: str, lifetime: timedelta) -> None:
    """One browser session ends (a logout): its id is refused until the cookie would have expired
    anyway (`drop_closed_sessions` forgets it then). Committed; a second logout of the same session
    (a double tap, another tab) changes nothing."""
    if session.get(ClosedSession, sid) is None:
        session.add(ClosedSession(sid=sid, expires_at=utcnow() + lifetime))
        try:
            session.commit()
        except IntegrityError:  # the other tap wrote it first
            session.rollback()


def drop_closed_sessions(session: Session) -> int:
    """Forget the ended sessions whose cookie has expired (the retention run); return how many."""
    result = session.exec(delete(ClosedSession).where(  # type: ignore[call-overload]
        col(ClosedSession.expires_at) < utcnow()))
    return int(result.rowcount or 0)


def authenticate_code(session: Session, code: str) -> User | None:
    """The active resident user holding this access code, or None."""
    if len("".join(ch for ch in code if ch.isalnum())) != CODE_LENGTH:
        return None
    # As typed (a code from before B, S and Z left the alphabet), then with the look-alikes read
    # as the digits they resemble (« SY8C » for « 5Y8C »).
    user = None
    for digest in dict.fromkeys(code_digest(typed) for typed in (code, code.upper().translate(_LOOK_ALIKES))):
        user = session.exec(select(User).where(User.access_code_digest == digest)).first()
        if user is not None:
            break
    if user is None or not user.is_active or user.role != Role.RESIDENT:
        return None
    user.last_login_at = utcnow()
    session.add(user)
    session.commit()
    return user
