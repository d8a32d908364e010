"""Stage `coded`: the turns and tokens of the human-coded sessions, the training material.

`train` reads these two small tables instead of the whole corpus's. Adding or changing a
transcript nobody coded leaves them byte-identical, so DVC skips `train` (minutes) and runs only
this stage (about a second).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from pipeline import io
from pipeline.annotations import read_annotations
from pipeline.params import paths, read_params
from pipeline.schemas import Tokens, Turns

log = logging.getLogger("buurtlens.coded")


def read_coded(
    turns_path: Path, tokens_path: Path, sources: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of `sources` from the turns and tokens tables, reading only the row groups that
    hold them (the other sessions' rows are never built as DataFrames)."""
    turns = Turns.validate(io.read_sources(turns_path, sources, Turns.source))
    tokens = Tokens.validate(io.read_sources(tokens_path, sources, Tokens.source))
    return turns.reset_index(drop=True), tokens.reset_index(drop=True)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    p = paths(read_params())
    annotations, _ = read_annotations(p.annotations)
    sources = sorted(set(annotations["source"]))
    turns, tokens = read_coded(p.turns, p.tokens, sources)
    io.write_parquet(turns, p.coded_turns)
    io.write_parquet(tokens, p.coded_tokens)
    found = turns[Turns.source].nunique()
    log.info(
        "%d coded sessions in the annotations, %d of them in the turns table: %d turns, %d tokens",
        len(sources), found, len(turns), len(tokens),
    )


if __name__ == "__main__":
    main()
