"""Resident profiles: creation with consent, declarations in the person's own words, access codes."""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlmodel import Session, col, select, update

from matcher.pipeline import PreparedDeclaration
from models import (
    Availability,
    Consent,
    ConsentMethod,
    ConsentScope,
    Organisation,
    RequestKind,
    Resident,
    ResidentRequest,
    Role,
    SkillDeclaration,
    Territory,
    User,
    ValidationStatus,
    Want,
    utcnow,
)
from web.forms import KNOWN_LANGUAGES
from web.services import ChangedMeanwhile, ServiceError, notifications
from web.services.accounts import code_digest, end_sessions, new_access_code
from web.services.audit import changes, record
from web.services.matching import MatchingService
from web.services.proposals import propose_for_resident, withdraw_unreviewed
from web.services.queries import REPOST_MINUTES, written_once

MAX_DECLARATION_CHARS = 10_000
NOTHING_TO_READ = _l("Écrivez ce que la personne sait faire, avec ses mots.")


@dataclass
class ResidentInput:
    first_name: str
    last_initial: str
    territory_id: int | None
    languages: list[str] = field(default_factory=list)
    availability: list[str] = field(default_factory=list)
    wants: list[str] = field(default_factory=list)
    consent_given_on: date | None = None
    consent_method: str = ""
    consent_matching: bool = False
    declaration: str = ""
    awaiting_validation: bool = False  # imported from a file that said so (web.services.imports)


@dataclass
class CreatedResident:
    resident: Resident
    access_code: str  # shown once to the social worker, never stored in clear
    proposals: int


def initial_of(text: str) -> str:
    """One capital letter: "ß".upper() is "SS" and "ﬀ".upper() "FF" (two letters, in a column of
    one: an error on PostgreSQL), so the first letter of the capitals is kept."""
    return text.strip().upper()[:1]


def profile_key(first_name: str, initial: str, territory_id: int | None, text: str) -> tuple[object, ...]:
    """A person as a repeated form or file row repeats them: first name, initial (as stored),
    neighbourhood and text, ignoring case and spacing."""
    return (first_name.strip().casefold(), initial_of(initial).casefold(), territory_id,
            " ".join(text.split()).casefold())


Refusals = defaultdict[str, list[object]]  # field → what stops the change (ServiceError(fields=...))


def _check(session: Session, data: ResidentInput, today: date, consent_months: int) -> Refusals:
    """What stops the profile from being saved, by the form's field each message is about."""
    errors = _check_person(session, data)
    if not data.consent_matching:
        errors["consent_matching"].append(_l("Le consentement de la personne est obligatoire avant "
                                             "d'enregistrer son profil."))
    if data.consent_given_on is None or data.consent_given_on > today:
        errors["consent_given_on"].append(_l("Indiquez la date du consentement (aujourd'hui ou avant)."))
    elif add_months(data.consent_given_on, consent_months) < today:
        # Saved, the profile would be out of matching from the start, and a typed year wrong by
        # one would go unseen: the person is asked again, and the consent recorded today.
        errors["consent_given_on"].append(_l(
            "Ce consentement date de plus de %(months)d mois : il n'est plus valable. "
            "Demandez-le à nouveau à la personne.", months=consent_months))
    if data.consent_method not in set(ConsentMethod):
        errors["consent_method"].append(_l("Indiquez comment le consentement a été recueilli."))
    errors["declaration"].extend(_check_declaration(data.declaration))
    return errors


def _check_person(session: Session, data: ResidentInput) -> Refusals:
    """The person's fields: name, neighbourhood, languages, availability, wishes."""
    errors: Refusals = defaultdict(list)
    if not data.first_name.strip():
        errors["first_name"].append(_l("Indiquez un prénom (ou un pseudonyme)."))
    if len(data.first_name.strip()) > 60:
        errors["first_name"].append(_l("Le prénom est trop long (60 caractères au plus)."))
    if data.last_initial.strip() and not data.last_initial.strip().isalpha():
        errors["last_initial"].append(_l("L'initiale doit être une lettre."))
    if data.territory_id is None or session.get(Territory, data.territory_id) is None:
        errors["territory_id"].append(_l("Choisissez le quartier de la personne."))
    if not set(data.availability) <= set(Availability):
        errors["availability"].append(_l("Disponibilité inconnue."))
    if not set(data.wants) <= set(Want):
        errors["wants"].append(_l("Souhait inconnu."))
    if not set(data.languages) <= KNOWN_LANGUAGES:
        errors["languages"].append(_l("Langue inconnue."))
    return errors


def _refuse(errors: Refusals) -> None:
    """Raise what `errors` says, each message with its field, if anything is said."""
    if any(errors.values()):
        raise ServiceError(fields=errors)


def check_resident(session: Session, data: ResidentInput, today: date, consent_months: int
                   ) -> dict[str, list[str]]:
    """What would stop `data` from being saved, in French, by field, without writing (import
    previews)."""
    return {name: [str(message) for message in said]
            for name, said in _check(session, data, today, consent_months).items() if said}


def _check_declaration(text: str) -> list[object]:
    if not text.strip():
        return [NOTHING_TO_READ]
    if len(text) > MAX_DECLARATION_CHARS:
        return [_l("Le texte est trop long (10 000 caractères au plus).")]
    return []


def create_resident(session: Session, matching: MatchingService, worker: User,
                    data: ResidentInput, consent_months: int, today: date) -> CreatedResident:
    """Create the profile, its consent, its declaration and a resident login; propose needs.

    The same person sent again by the same account within REPOST_MINUTES (a double tap, a reload
    while the text is analysed; two sent at once too) is recorded once: AlreadyDone names the
    profile, and nothing is written (a second profile would be a second login, and the person
    proposed twice)."""
    codes: list[str] = []

    def add() -> Resident:
        resident, code = add_resident(session, matching, worker, data, consent_months, today)
        codes.append(code)
        return resident

    resident: Resident = written_once(session, worker, lambda besides: _twin(session, worker, data, besides),
                                      add)
    code = codes[0]
    session.commit()
    proposals = propose_for_resident(session, matching, resident, today)
    return CreatedResident(resident, code, proposals)


def _twin(session: Session, worker: User, data: ResidentInput, besides: int | None) -> int | None:
    """The profile `worker` recorded in the last REPOST_MINUTES for the same person: same first
    name, initial, neighbourhood and text (`profile_key`, the import's rule too)."""
    since = utcnow() - timedelta(minutes=REPOST_MINUTES)
    sent = profile_key(data.first_name, data.last_initial, data.territory_id, data.declaration)
    for resident, declared in session.exec(
            select(Resident, SkillDeclaration.text)
            .join(SkillDeclaration, col(SkillDeclaration.resident_id) == Resident.id)
            .where(Resident.created_by_id == worker.id, col(Resident.created_at) >= since,
                   col(Resident.id) != (besides or 0), col(SkillDeclaration.is_current).is_(True))).all():
        if profile_key(resident.first_name, resident.last_initial, resident.territory_id, declared) == sent:
            return resident.id
    return None


def add_resident(session: Session, matching: MatchingService, worker: User, data: ResidentInput,
                 consent_months: int, today: date, prepared: PreparedDeclaration | None = None
                 ) -> tuple[Resident, str]:
    """Validate, then add the profile, its consent, its declaration (with its index event) and a
    resident login to the session without committing (a bulk import commits all rows at once);
    return the resident and their access code. A bulk import passes the declaration `prepared`
    (analysed and encoded before its transaction).

    Recorded by a habitant-relais (or imported from a file that says it was not validated yet),
    the profile waits for a social worker (web.services.validation):
    its text is kept but stays out of the index, and it has no login ("" as code) and no proposal."""
    if worker.role not in {Role.SOCIAL_WORKER, Role.ADMIN, Role.HABITANT_RELAIS} \
            or worker.organisation_id is None:
        raise ServiceError(_l("Seul·e un·e travailleur·se social·e peut créer un profil."))
    pending = worker.role == Role.HABITANT_RELAIS or data.awaiting_validation
    _refuse(_check(session, data, today, consent_months))
    analysis = prepared.analysis if prepared is not None else matching.analyze(data.declaration)
    if not analysis.statements:
        raise ServiceError(fields={"declaration": [NOTHING_TO_READ]})
    languages = list(dict.fromkeys([*data.languages, *analysis.languages]))
    resident = Resident(
        first_name=data.first_name.strip(),
        last_initial=initial_of(data.last_initial),
        territory_id=data.territory_id or 0,
        organisation_id=worker.organisation_id,
        languages=languages,
        availability=sorted(set(data.availability)),
        wants=sorted(set(data.wants)),
        created_by_id=worker.id or 0,
        validation_status=ValidationStatus.PENDING if pending else ValidationStatus.VALIDATED,
    )
    session.add(resident)
    session.flush()
    given_on = data.consent_given_on or today
    session.add(Consent(resident_id=resident.id or 0, given_on=given_on,
                        expires_on=add_months(given_on, consent_months),
                        scope=ConsentScope.MATCHING, method=data.consent_method,
                        recorded_by_id=worker.id or 0))
    code = "" if pending else add_resident_login(session, resident)
    declaration = SkillDeclaration(resident_id=resident.id or 0, text=data.declaration.strip(),
                                   created_by_id=worker.id or 0)
    session.add(declaration)
    session.flush()
    if not pending:
        matching.store_declaration(session, declaration, prepared or analysis)
    record(session, worker, "resident.create", "resident", resident.id,
           changes=changes({}, profile_snapshot(resident, declaration.id)))
    record(session, worker, "consent.record", "resident", resident.id,
           method=data.consent_method, given_on=given_on.isoformat())
    return resident, code


def add_resident_login(session: Session, resident: Resident) -> str:
    """The resident's login with a new access code (returned once; only its digest is kept)."""
    code = new_access_code()
    session.add(User(display_name=resident.public_name, role=Role.RESIDENT,
                     resident_id=resident.id, access_code_digest=code_digest(code)))
    return code


@dataclass(frozen=True)
class Rewritten:
    """What a text edit did besides storing the text: proposals made, languages taken off."""

    proposals: int
    languages_removed: list[str]


def update_declaration(session: Session, matching: MatchingService, worker: User,
                       resident: Resident, text: str, replacing: int | None = None) -> Rewritten:
    """Keep the old version, store the new one, and re-run matching for the resident. With
    `replacing` (the version the caller read, e.g. an API client's If-Match), only while that
    version is still the current one: ChangedMeanwhile otherwise."""
    errors = _check_declaration(text)
    analysis = matching.analyze(text) if not errors else None
    if errors or analysis is None or not analysis.statements:
        raise ServiceError(fields={"declaration": errors or [NOTHING_TO_READ]})
    # A validation of the profile going on meanwhile (validation.validate_resident) waits for this
    # edit, or this edit for it (PostgreSQL: the resident's row; SQLite: the database's one writer).
    session.exec(select(Resident.id).where(Resident.id == resident.id).with_for_update())
    current = list(session.exec(select(SkillDeclaration.id).where(
        SkillDeclaration.resident_id == resident.id, col(SkillDeclaration.is_current).is_(True))).all())
    # Retired only if still current: two edits sent at once (a double tap, a retried API call) both
    # read the same version; the second must not add a second current text beside the first's.
    retired = session.exec(update(SkillDeclaration).where(
        col(SkillDeclaration.id).in_(current), col(SkillDeclaration.is_current).is_(True))
        .values(is_current=False)) if current else None
    if (retired is not None and retired.rowcount != len(current)) \
            or (replacing is not None and current != [replacing]):
        session.rollback()
        raise ChangedMeanwhile(_l("Le texte vient d'être changé par quelqu'un d'autre : rien n'est "
                                  "enregistré. Rechargez la page pour lire la nouvelle version."))
    previous = max((i for i in current if i is not None), default=None)
    before = profile_snapshot(resident, previous)
    declaration = SkillDeclaration(resident_id=resident.id or 0, text=text.strip(),
                                   created_by_id=worker.id or 0)
    session.add(declaration)
    session.flush()
    session.refresh(resident, ["validation_status"])  # as it is now, not as the page read it
    in_matching = resident.validation_status == ValidationStatus.VALIDATED
    if in_matching:  # a profile waiting for validation stays out of the index
        matching.store_declaration(session, declaration, analysis)
    # The languages the old text gave and the new one no longer says leave with it ("je parle
    # arabe" corrected to "je parle tamazight"); the caller says which (a box ticked as well goes
    # too: the worker ticks it again).
    old = session.get(SkillDeclaration, previous) if previous is not None else None
    gone = set(matching.analyze(old.text).languages) - set(analysis.languages) if old else set()
    removed = [code for code in resident.languages if code in gone]
    resident.languages = list(dict.fromkeys([*(code for code in resident.languages if code not in gone),
                                             *analysis.languages]))
    resident.updated_at = utcnow()
    session.add(resident)
    withdraw_unreviewed(session, resident_id=resident.id)
    record(session, worker, "declaration.update", "resident", resident.id,
           changes=changes(before, profile_snapshot(resident, declaration.id)))
    session.commit()
    added = propose_for_resident(session, matching, resident, date.today()) if in_matching else 0
    return Rewritten(added, removed)


def profile_snapshot(resident: Resident, declaration_id: int | None) -> dict[str, object]:
    """The structured fields whose before/after the audit keeps (never free text: see audit.py)."""
    return {"declaration_id": declaration_id, "territory_id": resident.territory_id,
            "languages": list(resident.languages), "availability": list(resident.availability),
            "wants": list(resident.wants)}


def update_profile(session: Session, matching: MatchingService, worker: User, resident: Resident,
                   data: ResidentInput, today: date, read_version: datetime | None = None) -> int | None:
    """Change the person's name, neighbourhood, languages, availability and wishes (not the text,
    not the consent: their own forms). The matching filters read these fields, so the proposals
    nobody reviewed yet were made on the old ones: they are dropped and matching runs again.
    Return how many new proposals were made, or None when nothing changed. With `read_version`
    (the `updated_at` the caller read, e.g. an API client's If-Match), only while the profile is
    still that version: ChangedMeanwhile otherwise."""
    _refuse(_check_person(session, data))
    if read_version is not None:
        # Two changes sent at once both read the same version: the second would put back the
        # fields the first changed (`data` holds them as read). The row's version is claimed
        # first (PostgreSQL waits on the row, SQLite on its one writer, then both see it moved).
        claimed = session.exec(update(Resident).where(col(Resident.id) == resident.id,
                                                      col(Resident.updated_at) == read_version)
                               .values(updated_at=utcnow()))
        if not claimed.rowcount:
            session.rollback()
            raise ChangedMeanwhile(_l("La fiche vient d'être changée par quelqu'un d'autre : rien n'est "
                                      "enregistré. Rechargez-la pour lire la nouvelle version."))
    declaration_id = session.exec(select(SkillDeclaration.id).where(
        SkillDeclaration.resident_id == resident.id, col(SkillDeclaration.is_current).is_(True))).first()
    before = profile_snapshot(resident, declaration_id)
    name = (data.first_name.strip(), initial_of(data.last_initial))
    renamed = name != (resident.first_name, resident.last_initial)
    resident.first_name, resident.last_initial = name
    resident.territory_id = data.territory_id or 0
    if set(data.languages) != set(resident.languages):  # boxes come in the screen's order
        resident.languages = list(dict.fromkeys(data.languages))
    resident.availability = sorted(set(data.availability))
    resident.wants = sorted(set(data.wants))
    changed = changes(before, profile_snapshot(resident, declaration_id))
    if not changed and not renamed:
        session.rollback()
        return None
    resident.updated_at = utcnow()
    session.add(resident)
    if renamed:  # the resident's own account greets them by this name
        for account in session.exec(select(User).where(User.resident_id == resident.id)).all():
            account.display_name = resident.public_name
            session.add(account)
    in_matching = bool(changed) and resident.validation_status == ValidationStatus.VALIDATED
    if in_matching:
        withdraw_unreviewed(session, resident_id=resident.id)
    # The journal never holds free text (web.services.audit): a new name is said, not written.
    record(session, worker, "resident.update", "resident", resident.id, changes=changed, renamed=renamed)
    session.commit()
    return propose_for_resident(session, matching, resident, today) if in_matching else 0


def add_months(day: date, months: int) -> date:
    """The same day `months` later (the 31st becomes the month's last day)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def current_consent(session: Session, resident: Resident) -> Consent | None:
    """The latest consent recorded for the resident (valid or not)."""
    return _latest_consent(session, resident.id or 0)


def _latest_consent(session: Session, resident_id: int) -> Consent | None:
    return session.exec(select(Consent).where(Consent.resident_id == resident_id)
                        .order_by(col(Consent.given_on).desc(), col(Consent.id).desc())).first()


def consent_state(session: Session, resident_id: int, today: date) -> str:
    """"valid" (the person is in matching), "withdrawn" (they took it back: the pages say so), or
    "ended" (expired, or the profile is waiting for its centre): what their pages tell them."""
    from web.services.proposals import valid_consent_residents

    if valid_consent_residents(session, today, [resident_id]):
        return "valid"
    latest = _latest_consent(session, resident_id)
    return "withdrawn" if latest is not None and latest.withdrawn_at is not None else "ended"


def withdraw_consent(session: Session, worker: User, resident: Resident) -> bool:
    """The resident withdraws consent: out of matching at once, unreviewed proposals dropped.
    False when there was nothing left to withdraw (a second click, another tab, a colleague):
    nothing is written then, and the journal does not say it happened twice."""
    withdrawn = session.exec(update(Consent).where(col(Consent.resident_id) == resident.id,
                                                   col(Consent.withdrawn_at).is_(None))
                             .values(withdrawn_at=utcnow()))
    if not withdrawn.rowcount:
        session.rollback()
        return False
    withdraw_unreviewed(session, resident_id=resident.id)
    notifications.forget_for_need_side(session, resident)
    record(session, worker, "consent.withdraw", "resident", resident.id)
    if worker.role == Role.RESIDENT:  # from « Mes données »: the social workers are told
        notifications.consent_withdrawn_by_resident(session, resident)
    session.commit()
    return True


def renew_consent(session: Session, matching: MatchingService, worker: User, resident: Resident,
                  method: str, today: date, consent_months: int) -> int:
    """Record a new consent from today (after expiry or withdrawal, or before an expiry), and
    propose the open needs again (withdrawal dropped the proposals nobody reviewed; needs posted
    meanwhile never met the person). Return how many proposals are new. The same renewal sent
    again within REPOST_MINUTES raises AlreadyDone, nothing written."""
    if method not in set(ConsentMethod):
        raise ServiceError(_l("Indiquez comment le consentement a été recueilli."))
    if session.exec(select(ResidentRequest.id).where(
            ResidentRequest.resident_id == resident.id, ResidentRequest.kind == RequestKind.ERASURE,
            col(ResidentRequest.handled_at).is_(None))).first() is not None:
        # Back in matching while the worker's page asks to erase them: one of the two is wrong.
        raise ServiceError(_l("La personne a demandé l'effacement de ses données : effacez-les, ou notez "
                              "d'abord en haut de sa fiche qu'elle a changé d'avis."))
    since = utcnow() - timedelta(minutes=REPOST_MINUTES)

    def twin(besides: int | None) -> int | None:
        """The same renewal recorded moments ago (a double tap): one consent in the register.
        Another method (the paper signed after an oral yes) or another worker is a new record,
        not a repeat: it was dropped while the page said « Consentement enregistré »."""
        return session.exec(select(Consent.id).where(
            Consent.resident_id == resident.id, Consent.given_on == today,
            Consent.method == method, Consent.recorded_by_id == worker.id,
            col(Consent.withdrawn_at).is_(None), col(Consent.created_at) >= since,
            col(Consent.id) != (besides or 0))).first()

    def add() -> Consent:
        consent = Consent(resident_id=resident.id or 0, given_on=today,
                          expires_on=add_months(today, consent_months), scope=ConsentScope.MATCHING,
                          method=method, recorded_by_id=worker.id or 0)
        session.add(consent)
        session.flush()
        return consent

    written_once(session, worker, twin, add)  # AlreadyDone for a double tap
    record(session, worker, "consent.record", "resident", resident.id, method=method,
           given_on=today.isoformat())
    session.commit()
    return propose_for_resident(session, matching, resident, today)


def reset_access_code(session: Session, worker: User, resident: Resident) -> str:
    """A new code for the resident; the old one stops working at once."""
    user = session.exec(select(User).where(User.resident_id == resident.id)).one()
    code = new_access_code()
    user.access_code_digest = code_digest(code)
    end_sessions(session, user, tokens=True)  # a lost phone stays logged in no more
    record(session, worker, "access_code.reset", "resident", resident.id)
    session.commit()
    return code


def territories(session: Session) -> list[Territory]:
    return list(session.exec(select(Territory).order_by(col(Territory.name))).all())


def organisation_of(session: Session, user: User) -> Organisation | None:
    return session.get(Organisation, user.organisation_id) if user.organisation_id else None


