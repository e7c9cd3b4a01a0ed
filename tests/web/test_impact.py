"""The impact dashboard on a known world: the right numbers in the SVG, the tables and the CSV,
and no count from 1 to 4 anywhere."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlmodel import Session, select

from models import Match, MatchStatus, Need, Outcome, Resident
from tests.conftest import Auth, World, add_resident
from web.extensions import matching
from web.services.categories import OTHER, categorise
from web.services.charts import Series, horizontal_bars, vertical_bars
from web.services.impact import Period, _masked, first_activations, hide_small, proposals_per_month
from web.services.privacy import erase_resident

SVG = re.compile(r"<svg\b.*?</svg>", re.S)
NS = {"s": "http://www.w3.org/2000/svg"}


def bars(svg: str) -> dict[str, tuple[float, float, str]]:
    """Each bar of a chart by its tooltip: (width, height, data-value). Also proves the SVG parses."""
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("role") == "img"
    assert root.find("s:title", NS) is not None and root.find("s:desc", NS) is not None
    out = {}
    for rect in root.iter("{http://www.w3.org/2000/svg}rect"):
        title = rect.find("s:title", NS)
        if title is not None and title.text:
            out[title.text] = (float(rect.get("width", "0")), float(rect.get("height", "0")),
                               rect.get("data-value", ""))
    return out


def charts(page: str) -> list[str]:
    return SVG.findall(page)


@pytest.mark.parametrize(("text", "category"), [
    ("Je fais la cuisine pour toute la famille", "cuisine"),
    ("je prépare des gâteaux et des pâtisseries", "cuisine"),
    ("Je couds des robes", "couture"),
    ("Je traduis de l'arabe vers le français", "langues"),
    ("Je répare les machines à laver et je fais de la plomberie", "bricolage"),
    ("Je sais me servir d'un ordinateur et d'internet", "numerique"),
    ("Je garde les enfants de mes voisines après l'école", "enfance"),
    ("Je m'occupe de ma grand-mère malade", "soin"),
    ("Je m'occupe d'un potager", "jardinage"),
    ("Je joue de la guitare et je chante", "art"),
    ("J'ai le permis et je conduis un camion", "transport"),
    ("J'aide les gens à remplir leurs papiers pour la CAF", "administratif"),
    ("J'étais vendeuse dans une boutique", "commerce"),
    ("Je suis quelqu'un de patient", OTHER),
])
def test_statements_fall_in_general_skill_categories(text: str, category: str) -> None:
    assert categorise(text) == category


def test_lemmas_count_as_well_as_words() -> None:
    assert categorise("je coud", ["coudre"]) == "couture"
    assert categorise("jsais fr des gato", ["savoir", "gateau"]) == "cuisine"


def test_counts_from_one_to_four_are_hidden() -> None:
    assert [hide_small(v) for v in (0, 1, 4, 5, 12)] == [0, None, None, 5, 12]


def test_period_parsing() -> None:
    today = date(2026, 5, 17)
    assert Period.parse(None, None, today) == Period(date(2025, 6, 1), date(2026, 5, 1))
    assert Period.parse("2026-03", "2026-01", today) == Period(date(2026, 1, 1), date(2026, 3, 1))
    assert Period.parse("nonsense", "2026-13", today) == Period(date(2025, 6, 1), date(2026, 5, 1))
    assert len(Period.parse("2001-01", "2026-01", today).months()) == 60


def test_chart_bars_are_proportional_and_hidden_counts_have_no_bar() -> None:
    svg = str(horizontal_bars("T", "D", ["a", "b", "c"], [Series("s", [10, None, 5])]))
    found = bars(svg)
    assert found["a : 10"][0] == pytest.approx(2 * found["c : 5"][0])
    assert found["b : < 5"] == (0.0, 14.0, "< 5")
    svg = str(vertical_bars("T", "D", ["x", "y"], [Series("one", [4 * 5, 0]), Series("two", [None, 5])]))
    found = bars(svg)
    assert found["x — one : 20"][1] == pytest.approx(4 * found["y — two : 5"][1])
    assert found["x — two : < 5"][1] == 0.0 and found["y — one : 0"][1] == 0.0


@pytest.fixture
def skills_world(session: Session, world: World) -> World:
    """6 cooks and 2 seamstresses in Les Tilleuls, 5 gardeners in Le Bourg, one cook whose consent
    expired (not counted)."""
    for i in range(6):
        add_resident(session, world, f"Cuisine{i}", "Je fais la cuisine pour toute la famille.")
    for i in range(2):
        add_resident(session, world, f"Couture{i}", "Je couds des robes et je fais des retouches.")
    for i in range(5):
        add_resident(session, world, f"Jardin{i}", "Je m'occupe d'un potager.",
                     territory_id=world.bourg.id)
    add_resident(session, world, "Plustard", "Je fais la cuisine.",
                 given_on=date.today() - timedelta(days=400))
    return world


def test_skills_by_category_and_neighbourhood(client: FlaskClient, auth: Auth, skills_world: World) -> None:
    auth.login(skills_world.member.email or "")
    page = client.get("/impact/").get_data(as_text=True)
    # The CSP allows neither inline: the page's only script is the site's own send-once file.
    assert re.findall(r"<script\b[^>]*>", page) == ['<script src="/static/once.js" defer>']
    assert "style=" not in page
    found = bars(charts(page)[0])
    cooks = found["Cuisine — Les Tilleuls : 6"]
    gardeners = found["Jardinage, nature — Le Bourg : 5"]
    assert cooks[2] == "6" and gardeners[2] == "5"
    assert cooks[0] == pytest.approx(gardeners[0] * 6 / 5)
    assert found["Couture, tricot — Les Tilleuls : < 5"][0] == 0.0
    assert found["Cuisine — Le Bourg : 0"][0] == 0.0
    assert not any(title.endswith(": 2") or title.endswith(": 7") for title in found)
    assert "<td>&lt; 5</td>" in page  # the text alternative says the same

    csv = client.get("/impact/competences.csv")
    assert csv.headers["Content-Type"] == "text/csv; charset=utf-8"  # once, not twice
    assert csv.get_data(as_text=True) == (
        "\ufeffSavoir-faire;Le Bourg;Les Tilleuls\r\n"
        "Cuisine;0;6\r\n"
        "Couture, tricot;0;< 5\r\n"
        "Jardinage, nature;5;0\r\n")

    only_bourg = client.get(f"/impact/competences.csv?quartier={skills_world.bourg.id}")
    assert only_bourg.get_data(as_text=True) == "\ufeffSavoir-faire;Le Bourg\r\nJardinage, nature;5\r\n"


def test_a_neighbourhood_name_never_runs_as_a_formula_in_the_csv(
        client: FlaskClient, auth: Auth, skills_world: World, session: Session) -> None:
    """Neighbourhood names, typed by admins, are the CSV's column headers: « =HYPERLINK(…) » ran
    in the spreadsheet of whoever opened the export."""
    skills_world.bourg.name = '=HYPERLINK("http://evil.example","Le Bourg")'
    session.add(skills_world.bourg)
    session.commit()
    auth.login(skills_world.member.email or "")
    header = client.get("/impact/competences.csv").get_data(as_text=True).splitlines()[0]
    assert header.startswith("\ufeffSavoir-faire;\"'=HYPERLINK(")


def _at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=10, tzinfo=UTC)


@pytest.fixture
def history(session: Session, world: World) -> World:
    """Proposals with known dates in January–February 2026 (see the expected tables below)."""
    def person(name: str, territory_id: int | None) -> int:
        r = Resident(first_name=name, territory_id=territory_id or 0, organisation_id=world.centre_a.id or 0,
                     created_by_id=world.worker_a.id or 0)
        session.add(r)
        session.flush()
        return r.id or 0

    tilleuls = [person(f"T{i}", world.tilleuls.id) for i in range(8)]
    bourg = person("B0", world.bourg.id)
    needs = [Need(organisation_id=world.association.id or 0, title=f"Besoin {i}", description="…",
                  created_by_id=world.member.id or 0) for i in range(2)]
    session.add_all(needs)
    session.flush()
    n0, n1 = (n.id or 0 for n in needs)

    def match(resident: int, need: int, created: str, status: str, reviewed: str | None = None,
              answered: str | None = None, outcome: str | None = None, outcome_at: str | None = None) -> None:
        session.add(Match(need_id=need, resident_id=resident, status=status, direction="need_to_resident",
                          score=0.5, created_at=_at(created), reviewed_at=_at(reviewed) if reviewed else None,
                          answered_at=_at(answered) if answered else None, outcome=outcome,
                          outcome_at=_at(outcome_at) if outcome_at else None))

    for i in range(5):  # January: made, approved, accepted; two of them happened in February
        happened = Outcome.HAPPENED if i < 2 else (Outcome.DID_NOT_HAPPEN if i == 2 else None)
        match(tilleuls[i], n0, "2026-01-10", MatchStatus.ACCEPTED, "2026-01-12", "2026-01-15",
              happened, "2026-02-20" if happened else None)
    match(tilleuls[5], n0, "2026-01-10", MatchStatus.DECLINED, "2026-01-12", "2026-02-02")
    match(tilleuls[6], n0, "2026-01-10", MatchStatus.REJECTED, "2026-01-12")
    match(bourg, n0, "2026-01-10", MatchStatus.ACCEPTED, "2026-01-12", "2026-01-15")
    match(tilleuls[0], n1, "2026-02-01", MatchStatus.ACCEPTED, "2026-02-02", "2026-02-03")  # not a first yes
    match(tilleuls[7], n1, "2026-02-01", MatchStatus.ACCEPTED, "2026-02-02", "2026-02-05")
    session.commit()
    return world


def test_proposals_and_first_activations_per_month(client: FlaskClient, auth: Auth, history: World) -> None:
    auth.login(history.worker_a.email or "")
    period = "debut=2026-01&fin=2026-03"
    assert client.get(f"/impact/propositions.csv?{period}").get_data(as_text=True) == (
        "\ufeffMois;faites;validées;acceptées;réalisées\r\n"
        "01/26;8;7;6;0\r\n"
        "02/26;< 5;< 5;< 5;< 5\r\n"
        "03/26;0;0;0;0\r\n")
    assert client.get(f"/impact/activations.csv?{period}").get_data(as_text=True) == (
        "\ufeffMois;personnes\r\n01/26;6\r\n02/26;< 5\r\n03/26;0\r\n")

    # Les Tilleuls' own counts beside the total were Bourg's hidden ones by subtraction (8 - 7 = 1):
    # masked too, as Bourg's are hidden.
    local = f"{period}&quartier={history.tilleuls.id}"
    assert client.get(f"/impact/propositions.csv?{local}").get_data(as_text=True).splitlines()[1] == \
        "01/26;masqué;masqué;masqué;0"
    assert client.get(f"/impact/activations.csv?{local}").get_data(as_text=True).splitlines()[1:3] == \
        ["01/26;masqué", "02/26;< 5"]
    bourg = f"{period}&quartier={history.bourg.id}"
    assert client.get(f"/impact/propositions.csv?{bourg}").get_data(as_text=True).splitlines()[1] == \
        "01/26;< 5;< 5;< 5;0"

    page = client.get(f"/impact/?{period}").get_data(as_text=True)
    months, first = charts(page)  # no declaration in this world: no skills chart
    found = bars(months)
    assert {found[f"01/26 — {name} : {n}"][2] for name, n in
            (("faites", 8), ("validées", 7), ("acceptées", 6))} == {"8", "7", "6"}
    assert found["01/26 — faites : 8"][1] == pytest.approx(found["01/26 — acceptées : 6"][1] * 8 / 6)
    assert found["02/26 — faites : < 5"][1] == 0.0
    assert not [t for t in found if t.startswith("02/26") and not t.endswith("< 5")]
    assert bars(first)["01/26 : 6"][2] == "6"
    assert 'href="/impact/propositions.csv?' in page and "debut=2026-01" in page
    masked = bars(charts(client.get(f"/impact/?{local}").get_data(as_text=True))[0])
    assert masked["01/26 — faites : masqué"][1] == 0.0 and "(« masqué »)" in page  # the lead says why


def test_a_hidden_count_is_never_alone_beside_a_total() -> None:
    """The smallest other counts are masked until two are hidden and they add up to 5 or more."""
    assert _masked({1: 3, 2: 40, 3: 9}) == {3}
    assert _masked({1: 1, 2: 2, 3: 9, 4: 12}) == {3}
    assert _masked({1: 3, 2: 4, 3: 9}) == set()
    assert _masked({1: 7, 2: 9}) == set() and _masked({1: 3}) == set()
    assert _masked({1: 2, None: 6}) == {None}  # erased people's neighbourhood unknown


def test_months_are_utc_months(session: Session, world: World) -> None:
    """A proposal made on 1 February at 00:30 in Paris (31 January, 23:30 UTC) counts in January,
    on either database (months are counted in SQL)."""
    paris = timezone(timedelta(hours=1))
    people = [Resident(first_name=f"P{i}", territory_id=world.tilleuls.id or 0,
                       organisation_id=world.centre_a.id or 0, created_by_id=world.worker_a.id or 0)
              for i in range(6)]
    need = Need(organisation_id=world.association.id or 0, title="Besoin", description="…",
                created_by_id=world.member.id or 0)
    session.add_all([*people, need])
    session.flush()
    for i, person in enumerate(people):
        made = datetime(2026, 2, 1, 0 if i < 5 else 1, 30, tzinfo=paris)
        session.add(Match(need_id=need.id or 0, resident_id=person.id or 0, status=MatchStatus.ACCEPTED,
                          direction="need_to_resident", score=0.5, created_at=made, reviewed_at=made,
                          answered_at=made))
    session.commit()
    if session.get_bind().dialect.name == "postgresql":  # a server that would show Paris time
        session.exec(text("SET TIME ZONE 'Europe/Paris'"))  # type: ignore[call-overload]
    period = Period.parse("2026-01", "2026-02", date.today())
    assert proposals_per_month(session, None, period).counts == [[5, 5, 5, 0], [1, 1, 1, 0]]
    assert first_activations(session, world.tilleuls.id, period).counts == [[5], [1]]
    assert first_activations(session, world.bourg.id, period).counts == [[0], [0]]


def test_erased_residents_proposals_stay_counted(client: FlaskClient, auth: Auth, session: Session,
                                                 history: World) -> None:
    """Erasure keeps anonymous counts: the proposals made in January do not vanish from the chart."""
    period = "debut=2026-01&fin=2026-01"
    auth.login(history.worker_a.email or "")
    before = client.get(f"/impact/propositions.csv?{period}").get_data(as_text=True).splitlines()[1]
    assert before == "01/26;8;7;6;0"
    t6 = session.exec(select(Resident).where(Resident.first_name == "T6")).one()  # one rejected proposal
    erase_resident(session, matching, history.worker_a, t6, "worker")
    after = client.get(f"/impact/propositions.csv?{period}").get_data(as_text=True).splitlines()[1]
    assert after == "01/26;8;7;6;0"


def test_unknown_export_is_404(client: FlaskClient, auth: Auth, world: World) -> None:
    auth.login(world.admin.email or "")
    assert client.get("/impact/personnes.csv").status_code == 404
    assert client.get("/impact/").status_code == 200  # an empty dashboard renders too
