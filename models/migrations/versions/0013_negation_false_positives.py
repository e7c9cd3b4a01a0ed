"""statements about "une personne" or saying "pas de souci" are not negations

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04

The analysis took two kinds of statements for negations, which are kept for the record but never
matched: any with the word "personne" even without "ne" ("je garde une personne âgée le
week-end"), and any with a reassurance ("pas de souci pour cuisiner pour quarante", "aucun
problème", "no problem"). The statements stored as negated for those reasons alone are cleared
here, with the analysis' rule as of this revision (copied: a migration stays as it was written)
over the words of the stored normalised text; their residents' ranker artefacts are deleted, so
the next start of the service rebuilds them (and records the index events) with the statements in.
"""
from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

_NEGATORS = {"pas", "jamais", "aucun", "aucune", "rien", "personne", "guère", "not", "never", "n't",
             "cannot", "can't", "don't", "no"}
_NE = {"ne", "n'"}
_TROUBLES = {"problème", "problèmes", "probleme", "problemes", "problem", "problems", "souci", "soucis",
             "stress"}
_WORDS = re.compile(r"n't|\w+'|\w+")


def _without_reassurances(words: list[str]) -> list[str]:
    dropped: set[int] = set()
    for i, w in enumerate(words):
        if w not in _NEGATORS:
            continue
        j = i + 2 if words[i + 1:i + 2] in (["de"], ["d'"]) else i + 1
        if j < len(words) and words[j] in _TROUBLES:
            dropped.update(range(i, j + 1))
            for k in range(i - 1, max(i - 4, -1), -1):  # its "ne", up to three words before
                if words[k] in _NE:
                    dropped.add(k)
                    break
    return [w for k, w in enumerate(words) if k not in dropped]


def _negated(norm: str) -> bool:
    """matcher.analysis._is_negated of this revision, over the words of a normalised statement."""
    words = _without_reassurances(_WORDS.findall(norm.lower().replace("’", "'")))
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
    rows = bind.execute(sa.text(
        "SELECT id, resident_id, norm FROM skillstatement WHERE negated = :yes AND ("
        + " OR ".join(f"lower(norm) LIKE '%{word}%'" for word in ("personne", "probl", "souci", "stress"))
        + ")"), {"yes": True}).all()
    cleared = [(i, resident) for i, resident, norm in rows if not _negated(norm or "")]
    if not cleared:
        return
    bind.execute(sa.text("UPDATE skillstatement SET negated = :no WHERE id = :id"),
                 [{"id": i, "no": False} for i, _ in cleared])
    bind.execute(sa.text("DELETE FROM hybridartefact WHERE collection = 'residents' AND doc_id = :doc"),
                 [{"doc": resident} for resident in sorted({r for _, r in cleared})])


def downgrade() -> None:
    # The flags cleared were wrong: nothing to put back.
    pass
