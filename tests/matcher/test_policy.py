"""Filters, boosts, fairness, diversity and feedback between relevance and proposals."""

from __future__ import annotations

import numpy as np
import pytest

from matcher.policy import (
    Candidate,
    Policy,
    Side,
    calibrate,
    decide,
    distance_km,
    fill,
    hard_filters,
    offers,
    refuses,
)

NEED = Side(territory_id=1, availability=frozenset({"weekend"}))


def unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def ids(decisions: list) -> list[int]:  # type: ignore[type-arg]
    return [d.candidate.doc_id for d in decisions]


def test_a_variety_answers_for_its_macrolanguage_not_the_reverse() -> None:
    asks_berber, asks_kabyle = Side(languages=frozenset({"ber"})), Side(languages=frozenset({"kab"}))
    kabyle, berber = (Candidate(i, 0.5, Side(languages=frozenset({code})))
                      for i, code in ((1, "kab"), (2, "ber")))
    assert ids(decide(asks_berber, [kabyle, berber], Policy(), k=5)) == [1, 2]
    assert ids(decide(asks_kabyle, [kabyle, berber], Policy(), k=5)) == [1]


def test_required_languages_are_a_hard_filter() -> None:
    need = Side(languages=frozenset({"ar", "ber"}))
    candidates = [Candidate(1, 0.9, Side(languages=frozenset({"fr"}))),
                  Candidate(2, 0.5, Side(languages=frozenset({"ber", "fr"})))]
    decided = decide(need, candidates, Policy(), k=5)
    assert ids(decided) == [2] and "languages:ber" in decided[0].satisfied
    assert ids(decide(need, candidates, Policy(require_languages=False), k=5)) == [1, 2]


def test_distance_is_a_hard_filter_when_coordinates_are_known() -> None:
    need = Side(coordinates=(47.39, 0.69))  # Tours
    near = Candidate(1, 0.5, Side(coordinates=(47.40, 0.70)))
    far = Candidate(2, 0.9, Side(coordinates=(48.85, 2.35)))  # Paris, ~200 km
    unknown = Candidate(3, 0.4, Side())
    assert ids(decide(need, [near, far, unknown], Policy(max_distance_km=15), k=5)) == [1, 3]
    assert distance_km((47.39, 0.69), (48.85, 2.35)) == pytest.approx(205, abs=10)


def test_same_territory_only_is_optional() -> None:
    here, there = Candidate(1, 0.5, Side(territory_id=1)), Candidate(2, 0.9, Side(territory_id=2))
    assert ids(decide(NEED, [here, there], Policy(same_territory_only=True), k=5)) == [1]
    assert set(ids(decide(NEED, [here, there], Policy(), k=5))) == {1, 2}


def test_shared_time_slots_are_a_filter_only_when_asked_and_both_sides_give_them() -> None:
    """Availability was a boost only: a site whose needs happen at set times could not keep out
    people who said they are free at other times. Someone who gave no slots is not known to be
    busy: they pass."""
    need = Side(availability=frozenset({"weekend"}))
    weekend = Candidate(1, 0.5, Side(availability=frozenset({"weekend", "weekday_evening"})))
    mornings = Candidate(2, 0.9, Side(availability=frozenset({"weekday_morning"})))
    unsaid = Candidate(3, 0.4, Side())
    assert ids(decide(need, [weekend, mornings, unsaid], Policy(require_availability=True), k=5)) == [1, 3]
    assert set(ids(decide(need, [weekend, mornings, unsaid], Policy(), k=5))) == {1, 2, 3}
    assert ids(decide(Side(), [weekend, mornings], Policy(require_availability=True), k=5)) == [2, 1]
    assert hard_filters(need, mornings.side, Policy(require_availability=True)) == ("availability", [])


def test_hard_filters_name_the_first_one_failed() -> None:
    """What the service tells a worker when a need's change rules out someone they approved."""
    need = Side(territory_id=1, coordinates=(47.39, 0.69), languages=frozenset({"ar"}))
    speaker_near = Side(territory_id=2, coordinates=(47.40, 0.70), languages=frozenset({"ar"}))
    assert hard_filters(need, speaker_near, Policy())[0] is None
    assert hard_filters(need, Side(languages=frozenset({"fr"})), Policy()) == ("languages", [])
    assert hard_filters(need, Side(coordinates=(48.85, 2.35), languages=frozenset({"ar"})),
                        Policy())[0] == "distance"
    assert hard_filters(need, speaker_near, Policy(same_territory_only=True))[0] == "territory"


def test_monthly_cap_of_pending_proposals() -> None:
    busy = Candidate(1, 0.9, Side(), pending_this_month=2)
    free = Candidate(2, 0.5, Side(), pending_this_month=1)
    assert ids(decide(NEED, [busy, free], Policy(monthly_cap=2), k=5)) == [2]
    assert ids(decide(NEED, [busy, free], Policy(monthly_cap=3), k=5)) == [1, 2]


def test_at_the_cap_only_a_clearly_closer_candidate_passes_and_says_so() -> None:
    """A capped person's weakest unreviewed proposal (`displaceable`) gives way to a candidate
    closer by the margin; none gives way when all were reviewed (None)."""
    def capped(doc_id: int, similarity: float, weakest: float | None) -> Candidate:
        return Candidate(doc_id, 0.9, Side(), pending_this_month=2, similarity=similarity,
                         displaceable=weakest)

    candidates = [capped(1, 0.60, 0.40), capped(2, 0.43, 0.40), capped(3, 0.90, None)]
    decided = decide(NEED, candidates, Policy(monthly_cap=2, displace_margin=0.05, diversity=0), k=5)
    assert ids(decided) == [1] and "displaces" in decided[0].satisfied
    assert ids(decide(NEED, candidates, Policy(monthly_cap=3, diversity=0), k=5)) == [1, 2, 3]


@pytest.mark.parametrize(("offered", "held", "room", "expected"), [
    # a free place, then .6 replaces .3; .5 is not .05 above .48
    ([0.7, 0.6, 0.5], [0.48, 0.3], 1, [(0, None), (1, 1)]),
    ([0.7, 0.6], [0.3, 0.2], 0, [(0, 1), (1, 0)]),  # the closest replaces the weakest
    ([0.30, 0.90], [0.28, 0.50], 0, [(1, 0)]),  # in the policy's order, not the closest first
    ([0.7, 0.6], [], 0, []),  # all reviewed: nothing gives way
    ([0.4], [0.2], -1, [(0, 0)]),  # over a lowered cap: one for one, never more
    ([0.3], [], 2, [(0, None)]),
])
def test_fill_takes_free_places_then_replaces_the_weakest_while_clearly_closer(
        offered: list[float], held: list[float], room: int, expected: list[tuple[int, int | None]]) -> None:
    assert fill(offered, held, room, margin=0.05) == expected


def test_boosts_for_territory_availability_and_dormant_residents() -> None:
    plain = Candidate(1, 0.60, Side(territory_id=2), ever_matched=True)
    local = Candidate(2, 0.58, Side(territory_id=1), ever_matched=True)
    weekend = Candidate(3, 0.58, Side(availability=frozenset({"weekend"})), ever_matched=True)
    dormant = Candidate(4, 0.58, Side(), ever_matched=False)
    decided = decide(NEED, [plain, local, weekend, dormant], Policy(diversity=0), k=4)
    assert ids(decided)[-1] == 1  # each boost lifts a slightly weaker candidate above it
    reasons = {d.candidate.doc_id: d.satisfied for d in decided}
    assert reasons[2] == ["territory"] and reasons[3] == ["availability"]
    assert reasons[4] == ["dormant"]


def test_candidates_close_to_rejected_ones_are_down_ranked() -> None:
    like_rejected = Candidate(1, 0.70, Side(), vector=unit(1, 0, 0))
    different = Candidate(2, 0.65, Side(), vector=unit(0, 1, 0))
    rejected = [unit(1, 0.05, 0)]
    assert ids(decide(NEED, [like_rejected, different], Policy(diversity=0), k=2)) == [1, 2]
    decided = decide(NEED, [like_rejected, different], Policy(diversity=0), k=2,
                     rejected_vectors=rejected)
    assert ids(decided) == [2, 1]
    assert decided[1].satisfied[0].startswith("close_to_rejected:")


def test_diversity_spreads_the_top_k() -> None:
    twins = [Candidate(i, 0.80 - i * 0.001, Side(), vector=unit(1, 0.01 * i, 0)) for i in range(3)]
    other = Candidate(9, 0.75, Side(), vector=unit(0, 0, 1))
    assert ids(decide(NEED, [*twins, other], Policy(diversity=0), k=2)) == [0, 1]
    assert ids(decide(NEED, [*twins, other], Policy(diversity=0.2), k=2)) == [0, 9]


def test_min_score_is_a_floor() -> None:
    low = Candidate(1, 0.2, Side())
    assert decide(NEED, [low], Policy(min_score=0.3), k=5) == []


def test_calibrated_threshold_keeps_most_approvals() -> None:
    rng = np.random.default_rng(0)
    approved = list(rng.uniform(0.4, 0.9, size=60))
    rejected = list(rng.uniform(0.1, 0.5, size=40))
    threshold = calibrate(approved, rejected, keep=0.95, default=0.2)
    assert 0.4 <= threshold <= 0.45
    assert sum(a >= threshold for a in approved) >= 0.95 * len(approved)
    assert calibrate(approved[:5], rejected[:5], default=0.2) == 0.2  # too few reviews
    assert calibrate([0.1] * 30, [0.05] * 30, default=0.2) == 0.2  # never below the default


@pytest.mark.parametrize(("refusals", "need", "expected"), [
    (["il n'a plus son permis"], ["Conduire la camionnette"], True),
    (["je ne sais pas conduire"], ["Chauffeur bénévole pour le minibus"], True),
    (["I can't drive"], ["Driver for the food bank van"], True),
    (["je n'ai plus de voiture"], ["Conduire la camionnette de l'association"], False),  # not his own
    (["je n'ai plus de voiture"], ["Accompagnement véhiculé"], True),
    (["pas de voiture"], ["Emmener des voisins avec votre voiture"], True),
    (["pas de permis de séjour pour l'instant"], ["Conduire la camionnette"], False),
    (["je ne sais pas conduire"], ["Cuisiner pour la fête du quartier"], False),
    ([], ["Conduire la camionnette"], False),
    # Words that look like it: « car » (because), a permission, a degree, leading a workshop, a
    # licence-free car, a refusal limited to the night.
    (["Je ne peux pas faire de ménage car je suis allergique"], ["Bénévole véhiculé pour les colis"], False),
    (["Je n'ai pas la permission de sortir le soir"], ["Conduire le minibus"], False),
    (["Je n'ai pas de licence mais j'ai le bac"], ["Conduire le minibus"], False),
    (["je ne sais pas conduire"], ["Animer et conduire un atelier couture"], False),
    (["J'ai une voiture sans permis"], ["Accompagnement véhiculé"], False),
    (["Je ne conduis pas la nuit"], ["Chauffeur pour le minibus du samedi"], False),
    (["pas de voitures"], ["Emmener des voisins avec votre voiture"], True),
    # A vehicle as a help, not a condition: someone without a licence who cycles is not ruled out.
    (["je n'ai pas le permis"], ["Visites aux aînés isolés.", "Une voiture ou un vélo est utile."], False),
    (["je ne conduis pas"], ["Distribution de colis", "Le permis serait un plus."], False),
    (["pas de voiture"], ["Courses pour les voisins, idéalement avec votre voiture."], False),
    (["je ne conduis pas"], ["Permis B obligatoire, un véhicule serait un plus."], True),
    (["je n'ai pas le permis"], ["Chauffeur pour le minibus.", "Un vélo est utile aussi."], True),
    (["je n'ai pas le permis"], ["Nos conducteurs ont le permis depuis plus de trois ans."], True),
    (["je ne conduis pas"], ["Distribution de colis, le permis n'est pas obligatoire."], False),
])
def test_no_licence_or_no_vehicle_rules_out_a_need_that_asks_for_it(refusals: list[str], need: list[str],
                                                                    expected: bool) -> None:
    assert refuses(refusals, need) is expected


HAVE_OR_LEND = ["J'ai un camion, un Trafic, le samedi il est libre", "Elle a le permis et une voiture",
                "M. est titulaire du bail d'un local commercial", "Si ça rend service je veux bien le prêter",
                "Here I have my own sewing machine", "Nous disposons d'une salle au rez-de-chaussée",
                "j'ai encore tous mes outils dans le garage", "J'ai toujours eu un potager",
                "Madame a une voiture", "Son mari a une camionnette", "jai 2 voitures", "g une voiture",
                "Je suis véhiculée", "J'ai accès à une salle", "mettre à dispo mon garage",
                "mon garage est dispo", "je veux bien le prêter à l'association",
                "je la prête pour les fêtes", "Mme Diallo a une voiture", "Mme B. a une voiture",
                "M. Da Silva a un camion", "ma remorque est dispo", "mon vélo cargo est dispo",
                "ma place de parking est libre le week-end"]
# A skill, an auxiliary, a place (« a la maison » without its accent), what one had, being ready
# (« prête à »), renting, an age, free time.
NO_RESOURCE = ["J'ai été caissière quinze ans", "j'ai travaillé dix ans dans le bâtiment",
               "a la maison on parle turc", "Si y a un jardin pour travailler la terre, je suis partant",
               "Les maths, j'ai un peu oublié", "j'ai l'habitude de cuisiner pour quarante",
               "Je fais de la couture", "Au bled on avait un jardin derrière la maison",
               "Je suis prête à aider pour les déménagements", "je peux prêter main forte",
               "Je cherche à louer un appartement", "Je suis locataire d'un logement social",
               "J'ai eu un accident du travail", "j'ai a m'occuper de mes enfants",
               "mes soirées sont libres", "ma fille est dispo pour garder", "Madame a 65 ans",
               "j'ai 20 ans d'expérience", "g 2 enfants", "Madame part a la retraite",
               "je suis toujours prête à rendre service", "prête à donner un coup de main",
               "j'ai deux enfants", "j'ai 2 semaines de vacances"]


@pytest.mark.parametrize(("statement", "expected"),
                         [(s, True) for s in HAVE_OR_LEND] + [(s, False) for s in NO_RESOURCE])
def test_what_a_person_has_or_lends_answers_a_need_for_a_resource(statement: str, expected: bool) -> None:
    assert offers(statement) is expected
