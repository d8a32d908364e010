"""Honest evaluation of the tagger: cross-validation grouped by session, per-theme agreement."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score, f1_score, precision_score, recall_score
from sklearn.model_selection import GroupKFold

from pipeline.classifier import ThemeTagger


def theme_metrics(truth: np.ndarray, decided: np.ndarray) -> dict[str, float]:
    """Precision, recall, F1 and Cohen's kappa of one theme's decisions against human coding."""
    truth, decided = np.asarray(truth, dtype=int), np.asarray(decided, dtype=int)
    same = truth.min() == truth.max() == decided.min() == decided.max()
    return {
        "precision": round(float(precision_score(truth, decided, zero_division=0)), 4),
        "recall": round(float(recall_score(truth, decided, zero_division=0)), 4),
        "f1": round(float(f1_score(truth, decided, zero_division=0)), 4),
        "kappa": 1.0 if same else round(float(cohen_kappa_score(truth, decided)), 4),
        "support": int(truth.sum()),
        "predicted": int(decided.sum()),
    }


def agreement_table(
    truth: pd.DataFrame, scores: pd.DataFrame, thresholds: dict[str, float]
) -> dict[str, dict[str, float]]:
    """Per-theme metrics of `scores >= threshold` against the 0/1 columns of `truth`."""
    return {t: theme_metrics(truth[t], scores[t] >= thresholds[t]) for t in scores.columns}


def macro_f1(table: dict[str, dict[str, float]]) -> float:
    return round(float(np.mean([m["f1"] for m in table.values()])), 4)


def out_of_fold_scores(
    X: pd.DataFrame,
    Y: pd.DataFrame,
    groups: pd.Series,
    make_tagger: Callable[[], ThemeTagger],
    n_splits: int,
) -> pd.DataFrame:
    """Scores for every turn from a model that never saw the turn's group (session)."""
    n_splits = min(n_splits, groups.nunique())
    scores = pd.DataFrame(index=X.index, columns=Y.columns, dtype=float)
    for train, test in GroupKFold(n_splits=n_splits).split(X, groups=groups):
        tagger = make_tagger().fit(X.iloc[train], Y.iloc[train])
        scores.iloc[test] = tagger.predict_proba(X.iloc[test]).to_numpy()
    return scores


def best_thresholds(truth: pd.DataFrame, scores: pd.DataFrame) -> dict[str, float]:
    """The F1-maximising threshold per theme on out-of-fold scores (a suggestion for params)."""
    grid = np.round(np.arange(0.2, 0.81, 0.025), 3)
    return {
        t: float(max(grid, key=lambda g: f1_score(truth[t], scores[t] >= g, zero_division=0)))
        for t in scores.columns
    }
