"""Needs posted by associations and projects."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlmodel import Session, col, select

from matcher.analysis import languages_named
from matcher.policy import LANGUAGE_PARENTS
from models import (
    Availability,
    Match,
    Need,
    NeedKind,
    NeedStatus,
    Role,
    Territory,
    User,
    ValidationStatus,
    utcnow,
)
from web.services import ServiceError, tidy
from web.services.audit import record
from web.services.matching import MatchingService
from web.services.notifications import approvals_withdrawn
from web.services.proposals import (
    approvals_out_of_filters,
    delete_withdrawn,
    forget_review_floor,
    matcher_approvals,
    propose_for_need,
    withdraw_unreviewed,
)
from web.services.queries import REPOST_MINUTES, written_once

MAX_DESCRIPTION_CHARS = 10_000
NEED_FIELDS = ("title", "description", "kind", "territory_id", "when_text", "where_text",
               "languages", "availability", "people_wanted")
MAX_PEOPLE_WANTED = 999


@dataclass
class NeedInput:
    title: str
    description: str
    kind: str = NeedKind.SKILL
    territory_id: int | None = None
    when_text: str = ""
    where_text: str = ""
    languages: list[str] = field(default_factory=list)
    availability: list[str] = field(default_factory=list)
    people_wanted: int | None = None  # people (for a resource: who lend or give it); None: not said
    awaiting_validation: bool = False  # imported from a file that said so (web.services.imports)


def _check(session: Session, data: NeedInput) -> list[object]:
    errors: list[object] = []
    if not data.title.strip():
        errors.append(_l("Donnez un titre au besoin."))
    if len(data.title) > 200:
        errors.append(_l("Le titre est trop long (200 caractères au plus)."))
    if not data.description.strip():
        errors.append(_l("Décrivez le besoin : quoi, quand, où."))
    if len(data.description) > MAX_DESCRIPTION_CHARS:
        errors.append(_l("La description est trop longue (10 000 caractères au plus)."))
    if not set(data.availability) <= set(Availability):
        errors.append(_l("Créneau inconnu."))
    if data.kind not in set(NeedKind):
        errors.append(_l("Type de besoin inconnu."))
    if data.territory_id is not None and session.get(Territory, data.territory_id) is None:
        errors.append(_l("Quartier inconnu."))
    if len(data.when_text) > 200 or len(data.where_text) > 200:
        errors.append(_l("« Quand » et « où » tiennent en 200 caractères chacun."))
    if data.people_wanted is not None and not 1 <= data.people_wanted <= MAX_PEOPLE_WANTED:
        errors.append(_l("Le nombre de personnes va de 1 à 999."))
    return errors


TEXT_FIELDS = ("title", "description", "when_text", "where_text")


def create_need(session: Session, matching: MatchingService, author: User, data: NeedInput,
                today: date, external_id: str | None = None) -> tuple[Need, int]:
    """Post a need for the author's organisation and propose residents for it.

    The same need sent again by its author within REPOST_MINUTES (a double click, a reload, an API
    call retried after a timeout; two sent at the same instant too) is published once: the copy
    raises AlreadyDone with the first one's id, and nothing is written. A need imported from a
    feed (`external_id`, the mission's id) is the same need as the organisation's need with that
    id, whenever and whoever imported it."""

    def add() -> Need:
        need = add_need(session, matching, author, data)
        need.external_id = external_id
        session.add(need)
        return need

    need: Need = written_once(session, author, lambda besides: _twin(session, author, data, external_id,
                                                                     besides), add)
    session.commit()
    return need, propose_for_need(session, matching, need, today)


def _twin(session: Session, author: User, data: NeedInput, external_id: str | None,
          besides: int | None = None) -> int | None:
    """The need `author` published in the last REPOST_MINUTES with every field of `data`, if any
    (the same text for another neighbourhood, time or language is another need); with an
    `external_id`, the organisation's need imported with it."""
    if external_id is not None:
        return session.exec(select(Need.id).where(
            Need.organisation_id == author.organisation_id, Need.external_id == external_id,
            col(Need.id) != (besides or 0)).order_by(col(Need.id))).first()
    since = utcnow() - timedelta(minutes=REPOST_MINUTES)
    for need in session.exec(select(Need).where(
            Need.created_by_id == author.id, Need.organisation_id == author.organisation_id,
            Need.title == tidy(data.title), Need.description == tidy(data.description),
            col(Need.created_at) >= since, col(Need.id) != (besides or 0))).all():
        if (need.kind, need.territory_id, need.when_text, need.where_text, set(need.languages),
                sorted(set(need.availability)), need.people_wanted) == (
                data.kind, data.territory_id, tidy(data.when_text), tidy(data.where_text),
                set(data.languages), sorted(set(data.availability)), data.people_wanted):
            return need.id
    return None


def check_need(session: Session, data: NeedInput) -> list[str]:
    """What would stop `data` from being saved, in French, without writing (import previews)."""
    return [str(message) for message in _check(session, data)]


def add_need(session: Session, matching: MatchingService, author: User, data: NeedInput) -> Need:
    """Validate, then add the need and its statements (with its index event) to the session
    without committing (a bulk import commits all rows at once). A need seen in the neighbourhood
    by a habitant-relais waits for a social worker (web.services.validation): no statements, no
    index entry, no proposal until then; so does one a file says is waiting (`awaiting_validation`)."""
    pending = author.role == Role.HABITANT_RELAIS or data.awaiting_validation
    if author.role not in {Role.ASSOCIATION_MEMBER, Role.SOCIAL_WORKER, Role.ADMIN,
                           Role.HABITANT_RELAIS} or author.organisation_id is None:
        raise ServiceError(_l("Seul·e un·e membre d'une structure peut publier un besoin."))
    errors = _check(session, data)
    if errors:
        raise ServiceError(*errors)
    need = Need(organisation_id=author.organisation_id, territory_id=data.territory_id,
                kind=data.kind, title=tidy(data.title), description=tidy(data.description),
                when_text=tidy(data.when_text), where_text=tidy(data.where_text),
                languages=list(dict.fromkeys(data.languages)),
                availability=sorted(set(data.availability)), status=NeedStatus.OPEN,
                people_wanted=data.people_wanted,
                created_by_id=author.id or 0, updated_at=utcnow(),
                validation_status=ValidationStatus.PENDING if pending else ValidationStatus.VALIDATED)
    session.add(need)
    session.flush()
    if not pending:
        matching.store_need(session, need)
    record(session, author, "need.create", "need", need.id)
    return need




def _same(name: str, stored: Any, value: Any) -> bool:
    """Languages asked are a set (a form lists them in its own order, an API client in another)."""
    if name == "languages":
        return set(stored or []) == set(value or [])
    return bool(stored == value)


def _withdraw_out_of_filters(session: Session, matching: MatchingService, need: Need,
                             changed: list[str]) -> int:
    """The need now asks languages, a place or time slots an approved person no longer fits: the matcher
    would not propose them, the resident could say yes to what they cannot do, and the worker
    waits for an answer. Their approvals go (not a worker's own pick) and the worker is told why."""
    out = approvals_out_of_filters(session, matching.policy, need, changed)
    for gone in out:
        approvals_withdrawn(session, need, [(gone.resident_id, gone.reviewer_id)], why=gone.failed)
        delete_withdrawn(session, col(Match.id) == gone.match_id)
    return len(out)


def update_need(session: Session, matching: MatchingService, author: User, need: Need,
                values: dict[str, Any], today: date, source: str = "web") -> int | None:
    """Apply changed fields (validated like a new need). When the text, the languages, the
    neighbourhood or the status changed, unreviewed proposals are dropped (and, when the text
    changed, the matcher's approved ones not answered yet: a worker's own pick stays) and
    matching runs again; return how many new proposals were made, None when nothing changed."""
    values = {name: tidy(value) if name in TEXT_FIELDS and isinstance(value, str) else value
              for name, value in values.items()}
    if isinstance(values.get("languages"), list):  # stored as add_need stores them
        values["languages"] = list(dict.fromkeys(values["languages"]))
    if isinstance(values.get("availability"), list):
        values["availability"] = sorted(set(values["availability"]))
    merged = {name: getattr(need, name) for name in NEED_FIELDS} | values
    errors = _check(session, NeedInput(**{name: merged[name] for name in NEED_FIELDS}))
    if values.get("status", need.status) not in set(NeedStatus):
        errors.append(_l("Statut inconnu."))
    if errors:
        raise ServiceError(*errors)
    changed = [name for name, value in values.items() if not _same(name, getattr(need, name), value)]
    if not changed:
        return None
    titled = need.title  # what the residents' notices of it said
    for name in changed:
        setattr(need, name, values[name])
    need.updated_at = utcnow()
    session.add(need)
    text_changed = bool({"title", "description"} & set(changed))
    if text_changed and need.validation_status == ValidationStatus.VALIDATED:
        matching.store_need(session, need)  # a need waiting for validation stays out of the index
    dropped = out_of_filters = 0
    # What the proposals were made on: the text, the languages asked, the place (distance
    # filters), the time slots when they filter too, the status.
    filtered = {"languages", "territory_id"} | ({"availability"} if matching.policy.require_availability
                                               else set())
    if {"title", "description", "status", *filtered} & set(changed):
        if text_changed:  # the matcher's approvals go too: their workers are told
            why = {NeedStatus.PAUSED: "text_paused", NeedStatus.CLOSED: "text_closed"}.get(
                NeedStatus(need.status), "text")
            approvals_withdrawn(session, need, list(session.exec(
                select(Match.resident_id, Match.reviewed_by_id).where(
                    Match.need_id == need.id, matcher_approvals())).all()), why=why, titled=titled)
        dropped = withdraw_unreviewed(session, need_id=need.id, unanswered=text_changed)
        if not text_changed and filtered & set(changed):
            out_of_filters = _withdraw_out_of_filters(session, matching, need, changed)
    record(session, author, "need.update", "need", need.id, source=source, fields=changed)
    session.commit()
    # Approvals went (not only unreviewed proposals): the floor learnt from reviews is read again.
    if (dropped and text_changed) or out_of_filters:
        forget_review_floor(session)
    return propose_for_need(session, matching, need, today)


# What a need asks of the person's languages, not of its public's: « interprète », « interprétariat »,
# « traduire », « parlant », « parler », « maîtrisant », « bilingue », « Langue : », « Parle arabe ».
# « Notre public est arabophone », « l'équipe parle anglais » or « les familles parlent turc » ask
# nothing.
_ASKING = re.compile(r"\b(?:interpr[èée]t\w*|tradu\w*|parlant\w*|parler|ma[îi]tris\w*|bilingues?)\b"
                     r"|\blangues?\s*:|^\s*parle\b", re.IGNORECASE)
_NOT_NEEDED = re.compile(r"\b(?:pas\s+(?:besoin|n[ée]cessaire|obligatoire|indispensable|exig[ée])"
                         r"|aucune\s+langue|inutile)\b", re.IGNORECASE)
# The person sought, then what they speak: « quelqu'un qui parle arabe », « une personne pouvant
# lire le turc », « un bénévole arabophone ». The analysis reads a relative clause as someone
# else's language (« ma voisine qui parle arabe »): in a need, that someone is the one sought.
# « Des personnes qui parlent tamoul » is more often the public than the volunteers sought.
_LANGUAGE_VERBS = r"(?:parl|compren|ma[iî]tris|li(?:s|t|re)\b|[ée]cri|tradui)\w*"
_SOUGHT_PERSON = (r"\b(?:quelqu['’]\s?un|personne|b[ée]n[ée]voles?|volontaires?|intervenant\w*"
                  r"|animat(?:eur|rice)s?|candidat\w*|profils?|interpr[èée]tes?|traduct(?:eur|rice)s?"
                  r"|m[ée]diat(?:eur|rice)s?)\s+")
_SOUGHT = re.compile(_SOUGHT_PERSON + r"(?:(?:qui|pouvant|sachant)\s+" + _LANGUAGE_VERBS
                     + r"|(?=\w+phones?\b))", re.IGNORECASE)
# The same person's second relative clause: « quelqu'un qui peut prêter une camionnette, et qui
# parle arabe » (the analysis cuts it off as « qui parle arabe … »), « une personne qui a le
# permis et qui parle arabe ». Only after a person sought who (« … une famille qui parle arabe »
# is the public).
_SOUGHT_WHO = re.compile(_SOUGHT_PERSON + r"(?:qui|pouvant|sachant)\b", re.IGNORECASE)
_ANYONE_WHO = re.compile(r"[\w'’]+\s+(?:qui|pouvant|sachant)\b", re.IGNORECASE)
_AND_WHO = re.compile(r"(?:^\s*|\bet\s+)qui\s+(?=" + _LANGUAGE_VERBS + ")", re.IGNORECASE)
# What may stand between the languages the person sought speaks (« qui parle l'arabe, le turc ou
# un peu le kurde »); any other word ends them (« … pour accompagner des familles qui parlent dari »).
_BETWEEN_NAMES = {"le", "la", "les", "l", "l'", "l’", "et", "ou", "un", "peu", "bien", "couramment", "aussi",
                  "en", "-", "/", ",", "de", "d'", "d’", "du"}
# Other verbs of language between the verb and the names (« pouvant lire et écrire l'arabe »).
_LANGUAGE_VERB = re.compile(_LANGUAGE_VERBS, re.IGNORECASE)
# A need's sentences, each analysed on its own: a « not needed » that points back (« … serait un
# plus, mais ce n'est pas obligatoire », « pas besoin de le parler ») takes back the languages
# asked before it in the sentence; « le permis n'est pas nécessaire » only itself.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_POINTS_BACK = re.compile(r"^\s*(?:mais\s+)?(?:ce\s+n['’]est|c['’]est|ça|cela"
                          r"|pas\s+besoin\s+de\s+(?:le|la|les|l['’])\s"
                          r"|(?:n['’]est\s+)?pas\s+(?:obligatoire|n[ée]cessaire|indispensable|exig[ée]e?)\s*$)",
                          re.IGNORECASE)


def _about_the_person_sought(before: str) -> bool:
    """Whether the last « … qui » before an « et qui » is the person sought's: « des bénévoles qui
    conduisent pour aider une famille qui a déménagé et qui parle arabe » is the family's."""
    found = list(_ANYONE_WHO.finditer(before))
    return bool(found) and bool(_SOUGHT_WHO.match(before, found[-1].start()))


def _sought_languages(text: str, before: str = "") -> list[str]:
    """The languages `text` says the person sought speaks (`_SOUGHT`, or `_AND_WHO` after a person
    sought in `before` + `text`, then names only)."""
    codes: list[str] = []
    ends = [m.end() for m in _SOUGHT.finditer(text)]
    ends += [m.end() for m in _AND_WHO.finditer(text)
             if _about_the_person_sought(f"{before} {text[:m.start()]}")]
    for end in sorted(set(ends)):
        for word in re.finditer(r"[\w'’]+|[^\w\s]", text[end:]):
            if named := languages_named(word[0]):
                codes += named
            elif word[0].lower() not in _BETWEEN_NAMES and not _LANGUAGE_VERB.fullmatch(word[0]):
                break
    return codes


def languages_not_asked(matching: MatchingService, need: Need, offered: Collection[str]) -> list[str]:
    """Languages the need's text asks the person to speak (« interprète arabe-français »,
    « bénévoles parlant turc », « quelqu'un qui parle arabe »: `_SOUGHT`) that it does not ask
    (ticked) though the form `offered` them: proposals filter on the ticked ones only. French
    goes without saying; a variety is named by its macrolanguage when only that is offered
    (« dari »: « persan / dari ») and goes with it asked (« kabyle » with « tamazight / berbère »);
    a sentence saying no names none, nor one said not needed (« le turc n'est pas nécessaire »),
    and a « pas besoin de le parler », « mais ce n'est pas obligatoire » (`_POINTS_BACK`) takes
    back those asked before it in its sentence."""
    if matching.analyzer is None:
        return []
    asked = set(need.languages)
    named = set()
    sentences = [part for text in (need.title, need.description) for part in _SENTENCE_END.split(text)
                 if part.strip()]
    for analysis in matching.analyzer.analyze_many(sentences):
        codes: list[str] = []
        before = ""  # the sentence's statements so far (whom a « qui parle … » is about)
        for statement in analysis.statements:
            # What a « not needed » says is not asked: « Il faut parler anglais, pas besoin
            # d'avoir le permis » asks what comes before it.
            text = statement.text
            if not_needed := _NOT_NEEDED.search(text):
                if not languages_named(text[not_needed.start():]) and _POINTS_BACK.search(text):
                    codes = []
                text = text[:not_needed.start()]
            if statement.negated or not text.strip():
                continue
            if _ASKING.search(text):
                said = languages_named(text)
                codes += [code for code in statement.languages if code in said]
            codes += _sought_languages(text, before)
            before += f" {statement.text}"
        named |= {code if code in offered else LANGUAGE_PARENTS.get(code, code) for code in codes}
    return sorted(code for code in named if code != "fr" and code in offered and code not in asked
                  and LANGUAGE_PARENTS.get(code) not in asked)
