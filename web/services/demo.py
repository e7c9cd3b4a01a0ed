"""Demo data: a fictional neighbourhood, loaded through the same services as real use."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from models import Match, MatchStatus, Organisation, Resident, Role, Territory, User
from web.services.accounts import CODE_ALPHABET, CODE_LENGTH, code_digest, hash_password
from web.services.matching import MatchingService
from web.services.needs import NeedInput, create_need
from web.services.profiles import ResidentInput, create_resident
from web.services.proposals import propose_for_resident
from web.services.review import approve

DEMO_FILE = Path(__file__).resolve().parents[2] / "scripts" / "demo" / "data.json"
DEMO_PASSWORD = "relais-demo"  # printed by scripts/server; demo instances only


@dataclass
class DemoLogins:
    staff: list[tuple[str, str, str]] = field(default_factory=list)  # (role, email, name)
    residents: list[tuple[str, str]] = field(default_factory=list)  # (public name, code)


def demo_code(key: str) -> str:
    """A stable access code per demo resident, so the printed logins survive restarts."""
    rng = random.Random(f"relais-demo:{key}")
    raw = "".join(rng.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:4]}-{raw[4:]}"


def is_empty(session: Session) -> bool:
    return session.exec(select(User)).first() is None


def load_demo(session: Session, matching: MatchingService, today: date,
              path: Path = DEMO_FILE, consent_months: int = 12) -> DemoLogins:
    """Create the demo neighbourhood; return the logins to print."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    territories: dict[str, Territory] = {}
    for t in data["territories"]:
        territories[t["key"]] = Territory(name=t["name"], commune=t["commune"],
                                          qpv_code=t.get("qpv_code"))
        session.add(territories[t["key"]])
    session.flush()
    organisations: dict[str, Organisation] = {}
    for o in data["organisations"]:
        organisations[o["key"]] = Organisation(
            name=o["name"], kind=o["kind"], description=o.get("description", ""),
            territory_id=territories[o["territory"]].id if o.get("territory") else None)
        session.add(organisations[o["key"]])
    session.flush()
    users: dict[str, User] = {}
    logins = DemoLogins()
    for u in data["users"]:
        org = organisations[u["organisation"]] if u.get("organisation") else None
        users[u["key"]] = User(email=u["email"].lower(), display_name=u["display_name"],
                               role=u["role"], password_hash=hash_password(DEMO_PASSWORD),
                               organisation_id=org.id if org else None)
        session.add(users[u["key"]])
        logins.staff.append((u["role"], u["email"].lower(), u["display_name"]))
    if not any(u.role == Role.ADMIN and u.organisation_id for u in users.values()):
        # An admin acts for the first centre social (creating profiles needs an organisation).
        centre = next((o for o in organisations.values() if o.kind == "centre_social"), None)
        for u in users.values():
            if u.role == Role.ADMIN and centre is not None:
                u.organisation_id = centre.id
    session.commit()

    residents: dict[str, Resident] = {}
    for r in data["residents"]:
        created = create_resident(session, matching, users[r["recorded_by"]],
                                  _resident_input(r, territories, today), consent_months, today)
        code = demo_code(r["key"])
        account = session.exec(select(User).where(User.resident_id == created.resident.id)).one()
        account.access_code_digest = code_digest(code)
        session.add(account)
        session.commit()
        residents[r["key"]] = created.resident
        logins.residents.append((created.resident.public_name, code))

    for n in data["needs"]:
        create_need(session, matching, users[n["created_by"]], _need_input(n, territories), today)
    # What the habitant-relais noted: it waits for a social worker, out of matching until then.
    submissions = data.get("submissions", {})
    for r in submissions.get("residents", []):
        create_resident(session, matching, users[r["recorded_by"]],
                        _resident_input(r, territories, today), consent_months, today)
    for n in submissions.get("needs", []):
        create_need(session, matching, users[n["created_by"]], _need_input(n, territories), today)
    for resident in residents.values():
        propose_for_resident(session, matching, resident, today)

    # One approved opportunity, so the resident's page has something to show from the start.
    first = session.exec(select(Match).where(Match.status == MatchStatus.PROPOSED)
                         .order_by(Match.score.desc())).first()  # type: ignore[attr-defined]
    if first is not None:
        worker = next(u for u in users.values() if u.role == Role.SOCIAL_WORKER)
        approve(session, worker, first)
        shown = session.get(Resident, first.resident_id)
        logins.residents.sort(key=lambda item: item[0] != (shown.public_name if shown else ""))
    return logins


def _resident_input(r: dict[str, Any], territories: dict[str, Territory], today: date) -> ResidentInput:
    return ResidentInput(
        first_name=r["first_name"], last_initial=r.get("last_initial", ""),
        territory_id=territories[r["territory"]].id, languages=r.get("languages", []),
        availability=r.get("availability", []), wants=r.get("wants", []),
        consent_given_on=today - timedelta(days=int(r["consent"]["days_ago"])),
        consent_method=r["consent"]["method"], consent_matching=True, declaration=r["declaration"])


def _need_input(n: dict[str, Any], territories: dict[str, Territory]) -> NeedInput:
    return NeedInput(
        title=n["title"], description=n["description"], kind=n.get("kind", "skill"),
        territory_id=territories[n["territory"]].id if n.get("territory") else None,
        when_text=n.get("when_text", ""), where_text=n.get("where_text", ""),
        languages=n.get("languages", []))
