#!/usr/bin/env python3
"""Email each staff member one digest of their unread notifications (cron-able).

    python scripts/digest.py            # e.g. every morning: 0 7 * * 1-5
    python scripts/digest.py --dry-run  # print what would be sent, send nothing

Does nothing (and says so) unless RELAIS_SMTP_HOST is set. Settings: RELAIS_SMTP_HOST, _PORT
(default 587), _USER and _PASSWORD (optional: login only when both are set), _FROM (default
relais@<host>), _TLS ("starttls", "ssl" or "none"; default starttls on 587, ssl on 465, none
otherwise), RELAIS_BASE_URL (e.g. https://relais.example.org, to make links absolute).

Each notification goes out at most once: after a message is accepted by the server its
notifications are marked as emailed, so the next run sends only what is new and still unread.
Messages are in French and hold the notifications' texts only (first name and initial at most).
"""

from __future__ import annotations

import argparse
import logging
import os
import smtplib
import ssl
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from flask_babel import gettext as _

from models import Database, Notification, User, utcnow
from web.config import Config
from web.services.notifications import digest_batches, mark_emailed

log = logging.getLogger("relais.digest")


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    user: str
    password: str
    sender: str
    tls: str  # "starttls", "ssl" or "none"


def smtp_settings(env: Mapping[str, str]) -> SmtpSettings | None:
    """The SMTP server from the environment, or None when none is configured."""
    host = env.get("RELAIS_SMTP_HOST", "").strip()
    if not host:
        return None
    port = int(env.get("RELAIS_SMTP_PORT", "").strip() or "587")
    default_tls = {587: "starttls", 465: "ssl"}.get(port, "none")
    tls = (env.get("RELAIS_SMTP_TLS", "").strip().lower() or default_tls)
    if tls not in {"starttls", "ssl", "none"}:
        raise SystemExit(f"RELAIS_SMTP_TLS must be starttls, ssl or none (not {tls!r})")
    return SmtpSettings(host=host, port=port, user=env.get("RELAIS_SMTP_USER", "").strip(),
                        password=env.get("RELAIS_SMTP_PASSWORD", ""),
                        sender=env.get("RELAIS_SMTP_FROM", "").strip() or f"relais@{host}", tls=tls)


def compose(user: User, notifications: Sequence[Notification], sender: str, base_url: str) -> EmailMessage:
    """One French message listing the user's unread notifications."""
    n = len(notifications)
    message = EmailMessage()
    message["Subject"] = (_("Relais : une notification non lue") if n == 1
                          else _("Relais : %(n)d notifications non lues", n=n))
    message["From"] = sender
    message["To"] = user.email or ""
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    lines = [_("Bonjour %(name)s,", name=user.display_name), "",
             _("Voici ce qui vous attend sur Relais :"), ""]
    for item in notifications:
        lines.append(f"- {item.text}")
        if item.link:
            lines.append(f"  {base_url}{item.link}")
    lines += ["", _("Toutes vos notifications : %(url)s", url=f"{base_url}/notifications/"), "",
              _("Ce message est envoyé une fois pour chaque nouvelle notification non lue."), "-- ", "Relais"]
    message.set_content("\n".join(lines))
    return message


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    if settings.tls == "ssl":
        return smtplib.SMTP_SSL(settings.host, settings.port, timeout=30,
                                context=ssl.create_default_context())
    server = smtplib.SMTP(settings.host, settings.port, timeout=30)
    if settings.tls == "starttls":
        server.starttls(context=ssl.create_default_context())
    return server


def send_digests(database: Database, settings: SmtpSettings, base_url: str = "",
                 dry_run: bool = False) -> tuple[int, int]:
    """Send one message per staff user with new unread notifications; (sent, failed)."""
    sent = failed = 0
    with database.session() as session:
        batches = digest_batches(session)
        if not batches:
            return 0, 0
        if dry_run:
            for user, items in batches:
                print(compose(user, items, settings.sender, base_url).as_string())
            return 0, 0
        with _connect(settings) as server:
            if settings.user and settings.password:
                server.login(settings.user, settings.password)
            for user, items in batches:
                try:
                    server.send_message(compose(user, items, settings.sender, base_url))
                except smtplib.SMTPException as exc:
                    log.error("digest for user %s not sent: %s", user.id, exc)
                    failed += 1
                    continue
                mark_emailed(session, items, utcnow())
                sent += 1
    return sent, failed


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="print the messages, send nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    env = os.environ if env is None else env
    settings = smtp_settings(env)
    if settings is None:
        print("RELAIS_SMTP_HOST is not set: no email sent.", file=sys.stderr)
        return 0
    base_url = env.get("RELAIS_BASE_URL", "").strip().rstrip("/")
    with Database(Config().database_url) as database:
        sent, failed = send_digests(database, settings, base_url, dry_run=args.dry_run)
    print(f"{sent} digest(s) sent, {failed} failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
