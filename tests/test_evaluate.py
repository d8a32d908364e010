import numpy as np
import pandas as pd
import pytest

from pipeline.classifier import ThemeTagger
from pipeline.evaluate import best_thresholds, macro_f1, out_of_fold_scores, theme_metrics


def test_theme_metrics_by_hand():
    truth = [1, 1, 1, 0, 0, 0, 0, 0]
    decided = [1, 1, 0, 1, 0, 0, 0, 0]
    m = theme_metrics(truth, decided)
    assert (m["precision"], m["recall"], m["f1"]) == (pytest.approx(2 / 3, abs=1e-4),) * 3
    # observed agreement 6/8; expected (3*3 + 5*5)/64 -> kappa = (0.75 - 34/64) / (1 - 34/64)
    assert m["kappa"] == pytest.approx((0.75 - 34 / 64) / (1 - 34 / 64), abs=1e-4)
    assert (m["support"], m["predicted"]) == (3, 3)


def test_macro_f1_is_the_mean():
    assert macro_f1({"a": {"f1": 0.5}, "b": {"f1": 1.0}}) == 0.75


class RecordingTagger(ThemeTagger):
    """A real ThemeTagger that remembers which sessions it was trained on."""

    seen: list[set[str]] = []

    def fit(self, X, Y):
        RecordingTagger.seen.append(set(X["source"]))
        return super().fit(X, Y)


def toy_data(n_sessions: int = 6, per_session: int = 10):
    rng = np.random.default_rng(0)
    rows, labels = [], []
    for s in range(n_sessions):
        for t in range(per_session):
            positive = bool(rng.integers(0, 2))
            text = "ruimte geven loslaten" if positive else "koffie parkeren weer"
            rows.append(
                {
                    "source": f"s{s}.txt",
                    "turn": t + 1,
                    "role": "bewoner",
                    "lemmas": text,
                    "prev_lemmas": "",
                    "next_lemmas": "",
                    "lower": text,
                    "cues": [],
                    "n_words": 3,
                }
            )
            labels.append(int(positive))
    return pd.DataFrame(rows), pd.DataFrame({"mogelijk-maker": labels})


def test_no_turn_is_scored_by_a_model_that_saw_its_session():
    X, Y = toy_data()
    RecordingTagger.seen = []
    scores = out_of_fold_scores(
        X, Y, X["source"], lambda: RecordingTagger(themes=("mogelijk-maker",), min_df=1), n_splits=3
    )
    assert len(RecordingTagger.seen) == 3
    assert scores["mogelijk-maker"].notna().all()
    for sessions in RecordingTagger.seen:
        assert len(sessions) == 4  # 6 sessions, 3 folds: each model saw 4 and scored 2
    assert ((scores["mogelijk-maker"] >= 0.5).astype(int) == Y["mogelijk-maker"]).mean() > 0.9


def test_best_threshold_lies_between_the_classes():
    truth = pd.DataFrame({"t": [0, 0, 0, 1, 1]})
    scores = pd.DataFrame({"t": [0.1, 0.2, 0.3, 0.7, 0.8]})
    assert 0.3 < best_thresholds(truth, scores)["t"] <= 0.7
