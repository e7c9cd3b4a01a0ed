"""statements saying only when or on what terms (« disponible le samedi », « il me faut un
salaire ») are no skills

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07

The analysis kept as skill statements the clauses that only say when a person can come, how they
get there or on what terms (« je suis disponible le samedi matin », « il faut que ce soit à pied ou
en bus », « il me faut un salaire »); they paired best with any need saying when it happens, or
naming a bus. The stored statements (not negated, naming no language) that the rule of this
revision (copied: a migration stays as it was written) reads as such, over the words of their
normalised text, are deleted, residents' and needs' (titles stay); the ranker artefacts of the
residents concerned, and of the needs with such a sentence among their segments, are deleted, so
the next start of the service rebuilds them without those words; an index event for each resident
and need concerned has every process's statement index forget the deleted statements' vectors.
The declarations and the needs keep their texts.
"""
from __future__ import annotations

import io
import json
import re
import unicodedata
from datetime import datetime, timezone
from typing import Any

import numpy as np
import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

_ANCHORS = frozenset("""
    disponible disponibles dispo dispos libre libres available free
    lundi mardi mercredi jeudi vendredi samedi dimanche lundis mardis mercredis jeudis vendredis samedis
    dimanches matin matins matinee matinees soir soirs soiree soirees apres midi nuit nuits semaine semaines
    week weekend weekends vacances horaires heures monday tuesday wednesday thursday friday saturday sunday
    mornings evenings weekdays mondays tuesdays wednesdays thursdays fridays saturdays sundays
    faut faudrait salaire salaires paye payee payes payees remunere remuneree
    remuneration smic pied bus tram tramway metro deplace deplacer deplacements""".split())
_WORDS = _ANCHORS | frozenset("""
    je j me m moi nous on il elle vous i am we are in at the and or every all only
    suis es est sommes etes sont serai sera serez serons seront etre soit sois soient ai avons
    peux peut pouvons pouvez pourrai pourrais pourrait venir passer
    que qu ce c ca un une des le la l les de du d en a au aux ou et mais pendant partir jusqu
    tous toutes tout toute chaque par fois jour jours journee journees demi temps plein partiel
    scolaires seulement uniquement surtout aussi plutot sauf souvent parfois generalement debut fin
    mois entre tot tard end morning evening afternoon afternoons
    pres proche chez maison quartier domicile loin transports commun contrat declare declaree cdi cdd
    travail emploi cherche cherches cherchons cherchez recherche recherchons recherchez personne personnes
    benevole benevoles volontaire volontaires possible possibles frequence duree disponibilite disponibilites
    horaire creneau creneaux h plupart""".split())


def _circumstance(text: str) -> bool:
    """matcher.analysis.circumstance of this revision."""
    words = ["".join(ch for ch in unicodedata.normalize("NFKD", w) if not unicodedata.combining(ch))
             for w in re.findall(r"[^\W\d_]+", text.lower())]
    return any(w in _ANCHORS for w in words) and all(w in _WORDS for w in words)


def _no_language(languages: Any) -> bool:
    """The JSON column as a driver returns it: text (SQLite) or a list (PostgreSQL)."""
    return not (json.loads(languages) if isinstance(languages, str) else languages)


def _segments(blob: bytes) -> list[str]:
    """The normalised segments (row 0, the title, first) of a stored ranker artefact: npz, as
    written at this revision, or the later format (magic, header length, JSON header), met on a
    database downgraded below this revision and upgraded again."""
    if blob[:4] == b"RLA1":
        return list(json.loads(blob[8:8 + int.from_bytes(blob[4:8], "little")])["texts"]["segments"])
    with np.load(io.BytesIO(blob)) as data:
        return list(json.loads(data["texts"].tobytes().decode())["segments"])


def upgrade() -> None:
    bind = op.get_bind()
    skills = [(i, resident) for i, resident, norm, languages in bind.execute(sa.text(
        "SELECT id, resident_id, norm, languages FROM skillstatement WHERE negated = :no"), {"no": False}).all()
        if _no_language(languages) and _circumstance(norm or "")]
    needs = [(i, need) for i, need, norm in bind.execute(sa.text(
        "SELECT id, need_id, norm FROM needstatement WHERE is_title = :no"), {"no": False}).all()
        if _circumstance(norm or "")]
    residents = sorted({resident for _, resident in skills})
    if skills:
        bind.execute(sa.text("DELETE FROM skillstatement WHERE id = :id"), [{"id": i} for i, _ in skills])
        bind.execute(sa.text("DELETE FROM hybridartefact WHERE collection = 'residents' AND doc_id = :doc"),
                     [{"doc": resident} for resident in residents])
    if needs:
        bind.execute(sa.text("DELETE FROM needstatement WHERE id = :id"), [{"id": i} for i, _ in needs])
    stale: set[int] = set()
    last = 0
    while True:  # page by page: the artefacts are the biggest rows
        rows = bind.execute(sa.text(
            "SELECT id, doc_id, artefact FROM hybridartefact WHERE collection = 'needs' AND id > :last "
            "ORDER BY id LIMIT 500"), {"last": last}).all()
        if not rows:
            break
        last = rows[-1][0]
        stale.update(doc for _id, doc, blob in rows if any(_circumstance(s) for s in _segments(bytes(blob))[1:]))
    if stale:
        bind.execute(sa.text("DELETE FROM hybridartefact WHERE collection = 'needs' AND doc_id = :doc"),
                     [{"doc": doc} for doc in sorted(stale)])
    # Every process's statement index follows the events: without one, an index file saved before
    # kept the deleted statements' vectors (a resident left with no statement has no artefact to
    # rebuild, and a need's clause cut inside a longer sentence left its artefact as it was).
    changed = [("residents", r) for r in residents] + [("needs", n) for n in sorted({n for _, n in needs} | stale)]
    if changed:
        events = sa.table("indexevent", sa.column("collection", sa.String), sa.column("doc_id", sa.Integer),
                          sa.column("op", sa.String), sa.column("at", sa.DateTime))
        now = datetime.now(timezone.utc)
        op.bulk_insert(events, [{"collection": c, "doc_id": d, "op": "upsert", "at": now} for c, d in changed])


def downgrade() -> None:
    # The statements deleted were no skills: nothing to put back.
    pass
