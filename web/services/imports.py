"""CSV import and export of residents and needs, for social workers' spreadsheets.

Reading: UTF-8 (with or without BOM), UTF-16 with BOM, otherwise Windows-1252/Latin-1 (what
French spreadsheets write); the separator (`;`, `,` or tab) is the one the header line uses most;
French column headers, matched without case, accents or punctuation (see COLUMNS and the README).
Every row is checked by the same rules as the forms, with errors in French and line numbers.

Writing is all or nothing: the slow part (spaCy analysis and embedding) runs first, outside any
transaction, with progress on the job's row; then every row goes through the profile and need
services in ONE transaction, so a bad row writes nothing at all (not even an index event); only
after the commit are proposals made, row by row.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import logging
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlmodel import Session, col, delete, select, update

from matcher.analysis import LANGUAGE_NAMES
from matcher.hybrid import Document
from matcher.pipeline import PreparedDeclaration, ingest_processes, prepare_ahead
from matcher.sensitive import find_sensitive
from models import (
    Availability,
    BackgroundJob,
    Consent,
    ConsentMethod,
    JobStatus,
    Need,
    NeedKind,
    NeedStatus,
    Organisation,
    Resident,
    Role,
    SkillDeclaration,
    Territory,
    User,
    ValidationStatus,
    Want,
    utcnow,
)
from web.forms import LANGUAGE_LABELS, NEED_STATUS_LABELS, SENSITIVE_LABELS, language_label
from web.services import FORMULA_START, ServiceError, spreadsheet_cell
from web.services.audit import record
from web.services.jobs import (
    SAVED_STAGE,
    JobFailed,
    Progress,
    create_job,
    drop_stale_drafts,
    fail_abandoned,
    move,
)
from web.services.matching import MatchingService, need_text_document
from web.services.needs import NeedInput, add_need, check_need
from web.services.privacy import record_reading_from_outside
from web.services.profiles import NOTHING_TO_READ, ResidentInput, add_resident, check_resident, profile_key
from web.services.queries import ids_subquery

log = logging.getLogger(__name__)

# Proposals failing for this many rows in a row stop the job: the cause is not the rows.
MAX_FAILED_PROPOSALS = 3
RESIDENTS_KIND = "import_residents"
NEEDS_KIND = "import_needs"
ENTITIES = {"residents": RESIDENTS_KIND, "needs": NEEDS_KIND}
PREVIEW_ROWS = 20
MAX_ROWS = 20_000
# Rows analysed (one spaCy pipe, matcher.analysis.analyze_many), then embedded together. 64 rows
# (~300 sentences) analyse at 1,670 statements/s, 256 rows at 1,760 (2 cores, load 1.8): a
# larger batch gains little and the progress bar moves less often.
ANALYSE_BATCH = 64
# From this many rows, declarations are prepared in worker processes (RELAIS_INGEST_PROCESSES):
# each loads its own models (~5 s), worth it for a file of thousands, not for a few dozen rows.
PARALLEL_ROWS = 1_000

# Canonical field → accepted headers (normalised: lower case, no accents, words only). The first
# one is what exports write (with its accents, see HEADERS).
COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "residents": {
        "first_name": ("prenom", "prenom ou pseudonyme", "pseudonyme", "pseudo"),
        "last_initial": ("initiale", "initiale du nom", "initiale nom"),
        "territory": ("quartier",),
        "languages": ("langues", "langue", "langues parlees"),
        "availability": ("disponibilites", "disponibilite", "dispos", "creneaux"),
        "wants": ("souhaits", "souhait", "ce que la personne souhaite"),
        "declaration": ("ce que je sais faire", "ce que la personne sait faire", "savoir faire",
                        "competences", "declaration"),
        "consent_date": ("consentement date", "date du consentement", "date consentement",
                         "consentement le"),
        "consent_method": ("consentement methode", "methode du consentement", "methode consentement",
                           "consentement recueilli", "consentement comment"),
        "consent_withdrawn": ("consentement retire le", "consentement retire"),
        "validation": ("fiche", "statut de la fiche", "validation"),  # written by exports
    },
    "needs": {
        "title": ("titre",),
        "description": ("description",),
        "kind": ("type", "on cherche", "vous cherchez"),
        "when_text": ("quand",),
        "where_text": ("ou", "lieu"),
        "territory": ("quartier",),
        "languages": ("langues", "langue", "langues souhaitees"),
        "availability": ("creneaux", "disponibilites", "creneau"),
        "people_wanted": ("nombre de personnes", "nombre", "personnes"),
        "status": ("statut",),  # written by exports; imported needs are always open
        "validation": ("fiche", "statut de la fiche", "validation"),  # written by exports
    },
}
HEADERS = {
    "residents": {"first_name": "prénom", "last_initial": "initiale", "territory": "quartier",
                  "languages": "langues", "availability": "disponibilités", "wants": "souhaits",
                  "declaration": "ce que je sais faire", "consent_date": "consentement date",
                  "consent_method": "consentement méthode",
                  "consent_withdrawn": "consentement retiré le", "validation": "fiche"},
    "needs": {"title": "titre", "description": "description", "kind": "type", "when_text": "quand",
              "where_text": "où", "territory": "quartier", "languages": "langues",
              "availability": "créneaux", "people_wanted": "nombre de personnes", "status": "statut",
              "validation": "fiche"},
}
REQUIRED = {"residents": ("first_name", "territory", "declaration", "consent_date", "consent_method"),
            "needs": ("title", "description")}

# Short French words, written by exports and read back (with their synonyms) by imports.
AVAILABILITY_WORDS = {Availability.WEEKDAY_MORNING: "matin", Availability.WEEKDAY_AFTERNOON: "après-midi",
                      Availability.WEEKDAY_EVENING: "soir", Availability.WEEKEND: "week-end"}
WANT_WORDS = {Want.VOLUNTEERING: "bénévolat", Want.TRAINING: "formation", Want.JOB: "emploi",
              Want.ACTIVITY: "activité"}
METHOD_WORDS = {ConsentMethod.PAPER_SIGNED: "papier signé", ConsentMethod.ORAL_IN_PERSON: "oral"}
# A profile or a need noted by a habitant-relais and not validated yet is exported so, and imported
# back waiting for validation: a file never turns an unchecked one into a validated one.
VALIDATION_WORDS = {ValidationStatus.VALIDATED: "validée", ValidationStatus.PENDING: "à valider",
                    ValidationStatus.RETURNED: "à corriger"}
AWAITING = {"a valider", "a corriger", "en attente", "pending", "returned"}
VALIDATED = {"validee", "valide", "validated", ""}
KIND_WORDS = {NeedKind.SKILL: "savoir-faire", NeedKind.RESOURCE: "ressource"}
DATE_FORMATS = ("%d/%m/%Y", "%d/%m/%y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y")
LIST_SPLIT = re.compile(r"\s*(?:[,;/+|]|\bet\b)\s*")


def normalise(text: str) -> str:
    """Lower case, no accents, words separated by one space ("Où ?" → "ou")."""
    stripped = "".join(ch for ch in unicodedata.normalize("NFKD", text)
                       if not unicodedata.combining(ch))
    return " ".join(re.sub(r"[^0-9a-z]+", " ", stripped.lower()).split())


# ---------------------------------------------------------------------- reading a file

@dataclass
class Row:
    line: int  # where the record starts in the file (the header is line 1)
    shown: dict[str, str]  # the values as understood, for the preview
    data: ResidentInput | NeedInput | None
    errors: list[str] = field(default_factory=list)


@dataclass
class ParsedFile:
    entity: str  # "residents" or "needs"
    encoding: str = ""
    delimiter: str = ""
    columns: dict[str, str] = field(default_factory=dict)  # field → header as written
    ignored: list[str] = field(default_factory=list)  # headers nobody reads
    rows: list[Row] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # about the whole file

    @property
    def row_errors(self) -> list[str]:
        return [_("Ligne %(line)d : %(error)s", line=row.line, error=error)
                for row in self.rows for error in row.errors]

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.rows) and not any(row.errors for row in self.rows)


def decode(data: bytes) -> tuple[str, str]:
    """The text of a spreadsheet export and the encoding it was in. A NUL is never in a
    spreadsheet's text, and PostgreSQL refuses it in a string: dropped, as forms drop it."""
    text, encoding = _guess_encoding(data)
    return text.replace("\x00", ""), encoding


def _guess_encoding(data: bytes) -> tuple[str, str]:
    # A byte-order mark before bytes that are not in its encoding (a Latin-1 file saved "with
    # BOM") falls through to the guesses below rather than failing the preview.
    if data.startswith(codecs.BOM_UTF8):
        with contextlib.suppress(UnicodeDecodeError):
            return data[len(codecs.BOM_UTF8):].decode("utf-8"), "UTF-8 (BOM)"
        data = data[len(codecs.BOM_UTF8):]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        with contextlib.suppress(UnicodeDecodeError):
            return data.decode("utf-16"), "UTF-16"
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:  # what Excel writes as "CSV" on a French Windows: Latin-1 plus œ, €, ’…
        return data.decode("cp1252"), "Windows-1252 (Latin-1)"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "Latin-1"


def sniff_delimiter(text: str) -> str:
    """The separator the header line uses most (headers hold no separators of their own)."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    counts = {sep: _count_outside_quotes(header, sep) for sep in (";", ",", "\t")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ";"


def _count_outside_quotes(line: str, sep: str) -> int:
    count, quoted = 0, False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            count += 1
    return count


def parse(session: Session, data: bytes, entity: str, today: date,
          organisation_id: int | None = None) -> ParsedFile:
    """Read and check a whole file (nothing is written); `organisation_id`, the importer's, whose
    profiles a row must not repeat."""
    parsed = ParsedFile(entity)
    if not data.strip():
        parsed.errors.append(_("Le fichier est vide."))
        return parsed
    text, parsed.encoding = decode(data)
    parsed.delimiter = sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=parsed.delimiter)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        parsed.errors.append(_("Le fichier ne contient pas de ligne d'en-tête."))
        return parsed
    positions = _map_header(parsed, header)
    if parsed.errors:
        return parsed
    territories = _TerritoryNames(session)
    known = _known(session, entity, organisation_id)
    check = _resident_row if entity == "residents" else _need_row
    # Rows are numbered as a spreadsheet shows them (the header is row 1), not as lines of text:
    # a cell written on several lines (Alt+Entrée) is one row.
    number = 1
    try:
        for cells in reader:
            number += 1
            if any(cell.strip() for cell in cells):
                if len(parsed.rows) >= MAX_ROWS:
                    parsed.errors.append(_("Le fichier a plus de %(n)d lignes : coupez-le en plusieurs "
                                           "fichiers.", n=MAX_ROWS))
                    break
                values = {name: _cell(cells, index) for name, index in positions.items()}
                row = Row(number, {}, None)
                if any(cell.strip() for cell in cells[len(header):]):
                    row.errors.append(_("Cette ligne a plus de colonnes que l'en-tête (un séparateur "
                                        "en trop, ou un texte à mettre entre guillemets ?)."))
                check(session, row, values, territories, today, known)
                parsed.rows.append(row)
    except csv.Error as exc:
        parsed.errors.append(_("Ligne %(line)d : le fichier est mal formé (%(detail)s).",
                               line=number + 1, detail=str(exc)))
    if not parsed.rows and not parsed.errors:
        parsed.errors.append(_("Le fichier n'a aucune ligne sous l'en-tête."))
    return parsed


def _map_header(parsed: ParsedFile, header: list[str]) -> dict[str, int]:
    aliases = {alias: name for name, names in COLUMNS[parsed.entity].items() for alias in names}
    positions: dict[str, int] = {}
    for index, raw in enumerate(header):
        name = aliases.get(normalise(raw))
        if name is None:
            if raw.strip():
                parsed.ignored.append(raw.strip())
        elif name in positions:
            parsed.errors.append(_("La colonne « %(name)s » apparaît deux fois.", name=raw.strip()))
        else:
            positions[name] = index
            parsed.columns[name] = raw.strip()
    missing = [HEADERS[parsed.entity][name] for name in REQUIRED[parsed.entity] if name not in positions]
    if missing:
        parsed.errors.append(_("Colonnes obligatoires absentes : %(names)s. La première ligne doit "
                               "porter les noms des colonnes.", names=", ".join(missing)))
    return positions


def _cell(cells: list[str], index: int) -> str:
    value = cells[index].strip() if index < len(cells) else ""
    if len(value) > 1 and value[0] == "'" and value[1] in FORMULA_START:
        value = value[1:]  # the quote our exports put before a formula-like cell
    return value


class _KnownProfiles:
    """The organisation's profiles as a file would repeat them (first name, initial, neighbourhood,
    current text, ignoring case and spacing), and the file's own rows: importing a file twice, or an
    export back into the same centre, would give every person a second profile and login."""

    def __init__(self, session: Session, organisation_id: int | None) -> None:
        self.held: set[tuple[object, ...]] = set()
        self.in_file: set[tuple[object, ...]] = set()
        if organisation_id is not None:
            self.held = {profile_key(*row) for row in session.exec(
                select(Resident.first_name, Resident.last_initial, Resident.territory_id,
                       SkillDeclaration.text)
                .join(SkillDeclaration, col(SkillDeclaration.resident_id) == Resident.id)
                .where(Resident.organisation_id == organisation_id,
                       col(SkillDeclaration.is_current).is_(True))).all()}

    def repeated(self, data: ResidentInput) -> str | None:
        """Why the row repeats a profile or an earlier row, if it does."""
        key = profile_key(data.first_name, data.last_initial, data.territory_id, data.declaration)
        if key in self.held:
            return _("Cette personne a déjà une fiche dans votre structure (même prénom, initiale, quartier "
                     "et texte) : retirez la ligne. Ce fichier a peut-être déjà été importé.")
        if key in self.in_file:
            return _("Cette ligne répète une ligne plus haut (même prénom, initiale, quartier et texte).")
        self.in_file.add(key)
        return None


class _KnownNeeds:
    """The organisation's needs as a file would repeat them (title, text, neighbourhood,
    ignoring case and spacing), and the file's own rows: a needs file imported twice doubled every
    need, each matched and proposed again."""

    def __init__(self, session: Session, organisation_id: int | None) -> None:
        self.held: set[tuple[object, ...]] = set()
        self.closed: set[tuple[object, ...]] = set()  # an export brought back reopened them all
        self.in_file: set[tuple[object, ...]] = set()
        if organisation_id is not None:
            for title, description, territory_id, status in session.exec(
                    select(Need.title, Need.description, Need.territory_id, Need.status).where(
                        Need.organisation_id == organisation_id)).all():
                (self.closed if status == NeedStatus.CLOSED else self.held).add(
                    self.key(title, description, territory_id))

    @staticmethod
    def key(title: str, description: str, territory_id: int | None) -> tuple[object, ...]:
        return (" ".join(title.split()).casefold(), " ".join(description.split()).casefold(), territory_id)

    def repeated(self, data: NeedInput) -> str | None:
        """Why the row repeats a need or an earlier row, if it does."""
        key = self.key(data.title, data.description, data.territory_id)
        if key in self.held:
            return _("Ce besoin existe déjà dans votre structure (même titre, texte et quartier) : retirez "
                     "la ligne. Ce fichier a peut-être déjà été importé.")
        if key in self.closed:
            return _("Ce besoin existe déjà dans votre structure, clôturé (même titre, texte et quartier) : "
                     "retirez la ligne ; pour le rouvrir, changez son statut sur sa page.")
        if key in self.in_file:
            return _("Cette ligne répète une ligne plus haut (même titre, texte et quartier).")
        self.in_file.add(key)
        return None


def _known(session: Session, entity: str, organisation_id: int | None) -> Any:
    """What a row of `entity` must not repeat: the centre's profiles, or its needs."""
    return _KnownProfiles(session, organisation_id) if entity == "residents" \
        else _KnownNeeds(session, organisation_id)


class _TerritoryNames:
    """Neighbourhoods by name, or "name (commune)" when two share a name."""

    def __init__(self, session: Session) -> None:
        self.by_name: dict[str, list[Territory]] = {}
        self.by_full: dict[str, Territory] = {}
        for territory in session.exec(select(Territory)).all():
            self.by_name.setdefault(normalise(territory.name), []).append(territory)
            self.by_full[normalise(f"{territory.name} {territory.commune}")] = territory

    def find(self, value: str) -> tuple[Territory | None, str | None]:
        key = normalise(value)
        if key in self.by_full:
            return self.by_full[key], None
        found = self.by_name.get(key, [])
        if len(found) == 1:
            return found[0], None
        if found:
            return None, _("Quartier « %(name)s » ambigu : écrivez « quartier (commune) ».", name=value)
        known = ", ".join(sorted({t.name for ts in self.by_name.values() for t in ts}))
        return None, _("Quartier inconnu : « %(name)s » (quartiers connus : %(known)s).",
                       name=value, known=known)

    @staticmethod
    def labels(territories: Iterable[Territory]) -> dict[int | None, str]:
        """Each neighbourhood as a file names it: « name (commune) » when two share the name (from
        the rows given, every neighbourhood: one query per row was 505 for 500 needs)."""
        every = list(territories)
        names = Counter(t.name for t in every)
        return {t.id: t.name if names[t.name] < 2 else f"{t.name} ({t.commune})" for t in every}


def _words(value: str) -> list[str]:
    return [part for part in LIST_SPLIT.split(value) if part.strip()]


_LANGUAGE_WORDS: dict[frozenset[str], dict[str, str]] = {}


def _known_languages() -> dict[str, str]:
    """Every word naming a language (folded) → its code: the matcher's names and the labels of
    every catalogue, so that a preview (in the reader's language) and its job (in French) accept
    the same file. Built once per set of catalogues."""
    from web.extensions import babel

    locales = frozenset({"fr", *(str(found) for found in babel.list_translations())})
    if locales not in _LANGUAGE_WORDS:
        known: dict[str, str] = {normalise(name): code for name, code in LANGUAGE_NAMES.items()}
        known.update({code: code for code in LANGUAGE_NAMES.values()})
        for locale in sorted(locales):
            with force_locale(locale):
                for code, label in LANGUAGE_LABELS.items():
                    known[code] = code
                    for part in str(label).split("/"):  # « dari » of « persan / dari » stays Dari
                        known.setdefault(normalise(part), code)
        known.update({"lsf": "fsl"})
        _LANGUAGE_WORDS[locales] = known
    return _LANGUAGE_WORDS[locales]


def _languages(value: str, errors: list[str]) -> list[str]:
    known = _known_languages()
    codes: list[str] = []
    for word in _words(value):
        found = known.get(normalise(word))
        if found is None:
            errors.append(_("Langue inconnue : « %(word)s ».", word=word))
        elif found not in codes:
            codes.append(found)
    return codes


# Words people write in a cell → the value they mean (first match wins: "après-midi" before "midi").
AVAILABILITY_KEYWORDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("week", "samedi", "dimanche"), Availability.WEEKEND),
    (("apres midi", "aprem"), Availability.WEEKDAY_AFTERNOON),
    (("matin",), Availability.WEEKDAY_MORNING),
    (("soir",), Availability.WEEKDAY_EVENING),
)
WANT_KEYWORDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("benevol",), Want.VOLUNTEERING),
    (("form",), Want.TRAINING),
    (("emploi", "travail", "job"), Want.JOB),
    (("activite",), Want.ACTIVITY),
)


def _keywords(value: str, keywords: tuple[tuple[tuple[str, ...], str], ...], errors: list[str],
              unknown: Callable[[str], str], skip: frozenset[str] = frozenset()) -> list[str]:
    """The values a cell lists, read from codes or keywords; `unknown(word)` is the error."""
    codes = {code for _words_, code in keywords}
    found: list[str] = []
    for word in _words(value):
        key = normalise(word)
        if key in skip:
            continue
        code = key if key in codes else next(
            (code for words, code in keywords if any(w in key for w in words)), None)
        if code is None:
            errors.append(unknown(word))
        elif code not in found:
            found.append(str(code))
    return found


def _availability(value: str, errors: list[str]) -> list[str]:
    # "en semaine, le matin": the slot is in the next word.
    return _keywords(value, AVAILABILITY_KEYWORDS, errors, lambda word: _(
        "Disponibilité inconnue : « %(word)s » (matin, après-midi, soir, week-end).", word=word),
        skip=frozenset({"en semaine", "semaine"}))


def _wants(value: str, errors: list[str]) -> list[str]:
    return _keywords(value, WANT_KEYWORDS, errors, lambda word: _(
        "Souhait inconnu : « %(word)s » (bénévolat, formation, emploi, activité).", word=word))


def _date(value: str, errors: list[str]) -> date | None:
    for pattern in DATE_FORMATS:
        try:
            return datetime.strptime(value.strip(), pattern).date()
        except ValueError:
            continue
    errors.append(_("Date du consentement illisible : « %(value)s » (écrivez JJ/MM/AAAA).", value=value))
    return None


def _method(value: str, errors: list[str]) -> str:
    key = normalise(value)
    if key in set(ConsentMethod):
        return key
    if any(word in key for word in ("papier", "ecrit", "sign", "formulaire")):
        return ConsentMethod.PAPER_SIGNED
    if "oral" in key:
        return ConsentMethod.ORAL_IN_PERSON
    errors.append(_("Méthode de consentement inconnue : « %(value)s » (papier signé, ou oral).",
                    value=value))
    return ""


def _awaiting_validation(values: dict[str, str], errors: list[str]) -> bool:
    """The « fiche » column an export writes: True for a row not validated yet."""
    validation = normalise(values.get("validation", ""))
    if validation not in AWAITING | VALIDATED:
        errors.append(_("Fiche : « %(value)s » n'est pas reconnu (validée, à valider ou à corriger).",
                        value=values["validation"]))
    return validation in AWAITING


def _resident_row(session: Session, row: Row, values: dict[str, str], territories: _TerritoryNames,
                  today: date, known: _KnownProfiles) -> None:
    errors = row.errors
    territory, problem = territories.find(values["territory"]) if values["territory"] else (None, None)
    if problem:
        errors.append(problem)
    if values.get("consent_withdrawn"):
        errors.append(_("Cette personne a retiré son consentement : elle ne peut pas être importée."))
    consent_date = _date(values["consent_date"], errors) if values["consent_date"] else None
    awaiting = _awaiting_validation(values, errors)
    data = ResidentInput(
        first_name=values["first_name"], last_initial=values.get("last_initial", ""),
        territory_id=territory.id if territory else None,
        languages=_languages(values.get("languages", ""), errors),
        availability=_availability(values.get("availability", ""), errors),
        wants=_wants(values.get("wants", ""), errors),
        consent_given_on=consent_date,
        consent_method=_method(values["consent_method"], errors) if values["consent_method"] else "",
        consent_matching=bool(consent_date and values["consent_method"]),
        declaration=values["declaration"],
        awaiting_validation=awaiting,
    )
    # A consent cell written but unreadable is said once, above: not again as a consent missing.
    unreadable = ({"consent_given_on", "consent_matching"} if values["consent_date"] and consent_date is None
                  else set()) | ({"consent_method", "consent_matching"}
                                 if values["consent_method"] and not data.consent_method else set())
    refused = check_resident(session, data, today, current_app.config["RELAIS"].consent_months)
    for name, messages in refused.items():
        if (name == "territory_id" and problem) or name in unreadable:  # said above, as the file gives it
            continue
        errors.extend(message for message in messages if message not in errors)
    if findings := find_sensitive(data.declaration):  # the form's check, which a file cannot confirm
        errors.append(_("Ce texte contient des informations sensibles (%(found)s) : la CNIL demande de "
                        "ne pas les noter, sauf si c'est vraiment nécessaire. Reformulez-le dans le "
                        "fichier, ou enregistrez cette personne par le formulaire, où vous confirmez "
                        "avec elle.", found=" ; ".join(f"{SENSITIVE_LABELS[f.category]} : "
                                                         f"{', '.join(f.words)}" for f in findings)))
    if data.declaration.strip() and (repeated := known.repeated(data)):
        errors.append(repeated)
    row.data = data
    row.shown = {
        "first_name": data.first_name, "last_initial": data.last_initial,
        "territory": territory.name if territory else values["territory"],
        "languages": ", ".join(language_label(c) for c in data.languages),
        "availability": ", ".join(AVAILABILITY_WORDS[Availability(s)] for s in data.availability),
        "wants": ", ".join(WANT_WORDS[Want(w)] for w in data.wants),
        "declaration": data.declaration,
        "consent_date": consent_date.strftime("%d/%m/%Y") if consent_date else values["consent_date"],
        "consent_method": METHOD_WORDS.get(ConsentMethod(data.consent_method), "")
        if data.consent_method else values["consent_method"],
        "validation": VALIDATION_WORDS[ValidationStatus.PENDING if data.awaiting_validation
                                       else ValidationStatus.VALIDATED],
    }


def _need_row(session: Session, row: Row, values: dict[str, str], territories: _TerritoryNames,
              _today: date, known: _KnownNeeds) -> None:
    errors = row.errors
    territory = None
    if values.get("territory"):
        territory, problem = territories.find(values["territory"])
        if problem:
            errors.append(problem)
    kind_key = normalise(values.get("kind", ""))
    kind: str = NeedKind.SKILL
    if kind_key in set(NeedKind):
        kind = kind_key
    elif any(word in kind_key for word in ("ressource", "salle", "materiel", "vehicule", "local")):
        kind = NeedKind.RESOURCE
    elif kind_key and not any(word in kind_key for word in ("savoir", "competence", "personne", "benevol")):
        errors.append(_("Type de besoin inconnu : « %(value)s » (savoir-faire, ou ressource).",
                        value=values["kind"]))
    people: int | None = None
    if values.get("people_wanted"):
        try:
            people = int(values["people_wanted"])
        except ValueError:
            errors.append(_("Nombre de personnes illisible : « %(value)s ».", value=values["people_wanted"]))
    data = NeedInput(title=values["title"], description=values["description"], kind=kind,
                     territory_id=territory.id if territory else None,
                     when_text=values.get("when_text", ""), where_text=values.get("where_text", ""),
                     languages=_languages(values.get("languages", ""), errors),
                     availability=_availability(values.get("availability", ""), errors),
                     people_wanted=people, awaiting_validation=_awaiting_validation(values, errors))
    for message in check_need(session, data):
        if message not in errors:
            errors.append(message)
    if data.title.strip() and data.description.strip() and (repeated := known.repeated(data)):
        errors.append(repeated)
    row.data = data
    row.shown = {
        "title": data.title, "description": data.description, "kind": KIND_WORDS[NeedKind(kind)],
        "when_text": data.when_text, "where_text": data.where_text,
        "territory": territory.name if territory else values.get("territory", ""),
        "languages": ", ".join(language_label(c) for c in data.languages),
        "availability": ", ".join(AVAILABILITY_WORDS[Availability(s)] for s in data.availability),
        "people_wanted": str(people) if people is not None else "",
        "validation": VALIDATION_WORDS[ValidationStatus.PENDING if data.awaiting_validation
                                       else ValidationStatus.VALIDATED],
    }


# ---------------------------------------------------------------------- upload, preview, confirm

def may_import(actor: User) -> bool:
    return actor.role in {Role.SOCIAL_WORKER, Role.ADMIN} and actor.organisation_id is not None


def upload(session: Session, actor: User, entity: str, filename: str, data: bytes) -> BackgroundJob:
    """Keep an uploaded file as a draft job, for its preview (nothing else is written)."""
    if entity not in ENTITIES:
        raise ServiceError(_("Choisissez ce que contient le fichier."))
    if actor.role == Role.ADMIN and actor.organisation_id is None:  # e.g. scripts/create_admin.py's
        raise ServiceError(_("Un fichier est importé pour une structure, et votre compte n'en a pas : "
                             "importez-le depuis un compte rattaché à la structure (Administration, "
                             "Comptes)."))
    if not may_import(actor):
        raise ServiceError(_("Seul·e un·e travailleur·se social·e peut importer un fichier."))
    if not data.strip():
        raise ServiceError(_("Le fichier est vide."))
    drop_stale_drafts(session)
    fail_abandoned(session)
    job = create_job(session, actor, ENTITIES[entity], status=JobStatus.DRAFT, payload=data,
                     params={"entity": entity, "filename": filename[:200]})
    session.commit()
    return job


def preview(session: Session, job: BackgroundJob) -> ParsedFile:
    return parse(session, job.payload or b"", job.params.get("entity", "residents"), date.today(),
                 job.organisation_id)


def confirm(session: Session, actor: User, job: BackgroundJob) -> BackgroundJob:
    """Queue a previewed file for import (the caller then enqueues the job)."""
    if job.status != JobStatus.DRAFT:
        raise ServiceError(_("Cet import est déjà lancé."))
    parsed = preview(session, job)
    if not parsed.ok:
        raise ServiceError(_("Le fichier a des erreurs : corrigez-les puis envoyez-le à nouveau."))
    if session.exec(select(BackgroundJob.id).where(
            BackgroundJob.organisation_id == job.organisation_id, BackgroundJob.kind == job.kind,
            col(BackgroundJob.status).in_([JobStatus.QUEUED, JobStatus.RUNNING]),
            col(BackgroundJob.id) != job.id)).first() is not None:
        # The same file in two tabs, or from two colleagues: each checked for duplicates before the
        # other had written, and every person got two profiles.
        raise ServiceError(_("Un autre import du même type est en cours pour votre structure : attendez "
                             "qu'il se termine, puis validez celui-ci (les lignes qu'il aura enregistrées "
                             "seront signalées comme doublons)."))
    if not move(session, job, JobStatus.DRAFT, status=JobStatus.QUEUED, total=3 * len(parsed.rows),
                progress=0):  # confirmed meanwhile (a double tap), or cancelled
        session.rollback()
        raise ServiceError(_("Cet import est déjà lancé."))
    record(session, actor, "import.confirm", "background_job", job.id, entity=job.params["entity"],
           rows=len(parsed.rows))
    session.commit()
    return job


def cancel(session: Session, job: BackgroundJob) -> bool:
    """Forget a draft (the uploaded file goes with it); False for a job already started."""
    gone = session.exec(delete(BackgroundJob).where(  # type: ignore[call-overload]
        col(BackgroundJob.id) == job.id, col(BackgroundJob.status) == JobStatus.DRAFT))
    session.commit()
    return bool(gone.rowcount)


# ---------------------------------------------------------------------- the import job

def run_import(job: BackgroundJob, progress: Progress) -> dict[str, Any]:
    """Analyse every row, write them all in one transaction, then make proposals."""
    from web.extensions import db, matching
    from web.services.proposals import propose_for_need, propose_for_resident

    entity = job.params.get("entity", "residents")
    today = date.today()
    progress.stage("read")
    with db.session() as session:
        parsed = parse(session, job.payload or b"", entity, today, job.organisation_id)
    if not parsed.ok:  # e.g. a neighbourhood deleted since the preview
        raise JobFailed(*(parsed.errors + parsed.row_errors))
    rows = parsed.rows
    progress.stage("analyse", total=3 * len(rows))
    # Declarations are analysed and encoded (statements and the matcher's artefacts: the slow
    # part) here, before the transaction; a need's text is analysed by the need service inside it,
    # its artefact encoded here too.
    prepared: list[PreparedDeclaration | None] = [None] * len(rows)
    documents: list[Document | None] = []
    if entity == "residents":
        prepared = _prepare(rows, matching, progress)
        errors = [_("Ligne %(line)d : %(error)s", line=row.line,
                    error=NOTHING_TO_READ)
                  for row, ready in zip(rows, prepared, strict=True)
                  if ready is None or not ready.analysis.statements]
        if errors:
            raise JobFailed(*errors)
    else:
        progress.advance(len(rows))
        # As the need service will store them (stripped): see needs.add_need and need_document.
        documents = [need_text_document(0, row.data.title.strip(), row.data.description.strip())
                     for row in rows if isinstance(row.data, NeedInput)]
    # Nothing reports progress inside the transaction: on SQLite the one writer is this session.
    progress.stage("write")
    created: list[int] = []
    consent_months = current_app.config["RELAIS"].consent_months
    with matching.prebuilt(documents), db.session() as session:
        # One import of a centre writes at a time (SQLite: this first write waits for the one
        # writer; PostgreSQL: the organisation's row), and looks again for rows saved meanwhile by
        # another import of the same file: checked at its preview, they would be written twice.
        session.exec(update(BackgroundJob).where(col(BackgroundJob.id) == job.id).values(updated_at=utcnow()))
        session.exec(select(Organisation.id).where(Organisation.id == job.organisation_id).with_for_update())
        known = _known(session, entity, job.organisation_id)
        twice = [_("Ligne %(line)d : %(error)s", line=row.line, error=why) for row in rows
                 if (why := known.repeated(row.data))]
        if twice:
            raise JobFailed(*twice)
        actor = session.get(User, job.created_by_id)
        if actor is None or not may_import(actor):
            raise JobFailed(_("Seul·e un·e travailleur·se social·e peut importer un fichier."))
        for row, ready in zip(rows, prepared, strict=True):
            try:
                if isinstance(row.data, ResidentInput):
                    resident, _code = add_resident(session, matching, actor, row.data, consent_months,
                                                   today, ready)
                    created.append(resident.id or 0)
                elif isinstance(row.data, NeedInput):
                    created.append(add_need(session, matching, actor, row.data).id or 0)
            except ServiceError as exc:  # leaving the block rolls everything back
                raise JobFailed(*(_("Ligne %(line)d : %(error)s", line=row.line, error=message)
                                  for message in exc.messages)) from exc
        record(session, actor, f"{entity}.import", "background_job", job.id, count=len(created))
        # With the rows: a job stopped after this commit says they are saved (jobs.SAVED_STAGE).
        saved = {"entity": entity, "created": len(created), "proposals": 0}
        session.exec(update(BackgroundJob).where(col(BackgroundJob.id) == job.id)
                     .values(stage=SAVED_STAGE, result=saved, updated_at=utcnow()))
        session.commit()
    progress.stage_name = SAVED_STAGE
    progress.advance(len(rows))
    proposals = missed = in_a_row = 0
    with db.session() as session:
        for doc_id in created:
            try:
                if entity == "residents":
                    person = session.get(Resident, doc_id)
                    proposals += propose_for_resident(session, matching, person, today) if person else 0
                else:
                    posted = session.get(Need, doc_id)
                    proposals += propose_for_need(session, matching, posted, today) if posted else 0
                in_a_row = 0
            except Exception:  # the row is saved: its proposals come with later needs and profiles
                session.rollback()
                missed, in_a_row = missed + 1, in_a_row + 1
                if in_a_row >= MAX_FAILED_PROPOSALS:  # not this row: the index, the database…
                    raise  # run_job: the rows are saved (SAVED_STAGE), the job stops
                log.exception("import job %s: no proposals for %s %s", job.id, entity, doc_id)
            progress.advance()
    return {**saved, "proposals": proposals, "missed": missed}


def _prepare(rows: list[Row], matching: MatchingService, progress: Progress
             ) -> list[PreparedDeclaration | None]:
    """Analyse and encode the declarations in batches, before any transaction: in worker
    processes for a large file (matcher.pipeline), else here with the next batch analysed in a
    thread. None for a row without a declaration.

    Worker processes load their own models (~0.5 GB each): a job run by the RQ worker starts them
    for a large file; one run inside a web process (no Redis) only when RELAIS_INGEST_PROCESSES
    asks for them."""
    wanted = bool(current_app.config["RELAIS"].redis_url or os.environ.get("RELAIS_INGEST_PROCESSES"))
    processes = ingest_processes() if wanted and len(rows) >= PARALLEL_ROWS else 0
    prepared: list[PreparedDeclaration | None] = []
    batches = (rows[start:start + ANALYSE_BATCH] for start in range(0, len(rows), ANALYSE_BATCH))
    for batch, ready in prepare_ahead(batches, _declaration, matching.models(), processes):
        prepared.extend(item if isinstance(row.data, ResidentInput) else None
                        for row, item in zip(batch, ready, strict=True))
        progress.advance(len(batch))
    return prepared


def _declaration(row: Row) -> str:
    return row.data.declaration if isinstance(row.data, ResidentInput) else ""


# ---------------------------------------------------------------------- export

def _csv(entity: str, rows: Iterable[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    names = list(HEADERS[entity])
    writer.writerow([HEADERS[entity][name] for name in names])
    for row in rows:
        writer.writerow([spreadsheet_cell(row.get(name, "")) for name in names])
    return "\ufeff" + buffer.getvalue()  # the BOM makes Excel read UTF-8


def _language_words(codes: Iterable[str], named: dict[str, str]) -> str:
    """A cell naming languages by their label (its first name: « berbère » of « tamazight / berbère »),
    « créole » for a language no box offers, as pages name it. `named` keeps the names found for
    the file (a lazy label's translation per cell was a fifth of an admin's 10,000-row export)."""
    codes = list(codes)
    for code in codes:
        if code not in named:
            named[code] = language_label(code).split(" / ")[0]
    return ", ".join(named[code] for code in codes)


def export_residents(session: Session, actor: User) -> tuple[str, int]:
    """The residents `actor` follows (pseudonymous fields only: first name and initial), as CSV
    that the import reads back; and how many."""
    query = select(Resident).order_by(col(Resident.id))
    if actor.role != Role.ADMIN:
        query = query.where(Resident.organisation_id == actor.organisation_id)
    # Columns, not ORM objects: an admin's file of 10,000 people spent 0.8 s building them.
    residents = session.execute(query.with_only_columns(
        col(Resident.id), col(Resident.organisation_id), col(Resident.first_name),
        col(Resident.last_initial), col(Resident.territory_id), col(Resident.languages),
        col(Resident.availability), col(Resident.wants), col(Resident.validation_status))).all()
    # The residents as a subquery (an admin's 100,000 ids as parameters would pass PostgreSQL's
    # 65,535 per statement), and each table read once, not once per resident (70,000 residents:
    # 77 s on PostgreSQL).
    followed = ids_subquery(query, Resident)
    declarations = {resident_id: text for resident_id, text in session.exec(
        select(SkillDeclaration.resident_id, SkillDeclaration.text).where(
            col(SkillDeclaration.is_current).is_(True), col(SkillDeclaration.resident_id).in_(followed))
    ).all()}
    latest = {resident_id: (given_on, method, withdrawn_at) for resident_id, given_on, method, withdrawn_at
              in session.exec(  # current_consent of each: the last given
                  select(col(Consent.resident_id), col(Consent.given_on), col(Consent.method),
                         col(Consent.withdrawn_at))
                  .where(col(Consent.resident_id).in_(followed))
                  .order_by(col(Consent.given_on), col(Consent.id))).all()}
    labels = _TerritoryNames.labels(session.exec(select(Territory)).all())
    named: dict[str, str] = {}
    rows = []
    with force_locale("fr"):  # the file's words are French, whatever the reader's: the import's
        for resident in residents:
            given_on, method, withdrawn_at = latest.get(resident.id, (None, None, None))
            rows.append({
                "first_name": resident.first_name, "last_initial": resident.last_initial,
                "territory": labels.get(resident.territory_id, ""),
                "languages": _language_words(resident.languages, named),
                "availability": ", ".join(AVAILABILITY_WORDS.get(Availability(s), s)
                                          for s in resident.availability if s in set(Availability)),
                "wants": ", ".join(WANT_WORDS.get(Want(w), w) for w in resident.wants if w in set(Want)),
                "declaration": declarations.get(resident.id, ""),
                "consent_date": given_on.strftime("%d/%m/%Y") if given_on else "",
                "consent_method": METHOD_WORDS.get(ConsentMethod(method), method)
                if method in set(ConsentMethod) else "",
                "consent_withdrawn": withdrawn_at.strftime("%d/%m/%Y") if withdrawn_at else "",
                "validation": VALIDATION_WORDS.get(ValidationStatus(resident.validation_status), "")
                if resident.validation_status in set(ValidationStatus) else "",
            })
    record(session, actor, "residents.export", "organisation", actor.organisation_id, count=len(rows))
    session.commit()
    # An admin's file holds every centre's people: each one's history says so.
    record_reading_from_outside(session, actor, residents, "export")
    return _csv("residents", rows), len(rows)


def export_needs(session: Session, actor: User) -> tuple[str, int]:
    """The needs of `actor`'s organisation (every need for admins), as CSV; and how many."""
    query = select(Need).order_by(col(Need.id))
    if actor.role != Role.ADMIN:
        query = query.where(Need.organisation_id == actor.organisation_id)
    needs = session.exec(query).all()
    labels = _TerritoryNames.labels(session.exec(select(Territory)).all())
    named: dict[str, str] = {}
    rows = []
    with force_locale("fr"):  # the file's words are French, whatever the reader's: the import's
        for need in needs:
            rows.append({
                "title": need.title, "description": need.description,
                "kind": KIND_WORDS.get(NeedKind(need.kind), need.kind) if need.kind in set(NeedKind) else "",
                "when_text": need.when_text, "where_text": need.where_text,
                "territory": labels.get(need.territory_id, "") if need.territory_id else "",
                "languages": _language_words(need.languages, named),
                "availability": ", ".join(AVAILABILITY_WORDS.get(Availability(s), s)
                                          for s in need.availability if s in set(Availability)),
                "people_wanted": str(need.people_wanted) if need.people_wanted else "",
                "status": str(NEED_STATUS_LABELS.get(NeedStatus(need.status), need.status))
                if need.status in set(NeedStatus) else need.status,
                "validation": VALIDATION_WORDS.get(ValidationStatus(need.validation_status), "")
                if need.validation_status in set(ValidationStatus) else "",
            })
    record(session, actor, "needs.export", "organisation", actor.organisation_id, count=len(rows))
    session.commit()
    return _csv("needs", rows), len(rows)
