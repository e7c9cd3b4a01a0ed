#!/usr/bin/env python3
"""Rebuild the FAISS index files from the vectors stored in the database.

    python scripts/reindex.py
"""

from __future__ import annotations

import sys
import time

from models import Database
from web.config import Config
from web.services.matching import MatchingService


def main() -> int:
    config = Config()
    matching = MatchingService()
    matching.configure_from(config)
    started = time.monotonic()
    with Database(config.database_url) as db, db.session() as session:
        matching.rebuild(session)
    print(f"Index rebuilt at generation {matching.generation}: "
          f"{len(matching.collections['residents'])} residents, "
          f"{len(matching.collections['needs'])} needs in {time.monotonic() - started:.2f} s "
          f"-> {config.index_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
