#!/usr/bin/env python3
"""Deterministic synthetic residents and needs for benchmarks (never real people, never eval data).

    python scripts/generate.py --residents 10000 --out /tmp/relais-10k   # residents.jsonl, needs.jsonl
    python scripts/generate.py --residents 1000 --needs 50 --seed 7 --out -   # JSONL on stdout

Every record is drawn from its own random stream, seeded by (seed, kind, index): resident 42 is the
same whether 1,000 or 1,000,000 are generated, and a million can be streamed without holding them.

A resident has a pseudonymous first name and initial, a territory, languages, availability slots,
wants, and a declaration of about five statements in their own words. Statements are composed from
combinable fragments: a skill (twenty domains, each with several ways of saying it and the
objects it applies to) x a context (where, for whom, since when) x a phrasing (opener, tense,
experience) x a register (written French, spoken French, SMS spelling, English, French mixed with
English), plus statements about languages, availability, wishes and, now and then, what the person
cannot do ("je sais pas conduire"). Needs (skills and resources: a room, a van, tables) are composed
the same way from the same domains, so a need has residents that fit it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

SIZES = {"1k": 1_000, "10k": 10_000, "100k": 100_000, "1m": 1_000_000}
AVAILABILITY = ("weekday_morning", "weekday_afternoon", "weekday_evening", "weekend")
WANTS = ("volunteering", "training", "job", "activity")
REGISTERS = ("written", "spoken", "sms", "english", "mixed")
# Share of residents writing in each register (a declaration mixes its main register with others).
REGISTER_WEIGHTS = (0.38, 0.27, 0.17, 0.08, 0.10)

T = TypeVar("T")

_NAMES = (
    "Aïcha Fatima Khadija Nadia Samira Leïla Yasmina Malika Zohra Houria Naïma Rachida Soraya Amel "
    "Mariam Aminata Fatoumata Awa Kadiatou Bintou Mariama Hawa Salimata Coumba Nafissatou Ramata "
    "Zaïnaba Faïza Anchati Soilihi Djamila Sabrina Sonia Maria Ana Joana Rosa Lurdes Fernanda Irina "
    "Olena Svetlana Elif Ayşe Zeynep Hatice Emine Linh Mai Thu Sophie Nathalie Isabelle Sandrine "
    "Christine Martine Monique Josiane Brigitte Chantal Céline Julie Manon Inès Lina Sarah Yasmine "
    "Mohamed Ahmed Karim Rachid Mourad Samir Youssef Brahim Mustapha Abdelkader Hamid Nordine Bilal "
    "Moussa Mamadou Ibrahima Ousmane Boubacar Seydou Abdoulaye Issa Cheikh Modibo Amadou Souleymane "
    "Said Ali Mkouboi Ibrahim José Manuel João Carlos António Paulo Mehmet Mustafa Hüseyin Emre "
    "Vasile Ion Dmitri Thanh Minh Patrick Jean-Pierre Michel Alain Bernard Gérard Thierry Pascal "
    "Didier Franck Kévin Dylan Théo Lucas Hugo Enzo Rayan Adam Nassim Ilyes Wassim Sofiane"
)
FIRST_NAMES = tuple(_NAMES.split(" "))
INITIALS = "ABCDEFGHIJKLMNOPRSTVYZ"

NEIGHBOURHOODS = (
    "Les Tilleuls", "La Source", "Les Acacias", "Le Mas du Taureau", "Les Hauts de Sèvre",
    "La Croix-Rouge", "Bellevue", "Les Minguettes", "Le Val Fourré", "La Grande Borne",
    "Les Courtillières", "Le Mirail", "Les Quartiers Nord", "La Duchère", "Les Pyramides",
    "Le Clos Saint-Lazare", "Les Bosquets", "La Paillade", "Kervénanec", "Le Neuhof",
    "Bourg de Vaux", "Le Vieux Bourg", "Les Chênes", "La Roseraie", "Saint-Jacques",
)
COMMUNES = (
    "Saint-Aubin-sur-Loire", "Villeneuve-la-Rivière", "Montreuil-les-Vignes", "Vaux-les-Prés",
    "Bagnols-du-Lac", "Roche-sur-Vallée", "Port-Saint-Martin", "Fontaine-aux-Bois",
)
# Territories: neighbourhood x commune; the index is what a resident or need refers to.
TERRITORIES: list[dict[str, Any]] = [
    {"key": f"t{i:02d}", "name": NEIGHBOURHOODS[i % len(NEIGHBOURHOODS)],
     "commune": COMMUNES[(i * 3) % len(COMMUNES)],
     "qpv_code": None if NEIGHBOURHOODS[i % len(NEIGHBOURHOODS)].startswith(("Bourg", "Le Vieux"))
     else f"QN0{45 + i % 50:02d}{100 + i:03d}",
     "latitude": round(44.0 + (i * 37 % 100) / 25.0, 4), "longitude": round(-1.0 + (i * 53 % 100) / 20.0, 4)}
    for i in range(40)
]

LANGUAGES: dict[str, tuple[str, str, int]] = {  # code: (French name, English name, weight)
    "fr": ("français", "French", 0), "ar": ("arabe", "Arabic", 30), "ber": ("kabyle", "Kabyle", 8),
    "wo": ("wolof", "Wolof", 6), "bm": ("bambara", "Bambara", 6), "ff": ("peul", "Fula", 4),
    "sw": ("comorien", "Comorian", 4), "pt": ("portugais", "Portuguese", 8),
    "es": ("espagnol", "Spanish", 6), "tr": ("turc", "Turkish", 6), "ro": ("roumain", "Romanian", 4),
    "ru": ("russe", "Russian", 3), "uk": ("ukrainien", "Ukrainian", 3), "vi": ("vietnamien", "Vietnamese", 2),
    "en": ("anglais", "English", 12), "it": ("italien", "Italian", 3), "ln": ("lingala", "Lingala", 3),
}


@dataclass(frozen=True)
class Domain:
    """One kind of skill: ways of saying it (French and English), past jobs, the needs it meets."""

    key: str
    fr: tuple[tuple[str, tuple[str, ...]], ...]  # (first-person verb, objects it takes)
    en: tuple[tuple[str, tuple[str, ...]], ...]
    jobs: tuple[str, ...]  # a past job in the domain ("j'ai été {job}")
    need_titles: tuple[str, ...]
    need_tasks: tuple[str, ...]  # "nous cherchons quelqu'un pour {task}"


def _d(key: str, fr: str, en: str, jobs: str, titles: str, tasks: str) -> Domain:
    """A domain from compact text: phrasings 'verb: object | object; verb: …', lists split on ';'."""
    def pairs(text: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
        out = []
        for item in text.split(";"):
            verb, objects = item.split(":")
            out.append((verb.strip(), tuple(o.strip() for o in objects.split("|"))))
        return tuple(out)
    return Domain(key, pairs(fr), pairs(en), tuple(j.strip() for j in jobs.split(";")),
                  tuple(t.strip() for t in titles.split(";")), tuple(t.strip() for t in tasks.split(";")))


DOMAINS = (
    _d("cuisine", "je cuisine: pour quarante personnes | pour les grandes familles | africain | marocain;"
       "je fais: le couscous et les pastillas | le mafé et le yassa | des gâteaux pour les fêtes | "
       "des grandes marmites de tiep | les börek et les dolma | la cuisine créole;"
       "je prépare: des repas pour les mariages | des plats végétariens | des buffets",
       "I cook: for big groups | West African dishes | for weddings; I bake: cakes | bread",
       "cuisinière en collectivité; commis de cuisine; traiteur",
       "Repas de la fête de quartier; Cuisine pour le repas solidaire; Atelier cuisine du monde",
       "préparer un repas pour cinquante personnes; animer un atelier cuisine avec des familles;"
       "tenir la cuisine du café associatif"),
    _d("couture", "je couds: des robes et des rideaux | à la machine | des costumes | des boubous;"
       "je retouche: les ourlets | les pantalons | les vêtements des voisins;"
       "je tricote: des pulls pour l'hiver | des bonnets | pour les bébés",
       "I sew: clothes | curtains | on a machine; I knit: jumpers | hats",
       "couturière; retoucheuse; mécanicienne en confection",
       "Atelier couture; Costumes du spectacle; Repair café couture",
       "coudre les costumes du spectacle de fin d'année; animer un atelier retouches;"
       "réparer des vêtements pour la vestiboutique"),
    _d("mecanique", "je répare: les voitures | les mobylettes et les scooters | les vélos |"
       " les machines à laver;"
       "je bricole: les moteurs | les tondeuses | un peu de tout;"
       "je fais: la vidange des voitures | l'entretien des vélos",
       "I fix: cars | bikes | engines; I repair: washing machines | scooters",
       "mécanicien; garagiste; réparateur électroménager",
       "Atelier vélo participatif; Réparation de vélos; Entretien des véhicules",
       "réparer les vélos donnés à l'association; aider à l'atelier vélo le samedi;"
       "faire l'entretien de la camionnette"),
    _d("traduction", "je traduis: les papiers pour les voisins | les courriers de l'école |"
       " pour les nouveaux arrivants;"
       "je sers d'interprète: à la mairie et à la CAF | chez le médecin | pour les familles",
       "I translate: documents | letters; I interpret: for neighbours | at the doctor's",
       "interprète; médiatrice; traductrice",
       "Interprétariat pour l'accueil; Traduction de documents; Permanence accueil des familles",
       "traduire pour les familles à l'accueil; accompagner des personnes à la préfecture;"
       "traduire le livret d'accueil"),
    _d("enfants", "je garde: les enfants du quartier | des petits le mercredi | les bébés de ma sœur;"
       "j'aide: aux devoirs des collégiens | mes neveux à lire;"
       "je m'occupe: des enfants à la sortie de l'école | d'un groupe de petits",
       "I look after: children | babies; I help: kids with homework",
       "assistante maternelle; animatrice; auxiliaire de puériculture",
       "Accompagnement à la scolarité; Garde d'enfants pendant l'atelier; Aide aux devoirs",
       "aider des enfants à faire leurs devoirs; garder les enfants pendant les cours de français;"
       "animer le mercredi après-midi"),
    _d("jardin", "je jardine: sur mon balcon | dans un jardin ouvrier;"
       " je fais pousser: des tomates et des courgettes |"
       " des plantes aromatiques | des légumes; je taille: les haies | les arbres fruitiers | les rosiers",
       "I grow: vegetables | herbs; I garden: in an allotment | every weekend",
       "jardinier; ouvrier agricole; paysagiste",
       "Jardin partagé; Potager de l'école; Entretien des espaces verts",
       "lancer le potager du jardin partagé; apprendre à des enfants à planter;"
       "entretenir les bacs de la résidence"),
    _d("batiment", "je fais: de la peinture | du carrelage | de la plomberie | de l'électricité | du placo;"
       "je refais: les salles de bain | les cuisines; je pose: du parquet | des étagères | du papier peint",
       "I do: painting | plumbing | tiling; I build: walls | shelves",
       "maçon; peintre en bâtiment; plombier; électricien",
       "Rénovation du local; Chantier participatif; Peinture de la salle",
       "repeindre la salle commune; poser du carrelage dans la cuisine du local;"
       "aider au chantier participatif du tiers-lieu"),
    _d("coiffure", "je coiffe: les femmes du quartier | les enfants | les mariées;"
       "je fais: des tresses africaines | les coupes homme | des chignons pour les mariages;"
       "je tresse: les cheveux | les petites filles",
       "I do: hair | braids | haircuts; I cut: hair | men's hair",
       "coiffeuse; barbier; esthéticienne",
       "Journée coiffure solidaire; Atelier beauté; Coupe de cheveux à l'épicerie solidaire",
       "coiffer des personnes lors de la journée solidaire; animer un atelier tresses;"
       "faire des coupes pour des jeunes avant un entretien"),
    _d("numerique", "je m'y connais: en ordinateur | en téléphone | en internet;"
       "j'aide: les gens avec leur téléphone | pour les démarches en ligne;"
       "je sais utiliser: Excel et Word | les réseaux sociaux; je répare: les ordinateurs | les téléphones",
       "I help: people with smartphones | with online forms; I'm good: with computers | with Excel",
       "technicien informatique; vendeur en téléphonie; secrétaire",
       "Permanence numérique; Aide aux démarches en ligne; Atelier smartphone",
       "aider les habitants à faire leurs démarches en ligne; animer un atelier smartphone;"
       "réparer les ordinateurs donnés"),
    _d("musique", "je joue: du oud | de la guitare | des percussions | du djembé | du violon;"
       "je chante: dans une chorale | aux fêtes | des chansons kabyles;"
       "je fais: de la musique pour les fêtes | le DJ aux mariages",
       "I play: the guitar | drums | the violin; I sing: in a choir | at parties",
       "musicien; animateur musical; DJ",
       "Musique pour la fête de quartier; Atelier percussions; Chorale du centre social",
       "jouer de la musique à la fête d'été; animer un atelier percussions pour les jeunes;"
       "accompagner la chorale"),
    _d("sport", "j'entraîne: les petits au foot | une équipe de basket; je fais: de la boxe | du yoga |"
       " de la course à pied | de la danse; je donne des cours: de gym douce | de zumba | de danse",
       "I coach: football | boxing; I teach: dance | yoga",
       "éducateur sportif; coach; animateur sportif",
       "Foot des jeunes; Gym douce pour les seniors; Atelier danse",
       "encadrer l'équipe de foot des moins de douze ans; animer la gym douce des seniors;"
       "proposer un cours de danse aux ados"),
    _d("transport", "je conduis: un camion | un minibus | une camionnette; j'ai: le permis poids lourd |"
       " le permis B et une voiture; je fais: les déménagements | des livraisons",
       "I drive: a van | a truck | a minibus; I have: a driving licence | a car",
       "chauffeur livreur; chauffeur de bus; déménageur",
       "Chauffeur pour la collecte; Aide au déménagement; Transport des colis alimentaires",
       "conduire la camionnette pour la collecte alimentaire; aider à un déménagement;"
       "emmener des seniors faire leurs courses"),
    _d("soin", "je m'occupe: des personnes âgées | de ma mère malade | des voisins qui vivent seuls;"
       "j'accompagne: les anciens pour leurs courses | des personnes handicapées; "
       "je rends visite: aux personnes isolées | aux malades",
       "I care for: elderly people | my disabled neighbour; I help: sick people | old people",
       "aide-soignante; auxiliaire de vie; aide à domicile",
       "Visites aux personnes isolées; Accompagnement des seniors; Café des aidants",
       "rendre visite à des personnes âgées isolées; accompagner des seniors à leurs rendez-vous;"
       "animer le café des aidants"),
    _d("menage", "je fais: le ménage dans des bureaux | du repassage | le nettoyage après les fêtes;"
       "je m'occupe: de l'entretien des locaux | du linge",
       "I do: cleaning | ironing; I clean: offices | houses",
       "agent d'entretien; femme de ménage; agent de propreté",
       "Nettoyage après la fête; Entretien du local associatif; Tri à la ressourcerie",
       "aider à nettoyer la salle après la fête; entretenir le local une fois par semaine;"
       "trier les dons à la ressourcerie"),
    _d("commerce", "je tiens: une caisse | un stand | une petite boutique;"
       " je vends: sur les marchés | des vêtements;"
       "je sais gérer: les stocks | la comptabilité d'une boutique",
       "I run: a shop | a market stall; I sell: at markets | clothes",
       "vendeuse; caissière; commerçant",
       "Épicerie solidaire; Buvette de la fête; Stand au marché de Noël",
       "tenir la caisse de l'épicerie solidaire; gérer la buvette pendant la fête;"
       " vendre au stand du marché"),
    _d("animation", "j'organise: des fêtes de quartier | des sorties pour les familles |"
       " des repas entre voisins;"
       "j'anime: des jeux pour les enfants | des ateliers pour les mamans | des goûters",
       "I organise: parties | events; I run: games for kids | workshops",
       "animatrice; organisatrice d'événements; médiatrice",
       "Organisation de la fête d'été; Sorties familles; Ateliers parents-enfants",
       "organiser la fête de quartier; préparer une sortie à la mer pour les familles;"
       "animer des jeux pour les enfants"),
    _d("artisanat", "je fabrique: des bijoux | des meubles en bois | des savons | des paniers;"
       "je fais: de la poterie | de la vannerie | des tapis; je travaille: le cuir | le bois",
       "I make: jewellery | pottery | furniture; I work: with wood | with leather",
       "menuisier; ébéniste; potière; maroquinier",
       "Atelier bois; Création de mobilier pour le tiers-lieu; Atelier poterie",
       "fabriquer des bancs pour le jardin; animer un atelier poterie; réparer des meubles donnés"),
    _d("ecrit", "j'écris: des lettres pour les gens | des histoires pour les enfants;"
       "j'aide: à remplir les papiers | à faire les CV;"
       " je corrige: les dossiers administratifs | les lettres",
       "I write: letters | stories; I help: with forms | with CVs",
       "secrétaire; écrivain public; agent administratif",
       "Écrivain public; Aide aux CV; Atelier d'écriture",
       "aider des habitants à écrire leur CV; tenir une permanence d'écrivain public;"
       "animer un atelier d'écriture"),
    _d("image", "je fais: des photos | des vidéos avec mon téléphone; je filme: les mariages | les fêtes;"
       "je monte: des petits films | des clips",
       "I take: photos | pictures; I film: weddings | videos",
       "photographe; vidéaste; monteur",
       "Reportage photo de la fête; Film sur le quartier; Atelier vidéo jeunes",
       "prendre des photos pendant la fête; filmer les habitants pour un petit documentaire;"
       "apprendre à des jeunes à monter une vidéo"),
    _d("elevage", "je m'occupe: des poules | des moutons | des chèvres | des animaux de la ferme;"
       "j'élève: des abeilles | des lapins; je connais bien: les animaux | les chevaux",
       "I keep: chickens | bees; I raise: sheep | goats",
       "berger; ouvrier agricole; apiculteur",
       "Poulailler partagé; Ferme pédagogique; Ruches du jardin",
       "s'occuper du poulailler partagé; montrer les animaux aux enfants; entretenir les ruches"),
)

RESOURCES = (  # (what is lent, need title, detail)
    ("une salle", "Salle pour une réunion", "une salle de trente places avec des chaises"),
    ("une camionnette", "Camionnette pour un déménagement", "une camionnette ou un utilitaire de 12 m3"),
    ("des tables et des bancs", "Tables pour la fête", "une vingtaine de tables et des bancs"),
    ("une cuisine équipée", "Cuisine pour le repas solidaire", "une cuisine aux normes pour un après-midi"),
    ("une sono", "Sono pour la fête de quartier", "une sonorisation avec deux enceintes et un micro"),
    ("une machine à coudre", "Machines à coudre pour l'atelier", "deux ou trois machines à coudre"),
    ("des outils de jardin", "Outils pour le jardin partagé", "des bêches, des râteaux et des arrosoirs"),
    ("un vidéoprojecteur", "Vidéoprojecteur pour un ciné-débat", "un vidéoprojecteur et un écran"),
)

CONTEXTS = (
    "pour les mariages", "pour la famille", "au bled", "quand j'étais au pays", "depuis vingt ans",
    "depuis que je suis petite", "depuis toujours", "à la maison", "pour les voisins",
    "pour l'association de la mosquée", "à l'église", "pour la fête de l'école", "le week-end",
    "tous les jours", "quand on me demande", "pour les anniversaires", "pendant le ramadan",
    "à l'ancien travail", "dans mon pays", "avec ma mère", "avec mes enfants", "au foyer",
)
OPENERS = ("", "", "", "Moi ", "Alors ", "Aussi ", "Sinon ", "En fait ", "Franchement ", "Depuis longtemps ")
SPOKEN_OPENERS = ("Ben ", "Bah ", "Euh ", "Ouais ", "Moi j'dis ", "En vrai ", "Genre ")
SPOKEN_TAILS = ("", "", " quoi", " tu vois", " hein", " voilà", " un peu", " comme ça")
EN_OPENERS = ("", "", "Well, ", "Also ", "Back home ")
EN_CONTEXTS = ("for my family", "back home", "for weddings", "on weekends", "for years", "at church",
               "for the neighbours", "at my old job")
DAYS = ("le lundi", "le mardi", "le mercredi", "le jeudi", "le vendredi", "le samedi", "le dimanche",
        "le matin", "l'après-midi", "le soir", "le week-end", "pendant les vacances")
WISHES = (
    "j'aimerais transmettre ce que je sais", "je voudrais trouver un travail", "je cherche une formation",
    "j'ai envie de me rendre utile", "je veux sortir de chez moi", "je voudrais rencontrer du monde",
    "j'aimerais bien faire du bénévolat", "je voudrais passer un diplôme", "je cherche un stage",
)
CANNOT = (
    "je ne sais pas conduire", "je sais pas lire le français", "je n'ai pas de voiture",
    "je ne peux pas porter de choses lourdes", "je ne sais pas me servir d'un ordinateur",
    "je n'écris pas bien", "je ne parle pas bien anglais",
)
SMS = (  # (written, SMS) substitutions, applied in order on lowercased text
    ("je suis", "jsuis"), ("je sais", "jsais"), ("je ne ", "j "), ("je fais", "jfé"), ("je peux", "jpeu"),
    ("beaucoup", "bcp"), ("quand", "qd"), ("pour", "pr"), ("avec", "avc"), ("toujours", "tjrs"),
    ("aujourd'hui", "ajd"), ("maintenant", "mtn"), ("week-end", "we"), ("parce que", "pcq"),
    ("c'est", "c"), ("quelque", "qlq"), ("rendez-vous", "rdv"), ("aussi", "aussi"), ("vous", "vs"),
    ("très", "tré"), ("enfants", "enfts"), ("personnes", "pers"), ("qu'", "k"), ("que ", "ke "),
    ("mercredi", "mercr"), ("français", "francais"), ("ç", "c"), ("é", "e"), ("è", "e"), ("ê", "e"),
)
SPOKEN = (("je ne ", "j'"), ("je sais", "j'sais"), ("je suis", "j'suis"), ("je fais", "j'fais"),
          ("il y a", "y a"), ("je peux", "j'peux"), (" ne ", " "), ("je m'", "j'm'"))


@dataclass
class GeneratedResident:
    key: str
    first_name: str
    last_initial: str
    territory: str  # a TERRITORIES key
    languages: list[str]
    availability: list[str]
    wants: list[str]
    register: str
    declaration: str
    domains: list[str] = field(default_factory=list)  # what the declaration speaks of (for checks)


@dataclass
class GeneratedNeed:
    key: str
    kind: str  # "skill" or "resource"
    title: str
    description: str
    territory: str
    languages: list[str]
    availability: list[str]
    domain: str


def _rng(seed: int, kind: str, index: int) -> random.Random:
    return random.Random(f"relais:{seed}:{kind}:{index}")  # str seeds hash with SHA-512: stable


def _pick(rng: random.Random, items: Sequence[T]) -> T:
    return items[rng.randrange(len(items))]


def _substitute(text: str, table: Sequence[tuple[str, str]], rng: random.Random, rate: float) -> str:
    for written, short in table:
        if written in text and rng.random() < rate:
            text = text.replace(written, short)
    return text


def _in_register(sentence: str, register: str, rng: random.Random) -> str:
    """A French first-person sentence as written, spoken or texted."""
    if register == "spoken":
        sentence = _substitute(sentence, SPOKEN, rng, 0.8)
        if rng.random() < 0.5:
            sentence = _pick(rng, SPOKEN_OPENERS) + sentence[0].lower() + sentence[1:]
        return sentence + _pick(rng, SPOKEN_TAILS)
    if register == "sms":
        return _substitute(sentence.lower(), SMS, rng, 0.75)
    return sentence


def _capital(sentence: str) -> str:
    return sentence[0].upper() + sentence[1:]


def _skill_sentence(rng: random.Random, domain: Domain, register: str) -> str:
    if register == "english" or (register == "mixed" and rng.random() < 0.5):
        verb, objects = _pick(rng, domain.en)
        core = f"{verb} {_pick(rng, objects)}"
        tail = f" {_pick(rng, EN_CONTEXTS)}" if rng.random() < 0.6 else ""
        return f"{_pick(rng, EN_OPENERS)}{core}{tail}"
    verb, objects = _pick(rng, domain.fr)
    core = f"{verb} {_pick(rng, objects)}"
    tail = f" {_pick(rng, CONTEXTS)}" if rng.random() < 0.7 else ""
    if register == "mixed" and rng.random() < 0.5:
        tail += _pick(rng, (", I love it", ", it's my thing", ", no problem", ", easy"))
    opener = _pick(rng, OPENERS)
    sentence = f"{opener}{core[0].lower() if opener else core[0].upper()}{core[1:]}{tail}"
    return _in_register(sentence, "spoken" if register == "mixed" else register, rng)


def _experience_sentence(rng: random.Random, domain: Domain, register: str) -> str:
    job, years = _pick(rng, domain.jobs), rng.randint(2, 30)
    if register == "english":
        return f"I worked as {job} for {years} years"
    sentence = _pick(rng, (f"J'ai travaillé {years} ans comme {job}", f"J'ai été {job} pendant {years} ans",
                           f"Avant j'étais {job}", f"J'ai fait {job} {_pick(rng, ('au pays', 'en France'))}",
                           f"J'ai un diplôme de {job}"))
    return _in_register(sentence, register, rng)


def _languages_sentence(rng: random.Random, languages: list[str], register: str) -> str:
    english = register == "english"
    names = [LANGUAGES[code][1] if english else LANGUAGES[code][0] for code in languages]
    if register == "english":
        return "I speak " + " and ".join(names)
    listed = ", ".join(names[:-1]) + f" et {names[-1]}" if len(names) > 1 else names[0]
    return _in_register(f"Je parle {listed}", register, rng)


def _availability_sentence(rng: random.Random, register: str) -> str:
    if register == "english":
        return f"I am free {_pick(rng, ('on weekends', 'in the mornings', 'on Wednesdays', 'after 5pm'))}"
    return _in_register(f"Je suis {_pick(rng, ('libre', 'disponible', 'dispo'))} {_pick(rng, DAYS)}",
                        register, rng)


def _join(rng: random.Random, sentences: list[str], register: str) -> str:
    if register == "sms":
        return " ".join(s + _pick(rng, ("", "", ",", ".", " !", " :)")) for s in sentences).strip()
    out = []
    for s in sentences:
        out.append(s + _pick(rng, (".", ".", ".", "!", "…") if register == "spoken" else (".",)))
    return _pick(rng, (" ", " ", "\n")).join(out)


def resident(index: int, seed: int = 0) -> GeneratedResident:
    """The `index`-th resident of the stream `seed` (the same whatever the size asked for)."""
    rng = _rng(seed, "resident", index)
    register = rng.choices(REGISTERS, weights=REGISTER_WEIGHTS)[0]
    codes = [c for c in LANGUAGES if c != "fr"]
    spoken = ["fr"] if register != "english" or rng.random() < 0.5 else []
    spoken += rng.choices(codes, weights=[LANGUAGES[c][2] for c in codes], k=rng.choice((0, 1, 1, 2)))
    spoken = list(dict.fromkeys(spoken)) or ["en"]
    domains = rng.sample(DOMAINS, k=rng.choice((1, 2, 2, 3)))
    sentences = []
    for i in range(rng.choice((2, 3, 4, 4))):
        # Now and then a sentence in another register: people mix.
        own = register if rng.random() < 0.8 else _pick(rng, REGISTERS)
        sentences.append(_skill_sentence(rng, domains[i % len(domains)], own))
    if rng.random() < 0.55:
        sentences.insert(rng.randrange(len(sentences) + 1), _experience_sentence(rng, domains[0], register))
    extras = [lambda: _languages_sentence(rng, spoken, register),
              lambda: _availability_sentence(rng, register),
              lambda: _in_register(_capital(_pick(rng, WISHES)), register, rng),
              lambda: _in_register(_capital(_pick(rng, CANNOT)), register, rng)]
    for make, chance in zip(extras, (0.5, 0.35, 0.35, 0.12), strict=True):
        if rng.random() < chance and len(sentences) < 7:
            sentences.append(make())
    return GeneratedResident(
        key=f"r{index}", first_name=_pick(rng, FIRST_NAMES), last_initial=_pick(rng, INITIALS),
        territory=str(_pick(rng, TERRITORIES)["key"]), languages=spoken,
        availability=sorted(rng.sample(AVAILABILITY, k=rng.randint(1, 3))),
        wants=sorted(rng.sample(WANTS, k=rng.randint(1, 2))), register=register,
        declaration=_join(rng, sentences, register), domains=[d.key for d in domains])


def need(index: int, seed: int = 0) -> GeneratedNeed:
    """The `index`-th need of the stream `seed`: a skill wanted (most) or a resource lent."""
    rng = _rng(seed, "need", index)
    availability = sorted(rng.sample(AVAILABILITY, k=rng.randint(1, 2)))
    territory = str(_pick(rng, TERRITORIES)["key"])
    when = _pick(rng, ("le samedi", "en semaine", "deux soirs par semaine", "le mercredi après-midi",
                       "pendant les vacances", "un dimanche par mois", "à partir de septembre"))
    if rng.random() < 0.15:
        what, title, detail = _pick(rng, RESOURCES)
        purpose = _pick(rng, ("la fête de quartier", "un atelier", "une réunion", "un repas"))
        description = f"Nous cherchons {what} pour {purpose} {when}. Il nous faudrait {detail}."
        return GeneratedNeed(f"n{index}", "resource", title, description, territory, [], availability,
                             "resource")
    domain = _pick(rng, DOMAINS)
    who = _pick(rng, ("quelqu'un", "un ou une bénévole", "une personne du quartier", "deux habitants",
                      "une personne motivée"))
    asks = _pick(rng, ("Nous cherchons", "On cherche", "Le centre social cherche", "La coopérative recherche",
                       "L'association a besoin de"))
    parts = [f"{asks} {who} pour {_pick(rng, domain.need_tasks)} {when}."]
    if rng.random() < 0.6:
        parts.append(_pick(rng, ("Pas besoin de diplôme, l'expérience compte.",
                                 f"Une expérience comme {_pick(rng, domain.jobs)} serait un plus.",
                                 "Le matériel est fourni.", "Les frais de transport sont remboursés.",
                                 "C'est une mission bénévole de quelques heures.")))
    languages: list[str] = []
    if rng.random() < 0.25:
        languages = [rng.choices([c for c in LANGUAGES if c != "fr"],
                                 weights=[LANGUAGES[c][2] for c in LANGUAGES if c != "fr"])[0]]
        parts.append(f"Parler {LANGUAGES[languages[0]][0]} serait utile.")
    return GeneratedNeed(f"n{index}", "skill", _pick(rng, domain.need_titles), " ".join(parts), territory,
                         languages, availability, domain.key)


def residents(count: int, seed: int = 0, start: int = 0) -> Iterator[GeneratedResident]:
    """Residents `start` .. `start + count - 1` of the stream `seed`."""
    return (resident(i, seed) for i in range(start, start + count))


def needs(count: int, seed: int = 0, start: int = 0) -> Iterator[GeneratedNeed]:
    return (need(i, seed) for i in range(start, start + count))


def default_needs(residents_count: int) -> int:
    """Needs for a population: one per 20 residents, at least 20, at most 20,000."""
    return max(20, min(20_000, residents_count // 20))


def write_jsonl(records: Iterator[Any], handle: IO[str]) -> int:
    count = 0
    for record in records:
        handle.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")
        count += 1
    return count


def parse_size(text: str) -> int:
    """'100k', '1M' or a plain number."""
    return SIZES.get(text.strip().lower()) or int(text.replace("_", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--residents", type=parse_size, default=1_000, help="1k, 10k, 100k, 1M or a number")
    parser.add_argument("--needs", type=parse_size, default=None, help="default: residents / 20")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="-", help="a folder for residents.jsonl and needs.jsonl, or - "
                        "for both on stdout (residents first)")
    args = parser.parse_args(argv)
    need_count = args.needs if args.needs is not None else default_needs(args.residents)
    if args.out == "-":
        write_jsonl(residents(args.residents, args.seed), sys.stdout)
        write_jsonl(needs(need_count, args.seed), sys.stdout)
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "residents.jsonl", "w", encoding="utf-8") as handle:
        written = write_jsonl(residents(args.residents, args.seed), handle)
    with open(out / "needs.jsonl", "w", encoding="utf-8") as handle:
        written_needs = write_jsonl(needs(need_count, args.seed), handle)
    print(f"{written} residents and {written_needs} needs written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
