"""Needs from an API Engagement feed (the national volunteering missions feed).

A mission becomes a need of the importing organisation; its id (`_id`, else `clientId`) is kept
in `Need.external_id`, so importing the same feed again updates needs instead of adding them.
New needs go through web.services.needs.create_need like any other need. There is no service
to edit a need yet: updates follow what update_declaration does for residents (re-store the
statements, withdraw unreviewed proposals, propose again).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlmodel import Session, select

from models import Need, NeedStatus, Organisation, User, utcnow
from web.services import AlreadyDone, ServiceError, tidy
from web.services.matching import MatchingService
from web.services.needs import NeedInput, create_need, update_need

PARIS = ZoneInfo("Europe/Paris")


def _day(moment: datetime) -> str:
    return moment.astimezone(PARIS).strftime("%d/%m/%Y")


def when_text(start: datetime | None, end: datetime | None) -> str:
    if start and end:
        return f"du {_day(start)} au {_day(end)}"
    if start:
        return f"à partir du {_day(start)}"
    if end:
        return f"jusqu'au {_day(end)}"
    return ""


def where_text(mission: dict[str, Any]) -> str:
    town = " ".join(p.strip() for p in (mission.get("postal_code"), mission.get("city")) if p and p.strip())
    address = (mission.get("address") or "").strip()
    return ", ".join(p for p in (address, town) if p)[:200]


def mission_key(mission: dict[str, Any]) -> str:
    """The mission's id: API Engagement's `_id`, else the publisher's `clientId` ('' if none)."""
    return str(mission.get("mission_id") or mission.get("client_id") or "")


def need_fields(mission: dict[str, Any], organisation: Organisation, now: datetime) -> dict[str, Any]:
    """What a mission says, as the columns of a need (its texts as stored: `tidy`, so that the
    same feed again reads as unchanged)."""
    description = tidy(mission["description"])
    runner = (mission.get("organization_name") or "").strip()
    if runner and runner.casefold() != organisation.name.casefold():
        description = f"{description}\n\nMission proposée par {runner}."
    end = mission.get("end_at")
    finished = mission.get("deleted") or (end is not None and end < now)
    return {"title": tidy(mission["title"])[:200], "description": tidy(description[:10_000]),
            "when_text": when_text(mission.get("start_at"), end)[:200],
            "where_text": where_text(mission),
            "status": NeedStatus.CLOSED if finished else NeedStatus.OPEN}


def import_missions(session: Session, matching: MatchingService, user: User,
                    missions: Sequence[dict[str, Any]], today: date) -> dict[str, Any]:
    """Create or update one need per mission; say what happened to each."""
    organisation = session.get(Organisation, user.organisation_id) if user.organisation_id else None
    if organisation is None:
        raise ServiceError(_l("Seul·e un·e membre d'une structure peut importer des missions."))
    anonymous = [str(i) for i, m in enumerate(missions) if not mission_key(m)]
    if anonymous:
        raise ServiceError(_l("Chaque mission doit avoir un identifiant « _id » ou « clientId » "
                              "(missions n° %(positions)s, en comptant à partir de 0).",
                              positions=", ".join(anonymous)))
    keys = [mission_key(m) for m in missions]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:  # the second would overwrite the first ("_id" of one, "clientId" of another, or a copy)
        raise ServiceError(_l("Plusieurs missions ont le même identifiant : %(ids)s.", ids=", ".join(twice)))
    blank = [mission_key(m) for m in missions if not m["title"].strip() or not m["description"].strip()]
    if blank:
        raise ServiceError(_l("Ces missions n'ont pas de titre ou pas de description : %(ids)s.",
                              ids=", ".join(blank)))
    counts = {"created": 0, "updated": 0, "unchanged": 0, "ignored": 0}
    report = []
    now = utcnow()
    for mission in missions:
        key = mission_key(mission)
        wanted = need_fields(mission, organisation, now)
        existing = session.exec(select(Need).where(Need.organisation_id == organisation.id,
                                                   Need.external_id == key)).first()
        still_running = wanted["status"] == NeedStatus.OPEN
        if existing is not None and existing.status != NeedStatus.OPEN and still_running:
            del wanted["status"]  # paused or closed on Relais: a mission still running never reopens it
        if existing is None and wanted.get("status") == NeedStatus.CLOSED:
            outcome, need_id = "ignored", None  # a finished mission never imported: nothing to do
        elif existing is None:
            try:
                need, _added = create_need(session, matching, user, NeedInput(
                    title=wanted["title"], description=wanted["description"],
                    when_text=wanted["when_text"], where_text=wanted["where_text"]), today,
                    external_id=key)
            except AlreadyDone as twin:  # the same feed imported at the same moment
                outcome, need_id = "unchanged", twin.row_id
            else:
                outcome, need_id = "created", need.id
        elif all(getattr(existing, name) == value for name, value in wanted.items()):
            outcome, need_id = "unchanged", existing.id
        else:
            update_need(session, matching, user, existing, wanted, today, source="import")
            outcome, need_id = "updated", existing.id
        counts[outcome] += 1
        report.append({"mission_id": key, "need_id": need_id, "outcome": outcome})
    return {**counts, "needs": report}
