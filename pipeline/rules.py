"""Codebook cues as spaCy matchers: phrases on lower-case words, lemma patterns on lemmas.

A hit that overlaps a negative cue of the same theme is dropped ("zo snel mogelijk" is not
mogelijk-maker). Matching runs on Docs rebuilt from the token table, so the `nlp` stage's
tokenisation and lemmas are used as they are, and hit offsets point into the turn text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
import spacy
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc
from spacy.vocab import Vocab

from pipeline.codebook import LEMMA_PREFIX, Codebook, Theme
from pipeline.schemas import Tokens

MAX_GAP = 4  # other words allowed between the lemmas of a pattern


@dataclass(frozen=True)
class Hit:
    """One codebook cue found in a turn."""

    theme: str
    cue: str
    start: int  # character offsets into the turn text
    end: int


def lemma_pattern(pattern: str) -> list[list[dict]]:
    """Matcher patterns for 'a|b c': the lemmas in this order or the reverse, small gaps allowed."""
    slots = [{"LEMMA": {"IN": part.lower().split("|")}} for part in pattern.split()]
    orders = [slots] if len(slots) == 1 else [slots, slots[::-1]]
    patterns = []
    for order in orders:
        spec: list[dict] = []
        for k, slot in enumerate(order):
            if k:
                spec.append({"OP": f"{{0,{MAX_GAP}}}"})
            spec.append(slot)
        patterns.append(spec)
    return patterns


class CueMatcher:
    """All cues of a codebook, compiled once; `find` returns the surviving hits in one Doc."""

    def __init__(self, codebook: Codebook, vocab: Vocab | None = None) -> None:
        self.vocab = vocab or spacy.blank("nl").vocab  # Dutch lexical attributes (LOWER)
        self._phrases = PhraseMatcher(self.vocab, attr="LOWER")
        self._lemmas = Matcher(self.vocab)
        self._labels: dict[int, tuple[str, str, bool]] = {}  # match id -> (theme, cue, negative)
        for theme in codebook.themes:
            self._add_theme(theme)

    def _key(self, theme: str, cue: str, negative: bool) -> str:
        key = f"{'-' if negative else '+'}{theme}\t{cue}"
        self._labels[self.vocab.strings.add(key)] = (theme, cue, negative)
        return key

    def _add_phrase(self, theme: str, phrase: str, negative: bool) -> None:
        words = phrase.lower().replace(",", " ,").split()
        doc = Doc(self.vocab, words=words)
        self._phrases.add(self._key(theme, phrase, negative), [doc])

    def _add_theme(self, theme: Theme) -> None:
        for phrase in theme.phrases:
            self._add_phrase(theme.id, phrase, False)
        for pattern in theme.lemma_patterns:
            self._lemmas.add(
                self._key(theme.id, f"{LEMMA_PREFIX}{pattern}", False), lemma_pattern(pattern)
            )
        for cue in theme.negative_cues:
            if cue.startswith(LEMMA_PREFIX):
                self._lemmas.add(
                    self._key(theme.id, cue, True), lemma_pattern(cue[len(LEMMA_PREFIX) :])
                )
            else:
                self._add_phrase(theme.id, cue, True)

    def find(self, doc: Doc, starts: list[int], ends: list[int]) -> list[Hit]:
        """Hits in `doc`, with offsets mapped through the token offsets of the turn text."""
        found = [(*self._labels[m], s, e) for m, s, e in [*self._phrases(doc), *self._lemmas(doc)]]
        negatives = [(theme, s, e) for theme, _, neg, s, e in found if neg]
        hits = {}
        for theme, cue, negative, s, e in found:
            if negative or any(t == theme and s < ne and ns < e for t, ns, ne in negatives):
                continue
            hits[(theme, cue, s, e)] = Hit(theme, cue, starts[s], ends[e - 1])
        return _shortest_per_start(list(hits.values()))


def _shortest_per_start(hits: list[Hit]) -> list[Hit]:
    """Gap patterns match several lengths from one start; keep the shortest, in text order."""
    best: dict[tuple[str, str, int], Hit] = {}
    for hit in hits:
        key = (hit.theme, hit.cue, hit.start)
        if key not in best or hit.end < best[key].end:
            best[key] = hit
    return sorted(best.values(), key=lambda h: (h.start, h.end, h.theme, h.cue))


def docs_from_tokens(
    tokens: pd.DataFrame, vocab: Vocab
) -> Iterator[tuple[str, int, Doc, list[int], list[int]]]:
    """Rebuild one Doc per turn from the token table: (source, turn, doc, starts, ends)."""
    ordered = tokens.sort_values([Tokens.source, Tokens.turn, Tokens.i], kind="stable")
    for (source, turn), group in ordered.groupby([Tokens.source, Tokens.turn], sort=False):
        starts = group[Tokens.start].tolist()
        ends = group[Tokens.end].tolist()
        spaces = [nxt > end for end, nxt in zip(ends, starts[1:], strict=False)] + [False]
        sent = group[Tokens.sent].tolist()
        sent_starts = [True] + [a != b for a, b in zip(sent, sent[1:], strict=False)]
        doc = Doc(
            vocab,
            words=group[Tokens.text].tolist(),
            spaces=spaces,
            lemmas=group[Tokens.lemma].tolist(),
            sent_starts=sent_starts,
        )
        yield source, int(turn), doc, starts, ends


def find_hits(
    tokens: pd.DataFrame, matcher: CueMatcher, texts: dict[tuple[str, int], str]
) -> pd.DataFrame:
    """All surviving cue hits of all turns: source, turn, theme, cue, start, end, text."""
    rows = []
    for source, turn, doc, starts, ends in docs_from_tokens(tokens, matcher.vocab):
        text = texts[(source, turn)]
        for hit in matcher.find(doc, starts, ends):
            rows.append(
                (source, turn, hit.theme, hit.cue, hit.start, hit.end, text[hit.start : hit.end])
            )
    return pd.DataFrame(rows, columns=["source", "turn", "theme", "cue", "start", "end", "text"])
