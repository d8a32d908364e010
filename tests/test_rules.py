import pandas as pd
import pytest

from pipeline.codebook import load_codebook, parse_codebook
from pipeline.lemmas import LemmaBackoff
from pipeline.nlp import analyse
from pipeline.params import REPO_ROOT
from pipeline.rules import CueMatcher, find_hits, lemma_pattern
from tests.conftest import make_turns


@pytest.fixture(scope="module")
def hits_for(fallback_nlp):
    nlp, _ = fallback_nlp
    matcher = CueMatcher(load_codebook(REPO_ROOT / "codebook.yaml"))

    def run(text: str) -> pd.DataFrame:
        turns = make_turns([text])
        tokens = pd.concat([t for t, _ in analyse(turns, nlp, backoff=LemmaBackoff())])
        return find_hits(tokens, matcher, {("a/sessie.txt", 1): text})

    return run


@pytest.mark.parametrize(
    ("text", "theme", "span"),
    [
        # inflection and reversed word order of the lemma pattern "ruimte geven"
        (
            "Ze gaven ons echt de ruimte om het zelf te doen.",
            "mogelijk-maker",
            "gaven ons echt de ruimte",
        ),
        ("Geef ze de ruimte, dan komt het goed.", "mogelijk-maker", "Geef ze de ruimte"),
        # separable verb: "loslaten" split over the sentence
        ("We laten het nu echt los.", "mogelijk-maker", "laten het nu echt los"),
        ("Ik zit klem tussen de gemeente en de bewoners.", "dubbelrol", "klem tussen"),
        ("Ik heb twee petten op, dat is het probleem.", "dubbelrol", "twee petten"),
        ("Die van de gemeente luisteren gewoon niet.", "wij-zij", "Die van de gemeente"),
        ("Wij doen het werk en zij bepalen.", "wij-zij", "Wij doen het werk en zij"),
    ],
)
def test_cue_is_found_with_offsets(hits_for, text, theme, span):
    hits = hits_for(text)
    ours = hits[hits["theme"] == theme]
    assert span in ours["text"].tolist(), hits
    for row in ours.itertuples():
        assert text[row.start : row.end] == row.text


@pytest.mark.parametrize(
    ("text", "theme"),
    [
        ("Kun je me dat zo snel mogelijk sturen?", "mogelijk-maker"),
        ("Ik stuur je vanavond een mailtje.", "mogelijk-maker"),
        ("De ruimte is gewoon te klein voor dertig mensen.", "mogelijk-maker"),
        ("Wij gaan eerst koffie halen.", "wij-zij"),
        ("Hij speelt een rol in de toneelvereniging.", "dubbelrol"),
        ("Ik heb mijn pet vergeten.", "dubbelrol"),
    ],
)
def test_negative_cues_and_other_senses_give_no_hit(hits_for, text, theme):
    hits = hits_for(text)
    assert hits[hits["theme"] == theme].empty, hits


def test_a_negative_cue_only_cancels_what_it_overlaps(hits_for):
    hits = hits_for("Zo snel mogelijk, maar we moeten ze vooral de ruimte geven.")
    assert hits["theme"].tolist() == ["mogelijk-maker"] * len(hits) and len(hits) >= 1
    assert all(start > 15 for start in hits["start"])


def test_lemma_pattern_allows_both_orders_and_alternatives():
    forward, backward = lemma_pattern("ruimte|vrijheid geven")
    assert forward[0] == {"LEMMA": {"IN": ["ruimte", "vrijheid"]}}
    assert backward[-1] == forward[0] and forward[1] == {"OP": "{0,4}"}


def test_new_codebook_theme_is_matched(fallback_nlp):
    nlp, _ = fallback_nlp
    codebook = parse_codebook(
        "version: '1'\nthemes:\n  - id: eenzaamheid\n    label: E\n"
        "    definition: d\n    lemma_patterns: [eenzaam voelen]\n"
    )
    text = "Veel ouderen voelen zich eenzaam hier."
    tokens = pd.concat([t for t, _ in analyse(make_turns([text]), nlp, backoff=LemmaBackoff())])
    hits = find_hits(tokens, CueMatcher(codebook), {("a/sessie.txt", 1): text})
    assert hits["theme"].tolist() == ["eenzaamheid"]


def test_skipping_cues_that_cannot_match_changes_no_hit(fallback_nlp):
    """Each lemma cue runs only on Docs that hold a lemma of each of its slots; one Matcher with
    every pattern, run on every Doc, must find the same."""
    from spacy.matcher import Matcher

    from pipeline.codebook import LEMMA_PREFIX
    from pipeline.rules import docs_from_tokens

    nlp, _ = fallback_nlp
    codebook = load_codebook(REPO_ROOT / "codebook.yaml")
    matcher = CueMatcher(codebook)
    everything = Matcher(matcher.vocab)  # keys as CueMatcher names them: the same match ids
    for theme in codebook.themes:
        for pattern in theme.lemma_patterns:
            everything.add(f"+{theme.id}\t{LEMMA_PREFIX}{pattern}", lemma_pattern(pattern))
        for cue in theme.negative_cues:
            if cue.startswith(LEMMA_PREFIX):
                everything.add(f"-{theme.id}\t{cue}", lemma_pattern(cue.removeprefix(LEMMA_PREFIX)))
    texts = [
        "Wij doen het werk en zij bepalen, ze luisteren niet naar ons.",
        "Geef ze de ruimte; we laten het los en sturen ze een mailtje.",
        "Ik zit klem tussen gemeente en bewoners met twee petten op.",
        "Het regent.",
    ]
    tokens = pd.concat([t for t, _ in analyse(make_turns(texts), nlp, backoff=LemmaBackoff())])
    for _, _, doc, _, _ in docs_from_tokens(tokens, matcher.vocab):
        assert sorted(matcher._lemma_matches(doc)) == sorted(everything(doc))


def test_docs_are_rebuilt_per_turn_whatever_the_row_order(fallback_nlp):
    from pipeline.rules import docs_from_tokens

    nlp, _ = fallback_nlp
    texts = ["Wij bepalen.  Zij niet!", "Ja.", "Geef ze de ruimte."]
    tokens = pd.concat([t for t, _ in analyse(make_turns(texts), nlp, backoff=LemmaBackoff())])
    shuffled = tokens.sample(frac=1, random_state=1)
    vocab = CueMatcher(load_codebook(REPO_ROOT / "codebook.yaml")).vocab
    docs = list(docs_from_tokens(shuffled, vocab))
    assert [(turn, doc.text) for _, turn, doc, _, _ in docs] == [
        (1, "Wij bepalen. Zij niet!"),
        (2, "Ja."),
        (3, "Geef ze de ruimte."),
    ]
    _, _, doc, starts, ends = docs[0]
    assert [s.text for s in doc.sents] == ["Wij bepalen.", "Zij niet!"]
    assert (starts, ends) == ([0, 4, 11, 14, 18, 22], [3, 11, 12, 17, 22, 23])
