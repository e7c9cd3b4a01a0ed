"""French analysis: statements, negation, languages, oral and SMS spelling."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from matcher.analysis import (
    Analyzer,
    analyse_ahead,
    clean_text,
    fold_accents,
    get_analyzer,
    languages_named,
    normalise_spelling,
)
from matcher.hybrid import negated_clause


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return get_analyzer()


def texts(analyzer: Analyzer, text: str) -> list[str]:
    return [st.text for st in analyzer.analyze(text).statements]


def test_sentences_and_coordinated_clauses_become_statements(analyzer: Analyzer) -> None:
    assert texts(analyzer, "Je cuisine et je couds. Je garde les enfants le soir.") == [
        "Je cuisine", "je couds", "Je garde les enfants le soir"]


@pytest.mark.parametrize(("text", "statements"), [
    ("Je suis disponible le samedi matin et je fais du jardinage.", ["je fais du jardinage"]),
    ("Je fais de la couture. Il faut que ce soit à pied ou en bus.", ["Je fais de la couture"]),
    ("Je refais les salles de bain. Moi il me faut un salaire.", ["Je refais les salles de bain"]),
    ("bjr jsuis plombier. dispo le soir et le we", ["bjr jsuis plombier"]),
    ("I am available on Saturday mornings. I fix bikes.", ["I fix bikes"]),
    ("I am free on saturdays. I cook.", ["I cook"]),
    ("Libre l'après-midi.", []),
])
def test_when_and_on_what_terms_is_no_statement(analyzer: Analyzer, text: str, statements: list[str]) -> None:
    """Availability, transport and pay say no skill: as statements they drew any need saying when
    it happens, or naming a bus. The person's slots and the need's own carry the time."""
    assert texts(analyzer, text) == statements


@pytest.mark.parametrize("text", [
    "Le samedi je fais du foot avec les jeunes", "Je garde des enfants pendant les vacances scolaires",
    "Je conduis le bus de l'association", "Je peux aider le samedi à la cuisine",
    "Je suis garde-malade la nuit", "Hip-hop le samedi après-midi",  # words spaCy keeps whole
])
def test_a_skill_said_with_its_time_stays_a_statement(analyzer: Analyzer, text: str) -> None:
    assert texts(analyzer, text) == [text]


def test_a_circumstance_that_names_a_language_or_says_no_stays(analyzer: Analyzer) -> None:
    analysis = analyzer.analyze("Je parle arabe le samedi. Je ne suis pas disponible le mercredi.")
    assert [(st.text, st.negated, st.languages) for st in analysis.statements] == [
        ("Je parle arabe le samedi", False, ("ar",)), ("Je ne suis pas disponible le mercredi", True, ())]


def test_clauses_joined_by_mais_are_split(analyzer: Analyzer) -> None:
    got = texts(analyzer, "jsais pas conduire mais je répare les vélos")
    assert got == ["jsais pas conduire", "je répare les vélos"]


def test_lines_and_bullets_are_statements(analyzer: Analyzer) -> None:
    got = texts(analyzer, "- couture\n- je fais du pain maison\n• jardinage au potager")
    assert got == ["couture", "je fais du pain maison", "jardinage au potager"]


def test_statements_keep_the_persons_spelling_but_models_get_standard_french(
        analyzer: Analyzer) -> None:
    (st,) = analyzer.analyze("jsuis cuisinière, g fait bcp de couscous pr les mariages").statements
    assert st.text == "jsuis cuisinière, g fait bcp de couscous pr les mariages"
    assert st.norm == "je suis cuisinière, j'ai fait beaucoup de couscous pour les mariages"
    assert "couscous" in st.lemmas and "mariage" in st.lemmas


@pytest.mark.parametrize("text", [
    "Je ne sais pas conduire",
    "jsais pas conduire",
    "je conduis jamais",
    "Je ne fais plus de couture",
    "I can't drive",
    "je ne connais personne qui coud",
    "ça ne me plaît pas de conduire",  # plaire is not a verb of bother: déplaire is
    "Les enfants, je ne peux pas les garder",  # the speaker's no, about others
    "je les garde pas le soir",
    "Il ne conduit pas",  # a worker's notes: « il » is the person
    "Mes genoux ne supportent pas les escaliers",  # things, not other people
    "Ses problèmes de dos ne lui permettent pas de porter des charges",
    "Les horaires de nuit ne lui conviennent pas",
    "Mes mains ne me permettent plus de coudre",
    "Les enfants ne me laissent pas le temps",  # others, but the no is about the speaker
    "les enfants c'est pas mon truc", "les enfants c pas pour elle", "les enfants pas trop mon truc",
    "les personnes âgées ne l'intéressent pas", "mes papiers ne sont pas en règle",
    "je ne me déplace pas le soir",
    "j'aime pas faire le ménage",
    "g pa le permis",  # SMS spellings of the negators
    "jsai pa conduire",
    "jamé fait de ménage",
    "je sais ni coudre ni tricoter",  # "ni … ni" without "ne", kept whole
    "ni permis ni voiture",
    "jcp conduire",
    "je sais plus conduire",  # "plus" without "ne": no longer
    "jconduis plus depuis mon accident",
    "Plus de force dans les bras",  # "plus de" opening a clause: no more
    "Plus de permis depuis l'accident",
    "Impossible pour moi de porter des charges lourdes",  # refusals without a negation word
    "Hors de question de faire du ménage",
    "J'ai horreur du ménage",
    "Conduite : non",
    "Moi non plus",
    "Je ne veux pas garder des enfants et faire le ménage",  # one subject, one negation
])
def test_negation_is_detected(analyzer: Analyzer, text: str) -> None:
    assert [st.negated for st in analyzer.analyze(text).statements] == [True]


def test_non_before_a_word_is_no_refusal_but_non_vehicule_is(analyzer: Analyzer) -> None:
    for text in ("J'accompagne des personnes non francophones", "Je fais du bénévolat non rémunéré",
                 "Je suis trésorière d'une association à but non lucratif",
                 "Je garde des enfants, scolarisés ou non"):
        assert [st.negated for st in analyzer.analyze(text).statements] == [False], text
    assert negated_clause("Madame est non véhiculée")  # the stored statement's other rule


@pytest.mark.parametrize("text", [
    "ça me dérange pas de garder des enfants",  # a bother denied without "ne"
    "Ce n'est pas un souci pour moi de garder des enfants",
    "Je n'ai pas peur de monter sur une échelle",
    "Aucune difficulté pour parler en public",
    "Je n'hésite pas à aider les voisins",
    "Je ne refuse jamais d'aider",
    "Je ne fais pas que du ménage",
    "Je ne suis pas contre faire du jardinage",
    "Le jardinage pourquoi pas",
    "je cuisine plus de 40 plats",  # "plus" comparing
    "Plus de 10 ans de couture",  # more than
    "Plus de dix ans en cuisine",
    "Plus d'une fois j'ai cuisiné pour 40",
    "J'ai plus de force qu'avant",
    "Je cuisine plus depuis que je suis à la retraite",
    "J'aime les films d'horreur",
    "Je sais monter et démonter des meubles",
    # A negation in a relative clause is someone else's: the person helps, keeps, cooks.
    "J'aide des enfants qui n'arrivent pas à lire",
    "Accompagner des familles qui ne parlent pas français chez le médecin",
    "Je garde des enfants dont les parents ne sont pas là le soir",
    "Ancienne technicien·ne de maintenance",  # inclusive writing: its « ne » negates nothing
    "Mécanicien(ne) pour le garage solidaire",
])
def test_negations_that_say_yes_and_shared_verbs_stay_one_positive_statement(
        analyzer: Analyzer, text: str) -> None:
    assert [st.negated for st in analyzer.analyze(text).statements] == [False]


@pytest.mark.parametrize(("text", "expected"), [
    ("Je cuisine mais pas le week-end.", [("Je cuisine", False), ("pas le week-end", True)]),
    ("Je sais tout faire sauf conduire.", [("Je sais tout faire", False), ("sauf conduire", True)]),
    ("Je ne conduis pas, par contre je peux accompagner à pied.",
     [("Je ne conduis pas", True), ("par contre je peux accompagner à pied", False)]),
    ("Je cuisine très bien, pas de voiture par contre.",
     [("Je cuisine très bien", False), ("pas de voiture par contre", True)]),
    ("je ne sais pas conduire, pas de souci pour le reste",  # a reassurance, no new yes
     [("je ne sais pas conduire, pas de souci pour le reste", True)]),
    ("Je jardine, bricole et ne conduis pas.", [("Je jardine, bricole", False), ("ne conduis pas", True)]),
    ("Je ne parle pas anglais, allemand ou italien.",  # a list under one no
     [("Je ne parle pas anglais, allemand ou italien", True)]),
    ("Permis B : oui, véhicule : non", [("Permis B : oui", False), ("véhicule : non", True)]),
    ("C'est un truc qui ne m'intéresse pas, la couture.",  # a relative clause about the speaker
     [("C'est un truc qui ne m'intéresse pas, la couture", True)]),
    ("Je ne sais pas coudre : je fais la cuisine pour trente personnes aux mariages.",
     [("Je ne sais pas coudre", True), ("je fais la cuisine pour trente personnes aux mariages", False)]),
    ("Le repassage, ça me plaît pas trop, mais la cuisine oui.",  # « , mais » without a subject
     [("Le repassage, ça me plaît pas trop", True), ("la cuisine oui", False)]),
    ("Cuisine, couture, je ne conduis pas le camion.",  # nothing taken up: a yes, then a no
     [("Cuisine, couture", False), ("je ne conduis pas le camion", True)]),
    ("Je garde des enfants, mais le ménage, je ne le fais pas.",  # a yes, then a topic and its no
     [("Je garde des enfants", False), ("le ménage, je ne le fais pas", True)]),
    ("Je garde des enfants, le ménage, je ne le fais pas.",
     [("Je garde des enfants", False), ("le ménage, je ne le fais pas", True)]),
])
def test_a_yes_and_a_no_in_one_sentence_are_two_statements(analyzer: Analyzer, text: str,
                                                           expected: list[tuple[str, bool]]) -> None:
    """A restriction negated the skill before it (« je cuisine mais pas le week-end » lost the
    cooking), and a refusal the skill after it."""
    assert [(st.text, st.negated) for st in analyzer.analyze(text).statements] == expected


@pytest.mark.parametrize("text", [
    "je fais pas mal de couture",  # "quite a lot"
    "je ne fais que du ménage",  # "only"
    "je conduis le camion de mon frère",
    "je garde une personne âgée le week-end",  # "personne", someone
    "Le centre social cherche une personne du quartier pour animer un atelier",
    "je garde les enfants des voisines, no problem",  # a reassurance
    "je n'ai aucun problème pour porter des cartons",
    "pas de souci pour cuisiner pour quarante",
    "ça ne me dérange pas de garder des enfants le soir",  # a bother denied
    "cela ne m'a jamais gênée de porter des cartons",
    "rien ne me fait peur en cuisine",
    "les chiens ne me font pas peur",
    "rien ne m'arrête quand il faut déménager",
    "je n'ai jamais arrêté de coudre",  # a stop denied
    "je n'arrête pas de bricoler chez moi",
    "j'ai jamais cessé de jardiner",
    "Pas besoin d'être un chef : il faut juste aimer cuisiner pour 30 personnes",  # a need's reassurance
    "je n'ai pas besoin d'aide pour porter des cartons",
    "Je garde les enfants des voisines, ils tombent pas malades",  # others' no
    "les mères ne parlent pas français, je les accompagne", "mes sœurs ne savent pas lire",
    "Les ados ne viennent plus au club, je voudrais les remotiver",
    "mes parents ne conduisent plus alors je les emmène en voiture",  # the helper after the no
    "les familles qu'elle accompagne ne parlent pas français", "ses enfants ne vivent plus avec elle",
    "Mes voisines ne savent pas lire, alors je lis leur courrier",
])
def test_affirmations_are_not_negated(analyzer: Analyzer, text: str) -> None:
    assert [st.negated for st in analyzer.analyze(text).statements] == [False]


@pytest.mark.parametrize("text", [
    "Le ménage, c'est quelque chose qui ne me plaît pas.", "La couture, je ne la fais plus.",
    "Le jardinage, j'en fais pas.", "Le ménage, je sais pas le faire.",
    "Internet, je sais pas m'en servir.", "La paperasse, je m'en sors pas.",  # a reflexive between
    "Les ordinateurs, je ne m'en sers plus.",
])
def test_a_topic_taken_up_by_a_no_is_one_refusal(analyzer: Analyzer, text: str) -> None:
    """« Le ménage, c'est quelque chose qui ne me plaît pas » gave « Le ménage » as a skill, and the
    no as a refusal of nothing in particular."""
    assert [(st.text, st.negated) for st in analyzer.analyze(text).statements] == [(text.rstrip("."), True)]


@pytest.mark.parametrize("text", [
    "La couture, je ne m'en lasse pas.", "Le repassage, je ne m'en plains pas.",
    "Les enfants, je m'en occupe tous les jours.", "La musique, je ne peux pas m'en passer.",
    "Le sport, je ne m'en prive pas.", "Le vélo, je ne m'en sépare jamais.",
    "La couture, je ne m'en passerais pour rien au monde.",
])
def test_a_topic_taken_up_by_a_yes_is_one_skill(analyzer: Analyzer, text: str) -> None:
    """« je ne m'en lasse pas » is a yes: it was a refusal, and « La couture » a skill alone."""
    assert [(st.text, st.negated) for st in analyzer.analyze(text).statements] == [(text.rstrip("."), False)]


def test_a_refusal_by_ni_is_one_statement_beside_the_skill(analyzer: Analyzer) -> None:
    """Cut at each "ni", it gave "coudre" and "tricoter" as skills of someone who can do neither."""
    statements = analyzer.analyze("je sais ni coudre ni tricoter, mais je cuisine").statements
    assert [(st.text, st.negated) for st in statements] == [("je sais ni coudre ni tricoter", True),
                                                            ("je cuisine", False)]


def test_languages_spoken_are_extracted(analyzer: Analyzer) -> None:
    analysis = analyzer.analyze("Je parle arabe, tamazight et français. I also speak English.")
    assert analysis.languages == ["ar", "ber", "fr", "en"]


def test_language_names_without_a_speaking_cue_are_not_languages(analyzer: Analyzer) -> None:
    assert analyzer.analyze("Je cuisine des plats turcs et de la pâtisserie arabe").languages == []


def test_negated_languages_are_not_spoken(analyzer: Analyzer) -> None:
    assert analyzer.analyze("Je ne parle pas anglais. Je parle wolof.").languages == ["wo"]
    # Other people's language is theirs, their no or not.
    assert analyzer.analyze("Les familles ne parlent pas turc, je parle arabe.").languages == ["ar"]
    assert analyzer.analyze("Mes voisines parlent wolof. Moi je parle peul.").languages == ["ff"]
    assert analyzer.analyze("Mes enfants et moi parlons arabe.").languages == ["ar"]  # one of them


@pytest.mark.parametrize(("text", "codes"), [
    ("Elle parle arabe et wolof.", ["ar", "wo"]),  # a worker writing about her: "parle" lemma "parl"
    ("Il cuisine pour 40 personnes et parle portugais.", ["pt"]),
    ("Langues : arabe, anglais.", ["ar", "en"]),
    ("Parle arabe, kabyle.", ["ar", "kab"]),
    ("Sa langue maternelle est le lingala.", ["ln"]),
    ("Mon fils parle anglais.", []),  # someone else
    ("Mon mari parle anglais, moi je parle seulement arabe.", ["ar"]),
    ("Elle ne parle pas français, seulement le tigrigna.", ["ti"]),
    ("Je ne parle pas français mais arabe.", ["ar"]),
    ("I don't speak French, only English and Dari.", ["en", "prs"]),
    ("Je suis arabophone et francophone.", ["ar", "fr"]),
    ("Il maîtrise l'anglais et l'espagnol.", ["en", "es"]),
    ("J'écris des lettres pour les voisins, je fais aussi des plats portugais.", []),
    ("Je ne parle pas anglais, allemand ou italien.", []),
    ("J'accompagne une famille arabophone.", []),
    # A relative clause speaks of someone else: « des familles qui ne parlent pas français ».
    ("Je parle arabe avec des familles qui ne parlent pas français.", ["ar"]),
    ("J'accompagne des gens qui parlent anglais.", []),
    ("Moi qui parle arabe, je peux traduire.", ["ar"]),
    ("J'ai un bon niveau en cuisine arabe.", []),
    ("Je cuisine tout, y compris la pâtisserie arabe.", []),
    ("Je ne lis pas l'arabe mais je le parle.", ["ar"]),  # « le » stands for the language before
    ("Je ne lis ni le turc ni l'arabe, mais je les parle.", ["tr", "ar"]),
    ("Le tamazight, je le comprends.", ["ber"]),
    ("J'aime la cuisine turque mais je ne la parle pas.", []),
    ("J'ai lu le dossier et je le traduis.", []),
    ("Ma voisine, elle parle anglais.", []),  # « elle » is the neighbour
    ("Mon fils aîné, il comprend le turc.", []),
    ("Ma voisine, elle parle anglais, moi je parle arabe.", ["ar"]),
    ("Ma langue maternelle, c'est le wolof.", ["wo"]),
    ("Je parle anglais, c'est tout.", ["en"]),
    # Their language before the speaker's cue stays theirs, even with a no of theirs in between.
    ("Mes voisins ne parlent pas français alors je traduis en arabe.", ["ar"]),
    ("Ma voisine qui parle turc m'a appris, je parle turc maintenant.", ["tr"]),
    ("Ma grand-mère parlait tamoul et moi je le comprends.", ["ta"]),  # taken up by « le »
    ("Ma mère parle wolof et moi aussi je le parle.", ["wo"]),
    ("Ma mère parlait arabe et moi aussi je suis arabophone.", ["ar"]),  # the name is the cue
    # « le » takes up what came before it, not a name after someone else's cue.
    ("L'arabe, je le parle et mon mari parle kabyle.", ["ar"]),
    ("J'apprends l'arabe, je le lis et mon fils parle turc.", ["ar"]),
    ("Je le comprends un peu et mon mari parle anglais.", []),
])
def test_languages_are_found_whoever_writes_the_profile(analyzer: Analyzer, text: str,
                                                       codes: list[str]) -> None:
    assert analyzer.analyze(text).languages == codes


def test_a_language_named_in_a_no_and_spoken_after_mais_belongs_to_the_yes(analyzer: Analyzer) -> None:
    statements = analyzer.analyze("Je ne lis pas l'arabe mais je le parle.").statements
    assert [(s.negated, s.languages) for s in statements] == [(True, ()), (False, ("ar",))]


def test_a_no_then_a_yes_after_mais_are_two_statements(analyzer: Analyzer) -> None:
    """The whole sentence was negated: the Spanish and the embroidery were lost with the no."""
    spanish = analyzer.analyze("Elle ne parle pas anglais mais parle espagnol.")
    assert [(st.text, st.negated) for st in spanish.statements] == [
        ("Elle ne parle pas anglais", True), ("parle espagnol", False)]
    assert spanish.languages == ["es"]
    embroidery = analyzer.analyze("Je ne fais pas de couture mais de la broderie.").statements
    assert [(st.text, st.negated) for st in embroidery] == [
        ("Je ne fais pas de couture", True), ("de la broderie", False)]
    both_no = analyzer.analyze("Je n'ai pas le permis mais pas de voiture non plus.").statements
    assert [st.negated for st in both_no] == [True]


@pytest.mark.parametrize("text", ["", "   ", "\n\n", "…", "!!!"])
def test_empty_or_punctuation_only_text_has_no_statement(analyzer: Analyzer, text: str) -> None:
    assert analyzer.analyze(text).statements == []


def test_hostile_text_is_analysed_without_crashing(analyzer: Analyzer) -> None:
    text = "<script>alert('x')</script>\x00\x1b[31m DROP TABLE resident; -- مرحبا 😀 " * 50
    analysis = analyzer.analyze(text)
    assert analysis.statements
    assert all("\x00" not in st.text and "\x1b" not in st.text for st in analysis.statements)


def test_helpers() -> None:
    assert fold_accents("Réparer à l'atelier") == "Reparer a l'atelier"
    assert clean_text("a\u2019b \t c\x07") == "a'b c"
    assert normalise_spelling("jrépare les ordis") == "je répare les ordinateurs"
    assert normalise_spelling("après-midi") == "après-midi"


VARIED = [
    "Je cuisine et je couds. Je garde les enfants le soir.",
    "jsais pas conduire mais je répare les vélos",
    "Je ne parle pas anglais. Je parle wolof.",
    "Je parle arabe, tamazight et français. I also speak English.",
    "",
    "!!!",
    "I can't drive but I fix computers",
    "- couture\n- je fais du pain maison\n• jardinage au potager",
    "jsuis cuisinière, g fait bcp de couscous pr les mariages",
    "أنا أطبخ وأخيط",
    "je fais pas mal de couture; je ne fais que du ménage",
    # Longer than max_chars, and more sentences than a spaCy batch: batches cut across texts.
    " ".join(f"Je sais réparer le vélo numéro {i}. Je ne sais pas nager." for i in range(400)),
    "Je conduis le camion de mon frère",
]


@pytest.mark.parametrize("batch_size", [1, 3, 256])
def test_analyze_many_gives_what_analyze_gives_one_text_at_a_time(analyzer: Analyzer,
                                                                   batch_size: int) -> None:
    one_by_one = [analyzer.analyze(text) for text in VARIED]
    assert analyzer.analyze_many(VARIED, batch_size=batch_size) == one_by_one
    assert [len(a.statements) for a in one_by_one][4:6] == [0, 0]
    assert any(st.negated for st in one_by_one[2].statements)
    assert analyzer.analyze_many([]) == []


def test_analyse_ahead_yields_each_batch_with_its_analyses_in_order(analyzer: Analyzer) -> None:
    batches = [VARIED[i:i + 3] for i in range(0, len(VARIED), 3)]
    got = list(analyse_ahead(analyzer, iter(batches), lambda text: text))
    assert [batch for batch, _ in got] == batches
    assert [a for _, analyses in got for a in analyses] == [analyzer.analyze(t) for t in VARIED]


def test_analyse_ahead_raises_the_analysis_error_in_the_caller(analyzer: Analyzer) -> None:
    def text_of(item: int) -> str:
        if item == 7:
            raise ValueError("bad row")
        return f"Je répare les vélos {item}"

    seen: list[int] = []
    with pytest.raises(ValueError, match="bad row"):
        for batch, _analyses in analyse_ahead(analyzer, ([i, i + 1] for i in range(0, 20, 2)), text_of):
            seen.extend(batch)
    assert seen == [0, 1, 2, 3, 4, 5]
    assert not [t for t in threading.enumerate() if t.name == "analyse-ahead"]


def test_analyse_ahead_stops_its_thread_when_the_caller_stops(analyzer: Analyzer) -> None:
    produced = []

    def batches() -> Iterator[list[str]]:
        for i in range(100):
            produced.append(i)
            yield [f"Je jardine {i}"]

    ahead = analyse_ahead(analyzer, batches(), lambda text: text)
    assert next(ahead)[0] == ["Je jardine 0"]
    ahead.close()
    assert not [t for t in threading.enumerate() if t.name == "analyse-ahead"]
    assert len(produced) <= 4  # bounded: the one taken, one queued, one being analysed


def test_a_text_analysed_again_is_remembered_and_cannot_be_changed_through_a_result(
        analyzer: Analyzer, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "Je répare les vélos et je parle tamoul."
    parsed: list[int] = []
    nlp = analyzer.nlp

    class Counting:
        def pipe(self, texts: list[str], **options: object) -> object:
            parsed.append(len(texts))
            return nlp.pipe(texts, **options)

    monkeypatch.setattr(analyzer, "nlp", Counting())
    first = analyzer.analyze(text)
    first.statements.clear()  # a caller's list is its own
    again = analyzer.analyze(text)
    assert parsed == [1]  # spaCy ran once
    assert again.statements == analyzer.analyze_many([text])[0].statements and len(again.statements) == 2


def test_a_sentence_met_again_in_another_text_is_not_parsed_again(
        analyzer: Analyzer, monkeypatch: pytest.MonkeyPatch) -> None:
    first = "Je parle arabe et wolof. Je couds des robes."
    second = "Je fais du pain. Je parle arabe et wolof."
    fresh = [analyzer.analyze_many([text])[0] for text in (first, second)]  # maybe remembered already
    parsed: list[str] = []
    nlp = analyzer.nlp

    class Counting:
        def pipe(self, texts: list[str], **options: object) -> object:
            parsed.extend(texts)
            return nlp.pipe(texts, **options)

    monkeypatch.setattr(analyzer, "_recent", type(analyzer._recent)())  # forget everything
    monkeypatch.setattr(analyzer, "nlp", Counting())
    assert analyzer.analyze_many([first, second]) == fresh
    assert parsed == ["Je parle arabe et wolof.", "Je couds des robes.", "Je fais du pain."]


def test_languages_named_are_every_language_a_text_names_whoever_speaks_it() -> None:
    """What a need asks of the person it seeks: « quelqu'un qui parle arabe » names Arabic though
    the analysis credits a relative clause's language to someone other than the speaker."""
    assert languages_named("Quelqu'un qui parle Arabe, arabe et le turc") == ["ar", "tr"]
    assert languages_named("un bénévole arabophone ou lusophone") == ["ar", "pt"]
    assert languages_named("la cuisine du quartier, le téléphone") == []
