"""How the API behaves beyond who may call what: tokens, pages, sync, errors, limits, search."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, delete, select

from models import (
    ApiToken,
    AuditEvent,
    Consent,
    Direction,
    IndexEvent,
    Match,
    MatchStatus,
    Need,
    NeedStatement,
    NeedStatus,
    Resident,
    Role,
    SkillDeclaration,
    User,
    ValidationStatus,
)
from tests.api.conftest import ApiEnv
from tests.conftest import at_once
from web.api import proposals as proposals_api
from web.api import residents as residents_api
from web.extensions import db, matching
from web.services import profiles
from web.services.needs import NeedInput, create_need
from web.services.privacy import erase_and_forget
from web.services.profiles import ResidentInput, create_resident, renew_consent, withdraw_consent

ROOT = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------- authentication


def test_unknown_revoked_and_expired_tokens_are_refused(api: ApiEnv) -> None:
    for token in ("relais_not-a-real-token", "not even the prefix"):
        response = api.call("GET", "/api/v1/me", token=token)
        assert response.status_code == 401
        assert "Bearer" in response.headers["WWW-Authenticate"]
        assert "révoqué" in response.get_json()["detail"] or "jeton" in response.get_json()["detail"]
    secret = api.token("worker_a")
    assert api.call("GET", "/api/v1/me", token=secret).status_code == 200
    with db.session() as session:
        from web.api.tokens import token_digest

        row = session.exec(select(ApiToken).where(ApiToken.token_digest == token_digest(secret))).one()
        assert row.last_used_at is not None  # recorded, for the owner's token page
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        session.add(row)
        session.commit()
    assert api.call("GET", "/api/v1/me", token=secret).status_code == 401


def test_tokens_are_stored_as_digests_only(api: ApiEnv) -> None:
    secret = api.token("member")
    with db.session() as session:
        rows = session.exec(select(ApiToken)).all()
    assert secret.startswith("relais_") and len(secret) > 40
    assert all(secret not in (r.token_digest, r.prefix, r.name) for r in rows)


def test_a_read_only_token_cannot_change_anything(api: ApiEnv) -> None:
    secret = api.token("worker_a", write=False)
    proposal = api.fresh_match(MatchStatus.PROPOSED)
    response = api.call("POST", f"/api/v1/proposals/{proposal}/approve", token=secret)
    assert response.status_code == 403 and "lecture seule" in response.get_json()["detail"]
    assert api.call("GET", f"/api/v1/proposals/{proposal}", token=secret).status_code == 200
    # Searching reads: a read-only token may.
    assert api.call("POST", "/api/v1/search/needs", json={"text": "Je couds."},
                    token=secret).status_code == 200


def test_the_browser_session_does_not_authenticate_the_api(api: ApiEnv) -> None:
    """CSRF protection is off for the API because it only ever reads tokens, never cookies."""
    client = api.app.test_client()
    with client.session_transaction() as browser:
        browser["_user_id"] = str(api.users["admin"].id)  # logged in, as flask-login does it
        browser["_fresh"] = True
        browser["sid"] = "a-session-id"  # as a login gives it (web.views.auth._start_session)
    assert client.get("/accompagnement/").status_code == 200  # the session works for pages
    assert client.get("/api/v1/me").status_code == 401  # and is ignored by the API


def test_the_script_creates_tokens_for_staff_and_residents(
        api: ApiEnv, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("create_token", ROOT / "scripts" / "create_token.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setenv("DATABASE_URL", db.url)
    assert script.main(["--email", "WORKER.A@example.org", "--write"]) == 0
    staff = capsys.readouterr().out.strip()
    assert api.call("GET", "/api/v1/me", token=staff).get_json()["role"] == "social_worker"
    assert script.main(["--code", api.codes["resident"].lower(), "--days", "7"]) == 0
    resident = capsys.readouterr().out.strip()
    me = api.call("GET", "/api/v1/me", token=resident).get_json()
    assert me["resident_id"] == api.ids["rid"] and me["token"]["scopes"] == ["read"]
    assert script.main(["--email", "nobody@example.org"]) == 1


def test_posts_need_no_csrf_token_but_a_bearer_token(api: ApiEnv) -> None:
    proposal = api.fresh_match(MatchStatus.PROPOSED)
    assert api.call("POST", f"/api/v1/proposals/{proposal}/approve", "worker_a").status_code == 200


# ---------------------------------------------------------------- pages, filters, sync


def test_pages_are_ordered_by_id_and_cover_everything_once(api: ApiEnv) -> None:
    for _ in range(3):
        api.fresh_match(MatchStatus.PROPOSED)
    everything = api.call("GET", "/api/v1/needs?limit=200", "admin").get_json()
    seen, offset = [], 0
    while offset is not None:
        body = api.call("GET", f"/api/v1/needs?limit=2&offset={offset}", "admin").get_json()
        assert body["total"] == everything["total"] and len(body["items"]) <= 2
        seen += [n["id"] for n in body["items"]]
        offset = body["next_offset"]
    assert seen == sorted(seen) == [n["id"] for n in everything["items"]]



def test_a_need_waiting_for_validation_is_read_by_its_own_centre_only(api: ApiEnv) -> None:
    """A habitant-relais' need waits for their centre's validation: another centre's worker neither
    lists nor reads it (the page /accompagnement/besoins/<id> neither: tests/web/test_permissions)."""
    with db.session() as session:
        need, _ = create_need(session, matching, api.users["relais"], NeedInput(
            title="Jardin partagé", description="Arroser le jardin de la résidence."), date.today())
        assert need.validation_status == ValidationStatus.PENDING
        waiting = need.id or 0
    for role, reads in (("worker_a", True), ("admin", True), ("worker_b", False)):
        listed = {n["id"] for n in api.call("GET", "/api/v1/needs?limit=200", role).get_json()["items"]}
        assert (waiting in listed) is reads, role
        assert api.call("GET", f"/api/v1/needs/{waiting}", role).status_code == (200 if reads else 403), role
    assert api.ids["need"] in {n["id"] for n in api.call("GET", "/api/v1/needs?limit=200",
                                                             "worker_b").get_json()["items"]}
    # Its centre's tool tells it from a published need (it looked like any open one).
    def status(path: str) -> str:
        return str(api.call("GET", path, "admin").get_json()["validation_status"])

    assert (status(f"/api/v1/needs/{waiting}"), status(f"/api/v1/needs/{api.ids['need']}")) == (
        "pending", "validated")
    person = api.call("GET", f"/api/v1/residents/{api.ids['rid']}", "worker_a")
    assert person.get_json()["validation_status"] == "validated"
    api.validate(person)

def test_lists_filter(api: ApiEnv) -> None:
    body = api.call("GET", f"/api/v1/needs?organisation_id={api.ids['association_b']}", "admin").get_json()
    assert body["items"] and {n["organisation_id"] for n in body["items"]} == {api.ids["association_b"]}
    mine = api.call("GET", "/api/v1/needs", "member_b").get_json()["items"]
    assert {n["organisation_id"] for n in mine} == {api.ids["association_b"]}  # their own only
    residents = api.call("GET", "/api/v1/residents", "worker_a").get_json()["items"]
    assert [r["first_name"] for r in residents] == ["Awa"]  # Binta is followed by centre B
    assert len(api.call("GET", "/api/v1/residents", "admin").get_json()["items"]) == 2
    proposed = api.call("GET", "/api/v1/proposals?status=proposed&limit=200", "worker_b").get_json()
    assert {p["resident_id"] for p in proposed["items"]} == {api.ids["other_rid"]}
    assert all(p["status"] == "proposed" for p in proposed["items"])


def test_a_consent_withdrawn_or_given_is_a_change_for_incremental_sync(api: ApiEnv) -> None:
    """A tool kept in step with `updated_since` must learn that a person withdrew (consent.valid
    becomes false), then that consent was given again."""
    rid = api.ids["rid"]
    approved = api.fresh_match(MatchStatus.APPROVED)  # its row does not change: its `closed` does
    since = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    with db.session() as session:
        person = session.get(Resident, rid)
        assert person is not None
        worker = session.exec(select(User).where(User.role == Role.SOCIAL_WORKER,
                                                 User.organisation_id == person.organisation_id)).first()
        assert worker is not None and withdraw_consent(session, worker, person)
    changed = api.call("GET", f"/api/v1/residents?updated_since={since}", "admin").get_json()
    assert [(r["id"], r["consent"]["valid"]) for r in changed["items"]] == [(rid, False)]
    synced = api.client.get("/api/v1/proposals", query_string={"changed_since": since, "limit": 200},
                            headers={"Authorization": f"Bearer {api.tokens['admin']}"}).get_json()
    assert {p["id"]: p["closed"] for p in synced["items"]}.get(approved) == "consent"
    since = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    with db.session() as session:
        person = session.get(Resident, rid)
        renew_consent(session, matching, worker, person, "oral_in_person", date.today(), 12)  # type: ignore[arg-type]
    changed = api.call("GET", f"/api/v1/residents?updated_since={since}", "admin").get_json()
    assert [(r["id"], r["consent"]["valid"]) for r in changed["items"]] == [(rid, True)]


def test_a_withdrawn_proposal_is_listed_for_the_tools_that_keep_copies(api: ApiEnv) -> None:
    """A proposal withdrawn before its review is deleted: a tool syncing `GET /proposals` kept it
    as waiting, since nothing listed it any more."""
    since = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    waiting = api.fresh_match(MatchStatus.PROPOSED)
    elsewhere = api.fresh_match(MatchStatus.PROPOSED, resident="other_rid")  # the other centre's person
    assert api.call("PUT", f"/api/v1/residents/{api.ids['rid']}/declaration", "worker_a",
                    json={"text": "Je répare les mobylettes et les vélos."}).status_code == 200
    assert api.call("GET", f"/api/v1/proposals/{waiting}", "worker_a").status_code == 404  # deleted

    def withdrawn(role: str) -> list[int]:
        listed = api.client.get("/api/v1/proposals/withdrawn", query_string={"since": since, "limit": 200},
                                headers={"Authorization": f"Bearer {api.tokens[role]}"})
        api.validate(listed)
        return [item["id"] for item in listed.get_json()["items"]]

    assert waiting in withdrawn("worker_a") and waiting in withdrawn("admin")
    assert waiting not in withdrawn("worker_b")  # about another centre's person
    assert elsewhere not in withdrawn("admin")  # still waiting
    with db.session() as session:  # an erased person's proposals go too, whatever their state
        worker_b = session.get(User, api.users["worker_b"].id)
        binta = session.get(Resident, api.ids["other_rid"])
        assert worker_b is not None and binta is not None
        cleo = create_resident(session, matching, worker_b, ResidentInput(
            first_name="Cléo", last_initial="M", territory_id=binta.territory_id,
            consent_given_on=date.today(), consent_method="paper_signed", consent_matching=True,
            declaration="Je répare les vélos."), 12, date.today()).resident
        session.add(Match(need_id=api.ids["need"], resident_id=cleo.id or 0, score=0.5,
                          direction=Direction.NEED_TO_RESIDENT, status=MatchStatus.APPROVED))
        session.commit()
        gone = session.exec(select(Match.id).where(Match.resident_id == cleo.id)).all()
        erase_and_forget(session, matching, None, cleo, "worker")
    assert gone and set(gone) <= set(withdrawn("worker_b")) and not set(gone) & set(withdrawn("worker_a"))
    later = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    assert api.client.get("/api/v1/proposals/withdrawn", query_string={"since": later}, headers={
        "Authorization": f"Bearer {api.tokens['admin']}"}).get_json()["items"] == []


def test_updated_since_gives_what_changed(api: ApiEnv) -> None:
    before = datetime.now(UTC)
    assert api.call("PUT", f"/api/v1/residents/{api.ids['rid']}/declaration", "worker_a",
                    json={"text": "Je fais des gâteaux pour les fêtes."}).status_code == 200
    since = before.isoformat().replace("+00:00", "Z")
    changed = api.call("GET", f"/api/v1/residents?updated_since={since}", "admin").get_json()
    assert [r["id"] for r in changed["items"]] == [api.ids["rid"]]
    later = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    assert api.call("GET", "/api/v1/residents", "admin", headers={}).status_code == 200
    nothing = api.client.get("/api/v1/residents", query_string={"updated_since": later},
                             headers={"Authorization": f"Bearer {api.tokens['admin']}"}).get_json()
    assert nothing["items"] == [] and nothing["total"] == 0
    proposal = api.fresh_match(MatchStatus.PROPOSED)
    recent = api.client.get("/api/v1/proposals", query_string={"changed_since": since, "limit": 200},
                            headers={"Authorization": f"Bearer {api.tokens['admin']}"}).get_json()
    assert proposal in [p["id"] for p in recent["items"]]


def test_etags_answer_304_until_something_changes(api: ApiEnv) -> None:
    path = f"/api/v1/residents/{api.ids['rid']}/declaration"
    first = api.call("GET", path, "worker_a")
    etag = first.headers["ETag"]
    again = api.call("GET", path, "worker_a", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["ETag"] == etag and again.data == b""
    api.validate(again)
    # Replacing with a stale ETag is refused; with the current one it goes through.
    put = api.call("PUT", path, "worker_a", json={"text": "Je répare les vélos."},
                   headers={"If-Match": etag})
    assert put.status_code == 200 and put.headers["ETag"] == api.call("GET", path, "worker_a").headers["ETag"]
    stale = api.call("PUT", path, "worker_a", json={"text": "Je repasse."}, headers={"If-Match": etag})
    assert stale.status_code == 412 and stale.mimetype == "application/problem+json"
    changed = api.call("GET", path, "worker_a", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert changed.get_json()["text"] == "Je répare les vélos."
    assert changed.headers["Cache-Control"] == "private, no-cache"
    assert "Authorization" in changed.headers["Vary"]


def test_a_profile_changes_field_by_field(api: ApiEnv) -> None:
    """PATCH changes the fields given, keeps the others, says how many proposals it made, and
    refuses a stale ETag or an unknown value."""
    path = f"/api/v1/residents/{api.ids['rid']}"
    first = api.call("GET", path, "worker_a")
    before = first.get_json()
    changed = api.call("PATCH", path, "worker_a", json={"languages": ["fr", "wo"], "wants": ["job"]},
                       headers={"If-Match": first.headers["ETag"]})
    api.validate(changed)
    body = changed.get_json()
    assert changed.status_code == 200 and body["languages"] == ["fr", "wo"] and body["wants"] == ["job"]
    assert {k: body[k] for k in ("first_name", "territory_id", "availability")} == \
        {k: before[k] for k in ("first_name", "territory_id", "availability")}
    with db.session() as session:
        proposed = session.exec(select(Match).where(Match.resident_id == api.ids["rid"],
                                                    Match.status == MatchStatus.PROPOSED)).all()
    assert body["new_proposals"] == len(proposed)  # those before were made on the old answers
    assert body["updated_at"] != before["updated_at"]
    stale = api.call("PATCH", path, "worker_a", json={"wants": []},
                     headers={"If-Match": first.headers["ETag"]})
    assert stale.status_code == 412
    for bad in ({"languages": ["klingon"]}, {"first_name": "  "}, {"colour": "blue"},
                {"territory_id": 999_999}, {"last_initial": "7"}):  # the schema's, then the service's
        refused = api.call("PATCH", path, "worker_a", json=bad)
        assert (refused.status_code, refused.mimetype) == (422, "application/problem+json"), bad
    same = api.call("PATCH", path, "worker_a", json={"wants": ["job"]})
    assert same.status_code == 200 and same.get_json()["new_proposals"] == 0
    # The answer's ETag is the one a read gives: the next conditional write needs no read first.
    read = api.call("GET", path, "worker_a")
    assert same.headers["ETag"] == changed.headers["ETag"] == read.headers["ETag"]
    with db.session() as session:
        updates = session.exec(select(AuditEvent).where(AuditEvent.action == "resident.update",
                                                        AuditEvent.object_id == api.ids["rid"])).all()
    assert len(updates) == 1 and updates[0].details["changes"]["wants"]["after"] == ["job"]


def test_replacing_a_declaration_keeps_the_old_one(api: ApiEnv) -> None:
    path = f"/api/v1/residents/{api.ids['rid']}/declaration"
    api.call("PUT", path, "admin", json={"text": "Je jardine. Je ne sais pas conduire."})
    body = api.call("GET", path, "admin").get_json()
    assert [(s["text"], s["negated"]) for s in body["statements"]] == [
        ("Je jardine", False), ("Je ne sais pas conduire", True)]
    with db.session() as session:
        versions = session.exec(select(SkillDeclaration).where(
            SkillDeclaration.resident_id == api.ids["rid"])).all()
    assert len(versions) >= 2 and sum(v.is_current for v in versions) == 1


def test_a_replacement_says_which_languages_left_with_the_old_text(api: ApiEnv) -> None:
    """« je parle arabe » corrected to « je parle tamazight »: the web page names the language
    taken off the profile; an API client is told too, not left to find it gone."""
    path = f"/api/v1/residents/{api.ids['rid']}/declaration"
    first = api.call("PUT", path, "worker_a", json={"text": "Je parle arabe. Je fais de la couture."})
    assert first.status_code == 200 and first.get_json()["languages_removed"] == []
    corrected = api.call("PUT", path, "worker_a", json={"text": "Je parle tamazight. Je fais de la couture."})
    assert corrected.status_code == 200 and corrected.get_json()["languages_removed"] == ["ar"]
    person = api.call("GET", f"/api/v1/residents/{api.ids['rid']}", "worker_a").get_json()
    assert "ar" not in person["languages"] and "ber" in person["languages"]


def test_a_replacement_written_after_the_etag_check_is_not_overwritten(
        api: ApiEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    """If-Match names the version the client read: another text written between the check and
    the write is not replaced by this one (412), whatever the database's order of the two."""
    path = f"/api/v1/residents/{api.ids['rid']}/declaration"
    etag = api.call("GET", path, "worker_a").headers["ETag"]
    real = residents_api.refuse_if_changed

    def other_writes_after_the_check(schema: Any, current: Any) -> None:
        real(schema, current)
        monkeypatch.setattr(residents_api, "refuse_if_changed", real)
        assert api.call("PUT", path, "admin", json={"text": "Je jardine."}).status_code == 200

    monkeypatch.setattr(residents_api, "refuse_if_changed", other_writes_after_the_check)
    late = api.call("PUT", path, "worker_a", json={"text": "Je répare des vélos."},
                    headers={"If-Match": etag})
    assert late.status_code == 412
    assert api.call("GET", path, "worker_a").get_json()["text"] == "Je jardine."


def test_a_text_with_sensitive_words_is_held_back_as_on_the_web(api: ApiEnv) -> None:
    """The CNIL's rule for free text: health, religion, origin… The web page holds such a text
    back until the worker confirms it is needed; the API did not ask."""
    path = f"/api/v1/residents/{api.ids['rid']}/declaration"
    before = api.call("GET", path, "worker_a").get_json()["text"]
    text = "Je suis diabétique et je cuisine pour la mosquée pendant le ramadan."
    held = api.call("PUT", path, "worker_a", json={"text": text})
    assert (held.status_code, held.mimetype) == (422, "application/problem+json")
    api.validate(held)
    found = held.get_json()["errors"]["sensitive"]
    assert any("diabétique" in words for words in found.values())
    assert any("mosquée" in words for words in found.values())
    assert api.call("GET", path, "worker_a").get_json()["text"] == before
    confirmed = api.call("PUT", path, "worker_a", json={"text": text, "sensitive_ok": True})
    assert confirmed.status_code == 200 and confirmed.get_json()["text"] == text


def test_two_replacements_sent_at_once_leave_one_current_text(api: ApiEnv,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Two PUTs with the same If-Match (a retried call, two tools) both pass the ETag check and
    both read the same current version before either writes: the first wins, the second is
    refused (412) instead of adding a second current text beside it, or replacing the first's
    text it never read. The barrier holds each request between its read and its write until both
    have read (on SQLite; PostgreSQL's lock on the profile lines them up before it)."""
    path = f"/api/v1/residents/{api.ids['rid']}/declaration"
    etag = api.call("GET", path, "worker_a").headers["ETag"]
    both_read = threading.Barrier(2)
    real_update = profiles.update

    def update_after_both_read(table: Any) -> Any:
        if table is SkillDeclaration:
            # PostgreSQL locks the profile first: the second request waits there instead.
            with contextlib.suppress(threading.BrokenBarrierError):
                both_read.wait(timeout=5)
        return real_update(table)

    monkeypatch.setattr(profiles, "update", update_after_both_read)

    def replace(text: str) -> Callable[[], int]:
        return lambda: api.app.test_client().put(path, json={"text": text}, headers={
            "Authorization": f"Bearer {api.tokens['worker_a']}", "If-Match": etag}).status_code

    statuses = at_once(replace("Je fais du jardinage."), replace("Je répare des vélos."))
    assert sorted(statuses) == [200, 412]
    with db.session() as session:
        current = session.exec(select(SkillDeclaration).where(
            SkillDeclaration.resident_id == api.ids["rid"], col(SkillDeclaration.is_current).is_(True))).all()
    assert len(current) == 1


@pytest.mark.parametrize("if_match", [True, False])
def test_two_profile_changes_sent_at_once_do_not_undo_each_other(
        api: ApiEnv, monkeypatch: pytest.MonkeyPatch, if_match: bool) -> None:
    """Two PATCHes (two tools, one with the same If-Match) both read the profile before either
    writes. Each holds the other fields as it read them: the second put back the languages the
    first had just changed, and answered 200. The second is refused now (412 with If-Match, 409
    without) and the first's change stays."""
    path = f"/api/v1/residents/{api.ids['rid']}"
    read = api.call("GET", path, "worker_a")
    before = read.get_json()
    both_checked = threading.Barrier(2)
    real_update_profile = residents_api.update_profile

    def update_after_both_checked(*args: Any, **kwargs: Any) -> Any:
        with contextlib.suppress(threading.BrokenBarrierError):
            both_checked.wait(timeout=5)
        return real_update_profile(*args, **kwargs)

    monkeypatch.setattr(residents_api, "update_profile", update_after_both_checked)

    def change(fields: dict[str, Any]) -> Callable[[], int]:
        headers = {"Authorization": f"Bearer {api.tokens['worker_a']}"}
        if if_match:
            headers["If-Match"] = read.headers["ETag"]
        return lambda: api.app.test_client().patch(path, json=fields, headers=headers).status_code

    # Both real changes (the profile is the module's: an earlier test may have set either).
    languages = next(v for v in (["fr", "wo"], ["fr", "tr"]) if v != before["languages"])
    wants = next(v for v in (["job"], ["training"]) if v != before["wants"])
    statuses = at_once(change({"languages": languages}), change({"wants": wants}))
    assert sorted(statuses) == [200, 412 if if_match else 409]
    now = api.call("GET", path, "worker_a").get_json()
    first_won = statuses[0] == 200
    assert now["languages"] == (languages if first_won else before["languages"])
    assert now["wants"] == (before["wants"] if first_won else wants)


# ---------------------------------------------------------------- review through the API


def test_a_proposal_withdrawn_while_it_is_reviewed_answers_409(api: ApiEnv,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The person's consent or text changed between the review's read and its write (the proposal
    row is deleted): a rejection says so (409) as an approval does, rather than failing on the
    row that is gone."""
    real = proposals_api.get_match_to_review

    def withdrawn_once_read(session: Any, actor: Any, match_id: int) -> Any:
        match = real(session, actor, match_id)
        with db.session() as other:
            other.exec(delete(Match).where(col(Match.id) == match_id))
            other.commit()
        return match

    monkeypatch.setattr(proposals_api, "get_match_to_review", withdrawn_once_read)
    for action, body in (("reject", {"reason_code": "busy"}), ("approve", None)):
        proposal = api.fresh_match(MatchStatus.PROPOSED)
        refused = api.call("POST", f"/api/v1/proposals/{proposal}/{action}", "worker_a", json=body)
        assert (refused.status_code, refused.mimetype) == (409, "application/problem+json"), action
        assert "déjà été examinée" in refused.get_json()["detail"]


def test_proposals_say_why_one_waiting_can_no_longer_go_on(api: ApiEnv) -> None:
    """The review desk leaves out a proposal whose person's consent ended (it waits for the
    renewal): the API listed it as any other; `closed` now says why it cannot be approved."""
    proposal = api.fresh_match(MatchStatus.PROPOSED)
    fine = api.call("GET", f"/api/v1/proposals/{proposal}", "worker_a")
    api.validate(fine)
    assert fine.get_json()["closed"] is None

    def consents_end(on: date | None) -> dict[int, date | None]:
        with db.session() as session:
            rows = session.exec(select(Consent).where(Consent.resident_id == api.ids["rid"])).all()
            before = {c.id or 0: c.expires_on for c in rows}
            for consent in rows:
                consent.expires_on = on
                session.add(consent)
            session.commit()
            return before

    before = consents_end(date.today() - timedelta(days=1))
    try:
        listed = api.call("GET", "/api/v1/proposals?status=proposed&limit=200", "worker_a")
        api.validate(listed)
        assert {p["id"]: p["closed"] for p in listed.get_json()["items"]}[proposal] == "consent"
        assert api.call("POST", f"/api/v1/proposals/{proposal}/approve", "worker_a").status_code == 409
    finally:  # the module's other tests share this person
        with db.session() as session:
            for consent in session.exec(select(Consent).where(Consent.resident_id == api.ids["rid"])).all():
                consent.expires_on = before[consent.id or 0]
                session.add(consent)
            session.commit()


def test_review_and_answer_go_through_the_services(api: ApiEnv) -> None:
    proposal = api.fresh_match(MatchStatus.PROPOSED)
    rejected = api.call("POST", f"/api/v1/proposals/{proposal}/reject", "worker_a",
                        json={"reason_code": "other", "note": "Déjà engagée ailleurs."})
    assert rejected.status_code == 200
    assert rejected.get_json()["rejection_code"] == "other"
    again = api.call("POST", f"/api/v1/proposals/{proposal}/approve", "worker_a")
    assert again.status_code == 409 and "déjà été examinée" in again.get_json()["detail"]
    approved = api.fresh_match(MatchStatus.PROPOSED)
    assert api.call("POST", f"/api/v1/proposals/{approved}/approve", "worker_a").status_code == 200
    listed = api.call("GET", "/api/v1/opportunities?status=approved&limit=200", "resident").get_json()
    assert approved in [o["id"] for o in listed["items"]]
    answer = api.call("POST", f"/api/v1/opportunities/{approved}/answer", "resident",
                      json={"accept": False, "comment": "Pas ce mois-ci."})
    assert answer.status_code == 200 and answer.get_json()["status"] == "declined"
    twice = api.call("POST", f"/api/v1/opportunities/{approved}/answer", "resident", json={"accept": True})
    assert twice.status_code == 409
    with db.session() as session:
        match = session.get(Match, approved)
        assert match is not None and match.status == MatchStatus.DECLINED
        actions = {e.action for e in session.exec(select(AuditEvent).where(
            AuditEvent.object_id.in_([proposal, approved]))).all()}  # type: ignore[union-attr]
    assert {"match.reject", "match.approve", "match.decline"} <= actions


def test_reason_other_needs_a_note(api: ApiEnv) -> None:
    proposal = api.fresh_match(MatchStatus.PROPOSED)
    response = api.call("POST", f"/api/v1/proposals/{proposal}/reject", "worker_a",
                        json={"reason_code": "other"})
    assert response.status_code == 422
    assert response.get_json()["errors"]["service"]


def test_a_reason_with_sensitive_words_is_refused_through_the_api_too(api: ApiEnv) -> None:
    """The check was the web page's only: the API stored « … la fin du Ramadan », which the
    person reads in the copy of their data."""
    proposal = api.fresh_match(MatchStatus.PROPOSED)
    response = api.call("POST", f"/api/v1/proposals/{proposal}/reject", "worker_a",
                        json={"reason_code": "other", "note": "Elle préfère attendre la fin du Ramadan."})
    assert response.status_code == 422
    assert "Ramadan" in response.get_json()["errors"]["service"][0]
    with db.session() as session:
        match = session.get(Match, proposal)
        assert match is not None and (match.status, match.rejection_note) == (MatchStatus.PROPOSED, None)


def test_posting_a_need_runs_matching(api: ApiEnv) -> None:
    response = api.call("POST", "/api/v1/needs", "member", json={
        "title": "Retouches de costumes", "description": "Coudre et retoucher les costumes du spectacle.",
        "territory_id": api.ids["tilleuls"]})
    assert response.status_code == 201
    need = response.get_json()
    assert need["organisation_id"] == api.ids["association"] and need["status"] == "open"
    with db.session() as session:  # its statements are stored and indexed, like a web need's
        assert session.get(Need, need["id"]) is not None
        statements = session.exec(select(NeedStatement).where(NeedStatement.need_id == need["id"])).all()
        assert [s.text for s in statements][0] == "Retouches de costumes"
        assert session.exec(select(IndexEvent).where(IndexEvent.collection == "needs",
                                                     IndexEvent.doc_id == need["id"])).first()


def test_a_need_posted_again_is_not_published_twice(api: ApiEnv) -> None:
    """A client that retries after a timeout, or sends twice at once, gets the first need back
    (200, as documented) rather than a second copy with its own round of proposals."""
    body = {"title": "Repas solidaire", "description": "Cuisiner pour le repas du quartier.",
            "territory_id": api.ids["tilleuls"]}
    first = api.call("POST", "/api/v1/needs", "member", json=body)
    again = api.call("POST", "/api/v1/needs", "member", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["id"] == first.get_json()["id"]
    api.validate(again)
    def post() -> int:
        sent = api.app.test_client().post("/api/v1/needs", json={**body, "title": "Repas de la fête"},
                                          headers={"Authorization": f"Bearer {api.tokens['member']}"})
        return sent.status_code

    assert sorted(at_once(post, post)) == [200, 201]
    with db.session() as session:
        assert len(session.exec(select(Need).where(Need.title == "Repas de la fête")).all()) == 1


# ---------------------------------------------------------------- errors


def test_errors_are_problem_details_in_french(api: ApiEnv) -> None:
    invalid = api.call("POST", "/api/v1/needs", "member", json={"title": "", "kind": "van", "x": 1})
    assert invalid.status_code == 422 and invalid.mimetype == "application/problem+json"
    problem = invalid.get_json()
    assert problem["title"] == "Données invalides" and "invalides" in problem["detail"]
    fields = problem["errors"]["json"]
    assert fields["description"] == ["Champ obligatoire."] and fields["x"] == ["Champ inconnu."]
    assert fields["kind"][0].startswith("Valeur inconnue")
    broken = api.client.post("/api/v1/needs", data="{not json", content_type="application/json",
                             headers={"Authorization": f"Bearer {api.tokens['member']}"})
    assert broken.status_code == 400 and broken.mimetype == "application/problem+json"
    for response in (api.call("GET", "/api/v1/nowhere", "admin"),
                     api.call("DELETE", "/api/v1/needs", "admin")):
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["detail"]
    assert api.call("DELETE", "/api/v1/needs", "admin").headers["Allow"]
    # Ids out of the documented range are "not found", whatever the method.
    for method in ("GET", "PUT"):
        huge = api.call(method, "/api/v1/residents/99999999999/declaration", "admin",
                        json={"text": "Je couds."})
        assert huge.status_code == 404 and huge.mimetype == "application/problem+json"
    # The web pages keep their own error pages.
    assert api.client.get("/nowhere").mimetype == "text/html"


def test_a_body_that_is_not_json_is_refused_not_ignored(api: ApiEnv) -> None:
    """Without its Content-Type a body was read as no body: a PATCH answered 200 and changed
    nothing, a search said its text was missing."""
    bearer = {"Authorization": f"Bearer {api.tokens['worker_a']}"}
    path = f"/api/v1/residents/{api.ids['rid']}"
    before = api.call("GET", path, "worker_a").get_json()["first_name"]
    for method, url in (("PATCH", path), ("POST", "/api/v1/search/needs")):
        sent = api.client.open(url, method=method, data='{"first_name": "Zoé", "text": "couture"}',
                               headers=bearer)
        assert sent.status_code == 415 and sent.mimetype == "application/problem+json", sent.data
        assert "Content-Type: application/json" in sent.get_json()["detail"]
    assert api.call("GET", path, "worker_a").get_json()["first_name"] == before
    charset = api.client.post("/api/v1/search/needs", data='{"text": "couture"}', headers=bearer,
                              content_type="application/json; charset=utf-8")
    assert charset.status_code == 200


@pytest.mark.parametrize("body", ["[" * 1500 + "]" * 1500,  # nested too deep for Python's parser
                                  '{"title": "T", "people_wanted": ' + "9" * 4301 + "}"])  # too long an int
def test_json_python_cannot_read_is_unreadable_not_an_internal_error(api: ApiEnv, body: str) -> None:
    api.app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: a 500 would be answered
    try:
        sent = api.client.post("/api/v1/needs", data=body, content_type="application/json",
                               headers={"Authorization": f"Bearer {api.tokens['member']}"})
    finally:
        api.app.config["PROPAGATE_EXCEPTIONS"] = None
    assert sent.status_code == 400 and sent.mimetype == "application/problem+json"


def test_approving_reads_its_body_as_every_operation_does(api: ApiEnv) -> None:
    """The approve operation took no body, so it never read one: a reject payload sent to it, or
    a body that is not JSON, approved the proposal."""
    proposal = api.fresh_match(MatchStatus.PROPOSED)
    path = f"/api/v1/proposals/{proposal}/approve"
    bearer = {"Authorization": f"Bearer {api.tokens['worker_a']}"}
    broken = api.client.post(path, data="{this is not json", content_type="application/json", headers=bearer)
    assert broken.status_code == 400
    rejecting = api.call("POST", path, "worker_a", json={"reason_code": "busy"})
    assert rejecting.status_code == 422 and "reason_code" in rejecting.get_json()["errors"]["json"]
    assert api.call("GET", f"/api/v1/proposals/{proposal}", "worker_a").get_json()["status"] == "proposed"
    assert api.call("POST", path, "worker_a", json={}).status_code == 200
    other = api.fresh_match(MatchStatus.PROPOSED)
    assert api.call("POST", f"/api/v1/proposals/{other}/approve", "worker_a").status_code == 200  # no body


@pytest.mark.parametrize("value", ["on", "off", "yes", 1, 0, "true", None])
def test_a_boolean_is_true_or_false_nothing_else(api: ApiEnv, value: Any) -> None:
    """marshmallow read "on" as true: `sensitive_ok: "on"` kept health data, `accept: "off"` said an
    irreversible no."""
    declared = api.call("PUT", f"/api/v1/residents/{api.ids['rid']}/declaration", "worker_a",
                        json={"text": "Je suis diabétique et je cuisine.", "sensitive_ok": value})
    assert declared.status_code == 422 and "sensitive_ok" in declared.get_json()["errors"]["json"]
    searched = api.call("POST", "/api/v1/search/needs", "member",
                        json={"text": "cuisine", "include_closed": value})
    assert searched.status_code == 422 and "include_closed" in searched.get_json()["errors"]["json"]


def test_a_search_text_is_a_description_not_a_file(api: ApiEnv) -> None:
    """Encoding the text whole costs ~1 s of CPU per 1,000 characters: four 10,000-character searches
    from a read-only token held a worker for a minute."""
    long = api.call("POST", "/api/v1/search/needs", "member", json={"text": "Je sais cuisiner. " * 120})
    assert long.status_code == 422 and "text" in long.get_json()["errors"]["json"]
    assert api.call("POST", "/api/v1/search/needs", "member",
                    json={"text": ("Je sais cuisiner. " * 120)[:2000]}).status_code == 200


def test_the_document_lists_the_problems_every_operation_can_answer(api: ApiEnv) -> None:
    """Each operation listed its own errors, but not 415 (a body not JSON), 413 (over 2 MB) or a 500
    or 503, which any of them can answer."""
    for path, item in api.spec["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                wanted = {"500", "503"} | ({"413", "415"} if "requestBody" in operation else set())
                assert wanted <= set(operation["responses"]), (method, path)
    refused = api.client.patch(f"/api/v1/residents/{api.ids['rid']}", data="first_name=Zoé",
                               content_type="application/x-www-form-urlencoded",
                               headers={"Authorization": f"Bearer {api.tokens['worker_a']}"})
    assert refused.status_code == 415
    api.validate(refused)


def test_the_erasures_list_carries_an_etag_as_every_read(api: ApiEnv) -> None:
    path = "/api/v1/residents/erased?since=2020-01-01T00:00:00Z"
    etag = api.call("GET", path, "worker_a").headers["ETag"]
    assert api.call("GET", path, "worker_a", headers={"If-None-Match": etag}).status_code == 304


def test_a_weak_etag_from_a_proxy_still_answers_304(api: ApiEnv) -> None:
    path = f"/api/v1/residents/{api.ids['rid']}"
    etag = api.call("GET", path, "worker_a").headers["ETag"]
    assert api.call("GET", path, "worker_a", headers={"If-None-Match": f"W/{etag}"}).status_code == 304


def test_errors_stay_french_whatever_the_browser_or_session_says(api: ApiEnv) -> None:
    """Documented as French: with « Accept-Language: en » (or a session that chose English on the
    pages) the title and detail came in English and the field messages in French."""
    invalid = api.call("POST", "/api/v1/needs", "member", json={"title": "T", "x": 1},
                       headers={"Accept-Language": "en"})
    problem = invalid.get_json()
    assert problem["title"] == "Données invalides" and problem["errors"]["json"]["x"] == ["Champ inconnu."]


def test_a_text_with_nothing_to_search_is_refused(api: ApiEnv) -> None:
    response = api.call("POST", "/api/v1/search/needs", "worker_a", json={"text": "…"})
    assert response.status_code == 422 and response.get_json()["errors"]["service"]


def test_rate_limit_per_token_answers_429(api: ApiEnv) -> None:
    api.app.config["RELAIS_API_RATE_LIMIT"] = "3 per minute"
    try:
        secret, other = api.token("member"), api.token("member")
        statuses = [api.call("GET", "/api/v1/me", token=secret).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = api.call("GET", "/api/v1/me", token=secret)
        assert limited.mimetype == "application/problem+json" and int(limited.headers["Retry-After"]) > 0
        assert "Trop de requêtes" in limited.get_json()["title"]
        api.validate(limited)
        assert api.call("GET", "/api/v1/me", token=other).status_code == 200  # each token its own
    finally:
        api.app.config["RELAIS_API_RATE_LIMIT"] = "100000 per minute"


def test_made_up_tokens_count_for_their_address(api: ApiEnv) -> None:
    """A token that is not one (guessed, revoked, expired) counts for the address that sent it:
    a new made-up token per request used to get a limit of its own, so none, and each one a
    database lookup."""
    api.app.config["RELAIS_API_RATE_LIMIT"] = "3 per minute"
    try:
        statuses = [api.call("GET", "/api/v1/me", token=f"relais_{uuid.uuid4().hex}").status_code
                    for _ in range(5)]
        assert statuses == [401, 401, 401, 429, 429]
        assert api.call("GET", "/api/v1/me", token=api.token("member")).status_code == 200
    finally:
        api.app.config["RELAIS_API_RATE_LIMIT"] = "100000 per minute"


# ---------------------------------------------------------------- search


def test_search_needs_explains_and_stays_within_rights(api: ApiEnv) -> None:
    body = api.call("POST", "/api/v1/search/needs", "worker_a",
                    json={"text": "Je couds des robes. Je ne sais pas conduire."}).get_json()
    assert [s["negated"] for s in body["statements"]] == [False, True]
    sewing = next(r for r in body["results"] if r["need"]["id"] == api.ids["need"])
    assert sewing["pairs"][0]["query_text"] == "Je couds des robes"
    assert sewing["pairs"][0]["matched_text"] in {"Atelier couture",
                                                  "Animer un atelier couture le mercredi"}
    assert sewing["score"] > min(r["score"] for r in body["results"])  # above the wood workshop
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    # An association searches its own needs only, as it reads only those.
    own = api.call("POST", "/api/v1/search/needs", "member_b", json={"text": "Je couds."}).get_json()
    assert {r["need"]["organisation_id"] for r in own["results"]} <= {api.ids["association_b"]}


def test_search_residents_only_in_the_callers_organisation(api: ApiEnv) -> None:
    query = {"text": "Quelqu'un qui coud pour un atelier couture.", "limit": 5}
    mine = api.call("POST", "/api/v1/search/residents", "worker_a", json=query).get_json()
    assert {r["resident"]["organisation_id"] for r in mine["results"]} == {api.ids["centre_a"]}
    theirs = api.call("POST", "/api/v1/search/residents", "worker_b", json=query).get_json()
    assert api.ids["rid"] not in {r["resident"]["id"] for r in theirs["results"]}
    assert all(r["pairs"] and r["pairs"][0]["matched_text"] for r in mine["results"])


def test_reading_a_needs_candidates_is_journaled_as_a_profile_view(api: ApiEnv) -> None:
    """As the need's page is: the resident's "who looked at my profile" counts the API too."""
    proposal = api.fresh_match(MatchStatus.APPROVED)
    with db.session() as session:
        match = session.get(Match, proposal)
        assert match is not None
        need_id = match.need_id
    response = api.call("GET", f"/api/v1/needs/{need_id}/candidates", "member")
    assert response.status_code == 200 and response.json is not None
    assert [c["proposal_id"] for c in response.json] == [proposal]
    with db.session() as session:
        views = session.exec(select(AuditEvent).where(AuditEvent.action == "profile.view",
                                                      AuditEvent.actor_id == api.users["member"].id)).all()
        assert [(e.object_id, e.details) for e in views] == [(api.ids["rid"], {"need_id": need_id})]


def test_an_opportunity_says_when_it_can_no_longer_be_answered(api: ApiEnv) -> None:
    """As the resident's page: a need closed since the approval is 'closed': 'need', and an answer
    is refused (409) with why; the need's time slots and languages are given."""
    approved = api.fresh_match(MatchStatus.APPROVED)
    url = "/api/v1/opportunities?status=approved&limit=200"
    listed = api.call("GET", url, "resident")
    api.validate(listed)
    mine = next(o for o in listed.get_json()["items"] if o["id"] == approved)
    assert mine["closed"] is None
    assert mine["need"]["availability"] == [] and mine["need"]["languages"] == []
    with db.session() as session:
        match = session.get(Match, approved)
        assert match is not None
        need = session.get(Need, match.need_id)
        assert need is not None
        need.status, need.availability, need.languages = NeedStatus.CLOSED, ["weekend"], ["ar"]
        session.add(need)
        session.commit()
    listed = api.call("GET", url, "resident")
    api.validate(listed)
    mine = next(o for o in listed.get_json()["items"] if o["id"] == approved)
    assert mine["closed"] == "need"
    assert mine["need"]["availability"] == ["weekend"] and mine["need"]["languages"] == ["ar"]
    refused = api.call("POST", f"/api/v1/opportunities/{approved}/answer", "resident", json={"accept": True})
    assert refused.status_code == 409 and "close" in refused.get_json()["detail"]


def test_an_organisation_presents_itself_and_residents_read_it(api: ApiEnv) -> None:
    """PATCH /organisations/{id}: the caller's own organisation, conditional on its ETag, journaled
    once per change; the opportunities of its needs carry the text."""
    path = f"/api/v1/organisations/{api.ids['association']}"

    def journaled() -> list[tuple[int | None, int]]:
        with db.session() as session:
            return [(e.actor_id, e.details["length"]) for e in session.exec(select(AuditEvent).where(
                AuditEvent.action == "organisation.describe",
                AuditEvent.object_id == api.ids["association"]).order_by(col(AuditEvent.id))).all()]

    before = journaled()
    read = api.call("GET", path, "member")
    text = "Association de couturières, 3 rue des Lilas. Venez le mardi."
    changed = api.call("PATCH", path, "member", json={"description": text},
                       headers={"If-Match": read.headers["ETag"]})
    api.validate(changed)
    assert changed.status_code == 200 and changed.get_json()["description"] == text
    assert changed.headers["ETag"] == api.call("GET", path, "member").headers["ETag"] != read.headers["ETag"]
    stale = api.call("PATCH", path, "member", json={"description": "Autre chose."},
                     headers={"If-Match": read.headers["ETag"]})
    assert stale.status_code == 412
    for bad in ({"description": "x" * 4001}, {"description": "a\x00b"}, {}, {"name": "Autre nom"}):
        refused = api.call("PATCH", path, "member", json=bad)
        assert (refused.status_code, refused.mimetype) == (422, "application/problem+json"), bad
    assert api.call("PATCH", path, "member", json={"description": text}).status_code == 200  # no change
    assert journaled() == [*before, (api.users["member"].id, len(text))]

    approved = api.fresh_match(MatchStatus.APPROVED)  # a need of this association
    listed = api.call("GET", "/api/v1/opportunities?status=approved&limit=200", "resident")
    api.validate(listed)
    mine = next(o for o in listed.get_json()["items"] if o["id"] == approved)
    assert mine["need"]["organisation_description"] == text


def test_an_admin_reading_another_centres_resident_is_journaled(api: ApiEnv) -> None:
    """Binta is followed by centre B; the admin (of centre A) reads her profile, her text and finds
    her in a search: three profile.view events she sees in her history. Centre B's worker reading
    her daily is not journaled, nor the admin reading Awa of their own centre."""
    binta, awa = api.ids["other_rid"], api.ids["rid"]

    def views() -> list[tuple[int | None, int | None, str]]:
        with db.session() as session:
            return [(e.actor_id, e.object_id, e.details.get("via", "")) for e in session.exec(
                select(AuditEvent).where(AuditEvent.action == "profile.view",
                                         col(AuditEvent.object_id).in_([binta, awa]))
                .order_by(col(AuditEvent.id))).all()]

    before = views()
    admin = api.users["admin"].id
    assert api.call("GET", f"/api/v1/residents/{binta}", "worker_b").status_code == 200
    assert api.call("GET", f"/api/v1/residents/{binta}/declaration", "worker_b").status_code == 200
    assert api.call("GET", f"/api/v1/residents/{awa}", "admin").status_code == 200
    assert views() == before
    assert api.call("GET", f"/api/v1/residents/{binta}", "admin").status_code == 200
    assert api.call("GET", f"/api/v1/residents/{binta}/declaration", "admin").status_code == 200
    listed = api.call("GET", "/api/v1/residents?limit=100", "admin").get_json()["items"]
    assert {binta, awa} <= {r["id"] for r in listed}  # the same fields as one read alone
    found = api.call("POST", "/api/v1/search/residents", "admin",
                     json={"text": "Coudre des boubous et faire des ourlets.", "limit": 20})
    assert binta in [r["resident"]["id"] for r in found.get_json()["results"]]
    assert views()[len(before):] == [(admin, binta, "api"), (admin, binta, "api"), (admin, binta, "api"),
                                     (admin, binta, "search")]
    # Her proposals too (her own words in the explanation, her comment after an answer).
    before = views()
    assert api.call("GET", f"/api/v1/proposals/{api.ids['proposed_b']}", "worker_b").status_code == 200
    assert views() == before
    assert api.call("GET", f"/api/v1/proposals/{api.ids['proposed_b']}", "admin").status_code == 200
    listed = api.call("GET", f"/api/v1/proposals?resident_id={binta}", "admin").get_json()["items"]
    assert api.ids["proposed_b"] in [p["id"] for p in listed]
    assert views()[len(before):] == [(admin, binta, "api"), (admin, binta, "api")]
