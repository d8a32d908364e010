import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from pipeline.classifier import NeighbourLemmas, ThemeTagger

WIJ = [
    "die van de gemeente bepalen alles",
    "de gemeente luistert niet naar ons",
    "wij worden nooit gehoord door de gemeente",
    "de gemeente beslist over ons zonder ons",
    "zij van de gemeente weten het altijd beter",
    "de gemeente heeft het plan al klaar",
]
OTHER = [
    "zullen we koffie halen",
    "het regent al de hele week",
    "de soep is lekker vandaag",
    "ik fiets morgen naar de markt",
    "de kinderen spelen buiten",
    "wie neemt de taart mee",
]
THEMES = ("wij-zij", "nieuw-thema")


def features(texts: list[str], cues: list[list[str]] | None = None) -> pd.DataFrame:
    """Literal turn features as `turn_features` makes them (one transcript, turns in order)."""
    n = len(texts)
    return pd.DataFrame(
        {
            "source": ["a.txt"] * n,
            "turn": list(range(1, n + 1)),
            "role": ["bewoner", "facilitator"] * (n // 2) + ["bewoner"] * (n % 2),
            "lemmas": texts,
            "lower": texts,
            "cues": cues or [[] for _ in texts],
            "n_words": [len(t.split()) for t in texts],
            "prev_lemmas": [""] + texts[:-1],
            "next_lemmas": texts[1:] + [""],
        }
    )


@pytest.fixture(scope="module")
def training():
    texts = [t for pair in zip(WIJ, OTHER) for t in pair]
    X = features(texts)
    Y = pd.DataFrame({"wij-zij": [1, 0] * len(WIJ), "nieuw-thema": 0})
    return X, Y


@pytest.fixture(scope="module")
def tagger(training):
    X, Y = training
    return ThemeTagger(themes=THEMES, min_df=1).fit(X, Y)


def test_fit_returns_self_and_keeps_settings(training):
    X, Y = training
    tagger = ThemeTagger(themes=THEMES, min_df=1, C=4.0)
    assert tagger.fit(X, Y) is tagger
    assert tagger.get_params()["C"] == 4.0 and set(tagger.models_) == {"wij-zij"}


def test_scores_have_one_column_per_theme_in_range(tagger, training):
    X, _ = training
    scores = tagger.predict_proba(X)
    assert list(scores.columns) == list(THEMES)
    assert scores.index.equals(X.index)
    assert ((scores >= 0) & (scores <= 1)).all().all()
    assert tagger.predict_proba(X.iloc[:0]).shape == (0, len(THEMES))


def test_an_unannotated_theme_falls_back_to_its_cues(tagger):
    X = features(
        ["niets hier", "een hit", "twee hits"],
        cues=[[], ["nieuw-thema:a"], ["nieuw-thema:a", "nieuw-thema:b", "wij-zij:c"]],
    )
    scores = tagger.predict_proba(X)["nieuw-thema"].tolist()
    assert scores == [0.0, 0.5, 0.75]


def test_a_learned_theme_separates_unseen_turns(tagger):
    X = features(["die van de gemeente luisteren nooit naar ons", "de taart is lekker"])
    scores = tagger.predict_proba(X)["wij-zij"]
    assert scores.iloc[0] > 0.5 > scores.iloc[1]


def test_a_learned_theme_beats_chance_in_leave_one_out(training):
    X, Y = training
    right = 0
    for k in range(len(X)):
        keep = X.index != k
        tagger = ThemeTagger(themes=("wij-zij",), min_df=1).fit(X[keep], Y[keep])
        score = tagger.predict_proba(X[~keep])["wij-zij"].iloc[0]
        right += int((score >= 0.5) == bool(Y["wij-zij"].iloc[k]))
    assert right / len(X) > 0.75


def test_contributions_name_lemma_features(tagger):
    X = features(["die van de gemeente bepalen alles"])
    contrib, names = tagger.contributions(X, "wij-zij")
    assert contrib.shape == (1, len(names))
    row = contrib.getrow(0)
    top = names[row.indices[row.data.argmax()]]
    lemma_names = [n for n in names if n.startswith("lemmas__")]
    assert "lemmas__gemeente" in lemma_names and "lemmas__de gemeente" in lemma_names
    assert any(names[i] == "lemmas__gemeente" for i in row.indices)
    assert top.split("__")[0] in {"lemmas", "words", "chars", "prev", "next", "cues", "role"}


def test_same_input_twice_gives_identical_scores(training):
    X, Y = training
    first = ThemeTagger(themes=THEMES, min_df=1).fit(X, Y).predict_proba(X)
    second = ThemeTagger(themes=THEMES, min_df=1).fit(X, Y).predict_proba(X)
    pd.testing.assert_frame_equal(first, second)


def test_turns_without_text_are_scored(tagger):
    X = features(["", "de gemeente bepaalt alles"])
    X.loc[0, "n_words"] = 0
    scores = tagger.predict_proba(X)
    assert np.isfinite(scores.to_numpy()).all()


def test_context_counts_more_for_short_turns():
    X = pd.DataFrame(
        {"prev_lemmas": ["de gemeente bepaalt", "de gemeente bepaalt"], "n_words": [2, 60]}
    )
    matrix = NeighbourLemmas(min_df=1, weight=1.5).fit(X).transform(X)
    short, long = np.linalg.norm(matrix.toarray(), axis=1)
    assert short > 2 * long > 0


def test_no_neighbours_at_all_gives_an_empty_context_column():
    X = pd.DataFrame({"prev_lemmas": ["", ""], "n_words": [3, 4]})
    context = NeighbourLemmas(min_df=1).fit(X)
    assert context.transform(X).shape == (2, 1) and context.transform(X).nnz == 0
    assert list(context.get_feature_names_out()) == ["(none)"]


def test_training_without_context_features_still_works(training):
    X, Y = training
    tagger = ThemeTagger(themes=THEMES, min_df=1, context_weight=0).fit(X, Y)
    names = tagger.features_.get_feature_names_out()
    assert not any(n.startswith(("prev__", "next__")) for n in names)


def test_feature_rows_do_not_depend_on_the_other_rows(tagger, training):
    """`evidence` transforms all decided turns at once and takes each theme's rows from that."""
    X, _ = training
    whole = tagger.feature_matrix(X)
    part = tagger.feature_matrix(X.iloc[[3, 1]])
    assert (whole[[3, 1]] != part).nnz == 0
    contrib, _ = tagger.contributions(X.iloc[[3, 1]], "wij-zij")
    same = tagger.contributions_of(whole[[3, 1]], "wij-zij")
    assert (contrib != same).nnz == 0 and (contrib.indices == same.indices).all()


def test_the_same_training_gives_the_same_model_bytes_in_another_process(training, tmp_path):
    """A model file must not carry memory addresses (scikit-learn keeps `id(stop_words)`)."""
    X, Y = training
    data = tmp_path / "training.pkl"
    pickle.dump((X, Y, THEMES), data.open("wb"))
    fit = (
        "import pickle, sys; from pipeline.classifier import ThemeTagger; "
        f"X, Y, themes = pickle.load(open({str(data)!r}, 'rb')); "
        "sys.stdout.buffer.write(pickle.dumps(ThemeTagger(themes=themes, min_df=1).fit(X, Y)))"
    )
    runs = [subprocess.run([sys.executable, "-c", fit], capture_output=True, check=True).stdout
            for _ in range(2)]
    assert runs[0] == runs[1]


def test_feature_names_are_worked_out_once_and_left_out_of_the_model_file(tagger):
    before = pickle.dumps(tagger)
    names = tagger.feature_names()
    assert tagger.feature_names() is names
    assert list(names) == list(tagger.features_.get_feature_names_out())
    assert pickle.dumps(tagger) == before
    copy = pickle.loads(before)
    assert "_feature_names" not in vars(copy)
    assert list(copy.feature_names()) == list(names)
