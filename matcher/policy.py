"""What happens between relevance and a proposal: filters, boosts, fairness, diversity, feedback.

Relevance says who *could* do the job. The policy decides who is *proposed*:

Hard filters (a candidate failing one is never proposed):
  - the need is open and the resident's consent is valid (applied by the caller, who knows),
  - required languages: when a need asks for languages, the person speaks at least one,
  - distance: when both sides have coordinates, at most `max_distance_km` apart,
  - `same_territory_only` (off by default): only residents of the need's territory,
  - `require_availability` (off by default): when both sides give time slots, they share one
    (a side without slots is not known to be unavailable, and passes),
  - monthly cap: a resident with `monthly_cap` proposals still pending this month gets no new one,
    unless it is closer, by `displace_margin`, than the weakest of those nobody reviewed yet
    (`Candidate.displaceable`), which then gives way (`fill`): a cap filled in arrival order by
    weak proposals kept every later, better one from the person.
  - a need for a resource (a room, a van, equipment) is answered only by what a person says they
    have or lend (`offers`): « Je fais de la couture » was proposed for « une salle prêtée »
    (applied by the caller, which pairs statements).
Soft boosts (added to the relevance score, each documented below and configurable):
  - same territory, availability overlap, and residents never matched yet (the dormant ones).
    With `require_availability`, the overlap is a filter as well as a boost.
Refusals (a hard filter, applied by the caller with the person's negated statements):
  - a refusal at least as close to the need as the person's closest statement (the caller's
    cosines), or, whatever the closeness, no licence or no driving for a need that drives, and no
    vehicle for a need that asks for one's own (`refuses`): « chauffeur poids lourd pendant 20
    ans, mais il n'a plus son permis » is closer to a driving need by its first half.
Feedback:
  - candidates close to residents already rejected *for the same need* lose `rejected_penalty`
    times that closeness (cosine of profile vectors),
  - nothing is proposed under `min_score` (calibrated from review history, see `calibrate`),
    compared with the candidate's `similarity` (the readable best-pair cosine) when it has one,
    else with its score.
Diversity:
  - maximal marginal relevance over profile vectors, so the top k is not five near-copies.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

# The review-learnt floor (`calibrate`): keep this share of the approved proposals, once there
# are this many reviews.
CALIBRATION_KEEP = 0.95
CALIBRATION_MINIMUM_REVIEWS = 20


@dataclass(frozen=True)
class Side:
    """What the policy knows of a resident or a need."""

    territory_id: int | None = None
    coordinates: tuple[float, float] | None = None  # (latitude, longitude)
    availability: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Candidate:
    doc_id: int
    relevance: float  # from the ranker, higher is better
    side: Side
    vector: np.ndarray | None = None  # profile vector (mean of statement vectors), for diversity
    pending_this_month: int = 0
    ever_matched: bool = True
    similarity: float | None = None  # readable relevance (best statement pair cosine), for the floor
    # At the cap: the similarity of the weakest of the person's pending proposals nobody reviewed
    # yet (None: all were reviewed, nothing gives way).
    displaceable: float | None = None


@dataclass
class Policy:
    same_territory_only: bool = False
    require_availability: bool = False
    max_distance_km: float | None = 15.0
    require_languages: bool = True
    monthly_cap: int = 2
    displace_margin: float = 0.05  # how much closer a proposal must be to replace one at the cap
    territory_boost: float = 0.03
    availability_boost: float = 0.03
    dormant_boost: float = 0.04
    rejected_penalty: float = 0.15
    diversity: float = 0.15  # MMR trade-off: 0 = pure relevance
    min_score: float = 0.0


@dataclass
class Decision:
    """A candidate the policy kept, its final score and the reasons (machine-readable)."""

    candidate: Candidate
    score: float
    satisfied: list[str] = field(default_factory=list)  # filters met and boosts earned


# A variety counts for its macrolanguage (ISO 639): a need asking « tamazight / berbère » wants a
# Kabyle, Tachelhit or Tarifit speaker too, and one asking « persan / dari », a Dari speaker. Not
# the other way: a need asking Kabyle means Kabyle.
LANGUAGE_PARENTS = {"kab": "ber", "shi": "ber", "rif": "ber", "tzm": "ber", "zgh": "ber",
                    "prs": "fa", "yue": "zh"}


def with_parents(languages: Iterable[str]) -> frozenset[str]:
    """The languages someone speaks, with the macrolanguages their varieties belong to."""
    spoken = set(languages)
    return frozenset(spoken | {LANGUAGE_PARENTS[code] for code in spoken if code in LANGUAGE_PARENTS})


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(
        (lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def decide(need: Side, candidates: Sequence[Candidate], policy: Policy, k: int,
           rejected_vectors: Sequence[np.ndarray] = ()) -> list[Decision]:
    """Filter, boost, penalise and diversify `candidates` for `need`; return at most `k`."""
    kept: list[Decision] = []
    rejected = np.stack(rejected_vectors) if len(rejected_vectors) else None
    for c in candidates:
        failed, reasons = hard_filters(need, c.side, policy)
        if failed is not None:
            continue
        score = c.relevance
        same_place = need.territory_id is not None and need.territory_id == c.side.territory_id
        if c.pending_this_month >= policy.monthly_cap:
            if not _displaces(c, policy):
                continue
            reasons.append("displaces")
        if same_place:
            score += policy.territory_boost
            reasons.append("territory")
        if need.availability and need.availability & c.side.availability:
            score += policy.availability_boost
            reasons.append("availability")
        if not c.ever_matched:
            score += policy.dormant_boost
            reasons.append("dormant")
        if rejected is not None and c.vector is not None:
            closeness = float(np.max(rejected @ c.vector))
            if closeness > 0:
                score -= policy.rejected_penalty * closeness
                reasons.append(f"close_to_rejected:{closeness:.2f}")
        if (c.similarity if c.similarity is not None else score) < policy.min_score:
            continue
        kept.append(Decision(c, score, reasons))
    kept.sort(key=lambda d: (-d.score, d.candidate.doc_id))
    return _diversify(kept, policy.diversity, k)


def _displaces(c: Candidate, policy: Policy) -> bool:
    """Whether a candidate at the cap is closer, by the margin, than its weakest unreviewed one."""
    return (c.displaceable is not None and c.similarity is not None
            and c.similarity >= c.displaceable + policy.displace_margin)


def fill(offered: Sequence[float], held: Sequence[float], room: int, margin: float
         ) -> list[tuple[int, int | None]]:
    """One person's new proposals at the monthly cap. `offered`: the similarities of the new ones
    in the policy's order; `held`: those of their proposals nobody reviewed yet. The first `room`
    take free places; then the closest of the others each replace the weakest held while closer
    by `margin`. Returns (index in offered, index in held it replaces, None for a free place), in
    the policy's order."""
    free = min(max(room, 0), len(offered))
    taken: list[tuple[int, int | None]] = [(i, None) for i in range(free)]
    closest = sorted(range(free, len(offered)), key=lambda i: -offered[i])
    weakest = sorted(range(len(held)), key=lambda j: held[j])
    for i, j in zip(closest, weakest, strict=False):
        if offered[i] < held[j] + margin:
            break
        taken.append((i, j))
    return sorted(taken, key=lambda pair: pair[0])


def hard_filters(need: Side, other: Side, policy: Policy) -> tuple[str | None, list[str]]:
    """The filters that keep `other` out whatever its score: the first one failed (None when
    all pass: "languages", "distance", "territory" or "availability"), and the reasons of those
    met."""
    reasons: list[str] = []
    if policy.require_languages and need.languages:
        spoken = need.languages & with_parents(other.languages)
        if not spoken:
            return "languages", reasons
        reasons.append("languages:" + ",".join(sorted(spoken)))
    if need.coordinates and other.coordinates and policy.max_distance_km is not None:
        km = distance_km(need.coordinates, other.coordinates)
        if km > policy.max_distance_km:
            return "distance", reasons
        reasons.append(f"distance_km:{km:.1f}")
    if (policy.same_territory_only and need.territory_id is not None
            and need.territory_id != other.territory_id):
        return "territory", reasons
    if (policy.require_availability and need.availability and other.availability
            and not need.availability & other.availability):
        return "availability", reasons
    return None, reasons


def _diversify(decisions: list[Decision], weight: float, k: int) -> list[Decision]:
    """Maximal marginal relevance: each pick trades score against closeness to earlier picks."""
    if weight <= 0 or len(decisions) <= 1:
        return decisions[:k]
    chosen: list[Decision] = []
    pool = list(decisions)
    while pool and len(chosen) < k:
        def value(d: Decision) -> float:
            mine = d.candidate.vector
            closeness = [float(mine @ c.candidate.vector) for c in chosen
                         if mine is not None and c.candidate.vector is not None]
            return d.score - weight * max([0.0, *closeness])

        best = max(pool, key=lambda d: (value(d), -d.candidate.doc_id))
        chosen.append(best)
        pool.remove(best)
    return chosen


def calibrate(approved: Sequence[float], rejected: Sequence[float], keep: float = CALIBRATION_KEEP,
              minimum_reviews: int = CALIBRATION_MINIMUM_REVIEWS, default: float = 0.0) -> float:
    """The score under which nothing should be proposed, learnt from reviews.

    The highest threshold that still keeps `keep` of the approved proposals; with fewer than
    `minimum_reviews` reviews, `default`. Rejected scores only matter through that cut: a
    threshold never rises above what social workers have approved.
    """
    if len(approved) + len(rejected) < minimum_reviews or not approved:
        return default
    return max(default, sorted(approved)[calibration_index(len(approved), keep)])


def calibration_index(approved: int, keep: float = CALIBRATION_KEEP) -> int:
    """Where the cut lies among `approved` (> 0) scores sorted ascending."""
    return min(int(math.floor((1 - keep) * approved)), approved - 1)


# Driving: what a refusal says about it, and what a need asks of it (general French and English
# words). A permit to stay, work, build, fish or hunt is no driving licence; a « licence » alone is
# a degree; « conduire un atelier » leads it (a need drives when it names a vehicle or a driver);
# « car » is French for « because »; « une voiture sans permis » is a car; a refusal limited to
# a time or a road (« je ne conduis pas la nuit ») still drives by day.
# (NOT_DRIVING_LICENCE is also the ranker's: matcher.hybrid's clauses without a licence.)
NOT_DRIVING_LICENCE = r"(?!\s+(?:de|d')\s*(?:s[ée]jour|travail|construire|p[êe]che|chasse|port))"
_NO_DRIVING = re.compile(r"\b(?:permis\b" + NOT_DRIVING_LICENCE + r"|condui\w*|driv\w*|"
                         r"(?:driving\s+)licen[cs]e|licence\s+de\s+conduire)", re.IGNORECASE)
_NO_VEHICLE = re.compile(r"\b(?:voitures?|v[ée]hicul\w*|(?:no|my|a|own)\s+cars?)\b", re.IGNORECASE)
_MICROCAR = re.compile(r"\bvoitures?\s+sans\s+permis\b", re.IGNORECASE)
_LIMITED = re.compile(r"\b(?:la\s+nuit|le\s+soir|de\s+nuit|le\s+week-end|sur\s+(?:l'|les\s+)?autoroutes?|"
                      r"longtemps|(?:de\s+)?longues?\s+distances?|en\s+ville|at\s+night)\b", re.IGNORECASE)
_DRIVING_NEED = re.compile(r"\b(?:chauffeur\w*|permis\b" + NOT_DRIVING_LICENCE
                           + r"|camion\w*|minibus|fourgon\w*|utilitaire|v[ée]hicul\w*|voitures?|driv\w*|"
                           r"\bvans?\b)", re.IGNORECASE)
_OWN_VEHICLE_NEED = re.compile(r"\b(?:v[ée]hicul[ée]e?s?\b|(?:sa|votre|ta|son|your|own)\s+(?:propre\s+)?"
                               r"(?:voiture|v[ée]hicule|car)\b|voiture personnelle)", re.IGNORECASE)


# A need's sentence that makes a vehicle a help, not a condition (« une voiture ou un vélo est
# utile », « le permis serait un plus ») asks no driving, unless it also says it is required.
_OPTIONAL = re.compile(r"\b(?:utiles?|un\s+plus|atouts?|appr[ée]ci[ée]e?s?|si\s+possible|id[ée]alement|"
                       r"bienvenue?s?|de\s+pr[ée]f[ée]rence|facultati\w*|pas\s+obligatoire|helpful|a\s+plus)\b"
                       r"|\bou\s+(?:à\s+|en\s+)?(?:un\s+)?(?:v[ée]lo|pied|bus|tram\w*|m[ée]tro|transports?)\b",
                       re.IGNORECASE)
_REQUIRED = re.compile(r"\b(?:(?<!pas )obligatoire|exig[ée]e?s?|indispensable|n[ée]cessaire|requis\w*|"
                       r"imp[ée]rati\w*|required|must)\b", re.IGNORECASE)


def refuses(refusals: Sequence[str], need: Sequence[str]) -> bool:
    """Whether the person's refusals (their negated statements) rule the need (its sentences) out
    whatever their closeness: no licence or no driving for a need that drives; no vehicle for a
    need that asks for one's own. A sentence naming a vehicle as a help only (`_OPTIONAL`) asks
    for neither: someone without a licence who goes by bike is not ruled out."""
    if not refusals or not need:
        return False
    asked = " ".join(sentence for sentence in need
                     if _REQUIRED.search(sentence) or not _OPTIONAL.search(sentence))
    refusals = [_MICROCAR.sub("", r) for r in refusals if not _LIMITED.search(r)]
    if any(_NO_DRIVING.search(r) for r in refusals) and _DRIVING_NEED.search(asked):
        return True
    return any(_NO_VEHICLE.search(r) for r in refusals) and bool(_OWN_VEHICLE_NEED.search(asked))


# What a person has or lends, for a need asking for a resource: a possession (« j'ai un camion »,
# « jai 2 voitures », « Madame a une voiture », « I have my own speakers », « je dispose d'une
# salle », « j'ai accès à un local », « je suis véhiculée »), a deed (« titulaire du bail d'un
# local »), a loan (« je veux bien le prêter », « mettre à dispo mon garage »). An auxiliary
# (« j'ai travaillé ») has no determiner after it, « il y a » no subject, « a la maison » typed
# without its accent is a place, and what one had (« au bled on avait un jardin », « j'ai eu un
# accident ») is gone; « je suis prête à aider » is ready, « prêter main forte » helps, « louer »
# rents; « j'ai 45 ans » or « 2 enfants » are no things, nor « mes soirées sont libres ».
# Lenient otherwise: the closeness of the statement decides.
_NAME = r"(?-i:[A-Z][\w'’-]*\.?)"  # « Diallo », « B. », « N'Diaye »: a capital first
_HOLDERS = (r"il|elle|on|qui|(?:madame|monsieur|mme)(?:\s+" + _NAME + r"){0,3}|(?:mr|m)\.?(?:\s+" + _NAME
            + r"){1,3}|la\s+personne|mari|femme|[ée]pou(?:se|x)|fils|fille|famille|fr[èe]re|s(?:œ|oe)ur|"
            r"p[èe]re|m[èe]re")
_HAVE = (r"(?:j['’]\s*ai|jai|g|ai|tu\s+as|(?:" + _HOLDERS + r")\s+a|avons|avez|ont"
         r"|(?:poss[èée]d|dispos)\w*(?:\s+d['’]|\s+de)?)")
_ADVERB = r"(?:\s+(?:toujours(?:\s+eu)?|encore|aussi|d[ée]j[àa]|m[êe]me))?(?:\s+tou(?:t|s|te|tes))?"
# People and time are not lent: « j'ai deux enfants », « j'ai 2 semaines de libre ».
_NOT_THINGS = (r"(?!\s+(?:\w+\s+)?(?:enfants?|petits?-enfants?|gosses?|filles?|fils|gar[çc]ons?|ans?|mois|"
               r"semaines?|jours?|minutes?|heures?|h|fois)\b)")
_DETERMINER = (r"(?:un|une|des|deux|trois|quatre|mon|ma|mes|son|sa|ses|notre|nos|leur|leurs|le|la|les|l['’]"
               r"|du|de\s+la|\d+)\b(?!\s*(?:peu|habitude|impression)\b)" + _NOT_THINGS)
_THINGS = (r"(?:garage|local|locaux|camion\w*|voiture|utilitaire|v[ée]hicule|fourgon\w*|minibus|van|salle|"
           r"jardin|terrain|cave|atelier|appartement|maison|cuisine|perceuse|outils?|machine|remorque|"
           r"(?:places?\s+de\s+)?parking|box|grenier|bureau|hangar|entrep[ôo]t|chambre|v[ée]lo)s?")
# « prête à aider », « prêt pour donner un coup de main »: ready, not a loan (« je la prête à
# l'association », « je prête à mes voisins ma perceuse » are).
_READY = r"(?!\s+(?:[àa]|pour)\s+(?:s['’]|se\s+|me\s+|m['’])?\w+(?:er|ir|re)\b)"
_OFFERS = re.compile(
    r"\b" + _HAVE + _ADVERB + r"\s*" + _DETERMINER
    + r"|\b(?:i|we)\s+(?:have|own)(?:\s+got)?\s+(?:a|an|my|our|two|\d+)\b"
    r"|\bacc[èe]s\s+[àa]\s+(?:un|une|des|mon|ma|la|le|l['’])"
    r"|\b(?:suis|est|sont|[êe]tre)\s+v[ée]hicul[ée]"
    r"|\b(?:titulaire|propri[ée]taire)\s+(?:d['’]|de|du|des)\b"
    r"|(?<!suis\s)(?<!est\s)(?<!sont\s)(?<!sommes\s)(?<!serai\s)(?<!serais\s)"
    r"\bpr[êe]t(?:er|e|es|erai|erais|erait|erons)\b(?!\s+main\b)" + _READY
    + r"|\b(?:mets?|mettre)\s+[àa]\s+dispo(?:sition)?\b"
    r"|\b(?:mon|ma|mes|notre|nos)\s+" + _THINGS + r"(?:\s+\w+)?\s+(?:est|sont)\s+(?:dispo\w*|libres?)\b",
    re.IGNORECASE)


def offers(statement: str) -> bool:
    """Whether a statement says the person has or lends something: what answers a need for a
    resource. « J'ai été caissière » or « je fais la cuisine » do not."""
    return bool(_OFFERS.search(statement))
