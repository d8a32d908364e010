import pandas as pd
import pytest
import spacy

from pipeline.lemmas import LemmaBackoff
from pipeline.nlp import analyse, lemma_backoff, load_pipeline, mask_notes, write_tables
from tests.conftest import make_turns

TEXTS = [
    "Nou, eh, wij hebben dat gewoon zelf geregeld. [gelach] De bewoners gaven ons ruimte.",
    "Ja.",
    "Ik belde [PERSOON-1], maar [onverstaanbaar 00:12:03] die zat klem tussen twee vuren!",
    "[stilte]",
    "Zij faciliteerden het. Toen liep het vanzelf.\nEn daarna? Niks meer gehoord.",
]


@pytest.fixture(scope="module")
def tables(fallback_nlp):
    nlp, _ = fallback_nlp
    chunks = list(analyse(make_turns(TEXTS), nlp, backoff=LemmaBackoff()))
    tokens = pd.concat([c[0] for c in chunks], ignore_index=True)
    sentences = pd.concat([c[1] for c in chunks], ignore_index=True)
    return tokens, sentences


def test_mask_notes_keeps_offsets_and_placeholders():
    text = "Ja [gelach] zei [PERSOON-2] [onverstaanbaar 00:01:02] toen."
    masked = mask_notes(text)
    assert len(masked) == len(text)
    assert "gelach" not in masked and "onverstaanbaar" not in masked
    assert "[PERSOON-2]" in masked


def test_fallback_is_recorded_and_warned(capsys):
    nlp, info = load_pipeline("buurtlens_no_such_model")
    assert info.fallback and info.model == "blank:nl"
    assert info.components == ("lemmatizer", "sentencizer")
    assert "not installed" in capsys.readouterr().err


def test_token_offsets_point_into_turn_text(tables):
    tokens, _ = tables
    texts = dict(enumerate(TEXTS, 1))
    for row in tokens.itertuples():
        assert texts[row.turn][row.start : row.end] == row.text


def test_transcriber_notes_are_not_analysed(tables):
    tokens, sentences = tables
    assert not tokens["text"].isin(["gelach", "onverstaanbaar", "stilte", "[", "]"]).any()
    assert 4 not in set(sentences["turn"])  # a turn that is only a note has no sentences


def test_placeholders_stay_one_token(tables):
    tokens, _ = tables
    ph = tokens[tokens["is_placeholder"]]
    assert ph["text"].tolist() == ["[PERSOON-1]"]
    assert ph["lemma"].tolist() == ["[PERSOON-1]"]


def test_lemmas_from_lookup_and_backoff(tables):
    tokens, _ = tables
    lemma = dict(zip(tokens["text"], tokens["lemma"]))
    assert lemma["bewoners"] == "bewoner"
    assert lemma["gaven"] == "geven"  # not in the lookup table: spaCy's exception table
    assert lemma["faciliteerden"] == "faciliteren"
    assert lemma["liep"] == "lopen"


def test_sentences_split_and_link_to_turns(tables):
    _, sentences = tables
    first = sentences[sentences["turn"] == 1]["text"].tolist()
    assert first == [
        "Nou, eh, wij hebben dat gewoon zelf geregeld.",
        "De bewoners gaven ons ruimte.",
    ]
    for row in sentences.itertuples():
        assert TEXTS[row.turn - 1][row.start : row.end] == row.text
    assert len(sentences[sentences["turn"] == 5]) == 4


def test_chunked_output_equals_single_chunk(fallback_nlp):
    nlp, _ = fallback_nlp
    turns = make_turns(TEXTS)
    one = [pd.concat(x, ignore_index=True) for x in zip(*analyse(turns, nlp, backoff=None))]
    many = [
        pd.concat(x, ignore_index=True)
        for x in zip(*analyse(turns, nlp, backoff=None, chunk_turns=2))
    ]
    pd.testing.assert_frame_equal(one[0], many[0])
    pd.testing.assert_frame_equal(one[1], many[1])


def test_write_tables_is_atomic(tmp_path, fallback_nlp):
    nlp, _ = fallback_nlp
    tok, sen = tmp_path / "tokens.parquet", tmp_path / "sentences.parquet"

    def crashing():
        yield from analyse(make_turns(TEXTS), nlp, backoff=None, chunk_turns=2)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_tables(crashing(), tok, sen)
    assert not tok.exists() and not sen.exists()
    assert list(tmp_path.iterdir()) == []
    n_tok, n_sen = write_tables(analyse(make_turns(TEXTS), nlp, backoff=None), tok, sen)
    assert len(pd.read_parquet(tok)) == n_tok > 0
    assert len(pd.read_parquet(sen)) == n_sen > 0


def test_empty_corpus_writes_valid_empty_tables(tmp_path, fallback_nlp):
    nlp, _ = fallback_nlp
    tok, sen = tmp_path / "t.parquet", tmp_path / "s.parquet"
    assert write_tables(analyse(make_turns([]), nlp, backoff=None), tok, sen) == (0, 0)
    assert pd.read_parquet(tok).empty


@pytest.mark.skipif(
    not spacy.util.is_package("nl_core_news_sm"),
    reason="nl_core_news_sm is not installed (no network to its GitHub release)",
)
def test_full_model_pipeline():
    nlp, info = load_pipeline("nl_core_news_sm")
    assert not info.fallback and "senter" in info.components
    assert "parser" not in info.components and "ner" not in info.components
    tokens = pd.concat([c[0] for c in analyse(make_turns(TEXTS), nlp, backoff=None)])
    assert dict(zip(tokens["text"], tokens["lemma"]))["bewoners"] == "bewoner"
    assert (tokens["pos"] != "").all()


def _rows_token_by_token(nlp, texts: list[str], backoff) -> tuple[list[tuple], list[tuple]]:
    """The token and sentence rows read Token by Token from `doc.sents`: what the vectorised
    reading in `analyse` must reproduce."""
    from pipeline.nlp import merge_placeholders
    from pipeline.pseudonymise import PLACEHOLDER_RE

    tokens, sentences = [], []
    for turn, text in enumerate(texts, 1):
        doc = merge_placeholders(nlp(mask_notes(text)))
        i = sent_index = 0
        for sent in doc.sents:
            words = [t for t in sent if not t.is_space]
            if not words:
                continue
            start, end = words[0].idx, words[-1].idx + len(words[-1])
            sentences.append((turn, sent_index, start, end, text[start:end]))
            for tok in words:
                placeholder = bool(PLACEHOLDER_RE.fullmatch(tok.text))
                lemma = tok.text if placeholder else tok.lemma_.lower()
                if backoff is not None and not placeholder:
                    lemma = backoff.lemma(tok.lower_)
                tokens.append((turn, sent_index, i, tok.idx, tok.idx + len(tok), tok.text, lemma,
                               tok.pos_, tok.is_alpha, tok.is_stop, tok.is_punct, placeholder))
                i += 1
            sent_index += 1
    return tokens, sentences


@pytest.mark.parametrize("backoff", [None, LemmaBackoff()], ids=["lookup", "backoff"])
def test_tables_equal_a_token_by_token_reading(fallback_nlp, backoff):
    nlp, _ = fallback_nlp
    texts = [*TEXTS, "Ja.  \n\n  [gelach]  \n Nee!", "", "   ", "[PERSOON-12]: ja [PERSOON-3]."]
    tokens, sentences = (
        pd.concat(x, ignore_index=True)
        for x in zip(*analyse(make_turns(texts), nlp, backoff=backoff, chunk_turns=3))
    )
    expected_tokens, expected_sentences = _rows_token_by_token(nlp, texts, backoff)
    assert list(tokens.drop(columns="source").itertuples(index=False, name=None)) == (
        expected_tokens
    )
    assert list(sentences.drop(columns="source").itertuples(index=False, name=None)) == (
        expected_sentences
    )


def test_lemma_backoff_sharing_the_lemmatizer_table_lemmatises_as_a_fresh_one(fallback_nlp):
    pipe, _ = fallback_nlp
    shared, fresh = lemma_backoff(pipe), LemmaBackoff()
    words = ["liep", "gelopen", "huizen", "bewoners", "met", "gemeente", "zwommen", "[persoon-1]"]
    assert [shared.lemma(w) for w in words] == [fresh.lemma(w) for w in words]
