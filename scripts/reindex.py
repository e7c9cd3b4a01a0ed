#!/usr/bin/env python3
"""Rebuild the indexes from the database: the FAISS files from the stored statement vectors, the
hybrid ranker's artefacts that are missing or were made by other encoders (all of them with
--artefacts, e.g. after a change of RELAIS_ENCODERS or of the ranker's analysis); with
--statements, first the statements themselves, analysed again from the stored texts (after a
change of the French analysis: negation, languages, clauses).

    python scripts/reindex.py [--artefacts] [--statements]
"""

from __future__ import annotations

import argparse
import sys
import time

from models import Database
from web.config import Config
from web.services.matching import NEEDS, RESIDENTS, MatchingService


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artefacts", action="store_true",
                        help="re-encode every hybrid artefact from the stored texts")
    parser.add_argument("--statements", action="store_true",
                        help="analyse every text in matching again and rewrite its statements")
    args = parser.parse_args(argv)
    config = Config()
    matching = MatchingService()
    matching.configure_from(config)
    started = time.monotonic()
    with Database(config.database_url) as db, db.session() as session:
        if args.statements:
            declarations, needs = matching.restate(session)
            print(f"Analysed again: {declarations} texts of residents, {needs} needs")
        built = matching.build_missing_artefacts(session, everything=args.artefacts)
        matching.rebuild(session)
    assert matching.encoders is not None
    print(f"Index rebuilt at generation {matching.generation}: "
          f"{len(matching.collections[RESIDENTS])} residents, "
          f"{len(matching.collections[NEEDS])} needs; {built} hybrid artefacts built "
          f"({matching.encoders.spec}) in {time.monotonic() - started:.2f} s -> {config.index_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
