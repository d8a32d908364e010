import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GroupKFold

from pipeline.classifier import ThemeTagger
from pipeline.evaluate import out_of_fold_scores
from pipeline.session_model import SessionTagger, session_features, shift_to_half
from tests.test_evaluate import RecordingTagger

THEME_TURN = "die van de gemeente luisteren niet naar ons"
NEUTRAL_TURN = "de koffie en de taart zijn lekker"
REPLY = "ja precies"


def sessions(n: int, first: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """n sessions of 8 turns; in every other session the talk is wij-zij, and so is each short
    reply in it; elsewhere neither is. A reply's own words never tell which."""
    rows, labels = [], []
    for s in range(first, first + n):
        themed = s % 2 == 0
        for t in range(8):
            text = REPLY if t % 2 else (THEME_TURN if themed else NEUTRAL_TURN)
            rows.append(
                {
                    "source": f"s{s:02d}.txt",
                    "turn": t + 1,
                    "role": "bewoner",
                    "lemmas": text,
                    "lower": text,
                    "cues": [],
                    "n_words": len(text.split()),
                    "prev_lemmas": "",
                    "next_lemmas": "",
                }
            )
            labels.append(int(themed))
    return pd.DataFrame(rows), pd.DataFrame({"wij-zij": labels, "nieuw-thema": 0})


def turn_model(**kwargs) -> ThemeTagger:
    return ThemeTagger(themes=("wij-zij", "nieuw-thema"), min_df=1, context_weight=0, **kwargs)


@pytest.fixture(scope="module")
def fitted():
    X, Y = sessions(12)
    return SessionTagger(turn_model(), folds=3).fit(X, Y)


def test_short_replies_are_read_through_their_session(fitted):
    X, _ = sessions(4, first=100)
    replies = X["lemmas"] == REPLY
    themed = X["source"].isin(["s100.txt", "s102.txt"])
    first = fitted.turn_model_.predict_proba(X)["wij-zij"]
    assert first[replies & themed].to_numpy() == pytest.approx(first[replies & ~themed].to_numpy())
    scores = fitted.predict_proba(X)["wij-zij"]
    assert (scores[replies & themed] > 0.5).all() and (scores[replies & ~themed] < 0.5).all()


def test_a_turn_is_scored_from_its_own_session_only(fitted):
    X, _ = sessions(4, first=100)
    together = fitted.predict_proba(X)
    apart = pd.concat([fitted.predict_proba(part) for _, part in X.groupby("source")])
    pd.testing.assert_frame_equal(together, apart.loc[together.index])


def test_an_unannotated_theme_keeps_its_cue_scores(fitted):
    X, _ = sessions(2, first=100)
    X.loc[0, "cues"] = ["nieuw-thema:a"]
    scores = fitted.predict_proba(X)["nieuw-thema"]
    assert scores.iloc[0] == 0.5 and (scores.iloc[1:] == 0).all()
    assert set(fitted.stage_models_) == {"wij-zij"}


def test_one_session_gives_the_first_stage_alone():
    X, Y = sessions(1)
    Y.loc[0, "wij-zij"] = 0  # both classes in the one session
    tagger = SessionTagger(turn_model(), folds=3).fit(X, Y)
    assert tagger.stage_models_ == {}
    pd.testing.assert_frame_equal(tagger.predict_proba(X), tagger.turn_model_.predict_proba(X))


def test_offers_the_first_stage_for_evidence(fitted):
    X, _ = sessions(1, first=100)
    assert fitted.themes == ("wij-zij", "nieuw-thema")
    assert fitted.models_ is fitted.turn_model_.models_
    assert (fitted.feature_matrix(X) != fitted.turn_model_.feature_matrix(X)).nnz == 0
    assert fitted.predict_proba(X.iloc[:0]).shape == (0, 2)


def test_same_model_with_one_or_two_processes():
    X, Y = sessions(8)
    one = SessionTagger(turn_model(), folds=3, n_process=1).fit(X, Y)
    two = SessionTagger(turn_model(), folds=3, n_process=2).fit(X, Y)
    pd.testing.assert_frame_equal(one.predict_proba(X), two.predict_proba(X))
    assert one.thresholds_ == two.thresholds_


def test_session_features_read_neighbours_and_the_session_mean():
    X, _ = sessions(1)
    scores = pd.DataFrame({"wij-zij": np.linspace(0.1, 0.8, 8)})
    inputs = session_features(X, scores)
    assert inputs["turn-1:wij-zij"].iloc[0] == -5.0  # before the first turn
    assert inputs["turn-1:wij-zij"].iloc[1] == pytest.approx(inputs["own:wij-zij"].iloc[0])
    assert inputs["turn+2:wij-zij"].iloc[5] == pytest.approx(inputs["own:wij-zij"].iloc[7])
    assert inputs["session:wij-zij"].nunique() == 1


def test_shift_to_half_moves_the_threshold_and_keeps_the_order():
    p = np.array([0.0, 0.1, 0.3, 0.6, 1.0])
    shifted = shift_to_half(p, 0.3)
    assert shifted[2] == pytest.approx(0.5)
    assert shifted[0] == 0 and shifted[-1] == 1 and (np.diff(shifted) > 0).all()


def test_no_model_in_either_stage_saw_the_scored_session():
    X, Y = sessions(6)
    RecordingTagger.seen = []
    out_of_fold_scores(
        X,
        Y,
        X["source"],
        lambda: SessionTagger(RecordingTagger(themes=("wij-zij",), min_df=1), folds=2),
        n_splits=3,
    )
    outer = list(GroupKFold(n_splits=3).split(X, groups=X["source"]))
    assert len(RecordingTagger.seen) == 3 * 3  # per outer fold: the final fit and 2 inner folds
    for k, (_, test) in enumerate(outer):
        scored = set(X["source"].iloc[test])
        for seen in RecordingTagger.seen[3 * k : 3 * k + 3]:
            assert not seen & scored
