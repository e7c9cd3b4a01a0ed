"""'Match this text': what the searches leave out (consent, closed needs) and what they return."""

from __future__ import annotations

from datetime import date

import pytest

from matcher.embeddings import RecentVectors
from matcher.normalise import normalise
from models import NeedStatus, Resident
from tests.api.conftest import ApiEnv
from web.extensions import db, matching
from web.services.needs import NeedInput, create_need
from web.services.profiles import ResidentInput, create_resident, withdraw_consent


def resident_ids(api: ApiEnv, role: str, text: str) -> list[int]:
    body = api.call("POST", "/api/v1/search/residents", role, json={"text": text, "limit": 20}).get_json()
    return [r["resident"]["id"] for r in body["results"]]


def worker_a_records(api: ApiEnv, first_name: str, declaration: str) -> int:
    """A consenting resident of centre A (the module's data: withdraw the consent when done)."""
    with db.session() as session:
        created = create_resident(session, matching, api.users["worker_a"], ResidentInput(
            first_name=first_name, last_initial="M", territory_id=api.ids["tilleuls"], languages=["fr"],
            consent_given_on=date.today(), consent_method="paper_signed", consent_matching=True,
            declaration=declaration), 12, date.today())
        return created.resident.id or 0


def withdraw(api: ApiEnv, resident_id: int) -> None:
    with db.session() as session:
        person = session.get(Resident, resident_id)
        assert person is not None
        withdraw_consent(session, api.users["worker_a"], person)


def test_search_residents_leaves_out_who_withdrew_consent(api: ApiEnv) -> None:
    chloe = worker_a_records(api, "Chloé", "Je couds des rideaux et je fais des retouches.")
    text = "Quelqu'un qui fait de la couture et des retouches."
    assert {chloe, api.ids["rid"]} <= set(resident_ids(api, "worker_a", text))
    withdraw(api, chloe)
    found = resident_ids(api, "worker_a", text)
    assert api.ids["rid"] in found and chloe not in found
    assert chloe not in resident_ids(api, "admin", text)


def test_search_residents_leaves_out_who_said_they_cannot_do_it(api: ApiEnv) -> None:
    """« Je ne sais pas conduire » is not indexed, so the person came up for a driving text on
    their cooking; they still come up for cooking. (Consent withdrawn after: the module's data.)"""
    dara = worker_a_records(api, "Dara", "Je ne sais pas conduire. Je fais la cuisine pour les fêtes.")
    try:
        assert dara not in resident_ids(api, "worker_a", "Conduire des personnes âgées en voiture.")
        assert dara in resident_ids(api, "worker_a", "Cuisiner pour la fête du quartier.")
    finally:
        withdraw(api, dara)


def test_search_residents_returns_whole_profiles_with_their_consent(api: ApiEnv) -> None:
    response = api.call("POST", "/api/v1/search/residents", "admin",
                        json={"text": "Je cherche une couturière.", "limit": 20})
    api.validate(response)
    results = {r["resident"]["id"]: r["resident"] for r in response.get_json()["results"]}
    awa = results[api.ids["rid"]]
    assert awa["first_name"] == "Awa" and awa["organisation_id"] == api.ids["centre_a"]
    assert awa["consent"]["valid"] is True and awa["consent"]["method"] == "paper_signed"


def test_search_needs_leaves_out_closed_needs_unless_asked(api: ApiEnv) -> None:
    with db.session() as session:
        need, _ = create_need(session, matching, api.users["member"], NeedInput(
            title="Atelier tricot", description="Tricoter des écharpes avec les enfants."), date.today())
        need.status = NeedStatus.CLOSED
        session.add(need)
        session.commit()
        closed = need.id or 0
    query = {"text": "Je tricote des écharpes et des bonnets.", "limit": 20}
    body = api.call("POST", "/api/v1/search/needs", "member", json=query).get_json()
    assert closed not in {r["need"]["id"] for r in body["results"]}
    response = api.call("POST", "/api/v1/search/needs", "member", json={**query, "include_closed": True})
    api.validate(response)
    found = {r["need"]["id"]: r["need"] for r in response.get_json()["results"]}
    assert found[closed]["title"] == "Atelier tricot" and found[closed]["status"] == "closed"
    # Another association reads neither the closed need nor the open one.
    other = api.call("POST", "/api/v1/search/needs", "member_b", json={**query, "include_closed": True})
    assert {r["need"]["id"] for r in other.get_json()["results"]} & {closed, api.ids["need"]} == set()


def test_a_text_never_seen_is_encoded_in_one_model_call(api: ApiEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    """The statements quoted in the answer and the texts the ranker searches with go to the
    sentence encoder together, and the ranking reuses them: one model call per new text."""
    assert isinstance(matching.embedder, RecentVectors)
    model = matching.embedder.inner
    calls: list[list[str]] = []
    encode = model.encode
    monkeypatch.setattr(model, "encode", lambda texts: calls.append(list(texts)) or encode(texts))
    searches = (("/api/v1/search/residents", "Une couturière pour l'atelier du mardi, qui parle tamoul."),
                ("/api/v1/search/needs", "Je répare les vélos des voisins et je parle wolof."))
    for path, text in searches:
        calls.clear()
        found = api.call("POST", path, "admin", json={"text": text, "limit": 5})
        assert found.status_code == 200 and found.get_json()["results"]
        assert len(calls) == 1, calls
        assert normalise(text) in calls[0]  # the ranker's retrieval text, with the statements


def test_a_search_quotes_weak_pairs_only_first(api: ApiEnv) -> None:
    """A second or third pair below SECOND_PAIR_MIN read as a reason, as on the proposals."""
    from web.services.proposals import SECOND_PAIR_MIN

    text = "Je cherche une couturière. La formation hygiène est prise en charge. Le local est au 2e étage."
    body = api.call("POST", "/api/v1/search/residents", "admin", json={"text": text, "limit": 20}).get_json()
    assert body["results"]
    for result in body["results"]:
        assert all(pair["similarity"] >= SECOND_PAIR_MIN for pair in result["pairs"][1:]), result["pairs"]
    assert any(len(r["pairs"]) == 1 for r in body["results"])  # a weak second pair left out
