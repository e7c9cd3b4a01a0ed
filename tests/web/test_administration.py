"""A site without demo data: an administrator (made on the command line) adds neighbourhoods,
organisations and staff accounts; a new account logs in with its temporary password and replaces
it; a deactivated account stops at once, on the web and through the API."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import event
from sqlmodel import Session, select
from werkzeug.security import check_password_hash

from models import AuditEvent, Database, Organisation, Role, Territory, User
from tests.conftest import PASSWORD, Auth, World, add_resident, session_cookie, taps
from web.api.tokens import create_token
from web.services import AlreadyDone, ServiceError
from web.services.accounts import authenticate
from web.services.administration import StaffInput, create_staff

ROOT = Path(__file__).resolve().parents[2]
ACCOUNTS = "/admin/comptes"


def shown_password(page: str) -> str:
    found = re.search(r'data-testid="temporary-password">([^<]+)<', page)
    assert found, page[-2000:]
    return found.group(1)


def test_an_administrator_sets_up_a_site(client: FlaskClient, auth: Auth, session: Session,
                                         world: World) -> None:
    auth.login(world.admin.email or "")
    assert "/admin/comptes" in client.get("/admin/").get_data(as_text=True)

    done = auth.post("/admin/quartiers", {"name": "La Source", "commune": "Orléans", "qpv_code": "qn04501m",
                                          "latitude": "47,8456", "longitude": " 1.9389"},  # a French comma
                     token_from="/admin/quartiers", follow_redirects=True)
    assert "Quartier ajouté : La Source." in done.get_data(as_text=True)  # type: ignore[attr-defined]
    source = session.exec(select(Territory).where(Territory.name == "La Source")).one()
    assert source.qpv_code == "QN04501M" and source.coordinates == (47.8456, 1.9389)
    # Not a number: said in words (WTForms said « N'est pas un flottant valide »).
    refused = auth.post("/admin/quartiers", {"name": "Les Aubiers", "commune": "Bordeaux", "longitude": "x"},
                        token_from="/admin/quartiers", follow_redirects=True).get_data(as_text=True)
    assert "Écrivez un nombre, par exemple 47,85." in refused and "flottant" not in refused

    auth.post("/admin/structures", {"name": "Centre social de la Source", "kind": "centre_social",
                                    "territory_id": source.id, "description": "Accueil\r\nfamilles"},
              token_from="/admin/structures")
    centre = session.exec(select(Organisation).where(Organisation.name == "Centre social de la Source")).one()
    assert centre.kind == "centre_social" and centre.territory_id == source.id
    assert centre.description == "Accueil\nfamilles"

    # Corrected afterwards: the page shows what is held, and the change is journaled.
    edit = f"/admin/structures/{centre.id}"
    assert "Centre social de la Source" in client.get(edit).get_data(as_text=True)
    auth.post(edit, {"name": "Centre social Romain-Rolland", "kind": "centre_social", "territory_id": 0},
              token_from=edit)
    renamed = f"/admin/quartiers/{source.id}"
    auth.post(renamed, {"name": "La Source", "commune": "Orléans", "qpv_code": ""}, token_from=renamed)
    session.expire_all()
    assert (centre.name, centre.territory_id) == ("Centre social Romain-Rolland", None)
    assert centre.description == ""
    assert (source.qpv_code, source.coordinates) == (None, None)

    created = auth.post(ACCOUNTS, {"display_name": "Inès T. (Source)", "email": " Ines.T@Source.fr ",
                                   "role": "social_worker", "organisation_id": centre.id},
                        token_from=ACCOUNTS, follow_redirects=True)
    page = created.get_data(as_text=True)  # type: ignore[attr-defined]
    password = shown_password(page)
    assert "ines.t@source.fr" in page and len(password) == 12
    account = session.exec(select(User).where(User.email == "ines.t@source.fr")).one()
    assert account.role == Role.SOCIAL_WORKER and account.organisation_id == centre.id
    assert check_password_hash(account.password_hash or "", password) and account.must_change_password
    path = f"{ACCOUNTS}/{account.id}/mot-de-passe"
    assert client.get(path).status_code == 302  # shown once: a reload goes back to the list

    # The new social worker logs in with it and must choose her own before anything else.
    auth.logout()
    auth.login("ines.t@source.fr", password)
    first = client.get("/accompagnement/")
    assert first.status_code == 302 and first.headers["Location"].endswith("/compte/mot-de-passe")
    elsewhere = client.application.test_client()  # her phone, logged in with the same password
    Auth(elsewhere).login("ines.t@source.fr", password)
    refused = auth.post("/compte/mot-de-passe", {"current": password, "new": "court", "repeated": "court"},
                        token_from="/compte/mot-de-passe")
    assert "au moins 10 caractères" in refused.get_data(as_text=True)  # type: ignore[attr-defined]
    mine = "trois mots bleus la nuit"
    changed = auth.post("/compte/mot-de-passe", {"current": password, "new": mine, "repeated": mine},
                        token_from="/compte/mot-de-passe", follow_redirects=True)
    assert "Mot de passe changé" in changed.get_data(as_text=True)  # type: ignore[attr-defined]
    assert client.get("/accompagnement/").status_code == 200  # this session goes on
    assert "/connexion" in elsewhere.get("/accompagnement/").headers["Location"]  # not that one
    session.expire_all()
    assert authenticate(session, "ines.t@source.fr", password) is None
    assert authenticate(session, "ines.t@source.fr", mine) is not None
    actions = [e.action for e in session.exec(select(AuditEvent)).all()]
    for action in ("territory.create", "territory.update", "organisation.create", "organisation.update",
                   "user.create", "user.password_change"):
        assert action in actions
    assert password not in str([e.details for e in session.exec(select(AuditEvent)).all()])
    # Renames are journaled with before and after (the admin module's journal, for whoever asks
    # why a structure's name changed).
    renamed = session.exec(select(AuditEvent).where(AuditEvent.action == "organisation.update")).one()
    assert renamed.details["changes"]["name"] == {"before": "Centre social de la Source",
                                                  "after": "Centre social Romain-Rolland"}
    assert renamed.details["changes"]["description"] == {"before": "Accueil\nfamilles", "after": ""}
    moved = session.exec(select(AuditEvent).where(AuditEvent.action == "territory.update")).one()
    assert moved.details["changes"]["qpv_code"] == {"before": "QN04501M", "after": None}
    assert "name" not in moved.details["changes"]  # unchanged fields are not listed


def test_what_an_administrator_types_is_checked(client: FlaskClient, auth: Auth, session: Session,
                                                world: World) -> None:
    auth.login(world.admin.email or "")
    cases = [
        ("/admin/quartiers", {"name": "les tilleuls", "commune": "SAINT-AUBIN"},
         "Ce quartier existe déjà"),
        ("/admin/quartiers", {"name": "Neuf", "commune": "Vaux", "qpv_code": "75001"},
         "Le code QPV ressemble"),
        ("/admin/quartiers", {"name": "Neuf", "commune": "Vaux", "latitude": "47.1"},
         "la latitude et la longitude"),
        ("/admin/structures", {"name": world.centre_a.name.upper(), "kind": "association"},
         "Une structure porte déjà ce nom."),
        (ACCOUNTS, {"display_name": "X", "email": (world.worker_a.email or "").upper(), "role": "admin"},
         "Un compte utilise déjà cette adresse."),
        (ACCOUNTS, {"display_name": "X", "email": "x@example.fr", "role": "social_worker"},
         "Choisissez la structure de la personne."),
        (ACCOUNTS, {"display_name": "X", "email": "pas-une-adresse", "role": "admin"},
         "Écrivez une adresse e-mail"),
        (ACCOUNTS, {"display_name": "X", "email": "y@example.fr", "role": "resident"}, "pas un choix valide"),
        (ACCOUNTS, {"display_name": "X", "email": "z@example.fr", "role": "habitant_relais",
                    "organisation_id": world.association.id},
         "choisissez un centre social ou une collectivité"),
        ("/admin/structures", {"name": "ÉCOLE DU QUARTIER", "kind": "association"},
         "Une structure porte déjà ce nom."),
    ]
    session.add(Organisation(name="École du quartier", kind="association"))
    session.commit()
    before = len(session.exec(select(AuditEvent)).all())
    for path, data, message in cases:
        page = auth.post(path, data, token_from=path).get_data(as_text=True)  # type: ignore[attr-defined]
        assert message in page.replace("&#39;", "'"), (path, data)
    assert len(session.exec(select(AuditEvent)).all()) == before  # nothing written


def test_a_deactivated_account_stops_everywhere_at_once(client: FlaskClient, auth: Auth,
                                                        session: Session, world: World) -> None:
    token = create_token(session, world.worker_a, "crm", False, None).secret
    api = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=api).status_code == 200
    other = client.application.test_client()  # worker A, logged in elsewhere
    Auth(other).login(world.worker_a.email or "")
    assert other.get("/accompagnement/").status_code == 200

    auth.login(world.admin.email or "")
    own = auth.post(f"{ACCOUNTS}/{world.admin.id}/desactiver", {}, token_from=ACCOUNTS, follow_redirects=True)
    assert "votre propre compte" in own.get_data(as_text=True)  # type: ignore[attr-defined]
    auth.post(f"{ACCOUNTS}/{world.worker_a.id}/desactiver", {}, token_from=ACCOUNTS)
    assert other.get("/accompagnement/").status_code == 302  # to the login page
    assert client.get("/api/v1/me", headers=api).status_code == 401
    assert authenticate(session, world.worker_a.email or "", "irrelevant") is None

    auth.post(f"{ACCOUNTS}/{world.worker_a.id}/activer", {}, token_from=ACCOUNTS)
    # Reactivated, the account starts afresh: neither the old session nor the token comes back.
    assert other.get("/accompagnement/").status_code == 302
    assert client.get("/api/v1/me", headers=api).status_code == 401
    Auth(other).login(world.worker_a.email or "")
    assert other.get("/accompagnement/").status_code == 200
    reset = auth.post(f"{ACCOUNTS}/{world.worker_a.id}/mot-de-passe", {}, token_from=ACCOUNTS,
                      follow_redirects=True)
    password = shown_password(reset.get_data(as_text=True))  # type: ignore[attr-defined]
    assert reset.headers.get("Cache-Control") == "no-store"  # type: ignore[attr-defined]
    assert other.get("/accompagnement/").status_code == 302  # a reset ends her sessions too
    session.expire_all()
    assert authenticate(session, world.worker_a.email or "", password) is not None
    # Another administrator's password is not the web page's to give.
    second = User(display_name="Admin 2", email="admin2@example.fr", role=Role.ADMIN)
    session.add(second)
    session.commit()
    refused = auth.post(f"{ACCOUNTS}/{second.id}/mot-de-passe", {}, token_from=ACCOUNTS,
                        follow_redirects=True)
    assert "create_admin.py --reset" in refused.get_data(as_text=True)  # type: ignore[attr-defined]
    events = session.exec(select(AuditEvent).where(AuditEvent.object_id == world.worker_a.id,
                                                   AuditEvent.object_type == "user")).all()
    assert [e.action for e in events if e.action.startswith("user.")] == [
        "user.deactivate", "user.activate", "user.password_reset"]


def test_guessing_the_current_password_locks_as_a_login_would(client: FlaskClient, auth: Auth,
                                                               world: World) -> None:
    path = "/compte/mot-de-passe"
    auth.login(world.member.email or "")
    new = {"new": "une phrase assez longue", "repeated": "une phrase assez longue"}
    short = auth.post(path, {"current": PASSWORD, "new": "court", "repeated": "court"}, token_from=path)
    assert "au moins 10 caractères" in short.get_data(as_text=True)  # type: ignore[attr-defined]
    for _ in range(5):
        wrong = auth.post(path, {"current": "pas le bon", **new}, token_from=path)
        assert "pas le bon" in wrong.get_data(as_text=True)  # type: ignore[attr-defined]
    locked = auth.post(path, {"current": PASSWORD, **new}, token_from=path)
    assert "Trop d&#39;erreurs de mot de passe : réessayez dans 15 minute(s)." in locked.get_data(  # type: ignore[attr-defined]
        as_text=True)
    assert client.get("/structure/").status_code == 200  # this session goes on


def test_a_new_access_code_ends_the_residents_sessions_and_tokens(client: FlaskClient, auth: Auth,
                                                                 session: Session, world: World) -> None:
    """A lost phone: the worker gives a new code; what was logged in with the old one is out."""
    created = add_resident(session, world, "Awa", "Je fais de la couture.")
    phone = client.application.test_client()
    Auth(phone).code_login(created.access_code)
    assert phone.get("/moi/").status_code == 200
    account = session.exec(select(User).where(User.resident_id == created.resident.id)).one()
    token = create_token(session, account, "appli", False, None).secret
    auth.login(world.worker_a.email or "")
    auth.post(f"/accompagnement/residents/{created.resident.id}/code", {},
              token_from=f"/accompagnement/residents/{created.resident.id}")
    assert phone.get("/moi/").status_code == 302
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_the_new_code_crosses_the_redirect_sealed_and_shows_once(client: FlaskClient, auth: Auth,
                                                                   session: Session, world: World) -> None:
    """The session cookie is signed, not encrypted: the code (a resident's login) went through it
    in clear, kept in the worker's browser until the code page was read. It goes sealed now."""
    created = add_resident(session, world, "Awa", "Je fais de la couture.")
    auth.login(world.worker_a.email or "")
    profile = f"/accompagnement/residents/{created.resident.id}"
    reset = auth.post(f"{profile}/code", {}, token_from=profile)
    raw = session_cookie(client)
    shown = client.get(reset.headers["Location"]).get_data(as_text=True)  # type: ignore[attr-defined]
    code = re.search(r'data-testid="access-code">([^<]+)<', shown)
    assert code is not None and code.group(1).encode() not in raw and b"access_code" in raw
    phone = client.application.test_client()
    Auth(phone).code_login(code.group(1))  # the code shown is the one that works
    assert phone.get("/moi/").status_code == 200
    assert client.get(reset.headers["Location"]).status_code == 302  # once  # type: ignore[attr-defined]


def test_taps_at_once_add_one_neighbourhood_and_one_organisation(client: FlaskClient, auth: Auth,
                                                                  session: Session, world: World) -> None:
    """Three taps on « Ajouter » all passed the name check and made two identical neighbourhoods
    (the lists, then every form, offered both)."""
    auth.login(world.admin.email or "")
    token = auth.token("/admin/quartiers")
    sent = taps(client, "/admin/quartiers", {"name": "La Source", "commune": "Orléans", "csrf_token": token},
                count=3)
    assert 302 in {r.status_code for r in sent} <= {302, 200}  # added, or « existe déjà »
    assert len(session.exec(select(Territory).where(Territory.name == "La Source")).all()) == 1
    sent = taps(client, "/admin/structures", {"name": "Les Amis du Jardin", "kind": "association",
                                              "territory_id": 0, "csrf_token": token}, count=3)
    assert 302 in {r.status_code for r in sent} <= {302, 200}
    assert len(session.exec(select(Organisation).where(Organisation.name == "Les Amis du Jardin")).all()) == 1


def test_creating_an_account_twice_leads_to_the_list_not_to_an_error(client: FlaskClient, auth: Auth,
                                                                      session: Session, world: World) -> None:
    """A double click on « Créer le compte »: the first answer showed the temporary password, the
    second « Un compte utilise déjà cette adresse », and the browser showed the second."""
    auth.login(world.admin.email or "")
    form = {"display_name": "Inès T.", "email": "ines@source.fr", "role": "social_worker",
            "organisation_id": world.centre_a.id, "csrf_token": auth.token(ACCOUNTS)}
    first, second = client.post(ACCOUNTS, data=form), client.post(ACCOUNTS, data=form)
    assert first.status_code == 302 and "/mot-de-passe" in first.headers["Location"]
    assert second.status_code == 302 and second.headers["Location"].endswith(ACCOUNTS)
    assert "Ce compte vient d&#39;être créé" in client.get(ACCOUNTS).get_data(as_text=True)
    assert len(session.exec(select(User).where(User.email == "ines@source.fr")).all()) == 1


def ines(world: World) -> StaffInput:
    return StaffInput(display_name="Inès T.", email="ines@source.fr", role=Role.SOCIAL_WORKER,
                      organisation_id=world.centre_a.id)


@contextmanager
def written_first(session: Session, migrated: Database, admin: User | None,
                  data: StaffInput) -> Iterator[list[int]]:
    """Taps at the very same moment: `admin` creates the account `data` through another session
    just before `session` writes its own (after it read the address as free). Yields its id."""
    landed: list[int] = []

    def first_tap_lands(*_: object) -> None:
        if not landed:
            with migrated.session() as other:
                landed.append(create_staff(other, admin, data)[0].id or 0)

    event.listen(session, "before_flush", first_tap_lands)
    try:
        yield landed
    finally:
        event.remove(session, "before_flush", first_tap_lands)


def test_two_taps_that_both_found_the_address_free_create_one_account(session: Session, migrated: Database,
                                                                       world: World) -> None:
    """Both read the address as free, the first one's account was written just before the
    second's (its insert refused by the unique address). The second is the same double click,
    not « Un compte utilise déjà cette adresse »."""
    data = ines(world)
    with written_first(session, migrated, world.admin, data) as landed, pytest.raises(AlreadyDone) as done:
        create_staff(session, world.admin, data)
    assert done.value.row_id == landed[0]
    assert [u.id for u in session.exec(select(User).where(User.email == "ines@source.fr")).all()] == landed


def test_an_address_taken_at_the_same_moment_by_someone_else_is_refused(session: Session, migrated: Database,
                                                                         world: World) -> None:
    data = ines(world)  # created first from the command line, by no administrator
    with written_first(session, migrated, None, data), pytest.raises(ServiceError) as refused:
        create_staff(session, world.admin, data)
    assert "déjà cette adresse" in str(refused.value.fields["email"][0])


def test_a_temporary_password_crosses_the_redirect_sealed(client: FlaskClient, auth: Auth,
                                                          world: World) -> None:
    """It went in clear through the session cookie, and stayed there when the page that shows it
    did not load."""
    auth.login(world.admin.email or "")
    reset = auth.post(f"{ACCOUNTS}/{world.worker_a.id}/mot-de-passe", {}, token_from=ACCOUNTS)
    raw = session_cookie(client)
    password = shown_password(client.get(reset.headers["Location"]).get_data(as_text=True))  # type: ignore[attr-defined]
    assert password.encode() not in raw and b"temporary_password" in raw


def test_the_first_administrator_comes_from_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new-site.db'}"
    env = {**os.environ, "DATABASE_URL": url, "RELAIS_INSTANCE_DIR": str(tmp_path)}
    run = subprocess.run([sys.executable, "scripts/create_admin.py", "--email", "Claire@Ville.fr",
                          "--name", "Claire M."], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    password = run.stdout.strip().rsplit(" ", 1)[-1]
    again = subprocess.run([sys.executable, "scripts/create_admin.py", "--email", "claire@ville.fr",
                            "--name", "Claire"], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=300, check=False)
    assert again.returncode == 1 and "déjà cette adresse" in again.stderr
    with Database(url) as db, db.session() as session:
        admin = authenticate(session, "claire@ville.fr", password)
        assert admin is not None and admin.role == Role.ADMIN and admin.organisation_id is None
        assert admin.must_change_password
    forgotten = subprocess.run([sys.executable, "scripts/create_admin.py", "--email", "claire@ville.fr",
                                "--reset"], cwd=ROOT, env=env, capture_output=True, text=True,
                               timeout=300, check=False)
    assert forgotten.returncode == 0, forgotten.stderr
    with Database(url) as db, db.session() as session:
        assert authenticate(session, "claire@ville.fr", password) is None
        assert authenticate(session, "claire@ville.fr", forgotten.stdout.strip().rsplit(" ", 1)[-1])


def test_what_the_service_refuses_is_said_beside_the_field(client: FlaskClient, auth: Auth,
                                                           world: World) -> None:
    """A bad or taken address, passwords that differ: the message sits under its field, which a
    screen reader hears as invalid, not only at the top of the page."""

    def field_of(page: str, name: str) -> str:
        found = re.search(rf'<input[^>]*id="{name}"[^>]*>', page)
        assert found, name
        return found.group(0)

    auth.login(world.admin.email or "")
    for email, said in (("pas-une-adresse", "Écrivez une adresse e-mail"),
                        (world.member.email, "Un compte utilise déjà cette adresse.")):
        page = auth.post(ACCOUNTS, {"display_name": "Nadia", "email": email, "role": "social_worker",
                                    "organisation_id": world.centre_a.id},
                         token_from=ACCOUNTS).get_data(as_text=True)  # type: ignore[attr-defined]
        assert 'aria-invalid="true"' in field_of(page, "email")
        assert re.search(r'id="email-error"[^>]*>\s*<p>' + re.escape(said), page), page[-3000:]
        assert 'aria-invalid="true"' not in field_of(page, "display_name")
    auth.logout()
    auth.login(world.member.email or "")
    path = "/compte/mot-de-passe"
    page = auth.post(path, {"current": PASSWORD, "new": "une phrase assez longue",
                            "repeated": "une autre phrase longue"},
                     token_from=path).get_data(as_text=True)  # type: ignore[attr-defined]
    assert 'aria-invalid="true"' in field_of(page, "repeated")
    assert "Les deux nouveaux mots de passe ne sont pas les mêmes." in page
    assert 'aria-invalid="true"' not in field_of(page, "current")


def test_a_centre_with_habitants_relais_stays_a_kind_that_validates_them(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    """Centre A has an active habitant-relais: turned into an association, nobody there could
    validate what they note (the account form refuses a relais in an association for that)."""
    auth.login(world.admin.email or "")
    path = f"/admin/structures/{world.centre_a.id}"
    page = auth.post(path, {"name": "Centre social A", "kind": "association", "territory_id": 0},
                     token_from=path).get_data(as_text=True)  # type: ignore[attr-defined]
    assert "tant que leurs comptes sont actifs" in page
    session.expire_all()
    assert world.centre_a.kind == "centre_social"
    auth.post(path, {"name": "Centre social A", "kind": "collectivite", "territory_id": 0}, token_from=path)
    session.expire_all()
    assert world.centre_a.kind == "collectivite"  # its workers still validate
    world.relais.is_active = False
    session.add(world.relais)
    session.commit()
    auth.post(path, {"name": "Centre social A", "kind": "association", "territory_id": 0}, token_from=path)
    session.expire_all()
    assert world.centre_a.kind == "association"
    # Reactivating the relais there would undo the rule from the other side: refused.
    accounts = "/admin/comptes"
    page = auth.post(f"{accounts}/{world.relais.id}/activer", {}, token_from=accounts,
                     follow_redirects=True).get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Changez d&#39;abord sa structure" in page or "Changez d'abord sa structure" in page
    session.expire_all()
    assert not world.relais.is_active
