"""Text normalisation and segmentation for the hybrid ranker (matcher/hybrid.py).

Queries (residents' declarations: oral, SMS-spelled, English or mixed) and documents (needs, skill
labels, job profiles) go through the same normalisation, so the models and the lexical indexes
compare like with like. Everything here is a general French resource written from general
knowledge, not from any evaluation set.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from matcher.analysis import fold_accents, standard_spelling, word_set

# French function words (folded). Negation words stay in: the query analyser needs them.
STOP = frozenset(fold_accents(w) for w in word_set("""
a à au aux avec ce ces cet cette c ça ca d de des du dans donc elle elles en et est être etre été
eu il ils j je l la le les leur leurs lui m ma mais me même mes moi mon n ne nos notre nous on ou où
par pas pour qu que qui s sa se ses si son sur t ta te tes toi ton tu un une vos votre vous y
ai as avons avez ont suis es sommes êtes sont serai sera étais était avais avait fait faire
aussi bien comme très tres plus peu tout tous toute toutes bon bonne chez ici là
veux veut voudrais aimerais aime j'aime peux peut sais pouvoir vouloir savoir
i you we the and or but to of in on for with my me is am are be can like want would their them they it
this that
"""))

_APOSTROPHES = str.maketrans({"’": "'", "`": "'", "´": "'", "‘": "'", "«": '"', "»": '"',
                              "\u00a0": " ", "\u202f": " ", "‾": " ", "•": " ", "·": " "})
_TOKEN = re.compile(r"[\w'’-]+|[^\w\s]", re.UNICODE)
# Inclusive endings: "un(e)", "bénévole(s)", "conducteur·rice", "salarié.e".
_INCLUSIVE = re.compile(
    r"(?<=\w)(?:\((?:e|es|s|ne|nes|se|ses|rice|rices|ère|ères|le|les|te|tes|x)\)"
    r"|[·•.](?:e|es|ne|nes|se|ses|rice|rices)\b)", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?…])\s+(?=[A-ZÀ-Ý0-9«\"(\-•])")
_CLAUSE = re.compile(r"\s*[,;:.!?()]\s*|\s+(?:mais|and|but|puis|ensuite)\s+")
_BULLET = re.compile(r"^[-•*–]\s+")
# A document this short is a label (a skill, a job title): all title, no body.
LABEL_MAX_CHARS = 160


def fold(text: str) -> str:
    """Accent folding for matching ('é' -> 'e', 'œ' -> 'oe'), as residents type on phones."""
    return fold_accents(text.replace("œ", "oe").replace("æ", "ae"))


def degender(text: str) -> str:
    """Collapse French doubled and inclusive job forms into one ('Conducteur / Conductrice' -> 'Conducteur').

    A slash is only collapsed when the words after it start like the words before it (first four
    letters, folded), so real alternatives ('plombier / chauffagiste') are kept. Measured: rome
    USE whole-document R@10 0.598 -> 0.637 once documents are degendered like queries.
    """
    text = _INCLUSIVE.sub("", text)
    text = re.sub(r"(?<=[^\W\d_])/(?=[^\W\d_])", " / ", text)  # 'maçon/maçonne' -> 'maçon / maçonne'
    kept = " /\u0001 "
    while " / " in text:
        head, tail = text.split(" / ", 1)
        left, right = head.split(" "), tail.split(" ")
        for n in range(min(len(left), len(right)), 0, -1):  # the longest doubled span first
            if all(fold(a.lower())[:4] == fold(b.lower())[:4]
                   for a, b in zip(left[-n:], right[:n], strict=True)):
                text = " ".join(left + right[n:])
                break
        else:
            text = head + kept + tail
    return text.replace(kept, " / ")


# Lone surrogates (from broken JSON or copy-paste) cannot be encoded to UTF-8 by the encoders.
SURROGATES = re.compile("[\ud800-\udfff]")
# No word is longer; a 20,000-character "word" would only cost n-grams and encoder time.
MAX_TOKEN_CHARS = 64


@lru_cache(maxsize=65536)
def normalise(text: str, gender: bool = True) -> str:
    """NFKC, apostrophes, lowercase, SMS spellings expanded (matcher.analysis.SMS_FORMS), doubled job
    forms collapsed (if `gender`)."""
    text = unicodedata.normalize("NFKC", SURROGATES.sub("", text))
    text = (degender(text) if gender else _INCLUSIVE.sub("", text)).translate(_APOSTROPHES).lower()
    tokens = [standard_spelling(tok[:MAX_TOKEN_CHARS]) for tok in _TOKEN.findall(text)]
    out = " ".join(tok for tok in tokens if tok)
    out = re.sub(r"\s+([,.;:!?)])", r"\1", out)
    return re.sub(r"\s+'\s*|'\s+", "'", out)


def words(text: str, gender: bool = True) -> list[str]:
    """Folded word tokens of the normalised text (elisions split: "l'emploi" -> 'l', 'emploi')."""
    return re.findall(r"[a-z0-9]+", fold(normalise(text, gender)))


@lru_cache(maxsize=1)
def _stemmer() -> object:
    try:
        import Stemmer
    except ImportError as exc:
        raise RuntimeError("PyStemmer is not installed: pip install PyStemmer==3.1.0") from exc
    return Stemmer.Stemmer("french")


def stems(text: str, gender: bool = True) -> list[str]:
    """Snowball stems of the content words, folded after stemming (the BM25 vocabulary).

    Stems beat spaCy lemmas here: BM25 alone pairs R@10 0.870 vs 0.833, esco 0.676 vs 0.636,
    rome 0.643 vs 0.614, and lemmatising costs 21 s on the rome corpus.
    """
    stem_word = _stemmer().stemWord  # type: ignore[attr-defined]
    out: list[str] = []
    for word in re.findall(r"[^\W_]+", normalise(text, gender), re.UNICODE):
        folded = fold(word)
        if len(folded) >= 2 and folded not in STOP:
            out.append(fold(stem_word(word)))
    return out


def char_ngrams(text: str, lo: int = 3, hi: int = 5, gender: bool = True) -> list[str]:
    """Character n-grams inside word boundaries (' word '), folded, stop words left out."""
    out: list[str] = []
    for word in words(text, gender):
        if word in STOP or len(word) < 2:
            continue
        padded = f" {word} "
        for n in range(lo, hi + 1):
            out.extend(padded[i:i + n] for i in range(max(1, len(padded) - n + 1)))
    return out


def title_and_body(text: str, title: str | None = None) -> tuple[str, str]:
    """Split a document: the given title if any, else its first line, else its first sentence."""
    title = (title or "").strip()
    if title:
        body = text[len(title):].lstrip(" .\n") if text.startswith(title) else text
        return title, body
    if len(text) <= LABEL_MAX_CHARS:
        return text.strip(), ""
    first = next((line.strip() for line in text.split("\n") if line.strip()), "")
    if "\n" in text.strip():
        return first, text[text.find(first) + len(first):].strip()
    parts = _SENTENCE.split(text, maxsplit=1)
    return parts[0].strip(), (parts[1].strip() if len(parts) > 1 else "")


def _blocks(body: str) -> list[str]:
    """Paragraphs with hard wraps joined; bullets and lines ending a sentence start a new block."""
    blocks: list[str] = []
    for paragraph in re.split(r"\n\s*\n", body):
        current: list[str] = []
        for raw_line in paragraph.split("\n"):
            line = raw_line.strip()
            if not line:
                continue
            if current and (_BULLET.match(line) or re.search(r"[.:!?]$", current[-1])):
                blocks.append(" ".join(current))
                current = []
            current.append(_BULLET.sub("", line))
        if current:
            blocks.append(" ".join(current))
    return blocks


def sentences(body: str, max_words: int = 40) -> list[str]:
    """Sentences and bullet items of a body; longer ones cut into overlapping `max_words` windows."""
    out = []
    for block in _blocks(body):
        for sentence in _SENTENCE.split(re.sub(r"\s+", " ", block).strip()):
            tokens = sentence.strip().split()
            if len(tokens) < 3 or not re.search(r"[^\W\d_]{3}", sentence):
                continue
            if len(tokens) <= max_words:
                out.append(sentence.strip())
                continue
            step = max_words // 2 * 2 - 10
            for i in range(0, len(tokens), step):
                out.append(" ".join(tokens[i:i + max_words]))
                if i + max_words >= len(tokens):
                    break
    return out


def clauses(text: str) -> list[str]:
    """Statements of a normalised declaration: split on punctuation and a few coordinators."""
    parts = [re.sub(r"^(?:et|mais|puis|ensuite|and|but|then)\s+", "", p.strip())
             for p in _CLAUSE.split(text) if p and p.strip()]
    return [p for p in parts if any(w not in STOP for w in words(p))]
