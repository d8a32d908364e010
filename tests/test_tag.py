import os
import pickle
import weakref

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline import cache, io, schemas
from pipeline.cache import SourceCache
from pipeline.classifier import ThemeTagger
from pipeline.codebook import load_codebook
from pipeline.lemmas import LemmaBackoff
from pipeline.nlp import analyse
from pipeline.params import REPO_ROOT, TagParams
from pipeline.schemas import Evidence, Tags
from pipeline.tag import (
    TokensNotRead,
    TrainedModel,
    compute_features,
    joined_by_source,
    load_model,
    save_model,
    tag_corpus,
    tag_sources,
    tagged_sources,
    wide_table,
    write_tables,
)
from tests.conftest import TEST_DATA, make_turns

CORPUS = TEST_DATA / "corpus"
TEXTS = [
    "Die van de gemeente bepalen alles, wij worden nooit gehoord.",
    "Ik zit klem tussen mijn opdrachtgever en de bewoners, twee petten op.",
    "We geven ze de ruimte en laten het los, zij doen het zelf.",
    "Zullen we koffie halen?",
    "Ze luisteren gewoon niet naar ons, het plan lag al klaar.",
    "Als ik ja zeg moet ik het bij mijn leidinggevende verantwoorden.",
    "Ik heb ze alleen aan elkaar voorgesteld, de rest deden ze zelf.",
    "Het regent al de hele week.",
]
LABELS = {  # turn -> themes, as a coder would
    1: {"wij-zij"},
    2: {"dubbelrol"},
    3: {"mogelijk-maker"},
    5: {"wij-zij"},
    6: {"dubbelrol"},
    7: {"mogelijk-maker"},
}


@pytest.fixture(scope="module")
def corpus(fallback_nlp):
    nlp, _ = fallback_nlp
    codebook = load_codebook(REPO_ROOT / "codebook.yaml")
    turns = make_turns(TEXTS)
    tokens = pd.concat(
        [t for t, _ in analyse(turns, nlp, backoff=LemmaBackoff())], ignore_index=True
    )
    features, _ = compute_features(turns, tokens, codebook)
    Y = pd.DataFrame(
        {t: [int(t in LABELS.get(i, set())) for i in turns["turn"]] for t in codebook.ids}
    )
    tagger = ThemeTagger(themes=codebook.ids, min_df=1).fit(features, Y)
    model = TrainedModel(tagger, codebook.digest, codebook.version)
    return turns, tokens, codebook, model


def test_decisions_follow_the_thresholds(corpus):
    turns, tokens, codebook, model = corpus
    params = TagParams(thresholds={"wij-zij": 0.3, "dubbelrol": 0.9}, default_threshold=0.5)
    tags, _ = tag_corpus(turns, tokens, codebook, model, params)
    assert len(tags) == len(turns) * 3
    for theme, threshold in (("wij-zij", 0.3), ("dubbelrol", 0.9), ("mogelijk-maker", 0.5)):
        rows = tags[tags["theme"] == theme]
        assert (rows["decided"] == (rows["score"] >= threshold)).all()
    assert tags["score"].between(0, 1).all()


def test_training_turns_are_recognised_and_neutral_ones_not(corpus):
    turns, tokens, codebook, model = corpus
    tags, _ = tag_corpus(turns, tokens, codebook, model, TagParams())
    decided = tags[tags["decided"]].groupby("turn")["theme"].agg(set).to_dict()
    assert decided.get(1) == {"wij-zij"} and decided.get(2) == {"dubbelrol"}
    assert 4 not in decided and 8 not in decided


def test_evidence_points_at_the_words_of_decided_turns(corpus):
    turns, tokens, codebook, model = corpus
    tags, evidence = tag_corpus(turns, tokens, codebook, model, TagParams())
    assert not evidence.empty and set(evidence["kind"]) == {"regel", "model"}
    decided = set(zip(tags.loc[tags["decided"], "turn"], tags.loc[tags["decided"], "theme"]))
    for row in evidence.itertuples():
        assert (row.turn, row.theme) in decided
        assert TEXTS[row.turn - 1][row.start : row.end] == row.text
    cues = evidence[(evidence["turn"] == 2) & (evidence["kind"] == "regel")]["text"].tolist()
    assert "twee petten" in cues


def test_wide_table_joins_sorted_themes_and_scores(corpus):
    turns, tokens, codebook, model = corpus
    params = TagParams(default_threshold=0.0)  # everything decided: all three ids, sorted
    tags, _ = tag_corpus(turns, tokens, codebook, model, params)
    table = wide_table(turns, tags, codebook.ids)
    assert table["themes"].iloc[0] == "dubbelrol;mogelijk-maker;wij-zij"
    assert [c for c in table.columns if c.startswith("score_")] == [
        "score_wij-zij",
        "score_dubbelrol",
        "score_mogelijk-maker",
    ]
    assert table["text"].tolist() == TEXTS


def test_a_fitted_model_and_one_read_back_save_the_same_bytes(tmp_path, corpus):
    """train saves either the model it just fitted or the one its cache hands back; the model
    file (a DVC output) must not depend on which."""
    *_, model = corpus
    save_model(model, tmp_path / "fitted.pkl")
    save_model(pickle.loads(pickle.dumps(model)), tmp_path / "read_back.pkl")
    assert (tmp_path / "fitted.pkl").read_bytes() == (tmp_path / "read_back.pkl").read_bytes()
    assert load_model(tmp_path / "fitted.pkl").codebook_digest == model.codebook_digest


def test_a_model_from_another_codebook_is_refused(corpus):
    turns, tokens, codebook, model = corpus
    stale = TrainedModel(model.tagger, "0000", model.codebook_version)
    with pytest.raises(ValueError, match="another codebook"):
        tag_corpus(turns, tokens, codebook, stale, TagParams())


def test_evidence_equals_reading_each_theme_on_its_own(corpus):
    """Evidence per decided turn and theme, from one transform of all decided turns, is what
    `contributions` gives for that theme's turns alone."""
    from pipeline.tag import decide, evidence

    turns, tokens, codebook, model = corpus
    features, hits = compute_features(turns, tokens, codebook)
    params = TagParams(default_threshold=0.3)
    tags = decide(features, hits, model.tagger, params)
    texts = dict(zip(zip(turns["source"], turns["turn"]), turns["text"], strict=True))
    ev = evidence(tags, features, hits, tokens, texts, model.tagger, 3)
    learned = ev[ev["kind"] == "model"]
    assert not learned.empty
    for (source, turn, theme), rows in learned.groupby(["source", "turn", "theme"]):
        at = features.index[(features["source"] == source) & (features["turn"] == turn)]
        contrib, names = model.tagger.contributions(features.loc[at], theme)
        weight = dict(zip((names[j] for j in contrib.indices), contrib.data, strict=True))
        for cue, w in zip(rows["cue"], rows["weight"], strict=True):
            assert round(float(weight["lemmas__" + cue]), 6) == w


# Sessions given out of source order ("één" sorts after "b/"); the one about the weather and the
# coffee gets no evidence.
SESSIONS = {
    "b/sessie.txt": TEXTS[4:7],
    "één.txt": TEXTS[:3],
    "a/regen.txt": ["Het regent al de hele week.", "Zullen we koffie halen?"],
    "a/sessie.txt": TEXTS,
}


@pytest.fixture(scope="module")
def sessions(fallback_nlp):
    """Turns and tokens of `SESSIONS`."""
    nlp, _ = fallback_nlp
    turns = pd.concat(
        [make_turns(texts, source=source) for source, texts in SESSIONS.items()],
        ignore_index=True,
    )
    tokens = pd.concat(
        [t for t, _ in analyse(turns, nlp, backoff=LemmaBackoff())], ignore_index=True
    )
    return turns, tokens


def _sources(turns: pd.DataFrame, tokens: pd.DataFrame) -> list:
    return list(joined_by_source(turns, cache.digested_groups(tokens, "source")))


def _read_back(tables: tuple[pd.DataFrame, pd.DataFrame], folder) -> list[pd.DataFrame]:
    """`tables` as the stage wrote them before it streamed: whole, with `io.write_parquet`."""
    for table, name in zip(tables, ("tags", "evidence"), strict=True):
        io.write_parquet(table, folder / f"{name}.parquet")
    return [pd.read_parquet(folder / f"{name}.parquet") for name in ("tags", "evidence")]


def test_written_tables_read_back_as_the_tables_in_memory(tmp_path, corpus, sessions):
    """Streamed source by source, in row groups of whole sources, from entries computed in
    this run and from entries reused: the files hold the corpus's sorted tables."""
    _, _, codebook, model = corpus
    turns, tokens = sessions
    params = TagParams(default_threshold=0.3)
    plain = tag_corpus(turns, tokens, codebook, model, params)
    assert set(plain[1]["source"]) == set(SESSIONS) - {"a/regen.txt"}  # one without evidence
    expected = _read_back(plain, tmp_path / "whole")
    in_memory = tag_sources(_sources(turns, tokens), codebook, model, params, SourceCache(None))
    for table, frame in zip(expected, in_memory, strict=True):
        pd.testing.assert_frame_equal(frame, table)
    for run in ("cold", "warm"):
        store = SourceCache(tmp_path / "cache", "salt")
        paths = tmp_path / run / "tags.parquet", tmp_path / run / "evidence.parquet"
        tagged = tagged_sources(_sources(turns, tokens), codebook, model, params, store, 5)
        decided, evidence_rows = write_tables(tagged, *paths, rows_per_group=10)
        assert bool(store.stored) == (run == "cold")
        for table, path in zip(expected, paths, strict=True):
            pd.testing.assert_frame_equal(pd.read_parquet(path), table)
            groups = pq.ParquetFile(path)
            assert groups.num_row_groups > 1
            sources = [set(groups.read_row_group(g)["source"].to_pylist())
                       for g in range(groups.num_row_groups)]
            assert sum(map(len, sources)) == len(set().union(*sources))  # whole sources
        assert evidence_rows == len(expected[1])
        assert decided == expected[0][expected[0]["decided"]].groupby("theme").size().to_dict()


def test_an_empty_corpus_writes_empty_tables(tmp_path, corpus):
    _, _, codebook, model = corpus
    tagged = tagged_sources([], codebook, model, TagParams(), SourceCache(tmp_path / "cache"))
    decided, evidence_rows = write_tables(
        tagged, tmp_path / "tags.parquet", tmp_path / "evidence.parquet"
    )
    assert decided == {} and evidence_rows == 0
    expected = _read_back((schemas.empty(Tags), schemas.empty(Evidence)), tmp_path / "whole")
    for table, name, model_ in zip(expected, ("tags", "evidence"), (Tags, Evidence), strict=True):
        frame = pd.read_parquet(tmp_path / f"{name}.parquet")
        pd.testing.assert_frame_equal(frame, table)
        assert list(frame.columns) == list(model_.to_schema().columns) and frame.empty
        model_.validate(frame)


def test_a_failed_write_keeps_the_old_tables(tmp_path, corpus, sessions):
    _, _, codebook, model = corpus
    turns, tokens = sessions
    paths = tmp_path / "tags.parquet", tmp_path / "evidence.parquet"
    for path in paths:
        path.write_bytes(b"old")
    store = SourceCache(None)
    tagged = tagged_sources(_sources(turns, tokens), codebook, model, TagParams(), store)

    def cut_off():
        yield from list(tagged)[:2]
        raise TokensNotRead("a/sessie.txt")

    with pytest.raises(TokensNotRead):
        write_tables(cut_off(), *paths, rows_per_group=1)
    assert [path.read_bytes() for path in paths] == [b"old", b"old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evidence.parquet", "tags.parquet"]


class _Handle:
    """The session's de-identifier behind an object of its own, which a test can see freed."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.mark.parametrize("n_process", [1, 2])
def test_tag_folder_frees_the_deidentifier_before_it_analyses(
    deidentifier, monkeypatch, tmp_path, n_process
):
    """deduce's tables (about 1 GB) are not needed once the files are pseudonymised: `buurtlens
    tag` frees them before spaCy, the tagger and its workers take their share of memory. With
    two processes they are loaded in a child process and never here."""
    from pipeline import nlp, pseudonymise
    from pipeline.parallel import can_fork
    from pipeline.params import read_params
    from pipeline.tag import tag_folder

    if n_process > 1 and not can_fork():
        pytest.skip("ingest runs in one process where fork is unavailable")
    handles = []
    loaded_in = tmp_path / "loaded-in"

    def load():
        handle = _Handle(deidentifier)
        handles.append(weakref.ref(handle))
        loaded_in.write_text(str(os.getpid()))
        return handle

    alive_when_analysing = []
    load_pipeline = nlp.load_pipeline

    def load_pipeline_noting(model):
        alive_when_analysing.append([h() is not None for h in handles])
        return load_pipeline(model)

    monkeypatch.setattr(pseudonymise, "load_deidentifier", load)
    monkeypatch.setattr(nlp, "load_pipeline", load_pipeline_noting)
    params = read_params()
    params["ingest"] = {**params["ingest"], "n_process": n_process}
    turns, _, report = tag_folder(CORPUS, params)
    assert loaded_in.exists()  # loaded, and used: the corpus was pseudonymised
    if n_process == 1:
        assert int(loaded_in.read_text()) == os.getpid() and len(handles) == 1
        assert alive_when_analysing == [[False]]
    else:
        assert int(loaded_in.read_text()) != os.getpid() and handles == []
        assert alive_when_analysing == [[]]
    assert len(turns) == report["totals"]["turns"] > 0
