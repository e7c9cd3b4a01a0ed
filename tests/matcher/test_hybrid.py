"""The hybrid ranker with the real encoders, on a few needs written here."""

from __future__ import annotations

import io
import json
from collections.abc import Collection

import numpy as np
import pytest

from matcher.analysis import get_analyzer
from matcher.hybrid import (
    ARTEFACT_MAGIC,
    DENSE_EF_SEARCH,
    SLOT_WIDTH,
    Document,
    DocumentArtefact,
    Encoders,
    HybridIndex,
    analyse_query,
    load_encoders,
    make_artefacts,
    searched_text,
    use_vectors_of,
)

NEEDS = [
    Document("drive", "Chauffeur bénévole\nConduire le minibus de l'association pour emmener les "
                      "personnes âgées au marché le samedi matin."),
    Document("cook", "Aide en cuisine\nPréparer le repas solidaire du vendredi avec l'équipe : éplucher, "
                     "cuisiner pour quarante personnes, servir."),
    Document("sew", "Atelier couture\nAnimer un atelier couture pour les femmes du quartier : retouches, "
                    "ourlets, machine à coudre."),
    Document("bike", "Réparation de vélos\nTenir l'atelier d'autoréparation de vélos le mercredi "
                     "après-midi avec les jeunes du quartier."),
    Document("homework", "Aide aux devoirs\nAccompagner des collégiens dans leurs devoirs de français et "
                         "de mathématiques après l'école."),
    Document("garden", "Jardin partagé\nEntretenir les potagers du jardin partagé : semis, arrosage, "
                       "désherbage, récolte avec les habitants."),
]


class Refusing:
    """An encoder that must not be called."""

    name, dim = "refusing", 512

    def encode(self, texts: list[str]) -> np.ndarray:
        raise AssertionError(f"an encoder was called for {texts[:2]}")


@pytest.fixture(scope="module")
def encoders() -> Encoders:
    return load_encoders()


@pytest.fixture(scope="module")
def artefacts(encoders: Encoders) -> list[DocumentArtefact]:
    return make_artefacts(NEEDS, encoders)


@pytest.fixture
def index(encoders: Encoders, artefacts: list[DocumentArtefact]) -> HybridIndex:
    idx = HybridIndex(encoders)
    for need, artefact in zip(NEEDS, artefacts, strict=True):
        idx.upsert(need.doc_id, artefact)
    return idx


def npz_blob(artefact: DocumentArtefact, without: Collection[str] = ()) -> bytes:
    """The artefact as stored before session 34 (npz: the arrays, and the texts as JSON bytes),
    without the fields named (older formats lacked them)."""
    texts = {name: getattr(artefact, name) for name in DocumentArtefact._TEXTS if name not in without}
    arrays = {name: getattr(artefact, name) for name in (*DocumentArtefact._VECTORS, *DocumentArtefact._KEYS)
              if name not in without}
    buffer = io.BytesIO()
    np.savez(buffer, texts=np.frombuffer(json.dumps(texts).encode(), np.uint8), **arrays)
    return buffer.getvalue()


def ids(index: HybridIndex, query: str, k: int = 6) -> list[object]:
    return [r.doc_id for r in index.search(query, k)]


@pytest.mark.parametrize("declaration", [
    "je ne sais pas conduire mais je cuisine pour toute la famille",
    "jsais pas conduire, par contre je fais à manger pour 40 aux mariages",
    "I can't drive but I cook for big family parties",
    "pas de permis, mais je fais la cuisine tous les jours",
    "je suis sans voiture, mais je fais la cuisine tous les jours",
])
def test_a_driving_need_never_comes_first_for_someone_who_cannot_drive(index: HybridIndex,
                                                                      declaration: str) -> None:
    ranking = ids(index, declaration)
    assert ranking[0] == "cook"
    assert ranking.index("drive") > 0


def test_negated_statements_are_set_aside_but_kept_for_the_record() -> None:
    analysis = analyse_query("je ne sais pas conduire, mais je répare les vélos")
    assert [s.negated for s in analysis.statements] == [True, False]
    assert "conduire" not in analysis.retrieval_text and "vélos" in analysis.retrieval_text
    assert analysis.ignored == ["je ne sais pas conduire"]


@pytest.mark.parametrize("text", ["je suis sans permis", "sans voiture", "pas de véhicule",
                                  "without car", "no driving licence"])
def test_no_licence_or_vehicle_is_a_refusal_whatever_the_words(text: str) -> None:
    """"sans" is no negation word for the analysis' rule, which the first-person pattern defers to:
    the licence and the vehicle do not."""
    analysis = analyse_query(f"{text}. je fais la cuisine")
    assert [s.negated for s in analysis.statements] == [True, False]


def test_when_a_need_happens_is_left_out_of_its_search() -> None:
    analysis = analyse_query("Atelier couture. Nous cherchons une personne disponible le samedi matin.")
    assert "couture" in analysis.retrieval_text and "samedi" not in analysis.retrieval_text
    assert analysis.ignored == []  # no refusal: a circumstance
    assert analyse_query("Disponible le samedi matin.").retrieval_text == "disponible le samedi matin."


@pytest.mark.parametrize(("need", "first"), [
    ("Atelier couture. Nous cherchons une personne disponible le samedi matin.", "sews"),
    ("Chauffeur de minibus pour emmener les familles en sortie.", "drives"),
])
def test_people_are_ranked_on_what_they_can_do_not_on_when_or_how_they_come(
        encoders: Encoders, need: str, first: str) -> None:
    """Residents' documents are their statements, as the service makes them: « disponible le
    samedi matin » and « il faut que ce soit à pied ou en bus » used to come first."""
    analyzer = get_analyzer()
    people = {"gardens": "Je suis disponible le samedi matin. Je fais du jardinage.",
              "sews": "Je couds, je fais des retouches et des ourlets.",
              "cooks": "Je cuisine pour quarante personnes. Il faut que ce soit à pied ou en bus.",
              "drives": "J'ai le permis D, j'ai conduit des cars pendant dix ans."}
    idx = HybridIndex(encoders)
    idx.index([Document(key, text, None, tuple(st.text for st in analyzer.analyze(text).positive))
               for key, text in people.items()])
    assert ids(idx, need, 4)[0] == first


def test_a_positive_statement_about_others_is_not_a_negation() -> None:
    analysis = analyse_query("j'aide des ados qui savent pas quoi faire après l'école")
    assert not any(s.negated for s in analysis.statements)


@pytest.mark.parametrize("text", [
    "je fais pas mal de couture",  # "quite a lot"
    "j'ai pas de souci pour conduire le minibus",  # a reassurance
    "je n'ai jamais arrêté de coudre",  # a stop denied
    "ça ne me dérange pas de garder des enfants",  # a bother denied
])
def test_a_negation_that_says_yes_is_kept(text: str) -> None:
    """The ranker's first-person pattern finds a negation in these; the analysis' rule reads it
    as a yes, and the clause stays in the retrieval text."""
    analysis = analyse_query(f"{text}. je ne sais pas lire")
    assert [s.negated for s in analysis.statements] == [False, True]
    assert analysis.ignored == ["je ne sais pas lire"]


@pytest.mark.parametrize(("declaration", "need"), [
    ("I used to fix bicycles for my neighbours", "bike"),
    ("I help kids with their maths homework", "homework"),
    ("jsuis couturière dpuis tjrs, jfais des ourlets pr tt le monde", "sew"),
    ("c moi ki fait le potager chez ma mère, jplante des tomates", "garden"),
    ("jcuisine bcp pr les fêtes du quartier", "cook"),
])
def test_english_and_sms_declarations_find_the_french_need(index: HybridIndex, declaration: str,
                                                           need: str) -> None:
    assert ids(index, declaration)[0] == need


def test_rebuilt_from_stored_artefacts_ranks_identically_without_encoding(
        index: HybridIndex, encoders: Encoders, artefacts: list[DocumentArtefact]) -> None:
    queries = ["je couds des robes", "I repair bikes", "jpeux aider au jardin le samedi"]
    before = index.search_many(queries, 6)
    stored = [a.to_bytes() for a in artefacts]
    rebuilt = HybridIndex(Encoders(Refusing(), Refusing()))
    for need, blob in zip(NEEDS, stored, strict=True):
        rebuilt.upsert(need.doc_id, DocumentArtefact.from_bytes(blob))
    rebuilt.prepare()  # the matrices and lexical indexes, from artefacts alone
    rebuilt.encoders = encoders  # queries still need encoding
    assert rebuilt.search_many(queries, 6) == before


def test_a_documents_artefact_lends_the_vectors_of_its_own_texts(encoders: Encoders,
                                                                artefacts: list[DocumentArtefact]) -> None:
    """Searching with a need's text finds its whole text and sentences among the artefact's
    vectors (as the encoder gives them), and an artefact of another text lends nothing."""
    title = "Atelier couture"
    description = "Animer un atelier pour les femmes du quartier. Machines fournies."
    need = Document("sew", description, title)  # as the service writes a need
    (artefact,) = make_artefacts([need], encoders)
    texts, vectors = use_vectors_of(need, artefact)
    query = analyse_query(f"{title}. {description}")  # as the service searches residents for it
    assert query.units[0] in texts and title.lower() in texts  # the whole text, the longest to encode
    np.testing.assert_allclose(vectors, encoders.use.encode(texts), atol=1e-5)
    assert use_vectors_of(NEEDS[1], artefact)[0] == [] and use_vectors_of(need, artefacts[2])[0] == []


def test_a_searched_documents_artefact_lends_every_unit_of_its_search(encoders: Encoders) -> None:
    """A need is searched for residents with its own text: its artefact keeps the vectors of that
    search's units (the clauses the ranker cuts, not only its sentences), stored and read back;
    artefacts written before, without them, still load and lend the rest."""
    need = Document("sew", "Animer un atelier pour les femmes, et réparer les machines. Le samedi matin.",
                    "Atelier couture", searched=True)
    (artefact,) = make_artefacts([need], encoders)
    units = analyse_query(searched_text(need)).units
    assert len(units) > 2 and artefact.query_units == units
    np.testing.assert_allclose(artefact.use_query, encoders.use.encode(units), atol=1e-5)
    again = DocumentArtefact.from_bytes(artefact.to_bytes())
    texts, vectors = use_vectors_of(need, again)
    assert set(units) <= set(texts)
    np.testing.assert_allclose(vectors, encoders.use.encode(texts), atol=1e-5)
    old = DocumentArtefact.from_bytes(npz_blob(artefact, without={"use_query", "query_units"}))
    assert old.query_units == [] and len(use_vectors_of(need, old)[0]) == len(old.segments) + 1
    (plain,) = make_artefacts([Document("sew", need.text, need.title)], encoders)  # rank.py's corpora
    assert plain.query_units == [] and len(plain.use_query) == 0


def test_an_artefact_reads_back_whole_from_this_format_and_from_npz(artefacts: list[DocumentArtefact]
                                                                     ) -> None:
    """Every field comes back equal, in its dtype and shape, and writable, from the blob written
    now and from the npz blobs databases hold from before."""
    for artefact in artefacts:
        blob = artefact.to_bytes()
        assert blob.startswith(ARTEFACT_MAGIC)
        for again in (DocumentArtefact.from_bytes(blob), DocumentArtefact.from_bytes(npz_blob(artefact))):
            for name in DocumentArtefact._TEXTS:
                assert getattr(again, name) == getattr(artefact, name)
            for name in (*DocumentArtefact._VECTORS, *DocumentArtefact._KEYS):
                value, expected = getattr(again, name), np.asarray(getattr(artefact, name))
                assert value.dtype == (np.int64 if name in DocumentArtefact._KEYS else np.float32)
                assert value.shape == expected.shape and np.array_equal(value, expected), name
                assert value.flags.writeable
        assert DocumentArtefact.from_bytes(blob).to_bytes() == blob
        assert DocumentArtefact.from_bytes(memoryview(blob)).segments == artefact.segments  # psycopg2-style
        assert DocumentArtefact.from_bytes(blob).use_segments.flags.aligned


def test_upsert_replaces_and_delete_forgets(index: HybridIndex, encoders: Encoders) -> None:
    assert ids(index, "je répare les vélos")[0] == "bike"
    index.delete("bike")
    assert "bike" not in ids(index, "je répare les vélos") and len(index) == len(NEEDS) - 1
    index.delete("bike")  # forgetting twice is harmless
    sewing, bikes = make_artefacts([Document("bike", "Retouches de vêtements et ourlets"), NEEDS[3]],
                                   encoders)
    index.upsert("bike", sewing)
    index.upsert("velo", bikes)
    assert ids(index, "je répare les vélos")[0] == "velo"
    assert ids(index, "je fais des ourlets et des retouches", 2)[0] in {"bike", "sew"}
    assert len(index) == len(NEEDS) + 1


def test_allowed_restricts_without_reordering(index: HybridIndex) -> None:
    query = "je cuisine et je jardine"
    full = ids(index, query)
    allowed = {"garden", "homework", "drive"}
    assert ids(index, query, 6) == full
    assert [r.doc_id for r in index.search(query, 6, allowed=allowed)] == [d for d in full if d in allowed]
    assert index.search(query, 3, allowed=set()) == []


def test_an_empty_index_answers_nothing(encoders: Encoders) -> None:
    assert HybridIndex(encoders).search("je couds", 5) == []


def test_explain_shows_the_statement_the_sentence_and_the_shared_words(index: HybridIndex) -> None:
    (best,) = index.explain("jsais pas conduire. je fais de la couture et des retouches", k=1)
    assert best.doc_id == "sew"
    assert "couture" in best.query_statement
    assert "couture" in best.document_segment or "retouches" in best.document_segment
    assert 0.5 < best.cosine <= 1.0
    assert {"coutur", "retouch"} <= set(best.shared_stems)
    assert best.ignored_statements == ["je sais pas conduire"]  # "jsais" expanded, as typed
    assert best.score == pytest.approx(best.dense + best.lexical, abs=1e-4)
    assert set(best.signals) >= {"use_whole", "e5_cmax", "bm25_text"}


def test_above_the_exact_limit_candidates_come_from_faiss_and_bm25(encoders: Encoders,
                                                                  artefacts: list[DocumentArtefact]
                                                                  ) -> None:
    """With the FAISS candidate stage forced on (exact_docs=2), the best answers stay the same,
    the allowed set is honoured, and upserts and deletes keep the FAISS index in step."""
    exact, staged = HybridIndex(encoders), HybridIndex(encoders, exact_docs=2)
    for need, artefact in zip(NEEDS, artefacts, strict=True):
        exact.upsert(need.doc_id, artefact)
        staged.upsert(need.doc_id, artefact)
    for query in ("je répare les vélos", "jsuis couturière", "je cuisine pour les fêtes"):
        assert ids(staged, query, 1) == ids(exact, query, 1)
    assert ids(staged, "je répare les vélos", 3)[0] == "bike"
    assert "bike" not in [r.doc_id for r in staged.search("je répare les vélos", 3, allowed={"sew", "cook"})]
    staged.delete("bike")
    assert "bike" not in ids(staged, "je répare les vélos")
    staged.upsert("bike", artefacts[3])
    assert ids(staged, "je répare les vélos", 1) == ["bike"]
    assert staged.explain("je répare les vélos", 1)[0].doc_id == "bike"
    assert set(staged._slots) == {n.doc_id for n in NEEDS}  # a slot per document in its own FAISS index


def test_candidates_from_neighbours_need_no_faiss_slots(encoders: Encoders,
                                                         artefacts: list[DocumentArtefact]) -> None:
    """The service passes its statement index as `neighbours`: the ranker builds no FAISS index of
    its own, and keeps no slots for one."""
    asked: list[int] = []
    walks: set[int] = set()

    def neighbours(vectors: np.ndarray, depth: int, allowed: object, ef_search: int) -> set[object]:
        asked.append(len(vectors))
        walks.add(ef_search)
        return {"bike"}

    index = HybridIndex(encoders, exact_docs=2, neighbours=neighbours)
    index.extend(list(zip([n.doc_id for n in NEEDS], artefacts, strict=True)))
    index.upsert("bike", artefacts[3])
    index.delete("sew")
    assert ids(index, "je répare les vélos", 1) == ["bike"] and asked
    assert walks == {DENSE_EF_SEARCH}  # the ranker, not the service, says how deep to walk
    assert index._vectors is None and not index._slots and not index._slot_doc


def test_use_only_encoders_rank_without_e5(artefacts: list[DocumentArtefact]) -> None:
    """RELAIS_ENCODERS=use: artefacts carry no e5 vectors, the e5 signals are left out, and an
    index running e5 refuses such artefacts rather than mixing set-ups."""
    use_only = load_encoders(spec="use")
    assert use_only.e5 is None and use_only.spec == "use"
    made = make_artefacts(NEEDS, use_only)
    assert made[0].encoders == "use" and made[0].e5_whole.size == 0
    index = HybridIndex(use_only)
    for need, artefact in zip(NEEDS, [DocumentArtefact.from_bytes(a.to_bytes()) for a in made], strict=True):
        index.upsert(need.doc_id, artefact)
    assert not any(name.startswith("e5") for name in index.weights)
    assert ids(index, "je répare les vélos", 1) == ["bike"]
    with pytest.raises(ValueError):
        HybridIndex(load_encoders()).upsert("x", made[0])


def test_a_declaration_document_is_its_statements() -> None:
    from matcher.hybrid import _document_parts

    title, segments, whole, _ = _document_parts(Document(1, "", None, ("Je couds", "jrépare les vélos")))
    assert segments[1:] == ["je couds", "je répare les vélos"] and title == "Je couds. jrépare les vélos"


def test_above_the_exact_limit_writes_go_to_a_small_part_until_a_merge(
        encoders: Encoders, artefacts: list[DocumentArtefact], monkeypatch: pytest.MonkeyPatch) -> None:
    """Above exact_docs a write does not rebuild the index: new and replaced documents are scored in
    a small second part (on the big part's statistics), replaced and deleted ones are dead in the
    big part; a merge gives exactly what a fresh index of the same documents gives."""
    import matcher.hybrid as hybrid

    monkeypatch.setattr(hybrid, "DEAD_SHARE", 1.0)  # four documents: two dead would merge at once
    staged = HybridIndex(encoders, exact_docs=2)
    for need, artefact in zip(NEEDS[:4], artefacts[:4], strict=True):
        staged.upsert(need.doc_id, artefact)
    assert ids(staged, "je répare les vélos", 1) == ["bike"]  # first search: one big part
    big = staged._big
    sewing_as_garden = make_artefacts([Document("sew", NEEDS[5].text)], encoders)[0]
    staged.upsert("sew", sewing_as_garden)  # replaced: dead in the big part, alive in the small
    staged.upsert("homework", artefacts[4])  # new: in the small part only
    staged.delete("drive")
    assert ids(staged, "je m'occupe du potager, semis et arrosage", 1) == ["sew"]
    assert ids(staged, "j'aide les enfants à faire leurs devoirs", 1) == ["homework"]
    assert "drive" not in ids(staged, "je conduis le minibus", 4)
    assert staged._big is big and staged._small is not None and big.dead == 2
    kept = staged.search("j'aide les enfants à faire leurs devoirs", 3, allowed={"bike", "cook"})
    assert {r.doc_id for r in kept} <= {"bike", "cook"}
    evidence = staged.explain("je m'occupe du potager, semis et arrosage", 1)[0]
    assert evidence.doc_id == "sew" and "arrosag" in evidence.shared_stems

    monkeypatch.setattr(hybrid, "MERGE_MIN", 0)
    staged.upsert("garden", artefacts[5])  # the small part now passes MERGE_SHARE: merged
    fresh = HybridIndex(encoders, exact_docs=2)
    for doc_id, artefact in (("cook", artefacts[1]), ("bike", artefacts[3]), ("sew", sewing_as_garden),
                             ("homework", artefacts[4]), ("garden", artefacts[5])):
        fresh.upsert(doc_id, artefact)
    for query in ("je m'occupe du potager", "je cuisine pour les fêtes", "je répare les vélos"):
        assert staged.search(query, 5) == fresh.search(query, 5)
    assert staged._big is not big and staged._small is None and staged._big.dead == 0
    assert len(staged) == 5 and "drive" not in staged


def test_float16_matrices_above_the_exact_limit_rank_as_float32(
        encoders: Encoders, artefacts: list[DocumentArtefact]) -> None:
    """The big part keeps half-precision matrices above exact_docs; the candidates' rows come back
    as float32 and the ranking is the one of full-precision scoring."""
    staged = HybridIndex(encoders, exact_docs=2)
    exact = HybridIndex(encoders)
    for need, artefact in zip(NEEDS, artefacts, strict=True):
        staged.upsert(need.doc_id, artefact)
        exact.upsert(need.doc_id, artefact)
    staged.prepare()
    assert staged._big is not None and staged._big.dtype == np.float16
    np.testing.assert_allclose(staged._big.use_whole, [a.use_whole for a in artefacts], atol=2e-3)
    assert staged.memory()["big_dense"] > 0
    for query in ("je répare les vélos", "jsuis couturière", "je fais à manger pour 40 personnes"):
        assert ids(staged, query, 1) == ids(exact, query, 1)


def test_segments_with_the_same_text_share_one_vector_through_writes_and_merges(
        encoders: Encoders) -> None:
    """Declarations repeating a sentence keep its vector once; after replacements, deletions and
    a merge, every segment still reads its own text's vector."""
    from matcher.hybrid import _Part
    from matcher.pipeline import declaration_document

    said = [("Je parle arabe et français", "Je couds des robes"),
            ("Je répare les vélos", "Je parle arabe et français"),
            ("Je parle arabe et français", "Je répare les vélos", "Je fais le pain"),
            ("Je garde les enfants le soir",)]
    documents = [declaration_document(i, [(text, False) for text in texts]) for i, texts in enumerate(said)]
    made = make_artefacts([d for d in documents if d is not None], encoders)
    index = HybridIndex(encoders, exact_docs=2)  # above it: float16, writes go to a small part
    for i, artefact in enumerate(made):
        index.upsert(i, artefact)
    index.prepare()
    big = index._big
    # A declaration's whole text is its first segment: no row of its own either.
    assert big is not None and len(big.use_table) == len(set(big.segments)) < len(big.segments)
    index.delete(0)
    index.upsert(1, made[3])
    index.upsert(5, made[0])
    expected = {1: made[3], 2: made[2], 3: made[3], 5: made[0]}

    def check(parts: list[_Part]) -> None:
        for doc, artefact in expected.items():
            part, at = next((p, p.position[doc]) for p in reversed(parts)
                            if doc in p.position and p.live[p.position[doc]])
            assert part.segments[part.starts[at]:part.ends[at]] == artefact.segments
            np.testing.assert_allclose(part.use_segments(slice(part.starts[at], part.ends[at])),
                                       artefact.use_segments, atol=2e-3)  # float16
            np.testing.assert_allclose(part.use_whole[at], artefact.use_whole, atol=2e-3)

    check(index._parts())  # the big part with dead rows, and a small part
    with index._lock:
        index._big = _Part.merged(index._packed(), np.float16)
    check(index._parts())
    assert ids(index, "je répare les vélos", 1)[0] == 2


def test_an_artefact_of_the_first_format_is_read(artefacts: list[DocumentArtefact]) -> None:
    """Artefacts stored before the tokens were hashed (JSON strings) read as hashed keys."""
    import io
    import json

    from matcher.lexical import term_keys
    from matcher.normalise import char_ngrams, stems

    artefact = artefacts[2]
    texts = {"title": artefact.title, "segments": artefact.segments, "encoders": artefact.encoders,
             "stems": stems("Atelier couture"), "chars_text": char_ngrams("Atelier couture"),
             "chars_title": char_ngrams("Atelier")}
    buffer = io.BytesIO()
    np.savez(buffer, texts=np.frombuffer(json.dumps(texts).encode(), np.uint8),
             **{name: getattr(artefact, name) for name in ("use_segments", "use_whole", "e5_segments",
                                                           "e5_whole")})
    old = DocumentArtefact.from_bytes(buffer.getvalue())
    assert np.array_equal(old.stems, term_keys(stems("Atelier couture")))
    assert np.array_equal(old.chars_title, term_keys(char_ngrams("Atelier")))
    again = DocumentArtefact.from_bytes(old.to_bytes())
    assert again.stems.dtype == np.int64 and np.array_equal(again.chars_text, old.chars_text)


@pytest.mark.parametrize("exact_docs", [20_000, 2])
def test_extend_packs_stored_artefacts_as_upserts_would(encoders: Encoders, artefacts: list[DocumentArtefact],
                                                        exact_docs: int) -> None:
    """Start-up loads artefacts in chunks (`extend`): the same rankings as one upsert each, and a
    document given again replaces the one held."""
    one_by_one = HybridIndex(encoders, exact_docs=exact_docs)
    packed = HybridIndex(encoders, exact_docs=exact_docs)
    for need, artefact in zip(NEEDS, artefacts, strict=True):
        one_by_one.upsert(need.doc_id, artefact)
    packed.upsert("bike", artefacts[0])  # held before, replaced by the extend below
    packed.extend(((n.doc_id, a) for n, a in zip(NEEDS, artefacts, strict=True)), chunk=4)
    assert len(packed) == len(NEEDS)
    for query in ("je répare les vélos", "jsuis couturière", "je conduis", "j'aide aux devoirs"):
        assert packed.search(query, 6) == one_by_one.search(query, 6)
    with pytest.raises(ValueError):
        packed.extend([("sew", artefacts[2]), ("sew", artefacts[2])])


def test_the_rankers_own_index_keeps_one_vector_per_sentence_on_every_path(
        encoders: Encoders, artefacts: list[DocumentArtefact]) -> None:
    """Above exact_docs (without the service's neighbours) the ranker's FAISS index is built from
    the int8 table; a new artefact repeating those sentences adds ids, not near-copies."""
    index = HybridIndex(encoders, exact_docs=2)
    for i, artefact in enumerate(artefacts):
        index.upsert(i, artefact)
    index.prepare()
    assert index._vectors is not None
    before = index._vectors.vectors
    index.upsert(100, artefacts[0])
    assert index._vectors.vectors == before
    assert len(index._vectors) == sum(len(a.segments) for a in artefacts) + len(artefacts[0].segments)
    assert np.int64(index._slots[100] * SLOT_WIDTH) in index._vectors  # numpy ids are ids too
