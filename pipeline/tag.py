"""Stage `tag`: score every turn for every codebook theme, decide, and keep the evidence."""

from __future__ import annotations

import functools
import json
import logging
import pickle
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy import sparse

from pipeline import cache, io, schemas
from pipeline.classifier import ThemeTagger
from pipeline.codebook import Codebook, load_codebook
from pipeline.features import turn_features
from pipeline.parallel import fork_pool
from pipeline.params import TagParams, paths, read_params, section
from pipeline.schemas import Evidence, Tags, Tokens, Turns
from pipeline.session_model import SessionTagger

log = logging.getLogger("buurtlens.tag")

THEMES_SEPARATOR = ";"
BATCH_TURNS = 5000  # turns tagged (and, in `tag_folder`, analysed) together
TAGS_ORDER = ["source", "turn", "theme"]  # the order of the tables
EVIDENCE_ORDER = ["source", "turn", "theme", "kind", "start"]
ROWS_PER_GROUP = 50_000  # tags rows per row group of the written tables (whole sources)
T = TypeVar("T")


@dataclass(frozen=True)
class TrainedModel:
    """What `train` saves: the fitted tagger and the codebook it was trained with."""

    tagger: ThemeTagger | SessionTagger
    codebook_digest: str
    codebook_version: str
    fingerprint: str = ""  # digest of what it was trained from (the `train` cache key)


def save_model(model: TrainedModel, path: Path) -> None:
    """A plain pickle: joblib's pure-Python unpickler took 1.3 s to load it, pickle's 0.02 s
    (the model holds vocabularies, not large arrays, where joblib would pay)."""
    # Pickled after one round trip: unpickling interns attribute names, and pickle writes a string
    # once per object, so a model read back from train's cache gave other bytes than a fresh fit.
    read_back = pickle.loads(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    io.write_bytes(pickle.dumps(read_back, protocol=pickle.HIGHEST_PROTOCOL), path)


def load_model(path: Path) -> TrainedModel:
    with open(path, "rb") as fh:
        return pickle.load(fh)


@functools.lru_cache(maxsize=2)
def cue_matcher(codebook: Codebook) -> Any:
    """The codebook's compiled `CueMatcher`, built once per process (a third of a second; tagging
    used to build it again for every batch of turns)."""
    # imported here: spaCy (for the matcher) takes most of a second to import, and a run that
    # finds every source in the cache, or tags in forked workers, needs none in the parent
    from pipeline.rules import CueMatcher

    return CueMatcher(codebook)


def compute_features(
    turns: pd.DataFrame, tokens: pd.DataFrame, codebook: Codebook
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cue hits for every turn, and the model inputs built from tokens and hits."""
    from pipeline.rules import find_hits

    matcher = cue_matcher(codebook)
    texts = dict(zip(zip(turns[Turns.source], turns[Turns.turn]), turns[Turns.text], strict=True))
    hits = find_hits(tokens, matcher, texts)
    return turn_features(turns, tokens, hits), hits


def decide(
    features: pd.DataFrame,
    hits: pd.DataFrame,
    tagger: ThemeTagger,
    params: TagParams,
    matrix: sparse.csr_matrix | None = None,
) -> pd.DataFrame:
    """The `Tags` table: score, decision and number of cue hits per turn and theme (`matrix`:
    the features' `feature_matrix`, when the caller has it already)."""
    scores = tagger.predict_proba(features, matrix)
    hit_counts = hits.groupby(["source", "turn", "theme"]).size()
    frames = []
    for theme in tagger.themes:
        keys = pd.MultiIndex.from_arrays(
            [features["source"], features["turn"], [theme] * len(features)]
        )
        frames.append(
            pd.DataFrame(
                {
                    "source": features["source"].to_numpy(),
                    "turn": features["turn"].to_numpy(),
                    "theme": theme,
                    "score": scores[theme].clip(0, 1).round(6).to_numpy(),
                    "decided": (scores[theme] >= params.threshold(theme)).to_numpy(),
                    "rule_hits": hit_counts.reindex(keys, fill_value=0).to_numpy().astype(int),
                }
            )
        )
    tags = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=list(Tags.to_schema().columns))
    )
    return Tags.validate(tags.sort_values(TAGS_ORDER, ignore_index=True))


def _locate(lemmas: list[str], ngram: list[str]) -> int | None:
    n = len(ngram)
    return next((k for k in range(len(lemmas) - n + 1) if lemmas[k : k + n] == ngram), None)


def evidence(
    tags: pd.DataFrame,
    features: pd.DataFrame,
    hits: pd.DataFrame,
    tokens: pd.DataFrame,
    texts: dict[tuple[str, int], str],
    tagger: ThemeTagger,
    per_theme: int,
    matrix: sparse.csr_matrix | None = None,
) -> pd.DataFrame:
    """Evidence for every decided (turn, theme): its codebook cues and its strongest learned
    words or phrases, each with offsets into the turn text (`matrix` as in `decide`)."""
    decided = tags[tags["decided"]]
    rows: list[tuple] = []
    decided_keys = set(zip(decided["source"], decided["turn"], decided["theme"]))
    for hit in hits.itertuples(index=False):
        if (hit.source, hit.turn, hit.theme) in decided_keys:
            rows.append(
                (
                    hit.source,
                    hit.turn,
                    hit.theme,
                    "regel",
                    hit.cue,
                    hit.start,
                    hit.end,
                    hit.text,
                    1.0,
                )
            )
    words_of = _words_by_turn(tokens)
    index = {key: pos for pos, key in enumerate(zip(features["source"], features["turn"]))}
    learned = decided[decided["theme"].isin(list(tagger.models_))]
    # One transform for every decided turn: rows do not depend on each other.
    positions = sorted({index[key] for key in zip(learned["source"], learned["turn"])})
    if positions:
        matrix = matrix[positions] if matrix is not None else None
        matrix = matrix if matrix is not None else tagger.feature_matrix(features.iloc[positions])
    row_of = {features_row: r for r, features_row in enumerate(positions)}
    names = tagger.feature_names() if positions else None
    for theme in tagger.themes:
        if theme not in tagger.models_:
            continue
        chosen = decided[decided["theme"] == theme]
        if chosen.empty:
            continue
        keys = list(zip(chosen["source"], chosen["turn"]))
        contrib = tagger.contributions_of(matrix[[row_of[index[key]] for key in keys]], theme)
        for r, (source, turn) in enumerate(keys):
            weights = contrib.data[contrib.indptr[r] : contrib.indptr[r + 1]]
            columns = contrib.indices[contrib.indptr[r] : contrib.indptr[r + 1]]
            order = weights.argsort()[::-1]
            lemmas, starts, ends = words_of(source, turn)
            shown = 0
            for k in order:
                if shown >= per_theme or weights[k] <= 0:
                    break
                name = names[columns[k]]
                if not name.startswith("lemmas__"):
                    continue
                ngram = name.removeprefix("lemmas__").split()
                at = _locate(lemmas, ngram)
                if at is None:
                    continue
                start, end = starts[at], ends[at + len(ngram) - 1]
                rows.append(
                    (
                        source,
                        turn,
                        theme,
                        "model",
                        " ".join(ngram),
                        start,
                        end,
                        texts[(source, turn)][start:end],
                        round(float(weights[k]), 6),
                    )
                )
                shown += 1
    columns = list(Evidence.to_schema().columns)
    frame = pd.DataFrame(rows, columns=columns)
    frame = frame.astype({"turn": "int64", "start": "int64", "end": "int64", "weight": "float64"})
    return Evidence.validate(frame.sort_values(EVIDENCE_ORDER, ignore_index=True))


def _words_by_turn(
    tokens: pd.DataFrame,
) -> Callable[[str, int], tuple[list[str], list[int], list[int]]]:
    """Lemmas (pseudonyms as "persoon"), starts and ends of a turn's words, looked up lazily:
    only the decided turns need them."""
    words = tokens[~tokens[Tokens.is_punct]]
    lemma = words[Tokens.lemma].where(~words[Tokens.is_placeholder], "persoon").to_numpy()
    start = words[Tokens.start].to_numpy()
    end = words[Tokens.end].to_numpy()
    positions = words.groupby([Tokens.source, Tokens.turn], sort=False).indices

    def of(source: str, turn: int) -> tuple[list[str], list[int], list[int]]:
        at = positions.get((source, turn))
        if at is None:
            return [], [], []
        return lemma[at].tolist(), start[at].tolist(), end[at].tolist()

    return of


def tag_corpus(
    turns: pd.DataFrame,
    tokens: pd.DataFrame,
    codebook: Codebook,
    model: TrainedModel,
    params: TagParams,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tags and evidence for every turn."""
    if model.codebook_digest != codebook.digest:
        raise ValueError(
            "the trained model was made with another codebook; run `dvc repro` (stage train) first"
        )
    features, hits = compute_features(turns, tokens, codebook)
    matrix = model.tagger.feature_matrix(features) if len(features) else None  # once, for both
    tags = decide(features, hits, model.tagger, params, matrix)
    texts = dict(zip(zip(turns[Turns.source], turns[Turns.turn]), turns[Turns.text], strict=True))
    ev = evidence(
        tags, features, hits, tokens, texts, model.tagger, params.evidence_per_theme, matrix
    )
    return tags, ev


# The modules whose code decides a source's tags and evidence (part of the cache salt).
TAG_CODE = (
    "tag.py", "rules.py", "features.py", "classifier.py", "session_model.py", "codebook.py",
    "schemas.py", "cpu.py",
)


def cache_salt(model: TrainedModel, codebook: Codebook, params: TagParams) -> str:
    """What every source's tags depend on besides its turns and tokens. The model counts by its
    fingerprint (what it was trained from): its pickled bytes may differ between saves."""
    fingerprint = model.fingerprint or cache.digest(pickle.dumps(model))
    tagging = {k: v for k, v in asdict(params).items() if k != "n_process"}  # same result
    settings = {"model": fingerprint, "codebook": codebook.digest, "tag": tagging}
    return cache.salt("tag", TAG_CODE, settings, packages=("scikit-learn", "spacy"))


_TAGGING: dict[str, Any] = {}  # what forked workers tag with (set before the pool starts)


def _tag_batch(batch: tuple[pd.DataFrame, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    return tag_corpus(*batch, **_TAGGING)


class TokensNotRead(LookupError):
    """A source's cache entry, expected (it came without tokens) or just stored, was unreadable."""


Tagged = tuple[str, pa.Table, pa.Table]  # a source, its tags and its evidence (cache entries)
# a source, its turns, its tokens (None when expected in the cache) and the digest of both
Source = tuple[str, pd.DataFrame, pd.DataFrame | None, str]
NO_ROWS = pa.table({})  # the entry of a source without evidence


def tagged_sources(
    sources: Iterable[Source],
    codebook: Codebook,
    model: TrainedModel,
    params: TagParams,
    store: cache.SourceCache,
    batch_turns: int = BATCH_TURNS,
) -> Iterator[Tagged]:
    """Tags and evidence of every (source, turns, tokens, digest of both), one source at a time
    in source order (see `joined_by_source` and `stage_sources`; tokens are None for a source
    expected in the `store`).

    A source whose turns and tokens have a `store` entry is not tagged again, the others are
    tagged in batches of about `batch_turns` turns (a turn's features use only its own source),
    over `params.n_process` processes with at most two batches per process in flight, and put in
    the `store`. The entries are handed out one by one as read back from the `store`, while the
    last batches are still being tagged (a source of a batch in flight waits for it): with a
    store on disk no more than the batches in flight and one entry are in memory, whatever the
    number of sources. An unreadable entry raises `TokensNotRead`.
    """
    _TAGGING.update(codebook=codebook, model=model, params=params)
    keys: list[tuple[str, str]] = []  # (source, key) per source, in the order given
    pending: list[tuple[str, str, pd.DataFrame, pd.DataFrame]] = []
    in_flight: deque[tuple[list, Future]] = deque()
    being_tagged: set[str] = set()  # keys of the batches in flight

    def keep(batch: list, tagged: tuple[pd.DataFrame, pd.DataFrame]) -> None:
        tags_of, ev_of = (dict(cache.arrow_groups(f, "source")) for f in tagged)
        for key, source, _, _ in batch:
            store.put(key, (tags_of.get(source, NO_ROWS), ev_of.get(source, NO_ROWS)))
            being_tagged.discard(key)

    def keep_oldest() -> None:
        done, future = in_flight.popleft()
        keep(done, future.result())

    def flush(pool: ProcessPoolExecutor | None) -> None:
        batch = list(pending)
        pending.clear()
        turns = pd.concat([t for *_, t, _ in batch], ignore_index=True)
        tokens = pd.concat([k for *_, k in batch], ignore_index=True)
        if pool is None:
            keep(batch, _tag_batch((turns, tokens)))
            return
        in_flight.append((batch, pool.submit(_tag_batch, (turns, tokens))))
        being_tagged.update(key for key, *_ in batch)
        while len(in_flight) > 2 * params.n_process:
            keep_oldest()

    with fork_pool(params.n_process) as pool:
        for source, turns, tokens, digest in sources:
            key = store.key(source, digest)
            keys.append((source, key))
            # without tokens the entry is expected: it is read once, when it is handed out
            if tokens is None or store.get(key) is not None:
                continue
            pending.append((key, source, turns, tokens))
            # an idle pool gets work at once: after adding one transcript it is tagged
            # while the other sources are still being read
            idle = pool is not None and not in_flight
            if idle or sum(len(t) for *_, t, _ in pending) >= batch_turns:
                flush(pool)
        if pending:
            flush(pool)
        # after adding one transcript, the other entries are read while the workers tag it
        for source, key in sorted(keys, key=lambda pair: pair[0]):
            while key in being_tagged:
                keep_oldest()
            entry = store.get(key)
            if entry is None:
                raise TokensNotRead(source)
            yield source, *entry


def tables(tagged: Iterable[Tagged]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tags and evidence of `tagged` sources (in source order), each as one validated
    table."""
    entries = list(tagged)
    return (
        _validated(Tags, _joined(tags for _, tags, _ in entries)),
        _validated(Evidence, _joined(ev for _, _, ev in entries)),
    )


def _validated(model: type[Tags] | type[Evidence], table: pa.Table | None) -> pd.DataFrame:
    return model.validate(table.to_pandas() if table is not None else schemas.empty(model))


def write_tables(
    tagged: Iterable[Tagged],
    tags_path: Path,
    evidence_path: Path,
    rows_per_group: int = ROWS_PER_GROUP,
) -> tuple[dict[str, int], int]:
    """Write the tags and evidence of `tagged` sources (in source order) to Parquet as they come,
    a row group per `rows_per_group` tags rows, so only that many are in memory at once; the
    files hold what `tables` returns. Returns the decided turns per theme and the evidence rows.
    """
    decided: dict[str, int] = {}
    evidence_rows = 0
    with (
        io.parquet_writer(tags_path, schemas.empty(Tags)) as write_tags,
        io.parquet_writer(evidence_path, schemas.empty(Evidence)) as write_evidence,
    ):
        for batch in _row_groups(tagged, rows_per_group):
            tags, ev = (_joined([entry[k] for entry in batch]) for k in (1, 2))
            if tags is not None:
                write_tags(tags)
                themes = pc.filter(tags["theme"], tags["decided"]).value_counts()
                for count in themes.to_pylist():
                    decided[count["values"]] = decided.get(count["values"], 0) + count["counts"]
            if ev is not None:
                write_evidence(ev)
                evidence_rows += ev.num_rows
    return dict(sorted(decided.items())), evidence_rows


def _joined(entries: Iterable[pa.Table]) -> pa.Table | None:
    """Entries of consecutive sources as one table, or None when they hold no rows. Each entry
    is sorted and the sources come in order, so the result is sorted too; entries without rows
    are left out (an empty table of a batch may lack column types)."""
    rows = [entry for entry in entries if entry.num_rows]
    return pa.concat_tables(rows) if rows else None


def _row_groups(tagged: Iterable[Tagged], rows: int) -> Iterator[list[Tagged]]:
    """`tagged` in consecutive lists of at least `rows` tags rows (but the last), never parting
    the rows of one source."""
    batch: list[Tagged] = []
    size = 0
    for item in tagged:
        if size >= rows and item[0] != batch[-1][0]:
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item[1].num_rows
    if batch:
        yield batch


def tag_sources(
    sources: Iterable[Source],
    codebook: Codebook,
    model: TrainedModel,
    params: TagParams,
    store: cache.SourceCache,
    batch_turns: int = BATCH_TURNS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The `tables` of `tagged_sources`: tags and evidence of every source, in memory."""
    return tables(tagged_sources(sources, codebook, model, params, store, batch_turns))


def whole_sources(turns: pd.DataFrame, min_turns: int) -> Iterator[pd.DataFrame]:
    """`turns` in consecutive slices of whole sources, each of at least `min_turns` turns (but
    the last)."""
    start = end = 0
    for _, rows in cache.contiguous_groups(turns, Turns.source):
        end += len(rows)
        if end - start >= min_turns:
            yield turns.iloc[start:end]
            start = end
    if start < len(turns):
        yield turns.iloc[start:]


def joined_by_source(
    turns: pd.DataFrame, token_groups: Iterable[tuple[str, pd.DataFrame, str]]
) -> Iterator[tuple[str, pd.DataFrame, pd.DataFrame, str]]:
    """(source, turns, tokens, digest of both) per source of `turns`, in order; `token_groups`
    (source, tokens, their `frame_digest`) come in the same source order and lack sources
    without any token."""
    groups = iter(token_groups)
    upcoming = next(groups, None)
    no_tokens: tuple[pd.DataFrame, str] | None = None
    for source, rows, turns_digest in cache.digested_groups(turns, Turns.source):
        if upcoming is not None and upcoming[0] == source:
            tokens, tokens_digest = upcoming[1], upcoming[2]
            upcoming = next(groups, None)
        else:
            if no_tokens is None:  # made once: an empty table costs milliseconds to build
                empty = schemas.empty(Tokens)
                no_tokens = empty, cache.frame_digest(empty)
            tokens, tokens_digest = no_tokens
        yield source, rows, tokens, cache.digest(turns_digest, tokens_digest)


def stage_sources(
    turns_path: Path,
    tokens_path: Path,
    tokens_salt: str,
    store: cache.SourceCache,
    *,
    trust_store: bool = True,
    sources_per_read: int = io.SOURCES_PER_READ,
) -> Iterator[Source]:
    """(source, turns, tokens, digest) per source of the turns table, for `tagged_sources` in
    the stage. The turns are read `sources_per_read` sources at a time (`io.read_by_source`), so
    the stage never holds the corpus's turns, only one range and the batches being tagged.

    A source's tokens are a function of its turns and of what the nlp run that made them depends
    on besides (its cache salt, `tokens_salt`), so the digest stands for both without reading a
    token. Only the sources of a range without a `store` entry (all, with `trust_store=False`)
    get their tokens, in one read of the row groups that hold them (`io.read_sources`); the
    others come with None.
    """
    no_tokens = schemas.empty(Tokens)
    for turns in map(Turns.validate, io.read_by_source(turns_path, sources_per_read)):
        groups = [
            (source, rows, cache.digest(turns_digest, tokens_salt))
            for source, rows, turns_digest in cache.digested_groups(turns, Turns.source)
        ]
        missing = [s for s, _, d in groups if not (trust_store and store.has(store.key(s, d)))]
        tokens = {}
        if missing:
            read = Tokens.validate(io.read_sources(tokens_path, missing, Tokens.source))
            tokens = dict(cache.contiguous_groups(read, Tokens.source))
        to_read = set(missing)
        for source, rows, digest in groups:
            if source not in to_read:
                yield source, rows, None, digest
            elif source in tokens:
                yield source, rows, tokens[source].reset_index(drop=True), digest
            else:
                yield source, rows, no_tokens, digest


def tag_tables(
    turns_path: Path,
    tokens_path: Path,
    tokens_salt: str,
    codebook: Codebook,
    model: TrainedModel,
    params: TagParams,
    store: cache.SourceCache,
    consume: Callable[[Iterator[Tagged]], T] = tables,
) -> T:
    """What `consume` (default: `tables`) makes of the `tagged_sources` of the stage's tables,
    reading the turns a range of sources at a time and tokens only where the cache has no entry
    (`stage_sources`); when an entry turns out unreadable, again with every source's tokens (the
    entries computed meanwhile are kept; `write_tables` leaves no file behind from the first
    attempt)."""
    try:
        sources = stage_sources(turns_path, tokens_path, tokens_salt, store)
        return consume(tagged_sources(sources, codebook, model, params, store))
    except TokensNotRead as lost:
        log.warning("cache entry of %s unreadable: reading every source's tokens", lost)
        sources = stage_sources(turns_path, tokens_path, tokens_salt, store, trust_store=False)
        return consume(tagged_sources(sources, codebook, model, params, store))


def wide_table(turns: pd.DataFrame, tags: pd.DataFrame, themes: tuple[str, ...]) -> pd.DataFrame:
    """One row per turn: metadata, `themes` (sorted, ';'-joined) and `score_<theme>` columns."""
    base = turns[
        [
            Turns.source,
            Turns.turn,
            Turns.gemeente,
            Turns.datum,
            Turns.jaar,
            Turns.sessie,
            Turns.speaker,
            Turns.role,
            Turns.timestamp,
        ]
    ].copy()
    keyed = tags.set_index(["source", "turn", "theme"])
    decided = (
        tags[tags["decided"]]
        .groupby(["source", "turn"])["theme"]
        .agg(lambda ts: THEMES_SEPARATOR.join(sorted(ts)))
    )
    keys = pd.MultiIndex.from_frame(base[[Turns.source, Turns.turn]])
    base["themes"] = decided.reindex(keys, fill_value="").to_numpy()
    for theme in themes:
        score = keyed["score"].xs(theme, level="theme") if len(keyed) else pd.Series(dtype=float)
        base[f"score_{theme}"] = score.reindex(keys).round(4).to_numpy()
    base["text"] = turns[Turns.text].to_numpy()
    return base


def tag_folder(directory: Path, params: dict) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Ingest, analyse and tag every transcript below `directory`, in memory.

    Uses the repository's codebook and trained model; when the model is missing or was trained
    with another codebook, trains one in memory from the repository's annotations.
    Returns the wide turns table, the evidence and the ingestion report.
    """
    from pipeline import ingest, nlp, pseudonymise, train  # the stages this command chains
    from pipeline.params import IngestParams, NlpParams, TrainParams

    p = paths(params)
    ingest_cfg = section(IngestParams, params.get("ingest"))
    nlp_cfg = section(NlpParams, params.get("nlp"))
    codebook = load_codebook(p.codebook)
    deidentifier = functools.cache(pseudonymise.load_deidentifier)  # loaded once, if at all
    allowlist = pseudonymise.load_allowlist(p.allowlist, p.gemeenten)
    reader = ingest.reader_config(p, ingest_cfg)
    turns, report = ingest.collect(
        ingest.ingested(directory, reader, ingest_cfg, deidentifier, allowlist)
    )
    model = load_model(p.model) if p.model.exists() else None
    repo_turns = None
    if model is None or model.codebook_digest != codebook.digest:
        log.warning("no trained model for this codebook at %s; training one in memory from %s",
                    p.model, p.annotations)
        repo_turns, _ = ingest.collect(
            ingest.ingested(p.transcripts, reader, ingest_cfg, deidentifier, allowlist)
        )
    deidentifier.cache_clear()  # nothing is pseudonymised from here on: its tables are freed
    pipe, info = nlp.load_pipeline(nlp_cfg.model)
    backoff = nlp.lemma_backoff(pipe) if info.fallback else None

    def analysed(frame: pd.DataFrame) -> pd.DataFrame:
        chunks = nlp.analyse(frame, pipe, backoff=backoff, batch_size=nlp_cfg.batch_size)
        return pd.concat([tokens for tokens, _ in chunks], ignore_index=True)

    if repo_turns is not None:
        model = train.fit_model(repo_turns, analysed(repo_turns), codebook, p.annotations,
                                section(TrainParams, params.get("train")))
    tag_cfg = section(TagParams, params.get("tag"))
    sources = (  # analysed batch by batch: the whole corpus is never in memory as tokens
        item
        for batch in whole_sources(turns, BATCH_TURNS)
        for item in joined_by_source(batch, cache.digested_groups(analysed(batch), "source"))
    )
    tags, ev = tag_sources(sources, codebook, model, tag_cfg, cache.SourceCache(None))
    return wide_table(turns, tags, codebook.ids), ev, report


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    params = read_params()
    p = paths(params)
    cfg = section(TagParams, params.get("tag"))
    codebook = load_codebook(p.codebook)
    model = load_model(p.model)
    tokens_salt = json.loads(p.nlp_meta.read_text(encoding="utf-8"))["tokens_salt"]
    store = cache.SourceCache(p.cache / "tag", cache_salt(model, codebook, cfg))
    write = functools.partial(write_tables, tags_path=p.tags, evidence_path=p.evidence)
    counts, evidence_rows = tag_tables(
        p.turns, p.tokens, tokens_salt, codebook, model, cfg, store, consume=write
    )
    log.info("cache: %s; %d old entries removed", store.summary(), store.prune())
    log.info(
        "%d turns tagged; decided per theme: %s; %d evidence rows",
        pq.read_metadata(p.turns).num_rows, counts, evidence_rows,
    )


if __name__ == "__main__":
    main()
