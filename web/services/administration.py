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
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import func
from sqlmodel import Session, col, select
from werkzeug.security import check_password_hash

from models import Organisation, OrganisationKind, Role, Territory, User
from web.services import ServiceError
from web.services.accounts import hash_password
from web.services.audit import record

STAFF_ROLES = (Role.SOCIAL_WORKER, Role.ASSOCIATION_MEMBER, Role.HABITANT_RELAIS, Role.ADMIN)
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
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
    same = session.exec(select(Territory.id).where(func.lower(Territory.name) == name.lower(),
                                                   func.lower(Territory.commune) == commune.lower())).first()
    if same is not None and (territory is None or same != territory.id):
        errors.append(_l("Ce quartier existe déjà dans cette commune."))
    if errors:
        raise ServiceError(*errors)
    row = territory or Territory(name=name, commune=commune)
    row.name, row.commune, row.qpv_code = name, commune, qpv or None
    row.latitude, row.longitude = data.latitude, data.longitude
    session.add(row)
    session.flush()
    record(session, admin, "territory.update" if territory else "territory.create", "territory", row.id)
    session.commit()
    return row


# ----------------------------------------------------------------------------- organisations

def save_organisation(session: Session, admin: User, data: OrganisationInput,
                      organisation: Organisation | None = None) -> Organisation:
    """Add an organisation (centre social, association, tiers-lieu…), or change `organisation`."""
    name, description = data.name.strip(), data.description.strip().replace("\r\n", "\n")
    errors: list[object] = []
    if not name or len(name) > 200:
        errors.append(_l("Indiquez le nom de la structure (200 caractères au plus)."))
    if data.kind not in set(OrganisationKind):
        errors.append(_l("Choisissez le type de structure."))
    if data.territory_id is not None and session.get(Territory, data.territory_id) is None:
        errors.append(_l("Quartier inconnu."))
    if len(description) > 4000:
        errors.append(_l("La description est trop longue (4 000 caractères au plus)."))
    same = session.exec(select(Organisation.id).where(func.lower(Organisation.name) == name.lower())).first()
    if same is not None and (organisation is None or same != organisation.id):
        errors.append(_l("Une structure porte déjà ce nom."))
    if errors:
        raise ServiceError(*errors)
    row = organisation or Organisation(name=name, kind=data.kind)
    row.name, row.kind, row.territory_id, row.description = name, data.kind, data.territory_id, description
    session.add(row)
    session.flush()
    record(session, admin, "organisation.update" if organisation else "organisation.create",
           "organisation", row.id, kind=row.kind)
    session.commit()
    return row


# ---------------------------------------------------------------------------------- accounts

def staff_accounts(session: Session) -> list[User]:
    """Every account but residents', by organisation then name."""
    query = select(User).where(col(User.role) != Role.RESIDENT)
    return list(session.exec(query.order_by(col(User.organisation_id), col(User.display_name),
                                            col(User.id))).all())


def create_staff(session: Session, admin: User | None, data: StaffInput) -> tuple[User, str]:
    """A staff account with a temporary password (returned once; only its hash is kept).
    `admin` None: the command line (scripts/create_admin.py), before any administrator exists."""
    name, email = data.display_name.strip(), data.email.strip().lower()
    errors: list[object] = []
    if not name or len(name) > 120:
        errors.append(_l("Indiquez le nom de la personne (120 caractères au plus)."))
    if len(email) > 254 or not EMAIL.match(email):
        errors.append(_l("Écrivez une adresse e-mail, par exemple nom@exemple.fr."))
    elif session.exec(select(User.id).where(func.lower(User.email) == email)).first() is not None:
        errors.append(_l("Un compte utilise déjà cette adresse."))
    if data.role not in STAFF_ROLES:
        errors.append(_l("Choisissez le rôle du compte."))
    organisation = session.get(Organisation, data.organisation_id) if data.organisation_id else None
    if data.organisation_id and organisation is None:
        errors.append(_l("Structure inconnue."))
    elif organisation is None and data.role in (Role.SOCIAL_WORKER, Role.ASSOCIATION_MEMBER,
                                                Role.HABITANT_RELAIS):
        errors.append(_l("Choisissez la structure de la personne."))
    if errors:
        raise ServiceError(*errors)
    password = temporary_password()
    user = User(display_name=name, email=email, role=data.role, password_hash=hash_password(password),
                organisation_id=organisation.id if organisation else None)
    session.add(user)
    session.flush()
    record(session, admin, "user.create", "user", user.id, role=user.role,
           organisation_id=user.organisation_id)
    session.commit()
    return user, password


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
    user.is_active = active
    session.add(user)
    record(session, admin, "user.activate" if active else "user.deactivate", "user", user.id)
    session.commit()


def reset_password(session: Session, admin: User, user: User) -> str:
    """A new temporary password (the old one stops working; a lock from wrong attempts is lifted)."""
    password = temporary_password()
    user.password_hash, user.failed_logins, user.locked_until = hash_password(password), 0, None
    session.add(user)
    record(session, admin, "user.password_reset", "user", user.id)
    session.commit()
    return password


def change_password(session: Session, user: User, current: str, new: str, repeated: str) -> None:
    """The account's owner replaces their password (a temporary one, say)."""
    errors: list[object] = []
    if not user.password_hash or not check_password_hash(user.password_hash, current):
        errors.append(_l("Le mot de passe actuel n'est pas le bon."))
    if len(new) < MIN_PASSWORD or len(new) > 200:
        errors.append(_l("Le nouveau mot de passe doit avoir au moins %(n)d caractères.", n=MIN_PASSWORD))
    elif new != repeated:
        errors.append(_l("Les deux nouveaux mots de passe ne sont pas les mêmes."))
    elif new == current:
        errors.append(_l("Choisissez un mot de passe différent de l'actuel."))
    if errors:
        raise ServiceError(*errors)
    user.password_hash = hash_password(new)
    session.add(user)
    record(session, user, "user.password_change", "user", user.id)
    session.commit()
