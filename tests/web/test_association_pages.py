"""What an association reads of its needs: their state and the answers on its list, the person's
answer beside each candidate, a warning before an edit takes approved candidates back, and no
notice naming a person who withdrew consent."""

from __future__ import annotations

import html
from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session, select

from matcher.analysis import get_analyzer
from models import Consent, Direction, Match, MatchStatus, Need, Notification, WithdrawnProposal
from tests.conftest import Auth, World, add_resident, approved_opportunity, need_form
from web.extensions import matching
from web.forms import LANGUAGE_LABELS
from web.services.needs import NeedInput, create_need, languages_not_asked
from web.services.privacy import run_retention
from web.services.profiles import withdraw_consent
from web.services.proposals import Proposal, store_proposals
from web.services.review import answer, approve


@pytest.fixture(autouse=True)
def _use_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The proposals are written by hand: the ranker's e5 is not needed."""
    monkeypatch.setenv("RELAIS_ENCODERS", "use")


def page(client: FlaskClient, path: str) -> str:
    return html.unescape(client.get(path).get_data(as_text=True))


def the_match(session: Session) -> Match:
    return session.exec(select(Match)).one()


def test_the_list_of_needs_says_each_ones_state_and_who_answered(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    awa = approved_opportunity(session, world, "Animer un atelier de couture.")
    create_need(session, matching, world.member, NeedInput(title="Chaises pliantes", description="Prêter des "
                "chaises pour la fête.", kind="resource"), date.today())
    auth.login(world.member.email or "")
    home = page(client, "/structure/")
    assert "0 oui · 1 en attente de réponse" in home and home.count("ouvert") == 2
    need = page(client, f"/structure/besoins/{the_match(session).need_id}")
    assert "Awa K." in need and "n'a pas encore répondu" in need and "validée" not in need

    answer(session, awa.resident, the_match(session), True)
    assert "1 oui · 0 en attente de réponse" in page(client, "/structure/")
    assert "a dit oui" in page(client, f"/structure/besoins/{the_match(session).need_id}")

    auth.post(f"/structure/besoins/{the_match(session).need_id}/statut", {"status": "closed"},
              token_from="/structure/")
    home = page(client, "/structure/")
    assert home.count("ouvert") == 1 and "clôturé" in home
    assert home.index("Chaises pliantes") < home.index("Atelier couture")  # open needs first


def test_a_no_is_no_candidate_on_the_list(client: FlaskClient, auth: Auth, session: Session,
                                          world: World) -> None:
    awa = approved_opportunity(session, world, "Animer un atelier de couture.")
    answer(session, awa.resident, the_match(session), False)
    auth.login(world.member.email or "")
    assert "0 oui · 0 en attente de réponse" in page(client, "/structure/")
    assert "a dit non" in page(client, f"/structure/besoins/{the_match(session).need_id}")


def test_the_edit_form_warns_before_the_text_takes_approved_candidates_back(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    approved_opportunity(session, world, "Animer un atelier de couture.")
    need_id = the_match(session).need_id
    auth.login(world.member.email or "")
    form = page(client, f"/structure/besoins/{need_id}/modifier")
    assert "Personnes proposées qui n'ont pas encore répondu : 1." in form

    # The time changes, not the text: the approval stays, and nothing is said about it.
    edited = need_form("Atelier couture", "Animer un atelier de couture.", when_text="le jeudi")
    done = html.unescape(auth.post(f"/structure/besoins/{need_id}/modifier", edited,
                                   token_from="/structure/",
                                   follow_redirects=True).get_data(as_text=True))
    assert "Besoin modifié." in done and "ne voient plus ce besoin" not in done
    assert session.exec(select(Match)).all()

    # A corrected letter is a new text: the approval goes, and the flash says so.
    edited["title"] = "Atelier de couture"
    done = html.unescape(auth.post(f"/structure/besoins/{need_id}/modifier", edited,
                                   token_from="/structure/",
                                   follow_redirects=True).get_data(as_text=True))
    assert "ne voient plus ce besoin" in done
    session.expire_all()
    assert [m.status for m in session.exec(select(Match).where(Match.need_id == need_id))] in (
        [], [MatchStatus.PROPOSED])  # proposed again, for a worker to review
    assert "pas encore répondu" not in page(client, f"/structure/besoins/{need_id}/modifier")


def test_the_head_count_says_nobody_yet_in_words(client: FlaskClient, auth: Auth, session: Session,
                                                 world: World) -> None:
    approved_opportunity(session, world, "Animer un atelier de couture.")
    need = session.get(Need, the_match(session).need_id)
    assert need is not None
    need.people_wanted = 3
    session.add(need)
    session.commit()
    auth.login(world.member.email or "")
    shown = page(client, f"/structure/besoins/{need.id}")
    assert "personne n'a encore dit oui" in shown and "0 personnes" not in shown
    assert "comptez les personnes qui prêtent ou donnent" in page(client, "/structure/besoins/nouveau")


def test_a_withdrawal_takes_back_the_associations_notices_naming_the_person(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    awa = approved_opportunity(session, world, "Animer un atelier de couture.")
    answer(session, awa.resident, the_match(session), False)

    def notices(user_id: int | None) -> list[str]:
        return [n.text for n in session.exec(select(Notification).where(Notification.user_id == user_id))]

    assert any("Awa K. a dit non" in t for t in notices(world.member.id))
    assert any("Awa K. a dit non" in t for t in notices(world.worker_a.id))
    withdraw_consent(session, world.worker_a, awa.resident)
    assert not any("Awa K." in t for t in notices(world.member.id))
    assert any("Awa K. a dit non" in t for t in notices(world.worker_a.id))  # her centre still follows her
    auth.login(world.member.email or "")
    assert "Awa K." not in page(client, "/notifications/")


def test_a_yes_stays_announced_after_a_withdrawal(session: Session, world: World) -> None:
    awa = approved_opportunity(session, world, "Animer un atelier de couture.")
    answer(session, awa.resident, the_match(session), True)
    withdraw_consent(session, world.worker_a, awa.resident)
    said = [n.text for n in session.exec(select(Notification).where(Notification.user_id == world.member.id))]
    assert any("Awa K. a dit oui" in t for t in said)  # the association still works with her


def test_an_expired_consent_takes_back_the_notices_at_the_nightly_run(session: Session, world: World) -> None:
    """An expiry is no event: the retention run deletes what a withdrawal would have."""
    awa = approved_opportunity(session, world, "Animer un atelier de couture.")
    no = the_match(session)
    answer(session, awa.resident, no, False)
    binta = add_resident(session, world, "Binta", "Je fais de la couture.", initial="K")
    store_proposals(session, [Proposal(no.need_id, binta.resident.id or 0, 0.5, {})],
                    Direction.NEED_TO_RESIDENT)
    yes = session.exec(select(Match).where(Match.resident_id == binta.resident.id)).one()
    approve(session, world.worker_a, yes)
    answer(session, binta.resident, yes, True)
    consents = session.exec(select(Consent)).all()
    for consent in consents:
        consent.expires_on = date.today() - timedelta(days=1)
        session.add(consent)
    session.commit()

    def notices(user_id: int | None) -> list[str]:
        return [n.text for n in session.exec(select(Notification).where(Notification.user_id == user_id))]

    assert any("Awa K. a dit non" in t for t in notices(world.member.id))
    report = run_retention(session, matching, date.today(), 24, 30)
    assert report.notices >= 1
    assert not any("Awa K." in t for t in notices(world.member.id))
    assert any("Binta K. a dit oui" in t for t in notices(world.member.id))  # a yes stays
    assert any("Awa K. a dit non" in t for t in notices(world.worker_a.id))  # her centre still follows her
    assert run_retention(session, matching, date.today(), 24, 30).notices == 0


def test_new_languages_say_who_went_without_blaming_the_text(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    approved_opportunity(session, world, "Animer un atelier de couture.")
    need_id = the_match(session).need_id
    auth.login(world.member.email or "")
    edited = need_form("Atelier couture", "Animer un atelier de couture.", languages=["tr"])
    done = html.unescape(auth.post(f"/structure/besoins/{need_id}/modifier", edited, token_from="/structure/",
                                   follow_redirects=True).get_data(as_text=True))
    assert "ne parlent pas les langues demandées" in done and "Le texte a changé" not in done
    assert session.exec(select(Match)).all() == []
    assert len(session.exec(select(WithdrawnProposal)).all()) == 1  # listed for the API's tools


def test_the_edit_form_counts_only_the_candidates_the_association_sees(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    awa = approved_opportunity(session, world, "Animer un atelier de couture.")
    need_id = the_match(session).need_id
    withdraw_consent(session, world.worker_a, awa.resident)  # she leaves the need's page
    auth.login(world.member.email or "")
    assert "pas encore répondu" not in page(client, f"/structure/besoins/{need_id}/modifier")


@pytest.mark.parametrize(("text", "codes"), [
    ("Nous cherchons quelqu'un qui parle l'arabe, le turc ou un peu le kurde.", ["ar", "ku", "tr"]),
    ("Une personne pouvant lire le turc.", ["tr"]),
    ("Un bénévole arabophone pour l'accueil.", ["ar"]),
    # What the person sought speaks ends at the first other word: the rest is the public's.
    ("Un bénévole qui parle français pour accompagner des familles qui parlent dari.", []),
    ("Un animateur qui parle anglais, avec des enfants qui parlent arabe ou turc.", ["en"]),
    ("Un bénévole téléphone aux familles qui parlent arabe.", []),  # « -phone », no language
    # Not needed: a language named so is not asked; a « not needed » naming none takes back
    # what its sentence asked before it, and only that.
    ("Un bénévole qui parle arabe, l'anglais n'est pas nécessaire.", ["ar"]),
    ("Parler arabe serait un plus, mais ce n'est pas obligatoire.", []),
    ("Inutile d'avoir le permis, mais il faut parler anglais.", ["en"]),
    # A « not needed » about something else takes nothing back.
    ("Quelqu'un qui parle arabe et français, le permis n'est pas nécessaire.", ["ar"]),
    ("Il faut parler anglais, pas besoin d'avoir le permis.", ["en"]),
    ("Interprète arabe, pas indispensable.", []),
    ("Une personne pouvant lire et écrire l'arabe.", ["ar"]),
    # The person sought's second relative clause, cut off by the analysis or not.
    ("On cherche quelqu'un qui peut prêter une camionnette pour un déménagement, et qui parle arabe "
     "pour aider une famille.", ["ar"]),
    ("On cherche une personne qui a le permis et qui parle turc.", ["tr"]),
    ("On cherche des bénévoles pour aider une famille qui a déménagé et qui parle arabe.", []),
    ("On cherche des bénévoles qui conduisent pour aider une famille qui a déménagé et qui parle arabe.", []),
])
def test_the_languages_a_need_asks_of_the_person_it_seeks(text: str, codes: list[str]) -> None:
    need = SimpleNamespace(title="Accompagnement", description=text, languages=[])
    assert languages_not_asked(SimpleNamespace(analyzer=get_analyzer()), need, LANGUAGE_LABELS) == codes


def test_a_language_the_text_asks_but_no_box_says_is_pointed_out(auth: Auth, session: Session,
                                                                  world: World) -> None:
    """« Interprète arabe-français » with no language ticked was proposed to people close in
    words who may not speak Arabic: only the ticked languages filter. Saying it is enough; a
    box ticked, French, or a variety with its macrolanguage ticked says nothing."""
    auth.login(world.member.email or "")
    interpreters = "Nous cherchons des interprètes arabe-français et kabyle pour accompagner les familles."

    def said(title: str, text: str = interpreters, **overrides: object) -> str:
        done = auth.post("/structure/besoins/nouveau", need_form(title, text, **overrides),
                         token_from="/structure/", follow_redirects=True)
        return html.unescape(done.get_data(as_text=True))

    assert "Votre texte demande : arabe, kabyle." in said("Interprètes")
    assert "Votre texte demande : kabyle." in said("Interprètes bis", languages=["ar"])
    assert "Votre texte demande" not in said("Interprètes ter", languages=["ar", "ber"])
    # The public's languages, the team's, or one said not needed ask nothing of the person.
    for text in ("Notre public est arabophone : les familles parlent turc et kurde.",
                 "L'équipe parle anglais. Les bénéficiaires parlent arabe, pas besoin de le parler."):
        assert "Votre texte demande" not in said(f"Accueil {len(text)}", text)
    assert "Votre texte demande : turc." in said("Accompagnement", "Bénévole maîtrisant le turc.")
    # The person sought, said in a relative clause or an adjective, and what is only a plus.
    assert "Votre texte demande : arabe." in said(
        "Rendez-vous", "Nous cherchons quelqu'un qui parle arabe pour accompagner les familles.")
    assert "Votre texte demande : tamoul." in said("Accueil", "Un bénévole qui lit le tamoul.")
    assert "Votre texte demande : turc." in said("Accueil bis", "Un bénévole turcophone pour l'accueil.")
    for text in ("Nous accueillons des personnes qui parlent tamoul, il nous faut des bras pour l'accueil.",
                 "Accueil du public. Parler arabe serait un plus, mais ce n'est pas obligatoire."):
        assert "Votre texte demande" not in said(f"Accueil {len(text)}", text)
    text = "Interprétariat en dari pour les rendez-vous à la préfecture."
    assert "Votre texte demande : persan / dari." in said("Préfecture", text)
    need_id = max(n.id or 0 for n in session.exec(select(Need)))
    again = auth.post(f"/structure/besoins/{need_id}/modifier", need_form("Préfecture", text),
                      token_from="/structure/", follow_redirects=True).get_data(as_text=True)
    assert "Rien n&#39;a changé." in again and "Votre texte demande" not in again  # said once


def test_a_long_list_of_needs_comes_a_page_at_a_time_open_ones_first(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    """Open needs first, newest first within each state, NEEDS_PAGE_SIZE per page; another
    organisation's needs are not listed."""
    from datetime import UTC, datetime

    from models import NeedStatus
    from web.views.association import NEEDS_PAGE_SIZE

    start = datetime(2026, 1, 1, tzinfo=UTC)
    opened = NEEDS_PAGE_SIZE + 1
    for i in range(opened + 2):  # the two closed ones are the newest
        session.add(Need(organisation_id=world.association.id or 0, title=f"Besoin n°{i:02d}",
                         description="…", status=NeedStatus.OPEN if i < opened else NeedStatus.CLOSED,
                         created_by_id=world.member.id or 0, created_at=start + timedelta(days=i)))
    session.add(Need(organisation_id=world.centre_a.id or 0, title="Besoin du centre", description="…",
                     created_by_id=world.worker_a.id or 0))
    session.commit()
    auth.login(world.member.email or "")
    first, second = page(client, "/structure/"), page(client, "/structure/?page=2")
    assert first.count("Besoin n°") == NEEDS_PAGE_SIZE and "Page 1 sur 2" in first and 'rel="next"' in first
    shown = [f"Besoin n°{i:02d}" for i in reversed(range(1, opened))]  # open, newest first
    assert [first.index(title) for title in shown] == sorted(first.index(title) for title in shown)
    assert "Besoin n°00" not in first and "Besoin n°32" not in first
    assert second.count("Besoin n°") == 3 and "Page 2 sur 2" in second and 'rel="prev"' in second
    assert second.index("Besoin n°00") < second.index("Besoin n°32") < second.index("Besoin n°31")
    assert "Besoin du centre" not in first + second
    assert page(client, "/structure/?page=99").count("Besoin n°") == 3  # past the end: the last page
