#!/usr/bin/env python3
"""Create an administrator account and print its temporary password (once): the first step of a
site started without the demo data (`scripts/prepare.py --no-demo`). The administrator then adds
the neighbourhoods, the organisations and the other accounts on /admin, and replaces the password
on /compte/mot-de-passe.

    python scripts/create_admin.py --email admin@ville.fr --name "Claire M. (Ville)"
"""

from __future__ import annotations

import argparse
import os
import sys

from models import Database, Role
from web.config import Config
from web.services import ServiceError
from web.services.administration import StaffInput, create_staff


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--email", required=True, help="the login")
    parser.add_argument("--name", required=True, help="the name others see")
    args = parser.parse_args(argv)
    with Database(os.environ.get("DATABASE_URL") or Config().database_url) as db, db.session() as session:
        db.upgrade()  # a new site: the tables first
        try:
            account, password = create_staff(session, None, StaffInput(args.name, args.email, Role.ADMIN))
        except ServiceError as exc:
            print("\n".join(str(m) for m in exc.messages), file=sys.stderr)
            return 1
        print(f"Administrator {account.email} created. Temporary password (shown once): {password}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
