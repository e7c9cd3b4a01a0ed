"""Hostile free text through the pages and the API: stored safely, shown inert, never a crash.

A resident's declaration, a need's description, a review note and a resident's comment are typed by
people and sent by partner tools. Whatever they hold (markup, SQL, emoji, right-to-left Arabic,
control characters, NUL bytes, invalid UTF-8, lone surrogates, a megabyte), the answer is a page or
a refusal with a message, never a server error; pages show the text escaped (no element or event
handler comes from it), the API returns valid JSON, and nothing half-written stays behind.
"""

from __future__ import annotations

import json
import urllib.parse
from datetime import date
from html.parser import HTMLParser
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from models import Direction, Match, MatchStatus, Need, Resident, SkillDeclaration, User
from tests.conftest import Auth, World, add_resident, need_form, resident_form
from tests.matcher.test_hostile_text import ANY_CHARACTER, FRAGMENTS
from web.api.tokens import create_token
from web.extensions import matching
from web.services.needs import NeedInput, create_need
from web.services.proposals import Proposal, store_proposals
from web.services.queries import row_id

NEW_RESIDENT = "/accompagnement/residents/nouveau"
NEW_NEED = "/structure/besoins/nouveau"
MARKUP = "<script>alert('x')</script><img src=x onerror=alert(1)><a href=\"javascript:alert(1)\">a</a>"
CASES = {
    "markup": f"Je couds des robes. {MARKUP}",
    "sql": "Je cuisine'); DROP TABLE resident; -- et je répare\" OR 1=1 --",
    "emoji": "Je cuisine 👩🏽‍🍳 pour quarante 🇲🇦 et je couds 🧵",
    "arabic": "أطبخ الكسكس للأعراس. Je parle arabe \u202eet français\u202c.",
    "controls": "Je\x07 répare\x1b[31m les vélos\x0b\x0c\r\n\u2028 le mercredi\u200b.",
    "nul": "Je couds\x00 des robes\x00.",
    "surrogate": "Je couds \ud800 des robes \udfff.",
    "template": "Je cuisine {{ 7*7 }} {% raw %} ${jndi:ldap://127.0.0.1/a} %s%n",
}
PAGE_TEXT = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(ANY_CHARACTER, max_size=30)),
                     min_size=1, max_size=8).map(lambda parts: "Je couds des robes. " + "".join(parts))


class ActiveContent(HTMLParser):
    """Everything in a page that could run or load: scripts, frames, handlers, javascript: links."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"iframe", "object", "embed", "math", "base", "frame"}:
            self.found.append(tag)
        if tag == "script" and not dict(attrs).get("src", "").startswith("/static/"):
            self.found.append("inline script")
        if tag == "img" and not (dict(attrs).get("src") or "").startswith(("/static/", "data:")):
            self.found.append(f"img {attrs}")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"{tag} {name}")
            if name in {"href", "src", "action", "formaction"} and (value or "").strip().lower(
            ).startswith("javascript:"):
                self.found.append(f"{tag} {name}={value}")


def inert(page: str) -> None:
    """No active content in the page, and the markup payload (if any) is shown escaped."""
    parser = ActiveContent()
    parser.feed(page)
    assert parser.found == [], parser.found
    assert "<script>alert" not in page and "<img src=x" not in page


def form_body(fields: dict[str, Any]) -> bytes:
    """A form as a browser sends it; a lone surrogate becomes invalid UTF-8, as from a broken client."""
    pairs = []
    for key, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((key, str(item).encode("utf-8", "surrogatepass")))
    return urllib.parse.urlencode(pairs).encode()


def post_form(client: FlaskClient, auth: Auth, path: str, fields: dict[str, Any],
              token_from: str = "/") -> Any:
    body = form_body({**fields, "csrf_token": auth.token(token_from)})
    return client.post(path, data=body, content_type="application/x-www-form-urlencoded")


def valid_json(raw: bytes) -> Any:
    """Strict: UTF-8 without surrogates, JSON without NaN."""
    def refuse(value: str) -> None:
        raise AssertionError(f"non-standard JSON constant {value}")
    return json.loads(raw.decode("utf-8"), parse_constant=refuse)


def stored_cleanly(text: str) -> None:
    text.encode("utf-8")
    assert "\x00" not in text


# ---------------------------------------------------------------- pages

@pytest.mark.parametrize("case", list(CASES))
def test_declarations_through_the_page(client: FlaskClient, auth: Auth, world: World,
                                       session: Session, case: str) -> None:
    auth.login(world.worker_a.email or "")
    text = CASES[case]
    form = {**resident_form(text, world.tilleuls), "first_name": f"<b>{case}</b>", "sensitive_ok": "y"}
    response = post_form(client, auth, NEW_RESIDENT, form, token_from=NEW_RESIDENT)
    assert response.status_code in (200, 302), response.get_data(as_text=True)[:500]
    inert(response.get_data(as_text=True))
    person = session.exec(select(Resident).where(Resident.first_name == f"<b>{case}</b>")).first()
    assert person is not None, response.get_data(as_text=True)[-3000:]
    declaration = session.exec(select(SkillDeclaration).where(
        SkillDeclaration.resident_id == person.id)).one()
    stored_cleanly(declaration.text)
    assert "Je" in declaration.text
    page = client.get(f"/accompagnement/residents/{person.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    inert(html)
    assert "&lt;b&gt;" + case in html  # the first name is shown, escaped
    if case == "markup":
        assert "&lt;script&gt;alert(" in html


@settings(max_examples=12, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=PAGE_TEXT)
def test_any_declaration_text_gives_a_page_never_an_error(client: FlaskClient, auth: Auth,
                                                          world: World, text: str) -> None:
    if client.get("/accompagnement/").status_code != 200:
        auth.login(world.worker_a.email or "")
    response = post_form(client, auth, NEW_RESIDENT,
                         {**resident_form(text, world.tilleuls), "sensitive_ok": "y"},
                         token_from=NEW_RESIDENT)
    assert response.status_code in (200, 302)
    follow = client.get(response.headers["Location"]) if response.status_code == 302 else response
    assert follow.status_code == 200
    inert(follow.get_data(as_text=True))


def test_a_megabyte_is_refused_with_a_message_and_nothing_written(
        client: FlaskClient, auth: Auth, world: World, session: Session) -> None:
    auth.login(world.worker_a.email or "")
    text = ("Je cuisine pour quarante personnes. " * 30_000)[:1_000_000]
    response = post_form(client, auth, NEW_RESIDENT, resident_form(text, world.tilleuls),
                         token_from=NEW_RESIDENT)
    assert response.status_code == 200
    assert "plus de 10000 caractères" in response.get_data(as_text=True)
    assert session.exec(select(Resident)).all() == []


@pytest.mark.parametrize("case", list(CASES))
def test_need_descriptions_through_the_page(client: FlaskClient, auth: Auth, world: World,
                                            session: Session, case: str) -> None:
    auth.login(world.member.email or "")
    form = need_form(f"Atelier {case} <i>x</i>", CASES[case])
    response = post_form(client, auth, NEW_NEED, form, token_from=NEW_NEED)
    assert response.status_code in (200, 302)
    need = session.exec(select(Need).where(Need.title == f"Atelier {case} <i>x</i>")).first()
    assert need is not None, response.get_data(as_text=True)[-2000:]
    stored_cleanly(need.description)
    page = client.get(f"/structure/besoins/{need.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    inert(html)
    assert "&lt;i&gt;x&lt;/i&gt;" in html


def proposal(session: Session, world: World, resident_id: int, status: MatchStatus) -> Match:
    need = Need(organisation_id=world.association.id or 0, title="Couture", description="Couture.",
                created_by_id=world.member.id or 0)
    session.add(need)
    session.commit()
    store_proposals(session, [Proposal(need.id or 0, resident_id, 0.5, {})], Direction.NEED_TO_RESIDENT)
    match = session.exec(select(Match).where(Match.need_id == need.id)).one()
    match.status = status
    session.add(match)
    session.commit()
    return match


@pytest.mark.parametrize("case", list(CASES))
def test_review_notes_and_resident_comments_through_the_pages(
        client: FlaskClient, auth: Auth, world: World, session: Session, case: str) -> None:
    created = add_resident(session, world, "Awa", "Je couds des robes.")
    rid = created.resident.id or 0
    rejected = proposal(session, world, rid, MatchStatus.PROPOSED)
    approved = proposal(session, world, rid, MatchStatus.APPROVED)
    note = CASES[case][:900]

    auth.code_login(created.access_code)
    response = post_form(client, auth, f"/moi/propositions/{approved.id}/oui",
                         {"comment": CASES[case][:500]}, token_from="/moi/")
    assert response.status_code == 302
    auth.logout()

    auth.login(world.worker_a.email or "")
    response = post_form(client, auth, f"/accompagnement/propositions/{rejected.id}/refuser",
                         {"reason_code": "other", "reason_text": note})
    assert response.status_code == 302
    session.expire_all()
    for match in (session.get(Match, rejected.id), session.get(Match, approved.id)):
        assert match is not None
        for text in (match.rejection_note, match.resident_comment):
            if text:
                stored_cleanly(text)
    assert session.get(Match, rejected.id).status == MatchStatus.REJECTED  # type: ignore[union-attr]
    assert session.get(Match, approved.id).status == MatchStatus.ACCEPTED  # type: ignore[union-attr]
    page = client.get(f"/accompagnement/residents/{rid}")
    assert page.status_code == 200
    inert(page.get_data(as_text=True))
    desk = client.get("/accompagnement/propositions")
    assert desk.status_code == 200
    inert(desk.get_data(as_text=True))


# ---------------------------------------------------------------- API

def api_call(client: FlaskClient, method: str, path: str, token: str, body: Any) -> Any:
    """JSON as a partner tool sends it: lone surrogates travel as \\ud800 escapes."""
    return client.open(path, method=method, data=json.dumps(body, ensure_ascii=True),
                       headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})


@pytest.mark.parametrize("case", list(CASES))
def test_the_api_stores_and_returns_hostile_text_as_valid_json(
        client: FlaskClient, world: World, session: Session, case: str) -> None:
    text = CASES[case]
    created = add_resident(session, world, "Awa", "Je couds des robes.")
    rid = created.resident.id or 0
    worker = create_token(session, world.worker_a, "w", True, None).secret
    member = create_token(session, world.member, "m", True, None).secret
    resident_user = session.exec(select(User).where(User.resident_id == rid)).one()
    resident = create_token(session, resident_user, "r", True, None).secret
    rejected = proposal(session, world, rid, MatchStatus.PROPOSED)
    approved = proposal(session, world, rid, MatchStatus.APPROVED)

    calls = [  # the review and the answer first: a new declaration withdraws pending proposals
        ("POST", f"/api/v1/proposals/{rejected.id}/reject", worker,
         {"reason_code": "other", "note": text}),
        ("POST", f"/api/v1/opportunities/{approved.id}/answer", resident,
         {"accept": True, "comment": text[:500]}),
        ("PUT", f"/api/v1/residents/{rid}/declaration", worker, {"text": text}),
        ("POST", "/api/v1/needs", member, {"title": text[:200], "description": text}),
        ("POST", "/api/v1/search/needs", worker, {"text": text}),
        ("POST", "/api/v1/search/residents", worker, {"text": text}),
    ]
    for method, path, token, body in calls:
        response = api_call(client, method, path, token, body)
        assert response.status_code < 500, (path, response.get_data(as_text=True))
        payload = valid_json(response.get_data())
        if response.status_code >= 400:
            assert response.mimetype == "application/problem+json" and payload["detail"], payload
    reads = [f"/api/v1/residents/{rid}/declaration", f"/api/v1/proposals/{approved.id}",
             f"/api/v1/residents/{rid}", "/api/v1/needs?limit=200"]
    for path in reads:
        token = member if "needs" in path else worker
        response = client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, (path, response.get_data(as_text=True))
        valid_json(response.get_data())
    session.expire_all()
    for row in session.exec(select(SkillDeclaration).where(SkillDeclaration.resident_id == rid)).all():
        stored_cleanly(row.text)
    for need in session.exec(select(Need)).all():
        stored_cleanly(need.description)
        stored_cleanly(need.title)


def test_a_megabyte_through_the_api_is_refused(client: FlaskClient, world: World, session: Session) -> None:
    created = add_resident(session, world, "Awa", "Je couds des robes.")
    worker = create_token(session, world.worker_a, "w", True, None).secret
    text = ("Je cuisine pour quarante personnes. " * 30_000)[:1_000_000]
    response = api_call(client, "PUT", f"/api/v1/residents/{created.resident.id}/declaration",
                        worker, {"text": text})
    assert response.status_code in (413, 422)
    assert valid_json(response.get_data())["detail"]
    declarations = session.exec(select(SkillDeclaration)).all()
    assert [d.text for d in declarations] == ["Je couds des robes."]


@pytest.mark.parametrize(("raw", "expected"), [
    ("12", 12), (" 7 ", 7), (str(2**31 - 1), 2**31 - 1), ("0", None), ("-3", None), ("abc", None),
    ("", None), (None, None), ("²", None), ("١٢", None), ("1e3", None), (str(2**31), None),
    (str(2**63), None), ("9" * 400, None)])
def test_a_row_id_is_ascii_digits_within_the_keys_range(raw: str | None, expected: int | None) -> None:
    assert row_id(raw) == expected  # "²" and "١٢" (Arabic-Indic) pass str.isdigit()


@pytest.mark.parametrize("value", ["²", "١٢", str(2**63), "0"])
def test_ids_in_addresses_and_forms_give_a_page_or_a_refusal(client: FlaskClient, auth: Auth, world: World,
                                                            session: Session, value: str) -> None:
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Cours de couture", description="Animer un atelier de couture."), date.today())
    quoted = urllib.parse.quote(value)
    auth.login(world.admin.email or "")
    for path in (f"/accompagnement/propositions?besoin={quoted}&quartier={quoted}",
                 f"/impact/?quartier={quoted}", f"/admin/journal?object_id={quoted}&actor_id={quoted}"):
        assert client.get(path).status_code == 200, path  # the filter ignored
    for path, field in ((f"/accompagnement/besoins/{need.id}/proposer", "resident_id"),
                        ("/accompagnement/propositions/valider-la-selection", "match_ids")):
        response = auth.post(path, {field: value}, token_from=f"/accompagnement/besoins/{need.id}")
        assert response.status_code == 400, path  # type: ignore[attr-defined]


def test_a_nul_in_a_query_string_is_dropped_before_any_query(client: FlaskClient, auth: Auth,
                                                             world: World) -> None:
    """PostgreSQL refuses NUL in text: the filters of the journal and of the residents' list
    were 500s there. The character is dropped as it is from forms."""
    auth.login(world.admin.email or "")
    for path in ("/admin/journal?action=need%00.create&object_type=%00", "/accompagnement/?nom=Aw%00a",
                 "/accompagnement/propositions?besoin=%00"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "\x00" not in response.get_data(as_text=True), path
