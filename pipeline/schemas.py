"""Every table that crosses a stage boundary, declared once. Stages validate what they write."""

from __future__ import annotations

import pandera.pandas as pa
from pandera.typing import Series

ROLES = ("bewoner", "sociaal-werker", "gemeente", "facilitator", "overig")
STATUSES = ("read", "skipped", "rejected")


class Turns(pa.DataFrameModel):
    """One row per speaker turn, pseudonymised (`ingest` output)."""

    source: Series[str]  # path relative to the transcripts folder, '/' separators
    turn: Series[int] = pa.Field(ge=1)
    line: Series[int] = pa.Field(
        ge=1
    )  # line (text formats) or cue number (captions) where the turn starts
    gemeente: Series[str]
    datum: Series[str] = pa.Field(str_matches=r"^\d{4}-\d{2}-\d{2}$")
    jaar: Series[int] = pa.Field(ge=1900, le=2100)
    sessie: Series[str]
    speaker: Series[str]
    role: Series[str] = pa.Field(isin=ROLES)
    timestamp: Series[str] = pa.Field(nullable=True)  # hh:mm:ss, or null when the turn has none
    text: Series[str]

    class Config:
        strict = True
        unique = ["source", "turn"]


class Tokens(pa.DataFrameModel):
    """One row per token of the analysed text (transcriber notes left out) (`nlp` output)."""

    source: Series[str]
    turn: Series[int] = pa.Field(ge=1)
    sent: Series[int] = pa.Field(ge=0)  # sentence index within the turn
    i: Series[int] = pa.Field(ge=0)  # token index within the turn
    start: Series[int] = pa.Field(ge=0)  # character offsets into Turns.text
    end: Series[int] = pa.Field(ge=0)
    text: Series[str]
    lemma: Series[str]
    pos: Series[str]  # empty when the model has no tagger
    is_alpha: Series[bool]
    is_stop: Series[bool]
    is_punct: Series[bool]
    is_placeholder: Series[bool]  # a pseudonym such as [PERSOON-1]

    class Config:
        strict = True
        unique = ["source", "turn", "i"]


class Sentences(pa.DataFrameModel):
    """One row per sentence (`nlp` output)."""

    source: Series[str]
    turn: Series[int] = pa.Field(ge=1)
    sent: Series[int] = pa.Field(ge=0)
    start: Series[int] = pa.Field(ge=0)
    end: Series[int] = pa.Field(ge=0)
    text: Series[str]

    class Config:
        strict = True
        unique = ["source", "turn", "sent"]


class Annotations(pa.DataFrameModel):
    """Human coding of turns (`data/raw/annotations/*.csv`); `themes` is ';'-joined."""

    source: Series[str]
    turn: Series[int] = pa.Field(ge=1)
    themes: Series[str]
    coder: Series[str]

    class Config:
        coerce = True
        unique = ["source", "turn"]


class Tags(pa.DataFrameModel):
    """One row per turn and theme: the score and the decision (`tag` output)."""

    source: Series[str]
    turn: Series[int] = pa.Field(ge=1)
    theme: Series[str]
    score: Series[float] = pa.Field(ge=0, le=1)
    decided: Series[bool]
    rule_hits: Series[int] = pa.Field(ge=0)

    class Config:
        coerce = True
        strict = True
        unique = ["source", "turn", "theme"]


class Evidence(pa.DataFrameModel):
    """Why a theme was decided: words or phrases with offsets into Turns.text (`tag` output)."""

    source: Series[str]
    turn: Series[int] = pa.Field(ge=1)
    theme: Series[str]
    kind: Series[str] = pa.Field(isin=("regel", "model"))  # codebook cue, or learned n-gram
    cue: Series[str]
    start: Series[int] = pa.Field(ge=0)
    end: Series[int] = pa.Field(ge=0)
    text: Series[str]
    weight: Series[float]

    class Config:
        coerce = True
        strict = True
