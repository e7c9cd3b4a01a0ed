"""Proposals end to end in the service: explanation content, fairness cap, languages, feedback."""

from __future__ import annotations

import random
import re
from dataclasses import replace
from datetime import date

import numpy as np
import pytest
from sqlalchemy import Engine, event
from sqlmodel import Session, delete, select

from matcher.embeddings import RecentVectors
from matcher.normalise import normalise
from matcher.policy import CALIBRATION_MINIMUM_REVIEWS, calibrate
from models import (
    Direction,
    Match,
    MatchStatus,
    Need,
    NeedKind,
    NeedStatus,
    Notification,
    Resident,
    WithdrawnProposal,
)
from tests.conftest import World, add_resident, hand_proposals
from web.extensions import matching
from web.services import proposals
from web.services.matching import RESIDENTS, need_query
from web.services.needs import NeedInput, create_need, update_need
from web.services.proposals import (
    FLOOR_SECONDS,
    REVIEWED,
    Proposal,
    Quoted,
    _mean_vectors,
    best_pairs_of,
    calibrated_min_score,
    review_floor,
    store_proposals,
)
from web.services.review import approve, reject


def person(session: Session, world: World, name: str, text: str, **extra: object) -> Resident:
    return add_resident(session, world, name, text, **extra).resident


def need(session: Session, world: World, title: str, text: str, **extra: object) -> int:
    data = NeedInput(title=title, description=text, territory_id=world.tilleuls.id)
    for key, value in extra.items():
        setattr(data, key, value)
    created, _ = create_need(session, matching, world.member, data, date.today())
    return created.id or 0


def proposed(session: Session, need_id: int) -> dict[int, Match]:
    return {m.resident_id: m for m in session.exec(select(Match).where(Match.need_id == need_id))}


def test_explanation_names_statements_shared_terms_and_reasons(session: Session,
                                                               world: World) -> None:
    awa = person(session, world, "Awa", "Je fais de la couture. Je retouche les robes.",
                 availability=["weekend"])
    need_id = need(session, world, "Atelier couture", "Animer un atelier de couture le samedi.",
                   availability=["weekend"])
    why = proposed(session, need_id)[awa.id or 0].explanation
    assert why["pairs"][0]["resident_text"] == "Je fais de la couture"
    assert "couture" in why["shared_terms"]
    assert {"territory", "availability", "dormant"} <= set(why["reasons"])
    # The score a person reads is the best pair's cosine; the boosts move the rank, not it.
    stored = proposed(session, need_id)[awa.id or 0].score
    assert why["score"] == why["pairs"][0]["similarity"] == round(stored, 3)
    assert isinstance(why["rank"], float)


def test_shared_words_ignore_accents_and_say_something_of_the_skill() -> None:
    """« savoir » and « an » (« je sais coudre depuis 10 ans » / « enfants de 10 ans ») were shown
    as shared words, and « velo » typed without its accent shared nothing with « vélo »."""
    def quote(*lemmas: str) -> Quoted:
        return Quoted(" ".join(lemmas), lemmas, b"")

    pairs = [(quote("savoir", "coudre", "an"), quote("savoir", "coudre", "enfant", "an"), 0.5),
             (quote("réparer", "vélo"), quote("repare", "velo"), 0.4)]
    assert proposals.shared_terms(pairs) == ["coudre", "réparer", "vélo"]


@pytest.mark.parametrize(("first", "second", "shared"), [
    # « permis » is lemmatised « permettre » on both sides: a word neither wrote was shown.
    (("Elle a le permis", "permettre"), ("Permis B nécessaire", "permettre", "b", "nécessaire"),
     ["permis"]),
    # Forms of one verb that share no stem still meet through their lemma, written on one side.
    (("Je couds les boubous", "coudre", "boubou"),
     ("On cherche des personnes qui savent coudre", "chercher", "personne", "savoir", "coudre"), ["coudre"]),
    # As the first side writes them; the words of every neighbourhood's text are not shown.
    (("une personne du quartier pour aider aux devoirs", "personne", "quartier", "aider", "devoir"),
     ("Je suis une personne du quartier, j'aide aux devoirs", "personne", "quartier", "aider", "devoir"),
     ["aider", "devoirs"]),
    # Light verbs as written (« sait », « fais », « doit ») and « petits » tell nothing either.
    (("Quelqu'un qui sait coudre", "savoir", "coudre"), ("Elle sait coudre des robes", "savoir", "coudre"),
     ["coudre"]),
    (("Je fais du jardinage", "faire", "jardinage"), ("On fait du jardinage", "faire", "jardinage"),
     ["jardinage"]),
    (("Il doit avoir le permis", "devoir", "permis"), ("Il doit conduire", "devoir", "conduire"), []),
    (("petits travaux", "petit", "travail"), ("je fais des petits travaux", "faire", "petit", "travail"),
     ["travaux"]),
])
def test_shared_words_are_words_the_texts_hold(first: tuple[str, ...], second: tuple[str, ...],
                                               shared: list[str]) -> None:
    def quote(text: str, *lemmas: str) -> Quoted:
        return Quoted(text, lemmas, b"")

    assert proposals.shared_terms([(quote(*first), quote(*second), 0.6)]) == shared


def test_a_weak_second_pair_is_not_quoted() -> None:
    """« Je couds les boubous » beside « pour tenir la buvette » (0.35) read as a reason."""
    def quote(text: str) -> Quoted:
        return Quoted(text, tuple(text.lower().split()), b"")

    best = (quote("Atelier couture"), quote("Je couds les boubous"), 0.62)
    weak = (quote("pour tenir la buvette"), quote("je fais les retouches"), 0.35)
    fair = (quote("retouches de vêtements"), quote("je fais les retouches"), 0.55)
    def quoted(*pairs: tuple[Quoted, Quoted, float]) -> list[str]:
        return [p["need_text"] for p in proposals._explanation(list(pairs), True)["pairs"]]

    assert quoted(best, weak) == ["Atelier couture"]
    assert quoted(best, fair) == ["Atelier couture", "retouches de vêtements"]
    alone = proposals._explanation([weak], True)
    assert [p["need_text"] for p in alone["pairs"]] == ["pour tenir la buvette"] and alone["score"] == 0.35


def test_a_resident_with_two_pending_proposals_this_month_gets_no_third(session: Session,
                                                                         world: World) -> None:
    awa = person(session, world, "Awa", "Je fais de la couture et je retouche les vêtements.")
    first = need(session, world, "Atelier couture", "Animer un atelier de couture.")
    second = need(session, world, "Retouches", "Faire des retouches de vêtements à la friperie.")
    assert awa.id in proposed(session, first) and awa.id in proposed(session, second)
    third = need(session, world, "Couturière", "Coudre des rideaux pour la salle des fêtes.")
    assert awa.id not in proposed(session, third)
    # Once a worker rejects one, she is free again for the next need.
    match = proposed(session, first)[awa.id or 0]
    match.status = MatchStatus.REJECTED
    session.add(match)
    session.commit()
    fourth = need(session, world, "Couture solidaire", "Coudre des sacs en tissu avec des jeunes.")
    assert awa.id in proposed(session, fourth)


def test_a_new_profile_gets_no_more_proposals_than_the_monthly_cap(session: Session, world: World) -> None:
    """Saved after four sewing needs, a profile drew proposals_per_resident (3) at once, one more
    than the cap of pending proposals a month (2), because the picks of a round were not counted;
    and a need already proposed to her does not take one of her places."""
    titles = ("Atelier couture", "Retouches", "Couturière", "Couture solidaire")
    needs = [need(session, world, title, "Coudre et faire des retouches de vêtements.") for title in titles]
    awa = person(session, world, "Awa", "Je fais de la couture et je retouche les vêtements.")
    assert matching.proposals_per_resident > matching.policy.monthly_cap == 2
    mine = session.exec(select(Match).where(Match.resident_id == awa.id)).all()
    assert len(mine) == 2 and {m.need_id for m in mine} < set(needs)
    rejected = mine[0]
    rejected.status = MatchStatus.REJECTED
    session.add(rejected)
    session.commit()
    assert proposals.propose_for_resident(session, matching, awa, date.today()) == 1
    pending = session.exec(select(Match).where(Match.resident_id == awa.id,
                                               Match.status == MatchStatus.PROPOSED)).all()
    assert len(pending) == 2 and rejected.need_id not in {m.need_id for m in pending}


def weak_proposals(session: Session, world: World, resident: Resident, *scores: float) -> list[Match]:
    """`resident` at the monthly cap with proposals nobody reviewed yet for needs far from them
    (gardening), of these scores, as if made by earlier rounds."""
    fillers = [need(session, world, f"Jardin {i}", "Désherber le potager partagé.")
               for i in range(len(scores))]
    return hand_proposals(session, [(filler, resident.id or 0, score)
                                    for filler, score in zip(fillers, scores, strict=True)])


def withdrawn_ids(session: Session) -> set[int]:
    return set(session.exec(select(WithdrawnProposal.id)).all())


def test_at_the_cap_a_clearly_closer_need_takes_the_place_of_the_weakest_unreviewed_proposal(
        session: Session, world: World) -> None:
    """The cap was filled in arrival order: two weak proposals made first kept every later, far
    closer need away from the person until a worker reviewed them (the demo's 40 residents were
    all at the cap). The weakest one nobody reviewed gives way, kept for `GET
    /proposals/withdrawn`; an approved one never does, however weak; a need not clearly closer
    than what the person holds changes nothing."""
    awa = person(session, world, "Awa", "Je fais de la couture et je retouche les vêtements.")
    approved, weak = weak_proposals(session, world, awa, 0.10, 0.20)
    approve(session, world.worker_a, approved)
    sewing = need(session, world, "Atelier couture", "Animer un atelier de couture.")
    new = proposed(session, sewing)[awa.id or 0]
    assert "displaces" in new.explanation["reasons"]
    held = {m.need_id for m in session.exec(select(Match).where(Match.resident_id == awa.id))}
    assert held == {approved.need_id, sewing} and withdrawn_ids(session) == {weak.id}
    # What she holds now is close: another sewing need does not take its place.
    new.score = 0.95
    session.add(new)
    session.commit()
    again = need(session, world, "Retouches", "Faire des retouches de vêtements à la friperie.")
    assert awa.id not in proposed(session, again)
    assert session.get(Match, new.id) is not None


def test_a_pair_already_there_takes_no_ones_place_at_the_cap(session: Session, world: World) -> None:
    """A need's round run again (reopened, its place changed) picked the person already approved
    for it; at her cap, her weakest unreviewed proposal was withdrawn for a pair the table already
    held, and nothing took its place."""
    awa = person(session, world, "Awa", "Je fais de la couture et je retouche les vêtements.")
    sewing = need(session, world, "Atelier couture", "Animer un atelier de couture.")
    garden = need(session, world, "Jardin", "Désherber le potager partagé.")
    approved, weak = hand_proposals(session, [(sewing, awa.id or 0, 0.60), (garden, awa.id or 0, 0.10)])
    approve(session, world.worker_a, approved)
    row = session.get(Need, sewing)
    assert row is not None
    assert proposals.propose_for_need(session, matching, row, date.today()) == 0
    assert session.get(Match, weak.id) is not None and withdrawn_ids(session) == set()


def test_a_proposal_reviewed_meanwhile_keeps_its_place_and_its_replacement_is_not_made(
        session: Session, world: World) -> None:
    awa = person(session, world, "Awa", "Je fais de la couture et je retouche les vêtements.")
    sewing = need(session, world, "Atelier couture", "Animer un atelier de couture.")
    session.exec(delete(Match).where(Match.need_id == sewing))
    reviewed, _other = weak_proposals(session, world, awa, 0.10, 0.20)
    approve(session, world.worker_a, reviewed)  # between the round's reading and its writing
    stored = store_proposals(session, [Proposal(sewing, awa.id or 0, 0.9, {})], Direction.NEED_TO_RESIDENT,
                             {(sewing, awa.id or 0): reviewed.id or 0})
    assert stored == 0 and awa.id not in proposed(session, sewing)
    assert session.get(Match, reviewed.id) is not None and withdrawn_ids(session) == set()


def test_a_profile_at_the_cap_takes_the_closer_needs_in_place_of_weak_unreviewed_ones(
        session: Session, world: World) -> None:
    """The same from the person's side (her profile saved or her consent renewed): the open needs
    clearly closer than what she holds replace the weakest first, one for one, still within the cap."""
    sewing = need(session, world, "Atelier couture", "Animer un atelier de couture.")
    awa = person(session, world, "Awa", "Je fais de la couture et je retouche les vêtements.")
    session.exec(delete(Match).where(Match.resident_id == awa.id))
    session.commit()
    weakest, other = weak_proposals(session, world, awa, 0.05, 0.10)
    assert proposals.propose_for_resident(session, matching, awa, date.today()) == 1
    held = session.exec(select(Match).where(Match.resident_id == awa.id)).all()
    assert {m.need_id for m in held} == {other.need_id, sewing} and withdrawn_ids(session) == {weakest.id}
    assert "displaces" in proposed(session, sewing)[awa.id or 0].explanation["reasons"]
    assert proposals.propose_for_resident(session, matching, awa, date.today()) == 0


@pytest.mark.parametrize("round_of", ["need", "profile"])
def test_a_need_whose_proposal_gave_way_is_proposed_to_someone_else_at_once(
        session: Session, world: World, round_of: str) -> None:
    """A need whose proposal gave way at the person's cap waited one proposal short until its next
    round (a change of its text, a new profile), with a gardener free for it. It is proposed for
    again in the same round, whichever side's round made the proposal give way; the need whose
    proposal stayed is left alone."""
    awa = person(session, world, "Awa", "Je fais de la couture et je retouche les vêtements.")
    sewing = need(session, world, "Atelier couture", "Animer un atelier de couture.") \
        if round_of == "profile" else None
    session.exec(delete(Match).where(Match.resident_id == awa.id))
    session.commit()
    weakest, other = weak_proposals(session, world, awa, 0.05, 0.10)
    bea = person(session, world, "Béa", "Je désherbe et j'entretiens le potager partagé de mon immeuble.")
    session.exec(delete(Match).where(Match.resident_id == bea.id))
    session.commit()
    if sewing is None:
        sewing = need(session, world, "Atelier couture", "Animer un atelier de couture.")
    else:
        assert proposals.propose_for_resident(session, matching, awa, date.today()) == 1
    assert awa.id in proposed(session, sewing) and withdrawn_ids(session) == {weakest.id}
    assert set(proposed(session, weakest.need_id)) == {bea.id}
    assert bea.id not in proposed(session, other.need_id)


def test_time_slots_filter_when_the_site_asks_it_and_a_change_of_them_withdraws_approvals(
        session: Session, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Availability was only a boost: a weekend workshop went to a person free on weekday
    mornings only. With RELAIS_REQUIRE_AVAILABILITY it is a filter; someone who gave no slots
    passes. A need moved to other slots takes back the approvals of those it now rules out, and
    their worker is told why; the proposals run again."""
    monkeypatch.setattr(matching, "policy", replace(matching.policy, require_availability=True))
    text = "Je fais de la couture et je retouche les vêtements."
    awa = person(session, world, "Awa", text, availability=["weekend"])
    binta = person(session, world, "Binta", text, availability=["weekday_morning"])
    chloe = person(session, world, "Chloé", text)
    sewing = need(session, world, "Atelier couture", "Animer un atelier de couture.",
                  availability=["weekend"])
    assert set(proposed(session, sewing)) == {awa.id, chloe.id}
    approve(session, world.worker_a, proposed(session, sewing)[awa.id or 0])
    row = session.get(Need, sewing)
    assert row is not None
    update_need(session, matching, world.member, row, {"availability": ["weekday_morning"]}, date.today())
    assert set(proposed(session, sewing)) == {binta.id, chloe.id}
    assert [n.text for n in session.exec(select(Notification).where(
        Notification.user_id == world.worker_a.id, Notification.kind == "withdrawn"))] == [
        "« Atelier couture » a changé de créneaux, aucun ne correspond à ceux de Awa : la proposition "
        "validée est retirée avant sa réponse."]


def test_a_need_for_a_resource_goes_to_those_who_say_they_have_or_lend_one(session: Session,
                                                                          world: World) -> None:
    """« Une salle prêtée » was proposed to whoever was closest in words: a seamstress running
    workshops in the community hall. Only what a person has or lends answers a need for a room or
    a van, both ways and in the worker's list of the closest people, and it is the pair shown."""
    hall = need(session, world, "Une salle prêtée pour l'épicerie",
                "Nous cherchons une salle ou un local prêté pour stocker et distribuer les colis.",
                kind=NeedKind.RESOURCE)
    awa = person(session, world, "Awa", "Je fais de la couture. J'anime des ateliers à la salle des fêtes.")
    selim = person(session, world, "Selim", "Je répare les vélos. J'ai un local vide au pied de "
                   "l'immeuble, je peux le prêter à une association.")
    mine = proposed(session, hall)
    assert set(mine) == {selim.id}
    assert "local" in mine[selim.id or 0].explanation["pairs"][0]["resident_text"]
    again = need(session, world, "Salle pour le club", "Une salle prêtée le mercredi pour le club de jeux.",
                 kind=NeedKind.RESOURCE)
    assert set(proposed(session, again)) == {selim.id}
    need_row = session.get(Need, again)
    assert need_row is not None
    session.exec(delete(Match).where(Match.need_id == again))
    session.commit()
    closest = proposals.nearest_residents(session, matching, need_row, date.today(), select(Resident))
    assert [n.resident.id for n in closest] == [selim.id]
    # The same words asked as a skill still go to her.
    workshop = need(session, world, "Atelier couture", "Animer l'atelier couture dans la salle des fêtes.")
    assert awa.id in proposed(session, workshop)


def test_a_person_is_never_proposed_for_what_they_said_they_cannot_do(session: Session, world: World) -> None:
    """A refusal is not indexed, so « Je ne sais pas conduire » stopped nothing: the person was
    proposed for a driving need on their other statements, and the worker saw « proche » and
    never the refusal. Both ways (the need first, the person first), and in the worker's list of
    the closest people; the same person still goes to the cooking need."""
    driving = need(session, world, "Chauffeur bénévole",
                   "Conduire des personnes âgées à leurs rendez-vous en voiture.")
    awa = person(session, world, "Awa", "Je ne sais pas conduire. Je fais la cuisine pour les fêtes.")
    ben = person(session, world, "Ben", "J'ai le permis et je conduis le minibus du club.")
    assert awa.id not in proposed(session, driving) and ben.id in proposed(session, driving)
    again = need(session, world, "Transport solidaire", "Conduire la voiture de l'association le samedi.")
    assert awa.id not in proposed(session, again)
    need_row = session.get(Need, again)
    assert need_row is not None
    closest = proposals.nearest_residents(session, matching, need_row, date.today(), select(Resident))
    assert awa.id not in {n.resident.id for n in closest}
    cooking = need(session, world, "Repas solidaire", "Cuisiner le repas de la fête du quartier.")
    assert awa.id in proposed(session, cooking)


def test_a_former_driver_without_a_licence_is_not_proposed_for_driving(session: Session,
                                                                       world: World) -> None:
    """« Chauffeur poids lourd pendant 20 ans, mais il n'a plus son permis »: the first half is
    closer to a driving need than the refusal, which let him through. No licence rules out a need
    that drives, both ways; no car of one's own does not (the association's van), unless the need
    asks for one's own."""
    moussa = person(session, world, "Moussa", "Monsieur a été chauffeur poids lourd pendant 20 ans mais il "
                                              "n'a plus son permis.")
    ali = person(session, world, "Ali", "J'ai été chauffeur livreur pendant 10 ans. Je n'ai plus de voiture.")
    van = need(session, world, "Chauffeur bénévole",
               "Conduire la camionnette pour livrer les colis alimentaires.")
    assert moussa.id not in proposed(session, van) and ali.id in proposed(session, van)
    own_car = need(session, world, "Accompagnement véhiculé",
                   "Emmener des voisins à l'hôpital avec votre voiture.")
    assert ali.id not in proposed(session, own_car) and moussa.id not in proposed(session, own_car)
    session.exec(delete(Match))
    session.commit()
    assert proposals.propose_for_resident(session, matching, moussa, date.today()) == 0


def test_without_a_licence_or_a_vehicle_is_a_refusal_everywhere(session: Session, world: World) -> None:
    """The ranker read « je suis sans voiture » as a refusal, the stored statement as a skill: it
    was quoted as the reason to propose the person for driving."""
    cleo = person(session, world, "Cléo", "Je suis sans voiture. Je fais du repassage.")
    assert [st.text for st in proposals.current_statements(session, cleo.id or 0)] == ["Je fais du repassage"]


def test_required_languages_filter_residents(session: Session, world: World) -> None:
    malika = person(session, world, "Malika",
                    "J'accompagne les familles chez le médecin, je parle arabe et tamazight.")
    jeanne = person(session, world, "Jeanne", "J'accompagne les voisins chez le médecin.",
                    languages=["fr"])
    need_id = need(session, world, "Interprète", "Accompagner des familles chez le médecin.",
                   languages=["ber"])
    found = proposed(session, need_id)
    assert malika.id in found and jeanne.id not in found
    assert "languages:ber" in found[malika.id or 0].explanation["reasons"]


def test_a_variety_of_a_language_counts_for_it(session: Session, world: World) -> None:
    """A Kabyle speaker was left out of a need asking « tamazight / berbère », a Dari speaker of
    one asking « persan / dari » (the analysis writes kab and prs, the form's boxes ber and fa);
    both ways. A need asking Kabyle itself still wants Kabyle."""
    idir = person(session, world, "Idir", "J'accompagne les familles chez le médecin, je parle kabyle.")
    assert idir.languages == ["kab"]
    berber = need(session, world, "Interprète", "Accompagner des familles chez le médecin.",
                  languages=["ber"])
    assert idir.id in proposed(session, berber)
    persian = need(session, world, "Interprète persan", "Accompagner des familles afghanes chez le médecin.",
                   languages=["fa"])
    zahra = person(session, world, "Zahra", "J'accompagne les familles chez le médecin, je parle dari.")
    assert zahra.languages == ["prs"] and zahra.id in proposed(session, persian)
    amina = person(session, world, "Amina", "J'accompagne les familles chez le médecin, je parle tamazight.")
    kabyle = need(session, world, "Interprète kabyle", "Accompagner des familles chez le médecin.",
                  languages=["kab"])
    assert amina.id not in proposed(session, kabyle)


def test_a_resident_is_offered_open_needs_in_a_language_they_speak(session: Session, world: World) -> None:
    """Resident -> needs: closed needs and needs asking for a language the resident does not speak
    are left out, needs asking for none or for one they speak are offered."""
    sewing = need(session, world, "Atelier couture", "Animer un atelier de couture et de retouches.")
    berber = need(session, world, "Couture en tamazight", "Animer un atelier de couture pour des mamans.",
                  languages=["ber"])
    arabic = need(session, world, "Retouches en arabe", "Faire des retouches de couture avec des voisines.",
                  languages=["ar", "ber"])
    closed = need(session, world, "Couture fermée", "Coudre et faire des retouches de vêtements.")
    row = session.get(Need, closed)
    assert row is not None
    row.status = NeedStatus.CLOSED
    session.add(row)
    session.commit()
    awa = person(session, world, "Awa", "Je fais de la couture et des retouches de vêtements.",
                 languages=["fr", "ar"])
    offered = {m.need_id for m in session.exec(select(Match).where(
        Match.resident_id == awa.id, Match.direction == Direction.RESIDENT_TO_NEED)).all()}
    assert {sewing, arabic} <= offered and not {berber, closed} & offered


def test_calibrated_threshold_follows_reviews(session: Session, world: World) -> None:
    awa = person(session, world, "Awa", "Je fais de la couture.")
    assert calibrated_min_score(session, 0.25) == 0.25  # no review yet: the configured floor
    needs = [need(session, world, f"Besoin {i}", f"Besoin numéro {i}.") for i in range(30)]
    session.exec(select(Match)).all()
    for m in session.exec(select(Match)).all():
        session.delete(m)
    session.commit()
    store_proposals(session, [Proposal(n, awa.id or 0, 0.5 + i / 100, {})
                              for i, n in enumerate(needs)], Direction.NEED_TO_RESIDENT)
    for i, m in enumerate(session.exec(select(Match).order_by(Match.score)).all()):  # type: ignore[arg-type]
        m.status = MatchStatus.REJECTED if i < 10 else MatchStatus.APPROVED
        session.add(m)
    session.commit()
    threshold = calibrated_min_score(session, 0.25)
    assert 0.6 <= threshold <= 0.61  # keeps 95 % of the 20 approved scores (0.60 … 0.79)


def history(session: Session, world: World, reviews: list[tuple[MatchStatus, float]]) -> list[Match]:
    """These matches for one resident, each on a need of its own, and nothing else."""
    awa = person(session, world, "Awa", "Je fais de la couture.")
    for m in session.exec(select(Match)).all():
        session.delete(m)
    rows = []
    for i, (status, score) in enumerate(reviews):
        need_row = Need(organisation_id=world.association.id or 0, title=f"Besoin {i}",
                        description="Un besoin.", created_by_id=world.member.id or 0)
        session.add(need_row)
        session.flush()
        rows.append(Match(need_id=need_row.id or 0, resident_id=awa.id or 0, status=status,
                          direction=Direction.NEED_TO_RESIDENT, score=score, explanation={}))
    session.add_all(rows)
    session.commit()
    return rows


@pytest.mark.parametrize("seed, reviews", [(0, 12), (1, 20), (2, 21), (3, 57), (4, 240)])
def test_calibrated_floor_is_the_policys_cut_of_the_review_history(session: Session, world: World,
                                                                  seed: int, reviews: int) -> None:
    """The database's floor is matcher.policy.calibrate's over the same reviews, whatever the
    history: statuses mixed (pending ones do not count), scores tied or spread, few or many."""
    rng = random.Random(seed)
    statuses = [MatchStatus.APPROVED, MatchStatus.ACCEPTED, MatchStatus.DECLINED, MatchStatus.REJECTED,
                MatchStatus.PROPOSED]
    made = [(rng.choice(statuses), rng.choice([0.3, 0.45, round(rng.uniform(0.1, 0.9), 4)]))
            for _ in range(reviews)]
    history(session, world, made)
    approved = [score for status, score in made if status in REVIEWED]
    rejected = [score for status, score in made if status == MatchStatus.REJECTED]
    for default in (0.0, 0.25, 0.5):
        assert calibrated_min_score(session, default) == pytest.approx(
            calibrate(approved, rejected, default=default))


def test_proposal_rounds_keep_the_review_floor_for_a_while(session: Session, world: World,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Rounds read the floor once per FLOOR_SECONDS (its cost grows with the review history)."""
    rows = history(session, world, [(MatchStatus.APPROVED if i % 2 else MatchStatus.REJECTED, 0.4 + i / 100)
                                    for i in range(30)])
    floor = review_floor(session, 0.25)
    assert floor == calibrated_min_score(session, 0.25) > 0.25
    for m in rows:  # the history undone behind the process's back (as another worker would)
        m.status = MatchStatus.PROPOSED
        session.add(m)
    session.commit()
    assert calibrated_min_score(session, 0.25) == 0.25
    assert review_floor(session, 0.25) == floor  # kept
    assert review_floor(session, 0.3) == 0.3  # another default is another question
    later = proposals.time.monotonic() + FLOOR_SECONDS + 1
    monkeypatch.setattr(proposals.time, "monotonic", lambda: later)
    assert review_floor(session, 0.25) == 0.25  # read again


def test_a_floor_read_overtaken_by_a_review_is_not_kept(session: Session,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[float] = []
    read_floor = proposals.calibrated_min_score

    def read(s: Session, default: float) -> float:
        reads.append(default)
        if len(reads) == 1:  # a review commits (and forgets the floor) while this one reads
            proposals.forget_review_floor(s)
        return read_floor(s, default)

    monkeypatch.setattr(proposals, "calibrated_min_score", read)
    for _ in range(3):
        review_floor(session, 0.25)
    assert len(reads) == 2  # the overtaken read was not kept, the next one was


def test_a_review_is_seen_by_the_next_round_of_its_process(session: Session, world: World) -> None:
    reviews = [(MatchStatus.APPROVED, 0.6 + i / 100) for i in range(CALIBRATION_MINIMUM_REVIEWS - 1)]
    rows = history(session, world, [*reviews, (MatchStatus.PROPOSED, 0.3)])
    assert review_floor(session, 0.25) == 0.25  # one review short of calibrating
    reject(session, world.worker_a, rows[-1], "busy")
    assert review_floor(session, 0.25) == calibrated_min_score(session, 0.25) > 0.25


def test_approvals_dropped_by_a_need_edit_are_seen_by_the_next_round(session: Session,
                                                                      world: World) -> None:
    """A need's new text withdraws the approvals nobody answered: they leave the history the
    floor is learnt from, and this process reads it again at once (the edit's own round too)."""
    rows = history(session, world, [(MatchStatus.APPROVED, 0.6 + i / 100)
                                    for i in range(CALIBRATION_MINIMUM_REVIEWS)])
    default = matching.min_similarity
    proposals.forget_review_floor(session)  # the history above was written behind its back
    assert review_floor(session, default) == calibrated_min_score(session, default) > default
    edited = session.get(Need, rows[0].need_id)
    assert edited is not None
    update_need(session, matching, world.member, edited, {"description": "Un autre besoin."}, date.today())
    assert session.exec(select(Match).where(Match.need_id == edited.id,
                                            Match.status == MatchStatus.APPROVED)).all() == []
    assert review_floor(session, default) == default  # one review short of calibrating, at once


def test_residents_like_one_rejected_for_a_need_are_down_ranked(session: Session,
                                                                world: World) -> None:
    a = person(session, world, "Aya", "Je cuisine des gâteaux marocains pour les fêtes.")
    b = person(session, world, "Binta", "Je cuisine des gâteaux pour les mariages.")
    c = person(session, world, "Chen", "Je cuisine des raviolis et des nems pour les fêtes.")
    need_id = need(session, world, "Cuisine", "Cuisiner pour la fête de quartier.")
    first = proposed(session, need_id)
    assert {a.id, b.id, c.id} <= set(first)
    before = {rid: m.explanation["rank"] for rid, m in first.items()}
    # A worker rejects Aya; proposals are made again for the same need.
    first[a.id or 0].status = MatchStatus.REJECTED
    session.add(first[a.id or 0])
    for rid in (b.id, c.id):
        session.delete(first[rid or 0])
    session.commit()
    from models import Need
    from web.services.proposals import propose_for_need

    propose_for_need(session, matching, session.get(Need, need_id), date.today())  # type: ignore[arg-type]
    after = {rid: m.explanation for rid, m in proposed(session, need_id).items()}
    assert after[b.id or 0]["rank"] < before[b.id or 0]  # Binta is like Aya: penalised
    assert any(r.startswith("close_to_rejected") for r in after[b.id or 0]["reasons"])
    assert after[b.id or 0]["rank"] - before[b.id or 0] < after[c.id or 0]["rank"] - before[c.id or 0]


def test_statement_pairs_and_profile_means_of_many_residents_at_once() -> None:
    """The batched pairs and means are each resident's own: brute force over the same vectors."""
    rng = np.random.default_rng(7)

    def quote(text: str) -> Quoted:
        vector = rng.normal(size=16).astype(np.float32)
        return Quoted(text, [], (vector / np.linalg.norm(vector)).tobytes())

    docs = {rid: [quote(f"{rid}-{i}") for i in range(int(rng.integers(0, 5)))] for rid in range(1, 30)}
    query = [quote(f"q{i}") for i in range(3)]
    many = best_pairs_of(query, docs, 16)
    means = _mean_vectors(docs, 16)
    for rid, rows in docs.items():
        if not rows:
            assert many[rid] == [] and rid not in means
            continue
        matrix = np.stack([np.frombuffer(r.vector, np.float32) for r in rows])
        sims = np.stack([np.frombuffer(q.vector, np.float32) for q in query]) @ matrix.T
        best = sims.argmax(axis=1)
        expected = sorted(((query[i].text, rows[int(j)].text, sims[i, j]) for i, j in enumerate(best)),
                          key=lambda p: -p[2])
        assert [(q.text, d.text) for q, d, _ in many[rid]] == [(q, d) for q, d, _ in expected]
        assert [s for *_, s in many[rid]] == pytest.approx([s for *_, s in expected], abs=1e-6)
        mean = matrix.mean(axis=0)
        assert means[rid] == pytest.approx(mean / np.linalg.norm(mean), abs=1e-6)


def test_a_need_searches_with_its_stored_vectors(session: Session, world: World,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Ranking residents for a need takes its whole text's and title's vectors from its stored
    artefact instead of encoding them again, and ranks as it would have by encoding them."""
    person(session, world, "Awa", "Je couds depuis toute petite, je fais les ourlets et les retouches.")
    person(session, world, "Jorge", "Je répare les vélos et les mobylettes.")
    need_id = need(session, world, "Atelier couture", "Animer un atelier pour les femmes du quartier. "
                   "Les machines sont fournies.")
    found = session.get(Need, need_id)
    assert found is not None and matching.encoders is not None
    use = matching.encoders.use
    assert isinstance(use, RecentVectors)
    asked: list[str] = []
    inner_encode = use.inner.encode
    monkeypatch.setattr(use.inner, "encode", lambda texts: asked.extend(texts) or inner_encode(texts))
    query = need_query(found)

    def ranked(lend: bool) -> list[tuple[object, float]]:
        use._known.clear()  # a process that did not write the need
        asked.clear()
        if lend:
            matching.lend_need_vectors(session, found)
        return [(r.doc_id, r.score) for r in matching.rank(session, RESIDENTS, query, 10, None)]

    encoding = ranked(lend=False)
    assert normalise(query) in asked
    lending = ranked(lend=True)
    assert normalise(query) not in asked and "atelier couture" not in asked
    assert [d for d, _ in lending] == [d for d, _ in encoding]
    np.testing.assert_allclose([s for _, s in lending], [s for _, s in encoding], atol=1e-4)


def test_a_round_that_loses_a_race_for_a_pair_keeps_its_other_proposals(session: Session,
                                                                         world: World) -> None:
    """A worker proposes a pair (committed from another connection) between the round's reading
    of what exists and its insert: the round skips that pair and stores the rest, where a check
    then an insert failed the whole round at its commit."""
    awa = person(session, world, "Awa", "Je fais de la couture.")
    binta = person(session, world, "Binta", "Je cuisine pour les fêtes.")
    need_id = need(session, world, "Fête de quartier", "Préparer le repas de la fête de quartier.")
    session.exec(delete(Match))
    session.exec(delete(Notification))
    session.commit()
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    raced: list[str] = []

    def worker_first(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        if raced or not re.match(r'\s*INSERT INTO "?match"? ', statement, re.IGNORECASE):
            return
        raced.append(statement)
        with Session(engine) as other:  # another connection, committed before the round's insert
            other.add(Match(need_id=need_id, resident_id=awa.id or 0, score=0.6,
                            direction=Direction.WORKER, status=MatchStatus.PROPOSED))
            other.commit()

    event.listen(engine, "before_cursor_execute", worker_first)
    try:
        stored = store_proposals(session, [Proposal(need_id, awa.id or 0, 0.5, {}),
                                           Proposal(need_id, binta.id or 0, 0.4, {})],
                                 Direction.NEED_TO_RESIDENT)
    finally:
        event.remove(engine, "before_cursor_execute", worker_first)
    assert raced and stored == 1
    session.expire_all()
    rows = proposed(session, need_id)
    assert rows[awa.id or 0].direction == Direction.WORKER and rows[awa.id or 0].score == 0.6
    assert rows[binta.id or 0].direction == Direction.NEED_TO_RESIDENT
    assert rows[binta.id or 0].score == 0.4 and rows[binta.id or 0].status == MatchStatus.PROPOSED
    # Only the stored proposal was announced: Binta's centre hears of one, not two.
    texts = session.exec(select(Notification.text).where(Notification.kind == "to_review")).all()
    assert texts and all(t == "Une nouvelle proposition à examiner." for t in texts)
