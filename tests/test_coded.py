"""Stage `coded`: the annotated sessions' rows, and that training on them is training on the
whole tables."""

from __future__ import annotations

import pandas as pd

from pipeline import nlp
from pipeline.annotations import align
from pipeline.coded import read_coded
from pipeline.lemmas import LemmaBackoff
from pipeline.schemas import Turns
from tests.conftest import make_turns


def write_tables(tmp_path, fallback_nlp):
    pipe, _ = fallback_nlp
    turns = pd.concat(
        [
            make_turns(["Wij tegen zij, zo voelt het.", "Ik regel de sleutel."], source=source)
            for source in ("a.txt", "b.txt", "c.txt")
        ],
        ignore_index=True,
    ).astype({"timestamp": "string[pyarrow]"})  # as ingest writes it
    tokens = pd.concat([t for t, _ in nlp.analyse(turns, pipe, backoff=LemmaBackoff())],
                       ignore_index=True)
    Turns.validate(turns).to_parquet(tmp_path / "turns.parquet", index=False)
    tokens.to_parquet(tmp_path / "tokens.parquet", index=False)
    return turns, tokens


def test_reads_exactly_the_coded_sources_rows(tmp_path, fallback_nlp):
    turns, tokens = write_tables(tmp_path, fallback_nlp)
    coded_turns, coded_tokens = read_coded(
        tmp_path / "turns.parquet", tmp_path / "tokens.parquet", ["a.txt", "c.txt"]
    )
    keep = turns["source"].isin(["a.txt", "c.txt"])
    pd.testing.assert_frame_equal(coded_turns, turns[keep].reset_index(drop=True),
                                  check_dtype=False)
    expected = tokens[tokens["source"].isin(["a.txt", "c.txt"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(coded_tokens, expected, check_dtype=False)


def test_no_coded_sources_gives_empty_tables(tmp_path, fallback_nlp):
    write_tables(tmp_path, fallback_nlp)
    coded_turns, coded_tokens = read_coded(
        tmp_path / "turns.parquet", tmp_path / "tokens.parquet", []
    )
    assert coded_turns.empty and coded_tokens.empty
    assert list(coded_turns.columns) == list(pd.read_parquet(tmp_path / "turns.parquet").columns)


def test_alignment_against_coded_rows_equals_alignment_against_all_turns(tmp_path, fallback_nlp):
    """An annotation of a missing session or turn is unmatched either way: train says the same."""
    turns, _ = write_tables(tmp_path, fallback_nlp)
    annotations = pd.DataFrame(
        {
            "source": ["a.txt", "a.txt", "a.txt", "zoek.txt"],
            "turn": [1, 2, 9, 1],
            "themes": ["wij-zij", "", "dubbelrol", "wij-zij"],
            "coder": ["x"] * 4,
        }
    )
    coded_turns, _ = read_coded(
        tmp_path / "turns.parquet", tmp_path / "tokens.parquet", sorted(set(annotations["source"]))
    )
    themes = ("wij-zij", "dubbelrol")
    whole, coded = align(annotations, turns, themes), align(annotations, coded_turns, themes)
    pd.testing.assert_frame_equal(coded.labels, whole.labels)
    assert coded.unmatched == whole.unmatched == [
        {"source": "a.txt", "turn": 9}, {"source": "zoek.txt", "turn": 1}
    ]
