"""Stage `topics`: small corpora, determinism, clustering choice, codebook overlap, pseudonyms."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("bertopic", reason="bertopic is installed by `make setup` (--no-deps)")

from pipeline import io  # noqa: E402
from pipeline.codebook import parse_codebook  # noqa: E402
from pipeline.lemmas import LemmaBackoff  # noqa: E402
from pipeline.nlp import analyse  # noqa: E402
from pipeline.schemas import Sentences, Tags, Tokens, Turns, empty  # noqa: E402
from pipeline.topics import (  # noqa: E402
    OUTLIER,
    Choice,
    Embeddings,
    TopicsParams,
    build_units,
    choose,
    cue_words,
    distinct_rows,
    kmeans_k,
    load_stop_words,
    model_units,
    overlap,
    read_units,
    run,
    sample_positions,
)
from tests.conftest import make_turns  # noqa: E402

# Three clear subjects; every sentence also names a pseudonymised person.
SUBJECTS = {
    "speeltuin": [
        "De speeltuin bij [PERSOON-{n}] heeft een kapotte schommel en glijbaan.",
        "Kinderen spelen graag in de speeltuin met de nieuwe schommel.",
        "De glijbaan in de speeltuin is te heet voor kinderen.",
    ],
    "afval": [
        "De afvalcontainer bij [PERSOON-{n}] puilt uit met vuilniszakken.",
        "Het vuilnis wordt te laat opgehaald, de container stinkt.",
        "Zwerfafval en vuilniszakken naast de container trekken ratten.",
    ],
    "gemeente": [
        "De instanties luisteren niet, [PERSOON-{n}] voelt zich niet gehoord.",
        "Over ons zonder ons, de instanties beslissen over onze hoofden heen.",
        "Het systeem luistert niet naar bewoners, de instanties bepalen alles.",
    ],
}
CODEBOOK = """
version: test
themes:
  - id: wij-zij
    label: Wij-zij
    definition: Bewoners tegenover instanties.
    phrases: [de instanties, over ons zonder ons, ze luisteren niet]
    lemma_patterns: ["luisteren niet", "instantie|systeem bepalen|beslissen"]
  - id: speelplek
    label: Speelplek
    definition: Over speelplekken.
    phrases: [de speeltuin]
"""


# One of five words of its subject ends every sentence: 45 distinct texts, then they repeat.
EXTRAS = {
    "speeltuin": ["zandbak", "klimrek", "wipwap", "speelhuisje", "kabelbaan"],
    "afval": ["papier", "plastic", "glasbak", "grofvuil", "zwerfvuil"],
    "gemeente": ["ambtenaren", "beleid", "regels", "loket", "procedures"],
}


def corpus(n: int, nlp) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Turns (one sentence each), tokens and sentences for `n` sentences over 2 gemeenten/jaren."""
    texts = []
    for k in range(n):
        subject = list(SUBJECTS)[k % 3]
        sentence = SUBJECTS[subject][(k // 3) % 3].format(n=k % 4 + 1)
        texts.append(f"{sentence[:-1]}, ook {EXTRAS[subject][(k // 9) % 5]}.")
    turns = make_turns(texts)
    turns["gemeente"] = ["Voorst" if k % 2 else "Apeldoorn" for k in range(n)]
    turns["jaar"] = [2025 if k < n / 2 else 2026 for k in range(n)]
    turns["datum"] = [f"{j}-03-0{1 + k % 3}" for k, j in enumerate(turns["jaar"])]
    chunks = list(analyse(turns, nlp, backoff=LemmaBackoff()))
    tokens = pd.concat([t for t, _ in chunks], ignore_index=True)
    sentences = pd.concat([s for _, s in chunks], ignore_index=True)
    return turns, tokens, sentences


def no_tags() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "source": pd.Series(dtype=str),
            "turn": pd.Series(dtype=int),
            "theme": pd.Series(dtype=str),
            "score": pd.Series(dtype=float),
            "decided": pd.Series(dtype=bool),
            "rule_hits": pd.Series(dtype=int),
        }
    )


@pytest.fixture(scope="module")
def nlp(fallback_nlp):
    return fallback_nlp[0]


@pytest.fixture(scope="module")
def codebook():
    return parse_codebook(CODEBOOK)


PARAMS = TopicsParams(min_words=1, min_topic_size=3)


def fit(n, nlp, codebook, params=PARAMS, tags=None):
    turns, tokens, sentences = corpus(n, nlp)
    return run(sentences, tokens, turns, no_tags() if tags is None else tags, codebook, params)


@pytest.mark.parametrize("n", [1, 2, 5, 30])
def test_small_corpora_do_not_crash(n, nlp, codebook):
    frames, meta, _ = fit(n, nlp, codebook)
    assert meta["n_units"] == n
    assert len(frames["topics"]) == n
    if n >= 2:
        assert meta["mode"] == "kmeans"
        assert meta["n_topics"] >= 1
        assert set(frames["topics"]["topic"]) == set(frames["topic_info"]["topic"])
        assert frames["topic_info"]["size"].sum() == n
        assert frames["topics_per_gemeente"]["size"].sum() == n
        assert set(frames["topics_over_time"]["period"]) <= {"2025", "2026"}
    else:
        assert meta["mode"] == "none" and frames["topic_info"].empty


def test_thirty_sentences_find_the_three_subjects(nlp, codebook):
    params = dataclasses.replace(PARAMS, n_topics=3)
    frames, _, _ = fit(30, nlp, codebook, params)
    topics = frames["topics"]["topic"].to_numpy()
    assert sorted(np.bincount(topics)) == [10, 10, 10]
    assert all(len(set(topics[k::3])) == 1 for k in range(3))  # same subject, same topic


def write_all(frames, folder: Path) -> dict[str, bytes]:
    for name, frame in frames.items():
        io.write_parquet(frame, folder / f"{name}.parquet")
    return {name: (folder / f"{name}.parquet").read_bytes() for name in frames}


@pytest.mark.parametrize("mode", ["kmeans", "hdbscan"])
def test_two_runs_give_identical_files(mode, nlp, codebook, tmp_path):
    params = dataclasses.replace(PARAMS, mode=mode, min_topic_size=5)
    first = write_all(fit(90, nlp, codebook, params)[0], tmp_path / "a")
    second = write_all(fit(90, nlp, codebook, params)[0], tmp_path / "b")
    assert first == second


def test_input_order_does_not_matter(nlp, codebook):
    turns, tokens, sentences = corpus(30, nlp)
    a = run(sentences, tokens, turns, no_tags(), codebook, PARAMS)[0]
    b = run(
        sentences.iloc[::-1],
        tokens.sample(frac=1, random_state=1),
        turns.iloc[::-1],
        no_tags(),
        codebook,
        PARAMS,
    )[0]
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])


def test_auto_chooses_kmeans_for_small_and_hdbscan_for_large():
    params = TopicsParams()
    assert choose(30, params).mode == "kmeans"
    assert choose(params.auto_hdbscan_from, params).mode == "hdbscan"
    assert choose(5000, dataclasses.replace(params, mode="kmeans")).mode == "kmeans"
    forced = choose(10, dataclasses.replace(params, mode="hdbscan"))
    assert forced.mode == "kmeans" and "too few" in forced.reason


@pytest.mark.parametrize(("n", "expected"), [(5, 1), (30, 3), (200, 10), (1999, 30), (100_000, 30)])
def test_k_grows_like_a_square_root_within_bounds(n, expected):
    assert kmeans_k(n, TopicsParams()) == expected


def test_k_from_params_is_capped_by_units():
    assert kmeans_k(4, TopicsParams(n_topics=8)) == 4


def test_hdbscan_with_too_few_topics_falls_back_to_kmeans(nlp, codebook):
    params = dataclasses.replace(PARAMS, mode="hdbscan", min_topic_size=20)
    _, meta, _ = fit(90, nlp, codebook, params)
    assert meta["mode"] == "kmeans"
    assert "HDBSCAN found fewer than 2 topics" in meta["reason"]


def test_overlap_by_shared_words(codebook):
    cues = cue_words(codebook, load_stop_words())
    assert {"instanties", "luisteren", "systeem", "bepalen"} <= cues["wij-zij"]
    assert "de" not in cues["wij-zij"]
    words = [("instanties", 0.5), ("luisteren", 0.3), ("fiets", 0.2)]
    theme, score, shared, _ = overlap(words, [("a", 1)], cues, {}, {})
    assert theme == "wij-zij" and score == pytest.approx(0.8) and shared == "instanties, luisteren"


def test_overlap_by_tagged_turns(codebook):
    cues = cue_words(codebook, load_stop_words())
    keys = [("a", t) for t in range(1, 11)]
    tagged = {"speelplek": set(keys[:9])}  # 90% of the topic's turns, 10% overall
    theme, score, shared, share = overlap([("fiets", 1.0)], keys, cues, tagged, {"speelplek": 0.1})
    assert theme == "speelplek" and share == pytest.approx(0.9)
    assert score == pytest.approx((0.9 - 0.1) / 0.9)
    # at the base rate a topic does not overlap, however common the theme is
    _, score, _, _ = overlap([("fiets", 1.0)], keys, cues, tagged, {"speelplek": 0.9})
    assert score == 0


def test_topic_info_marks_codebook_topics_apart_from_new_ones(nlp, codebook):
    turns, _, _ = corpus(30, nlp)
    tagged = turns[turns["text"].str.contains("speeltuin|schommel|glijbaan")]
    tags = Tags.validate(
        pd.DataFrame(
            {
                "source": tagged["source"],
                "turn": tagged["turn"],
                "theme": "speelplek",
                "score": 0.9,
                "decided": True,
                "rule_hits": 1,
            }
        )
    )
    params = dataclasses.replace(PARAMS, n_topics=3)
    info = fit(30, nlp, codebook, params, tags=tags)[0]["topic_info"]
    by_theme = dict(zip(info["overlap_theme"].fillna("-"), info["words"]))
    assert "instantie" in by_theme["wij-zij"] or "instanties" in by_theme["wij-zij"]
    assert "schommel" in by_theme["speelplek"]
    new = info[info["is_new"]]
    assert len(new) == 1 and "container" in new["words"].iloc[0]
    per_gemeente = fit(30, nlp, codebook, params, tags=tags)[0]["topics_per_gemeente"]
    assert set(per_gemeente["overlap_theme"].dropna()) == {"wij-zij", "speelplek"}


def test_placeholders_never_become_topic_words(nlp, codebook):
    frames, _, _ = fit(30, nlp, codebook)
    words = " ".join(
        [*frames["topic_info"]["words"], *frames["topics_per_gemeente"]["words"]]
        + list(frames["topics_over_time"]["words"])
    )
    assert "persoon" not in words.lower() and "[" not in words
    examples = " ".join(frames["topic_info"]["example_1"])
    assert "[PERSOON-" in examples  # examples are the pseudonymised sentences, as they are


def test_examples_point_to_their_turn(nlp, codebook):
    turns, _, _ = corpus(30, nlp)
    info = fit(30, nlp, codebook)[0]["topic_info"]
    texts = dict(zip(turns["turn"], turns["text"]))
    for row in info.itertuples():
        assert texts[row.example_1_turn] == row.example_1


def test_turn_units_and_datum_periods(nlp, codebook):
    params = dataclasses.replace(PARAMS, unit="turn", over_time="datum")
    frames, meta, _ = fit(30, nlp, codebook, params)
    assert meta["unit"] == "turn" and set(frames["topics"]["sent"]) == {-1}
    assert set(frames["topics_over_time"]["period"]) <= {
        f"{j}-03-0{d}" for j in (2025, 2026) for d in (1, 2, 3)
    }


def test_the_sample_is_every_unit_up_to_fit_sample():
    assert list(sample_positions(5, 5, seed=0)) == [0, 1, 2, 3, 4]
    assert list(sample_positions(5, None, seed=0)) == [0, 1, 2, 3, 4]


def test_a_larger_corpus_is_fitted_on_a_seeded_sample_in_unit_order():
    sample = sample_positions(1000, 100, seed=0)
    assert len(sample) == len(set(sample)) == 100
    assert list(sample) == sorted(sample) and sample.max() < 1000
    assert list(sample) == list(sample_positions(1000, 100, seed=0))
    assert list(sample) != list(sample_positions(1000, 100, seed=1))


@pytest.mark.parametrize("mode", ["kmeans", "hdbscan"])
def test_units_outside_the_sample_join_the_topic_of_their_subject(mode, nlp, codebook):
    params = dataclasses.replace(PARAMS, mode=mode, n_topics=3, min_topic_size=5, fit_sample=30)
    frames, meta, result = fit(90, nlp, codebook, params)
    assert meta["n_units"] == 90 and meta["n_units_fitted"] == 30
    assert "seeded sample of 30 of 45 distinct units" in meta["reason"]
    assert meta["mode"] == mode
    topics = frames["topics"]["topic"].to_numpy()
    assert all(len(set(topics[k::3])) == 1 for k in range(3))  # same subject, same topic
    assert len(set(topics)) == 3 and OUTLIER not in topics
    # sizes and words describe all 90 units, not only the fitted ones
    assert frames["topic_info"]["size"].sum() == 90
    assert frames["topics_per_gemeente"]["size"].sum() == 90
    assert frames["topics_over_time"]["frequency"].sum() == 90
    assert len(result.model.topics_) == 90


@pytest.mark.parametrize("mode", ["kmeans", "hdbscan"])
def test_a_sampled_fit_is_reproducible(mode, nlp, codebook, tmp_path):
    params = dataclasses.replace(PARAMS, mode=mode, min_topic_size=5, fit_sample=40)
    first = write_all(fit(90, nlp, codebook, params)[0], tmp_path / "a")
    second = write_all(fit(90, nlp, codebook, params)[0], tmp_path / "b")
    assert first == second


def test_embeddings_of_any_units_are_the_fitted_or_transformed_rows():
    """Only the sampled units' embeddings are held; any other unit's is computed when asked,
    batch by batch, and equals what `transform` gives for it alone."""
    inputs = pd.Series([f"woord{i} ander{i % 3}" for i in range(7)])
    sampled = np.array([1, 4, 5])
    vectors = np.array([[1.0, 1.0], [4.0, 4.0], [5.0, 5.0]])
    calls = []

    def transform(rows: pd.Series) -> np.ndarray:
        calls.append(len(rows))
        return np.array([[float(r.split()[0][5:]), -1.0] for r in rows])

    embeddings = Embeddings(sampled, vectors, transform, inputs)
    got = embeddings.of(np.array([6, 4, 0, 1, 3]))
    assert got.tolist() == [[6.0, -1.0], [4.0, 4.0], [0.0, -1.0], [1.0, 1.0], [3.0, -1.0]]
    assert calls == [3]  # the three units outside the sample, in one batch
    assert embeddings.of(sampled).tolist() == vectors.tolist() and calls == [3]


def test_distinct_rows_keep_input_order_and_map_every_copy():
    matrix = np.array([[3.0, 0.0], [1.0, 0.0], [3.0, 0.0], [2.0, 0.0], [1.0, 1e-12]])
    first, copy_of = distinct_rows(matrix)
    assert first.tolist() == [0, 1, 3]  # [1, 1e-12] is [1, 0] to 9 decimals
    assert copy_of.tolist() == [0, 1, 0, 2, 1]


@pytest.mark.parametrize("mode", ["kmeans", "hdbscan"])
def test_repeated_units_count_once_in_the_fit_and_fully_in_the_sizes(mode, nlp, codebook):
    params = dataclasses.replace(PARAMS, mode=mode, n_topics=3, min_topic_size=3)
    frames, meta, result = fit(90, nlp, codebook, params)  # 45 texts, each twice
    assert meta["n_units"] == 90 and meta["n_units_fitted"] == 45
    assert "fitted on the 45 distinct of 90 units" in meta["reason"]
    assert meta["mode"] == mode
    if mode == "hdbscan":  # UMAP laid out each text once
        assert result.model.umap_model.embedding_.shape[0] == 45
    topics = frames["topics"]["topic"].to_numpy()
    assert (topics[:45] == topics[45:]).all()  # unit k and k + 45 have the same text
    assert frames["topic_info"]["size"].sum() == 90
    assert len(result.model.topics_) == 90


def test_a_fit_on_repeated_units_is_reproducible(nlp, codebook, tmp_path):
    """Seeded UMAP gives a new layout in every run when rows repeat (umap-learn #1277); on
    these 90 units, each text twice, it did before the fit took each text once."""
    turns, tokens, sentences = corpus(90, nlp)
    params = dataclasses.replace(PARAMS, mode="hdbscan", min_topic_size=3)
    first, second = (run(sentences, tokens, turns, no_tags(), codebook, params) for _ in "ab")
    layouts = [result.model.umap_model.embedding_ for _, _, result in (first, second)]
    np.testing.assert_array_equal(layouts[0], layouts[1])
    assert write_all(first[0], tmp_path / "a") == write_all(second[0], tmp_path / "b")


def test_fit_sample_below_two_is_rejected():
    with pytest.raises(ValueError, match="topics.fit_sample"):
        TopicsParams(fit_sample=1)


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="topics.mode"):
        TopicsParams(mode="lda")


@pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None,
    reason="sentence-transformers is not installed (it pulls in PyTorch; not in the default "
    "install)",
)
def test_a_locally_installed_sentence_transformer(nlp, codebook, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # never download in a test
    name = "paraphrase-multilingual-MiniLM-L12-v2"
    try:
        from sentence_transformers import SentenceTransformer

        SentenceTransformer(name)
    except Exception as exc:  # noqa: BLE001 - any failure means: not in the local cache
        pytest.skip(f"model {name} is not in the local cache: {exc}")
    frames, meta, _ = fit(30, nlp, codebook, dataclasses.replace(PARAMS, embedding=name))
    assert meta["n_topics"] >= 1


def test_choice_is_recorded(nlp, codebook):
    _, meta, _ = fit(30, nlp, codebook)
    assert meta["mode"] == "kmeans" and "auto_hdbscan_from" in meta["reason"]
    assert meta["versions"]["bertopic"].startswith("0.17")
    assert isinstance(Choice("kmeans", 2, "x"), Choice)


def in_sources(n_sources: int, frames):
    """Each table of `corpus` once per source b/sessie-0.txt ... (in source order)."""
    return [
        pd.concat(
            [frame.assign(source=f"b/sessie-{k}.txt") for k in range(n_sources)],
            ignore_index=True,
        )
        for frame in frames
    ]


@pytest.mark.parametrize("sources_per_read", [1, 2, 250])
def test_the_stage_reads_only_the_words_and_columns_it_uses_and_gets_the_same_result(
    sources_per_read, nlp, codebook, tmp_path
):
    turns, tokens, sentences = in_sources(3, corpus(30, nlp))
    p = SimpleNamespace(**{name: tmp_path / f"{name}.parquet" for name in
                           ("turns", "tokens", "sentences", "tags")})
    for name, frame in (("turns", turns), ("tokens", tokens), ("sentences", sentences),
                        ("tags", no_tags())):
        io.write_parquet(frame, getattr(p, name))
    units, n_all, tags = read_units(p, PARAMS, sources_per_read=sources_per_read)
    expected = build_units(sentences, tokens, turns, "sentence", load_stop_words(), 1)
    pd.testing.assert_frame_equal(units, expected)
    assert n_all == len(sentences) == 90 and tags.empty
    from_files = model_units(units, n_all, tags, codebook, PARAMS)[0]
    in_memory = run(sentences, tokens, turns, no_tags(), codebook, PARAMS)[0]
    for name, frame in in_memory.items():
        pd.testing.assert_frame_equal(from_files[name], frame)


def test_a_corpus_without_turns_has_no_units(tmp_path):
    p = SimpleNamespace(**{name: tmp_path / f"{name}.parquet" for name in
                           ("turns", "tokens", "sentences", "tags")})
    for name, model in (("turns", Turns), ("tokens", Tokens), ("sentences", Sentences)):
        io.write_parquet(empty(model), getattr(p, name))
    units, n_all, _ = read_units(p, PARAMS)
    assert units.empty and n_all == 0
    assert {"source", "turn", "sent", "text", "lemmas", "gemeente"} <= set(units.columns)
