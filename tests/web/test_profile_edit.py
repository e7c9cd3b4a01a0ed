"""A social worker changes a person's neighbourhood, languages, availability and wishes as life
changes them; matching follows, the journal says what changed, never a name."""

from __future__ import annotations

import html
import re
from datetime import date, timedelta

from flask.testing import FlaskClient
from sqlmodel import Session, select

from models import AuditEvent, Consent, Match, MatchStatus, Resident, User
from tests.conftest import Auth, World, add_resident
from tests.web.test_habitant_relais import only_resident, submit_person
from web.extensions import matching
from web.services.needs import NeedInput, create_need

SEWING = "Je couds des robes, je fais des retouches et je tricote."


def edit_path(resident_id: int | None) -> str:
    return f"/accompagnement/residents/{resident_id}/profil"


def profile_form(world: World, **overrides: object) -> dict[str, object]:
    form: dict[str, object] = {"first_name": "Awa", "last_initial": "D", "territory_id": world.tilleuls.id,
                               "languages": ["fr"], "availability": ["weekend"], "wants": ["volunteering"]}
    return {**form, **overrides}


def test_a_new_language_brings_the_needs_that_ask_for_it(client: FlaskClient, auth: Auth,
                                                          session: Session, world: World) -> None:
    awa = add_resident(session, world, "Awa", SEWING, initial="D", languages=["fr"]).resident
    need, proposed = create_need(session, matching, world.member, NeedInput(
        title="Atelier couture en wolof", description="Animer un atelier de couture et de retouches.",
        languages=["wo"]), date.today())
    assert proposed == 0  # the need asks for Wolof: a hard filter

    auth.login(world.worker_a.email or "")
    page = client.get(f"/accompagnement/residents/{awa.id}").get_data(as_text=True)
    assert "Les Tilleuls (Saint-Aubin)" in page and edit_path(awa.id) in page
    form = client.get(edit_path(awa.id)).get_data(as_text=True)
    assert 'value="Awa"' in form and re.search(r'<input checked[^>]* value="fr">', form)
    moved = profile_form(world, languages=["fr", "wo"], territory_id=world.bourg.id)
    done = auth.post(edit_path(awa.id), moved, token_from=edit_path(awa.id), follow_redirects=True)
    shown = done.get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Profil modifié. Propositions à examiner pour cette personne : 1." in shown
    assert "français, wolof" in shown and "Le Bourg (Vaux)" in shown and "le week-end" in shown
    session.expire_all()
    person = session.get(Resident, awa.id)
    assert person is not None and person.languages == ["fr", "wo"] and person.territory_id == world.bourg.id
    assert person.availability == ["weekend"] and person.wants == ["volunteering"]
    match = session.exec(select(Match).where(Match.need_id == need.id)).one()
    assert match.resident_id == awa.id and match.status == MatchStatus.PROPOSED

    # Wolof ticked off again: the proposal nobody reviewed goes with it.
    auth.post(edit_path(awa.id), profile_form(world, languages=["fr"]), token_from=edit_path(awa.id))
    session.expire_all()
    assert session.exec(select(Match).where(Match.need_id == need.id)).all() == []
    events = session.exec(select(AuditEvent).where(AuditEvent.action == "resident.update")
                          .order_by(AuditEvent.id)).all()  # type: ignore[arg-type]
    assert [e.details["changes"]["languages"] for e in events] == [
        {"before": ["fr"], "after": ["fr", "wo"]}, {"before": ["fr", "wo"], "after": ["fr"]}]
    assert events[0].details["changes"]["territory_id"] == {"before": world.tilleuls.id,
                                                            "after": world.bourg.id}
    history = client.get(f"/accompagnement/residents/{awa.id}").get_data(as_text=True)
    assert "Profil modifié" in history
    assert re.search(r"langues :\s+français, wolof → français</li>", history)
    assert re.search(r"quartier :\s+Le Bourg → Les Tilleuls</li>", history)


def test_a_new_name_is_said_in_the_journal_not_written(client: FlaskClient, auth: Auth,
                                                       session: Session, world: World) -> None:
    awa = add_resident(session, world, "Awa", SEWING, initial="D", languages=["fr"],
                       availability=["weekend"], wants=["volunteering"]).resident
    auth.login(world.worker_a.email or "")
    auth.post(edit_path(awa.id), profile_form(world, first_name="Aïcha", last_initial="k"),
              token_from=edit_path(awa.id))
    session.expire_all()
    person = session.get(Resident, awa.id)
    assert person is not None and person.public_name == "Aïcha K."
    account = session.exec(select(User).where(User.resident_id == awa.id)).one()
    assert account.display_name == "Aïcha K."  # the resident's own pages greet them so
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "resident.update")).one()
    assert event.details == {"changes": {}, "renamed": True}
    assert "Aïcha" not in str(event.details) and "Awa" not in str(event.details)
    history = client.get(f"/accompagnement/residents/{awa.id}").get_data(as_text=True)
    assert "Prénom ou initiale changés" in history


def test_nothing_changed_writes_nothing(client: FlaskClient, auth: Auth, session: Session,
                                        world: World) -> None:
    awa = add_resident(session, world, "Awa", SEWING, initial="D", languages=["fr"],
                       availability=["weekend"], wants=["volunteering"]).resident
    auth.login(world.worker_a.email or "")
    page = auth.post(edit_path(awa.id), profile_form(world), token_from=edit_path(awa.id),
                     follow_redirects=True)
    assert "Rien n&#39;a changé." in page.get_data(as_text=True)  # type: ignore[attr-defined]
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "resident.update")).all() == []


def test_the_same_languages_in_another_order_are_no_change(client: FlaskClient, auth: Auth,
                                                            session: Session, world: World) -> None:
    """A profile holds its ticked languages then those its text names ("wo", then "fr"); the form
    sends its boxes in the screen's order: saving it untouched changes nothing."""
    awa = add_resident(session, world, "Awa", "Je parle français et je couds.", initial="D",
                       languages=["wo"], availability=["weekend"], wants=["volunteering"]).resident
    assert awa.languages == ["wo", "fr"]
    proposals_before = session.exec(select(Match).where(Match.resident_id == awa.id)).all()
    auth.login(world.worker_a.email or "")
    page = auth.post(edit_path(awa.id), profile_form(world, languages=["fr", "wo"]),
                     token_from=edit_path(awa.id), follow_redirects=True)
    assert "Rien n&#39;a changé." in page.get_data(as_text=True)  # type: ignore[attr-defined]
    session.expire_all()
    assert session.exec(select(Match).where(Match.resident_id == awa.id)).all() == proposals_before
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "resident.update")).all() == []


def test_languages_found_in_the_text_stay_when_the_form_is_saved(client: FlaskClient, auth: Auth,
                                                                 session: Session, world: World) -> None:
    """The text analysis recognises more languages than the boxes offer (German here): the form
    shows them ticked, by name, and saving it keeps them."""
    awa = add_resident(session, world, "Awa", "Je parle allemand et je fais de la couture.",
                       languages=["fr"]).resident
    assert set(awa.languages) == {"fr", "de"}
    auth.login(world.worker_a.email or "")
    form = client.get(edit_path(awa.id)).get_data(as_text=True)
    assert re.search(r'<input checked[^>]* value="de">', form) and "allemand" in form
    assert "allemand" in client.get(f"/accompagnement/residents/{awa.id}").get_data(as_text=True)
    auth.post(edit_path(awa.id), profile_form(world, languages=["fr", "de"], availability=[]),
              token_from=edit_path(awa.id))
    session.expire_all()
    person = session.get(Resident, awa.id)
    assert person is not None and set(person.languages) == {"fr", "de"} and person.availability == []


def test_a_bad_form_is_refused_beside_its_fields(client: FlaskClient, auth: Auth, session: Session,
                                                 world: World) -> None:
    awa = add_resident(session, world, "Awa", SEWING, languages=["fr"]).resident
    auth.login(world.worker_a.email or "")
    for overrides, message in [({"first_name": ""}, "Ce champ est requis."),
                               ({"territory_id": 999999}, "N&#39;est pas un choix valide"),
                               ({"languages": ["xx"]}, "n&#39;est pas un choix valide pour ce champ"),
                               ({"last_initial": "7"},
                                'id="last_initial-error"><p>L&#39;initiale doit être une lettre.')]:
        response = auth.post(edit_path(awa.id), profile_form(world, **overrides),
                             token_from=edit_path(awa.id), follow_redirects=True)
        page = response.get_data(as_text=True).replace("&#39;", "'")  # type: ignore[attr-defined]
        assert message.replace("&#39;", "'") in page, overrides
    session.expire_all()
    person = session.get(Resident, awa.id)
    assert person is not None and person.first_name == "Awa" and person.languages == ["fr"]
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "resident.update")).all() == []


def test_each_edit_says_how_many_proposals_wait_not_new_ones(client: FlaskClient, auth: Auth,
                                                             session: Session, world: World) -> None:
    """The proposals nobody reviewed are remade at each edit, most of them the same: « 1
    nouvelle(s) proposition(s) » after every change counted them as new."""
    awa = add_resident(session, world, "Awa", SEWING, initial="D", languages=["fr"]).resident
    create_need(session, matching, world.member, NeedInput(
        title="Atelier couture", description="Animer un atelier de couture et de retouches."), date.today())
    waiting = session.exec(select(Match).where(Match.resident_id == awa.id)).all()
    assert len(waiting) == 1
    auth.login(world.worker_a.email or "")
    for availability in (["weekday_evening"], ["weekend"]):
        done = auth.post(edit_path(awa.id), profile_form(world, availability=availability),
                         token_from=edit_path(awa.id), follow_redirects=True)
        shown = html.unescape(done.get_data(as_text=True))  # type: ignore[attr-defined]
        assert "Profil modifié. Propositions à examiner pour cette personne : 1." in shown
    text = auth.post(f"/accompagnement/residents/{awa.id}/declaration",
                     {"declaration": SEWING + " Je repasse aussi."},
                     token_from=f"/accompagnement/residents/{awa.id}", follow_redirects=True)
    shown = html.unescape(text.get_data(as_text=True))  # type: ignore[attr-defined]
    assert "Texte enregistré. Propositions à examiner pour cette personne : 1." in shown
    # Consent lapsed: the proposal waits off the desk until it is renewed, and the count says so.
    for consent in session.exec(select(Consent).where(Consent.resident_id == awa.id)).all():
        consent.expires_on = date.today() - timedelta(days=1)
        session.add(consent)
    session.commit()
    done = auth.post(edit_path(awa.id), profile_form(world, availability=["weekday_evening"]),
                     token_from=edit_path(awa.id), follow_redirects=True)
    lapsed = html.unescape(done.get_data(as_text=True))  # type: ignore[attr-defined]
    assert "Profil modifié. Propositions à examiner pour cette personne : 0." in lapsed
    # Two versions of one day: the history tells them apart by the time (« 07/12/2026 → 07/12/2026 »).
    assert re.search(r"version du texte :\s+\d\d/\d\d/\d{4} \d\d:\d\d → \d\d/\d\d/\d{4} \d\d:\d\d", shown)


def test_a_profile_waiting_for_validation_changes_out_of_matching(client: FlaskClient, auth: Auth,
                                                                  session: Session, world: World) -> None:
    create_need(session, matching, world.member, NeedInput(
        title="Atelier couture", description="Animer un atelier de couture et de retouches."), date.today())
    auth.login(world.relais.email or "")
    submit_person(auth, world, text=SEWING)
    sira = only_resident(session, "Sira")
    auth.logout()
    auth.login(world.worker_a.email or "")
    waiting = client.get("/accompagnement/a-valider").get_data(as_text=True)
    assert "Les Tilleuls (Saint-Aubin)" in waiting  # what the relais noted, beside the text
    response = auth.post(edit_path(sira.id), profile_form(world, first_name="Sira", languages=["fr", "wo"]),
                         token_from=edit_path(sira.id), follow_redirects=True)
    assert "Propositions à examiner pour cette personne : 0." in html.unescape(
        response.get_data(as_text=True))  # type: ignore[attr-defined]
    assert session.exec(select(Match).where(Match.resident_id == sira.id)).all() == []


def test_a_language_the_new_text_no_longer_says_leaves_with_the_old_text(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    """« je parle arabe » corrected to « je parle tamazight »: she stayed an Arabic speaker for the
    languages filter (interpreting needs) for good. The boxes ticked for another reason stay, and
    the screen says which language left."""
    awa = add_resident(session, world, "Awa", "Je parle arabe et je fais de la couture.",
                       languages=["fr"]).resident
    assert set(awa.languages) == {"fr", "ar"}
    auth.login(world.worker_a.email or "")
    path = f"/accompagnement/residents/{awa.id}/declaration"
    done = auth.post(path, {"declaration": "Je parle tamazight et je fais de la couture."},
                     token_from=f"/accompagnement/residents/{awa.id}", follow_redirects=True)
    page = done.get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Langues retirées avec l&#39;ancien texte : arabe" in page
    session.expire_all()
    person = session.get(Resident, awa.id)
    assert person is not None and person.languages == ["fr", "ber"]
    auth.post(path, {"declaration": "Je parle tamazight et je couds des robes."},
              token_from=f"/accompagnement/residents/{awa.id}")
    session.expire_all()
    person = session.get(Resident, awa.id)
    assert person is not None and person.languages == ["fr", "ber"]
