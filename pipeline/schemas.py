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
    line: Series[int] = pa.Field(ge=1)  # line (text formats) or cue number (captions) where the turn starts
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
