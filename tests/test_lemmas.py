import pytest

from pipeline.lemmas import LemmaBackoff


@pytest.fixture(scope="module")
def backoff():
    return LemmaBackoff()


@pytest.mark.parametrize(
    ("word", "lemma"),
    [
        ("bewoners", "bewoner"),  # spaCy's lookup table
        ("gaven", "geven"),  # spaCy's exception table
        ("petten", "pet"),  # spaCy's noun rules, checked against its index
        ("geef", "geven"),  # added spoken forms (resources/lemma_aanvullingen.yaml)
        ("zit", "zitten"),
        ("werkt", "werken"),  # regular present tense -> infinitive in the index
        ("hoor", "horen"),
        ("buurt", "buurt"),  # a noun the lookup uses as a lemma stays a noun
        ("[persoon-1]", "[persoon-1]"),
        ("xqzw", "xqzw"),  # unknown words stay as they are
    ],
)
def test_lemma(backoff, word, lemma):
    assert backoff.lemma(word) == lemma
