"""statements denying a bother or a stop ("ça ne me dérange pas de", "je n'ai jamais arrêté de")
are not negations

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04

The analysis took for refusals the negations that say yes: a bother denied ("ça ne me dérange pas
de garder des enfants", "rien ne me fait peur", "rien ne m'arrête") and a stop denied ("je n'ai
jamais arrêté de coudre", "je n'arrête pas de bricoler"); such statements were kept for the record
but never matched. The statements stored as negated that the analysis' rule of this revision
(copied: a migration stays as it was written) reads as positive, over the words of their stored
normalised text, are cleared. The ranker's own first-person pattern ("je ne sais pas", "I can't")
also left statements out of the residents' ranker artefacts that the analysis kept ("je fais pas
mal de couture", "j'ai pas de souci pour conduire"); it now defers to the analysis' rule. The
artefacts of the residents concerned by either are deleted, so the next start of the service
rebuilds them (and records the index events) with the statements in.
"""
from __future__ import annotations

import re
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

_NEGATORS = {"pas", "jamais", "aucun", "aucune", "rien", "personne", "guère", "not", "never", "n't",
             "cannot", "can't", "don't", "no"}
_NE = {"ne", "n'"}
_TROUBLES = {"problème", "problèmes", "probleme", "problemes", "problem", "problems", "souci", "soucis",
             "stress"}
_BOTHER = ("derang", "gen", "embet", "ennui", "deplai", "effrai", "effray", "decourag", "arret", "fatigu")
_ME = {"me", "m'", "nous"}
_DENIERS = {"pas", "jamais", "plus", "rien"}
_BETWEEN = {"a", "as", "avait", "aurait", *_DENIERS}
_STOP = ("arret", "cess")
_DE = {"de", "d'"}
_WORDS = re.compile(r"n't|\w+'|\w+")
_ENGLISH_NEGATION = re.compile(r"\b(?:can't|cannot|won't|\w+n't|not|never)\b", re.IGNORECASE)
# matcher.hybrid._NEGATION of the previous revision, the ranker's first-person pattern, applied to
# the statements as written; its no-licence-or-vehicle branch stays a refusal (`_NO_VEHICLE`).
_VERBS = (r"(?:sais|peux|veux|voudrais|aime|conduis|parle|connais|supporte|suis|ai|fais|"
          r"souhaite|cuisine|nage|lis|[ée]cris|bricole)")
_PATTERN = re.compile(
    r"\b(?:je\s+ne\s+|je\s+n'|j'|je\s+)" + _VERBS + r"\s+(?:pas|plus|jamais|point|rien)\b"
    r"|\b(?:je\s+ne\s+|je\s+n')" + _VERBS + r"\b[^,;.]*\b(?:pas|jamais|plus|aucun|aucune)\b"
    r"|\bi\s*(?:can't|cannot|can not|don't|do not|am not|'m not|won't|will not|never)\b",
    re.IGNORECASE)
_NO_VEHICLE = re.compile(r"\b(?:pas de|sans|no|without)\s+(?:permis|voiture|v[ée]hicule|car|"
                         r"driving licen[cs]e)\b", re.IGNORECASE)


def _fold(word: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", word) if not unicodedata.combining(ch))


def _bother_after(folded: list[str], start: int) -> int | None:
    for k in range(start, min(start + 3, len(folded))):
        word = folded[k]
        if word.startswith(_BOTHER) or (word in {"fait", "fais", "font", "ferait"}
                                        and "peur" in folded[k + 1:k + 3]):
            return k
        if word not in _BETWEEN:
            return None
    return None


def _stop_denied(folded: list[str], words: list[str], i: int) -> bool:
    for k in (i - 1, i + 1):
        after = max(i, k) + 1
        if 0 <= k < len(words) and folded[k].startswith(_STOP) and words[after:after + 1] \
                and words[after] in _DE:
            return True
    return False


def _kept(words: list[str]) -> list[str]:
    """matcher.analysis._without_reassurances of this revision."""
    dropped: set[int] = set()
    folded = [_fold(w) for w in words]

    def drop_ne_before(i: int) -> None:
        for k in range(i - 1, max(i - 4, -1), -1):
            if words[k] in _NE:
                dropped.add(k)
                return

    for i, w in enumerate(words):
        if w in _NE and words[i + 1:i + 2] and words[i + 1] in _ME:
            verb = _bother_after(folded, i + 2)
            if verb is not None:
                dropped.add(i)
                dropped.update(k for k in range(i + 2, min(verb + 2, len(words))) if words[k] in _DENIERS)
                if i and words[i - 1] == "rien":
                    dropped.add(i - 1)
        elif w in _NEGATORS:
            j = i + 2 if words[i + 1:i + 2] in (["de"], ["d'"]) else i + 1
            if j < len(words) and words[j] in _TROUBLES:
                dropped.update(range(i, j + 1))
                drop_ne_before(i)
        if w in _DENIERS and _stop_denied(folded, words, i):
            dropped.add(i)
            drop_ne_before(i - 1 if i and folded[i - 1].startswith(_STOP) else i)
    return [w for k, w in enumerate(words) if k not in dropped]


def _negated(norm: str) -> bool:
    """matcher.analysis._is_negated of this revision, over the words of a normalised statement."""
    words = _kept(_WORDS.findall(norm.lower().replace("’", "'")))
    has_ne = any(w in _NE for w in words)
    for i, w in enumerate(words):
        following = words[i + 1] if i + 1 < len(words) else ""
        if w == "pas" and following == "mal":
            continue
        if w == "personne" and not has_ne:
            continue
        if w in _NEGATORS:
            return True
        if w == "plus" and has_ne:
            return True
    return has_ne and "que" not in words and "qu'" not in words


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, resident_id, text, norm, negated FROM skillstatement")).all()
    # Since session 21 a statement without a licence or a vehicle is stored negated (the ranker's
    # rule, one decision): not a negation that says yes, whenever this runs again.
    cleared = [(i, resident) for i, resident, text, norm, negated in rows
               if negated and not _negated(norm or "") and not _NO_VEHICLE.search(text or "")]
    # Kept by the analysis, left out by the ranker's pattern, now kept by both.
    uncovered = {resident for _i, resident, text, _norm, negated in rows
                 if not negated and _PATTERN.search(text or "") and not _NO_VEHICLE.search(text or "")
                 and not _negated(text or "") and not _ENGLISH_NEGATION.search(text or "")}
    if cleared:
        bind.execute(sa.text("UPDATE skillstatement SET negated = :no WHERE id = :id"),
                     [{"id": i, "no": False} for i, _ in cleared])
    stale = sorted(uncovered | {r for _, r in cleared})
    if stale:
        bind.execute(sa.text("DELETE FROM hybridartefact WHERE collection = 'residents' AND doc_id = :doc"),
                     [{"doc": resident} for resident in stale])


def downgrade() -> None:
    # The flags cleared were wrong: nothing to put back.
    pass
