"""After a resident says yes: how the association reaches them, and what became of it.

Associations see a candidate by first name and initial only; once the resident has accepted,
they also see the contact channel the resident (or their worker) chose. The association or the
worker then records the outcome (it happened / it did not, with a word), which feeds the resident's
timeline and the impact dashboard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, not_
from sqlmodel import Session, col, select

from models import ContactChannel, Match, MatchStatus, Organisation, Outcome, Resident, Role, User, utcnow
from web.services import ServiceError
from web.services.audit import record
from web.services.notifications import outcome_recorded
from web.services.proposals import valid_consent_residents
from web.services.queries import update_if
from web.services.review import refuse_sensitive

MAX_OUTCOME_NOTE = 200
PHONE = re.compile(r"^\+?[0-9][0-9 .\-()]*[0-9]$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


def callable_number(value: str) -> bool:
    """A number an association can call: ten digits from 0 in France (« 06 12 34 56 78 »), or an
    international one, « + » or « 00 » then 8 to 15 digits (E.164). « 06 12 34 » was saved, and
    the yes it came with reached nobody."""
    if not PHONE.match(value):
        return False
    digits = re.sub(r"\D", "", value)
    if value.startswith("+"):
        return 8 <= len(digits) <= 15
    if digits.startswith("00"):
        return 8 <= len(digits) - 2 <= 15
    return len(digits) == 10 and digits.startswith("0")


@dataclass(frozen=True)
class Contact:
    """What an association is told, once the resident accepted."""

    channel: str
    value: str  # the phone number or address, or the name of the resident's centre
    # The person said yes, then withdrew consent (or it lapsed): their own contact is no longer
    # shown, their centre's is (the association may still need to reach them about the yes).
    withheld: bool = False
    # Through the centre: the social worker who approved the proposal, when still one of its
    # active workers (a centre's name alone gave the association nothing to act on).
    worker: User | None = None


def contact_for(session: Session, match: Match, resident: Resident, today: date) -> Contact | None:
    """The resident's chosen channel, or None while they have not accepted; their centre's only
    once their consent ended (withdrawn or lapsed: Relais stops handing out their phone number or
    address, and whatever they change it to)."""
    if match.status != MatchStatus.ACCEPTED:
        return None
    consenting = bool(valid_consent_residents(session, today, [resident.id or 0]))
    if consenting and resident.contact_channel != ContactChannel.WORKER and resident.contact_value:
        return Contact(resident.contact_channel, resident.contact_value)
    centre = session.get(Organisation, resident.organisation_id)
    reviewer = session.get(User, match.reviewed_by_id) if match.reviewed_by_id is not None else None
    if reviewer is not None and not (reviewer.is_active and reviewer.email
                                     and reviewer.role == Role.SOCIAL_WORKER
                                     and reviewer.organisation_id == resident.organisation_id):
        reviewer = None
    return Contact(ContactChannel.WORKER, centre.name if centre else "", withheld=not consenting,
                   worker=reviewer)


def may_set_contact(actor: User, resident: Resident) -> bool:
    """The resident themself, or a worker of their centre (or an admin)."""
    if actor.role == Role.RESIDENT:
        return actor.resident_id == resident.id
    return actor.role == Role.ADMIN or (
        actor.role == Role.SOCIAL_WORKER and actor.organisation_id == resident.organisation_id)


def set_contact(session: Session, actor: User, resident: Resident, channel: str, value: str = "") -> None:
    """Choose how associations reach the resident after a yes (validated, audited, committed)."""
    if not may_set_contact(actor, resident):
        raise ServiceError(_l("Vous ne pouvez pas changer ce contact."))
    value = value.strip()
    if channel not in set(ContactChannel):
        raise ServiceError(fields={"channel": [_l("Choisissez comment la structure peut vous joindre.")]})
    if channel == ContactChannel.PHONE and not callable_number(value):
        raise ServiceError(fields={"value": [
            _l("Écrivez un numéro de téléphone entier, par exemple 06 12 34 56 78.")]})
    if channel == ContactChannel.EMAIL and (len(value) > 254 or not EMAIL.match(value)):
        raise ServiceError(fields={"value": [_l("Écrivez une adresse e-mail, par exemple nom@exemple.fr.")]})
    resident.contact_channel = channel
    resident.contact_value = value if channel != ContactChannel.WORKER else None
    resident.updated_at = utcnow()
    session.add(resident)
    record(session, actor, "resident.contact", "resident", resident.id, channel=channel)
    session.commit()


# The person reads the outcome's word in the copy of their data.
SENSITIVE_OUTCOME = _l("Rien n'est enregistré : le mot parle de %(what)s (« %(words)s »), et la personne le "
                       "lira dans la copie de ses données. Écrivez-le sans ce détail.")


def record_outcome(session: Session, actor: User, match: Match, outcome: str, note: str = "") -> None:
    """Record what became of an accepted proposal; it can be corrected later (each change audited).

    Who may call it is decided by web.permissions.get_match_for_followup."""
    if match.status != MatchStatus.ACCEPTED:
        raise ServiceError(_l("Un bilan se note seulement quand la personne a dit oui."))
    if outcome not in set(Outcome):
        raise ServiceError(_l("Dites si ça s'est fait ou non."))
    note = " ".join(note.split())
    if len(note) > MAX_OUTCOME_NOTE:
        raise ServiceError(_l("Le mot est trop long (200 caractères au plus)."))
    refuse_sensitive(note, SENSITIVE_OUTCOME)
    # Written only if it changes what the database holds: a second tap (or taps sent at once)
    # must not journal it and tell the other side twice.
    unchanged = and_(col(Match.outcome).is_not(None), col(Match.outcome) == outcome,
                     func.coalesce(col(Match.outcome_note), "") == note)
    if not update_if(session, match, Match.status, MatchStatus.ACCEPTED, not_(unchanged), outcome=outcome,
                     outcome_note=note or None, outcome_at=utcnow(), outcome_by_id=actor.id):
        if session.exec(select(Match.status).where(Match.id == match.id)).first() != MatchStatus.ACCEPTED:
            raise ServiceError(_l("Un bilan se note seulement quand la personne a dit oui."))
        return  # already recorded so
    record(session, actor, "match.outcome", "match", match.id, outcome=outcome)
    outcome_recorded(session, match, actor)
    session.commit()
