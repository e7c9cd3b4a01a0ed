#!/usr/bin/env python3
"""Prepare the embedded default: migrate the database, load the demo data when it is empty,
build or check the indexes (FAISS files and the hybrid ranker's artefacts, written with every
declaration and need), and print the demo logins.

    python scripts/prepare.py            # what scripts/server runs
    python scripts/prepare.py --no-demo  # an empty, migrated database
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date

from matcher.requirements import MissingRequirement, check_requirements
from models import Database
from web.config import Config
from web.services.demo import DEMO_PASSWORD, DemoLogins, is_empty, load_demo
from web.services.matching import MatchingService


def print_logins(logins: DemoLogins) -> None:
    print(f"\nDemo logins (password for every staff account: {DEMO_PASSWORD})")
    for role, email, name in logins.staff:
        print(f"  {role:<20} {email:<40} {name}")
    print("Residents: open /code and type a code")
    for name, code in logins.residents[:5]:
        print(f"  {name:<20} {code}")
    print(f"  … {len(logins.residents)} demo residents in all (see instance/demo_logins.txt)\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-demo", action="store_true", help="do not load the demo data")
    args = parser.parse_args(argv)
    config = Config()
    try:
        check_requirements(config.embedder)
    except MissingRequirement as exc:
        print(exc, file=sys.stderr)
        return 2
    started = time.monotonic()
    matching = MatchingService()
    matching.configure_from(config)
    logins_file = config.instance_dir / "demo_logins.txt"
    with Database(config.database_url) as db, db.session() as session:
        db.upgrade()
        state = matching.load_or_rebuild(session)
        if not args.no_demo and is_empty(session):
            logins = load_demo(session, matching, date.today(), consent_months=config.consent_months)
            lines = [f"{r}\t{e}\t{n}" for r, e, n in logins.staff]
            lines += [f"resident\t{name}\t{code}" for name, code in logins.residents]
            logins_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
            state = "demo data loaded"
        matching.sync(session)
        matching.save()
        print(f"Database ready ({config.database_url.split('@')[-1]}), index {state}: "
              f"{len(matching.hybrid['residents'])} residents, "
              f"{len(matching.hybrid['needs'])} needs indexed "
              f"({time.monotonic() - started:.1f} s).")
    if logins_file.exists():
        staff, residents = DemoLogins(), []
        for line in logins_file.read_text(encoding="utf-8").splitlines():
            a, b, c = line.split("\t")
            if a == "resident":
                residents.append((b, c))
            else:
                staff.staff.append((a, b, c))
        staff.residents = residents
        print_logins(staff)
    return 0


if __name__ == "__main__":
    sys.exit(main())
