"""The learned part of the tagger: one logistic regression per theme over lemma and word
n-grams, character n-grams, matched codebook cues, the speaker's role, and the lemmas of the
neighbouring turns, shaped like a scikit-learn estimator."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

RULE_ONLY_HIT_SCORE = 0.5  # a theme nobody has annotated yet: each hit halves the distance to 1


def _identity(values: list[str]) -> list[str]:
    return values


def _log_length(frame: pd.DataFrame) -> np.ndarray:
    return np.log1p(frame.to_numpy(dtype=float))


class CueSet(TransformerMixin, BaseEstimator):
    """0/1 per matched codebook cue ("theme:cue"); no cue in the training turns: one
    column of zeros."""

    def fit(self, X: pd.Series, y: object = None) -> CueSet:
        vectorizer = CountVectorizer(analyzer=_identity, binary=True)
        try:
            self.vectorizer_: CountVectorizer | None = vectorizer.fit(X)
        except ValueError:  # empty vocabulary
            self.vectorizer_ = None
        return self

    def transform(self, X: pd.Series) -> sparse.csr_matrix:
        if self.vectorizer_ is None:
            return sparse.csr_matrix((len(X), 1))  # ColumnTransformer refuses zero columns
        return self.vectorizer_.transform(X)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        if self.vectorizer_ is None:
            return np.array(["(none)"], dtype=object)
        return self.vectorizer_.get_feature_names_out()


class NeighbourLemmas(TransformerMixin, BaseEstimator):
    """Tf-idf of a neighbouring turn's lemmas, each row weighted `weight / log2(2 + n_words)`.

    Input: a frame with the neighbour's lemmas (first column) and the turn's own `n_words`. A short
    turn ("ja, precies", "allebei een beetje") is read through what surrounds it; a long turn
    mostly speaks for itself. No neighbour, or no vocabulary: one column of zeros.
    """

    def __init__(self, min_df: int = 2, weight: float = 1.5) -> None:
        self.min_df = min_df
        self.weight = weight

    def fit(self, X: pd.DataFrame, y: object = None) -> NeighbourLemmas:
        self.column_ = str(X.columns[0])
        vectorizer = TfidfVectorizer(min_df=self.min_df, sublinear_tf=True, token_pattern=r"\S+")
        try:
            self.vectorizer_: TfidfVectorizer | None = vectorizer.fit(X.iloc[:, 0])
        except ValueError:  # empty vocabulary: a single turn, or no neighbours at all
            self.vectorizer_ = None
        return self

    def transform(self, X: pd.DataFrame) -> sparse.csr_matrix:
        if self.vectorizer_ is None:
            return sparse.csr_matrix((len(X), 1))  # ColumnTransformer refuses zero columns
        rows = self.weight / np.log2(2.0 + X["n_words"].to_numpy(dtype=float))
        return sparse.diags(rows) @ self.vectorizer_.transform(X.iloc[:, 0]).tocsr()

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        if self.vectorizer_ is None:
            return np.array(["(none)"], dtype=object)
        return self.vectorizer_.get_feature_names_out()


def _forget_object_ids(features: ColumnTransformer) -> None:
    """Drop the `id(stop_words)` that scikit-learn's word vectorizers keep after building their
    analyser: a memory address, different in every process, so the same training gave a
    different model file. Without it a vectorizer only checks its (absent) stop words again."""
    for _, transformer, _ in features.transformers_:
        for vectorizer in (transformer, getattr(transformer, "vectorizer_", None)):
            if hasattr(vectorizer, "_stop_words_id"):
                del vectorizer._stop_words_id


class ThemeTagger(BaseEstimator):
    """Scores each turn for each theme in [0, 1].

    Themes with annotated examples get a logistic regression (balanced classes) on shared
    features; a theme without any positive example falls back to its codebook cues alone.
    """

    def __init__(
        self,
        themes: tuple[str, ...] = (),
        C: float = 16.0,
        min_df: int = 2,
        char_ngrams: tuple[int, int] = (3, 5),
        lemma_weight: float = 1.5,
        cue_weight: float = 1.0,
        context_weight: float = 1.5,
        random_state: int = 0,
    ) -> None:
        self.themes = themes
        self.C = C
        self.min_df = min_df
        self.char_ngrams = char_ngrams
        self.lemma_weight = lemma_weight
        self.cue_weight = cue_weight
        self.context_weight = context_weight
        self.random_state = random_state

    def _features(self) -> ColumnTransformer:
        def ngrams() -> TfidfVectorizer:
            return TfidfVectorizer(
                ngram_range=(1, 2), min_df=self.min_df, sublinear_tf=True, token_pattern=r"\S+"
            )

        parts = [
            ("lemmas", ngrams(), "lemmas"),
            ("words", ngrams(), "lower"),  # surface forms: the lemmatiser may be the fallback one
            (
                "chars",
                TfidfVectorizer(
                    analyzer="char_wb",
                    ngram_range=tuple(self.char_ngrams),
                    min_df=self.min_df,
                    sublinear_tf=True,
                    max_features=60000,
                ),
                "lower",
            ),
            ("cues", CueSet(), "cues"),
            ("role", OneHotEncoder(handle_unknown="ignore"), ["role"]),
            (
                "length",
                FunctionTransformer(_log_length, feature_names_out="one-to-one"),
                ["n_words"],
            ),
        ]
        if self.context_weight:
            for side in ("prev", "next"):
                context = NeighbourLemmas(self.min_df, self.context_weight)
                parts.append((side, context, [f"{side}_lemmas", "n_words"]))
        return ColumnTransformer(
            parts,
            transformer_weights={"lemmas": self.lemma_weight, "cues": self.cue_weight},
        )

    def fit(self, X: pd.DataFrame, Y: pd.DataFrame) -> ThemeTagger:
        """Learn from turn features X and a 0/1 column per theme in Y."""
        self.features_ = self._features().fit(X)
        matrix = sparse.csr_matrix(self.features_.transform(X))
        _forget_object_ids(self.features_)
        self.models_: dict[str, LogisticRegression] = {}
        for theme in self.themes:
            y = Y[theme].to_numpy() if theme in Y else np.zeros(len(X), dtype=int)
            if y.min() == y.max():
                continue  # no examples of one class: rules only
            model = LogisticRegression(
                C=self.C,
                class_weight="balanced",
                solver="liblinear",
                dual=True,  # many more features than turns: the dual is ~15x faster, same optimum
                max_iter=5000,
                random_state=self.random_state,
            )
            self.models_[theme] = model.fit(matrix, y)
        return self

    def feature_matrix(self, X: pd.DataFrame) -> sparse.csr_matrix:
        """The model inputs of X as features, one row per turn (a row depends only on its turn)."""
        return sparse.csr_matrix(self.features_.transform(X))

    def predict_proba(
        self, X: pd.DataFrame, matrix: sparse.csr_matrix | None = None
    ) -> pd.DataFrame:
        """A score in [0, 1] per turn (rows) and theme (columns); `matrix` is X's
        `feature_matrix` when the caller has it already."""
        if matrix is None and len(X):
            matrix = self.feature_matrix(X)
        scores = {}
        for theme in self.themes:
            if theme in self.models_ and matrix is not None:
                scores[theme] = self.models_[theme].predict_proba(matrix)[:, 1]
            else:
                hits = np.array(
                    [sum(c.startswith(theme + ":") for c in cues) for cues in X["cues"]],
                    dtype=float,
                )
                scores[theme] = 1 - (1 - RULE_ONLY_HIT_SCORE) ** hits
        return pd.DataFrame(scores, index=X.index, columns=list(self.themes))

    def feature_names(self) -> np.ndarray:
        """The names of `feature_matrix`'s columns, worked out once per process: scikit-learn
        builds them anew on every call (a fifth of a second for 180,000 features)."""
        if "_feature_names" not in self.__dict__:
            self._feature_names = self.features_.get_feature_names_out()
        return self._feature_names

    def __getstate__(self) -> dict:
        # the names are rebuilt on demand: not part of the model file, nor of what a worker is sent
        state = super().__getstate__()
        return {k: v for k, v in state.items() if k != "_feature_names"}

    def contributions(self, X: pd.DataFrame, theme: str) -> tuple[sparse.csr_matrix, np.ndarray]:
        """Per-feature contributions (value x weight) to `theme` and the feature names."""
        contrib = self.contributions_of(self.feature_matrix(X), theme)
        return contrib, self.feature_names()

    def contributions_of(self, matrix: sparse.csr_matrix, theme: str) -> sparse.csr_matrix:
        """Per-feature contributions (value x weight) to `theme` of a `feature_matrix`."""
        return matrix.multiply(self.models_[theme].coef_.ravel()).tocsr()
