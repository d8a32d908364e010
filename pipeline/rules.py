"""Codebook cues as spaCy matchers: phrases on lower-case words, lemma patterns on lemmas.

A hit that overlaps a negative cue of the same theme is dropped ("zo snel mogelijk" is not
mogelijk-maker). Matching runs on Docs rebuilt from the token table, so the `nlp` stage's
tokenisation and lemmas are used as they are, and hit offsets point into the turn text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from spacy.attrs import LEMMA
from spacy.lang.nl import Dutch
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc
from spacy.vocab import Vocab, create_vocab

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


@dataclass(frozen=True)
class LemmaCue:
    """One lemma-pattern cue with a Matcher of its own.

    The gap patterns are expensive to run, and a pattern can only match a Doc that holds one of
    the lemmas of each of its slots; `could_match` checks that on the Doc's lemma hashes first.
    """

    slots: tuple[frozenset[int], ...]  # per slot: the hashes of its alternative lemmas
    matcher: Matcher

    def could_match(self, doc_lemmas: set[int]) -> bool:
        return all(not slot.isdisjoint(doc_lemmas) for slot in self.slots)


class CueMatcher:
    """All cues of a codebook, compiled once; `find` returns the surviving hits in one Doc."""

    def __init__(self, codebook: Codebook, vocab: Vocab | None = None) -> None:
        # Dutch lexical attributes (LOWER) without building a tokenizer: the Docs are rebuilt from
        # the token table, and spacy.blank("nl") spent half a second on tokenizer exceptions
        self.vocab = vocab or create_vocab("nl", Dutch.Defaults)
        self._phrases = PhraseMatcher(self.vocab, attr="LOWER")
        self._lemma_cues: list[LemmaCue] = []
        self._cues_by_lemma: dict[int, list[int]] = {}  # first-slot lemma -> its cues' positions
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

    def _add_lemma_pattern(self, theme: str, pattern: str, negative: bool) -> None:
        cue = f"{LEMMA_PREFIX}{pattern}"
        matcher = Matcher(self.vocab)
        matcher.add(self._key(theme, cue, negative), lemma_pattern(pattern))
        slots = tuple(
            frozenset(self.vocab.strings.add(lemma) for lemma in part.lower().split("|"))
            for part in pattern.split()
        )
        for lemma in slots[0]:
            self._cues_by_lemma.setdefault(lemma, []).append(len(self._lemma_cues))
        self._lemma_cues.append(LemmaCue(slots, matcher))

    def _add_theme(self, theme: Theme) -> None:
        for phrase in theme.phrases:
            self._add_phrase(theme.id, phrase, False)
        for pattern in theme.lemma_patterns:
            self._add_lemma_pattern(theme.id, pattern, False)
        for cue in theme.negative_cues:
            if cue.startswith(LEMMA_PREFIX):
                self._add_lemma_pattern(theme.id, cue[len(LEMMA_PREFIX) :], True)
            else:
                self._add_phrase(theme.id, cue, True)

    def _lemma_matches(self, doc: Doc) -> list[tuple[int, int, int]]:
        doc_lemmas = set(np.unique(doc.to_array(LEMMA)).tolist())
        triggered = {k for lemma in doc_lemmas & self._cues_by_lemma.keys()
                     for k in self._cues_by_lemma[lemma]}
        cues = [self._lemma_cues[k] for k in sorted(triggered)]
        return [match for cue in cues if cue.could_match(doc_lemmas) for match in cue.matcher(doc)]

    def find(self, doc: Doc, starts: list[int], ends: list[int]) -> list[Hit]:
        """Hits in `doc`, with offsets mapped through the token offsets of the turn text."""
        matches = [*self._phrases(doc), *self._lemma_matches(doc)]
        found = [(*self._labels[m], s, e) for m, s, e in matches]
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
    source = ordered[Tokens.source].to_numpy()
    turn = ordered[Tokens.turn].to_numpy()
    start = ordered[Tokens.start].to_numpy()
    end = ordered[Tokens.end].to_numpy()
    sent = ordered[Tokens.sent].to_numpy()
    first = np.ones(len(ordered), dtype=bool)  # the first token of its turn
    first[1:] = (source[1:] != source[:-1]) | (turn[1:] != turn[:-1])
    last = np.append(first[1:], True)
    spaces = np.zeros(len(ordered), dtype=bool)
    spaces[:-1] = start[1:] > end[:-1]
    spaces &= ~last
    sent_starts = first.copy()
    sent_starts[1:] |= sent[1:] != sent[:-1]
    columns = [
        start.tolist(),
        end.tolist(),
        ordered[Tokens.text].tolist(),
        spaces.tolist(),
        ordered[Tokens.lemma].tolist(),
        sent_starts.tolist(),
    ]
    bounds = [*np.flatnonzero(first).tolist(), len(ordered)]
    for a, b in zip(bounds, bounds[1:], strict=False):
        starts, ends, words, spaced, lemmas, sentence_starts = (c[a:b] for c in columns)
        doc = Doc(vocab, words=words, spaces=spaced, lemmas=lemmas, sent_starts=sentence_starts)
        yield source[a], int(turn[a]), doc, starts, ends


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
