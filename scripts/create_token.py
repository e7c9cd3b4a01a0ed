#!/usr/bin/env python3
"""Create a personal API token and print it (once): for scripts, demos and residents' apps.

    python scripts/create_token.py --email sophie.lambert@relais.demo --write
    python scripts/create_token.py --code K7PM-Q2XD --write        # a resident, by access code

Staff can also create and revoke tokens on /compte/jetons once logged in.
"""

from __future__ import annotations

import argparse
import os
import sys

from sqlmodel import select

from models import Database, User
from web.api.tokens import create_token
from web.config import Config
from web.services import ServiceError
from web.services.accounts import code_digest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--email", help="a staff account's email")
    who.add_argument("--code", help="a resident's access code")
    parser.add_argument("--name", default="script", help="what the token is for (default: script)")
    parser.add_argument("--write", action="store_true", help="allow changes (default: read only)")
    parser.add_argument("--days", type=int, default=None, help="validity in days (default: no limit)")
    args = parser.parse_args(argv)
    with Database(os.environ.get("DATABASE_URL") or Config().database_url) as db, db.session() as session:
        query = (select(User).where(User.email == args.email.strip().lower()) if args.email
                 else select(User).where(User.access_code_digest == code_digest(args.code)))
        user = session.exec(query).first()
        if user is None:
            print("No such account.", file=sys.stderr)
            return 1
        try:
            created = create_token(session, user, args.name, args.write, args.days)
        except ServiceError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(created.secret)
    return 0


if __name__ == "__main__":
    sys.exit(main())
