"""Habitants-relais record profiles and needs seen in the neighbourhood; a social worker of the
same organisation validates them (they enter matching) or sends them back with a word.

Until validated, a submission has no statements, no index entry, no resident login and no
proposal (web.services.profiles.add_resident and web.services.needs.add_need leave them out, and
web.services.proposals only matches validated rows). `validated_by_id` and `validated_at` hold
who took the last decision and when (validated, or sent back).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlmodel import Session, col, select

from matcher.sensitive import find_sensitive
from models import Need, Resident, Role, SkillDeclaration, User, ValidationStatus, utcnow
from web.services import AlreadyDone, ChangedMeanwhile, ServiceError, notifications, tidy
from web.services.audit import record
from web.services.matching import MatchingService
from web.services.needs import update_need
from web.services.profiles import NOTHING_TO_READ, Rewritten, add_resident_login, update_declaration
from web.services.proposals import propose_for_need, propose_for_resident
from web.services.queries import REPOST_MINUTES, update_if

MAX_NOTE_CHARS = 500
SENSITIVE_TO_CONFIRM = _l("Ce texte semble contenir des informations sensibles : vérifiez avec la "
                          "personne qu'elles sont nécessaires et cochez la case, ou corrigez le texte, "
                          "avant de valider.")


@dataclass
class Submissions:
    """Profiles and needs recorded by habitants-relais."""

    residents: list[Resident] = field(default_factory=list)
    needs: list[Need] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.residents) + len(self.needs)


@dataclass
class Validated:
    access_code: str  # the resident's new login code, shown once to the social worker
    proposals: int


def pending_for(session: Session, worker: User) -> Submissions:
    """What waits for the social worker: submissions of their organisation (admins: all)."""
    residents = select(Resident).where(Resident.validation_status == ValidationStatus.PENDING)
    needs = select(Need).where(Need.validation_status == ValidationStatus.PENDING)
    if worker.role != Role.ADMIN:
        residents = residents.where(Resident.organisation_id == worker.organisation_id)
        needs = needs.where(Need.organisation_id == worker.organisation_id)
    return Submissions(
        list(session.exec(residents.order_by(col(Resident.created_at), col(Resident.id))).all()),
        list(session.exec(needs.order_by(col(Need.created_at), col(Need.id))).all()))


def submitted_by(session: Session, relais: User) -> Submissions:
    """What a habitant-relais recorded, newest first, whatever its status (nobody else's)."""
    return Submissions(
        list(session.exec(select(Resident).where(
            Resident.created_by_id == relais.id, Resident.organisation_id == relais.organisation_id)
            .order_by(col(Resident.created_at).desc(), col(Resident.id).desc())).all()),
        list(session.exec(select(Need).where(
            Need.created_by_id == relais.id, Need.organisation_id == relais.organisation_id)
            .order_by(col(Need.created_at).desc(), col(Need.id).desc())).all()))


def submission_authors(session: Session, submissions: Submissions) -> dict[int, User]:
    """The habitants-relais behind `submissions`, by id."""
    ids = {r.created_by_id for r in submissions.residents} | {n.created_by_id for n in submissions.needs}
    return {u.id or 0: u for u in session.exec(select(User).where(col(User.id).in_(ids))).all()}


def current_declaration(session: Session, resident: Resident) -> SkillDeclaration | None:
    return session.exec(select(SkillDeclaration).where(
        SkillDeclaration.resident_id == resident.id, col(SkillDeclaration.is_current).is_(True))
        .order_by(col(SkillDeclaration.id).desc())).first()


def _check_pending(row: Resident | Need) -> None:
    if row.validation_status != ValidationStatus.PENDING:
        raise ServiceError(_l("Cette fiche a déjà été examinée."))


def _check_note(note: str) -> str:
    note = note.strip()
    if not note:
        raise ServiceError(_l("Écrivez un mot pour la personne qui a fait la fiche : que faut-il "
                              "revoir ?"))
    if len(note) > MAX_NOTE_CHARS:
        raise ServiceError(_l("Le mot est trop long (500 caractères au plus)."))
    return note


def _move(session: Session, row: Resident | Need, before: ValidationStatus, after: ValidationStatus,
          **values: Any) -> None:
    """Change a submission's state only if the database still holds it in `before`: two workers
    may read it at once (validate here, send back there), and the second decision must not be
    written over the first (a profile sent back after its validation had a login and indexed
    statements and could be resubmitted)."""
    if not update_if(session, row, col(type(row).validation_status), before,
                     validation_status=after, **values):
        raise ServiceError(_l("Cette fiche a déjà été examinée.") if before == ValidationStatus.PENDING
                           else _l("Cette fiche attend déjà la validation ou a été validée."))
    if before == ValidationStatus.RETURNED:  # corrected, or validated anyway: nothing to correct now
        notifications.forget_returned(session, row)


def _decide(session: Session, row: Resident | Need, worker: User, status: ValidationStatus,
            note: str | None) -> None:
    try:
        _move(session, row, ValidationStatus(row.validation_status), status, validated_by_id=worker.id,
              validated_at=utcnow(), validation_note=note)
    except ServiceError:
        # Two taps at once both found it waiting; the first validated it: the second is AlreadyDone.
        if status == ValidationStatus.VALIDATED and _validated_just_now(session, row, worker):
            session.rollback()
            raise AlreadyDone(row.id or 0) from None
        raise


def _check_to_validate(session: Session, row: Resident | Need, worker: User) -> None:
    """A submission waits for validation, or was sent back: the worker may validate it then too
    (they corrected it themselves, or the habitant-relais who would have left). Validated by the
    same worker moments ago (a double click): AlreadyDone."""
    if row.validation_status in (ValidationStatus.PENDING, ValidationStatus.RETURNED):
        return
    if _validated_just_now(session, row, worker):
        raise AlreadyDone(row.id or 0)
    raise ServiceError(_l("Cette fiche a déjà été validée."))


def _validated_just_now(session: Session, row: Resident | Need, worker: User) -> bool:
    """Whether the database holds `row` validated by `worker` moments ago."""
    model = type(row)
    since = utcnow() - timedelta(minutes=REPOST_MINUTES)
    return session.exec(select(model.id).where(
        model.id == row.id, model.validation_status == ValidationStatus.VALIDATED,
        model.validated_by_id == worker.id, col(model.validated_at) >= since)).first() is not None


def validate_resident(session: Session, matching: MatchingService, worker: User,
                      resident: Resident, today: date, sensitive_ok: bool = False) -> Validated:
    """The profile enters matching: its text is analysed and indexed, the resident gets a login
    code, and needs are proposed (committed). A text that seems to hold sensitive data enters only
    when the worker confirms it (`sensitive_ok`), as when they type it themselves: the
    habitant-relais's confirmation alone put health or religion into matching in one click."""
    _check_to_validate(session, resident, worker)
    declaration = current_declaration(session, resident)
    analysis = matching.analyze(declaration.text) if declaration else None
    if declaration is None or analysis is None or not analysis.statements:
        raise ServiceError(NOTHING_TO_READ)
    sensitive = sorted({f.category for f in find_sensitive(declaration.text)})
    if sensitive and not sensitive_ok:
        raise ServiceError(SENSITIVE_TO_CONFIRM)
    _decide(session, resident, worker, ValidationStatus.VALIDATED, None)
    # The text analysed is still the current one? A colleague's edit while it was analysed would
    # otherwise leave the new text out of the index and the old one in it.
    still = session.exec(select(SkillDeclaration.is_current).where(SkillDeclaration.id == declaration.id))
    if not still.first():
        session.rollback()
        raise ChangedMeanwhile(_l("Le texte vient d'être changé pendant la validation : relisez-le, puis "
                                  "validez à nouveau."))
    matching.store_declaration(session, declaration, analysis)
    resident.languages = list(dict.fromkeys([*resident.languages, *analysis.languages]))
    has_login = session.exec(select(User).where(User.resident_id == resident.id)).first()
    code = "" if has_login else add_resident_login(session, resident)
    resident.updated_at = utcnow()
    session.add(resident)
    # The categories the worker confirmed, not the words: the journal outlives the text.
    record(session, worker, "resident.validate", "resident", resident.id,
           **({"sensitive_confirmed": sensitive} if sensitive else {}))
    session.commit()
    return Validated(code, propose_for_resident(session, matching, resident, today))


def validate_need(session: Session, matching: MatchingService, worker: User, need: Need,
                  today: date) -> int:
    """The need enters matching: statements, index entry, proposals (committed)."""
    _check_to_validate(session, need, worker)
    _decide(session, need, worker, ValidationStatus.VALIDATED, None)
    matching.store_need(session, need)
    need.updated_at = utcnow()
    session.add(need)
    record(session, worker, "need.validate", "need", need.id)
    session.commit()
    return propose_for_need(session, matching, need, today)


def can_correct(author: User | None) -> bool:
    """Whether the author of a submission can correct it once sent back: an active habitant-relais
    (a profile imported « à valider » has none, and sent back it would wait for nobody)."""
    return author is not None and author.role == Role.HABITANT_RELAIS and author.is_active


def send_back(session: Session, worker: User, row: Resident | Need, note: str) -> None:
    """Return a submission to its habitant-relais with a word saying what to change: only one a
    habitant-relais wrote and can still correct (a profile imported « à valider » has none, and
    sent back it waited for nobody)."""
    _check_pending(row)
    if not can_correct(session.get(User, row.created_by_id)):
        raise ServiceError(_l("Aucun·e habitant·e-relais ne peut corriger cette fiche : corrigez-la "
                              "vous-même, puis validez-la."))
    note = _check_note(note)
    _decide(session, row, worker, ValidationStatus.RETURNED, note)
    kind = "resident" if isinstance(row, Resident) else "need"
    record(session, worker, f"{kind}.send_back", kind, row.id)  # the note is free text: not here
    notifications.submission_returned(session, row)
    session.commit()


def _back_to_validation(session: Session, row: Resident | Need, sent_just_now: Callable[[], bool]) -> None:
    """A submission sent back moves to waiting for validation again. It no longer waits for its
    correction: AlreadyDone when `sent_just_now()` (the same correction sent moments ago: a double
    tap), else ServiceError (the centre took it back meanwhile: validated it, or the page was old)."""
    if row.validation_status == ValidationStatus.RETURNED:
        try:  # updated_at: when it was sent again (`sent_just_now` reads it for a need unchanged)
            _move(session, row, ValidationStatus.RETURNED, ValidationStatus.PENDING, updated_at=utcnow())
            return
        except ServiceError:
            session.rollback()
    if sent_just_now():
        raise AlreadyDone(row.id or 0)
    session.refresh(row, ["validation_status"])
    if row.validation_status == ValidationStatus.PENDING:
        raise ServiceError(_l("Votre correction d'avant attend déjà le centre social : celle-ci n'est pas "
                              "enregistrée. Dites-la à la personne du centre."))
    raise ServiceError(_l("Le centre social a déjà repris cette fiche : votre correction n'est pas "
                          "enregistrée. Dites-la à la personne du centre."))


def _since() -> datetime:
    return utcnow() - timedelta(minutes=REPOST_MINUTES)


def resubmit_resident(session: Session, matching: MatchingService, relais: User,
                      resident: Resident, text: str) -> Rewritten:
    """The habitant-relais corrects a profile sent back to them; it waits for validation again.
    The languages the old text gave and the new one does not say leave with it: said back."""

    def sent_just_now() -> bool:
        return session.exec(select(SkillDeclaration.id).join(
            Resident, col(Resident.id) == SkillDeclaration.resident_id).where(
            SkillDeclaration.resident_id == resident.id, col(SkillDeclaration.is_current).is_(True),
            SkillDeclaration.created_by_id == relais.id, col(SkillDeclaration.created_at) >= _since(),
            SkillDeclaration.text == text.strip(),
            Resident.validation_status == ValidationStatus.PENDING)).first() is not None

    _back_to_validation(session, resident, sent_just_now)
    record(session, relais, "resident.resubmit", "resident", resident.id)
    try:
        return update_declaration(session, matching, relais, resident, text)  # commits; out of the index
    except ServiceError:
        session.rollback()  # still sent back, as it was
        raise


def resubmit_need(session: Session, matching: MatchingService, relais: User, need: Need,
                  title: str, description: str, languages: list[str], today: date) -> None:
    """The habitant-relais corrects a need sent back to them (its words and the languages it asks);
    it waits for validation again."""

    def sent_just_now() -> bool:
        return session.exec(select(Need.id).where(
            Need.id == need.id, Need.validation_status == ValidationStatus.PENDING,
            Need.created_by_id == relais.id, col(Need.updated_at) >= _since(),
            Need.title == tidy(title), Need.description == tidy(description))).first() is not None

    _back_to_validation(session, need, sent_just_now)
    record(session, relais, "need.resubmit", "need", need.id)
    try:
        update_need(session, matching, relais, need,
                    {"title": title, "description": description, "languages": languages}, today,
                    source="relais")
    except ServiceError:
        session.rollback()
        raise
    session.commit()  # when nothing else changed, the new status still counts
