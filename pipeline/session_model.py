"""The tagger's second stage: every turn is scored again with the first-stage scores of the turns
around it and of its whole session.

Researchers code a short or ironic reply ("Zestien indicatoren, hè.") by what it answers and by
what the session is about; the first stage reads each turn on its own (plus its neighbours'
words). The second stage is a small logistic regression per theme over the first-stage scores
(logits) of the turn, of the two turns before and after it, and the mean of its session, and the
turn's length. Its training inputs are out-of-fold first-stage scores (folds grouped by session),
so it learns how far to trust scores the first stage has not fitted. Its decision threshold is
the F1-best one on out-of-fold second-stage scores, and scores are shifted so that this threshold
lands on 0.5: `tag.thresholds` keep 0.5 as "as trained".

A turn's scores depend on its own session only, so each transcript can be tagged (and cached) on
its own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy import sparse
from sklearn.base import BaseEstimator, clone
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, cross_val_predict

from pipeline.classifier import ThemeTagger
from pipeline.evaluate import best_thresholds

NEIGHBOURS = (-2, -1, 1, 2)
NO_TURN_LOGIT = -5.0  # a neighbour before the first or after the last turn: "no theme there"


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def session_features(X: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """Second-stage inputs for the turns of X (whole sessions) from their first-stage `scores`."""
    source, turn = X["source"].to_numpy(), X["turn"].to_numpy()
    logits = pd.DataFrame(
        _logit(scores.to_numpy(dtype=float)),
        index=pd.MultiIndex.from_arrays([source, turn]),
        columns=scores.columns,
    )
    length = np.log1p(X["n_words"].to_numpy(dtype=float))
    session_mean = scores.groupby(source).transform("mean")
    columns: dict[str, np.ndarray] = {"length": length}
    for theme in scores.columns:
        own = logits[theme].to_numpy()
        columns[f"own:{theme}"] = own
        columns[f"own_x_length:{theme}"] = own * length
        columns[f"session:{theme}"] = _logit(session_mean[theme].to_numpy())
    for step in NEIGHBOURS:
        around = logits.reindex(pd.MultiIndex.from_arrays([source, turn + step]))
        for theme in scores.columns:
            columns[f"turn{step:+d}:{theme}"] = around[theme].fillna(NO_TURN_LOGIT).to_numpy()
    return pd.DataFrame(columns, index=X.index)


def shift_to_half(p: np.ndarray, threshold: float) -> np.ndarray:
    """Monotone rescaling of probabilities that maps `threshold` to 0.5 (a shift of the logit)."""
    above, below = p * (1 - threshold), (1 - p) * threshold
    return above / (above + below)


def _fit_and_score(
    model: ThemeTagger, X: pd.DataFrame, Y: pd.DataFrame, train: np.ndarray, test: np.ndarray
) -> np.ndarray:
    return clone(model).fit(X.iloc[train], Y.iloc[train]).predict_proba(X.iloc[test]).to_numpy()


def _fit(model: ThemeTagger, X: pd.DataFrame, Y: pd.DataFrame) -> ThemeTagger:
    return clone(model).fit(X, Y)


class SessionTagger(BaseEstimator):
    """A `ThemeTagger` (first stage) followed by the session-aware second stage.

    It offers what the tag stage uses of a `ThemeTagger` — `themes`, `models_`, `features_`,
    `feature_names`, `feature_matrix`, `contributions_of` (the first stage's words, shown as
    evidence) and `predict_proba` — so either can be the trained model.
    """

    def __init__(
        self,
        turn_model: ThemeTagger | None = None,
        folds: int = 5,
        C: float = 1.0,
        n_process: int = 1,
    ) -> None:
        self.turn_model = turn_model
        self.folds = folds
        self.C = C
        self.n_process = n_process

    @property
    def themes(self) -> tuple[str, ...]:
        return tuple(self.turn_model.themes)

    @property
    def models_(self) -> dict:
        return self.turn_model_.models_

    @property
    def features_(self) -> ColumnTransformer:
        return self.turn_model_.features_

    def fit(self, X: pd.DataFrame, Y: pd.DataFrame) -> SessionTagger:
        """Learn from turn features X (whole sessions) and a 0/1 column per theme in Y."""
        groups = X["source"].to_numpy()
        n_folds = min(self.folds, len(set(groups)))
        folds = list(GroupKFold(n_splits=n_folds).split(X, groups=groups)) if n_folds > 1 else []
        runs = Parallel(n_jobs=self.n_process)(
            [delayed(_fit)(self.turn_model, X, Y)]
            + [delayed(_fit_and_score)(self.turn_model, X, Y, tr, te) for tr, te in folds]
        )
        self.turn_model_: ThemeTagger = runs[0]
        self.stage_models_: dict[str, LogisticRegression] = {}
        self.thresholds_: dict[str, float] = {}
        if not folds:
            return self  # one session: nothing to learn across sessions, first stage only
        first = pd.DataFrame(np.nan, index=X.index, columns=list(self.themes))
        for (_, test), scores in zip(folds, runs[1:], strict=True):
            first.iloc[test] = scores
        inputs = session_features(X, first)
        for theme in self.turn_model_.models_:
            y = Y[theme].to_numpy()
            if any(np.unique(y[train]).size < 2 for train, _ in folds):
                continue  # a fold without both classes: this theme keeps its first-stage score
            model = LogisticRegression(C=self.C, max_iter=2000)
            inner = cross_val_predict(model, inputs, y, cv=folds, method="predict_proba")[:, 1]
            self.thresholds_[theme] = best_thresholds(
                pd.DataFrame({theme: y}), pd.DataFrame({theme: inner})
            )[theme]
            self.stage_models_[theme] = model.fit(inputs, y)
        return self

    def feature_names(self) -> np.ndarray:
        return self.turn_model_.feature_names()

    def feature_matrix(self, X: pd.DataFrame) -> sparse.csr_matrix:
        return self.turn_model_.feature_matrix(X)

    def contributions_of(self, matrix: sparse.csr_matrix, theme: str) -> sparse.csr_matrix:
        return self.turn_model_.contributions_of(matrix, theme)

    def predict_proba(
        self, X: pd.DataFrame, matrix: sparse.csr_matrix | None = None
    ) -> pd.DataFrame:
        """A score in [0, 1] per turn and theme; X holds whole sessions (a turn is read with the
        other turns of its session that are in X). `matrix`: X's `feature_matrix`, if at hand."""
        scores = self.turn_model_.predict_proba(X, matrix)
        if not self.stage_models_ or X.empty:
            return scores
        inputs = session_features(X, scores)
        for theme, model in self.stage_models_.items():
            p = model.predict_proba(inputs)[:, 1]
            scores[theme] = shift_to_half(p, self.thresholds_[theme])
        return scores
