"""Stage `aggregate`: tidy tables of theme prevalence per gemeente, year, role and theme pair."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow.parquet as pq

from pipeline import io
from pipeline.codebook import load_codebook
from pipeline.metadata import canonical_names, load_gemeenten
from pipeline.params import Paths, paths, read_params
from pipeline.schemas import (
    Cooccurrence,
    Overview,
    Participants,
    Prevalence,
    PrevalenceByRole,
    PrevalenceChange,
    Tags,
    Turns,
)

log = logging.getLogger("buurtlens.aggregate")

# Each table is written as <name>.parquet (notebooks) and <name>.csv (spreadsheets, dvc plots).
TABLES: dict[str, type[pa.DataFrameModel]] = {
    "overview": Overview,
    "participants": Participants,
    "prevalence": Prevalence,
    "prevalence_by_role": PrevalenceByRole,
    "cooccurrence": Cooccurrence,
    "prevalence_change": PrevalenceChange,
}


def table_path(p: Paths, name: str, suffix: str = ".parquet") -> Path:
    """Where the aggregate table `name` is written."""
    if name not in TABLES:
        raise KeyError(f"no aggregate table named {name!r}; known: {', '.join(TABLES)}")
    return p.aggregate / f"{name}{suffix}"


def word_counts(text: pd.Series) -> pd.Series:
    """Whitespace-separated words per text, as `str.split()` counts them (without building the
    lists of words: at 5,000 transcripts those were 10 M strings)."""
    return text.str.count(r"\S+").fillna(0).astype(int)


def _words(turns: pd.DataFrame) -> pd.Series:
    """Each turn's word count: its `words` column (see `read_turns`), else counted in its text."""
    return turns["words"] if "words" in turns else word_counts(turns[Turns.text])


# What the tables need of the turns besides their words, and of the tags
TURN_COLUMNS = [Turns.source, Turns.turn, Turns.gemeente, Turns.jaar, Turns.speaker, Turns.role]
TAG_COLUMNS = [Tags.source, Tags.turn, Tags.theme, Tags.decided]


def read_turns(path: Path) -> pd.DataFrame:
    """The turns table without its texts, with each turn's `words` instead: counted one row
    group at a time, so the stage never holds the corpus's texts."""
    turns = io.read_table(path, Turns, TURN_COLUMNS)
    texts = pq.ParquetFile(path).iter_batches(columns=[Turns.text])
    counts = [word_counts(batch.column(0).to_pandas()).to_numpy() for batch in texts]
    return turns.assign(words=np.concatenate(counts) if counts else np.zeros(0, dtype=int))


def read_decided_tags(path: Path) -> pd.DataFrame:
    """The decided (turn, theme) rows of the tags table: all the tables count."""
    return io.read_table(path, Tags, TAG_COLUMNS, filters=[(Tags.decided, "==", True)])


def theme_turns(turns: pd.DataFrame, tags: pd.DataFrame) -> pd.DataFrame:
    """One row per turn and decided theme, with the turn's gemeente, year, session and role."""
    decided = tags.loc[tags[Tags.decided], [Tags.source, Tags.turn, Tags.theme]]
    meta = turns[[Turns.source, Turns.turn, Turns.gemeente, Turns.jaar, Turns.role]]
    return decided.merge(meta, on=[Turns.source, Turns.turn], how="inner")


def overview(turns: pd.DataFrame, gemeenten: Sequence[str] = ()) -> pd.DataFrame:
    """Sessions, turns, words and participants per gemeente and year (zero rows for gemeenten
    without sessions in a year)."""
    frame = turns.assign(words=_words(turns))
    grouped = frame.groupby([Turns.gemeente, Turns.jaar])
    counts = pd.DataFrame(
        {
            "sessions": grouped[Turns.source].nunique(),
            "turns": grouped.size(),
            "words": grouped["words"].sum(),
            "participants": frame.drop_duplicates([Turns.source, Turns.speaker])
            .groupby([Turns.gemeente, Turns.jaar])
            .size(),
        }
    )
    grid = _grid(turns, gemeenten)
    out = counts.reindex(grid, fill_value=0).reset_index()
    return Overview.validate(out)


def _grid(turns: pd.DataFrame, gemeenten: Sequence[str]) -> pd.MultiIndex:
    names = sorted(set(gemeenten) | set(turns[Turns.gemeente]))
    years = sorted(set(turns[Turns.jaar].astype(int)))
    return pd.MultiIndex.from_product([names, years], names=[Turns.gemeente, Turns.jaar])


def participants(turns: pd.DataFrame) -> pd.DataFrame:
    """Participants, turns and words per gemeente, year and role (only roles that spoke)."""
    frame = turns.assign(words=_words(turns))
    keys = [Turns.gemeente, Turns.jaar, Turns.role]
    grouped = frame.groupby(keys)
    out = pd.DataFrame(
        {
            "participants": frame.drop_duplicates([Turns.source, Turns.speaker])
            .groupby(keys)
            .size(),
            "turns": grouped.size(),
            "words": grouped["words"].sum(),
        }
    ).reset_index()
    return Participants.validate(out.fillna(0).sort_values(keys, ignore_index=True))


def prevalence(
    turns: pd.DataFrame,
    tags: pd.DataFrame,
    themes: Sequence[str],
    gemeenten: Sequence[str] = (),
) -> pd.DataFrame:
    """Turns and sessions with each theme per gemeente and year, and the share of turns."""
    keys = [Turns.gemeente, Turns.jaar]
    totals = turns.groupby(keys).agg(
        turns_total=(Turns.turn, "size"), sessions_total=(Turns.source, "nunique")
    )
    hits = theme_turns(turns, tags)
    with_theme = hits.groupby([*keys, Tags.theme]).agg(
        turns=(Tags.turn, "size"), sessions=(Tags.source, "nunique")
    )
    grid = pd.MultiIndex.from_tuples(
        [(g, y, t) for g, y in _grid(turns, gemeenten) for t in themes],
        names=[*keys, Tags.theme],
    )
    out = with_theme.reindex(grid, fill_value=0).reset_index()
    out = out.merge(totals.reset_index(), on=keys, how="left")
    out[["turns_total", "sessions_total"]] = out[["turns_total", "sessions_total"]].fillna(0)
    out["share"] = out["turns"] / out["turns_total"].where(out["turns_total"] > 0)
    columns = list(Prevalence.to_schema().columns)
    return Prevalence.validate(out[columns])


def prevalence_by_role(
    turns: pd.DataFrame, tags: pd.DataFrame, themes: Sequence[str]
) -> pd.DataFrame:
    """Share of each role's turns that carry each theme, per gemeente and year."""
    keys = [Turns.gemeente, Turns.jaar, Turns.role]
    totals = turns.groupby(keys).size().rename("turns_total")
    counts = theme_turns(turns, tags).groupby([*keys, Tags.theme]).size().rename("turns")
    grid = pd.MultiIndex.from_tuples(
        [(*k, t) for k in totals.index for t in themes], names=[*keys, Tags.theme]
    )
    out = counts.reindex(grid, fill_value=0).reset_index()
    out = out.merge(totals.reset_index(), on=keys, how="left")
    out["share"] = out["turns"] / out["turns_total"]
    columns = list(PrevalenceByRole.to_schema().columns)
    return PrevalenceByRole.validate(out[columns])


def cooccurrence(turns: pd.DataFrame, tags: pd.DataFrame, themes: Sequence[str]) -> pd.DataFrame:
    """For every ordered theme pair: turns carrying both, per gemeente and year (symmetric)."""
    keys = [Turns.gemeente, Turns.jaar]
    hits = theme_turns(turns, tags)
    pairs = hits.merge(hits, on=[Tags.source, Tags.turn, *keys], suffixes=("_a", "_b"))
    counts = pairs.groupby([*keys, "theme_a", "theme_b"]).size().rename("turns")
    present = turns[keys].drop_duplicates().sort_values(keys)
    grid = pd.MultiIndex.from_tuples(
        [(g, y, a, b) for g, y in present.itertuples(index=False) for a in themes for b in themes],
        names=[*keys, "theme_a", "theme_b"],
    )
    out = counts.reindex(grid, fill_value=0).reset_index()
    own = out[out["theme_a"] == out["theme_b"]].set_index([*keys, "theme_a"])["turns"]
    n_a = own.reindex(pd.MultiIndex.from_frame(out[[*keys, "theme_a"]])).to_numpy()
    n_b = own.reindex(pd.MultiIndex.from_frame(out[[*keys, "theme_b"]])).to_numpy()
    either = n_a + n_b - out["turns"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        out["jaccard"] = np.where(either > 0, out["turns"] / np.maximum(either, 1), np.nan)
    return Cooccurrence.validate(out)


def prevalence_change(prevalence_table: pd.DataFrame) -> pd.DataFrame:
    """Each theme's share against the same gemeente's share in the previous calendar year.

    Without a previous year (the first year, or no sessions in it) the change is null and
    `has_previous` is false.
    """
    keys = [Prevalence.gemeente, Prevalence.theme]
    current = prevalence_table[[*keys, Prevalence.jaar, Prevalence.share]]
    previous = current.assign(jaar=current[Prevalence.jaar] + 1).rename(
        columns={Prevalence.share: "share_previous"}
    )
    out = current.merge(previous, on=[*keys, Prevalence.jaar], how="left")
    out["has_previous"] = out["share_previous"].notna() & out[Prevalence.share].notna()
    out["change"] = (out[Prevalence.share] - out["share_previous"]).where(out["has_previous"])
    columns = list(PrevalenceChange.to_schema().columns)
    return PrevalenceChange.validate(out[columns])


def aggregate(
    turns: pd.DataFrame,
    tags: pd.DataFrame,
    themes: Sequence[str],
    gemeenten: Sequence[str] = (),
) -> dict[str, pd.DataFrame]:
    """All aggregate tables, by name (see TABLES)."""
    prev = prevalence(turns, tags, themes, gemeenten)
    return {
        "overview": overview(turns, gemeenten),
        "participants": participants(turns),
        "prevalence": prev,
        "prevalence_by_role": prevalence_by_role(turns, tags, themes),
        "cooccurrence": cooccurrence(turns, tags, themes),
        "prevalence_change": prevalence_change(prev),
    }


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    p = paths(read_params())
    turns = read_turns(p.turns)
    tags = read_decided_tags(p.tags)
    codebook = load_codebook(p.codebook)
    gemeenten = canonical_names(load_gemeenten(p.gemeenten))
    tables = aggregate(turns, tags, codebook.ids, gemeenten)
    for name, table in tables.items():
        io.write_parquet(table, table_path(p, name))
        io.write_csv(table, table_path(p, name, ".csv"))
    years = sorted(tables["overview"][Overview.jaar].unique())
    log.info(
        "%d tables for %d gemeenten x years %s x %d themes -> %s",
        len(tables),
        tables["overview"][Overview.gemeente].nunique(),
        ", ".join(str(y) for y in years),
        len(codebook.ids),
        p.aggregate,
    )


if __name__ == "__main__":
    main()
