"""The review workflow: a social worker approves or rejects, then the resident answers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlmodel import Session, col, func, select

from matcher.sensitive import find_sensitive
from models import (
    Match,
    MatchStatus,
    Need,
    NeedStatus,
    Organisation,
    RejectionReason,
    Resident,
    Territory,
    User,
    utcnow,
)
from web.forms import SENSITIVE_LABELS
from web.services import ChangedMeanwhile, ServiceError
from web.services.audit import record
from web.services.matching import MatchingService
from web.services.notifications import (
    approvals_withdrawn,
    opportunity_approved,
    resident_answered,
    settle_to_review,
)
from web.services.proposals import (
    forget_review_floor,
    is_filled,
    matcher_approvals,
    not_filled,
    reviewable,
    valid_consent_residents,
    withdraw_unreviewed,
    worker_proposal,
)
from web.services.queries import count_rows, ids_subquery, numbered_page, row_id, rows_by_id, update_if

MAX_REASON_CHARS = 1000


def approve(session: Session, reviewer: User, match: Match) -> None:
    """Make a proposal visible to the resident and the association (while its need is open and
    the resident's consent covers matching)."""
    if match.status != MatchStatus.PROPOSED:
        raise ServiceError(_l("Cette proposition a déjà été examinée."))
    _refuse_if_closed(session, match, CLOSED_FOR_REVIEWER)
    if _filled(session, [match]):
        raise ServiceError(FILLED_FOR_REVIEWER)
    _approve(session, reviewer, match)
    settle_to_review(session, _centres(session, [match]))
    session.commit()
    forget_review_floor(session)


def bulk_approve(session: Session, reviewer: User, matches: Sequence[Match]) -> int:
    """Approve several proposals in one transaction: all of them, or none when one was already
    reviewed (one audit event per proposal). The caller checked the reviewer may review each."""
    if not matches:
        raise ServiceError(_l("Cochez au moins une proposition."))
    if any(m.status != MatchStatus.PROPOSED for m in matches):
        raise ServiceError(_l("Une des propositions cochées a déjà été examinée : rien n'a été "
                              "validé. Rechargez la page."))
    if closed_reasons(session, matches, date.today()) or _filled(session, matches):
        raise ServiceError(_l("Une des propositions cochées ne peut plus être validée (besoin fermé ou "
                              "consentement terminé) : rien n'a été validé. Rechargez la page."))
    try:
        for match in matches:
            _approve(session, reviewer, match)
    except ServiceError:  # one reviewed by someone else meanwhile: _review rolled back them all
        raise ServiceError(_l("Une des propositions cochées a déjà été examinée : rien n'a été "
                              "validé. Rechargez la page.")) from None
    settle_to_review(session, _centres(session, matches))
    session.commit()
    forget_review_floor(session)
    return len(matches)


def propose_and_approve(session: Session, worker: User, matching: MatchingService, need: Need,
                        resident: Resident, today: date) -> Match:
    """A social worker proposes a resident they follow for a need, from the need's page, and
    approves it as they make it (they are its review): journaled as both, the resident told. The
    caller checked the worker may manage the resident."""
    match = worker_proposal(session, matching, need, resident, today)
    record(session, worker, "match.propose", "match", match.id, need_id=need.id)
    approve(session, worker, match)
    return match


class Closed(StrEnum):
    """Why a proposal can no longer be approved or answered."""

    NEED = "need"  # the need is paused, closed or waits for validation
    CONSENT = "consent"  # the resident's consent no longer covers matching


def closed_reasons(session: Session, matches: Sequence[Match], today: date) -> dict[int, Closed]:
    """The proposals among `matches` that can no longer be approved or answered, and why.

    Pausing or closing a need and withdrawing consent withdraw the unreviewed proposals only, and
    consent also ends by expiry, with no event: an approved one stays on the resident's page (and
    the association's), so approving and answering check both again."""
    needs = {n.id: n for n in session.exec(select(Need).where(
        col(Need.id).in_({m.need_id for m in matches}))).all()}
    consenting = valid_consent_residents(session, today, {m.resident_id for m in matches})
    out = {}
    for m in matches:
        need = needs.get(m.need_id)
        if need is None or not need.open_to_proposals:
            out[m.id or 0] = Closed.NEED
        elif m.resident_id not in consenting:
            out[m.id or 0] = Closed.CONSENT
    return out


# What each side reads when a proposal closed under it.
CLOSED_FOR_REVIEWER = {
    Closed.NEED: _l("Ce besoin n'est plus ouvert : la proposition ne peut plus être validée."),
    Closed.CONSENT: _l("Le consentement de cette personne ne couvre plus la mise en relation : "
                       "la proposition ne peut pas être validée."),
}
FILLED_FOR_RESIDENT = _l("Merci ! Les places sont déjà prises pour cette fois. La personne qui vous "
                         "accompagne vous dira s'il y a autre chose pour vous.")
FILLED_FOR_REVIEWER = _l("Ce besoin a déjà toutes les personnes demandées : plus de proposition à valider.")

CLOSED_FOR_RESIDENT = {
    Closed.NEED: _l("Cette proposition est close : la structure n'attend plus de réponse."),
    # Not « parlez-en… » alone, which read as "go and renew" to someone who had just withdrawn.
    Closed.CONSENT: _l("Votre accord pour recevoir des propositions a pris fin : vous ne pouvez plus "
                       "répondre. Si vous voulez en recevoir à nouveau, parlez-en à la personne qui "
                       "vous accompagne."),
}


def _refuse_if_closed(session: Session, match: Match, messages: Mapping[Closed, Any]) -> None:
    closed = closed_reasons(session, [match], date.today()).get(match.id or 0)
    if closed is not None:
        raise ServiceError(messages[closed])


def done_as_asked(session: Session, match_ids: Sequence[int], status: MatchStatus,
                  reviewer: User | None = None) -> bool:
    """Whether every proposal is now in `status` (reviewed by `reviewer`, when given): a review or
    an answer refused because a double tap's first request, or a reload, did just that. The page
    then says it is done rather than "already reviewed: nothing was done"."""
    rows = session.exec(select(Match.status, Match.reviewed_by_id)
                        .where(col(Match.id).in_(match_ids))).all()
    return len(rows) == len(set(match_ids)) > 0 and all(
        now == status and (reviewer is None or by == reviewer.id) for now, by in rows)


def _filled(session: Session, matches: Sequence[Match]) -> bool:
    """Whether one of the matches' needs has as many yeses as people it asked for."""
    return session.exec(select(Need.id).where(
        col(Need.id).in_({m.need_id for m in matches}), col(Need.people_wanted).is_not(None),
        ~not_filled())).first() is not None


def _centres(session: Session, matches: Sequence[Match]) -> set[int]:
    """The organisations following the residents of `matches` (whose workers' notices count them)."""
    return set(session.exec(select(Resident.organisation_id).where(
        col(Resident.id).in_({m.resident_id for m in matches}))).all())


def _review(session: Session, reviewer: User, match: Match, **values: Any) -> None:
    """Write a review only if the proposal is still unreviewed in the database: two workers (or two
    tabs) may read it at once, and the second review must not overwrite the first (an approval
    over a rejection told the resident of an opportunity their worker had set aside)."""
    if not update_if(session, match, col(Match.status), MatchStatus.PROPOSED,
                     reviewed_by_id=reviewer.id, reviewed_at=utcnow(), **values):
        raise ChangedMeanwhile(_l("Cette proposition a déjà été examinée."))


def _approve(session: Session, reviewer: User, match: Match) -> None:
    """Approve a proposal the caller found unreviewed and still open."""
    _review(session, reviewer, match, status=MatchStatus.APPROVED)
    record(session, reviewer, "match.approve", "match", match.id)
    opportunity_approved(session, match)


def refuse_sensitive(note: str, message: Any) -> None:
    """A note the person reads in the copy of their data (a rejection's reason, an outcome's word)
    holds no health, faith, origin…: `message` (with %(what)s and %(words)s) says which words, as
    a ServiceError on the note. (« Karim préfère attendre la fin du Ramadan » was kept and shown.)"""
    if findings := find_sensitive(note):
        raise ServiceError(fields={"note": [str(message) % {
            "what": ", ".join(str(SENSITIVE_LABELS.get(f.category, f.category)) for f in findings),
            "words": ", ".join(w for f in findings for w in f.words)}]})


SENSITIVE_REASON = _l("Rien n'est écarté : la précision parle de %(what)s (« %(words)s »), et la personne la "
                      "lira dans la copie de ses données. Écrivez la raison sans ce détail.")


def reject(session: Session, reviewer: User, match: Match, code: str, note: str = "") -> None:
    """Set a proposal aside with a reason code (and a note), kept as a labelled pair."""
    if match.status != MatchStatus.PROPOSED:
        raise ChangedMeanwhile(_l("Cette proposition a déjà été examinée."))
    note = note.strip()
    if code not in set(RejectionReason) or (code == RejectionReason.OTHER and not note):
        raise ServiceError(_l("Indiquez la raison du refus."))
    if len(note) > MAX_REASON_CHARS:
        raise ServiceError(_l("La raison est trop longue (1 000 caractères au plus)."))
    refuse_sensitive(note, SENSITIVE_REASON)
    _review(session, reviewer, match, status=MatchStatus.REJECTED, rejection_code=code,
            rejection_note=note or None)
    # The note stays on the proposal (erased with it); the append-only audit never holds free text.
    record(session, reviewer, "match.reject", "match", match.id, code=code, has_note=bool(note))
    settle_to_review(session, _centres(session, [match]))  # the desk's notices count what still waits
    session.commit()
    forget_review_floor(session)


ANSWERED = _l("Vous avez déjà répondu à cette proposition.")
# An answer from a page left open (another tab, a phone in a pocket) says what stands and how to
# change it: « déjà répondu » alone left her guessing whether her yes or her no was kept.
ANSWERED_WITH: dict[str, Any] = {
    MatchStatus.ACCEPTED: _l("Vous avez déjà dit oui à cette proposition. Si vous ne pouvez plus, touchez "
                             "« Je ne peux plus, finalement »."),
    MatchStatus.DECLINED: _l("Vous avez déjà dit non à cette proposition. Si elle vous intéresse, touchez "
                             "« J'ai changé d'avis : ça m'intéresse »."),
}
CANNOT_CHANGE = _l("Cette réponse ne peut plus changer : parlez-en à la personne qui vous accompagne.")


def answer(session: Session, resident_user: User, match: Match, accept: bool,
           comment: str = "", change: bool = False) -> None:
    """The resident says yes or no to an approved opportunity, while its need is open and their
    consent covers matching (a yes gives the association their contact). The answer is written
    only if the proposal is still approved: of two answers sent at once (a double tap, yes on the
    phone and no in the app), the first one counts and the second is told it came too late.

    With `change`, the person changes their mind on an answer given: a yes becomes a no until what
    happened is recorded (whatever became of the need: the structure counts on her), a no becomes
    a yes on the same terms as any yes (need open, a place left, consent valid). Who heard of the
    first answer hears of the new one."""
    target = MatchStatus.ACCEPTED if accept else MatchStatus.DECLINED
    before = (MatchStatus.DECLINED if accept else MatchStatus.ACCEPTED) if change else MatchStatus.APPROVED
    if match.status != before or (change and match.outcome is not None):
        raise ServiceError(CANNOT_CHANGE if change else ANSWERED_WITH.get(match.status, ANSWERED))
    if accept or not change:
        _refuse_if_closed(session, match, CLOSED_FOR_RESIDENT)
    match_id, need_id, resident_id = match.id, match.need_id, match.resident_id  # kept past a rollback
    # The need still open when the answer is written, not only when it was checked: an association
    # closing it meanwhile must not receive a yes it has just closed the door on.
    open_needs = select(Need.id).where(Need.status == NeedStatus.OPEN)
    if accept:  # nor as many yeses as people it asked for: the place is taken
        open_needs = open_needs.where(not_filled())
        # Two yeses at once count each other (PostgreSQL: the need's row; SQLite: its one writer).
        session.exec(select(Need.id).where(Need.id == need_id).with_for_update())
    still = col(Match.outcome).is_(None) if change and not accept else col(Match.need_id).in_(open_needs)
    said = comment.strip()[:MAX_REASON_CHARS] or (match.resident_comment if change else None)
    if not update_if(session, match, col(Match.status), before, still,
                     status=target, answered_at=utcnow(), resident_comment=said):
        now = session.exec(select(Match.status).where(  # the pair too: SQLite may reuse a deleted id
            Match.id == match_id, Match.need_id == need_id, Match.resident_id == resident_id)).first()
        if now == target or (not change and now in (MatchStatus.ACCEPTED, MatchStatus.DECLINED)):
            raise ServiceError(ANSWERED_WITH.get(now or "", ANSWERED))
        if change and not accept:  # what happened was recorded meanwhile
            raise ServiceError(CANNOT_CHANGE)
        need = session.get(Need, need_id)
        if now == before and need is not None and need.status == NeedStatus.OPEN:
            raise ServiceError(FILLED_FOR_RESIDENT)
        raise ServiceError(CLOSED_FOR_RESIDENT[Closed.NEED])  # withdrawn meanwhile, or the need closed
    record(session, resident_user, "match.accept" if accept else "match.decline", "match", match.id,
           **({"changed_mind": True} if change else {}))
    resident_answered(session, match, changed_mind=change)
    need = session.get(Need, need_id)
    if accept and need is not None and is_filled(session, need):
        # As many yeses as people asked for: the proposals nobody reviewed yet would be for nothing,
        # and the matcher's approved ones would be answered for a place taken (their workers and
        # residents are told). A worker's own pick stays: its yes is refused (FILLED_FOR_RESIDENT).
        approvals_withdrawn(session, need, list(session.exec(
            select(Match.resident_id, Match.reviewed_by_id).where(
                Match.need_id == need_id, matcher_approvals())).all()), why="filled")
        if withdraw_unreviewed(session, need_id=need_id, unanswered=True):
            session.commit()
            forget_review_floor(session)  # approvals went: the floor learnt from reviews is read again
    session.commit()


# ---------------------------------------------------------------- the review desk and timelines

FILTER_ARGS = {"territory_id": "quartier", "need_id": "besoin", "organisation_id": "structure"}


@dataclass(frozen=True)
class ReviewFilters:
    """The review desk's filters, read from and written back to the query string."""

    territory_id: int | None = None  # the resident's neighbourhood
    need_id: int | None = None
    organisation_id: int | None = None  # the structure that posted the need

    @classmethod
    def parse(cls, args: Mapping[str, str]) -> ReviewFilters:
        """Filters from GET parameters; anything that is not a positive id is ignored."""
        values: dict[str, int | None] = {}
        for name, arg in FILTER_ARGS.items():
            values[name] = row_id(args.get(arg))
        return cls(**values)

    def query_args(self) -> dict[str, Any]:
        """The parameters to keep in links and redirects (only the filters set)."""
        return {arg: value for name, arg in FILTER_ARGS.items()
                if (value := getattr(self, name)) is not None}

    def __bool__(self) -> bool:
        return bool(self.query_args())


REVIEW_PAGE_SIZE = 50


@dataclass
class ReviewQueue:
    proposals: list[Match]  # one page of those waiting for review, after the filters, best first
    total: int  # waiting for review, before the filters
    residents: dict[int, Resident]  # of the page's proposals
    needs: dict[int, Need]
    organisations: dict[int, Organisation]
    territories: dict[int, Territory]
    filter_needs: list[Need] = field(default_factory=list)  # the filters' options: the whole queue's
    filter_organisations: list[Organisation] = field(default_factory=list)
    filter_territories: list[Territory] = field(default_factory=list)
    matching: int = 0  # waiting for review, after the filters
    page: int = 1
    pages: int = 1

    @property
    def need_groups(self) -> list[tuple[str, list[Need]]]:
        """The need filter's options under their structure's name (structures by name, needs by
        title): two structures' "Aide aux devoirs" are two needs, and a long list reads by structure."""
        groups: dict[int, list[Need]] = {}
        for need in self.filter_needs:
            groups.setdefault(need.organisation_id, []).append(need)
        named = [(self.organisations[oid].name if oid in self.organisations else "", needs)
                 for oid, needs in groups.items()]
        return sorted(named, key=lambda group: group[0].casefold())


def review_queue(session: Session, followed: Any, filters: ReviewFilters, page: int = 1) -> ReviewQueue:
    """The proposals waiting for review about the residents the reviewer follows (`followed`, a
    query of Resident rows), a page at a time: the filters, counts and options are asked of the
    database, and only the page's proposals are read (an admin's whole queue, ~20,000 proposals with
    their explanations at 100k residents, took 4.4 s)."""
    waiting: list[Any] = [col(Match.resident_id).in_(reviewable(followed, date.today())),
                          Match.status == MatchStatus.PROPOSED]
    waiting_residents = select(Match.resident_id).where(*waiting)
    waiting_needs = select(Match.need_id).where(*waiting)
    chosen = list(waiting)
    if filters.territory_id is not None:
        chosen.append(col(Match.resident_id).in_(
            select(Resident.id).where(Resident.territory_id == filters.territory_id)))
    if filters.need_id is not None:
        chosen.append(Match.need_id == filters.need_id)
    if filters.organisation_id is not None:
        chosen.append(col(Match.need_id).in_(
            select(Need.id).where(Need.organisation_id == filters.organisation_id)))
    best_first = select(Match).where(*chosen).order_by(col(Match.score).desc(), col(Match.id))
    shown = numbered_page(session, best_first, page, REVIEW_PAGE_SIZE)
    total = count_rows(session, select(Match).where(*waiting)) if filters else shown.total
    residents = rows_by_id(session, Resident, {m.resident_id for m in shown.items})
    filter_needs = sorted(session.exec(select(Need).where(col(Need.id).in_(waiting_needs))).all(),
                          key=lambda n: n.title.casefold())
    organisations = rows_by_id(session, Organisation, {n.organisation_id for n in filter_needs})
    territories = rows_by_id(session, Territory, select(Resident.territory_id).distinct().where(
        col(Resident.id).in_(waiting_residents)))
    return ReviewQueue(
        shown.items, total, residents, {n.id or 0: n for n in filter_needs}, organisations,
        territories, filter_needs,
        sorted(organisations.values(), key=lambda o: o.name.casefold()),
        sorted(territories.values(), key=lambda t: t.name.casefold()), shown.total, shown.page,
        shown.pages)


@dataclass
class TimelineStep:
    kind: str  # "proposed", then a MatchStatus reached later (approved, rejected, accepted…)
    at: datetime
    reason_code: str | None = None  # why it was set aside
    note: str | None = None  # the worker's note, or the resident's word


@dataclass
class TimelineEntry:
    match: Match
    need: Need
    steps: list[TimelineStep]

    @property
    def last_at(self) -> datetime:
        return self.steps[-1].at


def waiting_review(session: Session, resident_id: int | None, today: date) -> int:
    """How many of the person's proposals wait on the review desk: none while their consent does
    not cover matching (the desk leaves them out until it is renewed: `reviewable`)."""
    if resident_id is None or not valid_consent_residents(session, today, [resident_id]):
        return 0
    return int(session.exec(select(func.count()).select_from(Match).where(
        Match.resident_id == resident_id, Match.status == MatchStatus.PROPOSED)).one())


def proposal_timeline(session: Session, resident: Resident) -> list[TimelineEntry]:
    """Every proposal made for the resident: proposed → reviewed → answered, with dates; the
    most recent activity first."""
    matches = session.exec(select(Match).where(Match.resident_id == resident.id)).all()
    needs = {n.id: n for n in session.exec(
        select(Need).where(col(Need.id).in_({m.need_id for m in matches}))).all()}
    entries = []
    for m in matches:
        steps = [TimelineStep("proposed", m.created_at)]
        if m.reviewed_at is not None:
            rejected = m.status == MatchStatus.REJECTED
            steps.append(TimelineStep(MatchStatus.REJECTED if rejected else MatchStatus.APPROVED,
                                      m.reviewed_at, m.rejection_code if rejected else None,
                                      m.rejection_note if rejected else None))
        if m.answered_at is not None:
            said = MatchStatus.DECLINED if m.status == MatchStatus.DECLINED else MatchStatus.ACCEPTED
            steps.append(TimelineStep(said, m.answered_at, note=m.resident_comment))
        entries.append(TimelineEntry(m, needs[m.need_id], steps))
    return sorted(entries, key=lambda e: (e.last_at, e.match.id or 0), reverse=True)


def proposals_of_need(session: Session, need: Need, followed: Any) -> list[tuple[Match, Resident]]:
    """A need's proposals for the residents a worker follows (`followed`, a query of Resident
    rows), best score first, each with its resident."""
    mine = col(Match.resident_id).in_(ids_subquery(followed, Resident))
    rows = session.exec(select(Match, Resident).join(Resident, col(Resident.id) == Match.resident_id)
                        .where(Match.need_id == need.id, mine)
                        .order_by(col(Match.score).desc(), col(Match.id))).all()
    return [(m, r) for m, r in rows]
