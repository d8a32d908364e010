"""Stage `nlp`: tokenise, lemmatise and sentence-split the pseudonymised turns with spaCy."""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import re
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import spacy
from spacy import parts_of_speech
from spacy.attrs import (
    IDX,
    IS_ALPHA,
    IS_PUNCT,
    IS_SPACE,
    IS_STOP,
    LEMMA,
    LENGTH,
    LOWER,
    ORTH,
    POS,
    SENT_START,
)
from spacy.language import Language
from spacy.lookups import load_lookups
from spacy.tokens import Doc
from spacy.vocab import Vocab
from tqdm import tqdm

from pipeline import io
from pipeline.cache import SourceCache, arrow_groups, digested_groups
from pipeline.cache import salt as cache_salt_of
from pipeline.cache import version as cache_version
from pipeline.lemmas import LemmaBackoff
from pipeline.parallel import can_fork, loading_worker
from pipeline.params import NlpParams, paths, read_params, section
from pipeline.pseudonymise import PLACEHOLDER_RE
from pipeline.schemas import Sentences, Tokens, Turns, empty

log = logging.getLogger("buurtlens.nlp")

# Transcriber notes are lower-case words in brackets ("[gelach]", "[onverstaanbaar 00:12:03]");
# pseudonyms are upper case ("[PERSOON-1]"), so the two never collide.
NOTE = re.compile(r"\[[a-zà-ÿ][^\[\]\n]{0,80}\]")
FULL_MODEL_EXCLUDE = ("parser", "ner")  # sentences come from the senter, which is much faster
# The token attributes read with `Doc.to_array`, one column each, in this order.
TOKEN_ATTRS = (
    ORTH, LOWER, LEMMA, POS, IDX, LENGTH, IS_SPACE, IS_ALPHA, IS_STOP, IS_PUNCT, SENT_START
)
COLUMN = {attr: k for k, attr in enumerate(TOKEN_ATTRS)}


@dataclass(frozen=True)
class NlpInfo:
    """Which spaCy pipeline ran; stored in the stage metadata and shown in the report."""

    model: str
    model_version: str
    fallback: bool
    components: tuple[str, ...]
    lemmatizer: str
    spacy_version: str


def mask_notes(text: str) -> str:
    """Blank out transcriber notes with spaces of equal length, so offsets stay valid."""
    return NOTE.sub(lambda m: " " * len(m.group()), text)


def merge_placeholders(doc: Doc, text: str | None = None) -> Doc:
    """Make every pseudonym ("[PERSOON-1]") one token, whatever punctuation surrounds it.

    `text` is the text the doc was made from, when the caller has it: `doc.text` builds it
    again token by token (with the retokenizer skipped where nothing is merged, 1 s less per
    1,000 transcripts)."""
    found = PLACEHOLDER_RE.finditer(doc.text if text is None else text)
    spans = [doc.char_span(m.start(), m.end()) for m in found]
    spans = [span for span in spans if span is not None and len(span) > 1]
    if spans:
        with doc.retokenize() as retokenizer:
            for span in spans:
                retokenizer.merge(span)
    return doc


def load_pipeline(model: str) -> tuple[Language, NlpInfo]:
    """Load `model` with only the components the stage needs, or the blank Dutch fallback."""
    try:
        nlp = spacy.load(model, exclude=list(FULL_MODEL_EXCLUDE))
        if "senter" in nlp.disabled:
            nlp.enable_pipe("senter")
        fallback, lemmatizer = False, "rule"
    except OSError:
        print(
            f"buurtlens: spaCy model '{model}' is not installed; using spacy.blank('nl') with the "
            "lookup lemmatizer and a sentencizer (install it with: "
            f"python -m spacy download {model})",
            file=sys.stderr,
        )
        nlp = spacy.blank("nl")
        nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
        nlp.add_pipe("sentencizer")
        nlp.initialize()
        fallback, lemmatizer = True, "lookup+backoff"
    info = NlpInfo(
        model=nlp.meta["name"] if not fallback else "blank:nl",
        model_version=nlp.meta.get("version", ""),
        fallback=fallback,
        components=tuple(nlp.pipe_names),
        lemmatizer=lemmatizer,
        spacy_version=spacy.__version__,
    )
    return nlp, info


def analyse(
    turns: pd.DataFrame,
    nlp: Language,
    *,
    backoff: LemmaBackoff | None,
    batch_size: int = 256,
    n_process: int = 1,
    chunk_turns: int = 5000,
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """Yield (tokens, sentences) tables chunk by chunk, so memory stays flat on large corpora."""
    texts = turns[Turns.text]
    keys = zip(turns[Turns.source], turns[Turns.turn], texts, map(mask_notes, texts), strict=True)
    pairs = ((masked, (source, turn, text, masked)) for source, turn, text, masked in keys)
    docs = nlp.pipe(pairs, as_tuples=True, batch_size=batch_size, n_process=n_process)
    arrays: list[np.ndarray] = []
    turn_keys: list[tuple[str, int, str]] = []
    progress = tqdm(docs, total=len(turns), desc="nlp", unit="turn", disable=None, mininterval=2)
    for n, (doc, (source, turn, text, masked)) in enumerate(progress, 1):
        # the doc's text is `masked` (spaCy keeps every character)
        arrays.append(merge_placeholders(doc, masked).to_array(list(TOKEN_ATTRS)))
        turn_keys.append((source, int(turn), text))
        if n % chunk_turns == 0:
            yield _chunk_frames(arrays, turn_keys, nlp.vocab, backoff)
            arrays, turn_keys = [], []
    yield _chunk_frames(arrays, turn_keys, nlp.vocab, backoff)


def _chunk_frames(
    arrays: list[np.ndarray],
    turn_keys: list[tuple[str, int, str]],
    vocab: Vocab,
    backoff: LemmaBackoff | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The token and sentence tables of a chunk of turns, from each Doc's `TOKEN_ATTRS` array.

    Space tokens are left out; a sentence of only spaces gets no row and no index. Sentence text
    is the original turn text.
    """
    counts = np.array([len(a) for a in arrays], dtype=np.int64)
    table = np.concatenate([np.empty((0, len(TOKEN_ATTRS)), np.uint64), *arrays])
    turn_of = np.repeat(np.arange(len(arrays)), counts)
    first_of_turn = np.zeros(len(table), dtype=bool)
    first_of_turn[(np.cumsum(counts) - counts)[counts > 0]] = True
    # A running sentence number over the chunk, as `Doc.sents` splits: at is_sent_start == 1.
    sentence_of = np.cumsum(first_of_turn | (table[:, COLUMN[SENT_START]] == 1))
    words = table[:, COLUMN[IS_SPACE]] == 0
    table, turn_of, sentence_of = table[words], turn_of[words], sentence_of[words]

    opens_turn = _changes(turn_of)
    opens_sentence = _changes(sentence_of)
    turn_first_word = np.maximum.accumulate(np.where(opens_turn, np.arange(len(table)), 0))
    sentence_number = np.cumsum(opens_sentence) - 1
    sent = sentence_number - sentence_number[turn_first_word]
    start = table[:, COLUMN[IDX]].astype(np.int64)
    end = start + table[:, COLUMN[LENGTH]].astype(np.int64)

    text = _strings(table[:, COLUMN[ORTH]], vocab)
    placeholder = _mapped(text, lambda t: bool(PLACEHOLDER_RE.fullmatch(t)), bool)
    if backoff is not None:
        lemma = _mapped(_strings(table[:, COLUMN[LOWER]], vocab), backoff.lemma, object)
    else:
        lemma = _mapped(_strings(table[:, COLUMN[LEMMA]], vocab), str.lower, object)
    sources = np.array([source for source, _, _ in turn_keys], dtype=object)
    turns = np.array([turn for _, turn, _ in turn_keys], dtype=np.int64)
    tokens = pd.DataFrame(
        {
            "source": sources[turn_of],
            "turn": turns[turn_of],
            "sent": sent,
            "i": np.arange(len(table)) - turn_first_word,
            "start": start,
            "end": end,
            "text": text,
            "lemma": np.where(placeholder, text, lemma),
            "pos": _mapped(table[:, COLUMN[POS]], parts_of_speech.NAMES.__getitem__, object),
            "is_alpha": table[:, COLUMN[IS_ALPHA]] != 0,
            "is_stop": table[:, COLUMN[IS_STOP]] != 0,
            "is_punct": table[:, COLUMN[IS_PUNCT]] != 0,
            "is_placeholder": placeholder,
        }
    )
    first_word = np.flatnonzero(opens_sentence)
    last_word = np.append(first_word[1:] - 1, len(table) - 1)[: len(first_word)]
    sentence_turn = turn_of[first_word]
    sentences = pd.DataFrame(
        {
            "source": sources[sentence_turn],
            "turn": turns[sentence_turn],
            "sent": sent[first_word],
            "start": start[first_word],
            "end": end[last_word],
        }
    )
    sentences["text"] = [
        turn_keys[k][2][a:b]
        for k, a, b in zip(
            sentence_turn.tolist(), sentences["start"].tolist(), sentences["end"].tolist(),
            strict=True,
        )
    ]
    return _typed(tokens, sentences)


def _changes(values: np.ndarray) -> np.ndarray:
    """True where a value differs from the one before it (and at the first)."""
    opens = np.ones(len(values), dtype=bool)
    opens[1:] = values[1:] != values[:-1]
    return opens


def _mapped(values: np.ndarray, function: Callable, dtype: type) -> np.ndarray:
    """`function` of every value, computed once per distinct value (found by hashing: sorting
    them, as `np.unique` does, took half the time of building the tables)."""
    codes, distinct = pd.factorize(values, use_na_sentinel=False)
    return np.array([function(v) for v in distinct.tolist()], dtype=dtype)[codes]


def _strings(hashes: np.ndarray, vocab: Vocab) -> np.ndarray:
    return _mapped(hashes, vocab.strings.__getitem__, object)


def _no_rows() -> tuple[pa.Table, pa.Table]:
    """Token and sentence tables without rows, in the Arrow types (and pandas metadata) the
    chunks have."""
    tokens, sentences = (
        pa.Table.from_pandas(empty(model), preserve_index=False)
        for model in (Tokens, Sentences)
    )
    return tokens, sentences


def _typed(tokens: pd.DataFrame, sentences: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    for frame in (tokens, sentences):
        for col in ("turn", "sent", "i", "start", "end"):
            if col in frame:
                frame[col] = frame[col].astype("int64")
    for col in ("is_alpha", "is_stop", "is_punct", "is_placeholder"):
        tokens[col] = tokens[col].astype(bool)
    for frame in (tokens, sentences):
        for col in ("source", "text", "lemma", "pos"):
            if col in frame:
                frame[col] = frame[col].astype(str)
    return Tokens.validate(tokens), Sentences.validate(sentences)


def write_tables(
    chunks: Iterable[tuple[pd.DataFrame | pa.Table, pd.DataFrame | pa.Table]],
    tokens_path: Path,
    sentences_path: Path,
) -> tuple[int, int]:
    """Stream the chunks (tables or Arrow tables) into two Parquet files, atomically; returns
    (tokens, sentences) counts."""
    counts = [0, 0]
    with (
        io.parquet_writer(tokens_path, empty(Tokens)) as write_tokens,
        io.parquet_writer(sentences_path, empty(Sentences)) as write_sentences,
    ):
        for frames in chunks:
            for k, (frame, write) in enumerate(
                zip(frames, (write_tokens, write_sentences), strict=True)
            ):
                if len(frame):
                    write(frame)
                    counts[k] += len(frame)
    return counts[0], counts[1]


# The modules and resources whose code decides a source's tokens (part of the cache salt).
NLP_CODE = (
    "nlp.py", "lemmas.py", "pseudonymise.py", "schemas.py", "resources/lemma_aanvullingen.yaml"
)


def cache_salt(cfg: NlpParams) -> str:
    """What every source's tokens depend on besides its turns (`batch_size` and `n_process`
    change no result)."""
    settings = {"model": cfg.model, "model_version": cache_version(cfg.model)}
    return cache_salt_of("nlp", NLP_CODE, settings, packages=("spacy", "spacy-lookups-data"))


def analyse_sources(
    turn_ranges: Callable[[], Iterable[pd.DataFrame]],
    load: Callable[[], tuple[Language, LemmaBackoff | None]],
    cache: SourceCache,
    *,
    batch_size: int = 256,
    n_process: int = 1,
    batch_turns: int = 5000,
    rows_per_chunk: int = 200_000,
    in_worker: bool = False,
) -> Iterator[tuple[pa.Table, pa.Table]]:
    """Like `analyse` over the tables `turn_ranges()` returns (tables of whole sources, in order:
    the stage reads one range of sources at a time and never holds the corpus's turns), but a
    source whose turns have a `cache` entry is not analysed again, and the pipeline and lemma
    back-off are loaded (`load`) only when some source is not.

    Entries and chunks are Arrow tables, as `write_tables` writes them: a reused source never
    passes through pandas (unpickling and concatenating a thousand pandas tables cost a second).

    The sources without an entry are analysed in batches of about `batch_turns` turns and
    stored; then every source's tables are yielded in turn order, about `rows_per_chunk` tokens
    at a time, so memory stays flat and the output does not depend on what was reused. With
    `in_worker` (where the platform can fork), a forked worker loads the pipeline and analyses
    the batches: after adding one transcript, it loads while this process reads the other
    sources' turns and entries, and this process never holds the pipeline. An entry that turns
    out unreadable is analysed again (its turns read again from `turn_ranges()`).
    """
    _ANALYSING.update(load=functools.cache(load), batch_size=batch_size, n_process=n_process)
    forked = in_worker and can_fork()
    keys: list[tuple[str, str]] = []  # (source, key) of every source, in turn order
    pending: list[tuple[str, pd.DataFrame, str]] = []
    in_flight: deque[tuple[list[str], Future]] = deque()
    being_analysed: set[str] = set()  # keys of the batches in flight
    progress = tqdm(desc="nlp", unit="file", disable=None, mininterval=2)

    def keep(batch_keys: list[str], entries: list[tuple[pa.Table, pa.Table]]) -> None:
        for key, entry in zip(batch_keys, entries, strict=True):
            cache.put(key, entry)
            being_analysed.discard(key)
        progress.update(len(batch_keys))

    def keep_oldest() -> None:
        batch_keys, future = in_flight.popleft()
        keep(batch_keys, future.result())

    with contextlib.ExitStack() as stack:
        worker: list[ProcessPoolExecutor] = []  # started at the first source to analyse

        def flush() -> None:
            sources = [source for source, _, _ in pending]
            batch_keys = [key for _, _, key in pending]
            frame = pd.concat([rows for _, rows, _ in pending], ignore_index=True)
            pending.clear()
            if not forked:
                keep(batch_keys, _entries(sources, frame))
                return
            if not worker:
                worker.append(stack.enter_context(loading_worker(_ANALYSING["load"])))
            in_flight.append((batch_keys, worker[0].submit(_entries, sources, frame)))
            being_analysed.update(batch_keys)
            while len(in_flight) > 2:
                keep_oldest()

        for turns in turn_ranges():
            for source, rows, digest in digested_groups(
                turns, Turns.source, [Turns.turn, Turns.text]
            ):
                key = cache.key(source, digest)
                keys.append((source, key))
                if cache.has(key):
                    continue
                pending.append((source, rows, key))
                # an idle worker gets work at once: after adding one transcript it loads and
                # analyses while the other sources are still being read
                if (forked and not in_flight) or sum(len(r) for _, r, _ in pending) >= batch_turns:
                    flush()
        if pending:
            flush()

        buffered: list[tuple[pa.Table, pa.Table]] = []
        buffered_rows = 0
        for source, key in keys:
            while key in being_analysed:
                keep_oldest()
            entry = cache.get(key)
            if entry is None:  # an entry that could not be read back: analyse it again
                pending.append((source, _turns_of(source, turn_ranges()), key))
                flush()
                while key in being_analysed:
                    keep_oldest()
                entry = cache.get(key)
            buffered.append(entry)
            buffered_rows += entry[0].num_rows
            if buffered_rows >= rows_per_chunk:
                yield _concat(buffered)
                buffered, buffered_rows = [], 0
    progress.close()
    if buffered or not keys:
        yield _concat(buffered)


# The pipeline and settings batches are analysed with (`analyse_sources`; a forked worker has its
# own copy and loads the pipeline there).
_ANALYSING: dict[str, Any] = {}


def _entries(sources: list[str], turns: pd.DataFrame) -> list[tuple[pa.Table, pa.Table]]:
    """The (tokens, sentences) entry of each of `sources`, whose turns `turns` holds."""
    nlp, backoff = _ANALYSING["load"]()
    chunks = analyse(turns, nlp, backoff=backoff, batch_size=_ANALYSING["batch_size"],
                     n_process=_ANALYSING["n_process"], chunk_turns=len(turns) + 1)
    tokens, sentences = (pd.concat(parts, ignore_index=True) for parts in zip(*chunks))
    by_source = [dict(arrow_groups(t, "source")) for t in (tokens, sentences)]
    no_rows = _no_rows()
    return [
        tuple(found.get(source, none) for found, none in zip(by_source, no_rows, strict=True))
        for source in sources
    ]


def _turns_of(source: str, turn_ranges: Iterable[pd.DataFrame]) -> pd.DataFrame:
    for turns in turn_ranges:
        rows = turns[turns[Turns.source] == source]
        if len(rows):
            return rows
    raise LookupError(f"no turns of {source}")


def _concat(entries: list[tuple[pa.Table, pa.Table]]) -> tuple[pa.Table, pa.Table]:
    if not entries:
        return _no_rows()
    tokens, sentences = zip(*entries, strict=True)
    # one chunk per column, as `pa.Table.from_pandas` of the whole chunk gives: the Parquet
    # bytes stay those of a table that never was in the cache
    return pa.concat_tables(tokens).combine_chunks(), pa.concat_tables(sentences).combine_chunks()


def lemma_backoff(nlp: Language) -> LemmaBackoff:
    """The lemma back-off of the fallback pipeline, sharing its lemmatizer's lookup table
    (loading that table a second time cost half a second)."""
    lookups = load_lookups("nl", ["lemma_rules", "lemma_exc", "lemma_index"])
    table = nlp.get_pipe("lemmatizer").lookups.get_table("lemma_lookup")
    lookups.set_table("lemma_lookup", table)
    return LemmaBackoff(lookups)


PIPELINE_INFO = "pipeline info"  # the cache entry that says which pipeline the salt stands for


def remember_pipeline_info(cache: SourceCache, info: NlpInfo) -> None:
    """Keep `info` as the cache's `PIPELINE_INFO` entry, where the pipeline was loaded (in a
    forked worker: this process then finds it there without loading the pipeline)."""
    key = cache.key(PIPELINE_INFO)
    if not cache.has(key):
        cache.put(key, asdict(info))


def pipeline_info(cache: SourceCache, load: Callable[[], NlpInfo]) -> NlpInfo:
    """Which pipeline the cache's salt stands for (the salt holds the model and its version):
    kept as an entry of its own, so a run that analyses nothing need not load the pipeline."""
    key = cache.key(PIPELINE_INFO)
    found = cache.get(key)
    if found is None:  # a plain dict: a class pickled by `python -m pipeline.nlp` is __main__'s
        found = asdict(load())
        cache.put(key, found)
    return NlpInfo(**{**found, "components": tuple(found["components"])})


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    logging.getLogger("spacy").setLevel(logging.WARNING)  # its INFO lines are for training
    params = read_params()
    p = paths(params)
    cfg = section(NlpParams, params.get("nlp"))
    cache = SourceCache(p.cache / "nlp", cache_salt(cfg))

    @functools.cache
    def loaded() -> tuple[Language, NlpInfo, LemmaBackoff | None]:
        nlp, info = load_pipeline(cfg.model)
        backoff = lemma_backoff(nlp) if info.fallback else None
        # the pipeline and its lookup tables live as long as the process: frozen, the garbage
        # collector stops walking their objects again and again
        gc.freeze()
        remember_pipeline_info(cache, info)
        log.info("spaCy pipeline loaded")
        return nlp, info, backoff

    chunks = analyse_sources(
        lambda: map(Turns.validate, io.read_by_source(p.turns)),
        lambda: (loaded()[0], loaded()[2]),
        cache,
        batch_size=cfg.batch_size,
        n_process=cfg.n_process,
        in_worker=True,
    )
    n_tokens, n_sents = write_tables(chunks, p.tokens, p.sentences)
    info = pipeline_info(cache, lambda: loaded()[1])
    log.info("cache: %s; %d old entries removed", cache.summary(), cache.prune())
    counts = {"turns": pq.read_metadata(p.turns).num_rows, "tokens": n_tokens, "sentences": n_sents}
    # what every source's tokens depend on besides its turns: `tag` keys its cache on it
    meta = {**asdict(info), **counts, "tokens_salt": cache.salt}
    io.write_json(meta, p.nlp_meta)
    log.info(
        "%d turns -> %d tokens, %d sentences with %s%s",
        counts["turns"],
        n_tokens,
        n_sents,
        info.model,
        " (fallback)" if info.fallback else "",
    )


if __name__ == "__main__":
    main()
