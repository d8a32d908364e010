"""One row of model inputs per turn: lemmas, lower-case text, matched cues, speaker role, and the
lemmas of the turns just before and after it (short answers are coded by what they answer)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.schemas import Tokens, Turns

FEATURE_COLUMNS = (
    "source",
    "turn",
    "role",
    "lemmas",
    "lower",
    "cues",
    "n_words",
    "prev_lemmas",
    "next_lemmas",
)


def turn_features(turns: pd.DataFrame, tokens: pd.DataFrame, hits: pd.DataFrame) -> pd.DataFrame:
    """Model inputs for every turn, in the order of `turns` (no tokens: empty text).

    `prev_lemmas` / `next_lemmas` hold the lemmas of turn - 1 / turn + 1 of the same source, empty
    when that turn is not in `turns` (the first or last turn of a transcript).
    """
    words = tokens[~tokens[Tokens.is_punct]]
    lemma_of = words[Tokens.lemma].where(~words[Tokens.is_placeholder], "persoon")
    text_of = words[Tokens.text].str.lower().where(~words[Tokens.is_placeholder], "persoon")
    grouped = words.groupby([Tokens.source, Tokens.turn], sort=False)
    sizes = grouped.size()
    in_groups = np.argsort(grouped.ngroup().to_numpy(), kind="stable")  # each turn's rows, in order
    joined = pd.DataFrame(
        {
            "lemmas": _joined_per_group(lemma_of.to_numpy()[in_groups], sizes),
            "lower": _joined_per_group(text_of.to_numpy()[in_groups], sizes),
            "n_words": sizes,
        }
    )
    cues = (
        hits.assign(key=hits["theme"] + ":" + hits["cue"])
        .groupby(["source", "turn"])["key"]
        .agg(lambda k: sorted(set(k)))
    )
    source = turns[Turns.source].to_numpy()
    turn = turns[Turns.turn].to_numpy()
    keys = pd.MultiIndex.from_arrays([source, turn])
    lemmas = pd.Series(joined["lemmas"].reindex(keys, fill_value="").to_numpy(), index=keys)
    out = pd.DataFrame(
        {
            "source": source,
            "turn": turn,
            "role": turns[Turns.role].to_numpy(),
            "lemmas": lemmas.to_numpy(),
            "lower": joined["lower"].reindex(keys, fill_value="").to_numpy(),
            "n_words": joined["n_words"].reindex(keys, fill_value=0).astype(int).to_numpy(),
        }
    )
    cue_lists = cues.reindex(keys)
    out["cues"] = [c if isinstance(c, list) else [] for c in cue_lists]
    for column, step in (("prev_lemmas", -1), ("next_lemmas", 1)):
        neighbours = pd.MultiIndex.from_arrays([source, turn + step])
        out[column] = lemmas.reindex(neighbours, fill_value="").to_numpy()
    return out[list(FEATURE_COLUMNS)]


def _joined_per_group(values: np.ndarray, sizes: pd.Series) -> pd.Series:
    """The values of each group joined by spaces; `values` hold the groups one after another."""
    items = values.tolist()
    ends = np.cumsum(sizes.to_numpy()).tolist()
    starts = [0, *ends[:-1]]
    return pd.Series(
        [" ".join(items[a:b]) for a, b in zip(starts, ends, strict=True)], index=sizes.index
    )
