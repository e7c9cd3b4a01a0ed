"""Forms: parsing and first-line validation of what people type (the services check again)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from babel.lists import format_list
from flask_babel import get_locale, gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    FloatField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    widgets,
)
from wtforms import (
    TextAreaField as _BrowserTextArea,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from matcher.analysis import LANGUAGE_NAMES
from models import (
    Availability,
    ConsentMethod,
    ContactChannel,
    MatchStatus,
    NeedKind,
    NeedStatus,
    OrganisationKind,
    Outcome,
    RejectionReason,
    Role,
    Want,
)

# Languages offered as tick boxes: the most spoken in French priority neighbourhoods.
LANGUAGE_LABELS = {
    "fr": _l("français"), "ar": _l("arabe"), "ber": _l("tamazight / berbère"),
    "kab": _l("kabyle"), "en": _l("anglais"), "es": _l("espagnol"), "pt": _l("portugais"),
    "it": _l("italien"), "tr": _l("turc"), "ku": _l("kurde"), "wo": _l("wolof"),
    "bm": _l("bambara"), "snk": _l("soninké"), "ff": _l("peul"), "ln": _l("lingala"),
    "zdj": _l("comorien"), "ro": _l("roumain"), "rom": _l("romani"), "ru": _l("russe"),
    "uk": _l("ukrainien"), "fa": _l("persan / dari"), "ps": _l("pachto"), "ta": _l("tamoul"),
    "vi": _l("vietnamien"), "zh": _l("chinois"), "so": _l("somali"), "ti": _l("tigrigna"),
    "fsl": _l("langue des signes"),
}
# Languages the text analysis also recognises (matcher.analysis.LANGUAGE_NAMES), named by their
# first French name there: a profile keeps them, and pages name them, though no box offers them.
OTHER_LANGUAGES = {code: name for name, code in reversed(LANGUAGE_NAMES.items())
                   if code not in LANGUAGE_LABELS}
KNOWN_LANGUAGES = frozenset(LANGUAGE_LABELS) | frozenset(OTHER_LANGUAGES)  # what a profile may hold


def language_label(code: str) -> str:
    """A language's name in the interface language when offered as a box, else in French."""
    return str(LANGUAGE_LABELS.get(code) or OTHER_LANGUAGES.get(code, code))
AVAILABILITY_LABELS = {
    Availability.WEEKDAY_MORNING: _l("en semaine, le matin"),
    Availability.WEEKDAY_AFTERNOON: _l("en semaine, l'après-midi"),
    Availability.WEEKDAY_EVENING: _l("en semaine, le soir"),
    Availability.WEEKEND: _l("le week-end"),
}
WANT_LABELS = {
    Want.VOLUNTEERING: _l("faire du bénévolat"),
    Want.TRAINING: _l("se former"),
    Want.JOB: _l("trouver un emploi"),
    Want.ACTIVITY: _l("lancer une activité"),
}
CONSENT_METHOD_LABELS = {
    ConsentMethod.PAPER_SIGNED: _l("formulaire papier signé"),
    ConsentMethod.ORAL_IN_PERSON: _l("accord oral, en personne"),
}
NEED_KIND_LABELS = {
    NeedKind.SKILL: _l("des personnes avec un savoir-faire"),
    NeedKind.RESOURCE: _l("une ressource (salle, matériel, véhicule…)"),
}
REJECTION_LABELS = {
    RejectionReason.BUSY: _l("La personne est déjà occupée"),
    RejectionReason.LEVEL: _l("Ce n'est pas le bon niveau"),
    RejectionReason.DISTANCE: _l("Trop loin"),
    RejectionReason.SCHEDULE: _l("Horaires incompatibles"),
    RejectionReason.NOT_NOW: _l("La personne n'est pas intéressée pour l'instant"),
    RejectionReason.OTHER: _l("Autre raison (précisez)"),
}
# As a rejection is told afterwards (timeline, the person's copy): the form's « (précisez) » was
# read there as part of the reason.
REJECTION_SHOWN = {**REJECTION_LABELS, RejectionReason.OTHER: _l("Autre raison")}


SENSITIVE_OK = _l("J'ai relu : ces informations sont nécessaires et la personne est d'accord.")
SENSITIVE_LABELS = {
    "health": _l("santé"), "religion": _l("religion ou convictions"),
    "origin": _l("origine ou situation administrative"), "justice": _l("justice"),
    "sexuality": _l("vie sexuelle ou orientation"),
    "politics_union": _l("opinions politiques ou syndicales"),
}


def choices(mapping: Mapping[Any, Any]) -> list[SelectChoice]:
    """Options for a select, radio or tick-box field, in the mapping's order."""
    return [SelectChoice(str(value), label) for value, label in mapping.items()]  # type: ignore[arg-type]


class TextAreaField(_BrowserTextArea):
    """A text area whose lengths are the browser's: it counts a line break as one character for
    `maxlength` (and its counter) but sends two (CRLF), so a text the page accepted came back
    « trop long » by as many characters as it had lines."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        super().process_formdata(valuelist)
        data: Any = getattr(self, "data", None)
        if isinstance(data, str):
            self.data = data.replace("\r\n", "\n")


class MultiCheckboxField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class LoginForm(FlaskForm):
    email = StringField(_l("Adresse e-mail"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Mot de passe"), validators=[DataRequired(), Length(max=200)])


class CodeForm(FlaskForm):
    code = StringField(_l("Votre code"), validators=[DataRequired(), Length(max=20)])


# Guided free-text entry: questions that help the person tell what they do, in their words. Each
# answer is added to the text (by web/static/guided.js, or on saving when JavaScript is off).
GUIDED_PROMPTS = {
    "guide_home": _l("À la maison : qu'est-ce que vous faites ? (cuisine, couture, réparations…)"),
    "guide_family": _l("Pour la famille : de quoi vous occupez-vous ?"),
    "guide_neighbours": _l("Pour les voisins : pour quoi vient-on vous chercher ?"),
    "guide_country": _l("Au pays : qu'est-ce que vous faisiez ?"),
    "guide_work": _l("Au travail : quels métiers avez-vous faits, ici ou ailleurs ?"),
}


def offer_languages(field: Any, codes: list[str]) -> None:
    """Add boxes to a languages field for the codes held beyond the usual ones (a profile's found
    in its text, a need's from an import), so that saving the form keeps them."""
    extra = [code for code in codes if code not in LANGUAGE_LABELS]
    field.choices = [*choices(LANGUAGE_LABELS), *(SelectChoice(code, language_label(code)) for code in extra)]


class ProfileForm(FlaskForm):
    """Who the person is for matching (a new profile's first part, and its own form later)."""

    first_name = StringField(_l("Prénom ou pseudonyme"), validators=[DataRequired(), Length(max=60)])
    last_initial = StringField(_l("Initiale du nom"), validators=[
        Optional(), Length(max=1), Regexp(r"^[^\W\d_]$", message=_l("L'initiale doit être une lettre."))])
    territory_id = SelectField(_l("Quartier"), coerce=int)
    languages = MultiCheckboxField(_l("Langues parlées"),
                                   choices=choices(LANGUAGE_LABELS))
    availability = MultiCheckboxField(_l("Disponibilités"),
                                      choices=choices(AVAILABILITY_LABELS))
    wants = MultiCheckboxField(_l("Ce que la personne souhaite"),
                               choices=choices(WANT_LABELS))

    def offer_languages(self, codes: list[str]) -> None:
        """Add boxes for the languages a profile holds beyond the usual ones (found in its text),
        so that saving the form keeps them."""
        offer_languages(self.languages, codes)


class ResidentForm(ProfileForm):
    declaration = TextAreaField(_l("Ce que la personne sait faire, avec ses mots"),
                                validators=[Length(max=10_000)])
    guide_home = TextAreaField(GUIDED_PROMPTS["guide_home"], validators=[Optional(), Length(max=2000)])
    guide_family = TextAreaField(GUIDED_PROMPTS["guide_family"],
                                 validators=[Optional(), Length(max=2000)])
    guide_neighbours = TextAreaField(GUIDED_PROMPTS["guide_neighbours"],
                                     validators=[Optional(), Length(max=2000)])
    guide_country = TextAreaField(GUIDED_PROMPTS["guide_country"],
                                  validators=[Optional(), Length(max=2000)])
    guide_work = TextAreaField(GUIDED_PROMPTS["guide_work"], validators=[Optional(), Length(max=2000)])
    consent_matching = BooleanField(
        _l("La personne accepte que Relais lui propose des activités et montre son prénom et "
           "son initiale aux structures, après validation par le centre social."))
    consent_given_on = DateField(_l("Date du consentement"), default=date.today,
                                 validators=[Optional()])
    consent_method = RadioField(_l("Comment le consentement a été recueilli"),
                                choices=choices(CONSENT_METHOD_LABELS),
                                validators=[Optional()])
    sensitive_ok = BooleanField(SENSITIVE_OK)

    def guided_fields(self) -> list[Any]:
        return [self[name] for name in GUIDED_PROMPTS]

    def fold_guided(self) -> str:
        """Add each guided answer not yet in the text to it (and empty the answer), so that the
        sensitive-data check, the page shown again and the saved profile all see one text."""
        parts = [self.declaration.data or "", *(f.data or "" for f in self.guided_fields())]
        # Browsers send a textarea's line breaks as CRLF: keep one convention in what is stored.
        self.declaration.data = "\n".join(part.replace("\r\n", "\n").strip()
                                          for part in parts if part and part.strip())
        for f in self.guided_fields():
            f.data = ""
        return self.declaration.data


class ConsentForm(FlaskForm):
    # Required: the browser stops the form at the choice itself (it came back folded, with a
    # message at the top of the page); the server says it too, for a browser that does not.
    method = RadioField(_l("Comment le consentement a été recueilli"),
                        choices=choices(CONSENT_METHOD_LABELS), validators=[DataRequired()])


class DeclarationForm(FlaskForm):
    declaration = TextAreaField(_l("Ce que la personne sait faire, avec ses mots"),
                                validators=[Length(max=10_000)])
    sensitive_ok = BooleanField(SENSITIVE_OK)


class CorrectionForm(ProfileForm, DeclarationForm):
    """A habitant-relais corrects a profile sent back: who the person is, and their text (the
    worker's word asks about either)."""


class DecimalField(FloatField):
    """A number typed the French way too ("47,8456": a phone's decimal keypad gives a comma);
    anything else is told in words, not WTForms' « N'est pas un flottant valide »."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        try:
            super().process_formdata([str(v).strip().replace(",", ".") for v in valuelist])
        except ValueError:
            raise ValueError(_l("Écrivez un nombre, par exemple 47,85.")) from None


class WholeNumberField(IntegerField):
    """A count, told in words when it is not one (WTForms said « N'est pas un entier valide »)."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        try:
            super().process_formdata([str(v).strip() for v in valuelist])
        except ValueError:
            raise ValueError(_l("Écrivez un nombre en chiffres, par exemple 3.")) from None


class NeedForm(FlaskForm):
    title = StringField(_l("Titre"), validators=[DataRequired(), Length(max=200)])
    kind = RadioField(_l("Vous cherchez"), default=NeedKind.SKILL.value,
                      choices=choices(NEED_KIND_LABELS))
    description = TextAreaField(_l("Description : quoi, quand, où"),
                                validators=[DataRequired(), Length(max=10_000)])
    when_text = StringField(_l("Quand"), validators=[Optional(), Length(max=200)])
    availability = MultiCheckboxField(_l("Créneaux"), choices=choices(AVAILABILITY_LABELS))
    where_text = StringField(_l("Où"), validators=[Optional(), Length(max=200)])
    territory_id = SelectField(_l("Quartier"), coerce=int)
    languages = MultiCheckboxField(_l("Langues demandées (facultatif)"),
                                   choices=choices(LANGUAGE_LABELS))
    people_wanted = WholeNumberField(_l("Combien de personnes cherchez-vous ? (facultatif)"),
                                 validators=[Optional(), NumberRange(min=1, max=999)])

    def offer_languages(self, codes: list[str]) -> None:
        offer_languages(self.languages, codes)


class RejectForm(FlaskForm):
    reason_code = SelectField(_l("Raison"), choices=choices(REJECTION_LABELS))
    reason_text = StringField(_l("Précision"), validators=[Optional(), Length(max=1000)])  # the service's


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


class SendBackForm(FlaskForm):
    """A social worker returns a habitant-relais's submission with a word."""

    note = TextAreaField(_l("Un mot pour la personne qui a fait la fiche : que faut-il revoir ?"),
                         validators=[DataRequired(), Length(max=500)])


class RelaisNeedForm(FlaskForm):
    """A need seen in the neighbourhood, as a habitant-relais notes it on a phone."""

    title = StringField(_l("En quelques mots"), validators=[DataRequired(), Length(max=200)])
    description = TextAreaField(_l("Ce qu'il faut : quoi, quand, où, pour qui"),
                                validators=[DataRequired(), Length(max=10_000)])
    where_text = StringField(_l("Où (facultatif)"), validators=[Optional(), Length(max=200)])
    territory_id = SelectField(_l("Quartier"), coerce=int)
    # « La crèche cherche quelqu'un qui parle tamoul » (the form's own example) had no box: the
    # need went into matching asking no language, and the worker validating it could not add one.
    languages = MultiCheckboxField(
        _l("Langues demandées (facultatif)"), choices=choices(LANGUAGE_LABELS),
        description=_l("Cochez une langue seulement si la personne doit la parler : seules les personnes "
                       "qui la parlent seront proposées."))


class AnswerForm(FlaskForm):
    # A text area: in a one-line field, Enter (a phone keyboard's « OK ») sent the form with its
    # first button, « Oui », an answer that cannot be taken back. Staff read it, not the structure.
    comment = TextAreaField(_l("Un mot pour la personne qui vous accompagne (facultatif)"),
                            validators=[Optional(), Length(max=500)])


# How an association reaches a resident after a yes: as the resident chooses it, and as shown.
CONTACT_CHOICES = {
    ContactChannel.WORKER: _l("Par la personne qui m'accompagne au centre social"),
    ContactChannel.PHONE: _l("Par téléphone"),
    ContactChannel.EMAIL: _l("Par e-mail"),
}
CHANNEL_LABELS = {
    ContactChannel.WORKER: _l("par sa ou son travailleur·se social·e"),
    ContactChannel.PHONE: _l("par téléphone"),
    ContactChannel.EMAIL: _l("par e-mail"),
}
OUTCOME_LABELS = {
    Outcome.HAPPENED: _l("ça s'est fait"),
    Outcome.DID_NOT_HAPPEN: _l("ça ne s'est pas fait"),
}


class ContactForm(FlaskForm):
    channel = RadioField(_l("Comment la structure peut vous joindre ?"), default=ContactChannel.WORKER.value,
                         choices=choices(CONTACT_CHOICES))
    value = StringField(_l("Numéro de téléphone ou adresse e-mail"),
                        validators=[Optional(), Length(max=254)])


class OutcomeForm(FlaskForm):
    outcome = RadioField(_l("Est-ce que ça s'est fait ?"), choices=choices(OUTCOME_LABELS),
                         validators=[DataRequired(_l("Dites si ça s'est fait ou non."))])
    note = StringField(_l("Un mot (facultatif)"), validators=[Optional(), Length(max=200)])


def outcome_label(outcome: str | None) -> str:
    """French label of an outcome ('' when none was recorded; a Jinja filter)."""
    return str(OUTCOME_LABELS.get(Outcome(outcome), "")) if outcome in set(Outcome) else ""


# The journal's actions about a person, as the person reads them on their copy of their data
# (« Qui » then « Quoi »): the codes and their details are for staff.
JOURNAL_LABELS = {
    "profile.view": _l("a consulté votre fiche"),
    "resident.create": _l("a créé votre fiche"),
    "resident.update": _l("a changé votre fiche (nom, quartier, langues, disponibilités ou souhaits)"),
    "declaration.update": _l("a changé le texte de ce que vous savez faire"),
    "resident.restate": _l("Relais a relu le texte de ce que vous savez faire"),
    "resident.validate": _l("a validé votre fiche"),
    "resident.send_back": _l("a renvoyé votre fiche pour la corriger"),
    "resident.resubmit": _l("a corrigé votre fiche"),
    "resident.export": _l("a regardé ou téléchargé toutes vos données"),
    "resident.contact": _l("a choisi comment la structure vous contacte"),
    "consent.record": _l("a noté votre accord"),
    "consent.withdraw": _l("a retiré votre accord"),
    "match.propose": _l("a proposé une mission pour vous"),
    "match.approve": _l("a validé une proposition pour vous"),
    "match.reject": _l("a écarté une proposition pour vous"),
    "match.accept": _l("a dit oui à une proposition"),
    "match.decline": _l("a dit non à une proposition"),
    "match.outcome": _l("a noté la suite d'une proposition"),
    "request.create": _l("a envoyé une demande"),
    "request.handle": _l("a traité une demande"),
    "access_code.reset": _l("a donné un nouveau code"),
    "login.code": _l("a ouvert son espace avec le code"),
}


def journal_label(action: str) -> str:
    """What a journal entry says to the person it is about (its code when it has no sentence)."""
    return str(JOURNAL_LABELS.get(action, action))


ORGANISATION_KIND_LABELS = {
    OrganisationKind.CENTRE_SOCIAL: _l("centre social"),
    OrganisationKind.ASSOCIATION: _l("association"),
    OrganisationKind.TIERS_LIEU: _l("tiers-lieu"),
    OrganisationKind.COOPERATIVE: _l("coopérative d'habitants"),
    OrganisationKind.COLLECTIF_HABITANTS: _l("collectif d'habitants"),
    OrganisationKind.COLLECTIVITE: _l("collectivité"),
    OrganisationKind.BAILLEUR: _l("bailleur social"),
}
ROLE_LABELS = {
    Role.SOCIAL_WORKER: _l("travailleur·se social·e"),
    Role.ASSOCIATION_MEMBER: _l("membre d'une structure (publie des besoins)"),
    Role.HABITANT_RELAIS: _l("habitant·e-relais (note des fiches, validées par le centre social)"),
    Role.ADMIN: _l("administrateur·rice"),
}


class TerritoryForm(FlaskForm):
    name = StringField(_l("Quartier"), validators=[DataRequired(), Length(max=120)])
    commune = StringField(_l("Commune"), validators=[DataRequired(), Length(max=120)])
    qpv_code = StringField(_l("Code QPV (quartier prioritaire), s'il y en a un"),
                           validators=[Optional(), Length(max=16)])
    latitude = DecimalField(_l("Latitude du centre du quartier (facultatif)"), validators=[Optional()])
    longitude = DecimalField(_l("Longitude (facultatif)"), validators=[Optional()])


class OrganisationForm(FlaskForm):
    name = StringField(_l("Nom de la structure"), validators=[DataRequired(), Length(max=200)])
    kind = SelectField(_l("Type"), choices=choices(ORGANISATION_KIND_LABELS))
    territory_id = SelectField(_l("Quartier (facultatif)"), coerce=int, default=0)
    description = TextAreaField(_l("Description (facultatif)"), validators=[Optional(), Length(max=4000)])


class PresentationForm(FlaskForm):
    description = TextAreaField(_l("Présentez votre structure"), validators=[Optional(), Length(max=4000)])


class StaffForm(FlaskForm):
    display_name = StringField(_l("Nom affiché"), validators=[DataRequired(), Length(max=120)])
    email = StringField(_l("Adresse e-mail (l'identifiant de connexion)"),
                        validators=[DataRequired(), Length(max=254)])
    role = RadioField(_l("Rôle"), choices=choices(ROLE_LABELS))
    organisation_id = SelectField(_l("Structure"), coerce=int, default=0)


class PasswordForm(FlaskForm):
    current = PasswordField(_l("Mot de passe actuel"), validators=[DataRequired(), Length(max=200)])
    new = PasswordField(_l("Nouveau mot de passe (10 caractères au moins)"),
                        validators=[DataRequired(), Length(max=200)])
    repeated = PasswordField(_l("Le nouveau mot de passe, encore une fois"),
                             validators=[DataRequired(), Length(max=200)])


class EraseForm(FlaskForm):
    confirm = BooleanField(_l("Je confirme : tout ce que Relais garde sur cette personne sera effacé, "
                              "sans retour possible."), validators=[DataRequired()])


class RequestForm(FlaskForm):
    """A resident's message to their social worker."""

    message = TextAreaField(_l("Votre message"), validators=[Optional(), Length(max=1000)])


NEED_STATUS_LABELS = {
    NeedStatus.OPEN: _l("ouvert"), NeedStatus.PAUSED: _l("en pause"), NeedStatus.CLOSED: _l("clôturé"),
}
STATUS_MESSAGES = {
    NeedStatus.OPEN: _l("Besoin rouvert : Relais cherche à nouveau des personnes."),
    NeedStatus.PAUSED: _l("Besoin en pause : plus de nouvelle proposition pour l'instant."),
    NeedStatus.CLOSED: _l("Besoin clôturé. Merci !"),
}

STATUS_LABELS = {
    MatchStatus.PROPOSED: _l("à examiner"),
    MatchStatus.APPROVED: _l("validée"),
    MatchStatus.REJECTED: _l("écartée"),
    MatchStatus.ACCEPTED: _l("acceptée par la personne"),
    MatchStatus.DECLINED: _l("refusée par la personne"),
}


# As the association reads its candidates: the person's answer. « validée » read as "confirmed",
# and agreed with a hidden « proposition » beside a man's name.
ANSWER_LABELS = {
    MatchStatus.APPROVED: _l("n'a pas encore répondu"),
    MatchStatus.ACCEPTED: _l("a dit oui"),
    MatchStatus.DECLINED: _l("a dit non"),
}


def status_label(status: str) -> str:
    """French label of a proposal's status (a Jinja filter)."""
    return str(STATUS_LABELS.get(MatchStatus(status), status))


def answer_label(status: str) -> str:
    """A candidate's status as the association reads it: the person's answer (a Jinja filter)."""
    return str(ANSWER_LABELS.get(MatchStatus(status), status_label(status)))


WEEKDAY_TIMES = {
    Availability.WEEKDAY_MORNING: _l("le matin"),
    Availability.WEEKDAY_AFTERNOON: _l("l'après-midi"),
    Availability.WEEKDAY_EVENING: _l("le soir"),
}


def slot_labels(slots: list[str] | None) -> str:
    """The time slots of a need or a person, in the labels' order, weekdays said once: « en
    semaine, le matin et l'après-midi ; le week-end » (it read « en semaine, le matin, en semaine,
    l'après-midi, le week-end »). A Jinja filter."""
    chosen = set(slots or [])
    times = [slot for slot in WEEKDAY_TIMES if slot in chosen]
    weekdays = gettext("en semaine, %(times)s", times=format_list(
        [str(WEEKDAY_TIMES[slot]) for slot in times], locale=str(get_locale() or "fr"))) if times else ""
    weekend = str(AVAILABILITY_LABELS[Availability.WEEKEND]) if Availability.WEEKEND in chosen else ""
    if weekdays and weekend:
        return gettext("%(weekdays)s ; %(weekend)s", weekdays=weekdays, weekend=weekend)
    return weekdays or weekend


def want_labels(wants: list[str] | None) -> str:
    """What a person wants, in words ("job" → "trouver un emploi"; a Jinja filter)."""
    return ", ".join(str(text) for want, text in WANT_LABELS.items() if want in (wants or []))


def consent_method_label(method: str) -> str:
    return str(CONSENT_METHOD_LABELS.get(ConsentMethod(method), method))


class ImportForm(FlaskForm):
    """A spreadsheet of residents or needs (CSV), checked in a preview before anything is saved."""

    entity = RadioField(_l("Le fichier contient"), default="residents",
                        choices=choices({"residents": _l("des personnes accompagnées"),
                                         "needs": _l("des besoins")}))
    file = FileField(_l("Fichier CSV (enregistré depuis Excel ou LibreOffice)"),
                     validators=[FileRequired(_l("Choisissez un fichier."))])


# « Très proche » also needs the ranker's score (the explanation's `rank`, a mean z-score) at
# least this: one shared word (« bénévole ») gave a pair cosine of 0.5 and more to a cooking
# profile and a homework-help need. Measured on the dev `pairs` set (54 declarations, 215 needs;
# share of « Très proche » that are gold, by the best pair alone → with this rank too): resident
# → need 58 → 68 % (use+e5), 57 → 59 % (use); need → resident 37 → 57 % (use+e5), 34 → 44 %
# (use). A rank band on « Proche » (≥ 0.5, ≥ 1) moved almost nothing and is not used.
CLOSE_RANK = 1.5


def closeness_label(similarity: float, rank: float | None = None) -> str:
    """How close a proposal is, in words: from the best statement pair's similarity, « Très
    proche » only with a ranker's score (`rank`) of CLOSE_RANK too when the proposal has one (a
    worker's own pick has none)."""
    if similarity >= 0.5 and (rank is None or rank >= CLOSE_RANK):
        return str(_l("Très proche"))
    if similarity >= 0.35:
        return str(_l("Proche"))
    return str(_l("À vérifier"))


def reason_label(reason: str) -> str:
    """French label of a policy reason ('' for reasons kept for the record only)."""
    name, _sep, value = reason.partition(":")
    if name == "languages":
        names = [str(LANGUAGE_LABELS.get(code, code)) for code in value.split(",")]
        return str(_l("parle %(languages)s", languages=", ".join(names)))
    if name == "distance_km":
        return str(_l("à %(km)s km", km=value.replace(".", ",")))
    labels = {"territory": _l("même quartier"), "availability": _l("disponible au bon moment"),
              "dormant": _l("n'a encore jamais eu de proposition")}
    return str(labels.get(name, ""))
