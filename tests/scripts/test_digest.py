"""scripts/digest.py against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlmodel import Session, select

from models import Direction, Match, Need, Notification, User
from tests.conftest import World, add_resident
from web.config import Config
from web.services.proposals import Proposal, store_proposals
from web.services.review import answer, approve

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Inbox:
    """What the SMTP server received: (envelope recipients, parsed message)."""

    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 OK"

    def by_recipient(self) -> dict[str, EmailMessage]:
        return {rcpt[0]: message for rcpt, message in self.messages}


@dataclass
class Smtp:
    inbox: Inbox
    port: int
    logins: list[str]


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    inbox, logins = Inbox(), []

    def authenticate(_server: Any, _session: Any, _envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"relais", b"secret")
        if ok:
            logins.append(mechanism)
        return AuthResult(success=ok)

    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=authenticate,
                            auth_require_tls=False)
    controller.start()
    try:
        yield Smtp(inbox, port, logins)
    finally:
        controller.stop()


@pytest.fixture
def answered(session: Session, world: World) -> Match:
    """Worker A has a proposal to review (Binta's) and an answer (Awa's); the association member
    has the answer."""
    awa = add_resident(session, world, "Awa", "Je couds des robes.", initial="K").resident
    binta = add_resident(session, world, "Binta", "Je fais des ourlets.", initial="D").resident
    need = Need(organisation_id=world.association.id or 0, title="Atelier couture",
                description="Animer un atelier couture.", created_by_id=world.member.id or 0)
    session.add(need)
    session.commit()
    store_proposals(session, [Proposal(need.id or 0, awa.id or 0, 0.5, {}),
                              Proposal(need.id or 0, binta.id or 0, 0.4, {})], Direction.NEED_TO_RESIDENT)
    match = session.exec(select(Match).where(Match.resident_id == awa.id)).one()
    approve(session, world.worker_a, match)
    resident = session.exec(select(User).where(User.resident_id == awa.id)).one()
    answer(session, resident, match, accept=True, comment="Appelez-moi au 06 11 22 33 44")
    return match


def run_digest(config: Config, smtp_port: int | None, **extra: str) -> subprocess.CompletedProcess[str]:
    """The script as cron runs it: a fresh process, settings from the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAIS_SMTP")}
    env |= {"DATABASE_URL": config.database_url, "RELAIS_INSTANCE_DIR": str(config.instance_dir)}
    if smtp_port is not None:
        env |= {"RELAIS_SMTP_HOST": "127.0.0.1", "RELAIS_SMTP_PORT": str(smtp_port),
                "RELAIS_SMTP_TLS": "none", "RELAIS_SMTP_FROM": "relais@centre.example"}
    env |= extra
    return subprocess.run([sys.executable, "scripts/digest.py"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_digest_is_delivered_once_with_the_expected_content(
        session: Session, world: World, answered: Match, config: Config, smtp: Smtp) -> None:
    done = run_digest(config, smtp.port, RELAIS_BASE_URL="https://relais.example.org/",
                      RELAIS_SMTP_USER="relais", RELAIS_SMTP_PASSWORD="secret")
    assert done.returncode == 0, done.stderr
    assert "2 digest(s) sent, 0 failed" in done.stderr
    assert smtp.logins  # it logged in
    received = smtp.inbox.by_recipient()
    assert set(received) == {"worker.a@example.org", "member@example.org"}  # residents get no email

    to_worker = received["worker.a@example.org"]
    assert to_worker["Subject"] == "Relais : 2 notifications non lues"  # one proposal still waits
    assert to_worker["From"] == "relais@centre.example"
    body = to_worker.get_content().replace("\r\n", "\n")
    assert body.startswith("Bonjour worker.a,")
    assert ("- Une nouvelle proposition à examiner.\n"
            "  https://relais.example.org/accompagnement/propositions") in body
    assert f"- Awa K. a dit oui pour « Atelier couture ».\n  https://relais.example.org/suivi/propositions/" \
           f"{answered.id}" in body
    to_member = received["member@example.org"]
    assert to_member["Subject"] == "Relais : une notification non lue"
    assert "Awa K. a dit oui" in to_member.get_content()
    for message in received.values():
        assert "06 11" not in message.get_content() and "Appelez" not in message.get_content()

    session.expire_all()
    assert all(n.emailed_at is not None for n in session.exec(select(Notification)).all()
               if n.user_id in {world.worker_a.id, world.member.id})

    again = run_digest(config, smtp.port)
    assert again.returncode == 0 and "0 digest(s) sent" in again.stderr
    assert len(smtp.inbox.messages) == 2  # nothing twice


def test_only_new_unread_notifications_are_sent(session: Session, world: World, answered: Match,
                                                config: Config, smtp: Smtp) -> None:
    assert run_digest(config, smtp.port).returncode == 0
    smtp.inbox.messages.clear()
    session.add_all([Notification(user_id=world.worker_a.id or 0, kind="outcome", text="Nouvelle, non lue.",
                                  link="/accompagnement/propositions"),
                     Notification(user_id=world.member.id or 0, kind="answered", text="Déjà lue.",
                                  link="/structure/", read_at=answered.answered_at),
                     Notification(user_id=world.worker_b.id or 0, kind="to_review", text="Pour B.", link="")])
    inactive = session.get(User, world.worker_b.id)
    assert inactive is not None
    inactive.is_active = False
    session.add(inactive)
    session.commit()
    assert run_digest(config, smtp.port).returncode == 0
    [(recipients, message)] = smtp.inbox.messages
    assert recipients == ["worker.a@example.org"]
    body = message.get_content()
    assert "Nouvelle, non lue." in body and "Awa K." not in body
    assert message["Subject"] == "Relais : une notification non lue"


def test_nothing_is_sent_without_smtp_settings(session: Session, answered: Match, config: Config,
                                               smtp: Smtp) -> None:
    done = run_digest(config, None)
    assert done.returncode == 0
    assert "RELAIS_SMTP_HOST is not set" in done.stderr
    assert smtp.inbox.messages == []
    session.expire_all()
    assert all(n.emailed_at is None for n in session.exec(select(Notification)).all())
