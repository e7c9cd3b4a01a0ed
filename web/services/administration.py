"""What an administrator sets up so that a site can start without demo data: its neighbourhoods,
its organisations and the staff accounts (social workers, association members, habitants-relais,
other administrators). Each change is validated, journaled and committed.

Staff accounts get a temporary password, shown once to the administrator who passes it on (no
e-mail leaves the machine); its owner replaces it on /compte/mot-de-passe. Accounts are never
deleted (the journal names its actors): they are deactivated, which ends their sessions and tokens.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from models import Organisation, OrganisationKind, Role, Territory, User
from web.services import AlreadyDone, ServiceError, tidy
from web.services.accounts import end_sessions, hash_password, locked_minutes, password_matches
from web.services.audit import changes, done_just_now, record
from web.services.outcomes import EMAIL
from web.services.queries import written_once

STAFF_ROLES = (Role.SOCIAL_WORKER, Role.ASSOCIATION_MEMBER, Role.HABITANT_RELAIS, Role.ADMIN)
# Organisations whose social workers validate what a habitant-relais notes.
FOLLOWING_KINDS = (OrganisationKind.CENTRE_SOCIAL, OrganisationKind.COLLECTIVITE)
TERRITORY_FACTS = ("name", "commune", "qpv_code", "latitude", "longitude")
ORGANISATION_FACTS = ("name", "kind", "territory_id", "description")
QPV_CODE = re.compile(r"^Q[A-Z0-9]{2,15}$")
MIN_PASSWORD = 10
# Temporary passwords: 12 characters from an alphabet without look-alikes (read aloud, typed once).
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789"


@dataclass
class TerritoryInput:
    name: str
    commune: str
    qpv_code: str = ""
    latitude: float | None = None
    longitude: float | None = None


@dataclass
class OrganisationInput:
    name: str
    kind: str
    territory_id: int | None = None
    description: str = ""


@dataclass
class StaffInput:
    display_name: str
    email: str
    role: str
    organisation_id: int | None = None


def _same_name(session: Session, table: Any, key: tuple[str, ...],
               key_of: Callable[[Any], tuple[str, ...]], besides: int | None = None) -> int | None:
    """The row of `table` (a few hundred at most; not `besides`) whose name is `key` ignoring
    case, any alphabet (SQLite's lower() folds ASCII letters only)."""
    wanted = tuple(part.casefold() for part in key)
    for row in session.exec(select(table).where(col(table.id) != (besides or 0))).all():
        if tuple(part.casefold() for part in key_of(row)) == wanted:
            return int(row.id)
    return None


def _territory_key(row: Territory) -> tuple[str, ...]:
    return (row.name, row.commune)


def _organisation_key(row: Organisation) -> tuple[str, ...]:
    return (row.name,)


def _added_once(session: Session, admin: User, row: Any, key_of: Callable[[Any], tuple[str, ...]]) -> Any:
    """Add the new `row` unless a row of the same name was added meanwhile (taps sent at once
    all passed the name check): then that row, nothing written."""
    def add() -> Any:
        session.add(row)
        session.flush()
        return row

    def twin(besides: int | None) -> int | None:
        return _same_name(session, type(row), key_of(row), key_of, besides)

    try:
        return written_once(session, admin, twin, add)
    except AlreadyDone as done:
        return session.get(type(row), done.row_id)


def _facts(row: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The journaled fields of a territory or an organisation (no one's personal data)."""
    return {name: getattr(row, name) for name in names}


def temporary_password() -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(12))


# ------------------------------------------------------------------------------- territories

def save_territory(session: Session, admin: User, data: TerritoryInput,
                   territory: Territory | None = None) -> Territory:
    """Add a neighbourhood, or change `territory`."""
    name, commune, qpv = data.name.strip(), data.commune.strip(), data.qpv_code.strip().upper()
    errors: list[object] = []
    if not name or len(name) > 120:
        errors.append(_l("Indiquez le nom du quartier (120 caractères au plus)."))
    if not commune or len(commune) > 120:
        errors.append(_l("Indiquez la commune (120 caractères au plus)."))
    if qpv and not QPV_CODE.match(qpv):
        errors.append(_l("Le code QPV ressemble à « QN07501M » (Q, puis lettres et chiffres)."))
    if (data.latitude is None) != (data.longitude is None):
        errors.append(_l("Indiquez la latitude et la longitude, ou aucune des deux."))
    elif data.latitude is not None and data.longitude is not None and not (
            -90 <= data.latitude <= 90 and -180 <= data.longitude <= 180):
        errors.append(_l("Coordonnées impossibles."))
    same = _same_name(session, Territory, (name, commune), _territory_key)
    if same is not None and (territory is None or same != territory.id):
        errors.append(_l("Ce quartier existe déjà dans cette commune."))
    if errors:
        raise ServiceError(*errors)
    row = territory or Territory(name=name, commune=commune)
    before = _facts(row, TERRITORY_FACTS) if territory else {}
    row.name, row.commune, row.qpv_code = name, commune, qpv or None
    row.latitude, row.longitude = data.latitude, data.longitude
    if territory is None:
        added = _added_once(session, admin, row, _territory_key)
        if added is not row:  # taps sent at once: the first one's neighbourhood
            return added
    session.add(row)
    session.flush()
    record(session, admin, "territory.update" if territory else "territory.create", "territory", row.id,
           changes=changes(before, _facts(row, TERRITORY_FACTS)))
    session.commit()
    return row


# ----------------------------------------------------------------------------- organisations

def save_organisation(session: Session, admin: User, data: OrganisationInput,
                      organisation: Organisation | None = None) -> Organisation:
    """Add an organisation (centre social, association, tiers-lieu…), or change `organisation`."""
    name, description = data.name.strip(), tidy(data.description)
    errors: list[object] = []
    if not name or len(name) > 200:
        errors.append(_l("Indiquez le nom de la structure (200 caractères au plus)."))
    if data.kind not in set(OrganisationKind):
        errors.append(_l("Choisissez le type de structure."))
    if data.territory_id is not None and session.get(Territory, data.territory_id) is None:
        errors.append(_l("Quartier inconnu."))
    errors.extend(_description_errors(description))
    if organisation is not None and data.kind not in FOLLOWING_KINDS and session.exec(select(User.id).where(
            User.organisation_id == organisation.id, User.role == Role.HABITANT_RELAIS,
            col(User.is_active).is_(True))).first() is not None:
        errors.append(_l("Des habitant·es-relais notent des fiches pour cette structure, que ses "
                         "travailleur·ses sociaux valident : elle reste un centre social ou une "
                         "collectivité tant que leurs comptes sont actifs."))
    same = _same_name(session, Organisation, (name,), _organisation_key)
    if same is not None and (organisation is None or same != organisation.id):
        errors.append(_l("Une structure porte déjà ce nom."))
    if errors:
        raise ServiceError(*errors)
    row = organisation or Organisation(name=name, kind=data.kind)
    before = _facts(row, ORGANISATION_FACTS) if organisation else {}
    row.name, row.kind, row.territory_id, row.description = name, data.kind, data.territory_id, description
    if organisation is None:
        added = _added_once(session, admin, row, _organisation_key)
        if added is not row:  # taps sent at once: the first one's organisation
            return added
    session.add(row)
    session.flush()
    record(session, admin, "organisation.update" if organisation else "organisation.create",
           "organisation", row.id, kind=row.kind, changes=changes(before, _facts(row, ORGANISATION_FACTS)))
    session.commit()
    return row


def describe_organisation(session: Session, member: User, organisation: Organisation,
                          description: str) -> bool:
    """An organisation's own words about itself (who they are, where, when to come), written by
    one of its members and shown to the residents its needs are proposed to. False: unchanged."""
    text = tidy(description)
    if errors := _description_errors(text):
        raise ServiceError(*errors)
    if text == organisation.description:
        return False
    organisation.description = text
    session.add(organisation)
    record(session, member, "organisation.describe", "organisation", organisation.id, length=len(text))
    session.commit()
    return True


def _description_errors(description: str) -> list[object]:
    if len(description) > 4000:
        return [_l("La description est trop longue (4 000 caractères au plus).")]
    return []


# ---------------------------------------------------------------------------------- accounts

def staff_accounts(session: Session) -> list[User]:
    """Every account but residents', by organisation then name."""
    query = select(User).where(col(User.role) != Role.RESIDENT)
    return list(session.exec(query.order_by(col(User.organisation_id), col(User.display_name),
                                            col(User.id))).all())


def create_staff(session: Session, admin: User | None, data: StaffInput) -> tuple[User, str]:
    """A staff account with a temporary password (returned once; only its hash is kept).
    `admin` None: the command line (scripts/create_admin.py), before any administrator exists.
    The same address sent again by the same administrator within REPOST_MINUTES (a double
    click): AlreadyDone, nothing written."""
    name, email = data.display_name.strip(), data.email.strip().lower()
    errors: dict[str, list[object]] = {"display_name": [], "email": [], "role": [], "organisation_id": []}
    if not name or len(name) > 120:
        errors["display_name"].append(_l("Indiquez le nom de la personne (120 caractères au plus)."))
    if len(email) > 254 or not EMAIL.match(email):
        errors["email"].append(_l("Écrivez une adresse e-mail, par exemple nom@exemple.fr."))
    elif session.exec(select(User.id).where(User.email == email)).first() is not None:  # lower case
        _double_click(session, admin, email)
        errors["email"].append(_l("Un compte utilise déjà cette adresse."))
    if data.role not in STAFF_ROLES:
        errors["role"].append(_l("Choisissez le rôle du compte."))
    organisation = session.get(Organisation, data.organisation_id) if data.organisation_id else None
    if data.organisation_id and organisation is None:
        errors["organisation_id"].append(_l("Structure inconnue."))
    elif organisation is None and data.role in (Role.SOCIAL_WORKER, Role.ASSOCIATION_MEMBER,
                                                Role.HABITANT_RELAIS):
        errors["organisation_id"].append(_l("Choisissez la structure de la personne."))
    elif data.role == Role.HABITANT_RELAIS and organisation is not None \
            and organisation.kind not in FOLLOWING_KINDS:
        errors["organisation_id"].append(_l(
            "Un·e habitant·e-relais note des fiches que les travailleur·ses sociaux de sa "
            "structure valident : choisissez un centre social ou une collectivité."))
    if any(errors.values()):
        raise ServiceError(fields=errors)
    password = temporary_password()
    user = User(display_name=name, email=email, role=data.role, password_hash=hash_password(password),
                organisation_id=organisation.id if organisation else None, must_change_password=True)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:  # the same address, written meanwhile (taps at the very same moment)
        session.rollback()
        _double_click(session, admin, email)
        raise ServiceError(fields={"email": [_l("Un compte utilise déjà cette adresse.")]}) from None
    record(session, admin, "user.create", "user", user.id, role=user.role,
           organisation_id=user.organisation_id)
    session.commit()
    return user, password


def _double_click(session: Session, admin: User | None, email: str) -> None:
    """AlreadyDone when the account at `email` is one `admin` created moments ago: the first
    click's answer showed its password."""
    same = session.exec(select(User.id).where(User.email == email)).first()
    if admin is not None and same is not None and done_just_now(session, admin, "user.create", "user", same):
        raise AlreadyDone(same)


def reset_admin_password(session: Session, email: str) -> str:
    """From the server's command line (scripts/create_admin.py --reset): an administrator's new
    temporary password."""
    query = select(User).where(User.email == email.strip().lower(), User.role == Role.ADMIN)
    user = session.exec(query).first()
    if user is None:
        raise ServiceError(_l("Aucun compte administrateur avec cette adresse."))
    if not user.is_active:
        raise ServiceError(_l("Ce compte administrateur est désactivé : un·e autre administrateur·rice "
                              "peut le réactiver."))
    return _new_temporary_password(session, None, user)


def staff_account(session: Session, user_id: int) -> User | None:
    user = session.get(User, user_id)
    return user if user is not None and user.role != Role.RESIDENT else None


def set_active(session: Session, admin: User, user: User, active: bool) -> None:
    """Deactivate an account (its sessions and API tokens stop at their next request) or
    reactivate it. An administrator cannot deactivate their own account."""
    if user.id == admin.id and not active:
        raise ServiceError(_l("Vous ne pouvez pas désactiver votre propre compte."))
    if user.is_active == active:
        return
    if active and user.role == Role.HABITANT_RELAIS:  # save_organisation's rule, seen from here
        organisation = session.get(Organisation, user.organisation_id) if user.organisation_id else None
        if organisation is None or organisation.kind not in FOLLOWING_KINDS:
            raise ServiceError(_l("Un·e habitant·e-relais note des fiches que les travailleur·ses sociaux "
                                  "de sa structure valident : sa structure n'est plus un centre social "
                                  "ni une collectivité. Changez d'abord sa structure."))
    user.is_active = active
    session.add(user)
    if not active:  # reactivated, it starts afresh: no old session or token comes back
        end_sessions(session, user, tokens=True)
    record(session, admin, "user.activate" if active else "user.deactivate", "user", user.id)
    session.commit()


def reset_password(session: Session, admin: User, user: User) -> str:
    """A new temporary password, to be replaced at the next login: the old one stops working,
    the account's sessions end and its API tokens are revoked (a lock from wrong attempts is
    lifted). Not for administrators: one could otherwise take another's account, and the journal
    would name the wrong person; they change their own, or use scripts/create_admin.py --reset."""
    if user.role == Role.ADMIN:
        raise ServiceError(_l("Un·e administrateur·rice change son mot de passe lui-même ou elle-même "
                              "(en cas d'oubli : scripts/create_admin.py --reset sur le serveur)."))
    return _new_temporary_password(session, admin, user)


def _new_temporary_password(session: Session, admin: User | None, user: User) -> str:
    password = temporary_password()
    user.password_hash, user.failed_logins, user.locked_until = hash_password(password), 0, None
    user.must_change_password = True
    end_sessions(session, user, tokens=True)
    record(session, admin, "user.password_reset", "user", user.id)
    session.commit()
    return password


def change_password(session: Session, user: User, current: str, new: str, repeated: str) -> None:
    """The account's owner replaces their password (a temporary one, say). Its other sessions
    end (the caller opens this one again); a wrong current password counts as a failed login."""
    errors: dict[str, list[object]] = {"current": [], "new": [], "repeated": []}
    if minutes := locked_minutes(user):
        raise ServiceError(_l("Trop d'erreurs de mot de passe : réessayez dans %(n)d minute(s).", n=minutes))
    if not password_matches(session, user, current):
        errors["current"].append(_l("Le mot de passe actuel n'est pas le bon (cinq erreurs de suite "
                                    "bloquent le compte quinze minutes)."))
    if len(new) < MIN_PASSWORD or len(new) > 200:
        errors["new"].append(_l("Le nouveau mot de passe doit avoir au moins %(n)d caractères.",
                                n=MIN_PASSWORD))
    elif new != repeated:
        errors["repeated"].append(_l("Les deux nouveaux mots de passe ne sont pas les mêmes."))
    elif new == current:
        errors["new"].append(_l("Choisissez un mot de passe différent de l'actuel."))
    if any(errors.values()):
        raise ServiceError(fields=errors)
    user.password_hash, user.must_change_password = hash_password(new), False
    end_sessions(session, user, tokens=False)
    record(session, user, "user.password_change", "user", user.id)
    session.commit()
