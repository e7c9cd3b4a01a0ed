"""Relais's system of record: SQLModel tables.

Enumerations are stored as short strings (portable across SQLite and PostgreSQL, easy to
migrate); timestamps are timezone-aware UTC (SQLModel's UTCDateTime refuses naive values).
Statement vectors are stored here so that the FAISS index can always be rebuilt from the database
without re-encoding text.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, String, UniqueConstraint, event, false
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Aware UTC now: one convention for every timestamp, on every database."""
    return datetime.now(UTC)


def fold(text: str) -> str:
    """Lower case without accents ("Élodie" → "elodie", "Pâtisserie" → "patisserie")."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("œ", "oe")


def _name_key(context: Any) -> str:
    """Column default of Resident.name_key, for inserts that do not go through the ORM's events."""
    return fold(context.get_current_parameters().get("first_name") or "")


class OrganisationKind(StrEnum):
    CENTRE_SOCIAL = "centre_social"
    ASSOCIATION = "association"
    TIERS_LIEU = "tiers_lieu"
    COOPERATIVE = "cooperative"
    COLLECTIF_HABITANTS = "collectif_habitants"
    COLLECTIVITE = "collectivite"
    BAILLEUR = "bailleur"


class Role(StrEnum):
    ADMIN = "admin"
    SOCIAL_WORKER = "social_worker"
    ASSOCIATION_MEMBER = "association_member"
    RESIDENT = "resident"
    HABITANT_RELAIS = "habitant_relais"  # a resident mediator of a centre social, on a phone


class Want(StrEnum):
    VOLUNTEERING = "volunteering"
    TRAINING = "training"
    JOB = "job"
    ACTIVITY = "activity"


class Availability(StrEnum):
    WEEKDAY_MORNING = "weekday_morning"
    WEEKDAY_AFTERNOON = "weekday_afternoon"
    WEEKDAY_EVENING = "weekday_evening"
    WEEKEND = "weekend"


class ConsentMethod(StrEnum):
    PAPER_SIGNED = "paper_signed"
    ORAL_IN_PERSON = "oral_in_person"


class ConsentScope(StrEnum):
    MATCHING = "matching"  # profile used for matching, shown to approved associations


class NeedKind(StrEnum):
    SKILL = "skill"
    RESOURCE = "resource"


class NeedStatus(StrEnum):
    OPEN = "open"  # matched and shown
    PAUSED = "paused"  # kept, not matched for now (the association can reopen it)
    CLOSED = "closed"


class MatchStatus(StrEnum):
    PROPOSED = "proposed"  # made by the matcher, waiting for a social worker
    APPROVED = "approved"  # shown to the resident and the association
    REJECTED = "rejected"  # with a reason, never shown
    ACCEPTED = "accepted"  # the resident said yes
    DECLINED = "declined"  # the resident said no


class RejectionReason(StrEnum):
    BUSY = "busy"  # already busy
    LEVEL = "level"  # not the right level
    DISTANCE = "distance"  # too far
    SCHEDULE = "schedule"
    NOT_NOW = "not_now"  # resident not interested now
    OTHER = "other"  # with a text


class ValidationStatus(StrEnum):
    """Profiles and needs recorded by a habitant-relais wait for a social worker of the same
    organisation: out of matching (no statements, no index entry, no proposal) until validated."""

    VALIDATED = "validated"  # in matching (everything a social worker or an association records)
    PENDING = "pending"  # recorded by a habitant-relais, waiting for a social worker
    RETURNED = "returned"  # sent back to the habitant-relais with a word (validation_note)


class Direction(StrEnum):
    """Who made a proposal: the matcher for a need or for a resident, or a social worker from a
    need's page (a person they know can do it, whom the matcher did not put forward)."""

    NEED_TO_RESIDENT = "need_to_resident"
    RESIDENT_TO_NEED = "resident_to_need"
    WORKER = "worker"


class ContactChannel(StrEnum):
    """How an association reaches a resident who said yes (shown only after the yes)."""

    WORKER = "worker"  # through their social worker (the default: no contact detail given)
    PHONE = "phone"
    EMAIL = "email"


class Outcome(StrEnum):
    """What became of an accepted proposal, recorded by the association or the worker."""

    HAPPENED = "happened"
    DID_NOT_HAPPEN = "did_not_happen"


def _json_column() -> Any:
    return Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class Territory(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120)  # the neighbourhood
    commune: str = Field(max_length=120)
    qpv_code: str | None = Field(default=None, max_length=16)  # quartier prioritaire, if any
    # The neighbourhood's centre: distances are computed between neighbourhoods, never homes.
    latitude: float | None = None
    longitude: float | None = None
    created_at: datetime = Field(default_factory=utcnow)

    @property
    def coordinates(self) -> tuple[float, float] | None:
        if self.latitude is None or self.longitude is None:
            return None
        return (self.latitude, self.longitude)


class Organisation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    kind: str = Field(sa_type=String(32))
    territory_id: int | None = Field(default=None, foreign_key="territory.id")
    description: str = Field(default="", max_length=4000)
    created_at: datetime = Field(default_factory=utcnow)


class User(SQLModel, table=True):
    __tablename__ = "app_user"  # "user" is reserved in PostgreSQL

    id: int | None = Field(default=None, primary_key=True)
    email: str | None = Field(default=None, max_length=254, unique=True, index=True)
    display_name: str = Field(max_length=120)
    password_hash: str | None = Field(default=None, max_length=255)
    role: str = Field(sa_type=String(32))
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id")
    resident_id: int | None = Field(default=None, foreign_key="resident.id", unique=True)
    # Residents log in with a short code from their social worker; only its digest is kept.
    access_code_digest: str | None = Field(default=None, max_length=64, unique=True, index=True)
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    last_login_at: datetime | None = None
    # Password guessing: after LOCK_AFTER failures in a row the account waits LOCK_MINUTES.
    failed_logins: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    locked_until: datetime | None = None
    # Sessions carry it (`get_id`): raised when a password or access code is replaced or the
    # account deactivated, it ends every session opened before, everywhere.
    session_epoch: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # A temporary password (from an administrator) is replaced before anything else is done.
    must_change_password: bool = Field(default=False, sa_column_kwargs={"server_default": false()})

    # The three members Flask-Login reads (is_active is the column above).
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_epoch}"


class Resident(SQLModel, table=True):
    # A centre's residents by name (its lists), what waits for validation (migration 0010).
    # sqlite_autoincrement: an erased person's id is never given to another (migration 0017).
    # The review desk's and the lists' neighbourhood filter (migration 0022).
    __table_args__ = (Index("ix_resident_organisation_id_first_name", "organisation_id", "first_name"),
                      Index("ix_resident_validation_status_organisation_id", "validation_status",
                            "organisation_id"),
                      Index("ix_resident_territory_id", "territory_id"),
                      {"sqlite_autoincrement": True})

    id: int | None = Field(default=None, primary_key=True)
    first_name: str = Field(max_length=60)  # pseudonymous: a first name and an initial, no more
    # The first name folded (lower case, no accents), kept in step by the events below: a search
    # for "elodie" finds "Élodie" on SQLite (whose LIKE folds ASCII only) and on PostgreSQL alike.
    name_key: str | None = Field(default=None, max_length=60, sa_column_kwargs={"default": _name_key})
    last_initial: str = Field(default="", max_length=1)
    territory_id: int = Field(foreign_key="territory.id")
    organisation_id: int = Field(foreign_key="organisation.id")  # the centre that follows them
    languages: list[str] = _json_column()
    availability: list[str] = _json_column()
    wants: list[str] = _json_column()
    # No foreign key here: app_user already points at resident (a resident's login), and a cycle
    # would make table creation order ambiguous. The audit trail records the author as well.
    created_by_id: int = Field(index=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # See ValidationStatus. validated_by_id has no foreign key for the reason given above.
    validation_status: str = Field(default=ValidationStatus.VALIDATED, sa_type=String(16),
                                   sa_column_kwargs={"server_default": "validated"})
    validated_by_id: int | None = None
    validated_at: datetime | None = None
    validation_note: str | None = Field(default=None, max_length=500)
    # Chosen by the resident (or their worker); associations see it only once the resident accepts.
    contact_channel: str = Field(default=ContactChannel.WORKER, sa_type=String(16),
                                 sa_column_kwargs={"server_default": "worker"})
    contact_value: str | None = Field(default=None, max_length=254)  # the phone number or address
    # Retention (web/services/privacy.py): when the person was warned that their inactive profile
    # will be anonymised; a later activity voids the warning.
    retention_warned_at: datetime | None = None

    @property
    def public_name(self) -> str:
        """First name and initial: all an association ever sees."""
        return f"{self.first_name} {self.last_initial}." if self.last_initial else self.first_name


@event.listens_for(Resident, "before_insert")
@event.listens_for(Resident, "before_update")
def _fold_name(_mapper: Any, _connection: Any, resident: Resident) -> None:
    resident.name_key = fold(resident.first_name or "")


class Consent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    resident_id: int = Field(foreign_key="resident.id", index=True)
    given_on: date
    scope: str = Field(sa_type=String(32))
    method: str = Field(sa_type=String(32))
    recorded_by_id: int = Field(foreign_key="app_user.id")
    expires_on: date | None = None
    withdrawn_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)

    def is_valid(self, today: date) -> bool:
        """True while the resident's consent covers matching."""
        return (
            self.withdrawn_at is None
            and self.given_on <= today
            and (self.expires_on is None or today <= self.expires_on)
            and self.scope == ConsentScope.MATCHING
        )


class SkillDeclaration(SQLModel, table=True):
    """What a resident can do, in their own words (every version kept)."""

    id: int | None = Field(default=None, primary_key=True)
    resident_id: int = Field(foreign_key="resident.id", index=True)
    text: str
    is_current: bool = True
    created_by_id: int = Field(foreign_key="app_user.id")
    created_at: datetime = Field(default_factory=utcnow)


class SkillStatement(SQLModel, table=True):
    """One statement of a declaration, with its vector."""

    # The impact dashboard's counts read these columns without the rows (and their vectors).
    __table_args__ = (Index("ix_skillstatement_resident_id_category", "resident_id", "negated",
                            "declaration_id", "category"),)

    id: int | None = Field(default=None, primary_key=True)
    declaration_id: int = Field(foreign_key="skilldeclaration.id", index=True)
    resident_id: int = Field(foreign_key="resident.id", index=True)
    position: int
    text: str
    norm: str
    negated: bool = False
    languages: list[str] = _json_column()
    lemmas: list[str] = _json_column()  # for lexical scoring and shared-term explanations
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    embedder: str = Field(max_length=120)
    # The impact dashboard's skill category (web.services.categories), worked out when written.
    category: str = Field(max_length=16)


class Need(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    territory_id: int | None = Field(default=None, foreign_key="territory.id")
    kind: str = Field(default=NeedKind.SKILL, sa_type=String(16))
    title: str = Field(max_length=200)
    description: str
    when_text: str = Field(default="", max_length=200)
    where_text: str = Field(default="", max_length=200)
    languages: list[str] = _json_column()
    availability: list[str] = _json_column()  # when it happens, in the residents' slots
    status: str = Field(default=NeedStatus.OPEN, sa_type=String(16))
    created_by_id: int = Field(foreign_key="app_user.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # The mission id of a need imported from a feed (API Engagement's "_id" or "clientId"):
    # importing the same mission again updates this row instead of adding another.
    external_id: str | None = Field(default=None, max_length=100, index=True)
    # See ValidationStatus: a need seen in the neighbourhood by a habitant-relais waits here.
    validation_status: str = Field(default=ValidationStatus.VALIDATED, sa_type=String(16),
                                   sa_column_kwargs={"server_default": "validated"})
    validated_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    validated_at: datetime | None = None
    validation_note: str | None = Field(default=None, max_length=500)
    people_wanted: int | None = None  # how many people (or units of a resource); None: not said

    @property
    def open_to_proposals(self) -> bool:
        """Open and validated: people may be proposed for it."""
        return self.status == NeedStatus.OPEN and self.validation_status == ValidationStatus.VALIDATED


class NeedStatement(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    need_id: int = Field(foreign_key="need.id", index=True)
    position: int
    text: str
    norm: str
    is_title: bool = False
    lemmas: list[str] = _json_column()
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    embedder: str = Field(max_length=120)


class HybridArtefact(SQLModel, table=True):
    """What the hybrid ranker (matcher/hybrid.py) indexes for one resident's current declaration
    (its non-negated statements) or one need (title + description): vectors, stems, n-grams.

    Written with the statements, in the same transaction; every process's index is rebuilt from
    these rows without re-encoding. `encoders` says which encoders built it ("use+e5" or "use")."""

    __table_args__ = (UniqueConstraint("collection", "doc_id"),)

    id: int | None = Field(default=None, primary_key=True)
    collection: str = Field(sa_type=String(16))  # "residents" or "needs"
    doc_id: int
    encoders: str = Field(max_length=20)
    artefact: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class Match(SQLModel, table=True):
    """A proposal linking a resident and a need, and its review workflow."""

    # The second index lets the impact dashboard count proposals per month without reading the
    # rows (and their explanations): by resident for one neighbourhood, whole for all.
    # sqlite_autoincrement: a withdrawn (deleted) proposal's id is never given to another one, which a
    # review page still open would act on (migration 0016; PostgreSQL never reuses ids).
    __table_args__ = (UniqueConstraint("need_id", "resident_id"),
                      Index("ix_match_resident_id_dates", "resident_id", "status", "created_at",
                            "reviewed_at", "answered_at", "outcome", "outcome_at"),
                      {"sqlite_autoincrement": True})

    id: int | None = Field(default=None, primary_key=True)
    need_id: int = Field(foreign_key="need.id", index=True)
    resident_id: int = Field(foreign_key="resident.id", index=True)
    status: str = Field(default=MatchStatus.PROPOSED, sa_type=String(16), index=True)
    direction: str = Field(sa_type=String(24))
    score: float
    # Why, as shown at review: {"pairs": [{"resident_text", "need_text", "similarity"}],
    # "shared_terms": [...], "reasons": [filters met, boosts], "score": float}.
    explanation: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    reviewed_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    reviewed_at: datetime | None = None
    rejection_code: str | None = Field(default=None, sa_type=String(16))
    rejection_note: str | None = Field(default=None, max_length=1000)
    answered_at: datetime | None = None
    resident_comment: str | None = Field(default=None, max_length=1000)
    # What became of an accepted proposal (Outcome), with a word, by whom and when.
    outcome: str | None = Field(default=None, sa_type=String(16))
    outcome_note: str | None = Field(default=None, max_length=200)
    outcome_at: datetime | None = None
    outcome_by_id: int | None = Field(default=None, foreign_key="app_user.id")


class AuditEvent(SQLModel, table=True):
    """Who did what, when. Append-only: rows are never updated or deleted."""

    # A resident's history and export read the events about them (migration 0010);
    # `GET /residents/erased?since=` reads one action from a moment (0022). The journal's filter
    # by action prefix (a LIKE) does not use it.
    __table_args__ = (Index("ix_auditevent_object_type_object_id", "object_type", "object_id"),
                      Index("ix_auditevent_action_at", "action", "at"))

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)
    action: str = Field(max_length=64)
    object_type: str = Field(max_length=32)
    object_id: int | None = None
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class IndexEvent(SQLModel, table=True):
    """A change the FAISS indexes must follow; its id is the generation stamp."""

    id: int | None = Field(default=None, primary_key=True)
    collection: str = Field(max_length=16)  # "residents" or "needs"
    doc_id: int
    op: str = Field(max_length=8)  # "upsert" or "delete"
    at: datetime = Field(default_factory=utcnow)


class JobStatus(StrEnum):
    DRAFT = "draft"  # an uploaded file waiting for its preview to be confirmed
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"


class BackgroundJob(SQLModel, table=True):
    """A long task (bulk import, full reindex) run by RQ or inline; the job updates its progress
    here, and the page that follows it reads this row. Jobs receive only this row's id."""

    __tablename__ = "background_job"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)  # "import_residents", "import_needs", "reindex"
    status: str = Field(default=JobStatus.QUEUED, sa_type=String(16), index=True)
    stage: str = Field(default="", max_length=32)  # what it is doing now, for the page
    progress: int = 0
    total: int = 0
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # The uploaded file, kept only until the job ends (personal data: dropped on success or failure).
    payload: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    result: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    error: str | None = Field(default=None, max_length=4000)  # French, for the person
    created_by_id: int = Field(foreign_key="app_user.id", index=True)
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id")
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class AppendOnlyError(RuntimeError):
    """Raised when code tries to change or delete an audit event."""


@event.listens_for(AuditEvent, "before_update")
def _no_audit_update(*_: Any) -> None:
    raise AppendOnlyError("audit events are append-only")


@event.listens_for(AuditEvent, "before_delete")
def _no_audit_delete(*_: Any) -> None:
    raise AppendOnlyError("audit events are append-only")


class ClosedSession(SQLModel, table=True):
    """A browser session ended by « Se déconnecter ». Its cookie is signed and stays valid until
    it expires: a copy (a shared computer's profile, a proxy's log) was still logged in after the
    logout. Refused from then on; rows go once the cookie would have expired (the retention run).
    A random id, nobody's name: it says nothing about the person."""

    __tablename__ = "closed_session"

    sid: str = Field(primary_key=True, max_length=32)
    expires_at: datetime = Field(index=True)


class WithdrawnProposal(SQLModel, table=True):
    """A proposal withdrawn before its review or its answer (its need or the person's text
    changed, the need paused or closed, consent withdrawn, a closer one taking its place at the
    person's monthly cap), or any proposal of an erased person, is deleted from `match`; its id stays
    here for partner tools keeping copies of `GET /proposals` (`GET /proposals/withdrawn`). Ids
    only: nobody's name. Rows go after WITHDRAWN_KEPT_DAYS (the retention run)."""

    __tablename__ = "withdrawn_proposal"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})  # the proposal's id
    organisation_id: int | None = Field(default=None, index=True)  # the person's centre then
    withdrawn_at: datetime = Field(default_factory=utcnow, index=True)


class ApiToken(SQLModel, table=True):
    """A personal API token. It acts as its user (same role, same organisation, same rules);
    only the SHA-256 digest of the secret is kept, the secret is shown once at creation."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    name: str = Field(max_length=80)  # what the person calls it ("tableur du centre")
    token_digest: str = Field(max_length=64, unique=True, index=True)
    prefix: str = Field(max_length=16)  # the first characters, to tell tokens apart in lists
    scopes: list[str] = _json_column()  # "read", and "write" for tokens that may change data
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class Notification(SQLModel, table=True):
    """A message for one user in the app (and in the email digest for staff)."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    kind: str = Field(max_length=32)  # "to_review", "opportunity", "answered", "outcome", "consent"
    text: str = Field(max_length=300)  # French, no free text typed by a resident
    # The French msgid and its values: the list shows the text in the reader's language (the
    # English pages). Empty on notifications written before (the text is shown as it is).
    message: str = Field(default="", max_length=300)
    message_values: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    link: str = Field(default="", max_length=300)  # a path inside Relais
    created_at: datetime = Field(default_factory=utcnow, index=True)
    read_at: datetime | None = None
    emailed_at: datetime | None = None  # sent in a digest (each notification is sent once)


class RequestKind(StrEnum):
    CHANGE = "change"  # "Ce que je sais faire": the resident asks their worker to change the text
    ERASURE = "erasure"  # "Mes données": the resident asks for their data to be erased


class ResidentRequest(SQLModel, table=True):
    """A resident's request to their social worker (a change of their text, an erasure)."""

    __tablename__ = "resident_request"

    id: int | None = Field(default=None, primary_key=True)
    resident_id: int = Field(foreign_key="resident.id", index=True)
    kind: str = Field(sa_type=String(16))
    message: str = Field(default="", max_length=1000)  # in the resident's words; never audited
    created_at: datetime = Field(default_factory=utcnow)
    handled_at: datetime | None = None
    handled_by_id: int | None = Field(default=None, foreign_key="app_user.id")


class AnonymousCount(SQLModel, table=True):
    """What erasure and retention keep for statistics: counts, never a person.

    One row per erased person and per (need, status, month) of their proposals; readers sum the
    counts. No foreign keys: these rows must outlive anything they count.
    """

    __tablename__ = "anonymous_count"

    id: int | None = Field(default=None, primary_key=True)
    metric: str = Field(max_length=32)  # "resident" or "proposal"
    month: str = Field(max_length=7)  # "YYYY-MM" the counted thing was created
    territory_id: int | None = None
    organisation_id: int | None = None
    need_id: int | None = None
    status: str = Field(default="", max_length=16)  # a proposal's status; why a resident went
    count: int = 1
    created_at: datetime = Field(default_factory=utcnow)
