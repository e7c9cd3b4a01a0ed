#!/usr/bin/env python3
"""Export every reviewed proposal as a labelled pair (JSON lines), for evaluation and learning.

    python scripts/export_reviews.py > reviews.jsonl
    python scripts/export_reviews.py --output reviews.jsonl

One line per reviewed proposal: the need's text, the resident's matched statements (never a
name), the score and explanation shown at review, the label (approved / rejected, then the
resident's answer) and the rejection reason code and note. Only residents whose consent to
matching holds today: a withdrawn or lapsed consent takes their reviews out. Each export is
journaled (`reviews.export`, with the counts).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from typing import TextIO

from models import Database
from web.config import Config
from web.services.audit import record
from web.services.reviews import reviewed_pairs


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", help="file to write (default: standard output)")
    args = parser.parse_args(argv)
    with Database(Config().database_url) as db, db.session() as session:
        rows = reviewed_pairs(session, date.today())
        # Every export is journaled (by the server, no account): how many, of how many people.
        record(session, None, "reviews.export", "review", None, pairs=len(rows),
               residents=len({row["resident_id"] for row in rows}), file=bool(args.output))
        session.commit()
    target = open(args.output, "w", encoding="utf-8") if args.output else out  # noqa: SIM115
    try:
        for row in rows:
            target.write(json.dumps(row, ensure_ascii=False) + "\n")
    finally:
        if args.output:
            target.close()
    print(f"{len(rows)} reviewed proposals exported", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
