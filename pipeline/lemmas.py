"""Lemma back-off for the fallback pipeline, which has no part-of-speech tagger.

spaCy's lookup table misses many inflected Dutch forms ("geregeld", "zit", "gaven"). Without POS the
rule lemmatizer cannot run, so for a word the lookup does not know we try spaCy's own Dutch
exception and rule tables (spacy-lookups-data) for verbs, nouns and adjectives, and a few regular
verb patterns (ge-…-d/t participles, present-tense stems), accepting a form only when it is a known
lemma in spaCy's index.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml
from spacy.lang.nl.stop_words import STOP_WORDS
from spacy.lookups import Lookups, load_lookups

POS_ORDER = ("verb", "noun", "adj")
# stem spelling: final f/s of a stem becomes v/z before -en (geef -> geven, lees -> lezen)
_VOICED = {"f": "v", "s": "z"}


def load_additions() -> dict[str, str]:
    """Frequent spoken verb forms the lookup table lacks (resources/lemma_aanvullingen.yaml)."""
    text = resources.files("pipeline.resources").joinpath("lemma_aanvullingen.yaml").read_text(
        encoding="utf-8")
    return {str(k): str(v) for k, v in yaml.safe_load(text).items()}


class LemmaBackoff:
    """Lemmatise one lower-cased word with spaCy's Dutch tables, without POS."""

    def __init__(self, lookups: Lookups | None = None) -> None:
        lookups = lookups or load_lookups(
            "nl", ["lemma_lookup", "lemma_rules", "lemma_exc", "lemma_index"]
        )
        self._lookup = lookups.get_table("lemma_lookup")
        self._additions = load_additions()
        self._lemma_values = set(self._lookup.values())
        index = lookups.get_table("lemma_index")
        exc = lookups.get_table("lemma_exc")
        rules = lookups.get_table("lemma_rules")
        self._index = {pos: set(index.get(pos, [])) for pos in POS_ORDER}
        self._exc = {pos: exc.get(pos, {}) for pos in POS_ORDER}
        self._rules = {pos: rules.get(pos, []) for pos in POS_ORDER}
        self.lemma = lru_cache(maxsize=200_000)(self._lemma)

    def _known(self, form: str, pos: str = "verb") -> bool:
        return bool(form) and form in self._index[pos]

    def _lemma(self, word: str) -> str:
        if word in self._additions:
            return self._additions[word]
        if word in STOP_WORDS:  # function words: the tables' guesses are wrong ("met" -> "meten")
            return word
        if word in self._lookup:
            return self._lookup[word]
        if not word.isalpha():
            return word
        if word not in self._lemma_values:
            # a bare verb stem ("geef", "zet", "laat") is far more often a verb in speech than the
            # rare noun the index also lists, unless the lookup uses it as a lemma ("buurt")
            verb = self._verb_form(word)
            if verb:
                return verb
        if any(word in self._index[pos] for pos in POS_ORDER):
            return word
        for pos in POS_ORDER:
            if word in self._exc[pos]:
                return self._exc[pos][word][0]
        for pos in POS_ORDER:
            for old, new in self._rules[pos]:
                if word.endswith(old):
                    form = word[: len(word) - len(old)] + new
                    if self._known(form, pos):
                        return form
        return self._verb_form(word) or word

    def _verb_form(self, word: str) -> str | None:
        """Regular verb forms the tables lack: participles and present-tense stems."""
        candidates = []
        if word.startswith("ge") and word[-1] in "dt" and len(word) > 4:
            candidates.append(word[2:-1])  # geregeld -> regel
        if word[-1] == "t" and len(word) > 3:
            candidates.append(word[:-1])  # werkt -> werk
        candidates.append(word)  # zit -> zit
        for stem in candidates:
            for form in self._infinitives(stem):
                if self._known(form):
                    return form
        return None

    @staticmethod
    def _infinitives(stem: str) -> list[str]:
        forms = [stem + "en", stem + stem[-1] + "en"]  # regel -> regelen, zit -> zitten
        last = _VOICED.get(stem[-1], stem[-1])
        if len(stem) >= 3 and stem[-2] == stem[-3] and stem[-2] in "aeou":
            forms.append(stem[:-2] + last + "en")  # loop -> lopen, geef -> geven
        elif last != stem[-1]:
            forms.append(stem[:-1] + last + "en")  # verf -> verven
        return forms
