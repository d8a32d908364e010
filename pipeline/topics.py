"""Stage `topics`: BERTopic topics per gemeente and year, offline and reproducible (issue 5).

Contract for the report and notebooks (paths under `paths:` in params.yaml, tables declared in
pipeline/schemas.py; identical inputs and params give byte-identical files):

- `paths.topics` (TopicAssignments): source, turn, sent, topic. One row per unit that was
  modelled; `sent` is -1 when `topics.unit` is turn; topic -1 = HDBSCAN outliers (no topic).
- `paths.topic_info` (TopicInfo): topic, size, label, words (lemmas, ', '-joined),
  overlap_theme (codebook theme id, null for a new topic), overlap_score (0..1),
  overlap_words, overlap_tag_share, is_new, example_1..3 (pseudonymised sentences) with
  example_k_source and example_k_turn.
- `paths.topics_per_gemeente` (TopicsPerGemeente): gemeente, jaar, topic, words (BERTopic's
  `topics_per_class` words for that gemeente and year), size, share (of the units of that
  gemeente and year), label, overlap_theme, overlap_score, is_new.
- `paths.topics_over_time` (TopicsOverTime): period ("2025" or "2025-03-01"), topic, words,
  frequency (BERTopic's `topics_over_time`).
- `paths.topics_meta` (JSON): mode and why, units modelled and left out, units the model was
  fitted on, topics, embedding, seed, library versions.

The model is fitted on each distinct unit (lemma text) once, and a corpus of more than
`topics.fit_sample` distinct units on a seeded sample of that many; repeated units get the topic
of their text, the other units theirs from the fitted model (`BERTopic.transform`), and the topic
words are computed again over all units, so the cost grows linearly with the corpus.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import io
from pipeline.codebook import Codebook, load_codebook
from pipeline.nlp import mask_notes
from pipeline.params import paths, read_params, section
from pipeline.schemas import (
    Sentences,
    Tags,
    Tokens,
    TopicAssignments,
    TopicInfo,
    TopicsOverTime,
    TopicsPerGemeente,
    Turns,
    empty,
)

log = logging.getLogger("buurtlens.topics")

TFIDF_SVD = "tfidf-svd"
MODES = ("auto", "kmeans", "hdbscan")
UNITS = ("sentence", "turn")
N_EXAMPLES = 3
TURN_UNIT_SENT = -1
OUTLIER = -1
OUTLIER_LABEL = "geen onderwerp (uitschieters)"
WORD = re.compile(r"(?u)\b[^\W\d_]{2,}\b")  # letters only, two or more: no digits, no '[PERSOON'
TOKEN_PATTERN = WORD.pattern
LIBRARIES = ("bertopic", "scikit-learn", "umap-learn", "hdbscan", "numpy", "pandas", "plotly")
UNIT_KEYS = ["source", "turn", "sent"]
TRANSFORM_BATCH = 50_000  # units per `transform` call and per batch of embeddings (bounds memory)
UMAP_COMPONENTS = 5
UMAP_MIN_ROWS = UMAP_COMPONENTS + 2  # fewer and UMAP's spectral initialisation fails
DECIMALS = 9  # embeddings equal to this many decimals are the same (BLAS rounding varies by row)


@dataclass(frozen=True)
class TopicsParams:
    """The `topics` section of params.yaml."""

    unit: str = "sentence"
    embedding: str = TFIDF_SVD
    svd_components: int = 100
    mode: str = "auto"
    auto_hdbscan_from: int = 2000
    n_topics: int | None = None
    max_topics: int = 30
    min_topic_size: int = 10
    min_words: int = 3
    top_n_words: int = 10
    over_time: str = "jaar"
    overlap_threshold: float = 0.3
    fit_sample: int | None = 20_000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.fit_sample is not None and self.fit_sample < 2:
            raise ValueError(
                f"params.yaml: topics.fit_sample must be at least 2 or null: {self.fit_sample!r}"
            )
        for name, value, allowed in (
            ("unit", self.unit, UNITS),
            ("mode", self.mode, MODES),
            ("over_time", self.over_time, ("jaar", "datum")),
        ):
            if value not in allowed:
                raise ValueError(f"params.yaml: topics.{name} must be one of {allowed}: {value!r}")


@dataclass(frozen=True)
class Choice:
    """How the topics are clustered, and why (written to topics_meta.json)."""

    mode: str
    n_clusters: int | None
    reason: str


@dataclass(frozen=True)
class Embeddings:
    """The units' embeddings without holding them all (1.2 M units of 100 dimensions are almost a
    gigabyte): the sampled units' as the embedding model's fit gave them, any other unit's
    computed through `transform` when asked, `TRANSFORM_BATCH` at a time."""

    sampled: np.ndarray  # sorted positions of the units the embedding model was fitted on
    vectors: np.ndarray  # their embeddings, in that order
    transform: Callable[[pd.Series], np.ndarray]
    inputs: pd.Series  # what `transform` embeds, one row per unit

    def of(self, positions: np.ndarray) -> np.ndarray:
        """The embeddings of the units at `positions`, in that order."""
        at = np.minimum(np.searchsorted(self.sampled, positions), len(self.sampled) - 1)
        in_sample = self.sampled[at] == positions
        found = np.empty((len(positions), self.vectors.shape[1]), dtype=self.vectors.dtype)
        found[in_sample] = self.vectors[at[in_sample]]
        rest = np.flatnonzero(~in_sample)
        for start in range(0, len(rest), TRANSFORM_BATCH):
            batch = rest[start : start + TRANSFORM_BATCH]
            found[batch] = self.transform(self.inputs.iloc[positions[batch]])
        return found


@dataclass
class TopicFit:
    """A fitted BERTopic model with its units, embeddings, the clustering choice and the
    positions of the units it was fitted on (all of them unless the corpus was sampled)."""

    model: Any
    units: pd.DataFrame
    embeddings: Embeddings
    topics: np.ndarray
    choice: Choice
    fitted: np.ndarray


@functools.cache  # read by the units and by the fit
def load_stop_words() -> frozenset[str]:
    """spaCy's Dutch stop words plus the fillers in resources/topic_stopwoorden.txt."""
    from spacy.lang.nl.stop_words import STOP_WORDS

    text = (
        resources.files("pipeline.resources")
        .joinpath("topic_stopwoorden.txt")
        .read_text(encoding="utf-8")
    )
    extra = {line.split("#")[0].strip() for line in text.splitlines()}
    words = {w.lower() for w in STOP_WORDS} | {w for w in extra if w}
    return frozenset(w for w in words if WORD.fullmatch(w))  # consistent with TOKEN_PATTERN


def build_units(
    sentences: pd.DataFrame,
    tokens: pd.DataFrame,
    turns: pd.DataFrame,
    unit: str,
    stop_words: frozenset[str],
    min_words: int,
) -> pd.DataFrame:
    """One row per unit in a stable order: pseudonymised text, lemma text and turn metadata.

    Units with fewer than `min_words` content lemmas (at least 1) are left out."""
    words = tokens[tokens[Tokens.is_alpha] & ~tokens[Tokens.is_placeholder]]
    lemmas = words[Tokens.lemma].str.lower()
    words = words.assign(lemma=lemmas, content=~lemmas.isin(stop_words) & lemmas.str.len().gt(1))
    sents = sentences.assign(text=sentences[Sentences.text].map(mask_notes))
    if unit == "turn":
        words = words.assign(sent=TURN_UNIT_SENT)
        sents = (
            sents.sort_values(UNIT_KEYS)
            .groupby(["source", "turn"], as_index=False)
            .agg(text=("text", " ".join))
        )
        sents["sent"] = TURN_UNIT_SENT
    lemma_text = (
        words.sort_values([*UNIT_KEYS, Tokens.i])
        .groupby(UNIT_KEYS)
        .agg(lemmas=("lemma", " ".join), n_words=("content", "sum"))
        .reset_index()
    )
    meta = turns[[Turns.source, Turns.turn, Turns.gemeente, Turns.jaar, Turns.datum]]
    units = (
        sents[[*UNIT_KEYS, "text"]]
        .merge(lemma_text, on=UNIT_KEYS, how="inner")
        .merge(meta, on=["source", "turn"], how="inner")
    )
    units["text"] = units["text"].str.split().str.join(" ")
    units = units[units["n_words"] >= max(1, min_words)]
    return units.sort_values(UNIT_KEYS, kind="stable", ignore_index=True)


def kmeans_k(n_units: int, params: TopicsParams) -> int:
    """k for k-means: `n_topics`, or about sqrt(units / 2) in [2, max_topics], at most
    units / min_topic_size (so a tiny corpus gets one or two topics)."""
    if params.n_topics:
        return max(1, min(params.n_topics, n_units))
    k = min(max(2, round(math.sqrt(n_units / 2))), params.max_topics)
    return max(1, min(k, n_units // max(1, params.min_topic_size)))


def choose(n_units: int, params: TopicsParams) -> Choice:
    """Pick the clustering: HDBSCAN for large corpora, k-means for small ones (mode auto)."""
    hdbscan_min = max(2 * params.min_topic_size, 20)
    if params.mode == "hdbscan" and n_units < hdbscan_min:
        return Choice(
            "kmeans",
            kmeans_k(n_units, params),
            f"mode hdbscan asked, but {n_units} units are too few for HDBSCAN "
            f"(needs {hdbscan_min}); k-means used instead",
        )
    if params.mode == "hdbscan":
        return Choice("hdbscan", None, "mode hdbscan set in params.yaml")
    if params.mode == "kmeans":
        return Choice("kmeans", kmeans_k(n_units, params), "mode kmeans set in params.yaml")
    if n_units >= params.auto_hdbscan_from:
        return Choice(
            "hdbscan",
            None,
            f"mode auto: {n_units} units >= auto_hdbscan_from ({params.auto_hdbscan_from}); "
            f"seeded UMAP + HDBSCAN find the topics, merged to at most {params.max_topics}",
        )
    return Choice(
        "kmeans",
        kmeans_k(n_units, params),
        f"mode auto: {n_units} units < auto_hdbscan_from ({params.auto_hdbscan_from}); "
        "HDBSCAN leaves most units of a small corpus as outliers, so k-means with a fixed k",
    )


def topic_vectorizer(stop_words: frozenset[str]) -> Any:
    """The CountVectorizer that turns lemma texts into topic words (Dutch stop words removed)."""
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(stop_words=sorted(stop_words), token_pattern=TOKEN_PATTERN)


def topic_weighting() -> Any:
    """BERTopic's c-TF-IDF with frequent words damped (the same for the fit and the update)."""
    from bertopic.vectorizers import ClassTfidfTransformer

    return ClassTfidfTransformer(reduce_frequent_words=True)


def _encoder(model: Any) -> Any:
    """A BERTopic backend around a sentence-transformers model: normalised float64 vectors."""
    from bertopic.backend import BaseEmbedder

    class Encoder(BaseEmbedder):
        def embed(self, documents: list[str], verbose: bool = False) -> np.ndarray:
            vectors = model.encode(documents, show_progress_bar=False, normalize_embeddings=True)
            return np.asarray(vectors, dtype=np.float64)

    return Encoder(embedding_model=model)


def sample_positions(n_units: int, fit_sample: int | None, seed: int) -> np.ndarray:
    """Positions of the units the model is fitted on: all of them, or a seeded sample of
    `fit_sample` in unit order."""
    if fit_sample is None or n_units <= fit_sample:
        return np.arange(n_units)
    return np.sort(np.random.default_rng(seed).choice(n_units, size=fit_sample, replace=False))


def embed(
    units: pd.DataFrame, fitted: np.ndarray, params: TopicsParams, stop_words: frozenset[str]
) -> tuple[Embeddings, Any]:
    """The units' embeddings and the embedding model BERTopic keeps.

    tfidf-svd: TF-IDF on lemmas + seeded TruncatedSVD + L2 normalisation (scikit-learn only),
    fitted on the units at `fitted`; the others are embedded when asked. Any other value names a
    sentence-transformers model, which embeds the pseudonymised text of every unit at once."""
    if params.embedding != TFIDF_SVD:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise RuntimeError(
                f"topics.embedding is {params.embedding!r}, which needs sentence-transformers "
                "(pip install sentence-transformers; this pulls in PyTorch) and the model in the "
                f"local cache; use '{TFIDF_SVD}' for the light, offline default"
            ) from exc
        encoder = _encoder(SentenceTransformer(params.embedding))
        texts = units["text"]
        every, vectors = np.arange(len(units)), encoder.embed(list(texts))
        return Embeddings(every, vectors, lambda rows: encoder.embed(list(rows)), texts), encoder
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer

    lemmas = units["lemmas"]
    tfidf = TfidfVectorizer(
        stop_words=sorted(stop_words), token_pattern=TOKEN_PATTERN, sublinear_tf=True
    )
    matrix = tfidf.fit_transform(lemmas.iloc[fitted])
    n_components = min(params.svd_components, matrix.shape[1] - 1, len(fitted) - 1)
    if n_components < 1:  # one unit or one word: the normalised TF-IDF is the embedding
        pipe = make_pipeline(tfidf, Normalizer())
        vectors = pipe.fit_transform(lemmas.iloc[fitted]).toarray()
        dense = Embeddings(fitted, vectors, lambda rows: pipe.transform(rows).toarray(), lemmas)
        return dense, pipe
    pipe = make_pipeline(
        tfidf, TruncatedSVD(n_components=n_components, random_state=params.seed), Normalizer()
    )
    return Embeddings(fitted, pipe.fit_transform(lemmas.iloc[fitted]), pipe.transform, lemmas), pipe


def distinct_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the first of each distinct row, in input order, and for every row the
    index of its distinct row among them."""
    _, first, inverse = np.unique(
        np.round(matrix, DECIMALS), axis=0, return_index=True, return_inverse=True
    )
    by_position = np.argsort(first, kind="stable")
    renumber = np.empty_like(by_position)
    renumber[by_position] = np.arange(len(by_position))
    return first[by_position], renumber[inverse.reshape(-1)]


def _bertopic(choice: Choice, params: TopicsParams, embedder: Any, n_units: int, stop_words):
    from bertopic import BERTopic
    from bertopic.dimensionality import BaseDimensionalityReduction

    if choice.mode == "hdbscan":
        from hdbscan import HDBSCAN
        from umap import UMAP

        reducer: Any = UMAP(
            n_neighbors=min(15, n_units - 1),
            n_components=UMAP_COMPONENTS,
            min_dist=0.0,
            metric="cosine",
            random_state=params.seed,  # seeded: deterministic on distinct rows, single-threaded
            n_jobs=1,
        )
        clusterer: Any = HDBSCAN(
            min_cluster_size=params.min_topic_size,
            metric="euclidean",
            cluster_selection_method="eom",
            prediction_data=True,
        )
    else:
        from sklearn.cluster import KMeans

        reducer = BaseDimensionalityReduction()  # k-means on the normalised embeddings
        clusterer = KMeans(n_clusters=choice.n_clusters, n_init=10, random_state=params.seed)
    return BERTopic(
        embedding_model=embedder,
        umap_model=reducer,
        hdbscan_model=clusterer,
        vectorizer_model=topic_vectorizer(stop_words),
        ctfidf_model=topic_weighting(),
        top_n_words=params.top_n_words,
        min_topic_size=params.min_topic_size,
        calculate_probabilities=False,  # full probabilities are slow on large corpora
        nr_topics=params.max_topics if choice.mode == "hdbscan" else None,
        verbose=False,
    )


def fit(units: pd.DataFrame, params: TopicsParams, stop_words: frozenset[str]) -> TopicFit:
    """Fit BERTopic on each distinct unit once (a seeded sample of `fit_sample` of them on a
    large corpus); every other unit gets its topic through `assign_the_others`. HDBSCAN that
    finds fewer than two topics falls back to k-means.

    Repeated units ("dank je wel") count once in the fit: seeded UMAP is not reproducible on
    repeated rows (umap-learn issue #1277: same input and seed, a new layout in every run), and
    copies of one text, all at one point, would be a cluster of their own. They count fully in
    the topics' sizes and words."""
    text_of, _ = pd.factorize(units["lemmas"])  # text ids in order of first appearance
    distinct = np.unique(text_of, return_index=True)[1]  # the first unit of each text
    sampled = distinct[sample_positions(len(distinct), params.fit_sample, params.seed)]
    embeddings, embedder = embed(units, sampled, params, stop_words)
    sampled_vectors = embeddings.of(sampled)
    first, twin = distinct_rows(sampled_vectors)  # different texts with the same embedding
    fitted = sampled[first]
    n = len(fitted)
    choice = choose(n, params)
    if choice.mode == "hdbscan" and n < UMAP_MIN_ROWS:
        k = kmeans_k(n, params)
        choice = Choice(
            "kmeans", k, f"{choice.reason}; {n} distinct units are too few for UMAP, so k-means"
        )
    docs = units["lemmas"].tolist()
    fit_docs = [docs[i] for i in fitted]
    model = _bertopic(choice, params, embedder, n, stop_words)
    topics = np.asarray(model.fit_transform(fit_docs, embeddings=sampled_vectors[first])[0])
    if choice.mode == "hdbscan" and len(set(topics.tolist()) - {OUTLIER}) < 2:
        k = kmeans_k(n, params)
        choice = Choice(
            "kmeans", k, f"{choice.reason}; HDBSCAN found fewer than 2 topics, so k-means (k={k})"
        )
        model = _bertopic(choice, params, embedder, n, stop_words)
        topics = np.asarray(model.fit_transform(fit_docs, embeddings=sampled_vectors[first])[0])
    if n < len(units):
        how = (
            f"fitted on a seeded sample of {len(sampled)} of {len(distinct)} distinct units "
            "(topics.fit_sample)"
            if len(sampled) < len(distinct)
            else f"fitted on the {n} distinct of {len(units)} units"
        )
        choice = Choice(
            choice.mode,
            choice.n_clusters,
            f"{choice.reason}; {how}, the others assigned to the fitted topics",
        )
        topics = assign_the_others(
            model, docs, text_of, embeddings, sampled, topics[twin], params, stop_words
        )
    return TopicFit(model, units, embeddings, topics, choice, fitted)


def assign_the_others(
    model: Any,
    docs: list[str],
    text_of: np.ndarray,
    embeddings: Embeddings,
    sampled: np.ndarray,
    sampled_topics: np.ndarray,
    params: TopicsParams,
    stop_words: frozenset[str],
) -> np.ndarray:
    """Topics of all units: a unit with the text of a sampled unit gets that unit's topic; the
    first unit of every other text gets one from `model.transform` (UMAP's transform +
    HDBSCAN's approximate_predict, or k-means' predict), batch by batch, and shares it with
    the units of its text (`text_of`: the text id of each unit, numbered in order of first
    appearance). Then the topic words and sizes are computed again over all units."""
    topic_of_text = np.full(text_of.max() + 1, OUTLIER - 1, dtype=np.int64)  # below any topic
    topic_of_text[text_of[sampled]] = sampled_topics
    first_unit = np.unique(text_of, return_index=True)[1]
    others = first_unit[topic_of_text < OUTLIER]
    for start in range(0, len(others), TRANSFORM_BATCH):
        batch = others[start : start + TRANSFORM_BATCH]
        predicted = model.transform([docs[i] for i in batch], embeddings=embeddings.of(batch))[0]
        topic_of_text[text_of[batch]] = np.asarray(predicted)
        log.info("assigned %d of %d texts outside the sample", start + len(batch), len(others))
    topics = topic_of_text[text_of]
    bertopic_log = logging.getLogger("BERTopic")
    level = bertopic_log.level
    # BERTopic warns about custom topic lists because of topic reductions after them; none follow
    bertopic_log.setLevel(logging.ERROR)
    try:
        model.update_topics(
            docs,
            topics=topics.tolist(),
            top_n_words=params.top_n_words,
            vectorizer_model=topic_vectorizer(stop_words),
            ctfidf_model=topic_weighting(),
        )
    finally:
        bertopic_log.setLevel(level)
    return topics


def topic_words(model: Any, topic: int) -> list[tuple[str, float]]:
    """The topic's words with their c-TF-IDF weights, without BERTopic's empty padding."""
    return [(w, float(s)) for w, s in (model.get_topic(topic) or []) if w]


def cue_words(codebook: Codebook, stop_words: frozenset[str]) -> dict[str, frozenset[str]]:
    """Per theme the signal words of its phrases and lemma patterns (stop words left out)."""
    cues = {}
    for theme in codebook.themes:
        text = " ".join([*theme.phrases, *(p.replace("|", " ") for p in theme.lemma_patterns)])
        cues[theme.id] = frozenset(w for w in WORD.findall(text.lower()) if w not in stop_words)
    return cues


def tagged_turns(tags: pd.DataFrame) -> dict[str, set[tuple[str, int]]]:
    """Per theme the (source, turn) keys where the tagger decided it."""
    decided = tags[tags[Tags.decided]]
    return {
        theme: set(zip(group[Tags.source], group[Tags.turn].astype(int)))
        for theme, group in decided.groupby(Tags.theme)
    }


def overlap(
    words: list[tuple[str, float]],
    turn_keys: list[tuple[str, int]],
    cues: dict[str, frozenset[str]],
    tagged: dict[str, set[tuple[str, int]]],
    base_rates: dict[str, float],
) -> tuple[str | None, float, str, float]:
    """The codebook theme a topic overlaps most: (theme, score, shared words, tag share).

    score = max(word score, tag lift): the word score is the c-TF-IDF weight of the topic words
    that are the theme's cue words; the tag lift is how much more often than average the
    topic's units sit in turns tagged with the theme ((share - base) / (1 - base), >= 0)."""
    total = sum(w for _, w in words) or 1.0
    best: tuple[str | None, float, str, float] = (None, 0.0, "", 0.0)
    for theme in sorted(cues):
        shared = [w for w, _ in words if w in cues[theme]]
        word_score = sum(s for w, s in words if w in cues[theme]) / total
        keys = tagged.get(theme, set())
        share = sum(k in keys for k in turn_keys) / len(turn_keys) if turn_keys else 0.0
        base = base_rates.get(theme, 0.0)
        lift = max(0.0, (share - base) / (1 - base)) if base < 1 else 0.0
        score = round(min(1.0, max(word_score, lift)), 6)
        if score > best[1]:
            best = (theme, score, ", ".join(shared), round(share, 6))
    return best


def assignments(result: TopicFit) -> pd.DataFrame:
    """The `TopicAssignments` table."""
    table = result.units[UNIT_KEYS].assign(topic=result.topics.astype(int))
    return TopicAssignments.validate(table.reset_index(drop=True))


def _examples(result: TopicFit, topic: int) -> list[tuple[str, str, int]]:
    """The units nearest the topic's centroid (ties: first in unit order)."""
    idx = np.flatnonzero(result.topics == topic)
    vectors = result.embeddings.of(idx)
    centroid = vectors.mean(axis=0)
    norms = np.linalg.norm(vectors, axis=1) * (np.linalg.norm(centroid) or 1.0)
    sims = np.round(vectors @ centroid / np.where(norms == 0, 1.0, norms), 9)
    order = idx[np.lexsort((idx, -sims))][:N_EXAMPLES]
    units = result.units
    return [(units.at[i, "text"], units.at[i, "source"], int(units.at[i, "turn"])) for i in order]


def topic_info(
    result: TopicFit,
    cues: dict[str, frozenset[str]],
    tags: pd.DataFrame,
    threshold: float,
) -> pd.DataFrame:
    """The `TopicInfo` table: words, size, examples and codebook overlap per topic."""
    tagged = tagged_turns(tags)
    keys = list(zip(result.units["source"], result.units["turn"].astype(int)))
    base_rates = {theme: sum(k in hits for k in keys) / len(keys) for theme, hits in tagged.items()}
    rows = []
    for topic in sorted(set(result.topics.tolist())):
        idx = np.flatnonzero(result.topics == topic)
        words = topic_words(result.model, topic)
        theme, score, shared, share = overlap(
            words, [keys[i] for i in idx], cues, tagged, base_rates
        )
        if topic == OUTLIER:
            theme, score, shared, share = None, 0.0, "", 0.0
        marked = theme if score >= threshold else None
        row: dict[str, Any] = {
            "topic": topic,
            "size": len(idx),
            "label": OUTLIER_LABEL if topic == OUTLIER else ", ".join(w for w, _ in words[:4]),
            "words": ", ".join(w for w, _ in words),
            "overlap_theme": marked,
            "overlap_score": score,
            "overlap_words": shared if marked else "",
            "overlap_tag_share": share if marked else 0.0,
            "is_new": topic != OUTLIER and marked is None,
        }
        examples = _examples(result, topic)
        for k in range(N_EXAMPLES):
            text, source, turn = examples[k] if k < len(examples) else ("", "", 0)
            row |= {
                f"example_{k + 1}": text,
                f"example_{k + 1}_source": source,
                f"example_{k + 1}_turn": turn,
            }
        rows.append(row)
    columns = list(TopicInfo.to_schema().columns)
    return TopicInfo.validate(pd.DataFrame(rows, columns=columns))


def per_gemeente(result: TopicFit, info: pd.DataFrame) -> pd.DataFrame:
    """BERTopic's `topics_per_class` with gemeente and jaar as the class."""
    units = result.units
    classes = [f"{g}\t{j}" for g, j in zip(units["gemeente"], units["jaar"])]
    raw = result.model.topics_per_class(list(units["lemmas"]), classes=classes)
    split = raw["Class"].str.split("\t", n=1, expand=True)
    table = pd.DataFrame(
        {
            "gemeente": split[0],
            "jaar": split[1].astype(int),
            "topic": raw["Topic"].astype(int),
            "words": raw["Words"].astype(str),
            "size": raw["Frequency"].astype(int),
        }
    )
    totals = table.groupby(["gemeente", "jaar"])["size"].transform("sum")
    table["share"] = (table["size"] / totals).round(6)
    marks = info[["topic", "label", "overlap_theme", "overlap_score", "is_new"]]
    table = table.merge(marks, on="topic", how="left")
    table = table.sort_values(["gemeente", "jaar", "topic"], ignore_index=True)
    return TopicsPerGemeente.validate(table)


def over_time(result: TopicFit, step: str) -> pd.DataFrame:
    """BERTopic's `topics_over_time`, per jaar or per datum."""
    units = result.units
    if step == "jaar":
        stamps: list[Any] = [int(j) for j in units["jaar"]]
        raw = result.model.topics_over_time(list(units["lemmas"]), stamps)
        period = raw["Timestamp"].astype(int).astype(str)
    else:  # as yyyymmdd numbers: BERTopic's own date parsing fails on pandas 3
        stamps = [int(d.replace("-", "")) for d in units["datum"]]
        raw = result.model.topics_over_time(list(units["lemmas"]), stamps)
        digits = raw["Timestamp"].astype(int).astype(str)
        period = digits.str[:4] + "-" + digits.str[4:6] + "-" + digits.str[6:]
    table = pd.DataFrame(
        {
            "period": period,
            "topic": raw["Topic"].astype(int),
            "words": raw["Words"].astype(str),
            "frequency": raw["Frequency"].astype(int),
        }
    )
    return TopicsOverTime.validate(table.sort_values(["period", "topic"], ignore_index=True))


def empty_outputs() -> dict[str, pd.DataFrame]:
    """Schema-valid empty tables, for a corpus too small to model."""
    frames = {}
    for name, model in (
        ("topics", TopicAssignments),
        ("topic_info", TopicInfo),
        ("topics_per_gemeente", TopicsPerGemeente),
        ("topics_over_time", TopicsOverTime),
    ):
        schema = model.to_schema()
        frame = pd.DataFrame(
            {c: pd.Series(dtype=str(col.dtype)) for c, col in schema.columns.items()}
        )
        frames[name] = model.validate(frame)
    return frames


def versions() -> dict[str, str]:
    """Versions of the libraries that shape the topics."""
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def run(
    sentences: pd.DataFrame,
    tokens: pd.DataFrame,
    turns: pd.DataFrame,
    tags: pd.DataFrame,
    codebook: Codebook,
    params: TopicsParams,
) -> tuple[dict[str, pd.DataFrame], dict[str, Any], TopicFit | None]:
    """All topic tables and the metadata, from the stage inputs (no I/O)."""
    stop_words = load_stop_words()
    units = build_units(sentences, tokens, turns, params.unit, stop_words, params.min_words)
    n_all = len(sentences) if params.unit == "sentence" else len(turns)
    return model_units(units, n_all, tags, codebook, params)


def model_units(
    units: pd.DataFrame, n_all: int, tags: pd.DataFrame, codebook: Codebook, params: TopicsParams
) -> tuple[dict[str, pd.DataFrame], dict[str, Any], TopicFit | None]:
    """`run` from the `build_units` of the inputs (`n_all`: the number of units before those with
    too few content lemmas were left out)."""
    stop_words = load_stop_words()
    meta: dict[str, Any] = {
        "unit": params.unit,
        "n_units": len(units),
        "n_units_left_out": int(n_all - len(units)),
        "left_out_because": f"fewer than {max(1, params.min_words)} content lemmas",
        "embedding": params.embedding,
        "seed": params.seed,
        "codebook_version": codebook.version,
        "codebook_digest": codebook.digest,
        "params": asdict(params),
        "versions": versions(),
    }
    if len(units) < 2:
        meta |= {"mode": "none", "reason": f"{len(units)} unit(s): too few to model", "n_topics": 0}
        frames = empty_outputs()
        frames["topics"] = TopicAssignments.validate(
            units[UNIT_KEYS].assign(topic=OUTLIER).reset_index(drop=True)
        )
        return frames, meta, None
    result = fit(units, params, stop_words)
    info = topic_info(result, cue_words(codebook, stop_words), tags, params.overlap_threshold)
    frames = {
        "topics": assignments(result),
        "topic_info": info,
        "topics_per_gemeente": per_gemeente(result, info),
        "topics_over_time": over_time(result, params.over_time),
    }
    real = info[info["topic"] != OUTLIER]
    meta |= {
        "mode": result.choice.mode,
        "reason": result.choice.reason,
        "n_units_fitted": len(result.fitted),
        "n_clusters": result.choice.n_clusters,
        "n_topics": len(real),
        "n_outliers": int((result.topics == OUTLIER).sum()),
        "n_new_topics": int(real["is_new"].sum()),
        "over_time": params.over_time,
    }
    return frames, meta, result


# The columns the stage uses: it never holds the whole tokens table
TOKEN_COLUMNS = [*UNIT_KEYS, Tokens.i, Tokens.lemma, Tokens.is_alpha, Tokens.is_placeholder]
SENTENCE_COLUMNS = [*UNIT_KEYS, Sentences.text]
TURN_COLUMNS = [Turns.source, Turns.turn, Turns.gemeente, Turns.jaar, Turns.datum]
TAG_COLUMNS = [Tags.source, Tags.turn, Tags.theme, Tags.decided]
SOURCES_PER_READ = 250  # about 600,000 token rows at 2,000 words per transcript


def _read_tags(p: Any) -> pd.DataFrame:
    """Tags are optional: without them overlap uses shared words only."""
    if Path(p.tags).exists():
        return io.read_table(p.tags, Tags, TAG_COLUMNS)
    return pd.DataFrame(columns=TAG_COLUMNS).astype({"decided": bool})


def read_units(
    p: Any, params: TopicsParams, sources_per_read: int = SOURCES_PER_READ
) -> tuple[pd.DataFrame, int, pd.DataFrame]:
    """The units of the stage inputs, their number before the short ones were left out, and
    the tags. The sentences and tokens are read `sources_per_read` sources at a time (a range
    of source names: the tables are in source order, so Parquet skips the other row groups),
    and of the tokens only the columns and words `build_units` uses: the stage never holds
    the corpus's tokens, only its units."""
    turns = io.read_table(p.turns, Turns, TURN_COLUMNS)
    sources = np.sort(turns[Turns.source].unique())
    words = [(Tokens.is_alpha, "==", True), (Tokens.is_placeholder, "==", False)]
    stop_words = load_stop_words()
    parts, n_sentences = [], 0
    for start in range(0, len(sources), sources_per_read):
        chunk = sources[start : start + sources_per_read]
        in_chunk = [(Turns.source, ">=", chunk[0]), (Turns.source, "<=", chunk[-1])]
        sentences = io.read_table(p.sentences, Sentences, SENTENCE_COLUMNS, in_chunk)
        tokens = io.read_table(p.tokens, Tokens, TOKEN_COLUMNS, in_chunk + words)
        chunk_turns = turns[turns[Turns.source].isin(chunk)]
        parts.append(
            build_units(sentences, tokens, chunk_turns, params.unit, stop_words, params.min_words)
        )
        n_sentences += len(sentences)
        log.info("units of %d of %d sources built", start + len(chunk), len(sources))
    if not parts:  # a corpus without turns
        no_rows = (empty(Sentences)[SENTENCE_COLUMNS], empty(Tokens)[TOKEN_COLUMNS])
        parts.append(build_units(*no_rows, turns, params.unit, stop_words, params.min_words))
    units = pd.concat(parts, ignore_index=True)
    units = units.sort_values(UNIT_KEYS, kind="stable", ignore_index=True)
    return units, n_sentences if params.unit == "sentence" else len(turns), _read_tags(p)


def fit_from_files(root: Path | None = None):
    """The stage computation on the inputs of the project at `root` (for notebooks): tables,
    metadata and the fitted model, identical to what the stage writes."""
    params = read_params(root / "params.yaml") if root else read_params()
    p = paths(params, root) if root else paths(params)
    cfg = section(TopicsParams, params.get("topics"))
    return model_units(*read_units(p, cfg), load_codebook(p.codebook), cfg)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    params = read_params()
    p = paths(params)
    cfg = section(TopicsParams, params.get("topics"))
    frames, meta, _ = model_units(*read_units(p, cfg), load_codebook(p.codebook), cfg)
    for name, frame in frames.items():
        io.write_parquet(frame, getattr(p, name))
    io.write_json(meta, p.topics_meta)
    log.info(
        "%d %ss -> %d topics (%d new) with %s: %s",
        meta["n_units"],
        meta["unit"],
        meta["n_topics"],
        meta.get("n_new_topics", 0),
        meta["mode"],
        meta["reason"],
    )


if __name__ == "__main__":
    main()
