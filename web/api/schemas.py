"""marshmallow schemas: what the API reads and writes, and the OpenAPI document built from them.

Output schemas mark every field `required` so the published document says exactly what a client
always receives; input schemas reject unknown fields (query strings excepted).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate

from models import (
    Availability,
    MatchStatus,
    NeedKind,
    NeedStatus,
    RejectionReason,
    Role,
    ValidationStatus,
    Want,
)
from web.forms import KNOWN_LANGUAGES, LANGUAGE_LABELS
from web.services.queries import MAX_ID

LANGUAGES = sorted(LANGUAGE_LABELS)
RESIDENT_LANGUAGES = sorted(KNOWN_LANGUAGES)  # a profile also keeps the languages its text names


# Texts never hold a NUL character (PostgreSQL refuses them), and some must not be blank (the
# services refuse blank texts). Character classes are spelt out so that Python and JSON Schema
# (ECMA 262) read the patterns alike; each field has one pattern, as OpenAPI allows.
class TextPattern(validate.Regexp):
    """The pattern, and no lone surrogate: a JSON "\\ud800" escape decodes to one, which cannot be
    stored or sent back as UTF-8 (it crashed the database driver). Documented as the pattern alone."""

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str) and any("\ud800" <= ch <= "\udfff" for ch in value):
            raise ValidationError("Le texte contient un caractère invalide (U+D800 à U+DFFF seul).")
        return super().__call__(value)


NO_NUL = TextPattern(r"^[^\x00]*$", error="Le texte contient un caractère nul (U+0000).")
NOT_BLANK = TextPattern(r"^[^\x00]*[^\x00 \t\n\r\f\v][^\x00]*$",
                        error="Le texte est vide ou contient un caractère nul (U+0000).")


class Whole(fields.Integer):
    """An integer that refuses 1.5 (marshmallow's own truncates it to 1: "people_wanted": 1.5 saved
    1, "territory_id": 1.5 moved a profile)."""

    def _validated(self, value: Any) -> Any:
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid")
        return super()._validated(value)


class Flag(fields.Boolean):
    """A JSON true or false, nothing else: marshmallow's own also reads "on", "off", "yes", 1, 0…
    as booleans ("sensitive_ok": "on" kept health data; "accept": "off" said an irreversible no)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class Instant(fields.AwareDateTime):
    """An ISO 8601 instant (UTC when no offset is given) that the database and the French dates
    shown can hold: year 1 at +14:00 lies before the first instant a datetime holds in UTC, and
    9999-12-31 in UTC after the last one in Paris."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(default_timezone=UTC, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            year = moment.astimezone(UTC).year
        except OverflowError:
            year = 0
        if not 2 <= year <= 9998:
            raise ValidationError("Date hors des limites (entre l'an 2 et l'an 9998).")
        return moment


class Since(Instant):
    """An instant a list is filtered from: one before year 2 (or whose UTC time is) reads as year
    2, one after 9998 as its end, which select what it would. Refused, they were a 422 that the
    document's date-time could not say (schemathesis sent year 1)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        moment = fields.AwareDateTime._deserialize(self, value, attr, data, **kwargs)
        try:
            utc = moment.astimezone(UTC)
        except OverflowError:  # before the first or after the last instant a datetime holds in UTC
            return datetime(2 if moment.year < 2 else 9998, 1, 1, tzinfo=UTC)
        return utc.replace(year=min(max(utc.year, 2), 9998))


def _out(field: type[fields.Field], **kwargs: Any) -> Any:
    """An output field: always present (nullable only when said)."""
    return field(required=True, **kwargs)


def Id(**kwargs: Any) -> Any:  # noqa: N802 - reads like a field class
    return Whole(validate=validate.Range(min=1, max=MAX_ID), **kwargs)


class ProblemSchema(Schema):
    """An error (RFC 9457 problem details); `detail` is a French sentence for a person."""

    type = _out(fields.String, metadata={"example": "about:blank"})
    title = _out(fields.String, metadata={"example": "Accès refusé"})
    status = _out(fields.Integer, metadata={"example": 403})
    detail = _out(fields.String, metadata={"example": "Votre compte n'a pas accès à cette ressource."})
    instance = _out(fields.String, metadata={"example": "/api/v1/residents/12"})
    errors = fields.Raw(metadata={"description": "For invalid input: where, and what is wrong."})


# ---------------------------------------------------------------- query strings and pages

# Query strings are parsed strictly: a misspelt filter (`update_since`) is an error, not ignored.
QUERY = {"location": "query", "as_kwargs": True, "unknown": RAISE}

class PageArgs(Schema):
    limit = Whole(load_default=50, validate=validate.Range(min=1, max=200),
                           metadata={"description": "Items per page (1 to 200)."})
    offset = Whole(load_default=0, validate=validate.Range(min=0, max=MAX_ID),
                            metadata={"description": "Items to skip (ordering is by id, ascending)."})


class SinceArgs(PageArgs):
    updated_since = Since(
        load_default=None,
        metadata={"description": "Only items changed at or after this instant (ISO 8601; UTC when "
                                 "no offset is given): for incremental sync."})


class ResidentArgs(SinceArgs):
    territory_id = Id(load_default=None)
    organisation_id = Id(load_default=None)


class ErasedArgs(Schema):
    since = Since(required=True, metadata={
        "description": "Erasures at or after this instant (ISO 8601; UTC when no offset is given)."})


class ErasedSchema(Schema):
    id = _out(fields.Integer, metadata={"description": "The erased resident's id."})
    erased_at = _out(fields.AwareDateTime, metadata={"description": "When the person was erased."})


class ErasedListSchema(Schema):
    items = fields.List(fields.Nested(ErasedSchema), required=True)


class WithdrawnArgs(PageArgs):
    since = Since(required=True, metadata={
        "description": "Withdrawals at or after this instant (ISO 8601; UTC when no offset is given)."})


class WithdrawnSchema(Schema):
    id = _out(fields.Integer, metadata={"description": "The withdrawn proposal's id (never given again)."})
    withdrawn_at = _out(fields.AwareDateTime, metadata={"description": "When it was withdrawn."})


class NeedArgs(SinceArgs):
    organisation_id = Id(load_default=None)
    territory_id = Id(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(list(NeedStatus)))
    kind = fields.String(load_default=None, validate=validate.OneOf(list(NeedKind)))
    external_id = fields.String(load_default=None, validate=[validate.Length(min=1, max=100), NO_NUL])


class ProposalArgs(PageArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(list(MatchStatus)))
    need_id = Id(load_default=None)
    resident_id = Id(load_default=None)
    changed_since = Since(
        load_default=None,
        metadata={"description": "Only proposals made, reviewed or answered at or after this instant, or "
                                 "whose `closed` may have changed then (their need changed, the person's "
                                 "consent given or withdrawn). A proposal withdrawn before its review or "
                                 "answer is deleted, not listed here: `GET /proposals/withdrawn` lists it."})


class OpportunityArgs(PageArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(
        [MatchStatus.APPROVED, MatchStatus.ACCEPTED, MatchStatus.DECLINED]))


def page_schema(item: type[Schema], name: str) -> type[Schema]:
    """A page of `item`: the items, the total count and where the next page starts."""
    return Schema.from_dict({
        "items": _out(fields.List, cls_or_instance=fields.Nested(item)),
        "total": _out(fields.Integer, metadata={"description": "Items matching the filters."}),
        "limit": _out(fields.Integer),
        "offset": _out(fields.Integer),
        "next_offset": _out(fields.Integer, allow_none=True,
                            metadata={"description": "The next page's offset, null on the last page."}),
    }, name=name)


# ---------------------------------------------------------------- reference data

class TerritorySchema(Schema):
    id = _out(fields.Integer)
    name = _out(fields.String)
    commune = _out(fields.String)
    qpv_code = _out(fields.String, allow_none=True,
                    metadata={"description": "Code of the quartier prioritaire, if any."})
    latitude = _out(fields.Float, allow_none=True)
    longitude = _out(fields.Float, allow_none=True)
    created_at = _out(fields.DateTime)


class OrganisationSchema(Schema):
    id = _out(fields.Integer)
    name = _out(fields.String)
    kind = _out(fields.String)
    territory_id = _out(fields.Integer, allow_none=True)
    description = _out(fields.String)
    created_at = _out(fields.DateTime)


class OrganisationPatch(Schema):
    description = fields.String(required=True, validate=[validate.Length(max=4000), NO_NUL], metadata={
        "description": "Who the organisation is, where to find it, when to come: residents read it "
                       "beside its needs (the whole text; empty removes it)."})


class TokenInfoSchema(Schema):
    name = _out(fields.String)
    prefix = _out(fields.String)
    scopes = _out(fields.List, cls_or_instance=fields.String())
    expires_at = _out(fields.DateTime, allow_none=True)


class MeSchema(Schema):
    id = _out(fields.Integer)
    display_name = _out(fields.String)
    role = _out(fields.String, validate=validate.OneOf(list(Role)))
    organisation_id = _out(fields.Integer, allow_none=True)
    resident_id = _out(fields.Integer, allow_none=True)
    token = _out(fields.Nested, nested=TokenInfoSchema)


# ---------------------------------------------------------------- residents and declarations

class ConsentSchema(Schema):
    given_on = _out(fields.Date)
    expires_on = _out(fields.Date, allow_none=True)
    method = _out(fields.String)
    valid = _out(fields.Boolean, metadata={
        "description": "True while the consent covers matching today. The person is in matching when "
                       "their profile is validated too (`validation_status`)."})


# A habitant-relais's submission waits out of matching (read by its centre only) until a social
# worker validates it: a tool must tell it from a published need or a validated profile.
VALIDATION_STATUS = {
    "validate": validate.OneOf(list(ValidationStatus)),
    "metadata": {"description": "validated: in Relais. pending: noted by a habitant-relais (or imported "
                                "« à valider »), out of matching until a social worker of its centre "
                                "validates it. returned: sent back to its habitant-relais for correction."}}


class ResidentSchema(Schema):
    id = _out(fields.Integer)
    first_name = _out(fields.String)
    last_initial = _out(fields.String)
    public_name = _out(fields.String, metadata={"description": "First name and initial."})
    territory_id = _out(fields.Integer)
    organisation_id = _out(fields.Integer)
    languages = _out(fields.List, cls_or_instance=fields.String())
    availability = _out(fields.List, cls_or_instance=fields.String())
    wants = _out(fields.List, cls_or_instance=fields.String())
    consent = _out(fields.Nested, nested=ConsentSchema, allow_none=True)
    validation_status = _out(fields.String, **VALIDATION_STATUS)
    created_at = _out(fields.DateTime)
    updated_at = _out(fields.DateTime)


class ResidentPatch(Schema):
    """The fields to change (any of them; those left out keep their value)."""

    first_name = fields.String(validate=[validate.Length(min=1, max=60), NOT_BLANK])
    last_initial = fields.String(validate=[validate.Length(max=1), NO_NUL])
    territory_id = Id()
    languages = fields.List(fields.String(validate=validate.OneOf(RESIDENT_LANGUAGES)),
                            validate=validate.Length(max=len(RESIDENT_LANGUAGES)),
                            metadata={"description": "The whole list (it replaces the one held)."})
    availability = fields.List(fields.String(validate=validate.OneOf(list(Availability))),
                               validate=validate.Length(max=len(Availability)))
    wants = fields.List(fields.String(validate=validate.OneOf(list(Want))),
                        validate=validate.Length(max=len(Want)))


class ResidentUpdateSchema(ResidentSchema):
    new_proposals = _out(fields.Integer, metadata={
        "description": "Proposals made for the changed profile (they wait for a social worker's review)."})


class StatementSchema(Schema):
    position = _out(fields.Integer)
    text = _out(fields.String)
    negated = _out(fields.Boolean, metadata={"description": "Negated statements are never matched."})
    languages = _out(fields.List, cls_or_instance=fields.String())


class DeclarationSchema(Schema):
    id = _out(fields.Integer)
    resident_id = _out(fields.Integer)
    text = _out(fields.String, metadata={"description": "What the person can do, in their own words."})
    created_by_id = _out(fields.Integer)
    created_at = _out(fields.DateTime)
    statements = _out(fields.List, cls_or_instance=fields.Nested(StatementSchema))


class DeclarationUpdateSchema(DeclarationSchema):
    new_proposals = _out(fields.Integer, metadata={"description": "Proposals made for review."})
    languages_removed = _out(fields.List, cls_or_instance=fields.String(), metadata={
        "description": "Languages the previous text said and the new one does not: taken off the "
                       "resident's languages (PATCH the resident to give one back if the person speaks it)."})


class DeclarationInput(Schema):
    text = fields.String(required=True, validate=[validate.Length(min=1, max=10_000), NOT_BLANK],
                         metadata={"example": "Je cuisine pour quarante personnes aux mariages."})
    sensitive_ok = Flag(load_default=False, metadata={
        "description": "A text that seems to hold sensitive data (health, religion, origin, justice, "
                       "sexuality, union or political views: the CNIL's rule for free text) is refused "
                       "(422, the words in `errors.sensitive`) unless the person confirmed it is needed, "
                       "as the web page asks."})


# ---------------------------------------------------------------- needs

class NeedSchema(Schema):
    id = _out(fields.Integer)
    organisation_id = _out(fields.Integer)
    territory_id = _out(fields.Integer, allow_none=True)
    kind = _out(fields.String, validate=validate.OneOf(list(NeedKind)))
    title = _out(fields.String)
    description = _out(fields.String)
    when_text = _out(fields.String)
    where_text = _out(fields.String)
    languages = _out(fields.List, cls_or_instance=fields.String())
    availability = _out(fields.List, cls_or_instance=fields.String())
    status = _out(fields.String, validate=validate.OneOf(list(NeedStatus)))
    people_wanted = _out(fields.Integer, allow_none=True,
                         metadata={"description": "How many people are wanted (for a resource: people "
                                                  "lending or giving it, not units); no new proposal once "
                                                  "that many said yes."})
    external_id = _out(fields.String, allow_none=True,
                       metadata={"description": "Mission id when imported from a feed."})
    validation_status = _out(fields.String, **VALIDATION_STATUS)
    created_at = _out(fields.DateTime)
    updated_at = _out(fields.DateTime)


class NeedInput(Schema):
    title = fields.String(required=True, validate=[validate.Length(min=1, max=200), NOT_BLANK],
                          metadata={"example": "Atelier cuisine du samedi"})
    description = fields.String(required=True, validate=[validate.Length(min=1, max=10_000), NOT_BLANK],
                                metadata={"example": "Cuisiner avec des jeunes pour la fête du quartier."})
    kind = fields.String(load_default=NeedKind.SKILL.value, validate=validate.OneOf(list(NeedKind)))
    territory_id = Id(load_default=None, allow_none=True)
    when_text = fields.String(load_default="", validate=[validate.Length(max=200), NO_NUL])
    where_text = fields.String(load_default="", validate=[validate.Length(max=200), NO_NUL])
    languages = fields.List(fields.String(validate=validate.OneOf(LANGUAGES)), load_default=list,
                            validate=validate.Length(max=len(LANGUAGES)))
    availability = fields.List(fields.String(validate=validate.OneOf(list(Availability))),
                               load_default=list, validate=validate.Length(max=len(Availability)))
    people_wanted = Whole(load_default=None, allow_none=True,
                                   validate=validate.Range(min=1, max=999))


class CandidateSchema(Schema):
    """An approved candidate, as the association sees them: first name and initial only."""

    proposal_id = _out(fields.Integer)
    public_name = _out(fields.String)
    status = _out(fields.String)
    reviewed_at = _out(fields.DateTime, allow_none=True)
    answered_at = _out(fields.DateTime, allow_none=True)


# ---------------------------------------------------------------- proposals and opportunities

class PairSchema(Schema):
    resident_text = _out(fields.String)
    need_text = _out(fields.String)
    similarity = _out(fields.Float)


class ExplanationSchema(Schema):
    """Why the matcher proposed it, as shown at review (fields absent for hand-made proposals)."""

    pairs = fields.List(fields.Nested(PairSchema))
    shared_terms = fields.List(fields.String())
    reasons = fields.List(fields.String(), metadata={"description": (
        "The policy's reasons: `languages:<codes>` (asked and spoken), `distance_km:<km>`, "
        "`territory` (same neighbourhood), `availability` (a time slot shared), `dormant` (never "
        "approved for anything yet), `close_to_rejected:<cosine>` (like someone rejected for this "
        "need), `displaces` (took the place of the person's weakest unreviewed proposal at their "
        "monthly cap).")})
    score = fields.Float()


class ProposalSchema(Schema):
    id = _out(fields.Integer)
    need_id = _out(fields.Integer)
    resident_id = _out(fields.Integer)
    status = _out(fields.String, validate=validate.OneOf(list(MatchStatus)))
    direction = _out(fields.String)
    score = _out(fields.Float)
    explanation = _out(fields.Nested, nested=ExplanationSchema)
    created_at = _out(fields.DateTime)
    reviewed_by_id = _out(fields.Integer, allow_none=True)
    reviewed_at = _out(fields.DateTime, allow_none=True)
    rejection_code = _out(fields.String, allow_none=True)
    rejection_note = _out(fields.String, allow_none=True)
    answered_at = _out(fields.DateTime, allow_none=True)
    resident_comment = _out(fields.String, allow_none=True)
    closed = _out(fields.String, allow_none=True, validate=validate.OneOf(["need", "consent"]), metadata={
        "description": "Why a proposal waiting for review, or approved and waiting for an answer, can no "
                       "longer be approved or answered: its need is paused or closed, or the person's "
                       "consent ended (the review desk leaves it out until the consent is renewed); null "
                       "otherwise."})


class NoInput(Schema):
    """The body of an action that reads none: absent, or `{}`. Anything else is refused, as every
    input is: a reject payload sent to approve, or a body that is not JSON, approved."""


class RejectInput(Schema):
    reason_code = fields.String(required=True, validate=validate.OneOf(list(RejectionReason)),
                                metadata={"description": "busy, level, distance, schedule, not_now, "
                                                         "or other (with a note)."})
    # "other" needs a note: a rule between two fields, which the schema cannot say, so the review
    # service enforces it (422 with `errors.service`, as on the review desk).
    note = fields.String(load_default="", validate=[validate.Length(max=1000), NO_NUL])


class OpportunityNeedSchema(Schema):
    title = _out(fields.String)
    description = _out(fields.String)
    kind = _out(fields.String)
    when_text = _out(fields.String)
    where_text = _out(fields.String)
    availability = _out(fields.List, cls_or_instance=fields.String(), metadata={
        "description": "Time slots: weekday_morning, weekday_afternoon, weekday_evening, weekend."})
    languages = _out(fields.List, cls_or_instance=fields.String(), metadata={
        "description": "Languages the need asks for (codes); empty: none in particular."})
    organisation_name = _out(fields.String)
    organisation_description = _out(fields.String, metadata={
        "description": "The organisation in its own words (who, where, when to come); may be empty."})


class OpportunitySchema(Schema):
    """An approved proposal, as the resident sees it."""

    id = _out(fields.Integer)
    status = _out(fields.String, validate=validate.OneOf(
        [MatchStatus.APPROVED, MatchStatus.ACCEPTED, MatchStatus.DECLINED]))
    closed = _out(fields.String, allow_none=True, validate=validate.OneOf(["need", "consent"]), metadata={
        "description": "Why an approved opportunity can no longer be answered (its need is no longer "
                       "open, or the resident's consent ended; an answer then gets 409), else null."})
    need = _out(fields.Nested, nested=OpportunityNeedSchema)
    reviewed_at = _out(fields.DateTime, allow_none=True)
    answered_at = _out(fields.DateTime, allow_none=True)
    resident_comment = _out(fields.String, allow_none=True)


class AnswerInput(Schema):
    accept = Flag(required=True, metadata={"description": "true: yes, false: no thanks."})
    comment = fields.String(load_default="", validate=[validate.Length(max=500), NO_NUL], metadata={
        "description": "A word for the person's social workers (staff read it; the association does not)."})


# ---------------------------------------------------------------- search

# A search's text is encoded whole by the ranker's e5 (about 1 s of CPU per 1,000 characters): at
# 10,000, four searches from one read-only token held a worker for a minute.
SEARCH_MAX_CHARS = 2_000


class SearchInput(Schema):
    text = fields.String(required=True, validate=[validate.Length(min=1, max=SEARCH_MAX_CHARS), NOT_BLANK],
                         metadata={"example": "Je sais coudre et je parle arabe.",
                                   "description": "What someone can do, or what a need asks (2,000 "
                                                  "characters at most: a description, not a file)."})
    limit = Whole(load_default=10, validate=validate.Range(min=1, max=50))


class NeedSearchInput(SearchInput):
    include_closed = Flag(load_default=False)


class QueryStatementSchema(Schema):
    text = _out(fields.String)
    negated = _out(fields.Boolean, metadata={"description": "Negated statements are not searched."})


class SearchPairSchema(Schema):
    query_text = _out(fields.String, metadata={"description": "A statement of the text sent."})
    matched_text = _out(fields.String, metadata={"description": "The statement it met."})
    similarity = _out(fields.Float)


class _Hit(Schema):
    score = _out(fields.Float)
    pairs = _out(fields.List, cls_or_instance=fields.Nested(SearchPairSchema))
    shared_terms = _out(fields.List, cls_or_instance=fields.String())


class NeedHitSchema(_Hit):
    need = _out(fields.Nested, nested=NeedSchema)


class ResidentHitSchema(_Hit):
    resident = _out(fields.Nested, nested=ResidentSchema)


class NeedSearchResultSchema(Schema):
    statements = _out(fields.List, cls_or_instance=fields.Nested(QueryStatementSchema))
    results = _out(fields.List, cls_or_instance=fields.Nested(NeedHitSchema))


class ResidentSearchResultSchema(Schema):
    statements = _out(fields.List, cls_or_instance=fields.Nested(QueryStatementSchema))
    results = _out(fields.List, cls_or_instance=fields.Nested(ResidentHitSchema))


# ---------------------------------------------------------------- feed import

class MissionSchema(Schema):
    """A mission of the API Engagement feed; fields Relais does not use are ignored.

    Each mission needs an id, `_id` or `clientId` (a mission without is refused)."""

    class Meta:
        unknown = EXCLUDE

    # A blank id would be one key shared by every mission sent with it.
    mission_id = fields.String(data_key="_id", load_default=None, allow_none=True,
                               validate=[validate.Length(min=1, max=90), NOT_BLANK])
    client_id = fields.String(data_key="clientId", load_default=None, allow_none=True,
                              validate=[validate.Length(min=1, max=90), NOT_BLANK])
    title = fields.String(required=True, validate=[validate.Length(min=1, max=200), NOT_BLANK])
    description = fields.String(required=True, validate=[validate.Length(min=1, max=10_000), NOT_BLANK])
    organization_name = fields.String(data_key="organizationName", load_default=None, allow_none=True,
                                      validate=[validate.Length(max=200), NO_NUL])
    start_at = Instant(data_key="startAt", load_default=None, allow_none=True)
    end_at = Instant(data_key="endAt", load_default=None, allow_none=True)
    address = fields.String(load_default=None, allow_none=True,
                            validate=[validate.Length(max=200), NO_NUL])
    postal_code = fields.String(data_key="postalCode", load_default=None, allow_none=True,
                                validate=[validate.Length(max=20), NO_NUL])
    city = fields.String(load_default=None, allow_none=True, validate=[validate.Length(max=120), NO_NUL])
    deleted = Flag(load_default=False,
                             metadata={"description": "A deleted mission closes its need."})


class FeedInput(Schema):
    """The feed as API Engagement serves it: `{"ok": true, "total": n, "data": [missions]}`."""

    class Meta:
        unknown = EXCLUDE

    data = fields.List(fields.Nested(MissionSchema), required=True,
                       validate=validate.Length(max=500))


class ImportedNeedSchema(Schema):
    mission_id = _out(fields.String)
    need_id = _out(fields.Integer, allow_none=True,
                   metadata={"description": "Null for a finished mission never imported."})
    outcome = _out(fields.String, validate=validate.OneOf(["created", "updated", "unchanged", "ignored"]))


class ImportResultSchema(Schema):
    created = _out(fields.Integer)
    updated = _out(fields.Integer)
    unchanged = _out(fields.Integer)
    ignored = _out(fields.Integer, metadata={"description": "Finished or deleted missions never imported."})
    needs = _out(fields.List, cls_or_instance=fields.Nested(ImportedNeedSchema))
