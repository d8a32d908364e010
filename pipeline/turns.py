"""Speaker turns from the lines of a text transcript (FORMAT.md "Turns").

A line starts a turn when it reads `[timestamp] Label (role): text`. The timestamp is optional
(`[hh:mm:ss]`, `[mm:ss]`, `hh:mm:ss` or `(mm:ss)`), and so is the role. The colon must be followed
by whitespace or the end of the line ("Om 10:30 ..." is not a turn), and it is looked for only in
the first `MAX_LABEL_CHARS` characters, so a huge line costs one bounded `str.find`.

Which labels are speakers:

- With `deelnemers`, only those names (case-insensitive, whitespace-normalised) start a turn.
  A line that would pass the heuristic below but names someone else is read as continuation text
  with a warning (a typo such as "Karl:" is then visible in the report).
- Without `deelnemers`, a label is a speaker when it has 1–4 words, starts with a capital or a
  digit, and reads like a name or a speaker code ("Karel", "Spreker 2", "R1", "Jan de Boer",
  "Moeder van Ahmed", "Dhr. Jansen"). Running text is kept out by three rules, driven by the word
  lists in `resources/sprekerlabels.yaml`:
  1. no word is a function word, filler or header word ("Maar goed:", "Dus wat ik zeg:",
     "Nou ja:", "Kortom:", "Conclusie:");
  2. every word after the first starts with a capital or digit, unless it is a name particle
     ("de", "van der") or a generic label word ("Meerdere sprekers") — "De vraag:" and
     "Twee dingen:" are text;
  3. the label neither ends in a particle ("Jan de:") nor starts with a preposition ("In
     Overvecht:"); words are letters and digits with inner `.`, `-` or `'` only ("Nou, zeg:" is
     text).

The role comes from the parentheses, else from `deelnemers`, else `overig`. Lines that do not
start a turn continue the current one; non-blank text before the first turn is one error.
A turn whose text is empty is kept (turn numbers stay those of the file) with a warning.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml

from pipeline.metadata import FALLBACK_ROLE, alias_key, normalise_role
from pipeline.problems import Problems, snippet

LABEL_WORDS_FILE = Path(__file__).parent / "resources" / "sprekerlabels.yaml"
MAX_LABEL_WORDS = 4
MAX_LABEL_CHARS = 80
_TIMESTAMP = re.compile(
    r"\[(?:(\d{1,2}):)?(\d{1,3}):(\d{1,2})\]"  # [hh:mm:ss] or [mm:ss]
    r"|\((?:(\d{1,2}):)?(\d{1,3}):(\d{1,2})\)"  # (mm:ss) or (hh:mm:ss)
    r"|(\d{1,2}):(\d{1,2}):(\d{1,2})(?=\s)"  # hh:mm:ss
)
_WORD = re.compile(r"[^\W_](?:[\w'’.\-]{0,78}[^\W_])?\.?")


@dataclass(frozen=True)
class RawTurn:
    """One speaker turn as read from the file; `line` is where it starts (cue number for
    captions)."""

    turn: int
    line: int
    speaker: str
    role: str
    timestamp: str | None
    text: str


@dataclass(frozen=True)
class LabelWords:
    """The word lists of `resources/sprekerlabels.yaml`, case-folded."""

    not_speaker: frozenset[str]
    particles: frozenset[str]
    inner: frozenset[str]
    label_words: frozenset[str]


@dataclass(frozen=True)
class Label:
    """A syntactic `Label (role): text` at the start of a line."""

    label: str
    role: str | None
    text: str


def load_label_words(path: Path = LABEL_WORDS_FILE) -> LabelWords:
    """The speaker-label word lists."""
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)

    def words(key: str) -> frozenset[str]:
        return frozenset(str(w).casefold().rstrip(".") for w in data[key])

    return LabelWords(
        words("geen_spreker"),
        words("tussenvoegsels"),
        words("binnenwoorden"),
        words("labelwoorden"),
    )


def format_seconds(seconds: int) -> str:
    """Seconds as 'hh:mm:ss'."""
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def split_timestamp(line: str) -> tuple[str | None, str | None, str]:
    """(normalised 'hh:mm:ss' or None, the timestamp as written or None, the rest of the line)."""
    stripped = line.lstrip()
    match = _TIMESTAMP.match(stripped)
    if not match:
        return None, None, stripped
    groups = match.groups()
    hours, minutes, seconds = next(groups[i : i + 3] for i in (0, 3, 6) if groups[i + 1])
    rest = stripped[match.end() :].lstrip()
    h, m, s = int(hours or 0), int(minutes), int(seconds)
    if s >= 60 or (hours is not None and m >= 60):
        return None, match.group(), rest
    return format_seconds(h * 3600 + m * 60 + s), match.group(), rest


def split_label(text: str) -> Label | None:
    """`Label (role): text` split into its parts, or None when the line has no such shape."""
    colon = text.find(":", 0, MAX_LABEL_CHARS + 1)
    if colon <= 0 or text[colon + 1 : colon + 2].strip():
        return None
    head, role = text[:colon].rstrip(), None
    if head.endswith(")"):
        opening = head.rfind("(")
        role = head[opening + 1 : -1].strip() if opening > 0 else ""
        head = head[:opening].rstrip() if opening > 0 else ""
        if not role:
            return None
    if not head or "(" in head or ")" in head:
        return None
    return Label(" ".join(head.split()), role, text[colon + 1 :].strip())


def is_speaker_label(label: str, words: LabelWords) -> bool:
    """Whether `label` reads as a speaker without a list of deelnemers (see module docstring)."""
    parts = label.split()
    if not 1 <= len(parts) <= MAX_LABEL_WORDS or not (label[0].isupper() or label[0].isdigit()):
        return False
    keys = [part.casefold().rstrip(".") for part in parts]
    if keys[0] in words.inner or keys[-1] in words.particles | words.inner:
        return False
    for index, (part, key) in enumerate(zip(parts, keys, strict=True)):
        if key in words.particles or (index and key in words.inner):
            continue
        if key in words.not_speaker or not _WORD.fullmatch(part):
            return False
        if index and not (part[0].isupper() or part[0].isdigit() or key in words.label_words):
            return False
    return True


@dataclass(frozen=True)
class Speakers:
    """Who may start a turn: the deelnemers (name -> canonical role) or, without them, any label
    that passes `is_speaker_label`."""

    deelnemers: Mapping[str, str]
    rollen: Mapping[str, str]
    words: LabelWords

    def name(self, label: str) -> str | None:
        """The speaker named by `label`, or None when it is no speaker."""
        if not self.deelnemers:
            return label if is_speaker_label(label, self.words) else None
        return self._deelnemer_by_key.get(alias_key(label))

    @cached_property
    def _deelnemer_by_key(self) -> dict[str, str]:
        """Alias key -> the first deelnemer with that key."""
        by_key: dict[str, str] = {}
        for name in self.deelnemers:
            by_key.setdefault(alias_key(name), name)
        return by_key

    def role(
        self,
        speaker: str,
        written: str | None,
        line: int,
        problems: Problems,
        warned: set[tuple[str, str]],
    ) -> str:
        """The canonical role: from the parentheses, else deelnemers, else `overig`."""
        listed = self.deelnemers.get(speaker)
        if written is None:
            return listed or FALLBACK_ROLE
        role = normalise_role(written, self.rollen)
        if role is None and (speaker, written) not in warned:
            warned.add((speaker, written))
            problems.warn(
                f"{speaker}: onbekende rol {snippet(written)!r}; rol wordt 'overig'", line
            )
        elif listed and role != listed and (speaker, written) not in warned:
            warned.add((speaker, written))
            problems.warn(
                f"{speaker}: rol {role!r} tussen haakjes wijkt af van deelnemers "
                f"({listed!r}); de rol tussen haakjes telt",
                line,
            )
        return role or FALLBACK_ROLE


def _finish(
    turns: list[RawTurn],
    start: tuple[int, str, str, str | None],
    lines: list[str],
    problems: Problems,
) -> None:
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    number, speaker, role, timestamp = start
    text = "\n".join(lines)
    if not text:
        problems.warn(f"beurt {len(turns) + 1} ({speaker}) heeft geen tekst", number)
    turns.append(RawTurn(len(turns) + 1, number, speaker, role, timestamp, text))


def parse_turns(
    lines: Sequence[tuple[int, str]], speakers: Speakers
) -> tuple[tuple[RawTurn, ...], Problems]:
    """The turns in `lines` ((file line number, text) pairs), numbered 1, 2, 3 … in file order."""
    problems = Problems()
    turns: list[RawTurn] = []
    start: tuple[int, str, str, str | None] | None = None
    body: list[str] = []
    warned: set[tuple[str, str]] = set()
    before_first = False
    for number, line in lines:
        timestamp, written_ts, rest = split_timestamp(line)
        label = split_label(rest)
        speaker = speakers.name(label.label) if label else None
        if (
            label
            and speaker is None
            and speakers.deelnemers
            and is_speaker_label(label.label, speakers.words)
        ):
            problems.warn(
                f"{snippet(label.label, 30)!r} lijkt een spreker maar staat niet in "
                "deelnemers; gelezen als vervolgtekst",
                number,
            )
        if label and speaker is not None:
            if written_ts and timestamp is None:
                problems.warn(f"ongeldige tijd {written_ts!r}; beurt zonder tijd", number)
            if start is not None:
                _finish(turns, start, body, problems)
            role = speakers.role(speaker, label.role, number, problems, warned)
            start, body = (number, speaker, role, timestamp), [label.text]
            continue
        if start is None:
            if line.strip() and not before_first:
                before_first = True
                problems.error(
                    f"tekst vóór de eerste sprekersbeurt: {snippet(line)!r} "
                    "(verwacht 'Naam: tekst')",
                    number,
                )
            continue
        if written_ts:
            problems.warn(
                f"tijd {written_ts!r} zonder spreker; gelezen als vervolg van beurt "
                f"{len(turns) + 1}",
                number,
            )
        body.append(line.strip())
    if start is not None:
        _finish(turns, start, body, problems)
    elif not before_first:
        problems.error("geen sprekersbeurten gevonden (verwacht 'Naam: tekst')")
    return tuple(turns), problems
