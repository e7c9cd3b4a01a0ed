#!/usr/bin/env python3
"""Retention: warn, then anonymise, residents' profiles nobody used for a long time (cron-able).

    python scripts/retention.py                      # today, with the deployment's settings
    python scripts/retention.py --dry-run            # say what would happen, change nothing
    python scripts/retention.py --today 2028-01-31   # as if it were that day (tests, catch-up)

A profile is inactive when nothing happened for RELAIS_RETENTION_MONTHS (default 24): no change
of the profile or its text, no consent recorded or withdrawn, no login, no answer, no request.
The first run that finds it inactive records a warning (shown on the social worker's dashboard
and on the profile); a run at least RELAIS_RETENTION_GRACE_DAYS (default 30) later erases it if
it is still inactive, keeping only anonymous counts. Any activity in between voids the warning.
After erasing, the index files are rebuilt from the database, so no erased vector stays on disk.
The same run deletes the associations' notices naming a person whose consent expired (« Awa K. a
dit non… »): they no longer see the person, and an expiry, unlike a withdrawal, is no event.
Run it daily, e.g. `15 3 * * * cd /srv/relais && .venv/bin/python scripts/retention.py`.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date

from models import Database
from web.config import Config
from web.services.matching import MatchingService
from web.services.privacy import run_retention


def main(argv: list[str] | None = None, config: Config | None = None,
         matching: MatchingService | None = None) -> int:
    config = config or Config()
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--today", type=date.fromisoformat, default=None,
                        help="the day to act as (YYYY-MM-DD; default: today)")
    parser.add_argument("--months", type=int, default=config.retention_months,
                        help="inactivity before a warning (default: RELAIS_RETENTION_MONTHS)")
    parser.add_argument("--grace-days", type=int, default=config.retention_grace_days,
                        help="days between the warning and anonymisation "
                             "(default: RELAIS_RETENTION_GRACE_DAYS)")
    parser.add_argument("--dry-run", action="store_true", help="report only, change nothing")
    args = parser.parse_args(argv)
    if args.months < 1 or args.grace_days < 0:
        parser.error("--months must be at least 1 and --grace-days at least 0")
    today = args.today or date.today()
    if matching is None:
        matching = MatchingService()
        matching.configure_from(config)
    with Database(config.database_url) as db, db.session() as session:
        report = run_retention(session, matching, today, args.months, args.grace_days,
                               dry_run=args.dry_run)
        if (report.anonymised or report.requested) and not args.dry_run:
            matching.rebuild(session)
    verb = "would be" if args.dry_run else "were"
    print(f"{today.isoformat()}: {len(report.warned)} profile(s) {verb} warned, "
          f"{len(report.anonymised)} {verb} anonymised, {len(report.cleared)} warning(s) "
          f"{verb} lifted (inactive after {args.months} months, grace {args.grace_days} days)"
          + (f"; {len(report.requested)} {verb} erased as asked {args.grace_days}+ days ago"
             if report.requested else "")
          + (f"; {report.drafts} import file(s) never confirmed dropped" if report.drafts else "")
          + (f"; {report.abandoned} job(s) whose runner stopped failed" if report.abandoned else "")
          + (f"; {report.notices} association notice(s) naming someone whose consent lapsed deleted"
             if report.notices else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
