"""Pseudonymise a session's turns with deduce: names, contact data, addresses, dates of birth.

deduce (Dutch de-identification) finds the candidates; this module configures it for spoken
transcripts, feeds it the names the transcript already knows (speaker labels, `deelnemers`),
drops hits on allow-listed places and organisations, keeps ordinary dates and ages, and replaces
what is left with placeholders that are stable within one session. The name -> placeholder
mapping lives only in memory while one session is processed.
"""

from __future__ import annotations

import bisect
import gc
import logging
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import docdeid as dd
import yaml

logger = logging.getLogger(__name__)

PLACEHOLDER_RE = re.compile(
    r"\[(?:PERSOON-\d+|TELEFOON|EMAIL|ADRES|POSTCODE|GEBOORTEDATUM|URL|BSN|ID)\]"
)
_PERSON_PLACEHOLDER_RE = re.compile(r"^\[PERSOON-(\d+)\]$")
_SEPARATOR = "\n\n"  # between the turns of a session in the single deduce call

# deduce tag (after its own post-processing) -> our placeholder; tags not listed are kept.
# `datum` is handled separately: only dates of birth become [GEBOORTEDATUM].
TAG_PLACEHOLDERS = {
    "persoon": "PERSOON",
    "patient": "PERSOON",
    "telefoonnummer": "TELEFOON",
    "emailadres": "EMAIL",
    "locatie": "ADRES",  # street + house number, postbus (place names are not annotated)
    "postcode": "POSTCODE",
    "url": "URL",
    "bsn": "BSN",
    "id": "ID",
}

# deduce processors we do not run: place names and ages are not personal data here, deduce's
# patient annotator handles one patient (we pass the session's known names instead), and we
# redact ourselves (one numbering across the whole session, not per text).
_DISABLED = ("placename", "age", "patient_name", "redactor")

_MONTHS = (
    "januari|jan|februari|feb|maart|mrt|april|apr|mei|juni|jun|juli|jul|augustus|aug|"
    "september|sept|sep|oktober|okt|november|nov|december|dec"
)
# Extra annotators for spoken transcripts, in deduce's own config format.
_EXTRA_ANNOTATORS = {
    "phone_spoken": {  # +31 6 12 34 56 78, 0031 (0)6-..., 06-41-23-88-10, 06 412 388 10
        "annotator_type": "docdeid.process.RegexpAnnotator",
        "group": "phone_numbers",
        "args": {
            "regexp_pattern": r"(?<![\w+])(?:(?:\+|00)31[\s.-]*(?:\(0\))?[\s.-]*[1-9](?:[\s.-]?\d)"
            r"{7,8}|0[1-9](?:[\s.-]?\d){8}|\(0\d{2,3}\)[\s.-]*\d(?:[\s.-]?\d){5,6})(?![\d])",
            "tag": "telefoonnummer",
            "priority": 1,
        },
    },
    "email_any_tld": {  # deduce only knows a dozen top-level domains
        "annotator_type": "docdeid.process.RegexpAnnotator",
        "group": "email_addresses",
        "args": {
            "regexp_pattern": r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-zA-Z]{2,24}\b",
            "tag": "emailadres",
        },
    },
    "email_spoken": {  # "karel punt jansen apenstaartje gmail punt com"
        "annotator_type": "docdeid.process.RegexpAnnotator",
        "group": "email_addresses",
        "args": {
            "regexp_pattern": r"(?i)\b[\w.-]+(?: (?:punt|streepje|liggend streepje) [\w-]+)*"
            r" (?:apenstaartje|apestaartje) [\w-]+(?: punt [\w-]+)+",
            "tag": "emailadres",
        },
    },
    "date_day_month": {  # "jarig op 3 mei": kept unless the context says birth (see below)
        "annotator_type": "docdeid.process.RegexpAnnotator",
        "group": "dates",
        "args": {
            "regexp_pattern": rf"(?i)(?<!\d)(?:[1-9]|0[1-9]|[12]\d|3[01])(?:e|ste|de)? "
            rf"(?:{_MONTHS})\b(?:[ .,/-]*(?:19|20)\d{{2}})?",
            "tag": "datum",
        },
    },
}
_CONFIG = {
    "annotators": {
        # keep postcodes apart from street addresses (deduce tags both `locatie`)
        "postal_code": {"args": {"tag": "postcode"}},
        **_EXTRA_ANNOTATORS,
    }
}

_BIRTH_BEFORE_RE = re.compile(
    r"(?:geboren|geboortedatum|geboortedag|geb\.|jarig|verjaardag|verjaart)\b[^.?!\n]{0,40}$"
    r"|\b(?:ben|is|zijn|was|bent)\s+(?:ik\s+|hij\s+|zij\s+|ze\s+)?van\s+(?:de\s+)?$",
    re.IGNORECASE,
)
_BIRTH_AFTER_RE = re.compile(r"^[\s,]*(?:geboren|jarig)\b", re.IGNORECASE)

# Titles and forms of address that are not part of the name key ("mevrouw Jansen" ~ "Jansen").
_TITLES = frozenset(
    [
        "mevrouw",
        "mevr",
        "mw",
        "meneer",
        "mijnheer",
        "dhr",
        "heer",
        "juffrouw",
        "juf",
        "meester",
        "dokter",
        "dr",
        "drs",
        "ir",
        "ing",
        "prof",
        "mr",
        "oom",
        "tante",
        "opa",
        "oma",
        "zuster",
        "broeder",
        "buurman",
        "buurvrouw",
        "wethouder",
    ]
)
_DUTCH_INTERFIXES = frozenset(
    [
        "van",
        "de",
        "der",
        "den",
        "ter",
        "ten",
        "te",
        "het",
        "'t",
        "in",
        "op",
        "onder",
        "aan",
        "bij",
        "vd",
        "v/d",
    ]
)
_FUNCTION_WORDS = frozenset(
    [
        "van",
        "de",
        "der",
        "den",
        "het",
        "'t",
        "in",
        "uit",
        "bij",
        "naar",
        "op",
        "te",
        "ten",
        "ter",
        "en",
    ]
)
# Speaker labels that are roles or generic, not names: they are never searched in the text.
_GENERIC_LABELS = frozenset(
    [
        "spreker",
        "deelnemer",
        "interviewer",
        "interviewster",
        "respondent",
        "moderator",
        "facilitator",
        "gespreksleider",
        "onbekend",
        "iedereen",
        "allen",
        "meerdere",
        "anderen",
        "publiek",
        "zaal",
        "vrouw",
        "man",
        "bewoner",
        "bewoonster",
        "wethouder",
        "ambtenaar",
        "buurtwerker",
        "opbouwwerker",
        "voorzitter",
        "notulist",
        "gast",
    ]
)
# Given names and surnames that are also ordinary Dutch words. Such a known name is redacted
# only where it is capitalised as in the label ("Roos zei ...") and never in lowercase
# ("een roos"); other known names are also redacted in lowercase (ASR output).
_NAMES_THAT_ARE_WORDS = frozenset(
    [
        "roos",
        "hoop",
        "rust",
        "vos",
        "bakker",
        "visser",
        "smit",
        "boer",
        "kok",
        "mulder",
        "schipper",
        "koster",
        "bos",
        "berg",
        "wit",
        "zwart",
        "groen",
        "hart",
        "iris",
        "lelie",
        "jasmijn",
        "bas",
        "mart",
        "storm",
        "zon",
        "sterre",
        "hazel",
        "vink",
        "de",
        "haan",
        "haan",
        "winter",
        "zomer",
        "lente",
        "dekker",
        "meijer",
        "kuiper",
    ]
)


# Words that open spoken sentences and that deduce's name lists contain ("Mooi.", "Super.").
_INTERJECTIONS = frozenset(
    [
        "mooi",
        "groen",
        "super",
        "top",
        "prima",
        "goed",
        "fijn",
        "precies",
        "zeker",
        "echt",
        "klopt",
        "nou",
        "kijk",
        "oké",
        "ok",
        "dank",
        "welkom",
        "leuk",
        "jammer",
        "gezellig",
        "tja",
        "ach",
        "nee",
        "ja",
        "hoor",
        "stil",
        "rustig",
        "lekker",
        "sterk",
        "helder",
        "duidelijk",
        "dag",
        "hoi",
        "hallo",
        "hey",
        "doei",
        "bedankt",
        "groetjes",
        "sorry",
        "zeg",
        "nogmaals",
    ]
)


@dataclass(frozen=True)
class Allowlist:
    """Terms that are not personal data (organisations, municipalities, places), as one regex."""

    terms: frozenset[str]
    pattern: re.Pattern[str] = field(compare=False, repr=False)

    @classmethod
    def from_terms(cls, terms: Iterable[str]) -> Allowlist:
        """Compile whole-word, case-insensitive matching, longest term first."""
        clean = frozenset(t.strip() for t in terms if t and t.strip())
        alternatives = "|".join(re.escape(t) for t in sorted(clean, key=len, reverse=True))
        pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)" if clean else r"(?!)", re.I)
        return cls(terms=clean, pattern=pattern)

    def __contains__(self, term: object) -> bool:
        return isinstance(term, str) and self.pattern.fullmatch(term.strip()) is not None

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of allow-listed terms in `text`."""
        return [m.span() for m in self.pattern.finditer(text)]


def load_allowlist(allowlist_path: Path, gemeenten_path: Path) -> Allowlist:
    """Organisations from the allow-list file plus municipality names, aliases and places."""
    organisations = yaml.safe_load(Path(allowlist_path).read_text(encoding="utf-8")) or {}
    gemeenten = yaml.safe_load(Path(gemeenten_path).read_text(encoding="utf-8")) or {}
    terms: set[str] = set()
    for values in organisations.values():
        terms.update(str(v) for v in values or ())
    for name, entry in gemeenten.items():
        terms.add(str(name))
        terms.update(str(v) for v in (entry or {}).get("aliases", ()))
        terms.update(str(v) for v in (entry or {}).get("plaatsen", ()))
    return Allowlist.from_terms(terms)


class KnownNameAnnotator(dd.process.Annotator):
    """Annotates the session's known names, passed per text as `known_names` metadata.

    The metadata holds lookup annotators built once per session; hits are tagged like deduce's
    patient names, so deduce's own context rules extend them ("Karel" + "Jansen").
    """

    def annotate(self, doc: dd.Document) -> list[dd.Annotation]:
        """Annotations from every lookup annotator in the document's metadata."""
        annotators = doc.metadata["known_names"] if doc.metadata else None
        return [ann for annotator in annotators or () for ann in annotator.annotate(doc)]


def _import_deduce() -> type:
    """Import deduce without keeping the DEBUG logging it switches on at import."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    from deduce import Deduce

    root.handlers[:] = handlers
    root.setLevel(level)
    return Deduce


@contextmanager
def gc_paused() -> Iterator[None]:
    """Garbage collection off for the block (and back as it was, even on error).

    Unpickling deduce's lookup cache creates millions of objects, each allocation burst
    triggering a collection that finds nothing to free: ~4x faster without.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_deidentifier() -> dd.DocDeid:
    """deduce configured for transcripts; builds or loads its lookup cache (slow the first time)."""
    deduce = _import_deduce()
    with gc_paused():
        deid = deduce(config=_CONFIG)
        for group_name in deid.processors.get_names(recursive=False):
            group = deid.processors[group_name]
            for name in _DISABLED:
                if name in group.get_names(recursive=False):
                    group.remove_processor(name)
        names_group = deid.processors["names"]
        position = names_group.get_names(recursive=False).index("name_context")
        names_group.add_processor(
            "known_names", KnownNameAnnotator(tag="achternaam_patient"), position=position
        )
        # The lookup tables live as long as the process. Frozen, the garbage collector stops
        # walking their millions of objects on every full collection: pseudonymising one
        # transcript took 14 s with them in the heap, and forked workers no longer copy every
        # shared page. Frozen before collection is switched back on: the first collection after
        # the load would otherwise walk them all once (1.5 s).
        gc.freeze()
    return deid


def _known_name_annotators(
    known_names: Sequence[str], allowlist: Allowlist, tokenizer: dd.Tokenizer
) -> list[dd.process.Annotator]:
    """Case-sensitive and lowercase lookup annotators for the name forms of `known_names`."""
    exact: set[str] = set()
    lower: set[str] = set()
    for name in known_names:
        words = name.split()
        if not is_searchable_name(name):
            continue
        forms = {name}
        first = words[0]
        if len(words) > 1 and first.lower() not in _DUTCH_INTERFIXES:
            forms.add(first)
            rest = words[1:]
            forms.add(" ".join(rest))
            forms.add(" ".join(rest[:1]).capitalize() + " " + " ".join(rest[1:]))
            if len(rest) > 1 and rest[0].lower() not in _DUTCH_INTERFIXES:
                forms.add(rest[-1])  # "el Amrani" -> "Amrani"; never "Berg" from "van den Berg"
        for form in forms:
            form = form.strip()
            if len(form) < 2 or form.lower() in _TITLES or form.lower() in _FUNCTION_WORDS:
                continue
            if form != name and form in allowlist:
                continue  # "Jan van Voorst" must not turn every "van Voorst" into a person
            exact.add(form)
            exact.add(form[0].upper() + form[1:])
            if form.lower() not in _NAMES_THAT_ARE_WORDS:
                lower.add(form.lower())
    annotators = []
    if exact:
        annotators.append(
            dd.process.MultiTokenLookupAnnotator(
                lookup_values=sorted(exact), tokenizer=tokenizer, tag="achternaam_patient"
            )
        )
    if lower:
        annotators.append(
            dd.process.MultiTokenLookupAnnotator(
                lookup_values=sorted(lower),
                tokenizer=tokenizer,
                matching_pipeline=[dd.str.LowercaseString()],
                tag="achternaam_patient",
            )
        )
    return annotators


def _other_name_annotators(
    names: Sequence[str], allowlist: Allowlist, tokenizer: dd.Tokenizer
) -> list[dd.process.Annotator]:
    """A case-sensitive lookup for first names known from other sessions ("Riet", "Ilias");
    titles, function words, allow-listed names and very short names are left out. Names that
    are also words ("Wiel", "Roos") stay in: the lookup matches only the capitalised form, and
    `annotate_session` drops a capitalised ordinary word at a sentence start."""
    forms = set()
    for name in names:
        if not is_searchable_name(name):
            continue
        first = name.split()[0]
        if (
            len(first) >= 3
            and first.isalpha()
            and first[0].isupper()
            and first.lower() not in _TITLES
            and first.lower() not in _FUNCTION_WORDS
            and first not in allowlist
        ):
            forms.add(first)
    if not forms:
        return []
    return [
        dd.process.MultiTokenLookupAnnotator(
            lookup_values=sorted(forms), tokenizer=tokenizer, tag="achternaam_patient"
        )
    ]


_OTHER_NAME_ANNOTATORS: dict[tuple, list] = {}


def _other_name_annotators_cached(
    names: Sequence[str], allowlist: Allowlist, tokenizer: dd.Tokenizer
) -> list[dd.process.Annotator]:
    """`_other_name_annotators`, built once per run: every session of a corpus gets the same
    corpus names, and building the lookup (tokenising each name) cost more than deduce itself
    on short sessions."""
    key = (tuple(names), id(allowlist), id(tokenizer))
    if key not in _OTHER_NAME_ANNOTATORS:
        _OTHER_NAME_ANNOTATORS.clear()  # one corpus at a time
        _OTHER_NAME_ANNOTATORS[key] = _other_name_annotators(names, allowlist, tokenizer)
    return _OTHER_NAME_ANNOTATORS[key]


def is_searchable_name(name: str) -> bool:
    """A label or deelnemer name worth searching in the text ("Karel", not "Spreker 2")."""
    if not name or PLACEHOLDER_RE.fullmatch(name.strip()) or any(ch.isdigit() for ch in name):
        return False
    words = name.lower().split()
    return not all(w in _GENERIC_LABELS or w in _TITLES for w in words) and len(name) >= 2


def _is_birth_date(text: str, start: int, end: int) -> bool:
    """Whether the date at `text[start:end]` is a date of birth, judging by its context."""
    before = text[max(0, start - 60) : start]
    match = _BIRTH_BEFORE_RE.search(before)
    if match and match.group(0).lower().lstrip().split()[0] in {"ben", "is", "zijn", "was", "bent"}:
        return re.search(r"\d{4}|'\d{2}", text[start:end]) is not None  # "is van 3 mei 1948"
    return match is not None or _BIRTH_AFTER_RE.match(text[end : end + 20]) is not None


def _covered_by_allowlist(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    """Whether every content word of `text[start:end]` lies inside an allow-listed term."""
    for m in re.finditer(r"[^\W_]+", text[start:end]):
        s, e = start + m.start(), start + m.end()
        if any(a <= s and e <= b for a, b in spans):
            continue
        if m.group(0).lower() in _FUNCTION_WORDS:
            continue
        return False
    return any(a < end and start < b for a, b in spans)


def _trim_organisation(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> int:
    """New end of a name that runs into "van de <allow-listed>" ("Katarzyna van de Lidl")."""
    for a, b in spans:
        if start < a < end <= b:
            head = re.match(r"(.*?\w)\s+(?:van|bij|uit)\s+(?:de|het|'t)\s+$", text[start:a], re.S)
            if head:
                return start + head.end(1)
    return end


def _trim_leading_words(text: str, start: int, end: int, common: set[str]) -> int:
    """New start of a name that deduce extended over an ordinary word ("Dag Karel").

    A capitalised word inside a sentence is kept: there it is part of the name ("met Wiel
    Hendrix"), even when it is also an ordinary word.
    """
    while m := re.match(r"([^\W\d_]+)[\s.,!?]+(?=\w)", text[start:end]):
        word = m.group(1)
        if word.lower() not in common or word.lower() in _TITLES:
            break
        if word[0].isupper() and not _at_sentence_start(text, start):
            break
        start += m.end()
    return start


_STOP_LIKE = {
    "de",
    "het",
    "een",
    "en",
    "of",
    "maar",
    "want",
    "dus",
    "die",
    "dat",
    "van",
    "met",
    "meneer",
    "mevrouw",
    "mevr",
    "dhr",
    "mw",
    "dag",
    "hoi",
    "hallo",
    "beste",
    "lieve",
}


def _at_sentence_start(text: str, start: int) -> bool:
    before = text[:start].rstrip()
    return not before or before[-1] in ".!?:\n\"'(["


def _is_capitalised_word(text: str, start: int, end: int, common: set[str]) -> bool:
    """Whether the span is one ordinary word capitalised at a sentence start ("Mooi. ...")."""
    word = text[start:end]
    if not word.isalpha() or word.lower() not in common:
        return False
    before = text[:start].rstrip()
    return not before or before[-1] in ".!?…:;\"'‘“(-"


def _name_key(text: str) -> tuple[str, ...]:
    """The words of a person mention without titles, lowercased ("Mevrouw Bakker" -> bakker)."""
    words = [w.lower() for w in re.findall(r"[^\W\d_][\w'’.-]*", text)]
    if words[:2] == ["de", "heer"]:
        words = words[1:]
    while words and words[0].rstrip(".") in _TITLES and len(words) > 1:
        words = words[1:]
    return tuple(w.rstrip(".") for w in words) or (text.lower(),)


def _name_variants(key: tuple[str, ...]) -> set[tuple[str, ...]]:
    """Shorter forms by which the same person may be mentioned: first name, surname."""
    variants = {key}
    if len(key) > 1:
        variants.add(key[-1:])  # "jan de vries" -> "vries" (deduce may tag "de Vries" as "Vries")
        if key[0] not in _DUTCH_INTERFIXES:
            variants.add(key[:1])
            variants.add(key[1:])
    return variants


class _People:
    """The session's person register: mention -> [PERSOON-n], numbered by first appearance."""

    def __init__(self, used: set[int]) -> None:
        self._keys: list[tuple[tuple[str, ...], int]] = []  # (full key, number)
        self._variants: dict[tuple[str, ...], int] = {}
        self._used = used
        self._next = 1

    def _new_number(self) -> int:
        while self._next in self._used:
            self._next += 1
        self._used.add(self._next)
        return self._next

    def lookup(self, text: str) -> str:
        """The placeholder for a mention, registering a new person when it is unknown."""
        existing = _PERSON_PLACEHOLDER_RE.match(text.strip())
        if existing:
            return text.strip()
        key = _name_key(text)
        number = self._find(key)
        if number is None:
            number = self._new_number()
            self._keys.append((key, number))
        for variant in sorted(_name_variants(key)):
            self._variants.setdefault(variant, number)
        return f"[PERSOON-{number}]"

    def _find(self, key: tuple[str, ...]) -> int | None:
        for full, number in self._keys:
            if full == key:
                return number
        if key in self._variants:
            return self._variants[key]
        for variant in sorted(_name_variants(key)):
            for full, number in self._keys:
                if full == variant:
                    return number
        joined = " ".join(key)
        if len(joined) >= 5:
            from rapidfuzz.distance import DamerauLevenshtein

            for full, number in self._keys:
                if DamerauLevenshtein.distance(joined, " ".join(full), score_cutoff=1) <= 1:
                    return number
        return None


def _replacement(tag: str, text: str, start: int, end: int) -> str | None:
    """Our placeholder type for a deduce annotation, or None to keep the text."""
    if tag == "datum":
        return "GEBOORTEDATUM" if _is_birth_date(text, start, end) else None
    return TAG_PLACEHOLDERS.get(tag)


def pseudonymise_session(
    texts: Sequence[str],
    speakers: Sequence[str],
    known_names: Sequence[str],
    *,
    deidentifier: dd.DocDeid,
    allowlist: Allowlist,
    other_names: Sequence[str] = (),
) -> tuple[list[str], list[str]]:
    """Pseudonymised turn texts and speaker labels, with one person numbering per session.

    `other_names` are names known from elsewhere (participants of other sessions): redacted
    where they stand capitalised, unless they are ordinary words.
    """
    spans_per_text = annotate_session(
        texts,
        known_names=[*speakers, *known_names],
        deidentifier=deidentifier,
        allowlist=allowlist,
        other_names=other_names,
    )
    used = {int(m.group(1)) for t in (*texts, *speakers) for m in _placeholder_numbers(t)}
    people = _People(used)
    out_speakers = [people.lookup(s if s.strip() else "?") for s in speakers]
    out_texts = []
    for text, spans in zip(texts, spans_per_text, strict=True):
        pieces, last = [], 0
        for start, end, kind in spans:
            label = people.lookup(text[start:end]) if kind == "PERSOON" else f"[{kind}]"
            pieces += [text[last:start], label]
            last = end
        pieces.append(text[last:])
        out_texts.append("".join(pieces))
    return out_texts, out_speakers


def _placeholder_numbers(text: str) -> Iterable[re.Match[str]]:
    return re.finditer(r"\[PERSOON-(\d+)\]", text)


def annotate_session(
    texts: Sequence[str],
    known_names: Sequence[str],
    *,
    deidentifier: dd.DocDeid,
    allowlist: Allowlist,
    other_names: Sequence[str] = (),
) -> list[list[tuple[int, int, str]]]:
    """Per text, the sorted non-overlapping spans to redact as (start, end, placeholder type)."""
    tokenizer = deidentifier.tokenizers["default"]
    metadata_names = _known_name_annotators(list(dict.fromkeys(known_names)), allowlist, tokenizer)
    full_names = {n.strip().lower() for n in known_names if is_searchable_name(n)}
    structs = getattr(deidentifier, "lookup_structs", None)
    common = set(_INTERJECTIONS)
    if structs is not None:
        common |= structs["common_word"].items() | structs["stop_word"].items()
    metadata_names += _other_name_annotators_cached(other_names, allowlist, tokenizer)
    per_text = _deduce_session(texts, deidentifier, {"known_names": metadata_names})
    result = []
    for text, found in zip(texts, per_text, strict=True):
        protected = [m.span() for m in PLACEHOLDER_RE.finditer(text)]
        allowed = allowlist.spans(text) if found else []
        spans = []
        for start, end, tag in found:
            kind = _replacement(tag, text, start, end)
            if kind is None or any(a < end and start < b for a, b in protected):
                continue
            if kind in {"PERSOON", "ADRES"} and text[start:end].strip().lower() not in full_names:
                if _covered_by_allowlist(text, start, end, allowed):
                    continue
                end = _trim_organisation(text, start, end, allowed)
                if kind == "PERSOON":
                    start = _trim_leading_words(text, start, end, common)
                    if _is_capitalised_word(text, start, end, common):
                        continue
            spans.append((start, end, kind))
        result.append(_with_neighbouring_names(text, sorted(spans), common, allowlist))
    return result


# A capitalised word right before a name ("met Wiel Hendrix") or coordinated with one ("Bilal,
# Ilias en Toon") is part of that name or another name, when it is inside a sentence.
_NAME_BEFORE = re.compile(r"([A-ZÀ-Þ][^\W\d_]+)\s+$")
_NAME_COORDINATED_AFTER = re.compile(r"^(,\s*|\s+en\s+|\s+of\s+)([A-ZÀ-Þ][^\W\d_]+)\b")
_NAME_COORDINATED_BEFORE = re.compile(r"([A-ZÀ-Þ][^\W\d_]+)(,\s*|\s+en\s+|\s+of\s+)$")


def _with_neighbouring_names(
    text: str, spans: list[tuple[int, int, str]], common: set[str], allowlist: Allowlist
) -> list[tuple[int, int, str]]:
    """Grow person spans over first names deduce does not know, by their position in speech."""
    out: list[tuple[int, int, str]] = []
    taken = [(a, b) for a, b, _ in spans]

    def free(a: int, b: int) -> bool:
        return not any(x < b and a < y for x, y in taken) and text[a:b] not in allowlist

    def name_like(word: str, start: int) -> bool:
        return (
            word.lower() not in _STOP_LIKE
            and not _at_sentence_start(text, start)
            and (word.lower() not in common or word[0].isupper())
        )

    for start, end, kind in spans:
        if kind == "PERSOON":
            before = _NAME_BEFORE.search(text[max(0, start - 40) : start])
            if before:
                w_start = start - len(before.group(0))
                word = before.group(1)
                if name_like(word, w_start) and free(w_start, w_start + len(word)):
                    start = w_start
            for pattern, after in (
                (_NAME_COORDINATED_AFTER, True),
                (_NAME_COORDINATED_BEFORE, False),
            ):
                window = text[end : end + 40] if after else text[max(0, start - 40) : start]
                m = pattern.search(window)
                if not m:
                    continue
                word = m.group(2) if after else m.group(1)
                w_start = end + m.start(2) if after else start - len(m.group(0))
                w_end = w_start + len(word)
                if word.lower() not in common and name_like(word, w_start) and free(w_start, w_end):
                    out.append((w_start, w_end, "PERSOON"))
                    taken.append((w_start, w_end))
        out.append((start, end, kind))
    return sorted(set(out))


def _deduce_session(
    texts: Sequence[str], deidentifier: dd.DocDeid, metadata: dict
) -> list[list[tuple[int, int, str]]]:
    """deduce's annotations per text, from one call on the whole session (about 1.6x faster).

    Texts are joined with a blank line, which no deduce pattern crosses; an annotation that
    would cross one anyway is cut at the text boundaries.
    """
    starts, pos = [], 0
    for text in texts:
        starts.append(pos)
        pos += len(text) + len(_SEPARATOR)
    per_text: list[list[tuple[int, int, str]]] = [[] for _ in texts]
    if not any(t.strip() for t in texts):
        return per_text
    doc = deidentifier.deidentify(_SEPARATOR.join(texts), metadata=metadata)
    for ann in doc.annotations:
        i = bisect.bisect_right(starts, ann.start_char) - 1
        while i < len(texts) and starts[i] < ann.end_char:
            start = max(ann.start_char, starts[i]) - starts[i]
            end = min(ann.end_char, starts[i] + len(texts[i])) - starts[i]
            if end > start and texts[i][start:end].strip():
                per_text[i].append((start, end, ann.tag))
            i += 1
    return per_text


def main() -> None:
    """Build or load deduce's lookup cache once (run by `make setup`) and report the time."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started = time.perf_counter()
    load_deidentifier()
    print(f"pseudonymise: deduce ready in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
