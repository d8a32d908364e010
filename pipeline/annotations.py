"""Human coding: read `data/raw/annotations/*.csv` and align it with the turns table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.schemas import Annotations, Turns


@dataclass(frozen=True)
class Coding:
    """Annotated turns aligned with the turns table, and what could not be used (never silent)."""

    labels: pd.DataFrame  # source, turn, then a 0/1 column per codebook theme
    unmatched: list[dict] = field(default_factory=list)  # annotations whose turn does not exist
    unknown_themes: dict[str, int] = field(default_factory=dict)  # theme id -> rows using it
    overridden: int = 0  # rows replaced by a later file for the same turn


def read_annotations(location: Path) -> tuple[pd.DataFrame, int]:
    """One annotation CSV, or all CSVs of a folder in file-name order (a later file's row for
    the same turn wins); also returns how many rows were overridden."""
    location = Path(location)
    files = [location] if location.is_file() else sorted(location.glob("*.csv"))
    frames = []
    for path in files:
        frame = pd.read_csv(
            path, dtype={"source": str, "themes": str, "coder": str}, keep_default_na=False
        )
        missing = {"source", "turn", "themes"} - set(frame.columns)
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        if "coder" not in frame:
            frame["coder"] = path.stem
        frames.append(frame[["source", "turn", "themes", "coder"]])
    if not frames:
        return Annotations.validate(
            pd.DataFrame(
                {
                    c: pd.Series(dtype="int64" if c == "turn" else "str")
                    for c in ("source", "turn", "themes", "coder")
                }
            )
        ), 0
    combined = pd.concat(frames, ignore_index=True)
    combined["turn"] = combined["turn"].astype("int64")
    deduplicated = combined.drop_duplicates(["source", "turn"], keep="last")
    return Annotations.validate(deduplicated.reset_index(drop=True)), len(combined) - len(
        deduplicated
    )


def split_themes(value: str) -> list[str]:
    return sorted({t.strip() for t in str(value).split(";") if t.strip()})


def align(
    annotations: pd.DataFrame, turns: pd.DataFrame, themes: tuple[str, ...], overridden: int = 0
) -> Coding:
    """0/1 labels per theme for every annotated turn that exists in `turns`."""
    keys = turns[[Turns.source, Turns.turn]]
    merged = annotations.merge(keys, on=["source", "turn"], how="left", indicator=True)
    unmatched = merged[merged["_merge"] == "left_only"]
    matched = merged[merged["_merge"] == "both"].reset_index(drop=True)
    coded = matched["themes"].map(split_themes)
    unknown: dict[str, int] = {}
    for theme_list in coded:
        for theme in theme_list:
            if theme not in themes:
                unknown[theme] = unknown.get(theme, 0) + 1
    labels = matched[["source", "turn"]].copy()
    for theme in themes:
        labels[theme] = coded.map(lambda ts, t=theme: int(t in ts)).astype(int)
    return Coding(
        labels=labels,
        unmatched=unmatched[["source", "turn"]].to_dict("records"),
        unknown_themes=unknown,
        overridden=overridden,
    )
