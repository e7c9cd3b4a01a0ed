"""Importing needs from an API Engagement feed: idempotent on the mission id."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

from sqlmodel import col, select

from models import Match, MatchStatus, Need, NeedStatement, User
from tests.api.conftest import ApiEnv
from tests.conftest import at_once
from web.extensions import db, matching
from web.services.needs import update_need

FEED: dict[str, Any] = {
    "ok": True,
    "total": 2,
    "data": [
        {
            "_id": "6613f0c2a1b2c3d4e5f60001",
            "clientId": "mission-42",
            "title": "Atelier de couture solidaire",
            "description": "Apprendre à coudre et à retoucher des vêtements avec les habitants.",
            "organizationName": "Les Mains Agiles",
            "startAt": "2030-02-15T09:00:00.000Z",
            "endAt": "2030-10-14T17:00:00.000Z",
            "address": "17 rue des Épinettes",
            "postalCode": "45000",
            "city": "Saint-Aubin",
            "domain": "solidarite-insertion",  # fields Relais does not use are ignored
            "places": 3,
        },
        {
            "clientId": "mission-43",
            "title": "Cuisine partagée",
            "description": "Préparer un repas pour la fête du quartier.",
            "organizationName": "Collectif des Tilleuls",
            "startAt": "2030-06-01T10:00:00Z",
            "city": "Saint-Aubin",
        },
    ],
}


def needs_with(external_id: str) -> list[Need]:
    with db.session() as session:
        return list(session.exec(select(Need).where(Need.external_id == external_id)).all())


def test_importing_twice_creates_nothing_new(api: ApiEnv) -> None:
    first = api.call("POST", "/api/v1/needs/import", "member", json=FEED)
    assert first.status_code == 200, first.get_data(as_text=True)
    api.validate(first)
    report = first.get_json()
    assert (report["created"], report["updated"], report["unchanged"]) == (2, 0, 0)
    assert [n["mission_id"] for n in report["needs"]] == ["6613f0c2a1b2c3d4e5f60001", "mission-43"]
    second = api.call("POST", "/api/v1/needs/import", "member", json=FEED).get_json()
    assert (second["created"], second["updated"], second["unchanged"]) == (0, 0, 2)
    assert [n["need_id"] for n in second["needs"]] == [n["need_id"] for n in report["needs"]]
    assert len(needs_with("6613f0c2a1b2c3d4e5f60001")) == 1 and len(needs_with("mission-43")) == 1

    need = api.call("GET", f"/api/v1/needs/{report['needs'][0]['need_id']}", "member").get_json()
    assert need["title"] == "Atelier de couture solidaire"
    assert need["organisation_id"] == api.ids["association"]  # the caller's organisation
    assert need["when_text"] == "du 15/02/2030 au 14/10/2030"
    assert need["where_text"] == "17 rue des Épinettes, 45000 Saint-Aubin"
    assert need["external_id"] == "6613f0c2a1b2c3d4e5f60001" and need["status"] == "open"
    other = api.call("GET", f"/api/v1/needs/{report['needs'][1]['need_id']}", "member").get_json()
    assert other["description"].endswith("Mission proposée par Collectif des Tilleuls.")
    assert other["when_text"] == "à partir du 01/06/2030"
    listed = api.call("GET", "/api/v1/needs?external_id=mission-43", "member").get_json()
    assert [n["id"] for n in listed["items"]] == [other["id"]]


def test_changed_missions_update_their_needs(api: ApiEnv) -> None:
    feed = copy.deepcopy(FEED)
    for mission in feed["data"]:
        mission["_id"] = mission.get("_id", "") + "-update"
        mission["clientId"] = mission["clientId"] + "-update"
    created = api.call("POST", "/api/v1/needs/import", "member", json=feed).get_json()
    need_id = created["needs"][0]["need_id"]
    with db.session() as session:  # a proposal waiting for review, made from the old text
        # (the import may have proposed her already: the module's residents are shared, and with
        # earlier tests' proposals she is at her monthly cap, alone she is not)
        waiting = session.exec(select(Match).where(Match.need_id == need_id,
                                                   Match.resident_id == api.ids["rid"])).first()
        waiting = waiting or Match(need_id=need_id, resident_id=api.ids["rid"], score=0.4,
                                   direction="need_to_resident", status=MatchStatus.PROPOSED)
        waiting.score, waiting.status = 0.4, MatchStatus.PROPOSED
        session.add(waiting)
        session.commit()
    feed["data"][0]["title"] = "Atelier de retouches"
    feed["data"][0]["description"] = "Retoucher des vêtements pour la friperie solidaire."
    feed["data"][1]["endAt"] = "2030-07-01T10:00:00Z"
    again = api.call("POST", "/api/v1/needs/import", "member", json=feed).get_json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 2, 0)
    need = api.call("GET", f"/api/v1/needs/{need_id}", "member").get_json()
    assert need["title"] == "Atelier de retouches"
    assert need["updated_at"] > need["created_at"]
    with db.session() as session:
        statements = session.exec(select(NeedStatement).where(NeedStatement.need_id == need_id)
                                  .order_by(col(NeedStatement.position))).all()
        assert statements[0].text == "Atelier de retouches"  # matched from the new text
        stale = session.exec(select(Match).where(Match.need_id == need_id,
                                                 Match.resident_id == api.ids["rid"])).first()
        assert stale is None or stale.score != 0.4  # the old unreviewed proposal was withdrawn
    other = api.call("GET", f"/api/v1/needs/{again['needs'][1]['need_id']}", "member").get_json()
    assert other["when_text"] == "du 01/06/2030 au 01/07/2030"


def test_finished_and_deleted_missions_close_their_needs(api: ApiEnv) -> None:
    mission = {"_id": "closing-1", "title": "Jardin partagé", "description": "Bêcher le jardin."}
    created = api.call("POST", "/api/v1/needs/import", "member", json={"data": [mission]}).get_json()
    closed = api.call("POST", "/api/v1/needs/import", "member",
                      json={"data": [{**mission, "deleted": True}]}).get_json()
    assert closed["updated"] == 1
    need = api.call("GET", f"/api/v1/needs/{created['needs'][0]['need_id']}", "member").get_json()
    assert need["status"] == "closed"
    past = {"_id": "closing-2", "title": "Brocante", "description": "Tenir un stand.",
            "endAt": "2001-01-01T00:00:00Z"}
    ignored = api.call("POST", "/api/v1/needs/import", "member", json={"data": [past]}).get_json()
    assert ignored["ignored"] == 1 and ignored["needs"][0]["need_id"] is None
    assert needs_with("closing-2") == []


def test_a_need_paused_or_closed_on_relais_stays_so_when_its_mission_comes_again(api: ApiEnv) -> None:
    """The same feed again reopened it and ran matching: the association's pause undone by a sync."""
    for status in ("paused", "closed"):
        mission = {"_id": f"kept-{status}", "title": "Jardin partagé", "description": "Arroser le jardin.",
                   "endAt": "2035-01-01T00:00:00Z"}
        need_id = api.call("POST", "/api/v1/needs/import", "member",
                           json={"data": [mission]}).get_json()["needs"][0]["need_id"]
        with db.session() as session:  # what « Mettre en pause » / « Clôturer » do on the need's page
            need = session.get(Need, need_id)
            assert need is not None
            member = session.get(User, api.users["member"].id)
            assert member is not None
            update_need(session, matching, member, need, {"status": status}, date.today())
        again = api.call("POST", "/api/v1/needs/import", "member", json={"data": [mission]}).get_json()
        assert again["needs"][0]["outcome"] == "unchanged"
        assert api.call("GET", f"/api/v1/needs/{need_id}", "member").get_json()["status"] == status
        changed = api.call("POST", "/api/v1/needs/import", "member",
                           json={"data": [{**mission, "description": "Arroser et désherber le jardin."}]})
        assert changed.get_json()["needs"][0]["outcome"] == "updated"
        need = api.call("GET", f"/api/v1/needs/{need_id}", "member").get_json()
        assert need["status"] == status and need["description"] == "Arroser et désherber le jardin."


def test_two_missions_with_one_id_refuse_the_feed(api: ApiEnv) -> None:
    """One mission's « _id » and another's « clientId » (or a copy) gave one need, the second
    overwriting the first, reported « created » then « updated »."""
    feed = {"data": [{"_id": "k1", "title": "Jardin", "description": "Aider au jardin."},
                     {"clientId": "k1", "title": "Cuisine", "description": "Aider à la cuisine."}]}
    refused = api.call("POST", "/api/v1/needs/import", "member", json=feed)
    assert refused.status_code == 422 and "même identifiant : k1" in refused.get_json()["detail"]
    assert needs_with("k1") == []


def test_each_organisation_has_its_own_copy(api: ApiEnv) -> None:
    feed = {"data": [{"_id": "shared-1", "title": "Soutien scolaire", "description": "Aider aux devoirs."}]}
    mine = api.call("POST", "/api/v1/needs/import", "member", json=feed).get_json()
    theirs = api.call("POST", "/api/v1/needs/import", "member_b", json=feed).get_json()
    assert mine["created"] == theirs["created"] == 1
    assert {n.organisation_id for n in needs_with("shared-1")} == {api.ids["association"],
                                                                   api.ids["association_b"]}


def test_a_mission_without_id_refuses_the_whole_feed(api: ApiEnv) -> None:
    feed = {"data": [{"_id": "fine-1", "title": "Chorale", "description": "Chanter ensemble."},
                     {"title": "Sans identifiant", "description": "Personne ne la retrouvera."}]}
    response = api.call("POST", "/api/v1/needs/import", "member", json=feed)
    assert response.status_code == 422 and "identifiant" in response.get_json()["detail"]
    assert needs_with("fine-1") == []  # nothing imported
    for blank in ({"_id": " "}, {"clientId": "\t"}):  # one key every mission sent so would share
        refused = api.call("POST", "/api/v1/needs/import", "member",
                           json={"data": [{**blank, "title": "Blanc", "description": "Sans identifiant."}]})
        assert refused.status_code == 422, blank
    wrong = api.call("POST", "/api/v1/needs/import", "member",
                     json={"data": [{"_id": "x", "title": "Dates", "description": "D.",
                                     "startAt": "demain"}]})
    assert wrong.status_code == 422 and "startAt" in wrong.get_json()["errors"]["json"]["data"]["0"]


def test_dates_no_calendar_holds_are_refused_with_the_feed(api: ApiEnv) -> None:
    """9999-12-31 at 23:30 UTC is already year 10,000 in Paris (the need's « Quand »), and year 1
    at +14:00 is before the first instant UTC holds: refused (422) with the whole feed, not a
    server error after the missions before it were written."""
    for moment in ("9999-12-31T23:30:00Z", "0001-01-01T00:00:00+14:00"):
        feed = {"data": [{"_id": "fine-2", "title": "Chorale", "description": "Chanter ensemble."},
                         {"_id": "far-1", "title": "Loin", "description": "Un jour.", "startAt": moment}]}
        response = api.call("POST", "/api/v1/needs/import", "member", json=feed)
        assert response.status_code == 422, moment
        assert "startAt" in response.get_json()["errors"]["json"]["data"]["1"]
        assert needs_with("fine-2") == []
    # A list filtered from such an instant gives what the first or the last instant would.
    for path in ("/api/v1/residents?updated_since=", "/api/v1/needs?updated_since=",
                 "/api/v1/proposals?changed_since="):
        everything = api.call("GET", path.split("?")[0], "admin").get_json()["total"]
        for moment, total in (("9999-12-31T23:59:59-14:00", 0), ("0001-01-01T00:00:00%2B14:00", everything)):
            listed = api.call("GET", path + moment, "admin")
            assert (listed.status_code, listed.get_json()["total"]) == (200, total), path + moment
    fine = api.call("GET", "/api/v1/residents?updated_since=2026-01-01T00:00:00%2B14:00", "admin")
    assert fine.status_code == 200


def test_the_same_feed_imported_twice_at_once_gives_each_mission_one_need(api: ApiEnv) -> None:
    """Two imports of the same feed at the same moment (a cron and a person): each mission is
    the organisation's one need, not two with a round of proposals each."""
    def send() -> int:
        return api.app.test_client().post("/api/v1/needs/import", json=FEED, headers={
            "Authorization": f"Bearer {api.tokens['member']}"}).status_code

    assert at_once(send, send) == [200, 200]
    assert len(needs_with("6613f0c2a1b2c3d4e5f60001")) == 1
    assert len(needs_with("mission-43")) == 1


def test_a_mission_written_with_windows_line_ends_reads_unchanged_the_next_time(api: ApiEnv) -> None:
    """Needs are stored with "\\n" line ends: the feed compared its "\\r\\n" text with them and
    reported the mission "updated" at every import, forever."""
    feed = {"data": [{"_id": "crlf-1", "title": "Couture", "clientId": "crlf-1",
                      "description": "Apprendre à coudre.\r\nRetoucher des vêtements avec les habitants."}]}
    first = api.call("POST", "/api/v1/needs/import", "member", json=feed).get_json()
    again = api.call("POST", "/api/v1/needs/import", "member", json=feed).get_json()
    assert (first["created"], again["unchanged"], again["updated"]) == (1, 1, 0)


def test_whole_numbers_refuse_fractions(api: ApiEnv) -> None:
    """marshmallow's Integer turned 1.5 into 1: a profile moved to territory 1, a need asked one."""
    moved = api.call("PATCH", f"/api/v1/residents/{api.ids['rid']}", "worker_a", json={"territory_id": 1.5})
    asked = api.call("POST", "/api/v1/needs", "member",
                     json={"title": "Chorale", "description": "Chanter ensemble.", "people_wanted": 1.5})
    assert (moved.status_code, asked.status_code) == (422, 422)
    whole = api.call("POST", "/api/v1/needs", "member",
                     json={"title": "Chorale", "description": "Chanter ensemble.", "people_wanted": 2.0})
    assert whole.status_code == 201 and whole.get_json()["people_wanted"] == 2
