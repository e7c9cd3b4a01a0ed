"""Skill categories of statements, for the impact dashboard's counts.

A statement's category is worked out once, when the statement is written (the column
`SkillStatement.category`), so the dashboard counts in SQL instead of reading and categorising every
current statement on each view (196 s for 453,000 statements before).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from flask_babel import lazy_gettext as _l

from models.tables import fold

# A general French lexicon of everyday know-how, by category: word beginnings (accents removed),
# "=word" for a whole word only, and "a b" for two words in a row. Written from ordinary French
# usage (home, family, neighbours, trades), not from any benchmark's queries. A statement goes to
# the category with the most distinct entries found; ties go to the earlier category.
CATEGORIES: tuple[tuple[str, object, tuple[str, ...]], ...] = (
    ("cuisine", _l("Cuisine"), (
        "cuisin", "cuistot", "recette", "repas", "patiss", "gateau", "traiteur", "couscous", "tajine",
        "boulang", "crepe", "confiture", "marmite", "epluch", "cantine", "restaura", "barbecue",
        "pizza", "biscuit", "epice", "buffet", "banquet", "=cuire", "=cuit", "=pain", "=plats", "=mafe",
        "=yassa", "brioche", "beignet", "=four", "=soupe", "=sauce", "=menu")),
    ("couture", _l("Couture, tricot"), (
        "coud", "cousu", "cousai", "=cous", "coutur", "retouche", "ourlet", "tricot", "crochet",
        "broder", "broderie", "tissu", "textile", "tailleur", "=boubou", "=boubous", "repriser",
        "raccommod", "laine", "mercerie", "vetement", "=patron", "=patrons", "machine a coudre")),
    ("langues", _l("Langues, interprétariat"), (
        "tradu", "interpret", "=langue", "=langues", "bilingue", "trilingue", "alphabetis", "=fle",
        "=arabe", "=anglais", "=espagnol", "=wolof", "tamazight", "berbere", "kabyle", "=turc",
        "portugais", "bambara", "soninke", "lingala", "roumain", "=russe", "ukrainien", "chinois",
        "tamoul", "persan", "=dari", "pachto", "kurde", "comorien", "=peul", "somali", "tigrigna",
        "italien", "allemand", "=parle", "=parler", "signes")),
    ("bricolage", _l("Bricolage, mécanique"), (
        "bricol", "mecani", "repar", "plomb", "electric", "electricit", "enduit", "platre", "carrel",
        "menuis", "soud", "garage", "moteur", "meuble", "maconn", "outil", "perceuse", "renov",
        "charpent", "serrur", "vitrier", "toiture", "isolation", "depann", "chantier", "batiment",
        "repeindre", "tapisser", "papier peint", "montage", "=monter")),
    ("numerique", _l("Numérique"), (
        "ordinateur", "informati", "internet", "numeri", "smartphone", "tablette", "logiciel",
        "=web", "program", "excel", "=word", "bureautique", "reseaux sociaux", "=mail", "=mails",
        "e-mail", "courriel", "=wifi", "appli", "whatsapp", "facebook", "instagram", "tiktok",
        "=pc", "clavier", "imprimante", "site internet")),
    ("enfance", _l("Enfance, éducation"), (
        "enfant", "=devoirs", "=garder", "garde d", "baby", "nounou", "scolaire", "ecole", "eleve",
        "educat", "enseign", "professeu", "=cours", "periscolaire", "creche", "bebe", "=jeunes",
        "adolescent", "=ados", "colonie", "pedagog", "college", "lycee", "maternelle", "=maths",
        "lecture", "=lire", "soutien")),
    ("soin", _l("Soin, aide à la personne"), (
        "soin", "soign", "infirm", "malade", "personnes agees", "personne agee", "=agees", "vieux",
        "vieille", "handicap", "aidant", "accompagn", "domicile", "toilette", "=courses", "massage",
        "ecoute", "visite", "pharmac", "medic", "secour", "aide a la personne", "auxiliaire",
        "grand-mere", "grand-pere", "=voisins", "=voisines")),
    ("menage", _l("Ménage, entretien"), (
        "menage", "nettoy", "repass", "=lessive", "=linge", "proprete", "aspirateur", "serpill",
        "entretien des locaux", "=laver", "lavage", "vitres")),
    ("jardinage", _l("Jardinage, nature"), (
        "jardin", "potager", "=plante", "=plantes", "planter", "plantation", "legume", "semis",
        "=semer", "semence", "fleur", "arros", "compost", "=tailler", "=haie", "=haies", "tondre",
        "tonte", "pelouse", "agricult", "=ferme", "elevage", "poule", "maraich", "verger", "arbre",
        "recolte", "permaculture", "apicult", "abeille", "=terre")),
    ("art", _l("Art, musique, spectacle"), (
        "music", "=chante", "=chanter", "=chant", "=chants", "chanson", "chanteu", "chorale",
        "=danse", "=danser", "danseu", "guitar", "piano", "violon", "tambour", "percussion",
        "darbouk", "djembe", "instrument", "dessin", "peint", "theatre", "photo", "sculpt",
        "poterie", "ceramique", "artist", "=art", "=arts", "calligraph", "poesie", "poeme", "conte",
        "=slam", "=rap", "=dj", "cinema", "=film", "=films", "decor", "spectacle", "henne")),
    ("transport", _l("Transport, conduite"), (
        "conduire", "conduis", "conducteur", "conductrice", "chauffeur", "=permis", "voiture",
        "camion", "=van", "vehicule", "utilitaire", "livraison", "livreu", "=livrer", "demenag",
        "transport", "minibus", "=bus", "=moto", "scooter", "covoitur", "trajet", "=velo", "=velos")),
    ("administratif", _l("Démarches, administratif"), (
        "papiers", "administ", "dossier", "formulaire", "=caf", "impot", "courrier", "=lettre",
        "=lettres", "ecrivain public", "compta", "budget", "gestion", "secretar", "accueil", "=cv",
        "demarche", "classement", "archiv", "tresor", "facture", "mairie", "france travail",
        "pole emploi", "juridique", "=droits", "banque")),
    ("sport", _l("Sport"), (
        "sport", "=foot", "football", "basket", "=boxe", "natation", "=nager", "=courir", "=gym",
        "fitness", "=yoga", "entraineu", "entrainer", "=coach", "arbitr", "randonn", "musculation",
        "karate", "judo", "handball", "volley")),
    ("commerce", _l("Commerce, vente"), (
        "=vente", "=vendre", "vendeu", "=caisse", "caissier", "caissiere", "commerc", "boutique",
        "magasin", "=marche", "=marches", "brocante", "stock", "inventaire")),
)
OTHER = "autre"
OTHER_LABEL = _l("Autres savoir-faire")

_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def _lookups() -> tuple[dict[str, list[tuple[int, int]]], dict[str, list[tuple[int, int]]],
                        list[tuple[int, int, str]]]:
    """The lexicon as look-ups: word beginnings, whole words, and pairs of words, each entry
    (category, entry) so that an entry found by several words counts once."""
    prefixes: dict[str, list[tuple[int, int]]] = {}
    words: dict[str, list[tuple[int, int]]] = {}
    phrases: list[tuple[int, int, str]] = []
    for c, (_key, _label, entries) in enumerate(CATEGORIES):
        for e, entry in enumerate(entries):
            if " " in entry:
                phrases.append((c, e, f" {entry}"))
            elif entry.startswith("="):
                words.setdefault(entry[1:], []).append((c, e))
            else:
                prefixes.setdefault(entry, []).append((c, e))
    return prefixes, words, phrases


_PREFIXES, _WORDS, _PHRASES = _lookups()
_LONGEST = max(len(p) for p in _PREFIXES)


def categorise(text: str, lemmas: Iterable[str] = ()) -> str:
    """The skill category of one statement (its words and lemmas), or OTHER: the category with
    the most distinct entries found, ties to the earlier one."""
    words = _WORD.findall(fold(text).replace("'", " ").replace("’", " "))
    tokens = set(words) | {fold(lemma) for lemma in lemmas}
    joined = " " + " ".join(words) + " "
    found: set[tuple[int, int]] = set()
    for token in tokens:
        found.update(_WORDS.get(token, ()))
        for end in range(1, min(len(token), _LONGEST) + 1):
            found.update(_PREFIXES.get(token[:end], ()))
    found.update((c, e) for c, e, phrase in _PHRASES if phrase in joined)
    hits = [0] * len(CATEGORIES)
    for c, _e in found:
        hits[c] += 1
    best = max(range(len(CATEGORIES)), key=lambda c: (hits[c], -c))
    return CATEGORIES[best][0] if hits[best] else OTHER


def category_labels() -> dict[str, str]:
    return {key: str(label) for key, label, _entries in CATEGORIES} | {OTHER: str(OTHER_LABEL)}
