"""Every table that crosses a stage boundary, declared once. Stages validate what they write."""

from __future__ import annotations

import pandas as pd
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


class Overview(pa.DataFrameModel):
    """Sessions, turns, words and participants per gemeente and year (`aggregate` output)."""

    gemeente: Series[str]
    jaar: Series[int] = pa.Field(ge=1900, le=2100)
    sessions: Series[int] = pa.Field(ge=0)  # a session is one transcript (`source`)
    turns: Series[int] = pa.Field(ge=0)
    words: Series[int] = pa.Field(ge=0)  # whitespace-separated words of Turns.text
    participants: Series[int] = pa.Field(ge=0)  # distinct speakers per session, summed

    class Config:
        coerce = True
        strict = True
        unique = ["gemeente", "jaar"]


class Participants(pa.DataFrameModel):
    """Participants, turns and words per gemeente, year and role (`aggregate` output)."""

    gemeente: Series[str]
    jaar: Series[int] = pa.Field(ge=1900, le=2100)
    role: Series[str] = pa.Field(isin=ROLES)
    participants: Series[int] = pa.Field(ge=0)
    turns: Series[int] = pa.Field(ge=0)
    words: Series[int] = pa.Field(ge=0)

    class Config:
        coerce = True
        strict = True
        unique = ["gemeente", "jaar", "role"]


class Prevalence(pa.DataFrameModel):
    """How often a theme occurs per gemeente and year; `share` is null without sessions
    (`aggregate` output)."""

    gemeente: Series[str]
    jaar: Series[int] = pa.Field(ge=1900, le=2100)
    theme: Series[str]
    turns: Series[int] = pa.Field(ge=0)  # turns with the theme decided
    turns_total: Series[int] = pa.Field(ge=0)
    share: Series[float] = pa.Field(ge=0, le=1, nullable=True)  # turns / turns_total
    sessions: Series[int] = pa.Field(ge=0)  # sessions in which the theme occurs
    sessions_total: Series[int] = pa.Field(ge=0)

    class Config:
        coerce = True
        strict = True
        unique = ["gemeente", "jaar", "theme"]


class PrevalenceByRole(pa.DataFrameModel):
    """Theme prevalence per gemeente, year and speaker role (`aggregate` output)."""

    gemeente: Series[str]
    jaar: Series[int] = pa.Field(ge=1900, le=2100)
    role: Series[str] = pa.Field(isin=ROLES)
    theme: Series[str]
    turns: Series[int] = pa.Field(ge=0)
    turns_total: Series[int] = pa.Field(ge=1)
    share: Series[float] = pa.Field(ge=0, le=1)

    class Config:
        coerce = True
        strict = True
        unique = ["gemeente", "jaar", "role", "theme"]


class Cooccurrence(pa.DataFrameModel):
    """Turns that carry both themes, per gemeente and year; symmetric, the diagonal is the
    theme's own count (`aggregate` output)."""

    gemeente: Series[str]
    jaar: Series[int] = pa.Field(ge=1900, le=2100)
    theme_a: Series[str]
    theme_b: Series[str]
    turns: Series[int] = pa.Field(ge=0)
    jaccard: Series[float] = pa.Field(ge=0, le=1, nullable=True)  # both / either; null if neither

    class Config:
        coerce = True
        strict = True
        unique = ["gemeente", "jaar", "theme_a", "theme_b"]


class PrevalenceChange(pa.DataFrameModel):
    """Change of a theme's share against the previous calendar year (`aggregate` output)."""

    gemeente: Series[str]
    jaar: Series[int] = pa.Field(ge=1900, le=2100)
    theme: Series[str]
    share: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    share_previous: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    change: Series[float] = pa.Field(ge=-1, le=1, nullable=True)  # share - share_previous
    has_previous: Series[bool]  # false: first year, or no sessions in jaar - 1

    class Config:
        coerce = True
        strict = True
        unique = ["gemeente", "jaar", "theme"]


class TopicsPerGemeente(pa.DataFrameModel):
    """What the report reads from the `topics` stage (issue 5): emerging topics per gemeente and
    year. Optional input; extra columns are allowed."""

    gemeente: Series[str]
    jaar: Series[int] = pa.Field(ge=1900, le=2100)
    topic: Series[int]
    words: Series[str]  # the topic's top words, ', '-joined
    size: Series[int] = pa.Field(ge=0)  # units (sentences or turns) in the topic
    overlap_theme: Series[str] = pa.Field(nullable=True)  # codebook theme it overlaps, or null

    class Config:
        coerce = True
        strict = False


class TopicAssignments(pa.DataFrameModel):
    """The BERTopic topic of every unit (`topics` output); `sent` is -1 when the unit is a turn,
    topic -1 is HDBSCAN's outliers."""

    source: Series[str]
    turn: Series[int] = pa.Field(ge=1)
    sent: Series[int] = pa.Field(ge=-1)
    topic: Series[int] = pa.Field(ge=-1)

    class Config:
        coerce = True
        strict = True
        unique = ["source", "turn", "sent"]


class TopicInfo(pa.DataFrameModel):
    """One row per topic: words, size, examples and overlap with the codebook (`topics` output).

    `example_<k>` / `example_<k>_source` / `example_<k>_turn` (k = 1..3) hold the representative
    pseudonymised sentences; they are empty when a topic has fewer units."""

    topic: Series[int] = pa.Field(ge=-1)
    size: Series[int] = pa.Field(ge=0)
    label: Series[str]
    words: Series[str]  # top words (lemmas), ', '-joined, strongest first
    overlap_theme: Series[str] = pa.Field(nullable=True)  # null: a new topic (or topic -1)
    overlap_score: Series[float] = pa.Field(ge=0, le=1)  # best theme's max(word, tag) score
    overlap_words: Series[str]  # top words that are cue words of overlap's best theme
    overlap_tag_share: Series[float] = pa.Field(ge=0, le=1)  # units whose turn has that theme
    is_new: Series[bool]  # a real topic (not -1) without a codebook theme
    example_1: Series[str]
    example_1_source: Series[str]
    example_1_turn: Series[int] = pa.Field(ge=0)  # 0 when there is no example
    example_2: Series[str]
    example_2_source: Series[str]
    example_2_turn: Series[int] = pa.Field(ge=0)
    example_3: Series[str]
    example_3_source: Series[str]
    example_3_turn: Series[int] = pa.Field(ge=0)

    class Config:
        coerce = True
        strict = True
        unique = ["topic"]


class TopicsOverTime(pa.DataFrameModel):
    """BERTopic's `topics_over_time`: per period (jaar or datum) the topic's size and words."""

    period: Series[str]  # "2025" or "2025-03-01" (topics.over_time)
    topic: Series[int] = pa.Field(ge=-1)
    words: Series[str]
    frequency: Series[int] = pa.Field(ge=0)

    class Config:
        coerce = True
        strict = True
        unique = ["period", "topic"]


def empty(model: type[pa.DataFrameModel]) -> pd.DataFrame:
    """A table of `model` with no rows, each column of its declared dtype."""
    def dtype(declared: object) -> str:
        return "str" if "string" in str(declared) else str(declared)  # pandas' default strings

    columns = model.to_schema().columns
    return pd.DataFrame({name: pd.Series(dtype=dtype(c.dtype)) for name, c in columns.items()})
