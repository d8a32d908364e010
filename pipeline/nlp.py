"""Stage `nlp`: tokenise, lemmatise and sentence-split the pseudonymised turns with spaCy."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import spacy
from spacy.language import Language
from spacy.tokens import Doc
from tqdm import tqdm

from pipeline import io
from pipeline.lemmas import LemmaBackoff
from pipeline.params import NlpParams, paths, read_params, section
from pipeline.pseudonymise import PLACEHOLDER_RE
from pipeline.schemas import Sentences, Tokens, Turns

log = logging.getLogger("buurtlens.nlp")

# Transcriber notes are lower-case words in brackets ("[gelach]", "[onverstaanbaar 00:12:03]");
# pseudonyms are upper case ("[PERSOON-1]"), so the two never collide.
NOTE = re.compile(r"\[[a-zà-ÿ][^\[\]\n]{0,80}\]")
FULL_MODEL_EXCLUDE = ("parser", "ner")  # sentences come from the senter, which is much faster


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


def merge_placeholders(doc: Doc) -> Doc:
    """Make every pseudonym ("[PERSOON-1]") one token, whatever punctuation surrounds it."""
    spans = [doc.char_span(m.start(), m.end()) for m in PLACEHOLDER_RE.finditer(doc.text)]
    with doc.retokenize() as retokenizer:
        for span in spans:
            if span is not None and len(span) > 1:
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
    keys = zip(turns[Turns.source], turns[Turns.turn], turns[Turns.text], strict=True)
    texts = (mask_notes(t) for t in turns[Turns.text])
    docs = nlp.pipe(zip(texts, keys), as_tuples=True, batch_size=batch_size, n_process=n_process)
    token_rows: list[tuple] = []
    sent_rows: list[tuple] = []
    progress = tqdm(docs, total=len(turns), desc="nlp", unit="turn", disable=None, mininterval=2)
    for n, (doc, (source, turn, text)) in enumerate(progress, 1):
        _rows_for_doc(
            merge_placeholders(doc), text, source, int(turn), backoff, token_rows, sent_rows
        )
        if n % chunk_turns == 0:
            yield _frames(token_rows, sent_rows)
            token_rows, sent_rows = [], []
    yield _frames(token_rows, sent_rows)


def _rows_for_doc(
    doc: Doc,
    text: str,
    source: str,
    turn: int,
    backoff: LemmaBackoff | None,
    token_rows: list,
    sent_rows: list,
) -> None:
    """Append the token and sentence rows of one turn; sentence text is the original turn text."""
    i = 0
    sent_index = 0
    for sent in doc.sents:
        words = [t for t in sent if not t.is_space]
        if not words:
            continue
        start, end = words[0].idx, words[-1].idx + len(words[-1])
        sent_rows.append((source, turn, sent_index, start, end, text[start:end]))
        for tok in words:
            placeholder = bool(PLACEHOLDER_RE.fullmatch(tok.text))
            lemma = tok.text if placeholder else tok.lemma_.lower()
            if backoff is not None and not placeholder:
                lemma = backoff.lemma(tok.lower_)
            token_rows.append(
                (
                    source,
                    turn,
                    sent_index,
                    i,
                    tok.idx,
                    tok.idx + len(tok),
                    tok.text,
                    lemma,
                    tok.pos_,
                    tok.is_alpha,
                    tok.is_stop,
                    tok.is_punct,
                    placeholder,
                )
            )
            i += 1
        sent_index += 1


def _frames(token_rows: list, sent_rows: list) -> tuple[pd.DataFrame, pd.DataFrame]:
    tokens = pd.DataFrame(token_rows, columns=list(Tokens.to_schema().columns))
    sentences = pd.DataFrame(sent_rows, columns=list(Sentences.to_schema().columns))
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
    chunks: Iterable[tuple[pd.DataFrame, pd.DataFrame]], tokens_path: Path, sentences_path: Path
) -> tuple[int, int]:
    """Stream the chunks into two Parquet files, atomically; returns (tokens, sentences) counts."""
    counts = [0, 0]
    with io.atomic_path(tokens_path) as tok_tmp, io.atomic_path(sentences_path) as sent_tmp:
        writers: list[pq.ParquetWriter | None] = [None, None]
        try:
            for frames in chunks:
                for k, (frame, tmp) in enumerate(zip(frames, (tok_tmp, sent_tmp), strict=True)):
                    if frame.empty and writers[k] is not None:
                        continue
                    table = pa.Table.from_pandas(frame, preserve_index=False)
                    if writers[k] is None:
                        writers[k] = pq.ParquetWriter(tmp, table.schema)
                    writers[k].write_table(table)
                    counts[k] += len(frame)
        finally:
            for w in writers:
                if w is not None:
                    w.close()
    return counts[0], counts[1]


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    logging.getLogger("spacy").setLevel(logging.WARNING)  # its INFO lines are for training
    params = read_params()
    p = paths(params)
    cfg = section(NlpParams, params.get("nlp"))
    turns = Turns.validate(pd.read_parquet(p.turns))
    nlp, info = load_pipeline(cfg.model)
    backoff = LemmaBackoff() if info.fallback else None
    chunks = analyse(
        turns, nlp, backoff=backoff, batch_size=cfg.batch_size, n_process=cfg.n_process
    )
    n_tokens, n_sents = write_tables(chunks, p.tokens, p.sentences)
    meta = {**asdict(info), "turns": len(turns), "tokens": n_tokens, "sentences": n_sents}
    io.write_json(meta, p.nlp_meta)
    log.info(
        "%d turns -> %d tokens, %d sentences with %s%s",
        len(turns),
        n_tokens,
        n_sents,
        info.model,
        " (fallback)" if info.fallback else "",
    )


if __name__ == "__main__":
    main()
