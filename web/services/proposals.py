"""Proposals: relevance from the matcher, then the policy (filters, fairness, feedback), then rows.

Both directions end here: a need looking for residents (when it is posted or edited) and a
resident looking for needs (when their declaration is saved). Every proposal waits for a social
worker; its explanation is stored as it was shown at review.

Two scores per candidate. The *rank* is the hybrid ranker's fused score (matcher/hybrid.py, the
code of scripts/rank.py) divided by the sum of its weights: a mean z-score, "how many standard
deviations above the usual good candidate", on which the policy's boosts and penalties act. The
*score* a person reads, and the one stored on the proposal, the floor (RELAIS_MIN_SIMILARITY) and
its calibration from review history apply to, is the cosine of the best statement pair (the
resident's statement and the need's sentence shown side by side, USE vectors): 0.25 is loosely
related, 0.5 clearly related, 0.7 and above nearly the same thing said twice.
"""

from __future__ import annotations

import json
import re
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol, TypeVar

import numpy as np
from flask_babel import lazy_gettext as _l
from sqlalchemy import Text, and_, cast, exists, func, insert, or_
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from matcher.analysis import fold_accents
from matcher.normalise import stems
from matcher.policy import (
    CALIBRATION_MINIMUM_REVIEWS,
    Candidate,
    Decision,
    Policy,
    Side,
    calibration_index,
    decide,
    fill,
    hard_filters,
    offers,
    refuses,
    with_parents,
)
from models import (
    Consent,
    ConsentScope,
    Direction,
    Match,
    MatchStatus,
    Need,
    NeedKind,
    NeedStatement,
    NeedStatus,
    Resident,
    SkillDeclaration,
    SkillStatement,
    Territory,
    ValidationStatus,
    WithdrawnProposal,
    utcnow,
)
from web.permissions import VISIBLE_TO_ASSOCIATION
from web.services import ServiceError
from web.services.matching import NEEDS, RESIDENTS, Eligibility, MatchingService, from_blobs, need_query
from web.services.notifications import new_proposals as notify_new_proposals
from web.services.notifications import settle_to_review
from web.services.queries import ids_subquery, rows_by_id

# How many relevant documents the policy chooses from.
CANDIDATE_DEPTH = 50
# How many residents a need's page offers a social worker when the matcher proposed nobody.
NEARBY = 5
REVIEWED = (MatchStatus.APPROVED, MatchStatus.ACCEPTED, MatchStatus.DECLINED)
PENDING = (MatchStatus.PROPOSED, MatchStatus.APPROVED)
# How long a process keeps the review-learnt floor (`review_floor`). Reading it counts and sorts
# every reviewed score: per proposal round, at 2,000 / 20,000 / 200,000 matches, 2.5 / 12.6 / 113 ms
# on SQLite and 3.8 / 19 / 180 ms on PostgreSQL (scripts/bench_floor.py); one more review moves a
# 5 % quantile of hundreds of scores by at most one rank.
FLOOR_SECONDS = 60.0
# How long a withdrawn proposal's id is kept for `GET /proposals/withdrawn` (ids only).
WITHDRAWN_KEPT_DAYS = 365


@dataclass(frozen=True)
class Proposal:
    need_id: int
    resident_id: int
    score: float
    explanation: dict[str, Any]


def valid_consent_residents(session: Session, today: date, among: Iterable[int] | None = None) -> set[int]:
    """Residents whose consent covers matching today (the first hard filter), among profiles a
    social worker validated (a habitant-relais's submission waits out of matching); with `among`,
    only those of these ids."""
    query = consent_query(today).distinct()
    if among is not None:
        query = query.where(col(Consent.resident_id).in_(set(among)))
    return set(session.exec(query).all())


def _consent_covers(today: date) -> list[Any]:
    """Consent.is_valid for matching, said in SQL."""
    return [col(Consent.withdrawn_at).is_(None), col(Consent.given_on) <= today,
            or_(col(Consent.expires_on).is_(None), col(Consent.expires_on) >= today),
            Consent.scope == ConsentScope.MATCHING]


def consent_query(today: date) -> Any:
    """The ids of `valid_consent_residents` (ids only, no row objects: this runs before searches).

    The resident's validation is asked per consent row (EXISTS on its primary key), not as a join:
    with a join SQLite walked every validated resident by the validation index and looked up each
    one's consents, 28 ms at 100,000 residents for the hundred ids a ranking asks about (1.4 ms so;
    every id of the site 860 -> 580 ms)."""
    validated = exists().where(col(Resident.id) == Consent.resident_id,
                               col(Resident.validation_status) == ValidationStatus.VALIDATED)
    return select(Consent.resident_id).where(*_consent_covers(today), validated)


def with_valid_consent(today: date) -> Any:
    """`valid_consent_residents` as a condition on a query of residents: each resident's consents
    looked up by its index (as `Resident.id IN consent_query(...)`, SQLite listed every consenting
    resident of the site first: ~300 ms at 100k for a centre's 2,600)."""
    return and_(col(Resident.validation_status) == ValidationStatus.VALIDATED,
                exists().where(col(Consent.resident_id) == Resident.id, *_consent_covers(today)))


def consenting(session: Session, today: date) -> Eligibility:
    """Valid consent as a ranking's filter: asked of the database for the residents ranked first."""
    return Eligibility(among=lambda ids: valid_consent_residents(session, today, ids),
                       every=lambda: valid_consent_residents(session, today))


def _yeses_of(need_id: Any) -> Any:
    """How many residents said yes to the need, as a scalar subquery."""
    return select(func.count()).select_from(Match).where(
        Match.need_id == need_id, Match.status == MatchStatus.ACCEPTED).scalar_subquery()


def not_filled() -> Any:
    """A condition on Need: it still wants people (it says no number, or fewer said yes)."""
    return or_(col(Need.people_wanted).is_(None), col(Need.people_wanted) > _yeses_of(Need.id))


def yeses(session: Session, need: Need) -> int:
    """How many residents said yes to `need`."""
    return int(session.exec(select(_yeses_of(need.id))).one())


def is_filled(session: Session, need: Need) -> bool:
    """Whether as many residents said yes to `need` as it asked for (`people_wanted`)."""
    return need.people_wanted is not None and yeses(session, need) >= need.people_wanted


def open_needs_for(session: Session, languages: Sequence[str]) -> Eligibility:
    """Open needs that ask for no language, or for one of these, as a ranking's filter (asked of
    the ranked-first needs: with 5,000 open needs, reading them all was ~180 ms a round)."""
    spoken = with_parents(languages)

    def speaking(query: Any) -> set[int]:
        rows = session.exec(query.where(Need.status == NeedStatus.OPEN, not_filled())).all()
        return {i for i, asked in rows if i is not None and (not asked or spoken & set(asked))}

    return Eligibility(among=lambda ids: speaking(select(Need.id, Need.languages)
                                                  .where(col(Need.id).in_(set(ids)))),
                       every=lambda: speaking(select(Need.id, Need.languages)))


def current_statements(session: Session, resident_id: int,
                       with_negated: bool = False) -> list[SkillStatement]:
    """The statements of the resident's current declaration (those that can be matched, unless
    `with_negated`: the "je ne sais pas conduire" ones are shown to workers, never matched)."""
    query = (select(SkillStatement)
             .join(SkillDeclaration, col(SkillDeclaration.id) == SkillStatement.declaration_id)
             .where(SkillStatement.resident_id == resident_id,
                    col(SkillDeclaration.is_current).is_(True))
             .order_by(col(SkillStatement.position)))
    if not with_negated:
        query = query.where(col(SkillStatement.negated).is_(False))
    return list(session.exec(query).all())


def need_statements(session: Session, need_id: int) -> list[NeedStatement]:
    return list(session.exec(select(NeedStatement).where(NeedStatement.need_id == need_id)
                             .order_by(col(NeedStatement.position))).all())


def profile_vectors(session: Session, resident_ids: Sequence[int], dim: int) -> dict[int, np.ndarray]:
    """One vector per resident: the normalised mean of their statements (for diversity, feedback)."""
    return _mean_vectors(statements_of_residents(session, resident_ids), dim)


def _mean_vectors(statements: Mapping[int, Sequence[Quotable]], dim: int) -> dict[int, np.ndarray]:
    stacked = _Stacked.of({rid: rows for rid, rows in statements.items() if rows}, dim)
    if not stacked.ids:
        return {}
    starts = stacked.starts
    means = np.add.reduceat(stacked.matrix, starts, axis=0) / (stacked.ends - starts)[:, None]
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    means /= np.where(norms > 0, norms, 1.0)
    return dict(zip(stacked.ids, means, strict=True))


def _month_start(today: date) -> datetime:
    return datetime(today.year, today.month, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Fairness:
    """What the monthly cap and the dormant boost read of some residents."""

    pending: dict[int, int]  # proposals pending this month (to review or approved, unanswered)
    matched: set[int]  # ever approved for something
    # Their proposals of this month nobody reviewed yet, (score, id, need id), weakest first: what
    # gives way at the cap to a closer one (matcher.policy.fill).
    unreviewed: dict[int, list[tuple[float, int, int]]]

    def displaceable(self, resident_id: int) -> float | None:
        held = self.unreviewed.get(resident_id)
        return held[0][0] if held else None


def fairness(session: Session, resident_ids: Sequence[int], today: date) -> Fairness:
    """The cap's and the boost's figures for these residents (read as columns: a resident's every
    match, explanation and all, would be decoded otherwise)."""
    pending: dict[int, int] = {}
    matched: set[int] = set()
    unreviewed: dict[int, list[tuple[float, int, int]]] = {}
    if not resident_ids:
        return Fairness(pending, matched, unreviewed)
    rows = session.execute(sa_select(  # six columns: sqlmodel's select() types four at most
        col(Match.resident_id), col(Match.status), col(Match.created_at), col(Match.score), col(Match.id),
        col(Match.need_id)).where(col(Match.resident_id).in_(list(resident_ids)))).all()
    start = _month_start(today)
    for resident_id, status, created_at, score, match_id, need_id in rows:
        if status in PENDING and created_at >= start:
            pending[resident_id] = pending.get(resident_id, 0) + 1
            if status == MatchStatus.PROPOSED and match_id is not None:
                unreviewed.setdefault(resident_id, []).append((score, match_id, need_id))
        if status in REVIEWED:
            matched.add(resident_id)
    for held in unreviewed.values():
        held.sort()
    return Fairness(pending, matched, unreviewed)


def calibrated_min_score(session: Session, default: float) -> float:
    """The floor under which nothing is proposed, learnt from the social workers' reviews:
    matcher.policy.calibrate's cut, asked of the database (a count by status, then the one score at
    the cut) rather than every reviewed score read into Python. Both still read the whole review
    history: proposal rounds call `review_floor`, which keeps the answer a while."""
    mine = col(Match.direction) != Direction.WORKER  # a worker's own proposals were never the matcher's
    counts = dict(session.exec(select(Match.status, func.count()).where(
        col(Match.status).in_([*REVIEWED, MatchStatus.REJECTED]), mine).group_by(Match.status)).all())
    approved = sum(counts.get(status, 0) for status in REVIEWED)
    if approved + counts.get(MatchStatus.REJECTED, 0) < CALIBRATION_MINIMUM_REVIEWS or not approved:
        return default
    cut = session.exec(select(Match.score).where(col(Match.status).in_(REVIEWED), mine)
                       .order_by(col(Match.score)).offset(calibration_index(approved)).limit(1)).one()
    return max(default, cut)


# Per engine (a connection, when a session is bound to one): (default, floor, when read); and how
# many times a floor was forgotten, so that a read overtaken by a review is not kept.
_floors: weakref.WeakKeyDictionary[Any, tuple[float, float, float]] = weakref.WeakKeyDictionary()
_floors_lock = threading.Lock()
_forgotten = 0


def review_floor(session: Session, default: float) -> float:
    """`calibrated_min_score`, kept by this process for FLOOR_SECONDS per database: what proposal
    rounds use. A review made through this process is seen at once (`forget_review_floor`), one
    made through another worker, or a history shortened by an erasure, within FLOOR_SECONDS."""
    engine, now = session.get_bind(), time.monotonic()
    with _floors_lock:
        cached, forgotten = _floors.get(engine), _forgotten
    if cached is not None and cached[0] == default and now - cached[2] < FLOOR_SECONDS:
        return cached[1]
    floor = calibrated_min_score(session, default)
    with _floors_lock:
        if forgotten == _forgotten:
            _floors[engine] = (default, floor, now)
    return floor


def forget_review_floor(session: Session) -> None:
    """The review history changed: the next proposal round reads the floor again."""
    global _forgotten
    with _floors_lock:
        _floors.pop(session.get_bind(), None)
        _forgotten += 1


def _side(territories: dict[int | None, Territory], territory_id: int | None,
          availability: Sequence[str], languages: Sequence[str]) -> Side:
    territory = territories.get(territory_id)
    return Side(territory_id=territory_id,
                coordinates=territory.coordinates if territory else None,
                availability=frozenset(availability), languages=frozenset(languages))


def _territories(session: Session, ids: Iterable[int | None]) -> dict[int | None, Territory]:
    """The territories of these ids (the need's and its candidates'), by id."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {t.id: t for t in session.exec(select(Territory).where(col(Territory.id).in_(wanted))).all()}


class Quotable(Protocol):
    """A statement as proposals read it: its words, lemmas and stored vector."""

    @property
    def text(self) -> str: ...
    @property
    def lemmas(self) -> Sequence[str]: ...
    @property
    def vector(self) -> bytes: ...


Q = TypeVar("Q", bound=Quotable)


@dataclass(frozen=True)
class Quoted:
    """A statement with its lemmas already decoded (a searched text's, in web/api/search.py)."""

    text: str
    lemmas: Sequence[str]
    vector: bytes


class StoredQuote:
    """A resident's statement as `statements_of_residents` reads it: the lemmas stay JSON text
    until an explanation asks for them (a round reads ~300 statements and quotes ~40)."""

    __slots__ = ("text", "vector", "_lemmas")

    def __init__(self, text: str, lemmas_json: str, vector: bytes) -> None:
        self.text, self.vector, self._lemmas = text, vector, lemmas_json

    @property
    def lemmas(self) -> Sequence[str]:
        if isinstance(self._lemmas, str):
            self._lemmas = json.loads(self._lemmas)
        return self._lemmas


Pairs = list[tuple[Quotable, Quotable, float]]


def best_pairs_of(query_rows: Sequence[Quotable], docs: Mapping[int, Sequence[Quotable]], dim: int
                  ) -> dict[int, Pairs]:
    """For each document, each query statement with its closest statement of the document (cosine
    of the stored vectors), best first: what a person is shown of why two texts meet. The vectors
    of all documents are decoded and multiplied at once."""
    stacked = _Stacked.of(docs, dim)
    if not query_rows or not len(stacked.matrix):
        return {doc: [] for doc in docs}
    sims = from_blobs([r.vector for r in query_rows], dim) @ stacked.matrix.T
    out: dict[int, Pairs] = {}
    for doc, start, end in stacked.spans():
        if start == end:
            out[doc] = []
            continue
        block = sims[:, start:end]
        best = block.argmax(axis=1)
        rows = docs[doc]
        pairs = [(query_rows[i], rows[int(j)], float(block[i, j])) for i, j in enumerate(best)]
        out[doc] = sorted(pairs, key=lambda p: -p[2])
    return out


@dataclass(frozen=True)
class _Stacked:
    """The statement vectors of several documents in one matrix, each document a run of rows."""

    ids: list[int]
    ends: np.ndarray
    matrix: np.ndarray

    @classmethod
    def of(cls, docs: Mapping[int, Sequence[Quotable]], dim: int) -> _Stacked:
        ids = list(docs)
        ends = np.cumsum([len(docs[doc]) for doc in ids], dtype=np.int64)
        return cls(ids, ends, from_blobs([r.vector for doc in ids for r in docs[doc]], dim))

    @property
    def starts(self) -> np.ndarray:
        return np.concatenate([np.zeros(1, np.int64), self.ends[:-1]])

    def spans(self) -> Iterator[tuple[int, int, int]]:
        return zip(self.ids, self.starts.tolist(), self.ends.tolist(), strict=True)


# Words that say nothing of a skill, shown as "shared" beside the quotes: the light verbs of "je
# sais coudre" / "savoir coudre", "je fais" / "faire", the time words of "10 ans", and the words
# every need and profile of a neighbourhood says (« une personne du quartier »). General French,
# not drawn from any text.
_NOT_TELLING = frozenset({"être", "etre", "avoir", "faire", "savoir", "pouvoir", "vouloir", "aller",
                          "devoir", "an", "année", "annee", "mois", "semaine", "jour", "fois", "chose",
                          "bien", "très", "tres", "tout", "aussi", "beaucoup", "petit", "personne",
                          "quartier", "gens", "monde"})
# The same, as texts write them (« elle sait coudre », « je fais », « il doit », « petits
# travaux »): a written word is compared by stem, and a verb's forms have stems of their own. As
# written, « devoirs » is homework: only the verb's forms are left out.
_NOT_TELLING_FORMS = _NOT_TELLING - {"devoir"} | {
    "sais", "sait", "savons", "savez", "savent", "su", "fais", "fait", "faisons", "faites", "font",
    "peux", "peut", "pouvons", "pouvez", "peuvent", "pu", "veux", "veut", "voulons", "voulez", "veulent",
    "dois", "doit", "devons", "devez", "doivent", "vais", "vas", "va", "allons", "allez", "vont",
    "suis", "es", "est", "sommes", "êtes", "sont", "ai", "as", "a", "avons", "avez", "ont",
    "ans", "années", "jours", "semaines", "fois", "choses", "petits", "petite", "petites",
    "personnes", "quartiers"}
_NOT_TELLING_STEMS = frozenset(s for word in _NOT_TELLING_FORMS for s in stems(word))
# A second statement pair is quoted only this close: « Je couds les boubous » beside « pour tenir
# la buvette » (0.35) or « Je répare les vélos » beside « La formation hygiène est prise en
# charge » (0.11) read as reasons. The best pair is always quoted: the closeness label says how
# much it is worth.
SECOND_PAIR_MIN = 0.4


@lru_cache(maxsize=65536)
def _stem(word: str) -> str | None:
    """A word's stem as the ranker's lexical side makes it, None for a stop word (remembered: a
    round explains ~20 proposals, ~1,000 words; 137 → 26 µs an explanation of two pairs)."""
    return next(iter(stems(word)), None)


def _telling_words(text: str) -> list[tuple[str, str]]:
    """The words of `text` that may tell a skill, as written (lower case), with their stems."""
    out = []
    for word in re.findall(r"[^\W\d_]+", text.lower()):
        stem = _stem(word)
        if stem is not None and stem not in _NOT_TELLING_STEMS:
            out.append((word, stem))
    return out


def shared_terms(pairs: Sequence[tuple[Quotable, Quotable, float]]) -> list[str]:
    """The words both sides of these pairs use, pair by pair (six at most), as the first side
    writes them, compared by stem without accents (« je répare les velos » and « Réparer les
    vélos » share « répare » and « velos »); then the lemmas they share that are written on a side
    (« je couds » and « qui savent coudre » share « coudre »). A lemma neither side writes was
    shown before (« permettre » for « permis »); so were the words that tell nothing of a skill."""
    shared: dict[str, str] = {}  # stem -> as shown
    for query, doc, _similarity in pairs:
        mine, theirs = _telling_words(query.text), _telling_words(doc.text)
        their_stems = {stem for _w, stem in theirs}
        written = their_stems | {stem for _w, stem in mine}
        for word, stem in mine:
            if stem in their_stems:
                shared.setdefault(stem, word)
        their_lemmas = {fold_accents(lemma) for lemma in doc.lemmas} - _NOT_TELLING
        for lemma in query.lemmas:
            lemma_stem = _stem(lemma)
            if (fold_accents(lemma) in their_lemmas and lemma_stem in written
                    and lemma_stem not in _NOT_TELLING_STEMS):
                shared.setdefault(lemma_stem, lemma)
    return list(shared.values())[:6]


def quoted_pairs(pairs: Sequence[tuple[Quotable, Quotable, float]], at_most: int
                 ) -> list[tuple[Quotable, Quotable, float]]:
    """The statement pairs an explanation quotes, best first: the best one always, the next ones
    (up to `at_most` in all) only from SECOND_PAIR_MIN."""
    return [*pairs[:1], *(p for p in pairs[1:at_most] if p[2] >= SECOND_PAIR_MIN)]


def _explanation(pairs: list[tuple[Quotable, Quotable, float]], need_is_query: bool,
                 decision: Decision | None = None) -> dict[str, Any]:
    """What a person is told: the statement pairs, the shared words, the score, and for the
    matcher's proposals the filters met and the policy's score (a worker's own has no decision)."""
    pairs = quoted_pairs(pairs, 2)
    shown = []
    for query, doc, similarity in pairs:
        need, resident = (query, doc) if need_is_query else (doc, query)
        shown.append({"resident_text": resident.text, "need_text": need.text,
                      "similarity": round(similarity, 3)})
    similarity = pairs[0][2] if pairs else 0.0
    out: dict[str, Any] = {"pairs": shown, "shared_terms": shared_terms(pairs),
                           "reasons": decision.satisfied if decision else [], "score": round(similarity, 3)}
    if decision is not None:
        out["rank"] = round(decision.score, 3)
    return out


def statements_of_residents(session: Session, ids: Sequence[int]) -> dict[int, list[Quotable]]:
    """The matchable statements of these residents' current declarations, as plain rows (columns,
    not ORM objects: ~300 of them per proposal round, whose construction was 20 ms at 100k)."""
    return skills_and_refusals(session, ids)[0]


def skills_and_refusals(session: Session, ids: Sequence[int]
                        ) -> tuple[dict[int, list[Quotable]], dict[int, list[Quotable]]]:
    """The statements of these residents' current declarations: what they can do, and what they
    said they cannot or will not do ("je ne sais pas conduire", `drop_refused`)."""
    if not ids:
        return {}, {}
    rows = session.execute(  # five columns: sqlmodel's select() types four at most
        sa_select(col(SkillStatement.resident_id), col(SkillStatement.text),
                  cast(SkillStatement.lemmas, Text), col(SkillStatement.vector), col(SkillStatement.negated))
        .join(SkillDeclaration, col(SkillDeclaration.id) == SkillStatement.declaration_id)
        .where(col(SkillStatement.resident_id).in_(list(ids)), col(SkillDeclaration.is_current).is_(True))
        .order_by(col(SkillStatement.position))).all()
    skills: dict[int, list[Quotable]] = {}
    refusals: dict[int, list[Quotable]] = {}
    for rid, text, lemmas, vector, negated in rows:
        (refusals if negated else skills).setdefault(rid, []).append(StoredQuote(text, lemmas, vector))
    return skills, refusals


def offering(statements: Sequence[Q]) -> list[Q]:
    """The statements where a person says they have or lend something (matcher.policy.offers)."""
    return [st for st in statements if offers(st.text)]


def answering(kind: str, statements: Mapping[int, Sequence[Q]]) -> dict[int, list[Q]]:
    """The statements that may answer a need of this kind: for a resource (a room, a van), only
    what a person says they have or lend (`offering`); a person saying none has none."""
    if kind != NeedKind.RESOURCE:
        return {key: list(rows) for key, rows in statements.items()}
    return {key: offering(rows) for key, rows in statements.items()}


def drop_refused(pairs: dict[int, Pairs], refusals: Mapping[int, Sequence[Quotable]],
                 need_rows: Sequence[Quotable], dim: int) -> set[int]:
    """Empty the pairs of each resident one of whose refusals is at least as close to the need's
    sentences as their closest statement: "Je ne sais pas conduire. Je fais la cuisine." was
    proposed for a driving need on its cooking (a refusal is never indexed, so nothing stopped
    the other statements), and the worker saw « proche » and never the refusal."""
    refusing = [doc for doc, found in pairs.items() if found and refusals.get(doc)]
    if not refusing or not need_rows:
        return set()
    need = from_blobs([r.vector for r in need_rows], dim)
    asked = [r.text for r in need_rows]
    dropped = {doc for doc in refusing
               if refused([r.text for r in refusals[doc]], from_blobs([r.vector for r in refusals[doc]], dim),
                          asked, need, pairs[doc][0][2])}
    for doc in dropped:
        pairs[doc] = []
    return dropped


def refused(refusal_texts: Sequence[str], refusals: np.ndarray, need_texts: Sequence[str], need: np.ndarray,
            closest: float) -> bool:
    """Whether the person's refusals (texts, and vectors as rows of `refusals`) rule the need (its
    sentences' texts and vectors) out: one refusal is at least as close to a sentence of the need
    as the person's closest statement (`closest`, its cosine), or, however close, it says no
    licence or no vehicle for a need that asks for one (matcher.policy.refuses)."""
    if refuses(refusal_texts, need_texts):
        return True
    return bool(len(refusals) and len(need) and float((refusals @ need.T).max()) >= closest)


def statements_of_needs(session: Session, ids: Sequence[int]) -> dict[int, list[NeedStatement]]:
    rows = session.exec(select(NeedStatement).where(col(NeedStatement.need_id).in_(list(ids)))
                        .order_by(col(NeedStatement.position))).all()
    out: dict[int, list[NeedStatement]] = {}
    for row in rows:
        out.setdefault(row.need_id, []).append(row)
    return out


# How many needs one round proposes again for after their proposal gave way at a person's cap
# (each of those rounds may make one give way in turn; every time, the person holds a closer one).
REFILLED_NEEDS = 8


def propose_for_need(session: Session, matching: MatchingService, need: Need, today: date,
                     k: int | None = None) -> int:
    """Propose residents for an open need (committed); return how many proposals are new. A need
    as many said yes to as it asked for (`people_wanted`) gets no more. The needs whose proposal
    gave way at a person's cap are proposed for again (`_refill`)."""
    added, freed = _need_round(session, matching, need, today, k)
    _refill(session, matching, freed, today)
    return added


def _refill(session: Session, matching: MatchingService, freed: set[int], today: date) -> None:
    """Propose again for the needs whose proposal gave way to a closer one at the person's monthly
    cap: they waited one proposal short for their next round (a change of their text, a new
    profile). At most REFILLED_NEEDS rounds; those left wait for their next round as before."""
    freed = set(freed)
    for _ in range(REFILLED_NEEDS):
        if not freed:
            return
        need_id = min(freed)
        freed.discard(need_id)
        if (need := session.get(Need, need_id)) is not None:
            freed |= _need_round(session, matching, need, today, None)[1]


def _freed(session: Session, replacing: Mapping[tuple[int, int], tuple[int, int]]) -> set[int]:
    """The needs (of `replacing`'s (match id, need id)) whose proposal is gone: it gave way."""
    if not replacing:
        return set()
    ids = {match_id for match_id, _need_id in replacing.values()}
    left = set(session.exec(select(Match.id).where(col(Match.id).in_(ids))).all())
    return {need_id for match_id, need_id in replacing.values() if match_id not in left}


def _need_round(session: Session, matching: MatchingService, need: Need, today: date,
                k: int | None) -> tuple[int, set[int]]:
    """One need's round: how many proposals are new, and the needs whose proposal gave way."""
    if need.status != NeedStatus.OPEN or need.id is None \
            or is_filled(session, need):
        return 0, set()
    rows = need_statements(session, need.id)
    if not rows:
        return 0, set()
    matching.lend_need_vectors(session, need)
    ranked = matching.rank(session, RESIDENTS, need_query(need), CANDIDATE_DEPTH, consenting(session, today))
    ids = [int(r.doc_id) for r in ranked]
    residents = {rid: (territory, availability, languages) for rid, territory, availability, languages in
                 session.exec(  # columns, not objects: what the policy reads of each
                     select(Resident.id, Resident.territory_id, Resident.availability, Resident.languages)
                     .where(col(Resident.id).in_(ids))).all()}
    statements, refusals = skills_and_refusals(session, ids)
    pairs = best_pairs_of(rows, answering(need.kind, {rid: statements.get(rid, []) for rid in ids}),
                          matching.dim)
    drop_refused(pairs, refusals, rows, matching.dim)
    territories = _territories(session, [need.territory_id, *(r[0] for r in residents.values())])
    vectors = _mean_vectors(statements, matching.dim)
    fair = fairness(session, ids, today)
    rejected_ids = session.exec(select(Match.resident_id).where(
        Match.need_id == need.id, Match.status == MatchStatus.REJECTED)).all()
    rejected = list(profile_vectors(session, list(rejected_ids), matching.dim).values())
    weight = matching.hybrid[RESIDENTS].weight_total
    candidates = [
        Candidate(rid, h.score / weight, _side(territories, *residents[rid]),
                  vector=vectors.get(rid), pending_this_month=fair.pending.get(rid, 0),
                  ever_matched=rid in fair.matched, similarity=pairs[rid][0][2],
                  displaceable=fair.displaceable(rid))
        for h in ranked if (rid := int(h.doc_id)) in residents and pairs[rid]
    ]
    policy = replace(matching.policy, min_score=review_floor(session, matching.min_similarity))
    decisions = decide(_side(territories, need.territory_id, need.availability, need.languages),
                       candidates, policy, k or matching.proposals_per_need, rejected)
    proposals = [
        Proposal(need.id, d.candidate.doc_id, d.candidate.similarity or 0.0,
                 _explanation(pairs[d.candidate.doc_id], need_is_query=True, decision=d))
        for d in decisions
    ]
    replacing = {(need.id, d.candidate.doc_id): fair.unreviewed[d.candidate.doc_id][0][1:]
                 for d in decisions if "displaces" in d.satisfied}
    added = store_proposals(session, proposals, Direction.NEED_TO_RESIDENT,
                            {pair: match_id for pair, (match_id, _need) in replacing.items()})
    return added, _freed(session, replacing)


@dataclass(frozen=True)
class Nearby:
    """A resident close to a need whom the matcher did not propose, and why they are close."""

    resident: Resident
    explanation: dict[str, Any]


def _followed_and_free(followed: Any, need_id: int, today: date) -> Any:
    """Ids of the residents of `followed` (a query of Resident rows) with a valid consent and no
    proposal for this need, whatever its state (a rejected pair is not offered again)."""
    proposed = exists().where(col(Match.need_id) == need_id, col(Match.resident_id) == Resident.id)
    # The conditions added to the followed query itself: as `IN (its ids)`, a centre's list took
    # 69 ms at 100,000 residents.
    return ids_subquery(followed, Resident).where(with_valid_consent(today), ~proposed)


def nearest_residents(session: Session, matching: MatchingService, need: Need, today: date,
                      followed: Any, k: int = NEARBY) -> list[Nearby]:
    """The residents of `followed` closest to an open need among those with a valid consent and
    no proposal for it, best first: whom a social worker may think of when the matcher proposed
    nobody. Ranked as `propose_for_need` ranks, without the policy (floor, filters, fairness):
    the worker reads each pair of statements and judges."""
    if need.status != NeedStatus.OPEN or need.id is None:
        return []
    rows = need_statements(session, need.id)
    if not rows:
        return []
    free = _followed_and_free(followed, need.id, today)
    eligible = Eligibility(
        among=lambda ids: set(session.exec(free.where(col(Resident.id).in_(list(ids)))).all()),
        every=lambda: set(session.exec(free).all()))
    matching.lend_need_vectors(session, need)
    # A few more than shown: a resident whose statements are all negations has no pair to show.
    ids = [int(h.doc_id) for h in matching.rank(session, RESIDENTS, need_query(need), 2 * k, eligible)]
    statements, refusals = skills_and_refusals(session, ids)
    pairs = best_pairs_of(rows, answering(need.kind, {rid: statements.get(rid, []) for rid in ids}),
                          matching.dim)
    drop_refused(pairs, refusals, rows, matching.dim)
    residents = rows_by_id(session, Resident, ids)
    return [Nearby(residents[rid], _explanation(pairs[rid], need_is_query=True))
            for rid in ids if pairs[rid] and rid in residents][:k]


def worker_proposal(session: Session, matching: MatchingService, need: Need, resident: Resident,
                    today: date) -> Match:
    """A social worker's own proposal of a resident for an open need (added to the session, not
    committed; the caller approves it: the worker who makes it is its review). Its explanation
    is the pairs of statements the matcher would show; it needs a valid consent, and no proposal
    of this pair may exist (a rejected one included)."""
    if need.id is None or resident.id is None or not need.open_to_proposals:
        raise ServiceError(_l("Ce besoin n'est pas ouvert : on ne peut plus y proposer quelqu'un."))
    if is_filled(session, need):
        raise ServiceError(_l("Ce besoin a déjà toutes les personnes demandées : on ne peut plus y "
                              "proposer quelqu'un."))
    if resident.validation_status != ValidationStatus.VALIDATED:  # out of matching until then
        raise ServiceError(_l("Cette fiche n'est pas encore validée : validez-la d'abord, puis proposez "
                              "la personne."))
    if resident.id not in valid_consent_residents(session, today, [resident.id]):
        raise ServiceError(_l("Sans consentement valide, cette personne ne peut pas être proposée."))
    if session.exec(select(Match.id).where(Match.need_id == need.id,
                                           Match.resident_id == resident.id)).first() is not None:
        raise ServiceError(_l("Cette personne a déjà une proposition pour ce besoin."))
    statements = statements_of_residents(session, [resident.id])
    pairs = best_pairs_of(need_statements(session, need.id), {resident.id: statements.get(resident.id, [])},
                          matching.dim)[resident.id]
    match = Match(need_id=need.id, resident_id=resident.id, score=round(pairs[0][2], 4) if pairs else 0.0,
                  direction=Direction.WORKER, explanation=_explanation(pairs, need_is_query=True),
                  status=MatchStatus.PROPOSED)
    session.add(match)
    try:
        session.flush()
    except IntegrityError:  # another worker proposed this pair since the check above
        session.rollback()
        raise ServiceError(_l("Cette personne a déjà une proposition pour ce besoin.")) from None
    return match


def propose_for_resident(session: Session, matching: MatchingService, resident: Resident,
                         today: date, k: int | None = None) -> int:
    """Propose open needs to a resident with valid consent (committed); return how many are new."""
    if resident.id is None or resident.id not in valid_consent_residents(session, today, [resident.id]):
        return 0
    every = current_statements(session, resident.id, with_negated=True)
    rows = [st for st in every if not st.negated]
    declaration = session.exec(select(SkillDeclaration).where(
        SkillDeclaration.resident_id == resident.id, col(SkillDeclaration.is_current).is_(True))
        .order_by(col(SkillDeclaration.id).desc())).first()
    if not rows or declaration is None:
        return 0
    fair = fairness(session, [resident.id], today)
    held = fair.unreviewed.get(resident.id, [])
    # The cap counts this round's picks too: every one goes to the same person. Past the free
    # places, a closer need may take the place of a proposal nobody reviewed yet (`fill`).
    wanted = k or matching.proposals_per_resident
    room = min(wanted, matching.policy.monthly_cap - fair.pending.get(resident.id, 0))
    if room <= 0 and not held:
        return 0
    # A need already proposed (or reviewed) for this person would take a place and add nothing.
    paired = set(session.exec(select(Match.need_id).where(Match.resident_id == resident.id)).all())
    ranked = [r for r in matching.rank(session, NEEDS, declaration.text, CANDIDATE_DEPTH,
                                       open_needs_for(session, resident.languages))
              if int(r.doc_id) not in paired]
    ids = [int(r.doc_id) for r in ranked]
    needs = {n.id: n for n in session.exec(select(Need).where(col(Need.id).in_(ids))).all()}
    statements = statements_of_needs(session, ids)
    # A need for a resource is answered by what the person has or lends only.
    wanting = {nid for nid in ids if nid in needs and needs[nid].kind == NeedKind.RESOURCE}
    pairs = best_pairs_of(rows, {nid: statements.get(nid, []) for nid in ids if nid not in wanting},
                          matching.dim)
    pairs.update(best_pairs_of(offering(rows), {nid: statements.get(nid, []) for nid in wanting},
                               matching.dim))
    refusals = from_blobs([st.vector for st in every if st.negated], matching.dim)
    refused_texts = [st.text for st in every if st.negated]
    if len(refusals):
        for nid in ids:  # a need asking what the person said they cannot do (see drop_refused)
            asked = statements.get(nid, [])
            if pairs[nid] and refused(refused_texts, refusals, [st.text for st in asked],
                                      from_blobs([st.vector for st in asked], matching.dim),
                                      pairs[nid][0][2]):
                pairs[nid] = []
    territories = _territories(session, [resident.territory_id,
                                         *(needs[i].territory_id for i in ids if i in needs)])
    weight = matching.hybrid[NEEDS].weight_total
    candidates = [
        Candidate(nid, h.score / weight, _side(territories, n.territory_id, n.availability, n.languages),
                  similarity=pairs[nid][0][2])
        for h in ranked if (nid := int(h.doc_id)) in needs and pairs[nid]
        for n in (needs[nid],)
    ]
    # Languages were checked above (the need asks, the resident answers), and the diversity of
    # needs offered to one person is not a fairness question.
    policy = replace(matching.policy, require_languages=False, diversity=0.0,
                     min_score=review_floor(session, matching.min_similarity))
    me = _side(territories, resident.territory_id, resident.availability, resident.languages)
    decisions = decide(me, candidates, policy, min(wanted, max(room, 0) + len(held)))
    taken = fill([d.candidate.similarity or 0.0 for d in decisions], [score for score, *_ in held],
                 room, policy.displace_margin)
    replacing: dict[tuple[int, int], tuple[int, int]] = {}
    for i, j in taken:
        if j is not None:
            decisions[i].satisfied.append("displaces")
            replacing[(decisions[i].candidate.doc_id, resident.id)] = held[j][1:]
    proposals = [
        Proposal(d.candidate.doc_id, resident.id, d.candidate.similarity or 0.0,
                 _explanation(pairs[d.candidate.doc_id], need_is_query=False, decision=d))
        for d in (decisions[i] for i, _j in taken)
    ]
    added = store_proposals(session, proposals, Direction.RESIDENT_TO_NEED,
                            {pair: match_id for pair, (match_id, _need) in replacing.items()})
    _refill(session, matching, _freed(session, replacing), today)
    return added


def store_proposals(session: Session, proposals: list[Proposal], direction: Direction,
                    replacing: Mapping[tuple[int, int], int] | None = None) -> int:
    """Add proposals for review; pairs already proposed or reviewed stay as they are.

    One INSERT that skips the pairs the table already holds (ON CONFLICT DO NOTHING on the pair's
    unique constraint), not a check then an insert: a worker's proposal (or another round) for the
    same pair committed in between made the whole round fail at its commit, losing its other
    proposals. Only the rows inserted are counted and announced to the workers.

    `replacing`: (need id, resident id) → the proposal it takes the place of at the person's
    monthly cap, withdrawn once the pair is stored (a pair already there withdraws nothing); one
    reviewed meanwhile keeps its place, and its replacement is taken back unseen."""
    if proposals:
        now = utcnow()
        rows = [{"need_id": p.need_id, "resident_id": p.resident_id, "score": round(p.score, 4),
                 "direction": direction, "explanation": p.explanation, "status": MatchStatus.PROPOSED,
                 "created_at": now} for p in proposals]
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        added = set(session.exec(
            dialect.insert(Match).values(rows)
            .on_conflict_do_nothing(index_elements=["need_id", "resident_id"])
            .returning(col(Match.need_id), col(Match.resident_id))).all())
        if replacing:
            added -= _give_way(session, {pair: replacing[pair] for pair in added if pair in replacing})
        proposals = [p for p in proposals if (p.need_id, p.resident_id) in added]
        notify_new_proposals(session, proposals, now)
    session.commit()
    return len(proposals)


def _give_way(session: Session, replacing: Mapping[tuple[int, int], int]) -> set[tuple[int, int]]:
    """Withdraw the proposals new pairs replace at the monthly cap, those still unreviewed; return
    the new pairs whose proposal was reviewed meanwhile, deleted again (never seen: same
    transaction)."""
    if not replacing:
        return set()
    gone = delete_withdrawn(session, col(Match.id).in_(list(replacing.values())),
                            col(Match.status) == MatchStatus.PROPOSED)
    back = {pair for pair, match_id in replacing.items() if match_id not in gone}
    for need_id, resident_id in back:
        session.exec(delete(Match).where(col(Match.need_id) == need_id,  # type: ignore[call-overload]
                                         col(Match.resident_id) == resident_id))
    return back


def shown_to_association(today: date) -> Any:
    """The proposals an association sees, as a condition on Match: approved and after, while the
    resident's consent covers matching; after a withdrawal or an expiry, only a yes given before
    stays (the association and the person work together: the follow-up page gives the centre to
    reach them). A no, or a proposal still waiting, no longer shows the person's name."""
    return and_(col(Match.status).in_(VISIBLE_TO_ASSOCIATION),
                or_(col(Match.status) == MatchStatus.ACCEPTED,
                    col(Match.resident_id).in_(consent_query(today))))


def reviewable(followed: Any, today: date) -> Any:
    """The ids (a subquery) of the residents among `followed` (a query of Resident rows) whose
    proposals can be reviewed today: their consent covers matching. An expired consent is no
    event: its proposals wait, out of the review desk, until it is renewed."""
    return ids_subquery(followed.where(with_valid_consent(today)), Resident)


def visible_candidates(session: Session, need: Need) -> list[tuple[Match, Resident]]:
    """The proposals an association may see for its need (approved and after), with the
    resident behind each (shown by first name and initial only; see shown_to_association)."""
    matches = session.exec(select(Match).where(Match.need_id == need.id, shown_to_association(date.today()))
                           .order_by(col(Match.id))).all()
    residents = {r.id: r for r in session.exec(
        select(Resident).where(col(Resident.id).in_([m.resident_id for m in matches]))).all()}
    return [(m, residents[m.resident_id]) for m in matches]


@dataclass(frozen=True)
class OutOfFilters:
    """A matcher's approved opportunity, not answered yet, whose person the need's hard filters
    now keep out (`failed`: "languages", "distance", "territory" or "availability")."""

    match_id: int
    resident_id: int
    reviewer_id: int | None
    failed: str


def approvals_out_of_filters(session: Session, policy: Policy, need: Need,
                             changed: Iterable[str]) -> list[OutOfFilters]:
    """The matcher's approvals of `need` the resident has not answered that the filters its
    `changed` fields feed ("languages": the languages asked; "territory_id": distance and
    neighbourhood; "availability": the time slots, when they filter), as they are now, would have
    filtered out. Only those: a person who moved
    since the approval is not withdrawn by a change of the languages asked. A worker's own
    pick is theirs: it stays."""
    changed = set(changed)
    policy = replace(policy, require_languages=policy.require_languages and "languages" in changed,
                     max_distance_km=policy.max_distance_km if "territory_id" in changed else None,
                     same_territory_only=policy.same_territory_only and "territory_id" in changed,
                     require_availability=policy.require_availability and "availability" in changed)
    rows = session.execute(  # six columns: sqlmodel's select() types four at most
        sa_select(col(Match.id), col(Match.resident_id), col(Match.reviewed_by_id),
                  col(Resident.territory_id), col(Resident.languages), col(Resident.availability))
        .join(Resident, col(Resident.id) == Match.resident_id)
        .where(col(Match.need_id) == need.id, matcher_approvals())).all()
    territories = _territories(session, [need.territory_id, *(row[3] for row in rows)])
    wanted = _side(territories, need.territory_id, need.availability, need.languages)
    out = []
    for match_id, resident_id, reviewer_id, territory_id, languages, availability in rows:
        failed, _met = hard_filters(wanted, _side(territories, territory_id, availability, languages), policy)
        if failed is not None and match_id is not None:
            out.append(OutOfFilters(match_id, resident_id, reviewer_id, failed))
    return out


def matcher_approvals() -> Any:
    """Approved opportunities the matcher made, not answered yet (a worker's own pick excluded):
    what a change of the need takes back."""
    return and_(col(Match.status) == MatchStatus.APPROVED, col(Match.direction) != Direction.WORKER)


def unanswered_approvals(session: Session, need_id: int, today: date) -> int:
    """How many `matcher_approvals` of a need its association sees (`shown_to_association`): what a
    change of its text would take back (its edit form says so before, and after)."""
    return int(session.exec(select(func.count()).select_from(Match).where(
        Match.need_id == need_id, matcher_approvals(), shown_to_association(today))).one())


def delete_withdrawn(session: Session, *which: Any) -> set[int]:
    """Delete the proposals matching `which` (withdrawn: nobody reviewed or answered them, or
    what was approved no longer holds), keeping their ids for `GET /proposals/withdrawn` (with
    the person's centre, whose staff may list them). Return the ids gone. Not committed."""
    gone = session.exec(delete(Match).where(*which)  # type: ignore[call-overload]
                        .returning(col(Match.id), col(Match.resident_id))).all()
    if gone:
        centres = dict(session.exec(select(Resident.id, Resident.organisation_id).where(
            col(Resident.id).in_({resident_id for _id, resident_id in gone}))).all())
        keep_withdrawn_ids(session, [(match_id, centres.get(resident_id)) for match_id, resident_id in gone])
    return {match_id for match_id, _resident_id in gone}


def keep_withdrawn_ids(session: Session, withdrawn: Sequence[tuple[int, int | None]]) -> None:
    """Keep the ids of proposals deleted now, each with the person's centre (whose staff may list
    them, `GET /proposals/withdrawn`). Not committed."""
    if withdrawn:
        now = utcnow()
        session.exec(insert(WithdrawnProposal).values(  # type: ignore[call-overload]
            [{"id": match_id, "organisation_id": centre, "withdrawn_at": now}
             for match_id, centre in withdrawn]))


def drop_old_withdrawals(session: Session, now: datetime) -> int:
    """Forget the withdrawn proposals' ids kept longer than WITHDRAWN_KEPT_DAYS (the retention
    run); return how many. Not committed."""
    result = session.exec(delete(WithdrawnProposal).where(  # type: ignore[call-overload]
        col(WithdrawnProposal.withdrawn_at) < now - timedelta(days=WITHDRAWN_KEPT_DAYS)))
    return int(result.rowcount or 0)


def withdraw_unreviewed(session: Session, *, need_id: int | None = None,
                        resident_id: int | None = None, unanswered: bool = False) -> int:
    """Drop proposals nobody reviewed yet: they were made from text that has changed. With
    `unanswered`, the matcher's approved ones the resident has not answered too: a need whose
    text changed asks something else than what the worker approved and the resident would say
    yes to (the review history changes then: once committed, `forget_review_floor`). A worker's
    own pick from the need's page stays: they chose the person, not the words (a typo fixed in
    the title took it away for good, the matcher never proposing that person). Return how many
    went."""
    unreviewed = col(Match.status) == MatchStatus.PROPOSED
    which = [or_(unreviewed, matcher_approvals()) if unanswered else unreviewed]
    if need_id is not None:
        which.append(col(Match.need_id) == need_id)
    if resident_id is not None:
        which.append(col(Match.resident_id) == resident_id)
    centres = set(session.exec(select(Resident.organisation_id).join(
        Match, col(Match.resident_id) == Resident.id).where(*which, unreviewed).distinct()).all())
    gone = delete_withdrawn(session, *which)
    if centres:
        settle_to_review(session, centres)  # « 2 nouvelles propositions » about proposals gone
    return len(gone)
