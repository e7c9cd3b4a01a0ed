"""The review desk: filters kept across actions, bulk approval (all or nothing), reasons for a
rejection, keyboard help, and the timeline of proposals on the resident's page."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session, col, select

from models import (
    AuditEvent,
    Consent,
    ConsentScope,
    Direction,
    Match,
    MatchStatus,
    RejectionReason,
    Resident,
    User,
)
from tests.conftest import Auth, World, add_resident, hand_proposals
from web.extensions import matching
from web.services import ServiceError
from web.services.needs import NeedInput, create_need
from web.services.privacy import erase_and_forget
from web.services.proposals import Proposal, store_proposals
from web.services.review import ReviewFilters, answer, approve, proposal_timeline, reject

DESK = "/accompagnement/propositions"


@dataclass
class Desk:
    world: World
    awa: int  # Les Tilleuls, centre A
    ben: int  # Le Bourg, centre A
    other: int  # Les Tilleuls, centre B
    couture: int  # need of the association
    velo: int  # need of centre A
    ids: dict[tuple[int, int], int]  # (resident, need) → proposal id


@pytest.fixture
def desk(session: Session, world: World) -> Desk:
    awa = add_resident(session, world, "Awa", "Je fais de la couture.", initial="K").resident
    ben = add_resident(session, world, "Ben", "Je répare les vélos.", initial="L",
                       territory_id=world.bourg.id).resident
    other = add_resident(session, world, "Chloé", "Je couds.", recorded_by=world.worker_b).resident
    couture, _ = create_need(session, matching, world.member, NeedInput(
        title="Atelier couture", description="Animer un atelier couture."), date.today())
    velo, _ = create_need(session, matching, world.worker_a, NeedInput(
        title="Atelier vélo", description="Réparer les vélos des enfants."), date.today())
    for m in session.exec(select(Match)).all():  # start from known proposals, not the ranking
        session.delete(m)
    session.commit()
    pairs = [(awa.id, couture.id), (awa.id, velo.id), (ben.id, couture.id), (ben.id, velo.id),
             (other.id, couture.id)]
    store_proposals(session, [Proposal(n or 0, r or 0, 0.5, {}) for r, n in pairs],
                    Direction.NEED_TO_RESIDENT)
    ids = {(m.resident_id, m.need_id): m.id or 0 for m in session.exec(select(Match)).all()}
    return Desk(world, awa.id or 0, ben.id or 0, other.id or 0, couture.id or 0, velo.id or 0, ids)


def shown(page: str) -> set[int]:
    return {int(i) for i in re.findall(r'data-testid="proposal-(\d+)"', page)}


def status(session: Session, match_id: int) -> str:
    session.expire_all()
    match = session.get(Match, match_id)
    assert match is not None
    return match.status


def test_the_desk_shows_only_the_workers_residents(client: FlaskClient, auth: Auth, desk: Desk) -> None:
    auth.login(desk.world.worker_a.email or "")
    page = client.get(DESK).get_data(as_text=True)
    assert shown(page) == {desk.ids[(r, n)] for r in (desk.awa, desk.ben)
                           for n in (desk.couture, desk.velo)}


@pytest.mark.parametrize(("query", "expected"), [
    ("quartier={bourg}", [("ben", "couture"), ("ben", "velo")]),
    ("besoin={velo}", [("awa", "velo"), ("ben", "velo")]),
    ("structure={association}", [("awa", "couture"), ("ben", "couture")]),
    ("structure={centre_a}&quartier={tilleuls}", [("awa", "velo")]),
    ("quartier=abc&besoin=-1", [("awa", "couture"), ("awa", "velo"), ("ben", "couture"),
                                ("ben", "velo")]),  # not ids: ignored
])
def test_filters(client: FlaskClient, auth: Auth, desk: Desk, query: str,
                 expected: list[tuple[str, str]]) -> None:
    w = desk.world
    auth.login(w.worker_a.email or "")
    url = f"{DESK}?" + query.format(bourg=w.bourg.id, tilleuls=w.tilleuls.id, velo=desk.velo,
                                     association=w.association.id, centre_a=w.centre_a.id)
    people = {"awa": desk.awa, "ben": desk.ben}
    needs = {"couture": desk.couture, "velo": desk.velo}
    page = client.get(url).get_data(as_text=True)
    assert shown(page) == {desk.ids[(people[p], needs[n])] for p, n in expected}


def test_filters_are_kept_in_links_and_after_each_action(client: FlaskClient, auth: Auth,
                                                         desk: Desk, session: Session) -> None:
    w = desk.world
    auth.login(w.worker_a.email or "")
    keep = f"quartier={w.bourg.id}&besoin={desk.velo}"
    page = client.get(f"{DESK}?{keep}").get_data(as_text=True).replace("&amp;", "&")
    target = desk.ids[(desk.ben, desk.velo)]
    assert f'action="/accompagnement/propositions/{target}/valider?{keep}"' in page
    assert f'action="/accompagnement/propositions/{target}/refuser?{keep}"' in page
    assert f'action="/accompagnement/propositions/valider-la-selection?{keep}"' in page
    assert f'<option value="{w.bourg.id}" selected>' in page
    response = auth.post(f"/accompagnement/propositions/{target}/valider?{keep}", {},
                         token_from=DESK)
    assert response.headers["Location"] == f"{DESK}?{keep}"  # type: ignore[attr-defined]
    assert status(session, target) == MatchStatus.APPROVED
    other = desk.ids[(desk.awa, desk.couture)]
    response = auth.post(f"/accompagnement/propositions/{other}/refuser?{keep}",
                         {"reason_code": "busy"}, token_from=DESK)
    assert response.headers["Location"] == f"{DESK}?{keep}"  # type: ignore[attr-defined]
    response = auth.post(f"/accompagnement/propositions/valider-la-selection?{keep}",
                         {"match_ids": [desk.ids[(desk.ben, desk.couture)]]}, token_from=DESK)
    assert response.headers["Location"] == f"{DESK}?{keep}"  # type: ignore[attr-defined]


def test_bulk_approve_one_audit_event_per_proposal(client: FlaskClient, auth: Auth, desk: Desk,
                                                   session: Session) -> None:
    auth.login(desk.world.worker_a.email or "")
    chosen = [desk.ids[(desk.awa, desk.couture)], desk.ids[(desk.ben, desk.velo)]]
    page = auth.post(f"{DESK}/valider-la-selection", {"match_ids": chosen}, token_from=DESK,
                     follow_redirects=True).get_data(as_text=True)  # type: ignore[attr-defined]
    assert "2 proposition(s) validée(s)" in page
    assert {status(session, i) for i in chosen} == {MatchStatus.APPROVED}
    assert status(session, desk.ids[(desk.awa, desk.velo)]) == MatchStatus.PROPOSED
    events = session.exec(select(AuditEvent).where(AuditEvent.action == "match.approve")).all()
    assert sorted(e.object_id or 0 for e in events) == sorted(chosen)
    assert {e.actor_id for e in events} == {desk.world.worker_a.id}


@pytest.mark.parametrize(("intruder", "code"), [("other_centre", 404), ("missing", 404),
                                                ("reviewed", 302), ("not_a_number", 400)])
def test_bulk_approve_is_all_or_nothing(client: FlaskClient, auth: Auth, desk: Desk,
                                        session: Session, intruder: str, code: int) -> None:
    w = desk.world
    mine = [desk.ids[(desk.awa, desk.couture)], desk.ids[(desk.ben, desk.velo)]]
    reviewed = desk.ids[(desk.awa, desk.velo)]
    reject(session, w.worker_a, session.get(Match, reviewed), "busy")  # type: ignore[arg-type]
    extra = {"other_centre": desk.ids[(desk.other, desk.couture)], "missing": 999999,
             "reviewed": reviewed, "not_a_number": "1 OR 1=1"}[intruder]
    auth.login(w.worker_a.email or "")
    before = len(session.exec(select(AuditEvent)).all())
    response = auth.post(f"{DESK}/valider-la-selection", {"match_ids": [mine[0], extra, mine[1]]},
                         token_from=DESK)
    assert response.status_code == code  # type: ignore[attr-defined]
    assert {status(session, i) for i in mine} == {MatchStatus.PROPOSED}
    assert status(session, desk.ids[(desk.other, desk.couture)]) == MatchStatus.PROPOSED
    assert len(session.exec(select(AuditEvent)).all()) == before  # nothing at all
    if intruder == "reviewed":
        assert "rien n&#39;a été validé" in client.get(DESK).get_data(as_text=True)


def test_bulk_approve_needs_a_selection(client: FlaskClient, auth: Auth, desk: Desk) -> None:
    auth.login(desk.world.worker_a.email or "")
    page = auth.post(f"{DESK}/valider-la-selection", {}, token_from=DESK,
                     follow_redirects=True).get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Cochez au moins une proposition." in page


def test_after_a_card_is_done_the_desk_opens_at_the_next_one(client: FlaskClient, auth: Auth,
                                                            desk: Desk, session: Session) -> None:
    """Fifty cards are ~60,000 px on a phone: after every « Valider » or « Écarter » the desk
    opened at the top. Each card's forms name the next card (the previous one after the last);
    after an error the desk opens at the top, where the message is."""
    auth.login(desk.world.worker_a.email or "")
    page = client.get(DESK).get_data(as_text=True)
    order = [int(i) for i in re.findall(r'data-testid="proposal-(\d+)"', page)]
    assert len(order) == 4
    cards = page.split('data-testid="proposal-')[1:]
    for card, following in zip(cards, [*order[1:], order[-2]], strict=True):
        assert card.count(f'<input type="hidden" name="next" value="{following}">') == 2  # both forms
    response = auth.post(f"{DESK}/{order[0]}/valider", {"next": str(order[1])}, token_from=DESK)
    assert response.headers["Location"] == f"{DESK}#proposal-{order[1]}"  # type: ignore[attr-defined]
    response = auth.post(f"{DESK}/{order[1]}/refuser", {"reason_code": "busy", "next": str(order[2])},
                         token_from=DESK)
    assert response.headers["Location"] == f"{DESK}#proposal-{order[2]}"  # type: ignore[attr-defined]
    assert status(session, order[0]) == MatchStatus.APPROVED
    assert status(session, order[1]) == MatchStatus.REJECTED
    response = auth.post(f"{DESK}/{order[2]}/refuser", {"reason_code": "", "next": str(order[3])},
                         token_from=DESK)
    assert response.headers["Location"] == DESK  # type: ignore[attr-defined]
    response = auth.post(f"{DESK}/{order[2]}/valider", {"next": "x"}, token_from=DESK)
    assert response.headers["Location"] == DESK  # type: ignore[attr-defined]
    page = client.get(DESK).get_data(as_text=True)
    assert len(shown(page)) == 1 and not re.search(r'name="next" value="\d', page)  # nowhere else to go


@pytest.mark.parametrize("reason", [r.value for r in RejectionReason if r != RejectionReason.OTHER])
def test_each_rejection_reason(client: FlaskClient, auth: Auth, desk: Desk, session: Session,
                               reason: str) -> None:
    target = desk.ids[(desk.awa, desk.couture)]
    auth.login(desk.world.worker_a.email or "")
    auth.post(f"{DESK}/{target}/refuser", {"reason_code": reason}, token_from=DESK)
    session.expire_all()
    match = session.get(Match, target)
    assert match is not None and match.status == MatchStatus.REJECTED
    assert match.rejection_code == reason and match.rejection_note is None


def test_other_reason_needs_a_text(client: FlaskClient, auth: Auth, desk: Desk,
                                   session: Session) -> None:
    target = desk.ids[(desk.awa, desk.couture)]
    auth.login(desk.world.worker_a.email or "")
    page = auth.post(f"{DESK}/{target}/refuser", {"reason_code": "other", "reason_text": "   "},
                     token_from=DESK, follow_redirects=True).get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Indiquez la raison du refus." in page
    assert status(session, target) == MatchStatus.PROPOSED
    auth.post(f"{DESK}/{target}/refuser", {"reason_code": "nonsense"}, token_from=DESK)
    assert status(session, target) == MatchStatus.PROPOSED
    auth.post(f"{DESK}/{target}/refuser",
              {"reason_code": "other", "reason_text": "Elle déménage en juin."}, token_from=DESK)
    session.expire_all()
    match = session.get(Match, target)
    assert match is not None and match.status == MatchStatus.REJECTED
    assert (match.rejection_code, match.rejection_note) == ("other", "Elle déménage en juin.")
    # Told afterwards, the form's « (précisez) » is no part of the reason.
    for page in (f"/accompagnement/residents/{desk.awa}", f"/accompagnement/residents/{desk.awa}/export"):
        text = html.unescape(client.get(page).get_data(as_text=True))
        assert "Autre raison" in text and "Elle déménage en juin." in text, page
        assert "précisez" not in text, page


def test_a_reason_holding_sensitive_words_is_not_recorded(client: FlaskClient, auth: Auth, desk: Desk,
                                                          session: Session) -> None:
    """The person reads the reason in the copy of their data: « Karim préfère attendre la fin du
    Ramadan » was kept and shown to him, where a profile's text with such words asks first."""
    target = desk.ids[(desk.awa, desk.couture)]
    auth.login(desk.world.worker_a.email or "")
    page = auth.post(f"{DESK}/{target}/refuser",
                     {"reason_code": "other", "reason_text": "Elle préfère attendre la fin du Ramadan."},
                     token_from=DESK, follow_redirects=True).get_data(as_text=True)  # type: ignore[attr-defined]
    said = "Rien n'est écarté : la précision parle de religion ou convictions (« Ramadan »)"
    assert said in html.unescape(page)
    assert status(session, target) == MatchStatus.PROPOSED
    auth.post(f"{DESK}/{target}/refuser",
              {"reason_code": "not_now", "reason_text": "Elle attend la rentrée."}, token_from=DESK)
    session.expire_all()
    match = session.get(Match, target)
    assert match is not None and (match.status, match.rejection_note) == (MatchStatus.REJECTED,
                                                                         "Elle attend la rentrée.")


def test_the_desk_is_usable_with_a_keyboard(client: FlaskClient, auth: Auth, desk: Desk) -> None:
    auth.login(desk.world.worker_a.email or "")
    page = client.get(DESK).get_data(as_text=True)
    assert '<script src="/static/review.js" defer></script>' in page
    assert "Raccourcis clavier" in page and "<kbd>j</kbd>" in page and "<kbd>a</kbd>" in page
    # Every control of the page has a label: selects and text fields by id, boxes by wrapping.
    ids = re.findall(r'<(?:select|input|textarea)[^>]*\bid="([^"]+)"', page)
    assert ids and all(f'for="{i}"' in page for i in ids)
    boxes = re.findall(r'<label class="check"><input type="checkbox" name="match_ids"', page)
    assert len(boxes) == len(shown(page))
    assert "tabindex=\"-1\"" in page  # cards take focus from the j/k shortcuts, not from Tab
    script = client.get("/static/review.js")
    assert script.status_code == 200 and b"keydown" in script.get_data()
    script.close()


def test_review_filters_parse_and_round_trip() -> None:
    filters = ReviewFilters.parse({"quartier": "3", "besoin": "", "structure": "x", "other": "1"})
    assert filters == ReviewFilters(territory_id=3)
    assert filters.query_args() == {"quartier": 3}
    assert not ReviewFilters.parse({})


def test_timeline_of_proposals(client: FlaskClient, auth: Auth, desk: Desk, session: Session) -> None:
    w = desk.world
    accepted = session.get(Match, desk.ids[(desk.awa, desk.couture)])
    rejected = session.get(Match, desk.ids[(desk.awa, desk.velo)])
    assert accepted is not None and rejected is not None
    approve(session, w.worker_a, accepted)
    awa_login = session.exec(select(User).where(User.resident_id == desk.awa)).one()
    answer(session, awa_login, accepted, True, "Le mercredi, oui.")
    reject(session, w.worker_a, rejected, "distance", "")
    with pytest.raises(ServiceError):
        approve(session, w.worker_a, rejected)

    awa = session.get(Resident, desk.awa)
    assert awa is not None
    timeline = proposal_timeline(session, awa)
    by_need = {e.need.title: [s.kind for s in e.steps] for e in timeline}
    assert by_need == {"Atelier couture": ["proposed", "approved", "accepted"],
                       "Atelier vélo": ["proposed", "rejected"]}
    for entry in timeline:
        assert [s.at for s in entry.steps] == sorted(s.at for s in entry.steps)
    assert [e.last_at for e in timeline] == sorted((e.last_at for e in timeline), reverse=True)

    auth.login(w.worker_a.email or "")
    page = client.get(f"/accompagnement/residents/{desk.awa}").get_data(as_text=True)
    section = page[page.index('data-testid="timeline"'):]
    section = section[:section.index("</section>")]
    day = datetime.now(ZoneInfo("Europe/Paris")).strftime("%d/%m/%Y")  # the site's clock
    assert section.count(day) == 5  # 3 steps for the couture workshop, 2 for the bike one
    for words in ("proposée par Relais", "validée par un·e travailleur·se social·e",
                  "la personne a dit oui", "« Le mercredi, oui. »", "écartée : Trop loin"):
        assert words in section.replace("&#39;", "'"), words
    # In English, English punctuation: « turned down : » and French guillemets were left.
    client.post("/langue", data={"lang": "en",
                                 "csrf_token": auth.token(f"/accompagnement/residents/{desk.awa}")})
    page = html.unescape(client.get(f"/accompagnement/residents/{desk.awa}").get_data(as_text=True))
    section = page[page.index('data-testid="timeline"'):]
    assert "“Le mercredi, oui.”" in section and "turned down: Too far" in section
    assert "«" not in section and " : " not in section


def consenting_people(session: Session, world: World, n: int) -> list[Resident]:
    """`n` residents of Le Bourg followed by worker A, each with a valid consent (the desk shows
    only the proposals of people whose consent covers matching)."""
    people = [Resident(first_name=f"P{i:02d}", territory_id=world.bourg.id or 0,
                       organisation_id=world.centre_a.id or 0, created_by_id=world.worker_a.id or 0)
              for i in range(n)]
    session.add_all(people)
    session.flush()
    session.add_all(Consent(resident_id=p.id or 0, given_on=date.today(), scope=ConsentScope.MATCHING,
                            method="paper_signed", recorded_by_id=world.worker_a.id or 0) for p in people)
    session.commit()
    return people


def test_a_long_queue_comes_a_page_at_a_time(client: FlaskClient, auth: Auth, session: Session,
                                             desk: Desk) -> None:
    """Best first, 50 a page; the filters and their options come from the whole queue, and the
    page links keep the filters."""
    people = consenting_people(session, desk.world, 60)
    store_proposals(session, [Proposal(desk.couture, p.id or 0, 0.9 - i / 1000, {})
                              for i, p in enumerate(people)], Direction.NEED_TO_RESIDENT)
    score = {m.id: m.score for m in session.exec(select(Match)).all()}
    auth.login(desk.world.worker_a.email or "")

    first = client.get(DESK).get_data(as_text=True)
    order = [int(i) for i in re.findall(r'data-testid="proposal-(\d+)"', first)]
    assert len(order) == 50 and [score[i] for i in order] == sorted((score[i] for i in order), reverse=True)
    assert "50 proposition(s) affichée(s) sur 64 en attente." in first and "Page 1 sur 2" in first
    assert "Atelier vélo</option>" in first and "Le Bourg</option>" in first  # options: whole queue
    second = client.get(f"{DESK}?page=2").get_data(as_text=True)
    assert len(shown(second)) == 14 and not shown(second) & set(order)
    assert min(score[i] for i in order) >= max(score[i] for i in shown(second))

    bourg = client.get(f"{DESK}?quartier={desk.world.bourg.id}").get_data(as_text=True)
    assert "50 proposition(s) affichée(s) sur 64 en attente. 62 avec ces filtres." in bourg
    assert f'href="/accompagnement/propositions?page=2&amp;quartier={desk.world.bourg.id}"' in bourg
    velo = client.get(f"{DESK}?besoin={desk.velo}&page=2").get_data(as_text=True)  # one page only
    assert shown(velo) == {desk.ids[(desk.awa, desk.velo)], desk.ids[(desk.ben, desk.velo)]}
    assert "Page 1 sur" not in velo


def test_the_need_filter_names_each_needs_structure(client: FlaskClient, auth: Auth, session: Session,
                                                  desk: Desk) -> None:
    """Two structures may post needs of the same title: the filter lists the needs under their
    structure's name, structures and titles in alphabetical order."""
    twin, _ = create_need(session, matching, desk.world.member, NeedInput(
        title="Atelier vélo", description="Apprendre à réparer son vélo."), date.today())
    store_proposals(session, [Proposal(twin.id or 0, desk.awa, 0.5, {})], Direction.NEED_TO_RESIDENT)
    auth.login(desk.world.worker_a.email or "")
    page = client.get(DESK).get_data(as_text=True)
    options = page.split('id="filter-need"', 1)[1].split("</select>", 1)[0]
    groups = re.findall(r'<optgroup label="([^"]+)">(.*?)</optgroup>', options, re.S)
    listed = [(label, re.findall(r'<option value="(\d+)">([^<]+)</option>', body)) for label, body in groups]
    expected = sorted([(desk.world.association.name, [(str(desk.couture), "Atelier couture"),
                                                      (str(twin.id), "Atelier vélo")]),
                       (desk.world.centre_a.name, [(str(desk.velo), "Atelier vélo")])],
                      key=lambda group: group[0].casefold())
    assert listed == expected


def test_an_action_on_a_later_page_comes_back_to_that_page(client: FlaskClient, auth: Auth, session: Session,
                                                          desk: Desk) -> None:
    people = consenting_people(session, desk.world, 60)
    store_proposals(session, [Proposal(desk.couture, p.id or 0, 0.9, {}) for p in people],
                    Direction.NEED_TO_RESIDENT)
    auth.login(desk.world.worker_a.email or "")
    where = f"quartier={desk.world.bourg.id}&page=2"
    page = client.get(f"{DESK}?{where}").get_data(as_text=True)
    target = sorted(shown(page))[0]
    assert f'/propositions/{target}/valider?quartier={desk.world.bourg.id}&amp;page=2"' in page
    done = auth.post(f"{DESK}/{target}/valider?{where}", {}, token_from=f"{DESK}?{where}")
    assert done.status_code == 302  # type: ignore[attr-defined]
    back = done.headers["Location"]  # type: ignore[attr-defined]
    assert "page=2" in back and f"quartier={desk.world.bourg.id}" in back
    assert status(session, target) == MatchStatus.APPROVED


def test_a_stale_valider_never_approves_another_proposal(client: FlaskClient, auth: Auth,
                                                         session: Session, world: World) -> None:
    """The desk showed a proposal; a colleague changed the person's text (the proposal is
    withdrawn) and a new need got a new proposal. SQLite gave the newest deleted id to the next
    row: the « Valider » still on screen approved that other pair. Ids are never given again now,
    and the click says the proposal was withdrawn."""
    add_resident(session, world, "Awa", "Je fais de la couture et des retouches.")
    add_resident(session, world, "Ben", "Je répare les vélos et les mobylettes.")
    create_need(session, matching, world.member, NeedInput(
        title="Atelier couture", description="Animer un atelier de couture et de retouches."),
        date.today())
    shown = session.exec(select(Match).order_by(col(Match.id).desc())).first()  # the newest
    assert shown is not None
    shown_id, who = shown.id, shown.resident_id
    auth.login(world.worker_a.email or "")
    token = auth.token(DESK)
    assert f'data-testid="proposal-{shown_id}"' in client.get(DESK).get_data(as_text=True)
    page = f"/accompagnement/residents/{who}"
    auth.post(f"{page}/declaration", {"declaration": "Je garde des enfants le mercredi."}, token_from=page)
    create_need(session, matching, world.member, NeedInput(
        title="Atelier vélo", description="Réparer les vélos des enfants du quartier."), date.today())
    session.expire_all()
    assert session.get(Match, shown_id) is None  # withdrawn, its id not given again
    response = client.post(f"{DESK}/{shown_id}/valider", data={"csrf_token": token})
    assert "retirée entre-temps" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert session.exec(select(Match).where(Match.status == MatchStatus.APPROVED)).all() == []


def test_a_proposal_a_closer_one_replaced_says_so_at_the_desk(client: FlaskClient, auth: Auth,
                                                              session: Session, world: World) -> None:
    """At the monthly cap, a closer need takes the place of the person's weakest unreviewed
    proposal while the desk still shows it: « Valider » says why it went, and approves nothing."""
    awa = add_resident(session, world, "Awa", "Je fais de la couture et des retouches.").resident
    gardens = [create_need(session, matching, world.member, NeedInput(
        title=f"Jardin {i}", description="Désherber le potager partagé."), date.today())[0].id or 0
        for i in range(2)]
    weakest, _other = hand_proposals(session, [(garden, awa.id or 0, score)
                                               for garden, score in zip(gardens, (0.10, 0.20), strict=True)])
    auth.login(world.worker_a.email or "")
    token = auth.token(DESK)
    assert f'data-testid="proposal-{weakest.id}"' in client.get(DESK).get_data(as_text=True)
    create_need(session, matching, world.member, NeedInput(
        title="Atelier couture", description="Animer un atelier de couture et de retouches."), date.today())
    response = client.post(f"{DESK}/{weakest.id}/valider", data={"csrf_token": token})
    assert "une proposition plus proche pour cette personne l&#39;a remplacée" in client.get(
        response.headers["Location"]).get_data(as_text=True)
    assert session.exec(select(Match).where(Match.status == MatchStatus.APPROVED)).all() == []


def test_an_erased_persons_proposal_says_so_at_the_desk(client: FlaskClient, auth: Auth,
                                                        session: Session, world: World) -> None:
    """A colleague erased the person while the desk still showed their proposal: « Valider »
    answered 404, no withdrawal being kept for an erasure."""
    awa = add_resident(session, world, "Awa", "Je fais de la couture et des retouches.").resident
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Atelier couture", description="Animer un atelier de couture."), date.today())
    shown, = hand_proposals(session, [(need.id or 0, awa.id or 0, 0.6)])
    auth.login(world.worker_a.email or "")
    token = auth.token(DESK)
    erase_and_forget(session, matching, world.worker_a, awa, "worker")
    response = client.post(f"{DESK}/{shown.id}/valider", data={"csrf_token": token})
    assert response.status_code == 302
    assert "sa fiche a été effacée" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_a_second_tap_on_approve_says_it_is_done(client: FlaskClient, auth: Auth, desk: Desk,
                                                 session: Session) -> None:
    """A double tap on « Valider » (or a reload): the first request approved; the second said
    « rien n'a été validé », which was false. A proposal another worker reviewed is still said."""
    auth.login(desk.world.worker_a.email or "")
    token = auth.token(DESK)
    chosen = [desk.ids[(desk.awa, desk.couture)], desk.ids[(desk.ben, desk.velo)]]
    for _ in range(2):
        page = client.post(f"{DESK}/valider-la-selection", data={"match_ids": chosen, "csrf_token": token},
                           follow_redirects=True).get_data(as_text=True)
        assert "2 proposition(s) validée(s)" in page and "rien n&#39;a été validé" not in page
    single = desk.ids[(desk.awa, desk.velo)]
    for _ in range(2):
        page = client.post(f"{DESK}/{single}/valider", data={"csrf_token": token},
                           follow_redirects=True).get_data(as_text=True)
        assert "Proposition validée" in page and "déjà été examinée" not in page
    assert len(session.exec(select(AuditEvent).where(AuditEvent.action == "match.approve")).all()) == 3
    theirs = session.get(Match, desk.ids[(desk.ben, desk.couture)])
    assert theirs is not None
    approve(session, desk.world.admin, theirs)
    for path, data in ((f"{DESK}/{theirs.id}/valider", {}), (f"{DESK}/valider-la-selection",
                                                             {"match_ids": [theirs.id]})):
        page = client.post(path, data={**data, "csrf_token": token},
                           follow_redirects=True).get_data(as_text=True)
        assert "déjà été examinée" in page
        assert "Proposition validée" not in page and "proposition(s) validée(s)" not in page


def test_an_admin_reading_the_desk_or_exporting_is_journaled_in_each_persons_history(
        client: FlaskClient, auth: Auth, desk: Desk, session: Session) -> None:
    """The admin's desk and residents' export show every centre's people (names, their words):
    neither wrote a profile.view, though the need page and the API search did. Worker A reading
    their own people is not journaled."""
    def views() -> list[tuple[int | None, str]]:
        return [(e.object_id, e.details.get("via", "")) for e in session.exec(
            select(AuditEvent).where(AuditEvent.action == "profile.view").order_by(col(AuditEvent.id))).all()]

    auth.login(desk.world.worker_a.email or "")
    client.get(DESK)
    client.get("/accompagnement/export/residents.csv")
    assert views() == []
    auth.logout()
    auth.login(desk.world.admin.email or "")
    assert "Chloé" in client.get(DESK).get_data(as_text=True)  # centre B's, and the admin is centre A's
    assert (desk.other, "review") in views()
    client.get("/accompagnement/export/residents.csv")
    assert (desk.other, "export") in views()
    assert (desk.awa, "export") not in views()  # the admin's own centre


def test_no_rejection_reason_is_chosen_for_the_worker(client: FlaskClient, auth: Auth, desk: Desk,
                                                      session: Session) -> None:
    """The reason list opened on « déjà occupée »: one tap on « Écarter » recorded a reason the
    worker never chose, which the resident may read in their data. It opens empty and required;
    sent empty (a page without the browser's check), nothing is recorded."""
    auth.login(desk.world.worker_a.email or "")
    page = client.get(DESK).get_data(as_text=True)
    target = desk.ids[(desk.awa, desk.couture)]
    select = re.search(rf'<select id="reason-{target}"[^>]*>\s*<option value="">', page)
    assert select is not None and "required" in select.group(0)
    answer_page = auth.post(f"{DESK}/{target}/refuser", {"reason_code": ""}, token_from=DESK,
                            follow_redirects=True).get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Indiquez la raison du refus." in answer_page
    assert status(session, target) == MatchStatus.PROPOSED
