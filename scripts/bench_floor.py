#!/usr/bin/env python3
"""What the review-learnt floor costs a proposal round as the review history grows.

    python scripts/bench_floor.py --matches 2000 20000 200000 --json
    scripts/with-postgres python scripts/bench_floor.py --database-url "$RELAIS_TEST_POSTGRES_URL"

A proposal round reads the floor under which nothing is proposed from the social workers' reviews
(web.services.proposals): `calibrated_min_score` counts the reviewed matches by status and takes
the score at the policy's cut, a cost that grows with the history; `review_floor`, what rounds
call, keeps it for FLOOR_SECONDS per process. For each size (ascending) the history is grown to
that many matches (statuses and scores drawn at random, 40 % pending, one resident in 10,000 per
match) and both are timed over --reads reads (p50, ms). On a fresh temporary SQLite database, or
on --database-url when its schema holds no match yet (the tables are migrated, never emptied).
With --json the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert  # noqa: E402
from sqlmodel import Session, col, select  # noqa: E402

from models import (  # noqa: E402
    Database,
    Direction,
    Match,
    MatchStatus,
    Need,
    Organisation,
    OrganisationKind,
    Resident,
    Role,
    Territory,
    User,
)
from web.services.proposals import calibrated_min_score, review_floor  # noqa: E402

RESIDENTS = 10_000
# Drawn statuses: pending proposals do not count towards the floor.
STATUSES = {MatchStatus.PROPOSED: 0.25, MatchStatus.APPROVED: 0.15, MatchStatus.ACCEPTED: 0.2,
            MatchStatus.DECLINED: 0.1, MatchStatus.REJECTED: 0.3}


def timed(read: Any, reads: int) -> float:
    times = []
    for _ in range(reads):
        started = time.perf_counter()
        read()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 3)


def grow(session: Session, rng: random.Random, have: int, want: int, owner: tuple[int, int, int]) -> None:
    """Add matches `have`..`want` (match i: resident i % RESIDENTS, need i // RESIDENTS)."""
    organisation, user, territory = owner
    residents = min(want, RESIDENTS)
    known = session.exec(select(func.count()).select_from(Resident)).one()
    if known < residents:
        session.execute(insert(Resident), [
            {"first_name": f"R{i}", "territory_id": territory, "organisation_id": organisation,
             "languages": [], "availability": [], "wants": [], "created_by_id": user}
            for i in range(known, residents)])
    resident_ids = session.exec(select(Resident.id).order_by(col(Resident.id))).all()
    needs = (want - 1) // RESIDENTS + 1
    known = session.exec(select(func.count()).select_from(Need)).one()
    if known < needs:
        session.execute(insert(Need), [
            {"organisation_id": organisation, "title": f"Besoin {i}", "description": "Un besoin.",
             "languages": [], "availability": [], "created_by_id": user} for i in range(known, needs)])
    need_ids = session.exec(select(Need.id).order_by(col(Need.id))).all()
    statuses, weights = list(STATUSES), list(STATUSES.values())
    for start in range(have, want, 20_000):
        session.execute(insert(Match), [
            {"need_id": need_ids[i // RESIDENTS], "resident_id": resident_ids[i % RESIDENTS],
             "status": rng.choices(statuses, weights)[0], "direction": Direction.NEED_TO_RESIDENT,
             "score": round(rng.uniform(0.2, 0.9), 4), "explanation": {}}
            for i in range(start, min(want, start + 20_000))])
    session.commit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--matches", type=int, nargs="+", default=[2_000, 20_000, 200_000])
    parser.add_argument("--database-url",
                        help="a database whose schema holds no match (default: a temporary SQLite file)")
    parser.add_argument("--reads", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{folder}/floor.db"
        with Database(url) as database:
            database.upgrade()
            with database.session() as session:
                if session.exec(select(func.count()).select_from(Match)).one():
                    parser.error("the database already holds matches: give an empty one")
                organisation = Organisation(name="Centre", kind=OrganisationKind.CENTRE_SOCIAL)
                territory = Territory(name="Quartier", commune="Ville")
                user = User(display_name="Bench", role=Role.ADMIN)
                session.add_all([organisation, territory, user])
                session.commit()
                owner = (organisation.id or 0, user.id or 0, territory.id or 0)
                rng, have, rows = random.Random(args.seed), 0, []
                for size in sorted(args.matches):
                    grow(session, rng, have, size, owner)
                    have = size
                    read = timed(lambda: calibrated_min_score(session, 0.2), args.reads)
                    kept = timed(lambda: review_floor(session, 0.2), args.reads)
                    rows.append({"matches": size, "read_ms": read, "kept_ms": kept,
                                 "floor": calibrated_min_score(session, 0.2)})
                    print(f"{size:>9,} matches: floor {rows[-1]['floor']:.4f}, read {read} ms, "
                          f"kept {kept} ms per round (p50 of {args.reads})", flush=True)
                backend = database.engine.url.get_backend_name()
    if args.json:
        print(json.dumps({"backend": backend, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
