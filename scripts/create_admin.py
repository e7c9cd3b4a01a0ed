#!/usr/bin/env python3
"""Create an administrator account and print its temporary password (once): the first step of a
site started without the demo data (`scripts/prepare.py --no-demo`). The administrator then adds
the neighbourhoods, the organisations and the other accounts on /admin, and replaces the password
on /compte/mot-de-passe.

    python scripts/create_admin.py --email admin@ville.fr --name "Claire M. (Ville)"
    python scripts/create_admin.py --email admin@ville.fr --reset      # a forgotten password
"""

from __future__ import annotations

import argparse
import os
import sys

from models import Database, Role
from web.config import Config
from web.services import ServiceError
from web.services.administration import StaffInput, create_staff, reset_admin_password


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--email", required=True, help="the login")
    parser.add_argument("--name", help="the name others see (for a new account)")
    parser.add_argument("--reset", action="store_true",
                        help="a new temporary password for this existing administrator (forgotten)")
    args = parser.parse_args(argv)
    if not args.reset and not args.name:
        parser.error("--name is required for a new account")
    with Database(os.environ.get("DATABASE_URL") or Config().database_url) as db, db.session() as session:
        db.upgrade()  # a new site: the tables first
        try:
            if args.reset:
                password, said = reset_admin_password(session, args.email), "has a new"
            else:
                account, password = create_staff(session, None, StaffInput(args.name, args.email, Role.ADMIN))
                said = "created with a"
        except ServiceError as exc:
            print("\n".join(str(m) for m in exc.messages), file=sys.stderr)
            return 1
        # Shown once, to be replaced at the first login: keep this terminal's output out of logs.
        print(f"Administrator {args.email.strip().lower()} {said} temporary password: {password}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
