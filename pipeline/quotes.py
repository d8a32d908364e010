"""From a number to the turns behind it: the tagged turns of a theme, strongest evidence first."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from pipeline.aggregate import word_counts
from pipeline.schemas import Evidence, Tags, Turns

# The order in which candidate quotes are ranked: the model's score, then how much evidence.
STRENGTH = ["score", "evidence_weight", "rule_hits"]


def quote_candidates(
    turns: pd.DataFrame,
    tags: pd.DataFrame,
    evidence: pd.DataFrame,
    gemeente: str | None = None,
    jaar: int | None = None,
    theme: str | None = None,
) -> pd.DataFrame:
    """Every turn with a decided theme (optionally one gemeente, year or theme), with its score,
    its evidence (cues and summed weight) and its text, strongest first."""
    chosen = turns
    if gemeente is not None:
        chosen = chosen[chosen[Turns.gemeente] == gemeente]
    if jaar is not None:
        chosen = chosen[chosen[Turns.jaar] == jaar]
    decided = tags[tags[Tags.decided]]
    if theme is not None:
        decided = decided[decided[Tags.theme] == theme]
    keys = [Tags.source, Tags.turn, Tags.theme]
    out = decided[[*keys, Tags.score, Tags.rule_hits]].merge(
        chosen[
            [
                Turns.source,
                Turns.turn,
                Turns.gemeente,
                Turns.jaar,
                Turns.datum,
                Turns.sessie,
                Turns.speaker,
                Turns.role,
                Turns.text,
            ]
        ],
        on=[Turns.source, Turns.turn],
        how="inner",
    )
    # the candidates' evidence only: grouping all of it took 9 s per call at 5,000 transcripts
    ev = evidence[[*keys, Evidence.weight, Evidence.cue]].merge(out[keys], on=keys, how="inner")
    per_turn = pd.concat(
        [
            ev.groupby(keys)[Evidence.weight].sum().rename("evidence_weight"),
            ev.drop_duplicates([*keys, Evidence.cue])  # each cue once, in evidence order
            .groupby(keys)[Evidence.cue]
            .agg("; ".join)
            .rename("cues"),
        ],
        axis=1,
    )
    out = out.merge(per_turn.reset_index(), on=keys, how="left")
    out["evidence_weight"] = out["evidence_weight"].fillna(0.0)
    out["cues"] = out["cues"].fillna("")
    out["words"] = word_counts(out[Turns.text])
    order = [*STRENGTH, Tags.source, Tags.turn, Tags.theme]
    ascending = [False] * len(STRENGTH) + [True, True, True]
    return out.sort_values(order, ascending=ascending, ignore_index=True)


def select_quotes(
    candidates: pd.DataFrame, n: int, min_words: int = 8, max_words: int = 90
) -> pd.DataFrame:
    """The `n` strongest candidates per theme and gemeente.

    Preferred, in this order: a turn of readable length with a codebook cue, one per session
    before a second from the same session, then the strongest (candidates come strongest first).
    """
    if candidates.empty:
        return candidates.assign(rank=pd.Series(dtype=int))
    frame = candidates.assign(
        _clear=candidates["words"].between(min_words, max_words) & (candidates["rule_hits"] > 0),
        _strength=range(len(candidates)),
    )
    frame["_nth_in_session"] = frame.groupby(
        [Tags.theme, Turns.gemeente, "_clear", Turns.source]
    ).cumcount()
    frame = frame.sort_values(
        [Tags.theme, Turns.gemeente, "_clear", "_nth_in_session", "_strength"],
        ascending=[True, True, False, True, True],
    )
    frame["rank"] = frame.groupby([Tags.theme, Turns.gemeente]).cumcount() + 1
    chosen = frame[frame["rank"] <= n]
    return chosen.drop(columns=["_clear", "_strength", "_nth_in_session"]).reset_index(drop=True)


def highlight(text: str, spans: Iterable[tuple[int, int]]) -> list[tuple[str, bool]]:
    """Split `text` into (piece, is_evidence) parts; overlapping spans are merged."""
    merged: list[list[int]] = []
    for start, end in sorted((max(0, s), min(len(text), e)) for s, e in spans):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    parts: list[tuple[str, bool]] = []
    at = 0
    for start, end in merged:
        if start > at:
            parts.append((text[at:start], False))
        parts.append((text[start:end], True))
        at = end
    if at < len(text):
        parts.append((text[at:], False))
    return parts


def evidence_spans(
    evidence: pd.DataFrame, source: str, turn: int, theme: str, kind: str | None = None
) -> list[tuple[int, int]]:
    """The (start, end) offsets of the evidence for one turn and theme (optionally one kind:
    'regel' for codebook cues, 'model' for learned words)."""
    rows = evidence[
        (evidence[Evidence.source] == source)
        & (evidence[Evidence.turn] == turn)
        & (evidence[Evidence.theme] == theme)
    ]
    if kind is not None:
        rows = rows[rows[Evidence.kind] == kind]
    return list(zip(rows[Evidence.start].astype(int), rows[Evidence.end].astype(int)))
