"""Spot sensitive personal data in free text before it is saved (CNIL's rule for free-text notes).

Social workers type what residents say. The CNIL asks that free-text fields hold no data on
health, religion or beliefs, ethnic or racial origin, offences and convictions, or sex life and
orientation, unless strictly necessary. This module does not judge: it points at the words so
the worker can rephrase ("elle cuisine pour l'Aïd" can become "elle cuisine pour les fêtes").
The word lists are general French vocabulary, matched on accent-folded word starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from matcher.analysis import fold_accents

# Category → word stems (accent-folded, lower case). A stem matches a word that starts with it,
# so "diabet" finds "diabète", "diabétique"; short stems are whole words only (see _WHOLE).
SENSITIVE_STEMS: dict[str, tuple[str, ...]] = {
    "health": (
        "malad", "diabet", "cancer", "handicap", "invalidit", "depress", "psychiatr", "psycholog",
        "schizophr", "bipolair", "autis", "alzheimer", "vih", "sida", "seropositi", "hepatit",
        "enceinte", "grossesse", "fausse couche", "avortement", "ivg", "chimio", "dialyse",
        "hopital", "hospitalis", "traitement medical", "medicament", "addiction", "alcooli",
        "toxicoman", "drogue", "epilep", "asthm", "infirmite", "tuberculos", "mdph", "aah",
        "arret maladie", "burn-out", "burnout",
    ),
    "religion": (
        "musulman", "islam", "chretien", "catholique", "protestant", "evangeli", "juif", "juive",
        "judaism", "bouddhis", "hindou", "mosquee", "eglise", "synagogue", "ramadan", "aid",
        "careme", "voile", "hijab", "kippa", "priere", "religi", "croyant", "athee", "imam",
        "pretre", "pasteur", "rabbin", "temoin de jehovah",
    ),
    "origin": (
        "ethni", "race", "racial", "couleur de peau", "noir de peau", "sans-papiers",
        "sans papiers", "clandestin", "irregulier", "titre de sejour", "refugie", "demandeur d'asile",
        "demandeuse d'asile", "cada", "oqtf", "naturalis",
    ),
    "justice": (
        "prison", "incarcer", "detenu", "detention", "condamn", "casier judiciaire", "delit",
        "crime", "garde a vue", "bracelet electronique", "sursis", "tribunal", "proces", "plainte",
        "spip", "probation", "travaux d'interet general", "tig",
    ),
    "sexuality": (
        "homosexu", "lesbienne", "gay", "bisexu", "transgenre", "trans", "lgbt", "orientation sexuelle",
        "vie sexuelle", "prostitu",
    ),
    "politics_union": (
        "syndiqu", "syndicat", "parti politique", "militant politique",
    ),
}
# Stems this short match whole words only ("aid" must not flag "aide", "trans" not "transport").
_WHOLE = {stem for stems in SENSITIVE_STEMS.values() for stem in stems if len(stem) <= 5}


@dataclass(frozen=True)
class Finding:
    category: str  # health, religion, origin, justice, sexuality, politics_union
    words: tuple[str, ...]  # as written in the text


def _pattern(stem: str) -> re.Pattern[str]:
    tail = r"\b" if stem in _WHOLE else r"\w*"
    return re.compile(r"\b" + re.escape(stem) + tail)


_PATTERNS = {category: [_pattern(stem) for stem in stems]
             for category, stems in SENSITIVE_STEMS.items()}


def find_sensitive(text: str) -> list[Finding]:
    """Sensitive words in `text`, by category (empty when there is nothing to point at)."""
    folded = fold_accents(text).lower()
    if len(folded) != len(text):  # folding changed offsets (ligatures…): fall back to folded words
        text = folded
    findings = []
    for category, patterns in _PATTERNS.items():
        words: dict[str, None] = {}
        for pattern in patterns:
            for match in pattern.finditer(folded):
                words[text[match.start():match.end()]] = None
        if words:
            findings.append(Finding(category, tuple(words)))
    return findings
