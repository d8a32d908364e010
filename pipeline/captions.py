"""Speaker turns from WebVTT and SubRip captions (FORMAT.md, table of endings).

Both formats are read by a small line-based parser so that every cue keeps its line in the file
(webvtt-py reports neither lines nor malformed cues, and `srt.parse` runs a regex that backtracks
cubically on a long run of digits: three lines of 2,000 digits take minutes). `srt` still converts
SubRip timestamps.

- The speaker of a cue line comes from a `<v Name>` voice tag or a `Name:` prefix (the same rules
  as in text transcripts, see `pipeline.turns`); a cue may switch speaker from one line to the next.
- Consecutive cues of one speaker form one turn; cue text is joined with spaces (cue line breaks
  are display wrapping, not paragraphs); other tags are removed and entities unescaped.
- The turn's timestamp is the start of its first cue, as 'hh:mm:ss'; its line is the cue number.
- A cue without a speaker continues the previous speaker's turn. Cues before the first speaker
  (Whisper exports have none at all) go to the speaker 'onbekend', role `overig`, with a warning:
  unlike typed text, a caption file without voices is a tool's limitation, not a typing error.
- A block that is not a cue (no timing line, a bad time) is an error naming its line and cue.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

import srt

from pipeline.metadata import FALLBACK_ROLE
from pipeline.problems import Problems, snippet
from pipeline.turns import RawTurn, Speakers, format_seconds, split_label

UNKNOWN_SPEAKER = "onbekend"
_VTT_TIME = r"(?:(\d{1,3}):)?(\d{1,2}):(\d{1,2})(?:[.,](\d{1,9}))?"
_LONG_FRACTION = re.compile(r"[.,]\d{4,}")
_VTT_TIMING = re.compile(rf"\s*{_VTT_TIME}\s*-->\s*{_VTT_TIME}(?:\s|$)")
_SRT_TIME = r"\d{1,3}[:,.]\d{1,2}[:,.]\d{1,2}(?:[,.:]\d{1,9})?"
_SRT_TIMING = re.compile(rf"\s*({_SRT_TIME})\s*-->\s*({_SRT_TIME})(?:\s|$)")
_VOICE = re.compile(r"<v(?:\.[^\s>]*)?\s+([^>]*)>")
_TAG = re.compile(r"<[^<>]*>")


@dataclass(frozen=True)
class Cue:
    """One caption cue: its number in the file (1, 2, 3 …), first line, start and text lines."""

    number: int
    line: int
    start: int
    lines: tuple[str, ...]


def _blocks(lines: Sequence[str]) -> list[tuple[int, list[str]]]:
    """Blocks of non-blank lines with the file line number of their first line."""
    blocks: list[tuple[int, list[str]]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if blocks and blocks[-1][0] + len(blocks[-1][1]) == number:
            blocks[-1][1].append(line)
        else:
            blocks.append((number, [line]))
    return blocks


def _vtt_seconds(match: re.Match[str]) -> int:
    hours, minutes, seconds, millis = match.groups()[:4]
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + int(millis or 0) // 1000


def _warn_long_fraction(timing: str, line: int, problems: Problems, warned: list[bool]) -> None:
    """Warn once per file about times like '00:00:59.1000' (read as milliseconds, carried over)."""
    if not warned and _LONG_FRACTION.search(timing):
        warned.append(True)
        problems.warn(
            f"tijd met meer dan drie cijfers na de komma ({snippet(timing.strip())!r}); "
            "gelezen als milliseconden",
            line,
        )


def parse_vtt(lines: Sequence[str]) -> tuple[list[Cue], Problems]:
    """The cues of a WebVTT file; NOTE, STYLE and REGION blocks are skipped."""
    problems = Problems()
    if not lines or not lines[0].startswith("WEBVTT"):
        problems.error("geen WebVTT: de eerste regel moet met 'WEBVTT' beginnen", 1)
        return [], problems
    cues: list[Cue] = []
    blocks = _blocks(lines)
    header_start, header = blocks[0]
    arrow = next((i for i, line in enumerate(header) if "-->" in line), None)
    blocks[0] = (header_start + arrow, header[arrow:]) if arrow else (0, [])
    number = 0
    warned: list[bool] = []
    for first, block in blocks:
        if not block:
            continue
        if block[0].startswith(("NOTE", "STYLE", "REGION")) and "-->" not in block[0]:
            continue
        number += 1
        timing = 0 if "-->" in block[0] else 1 if len(block) > 1 and "-->" in block[1] else None
        if timing is None:
            problems.error(
                f"cue {number}: blok zonder tijdregel ('start --> eind'): {snippet(block[0])!r}",
                first,
            )
            continue
        match = _VTT_TIMING.match(block[timing])
        if not match or int(match.group(3)) >= 60 or int(match.group(2)) >= 60:
            problems.error(
                f"cue {number}: ongeldige tijdregel {snippet(block[timing])!r}", first + timing
            )
            continue
        _warn_long_fraction(block[timing], first + timing, problems, warned)
        cues.append(Cue(number, first, _vtt_seconds(match), tuple(block[timing + 1 :])))
    return cues, problems


def parse_srt(lines: Sequence[str]) -> tuple[list[Cue], Problems]:
    """The cues of a SubRip file: an optional index line, a timing line, text lines."""
    problems = Problems()
    cues: list[Cue] = []
    warned: list[bool] = []
    for number, (first, block) in enumerate(_blocks(lines), start=1):
        timing = 0 if "-->" in block[0] else 1 if len(block) > 1 and "-->" in block[1] else None
        if timing == 1 and not block[0].strip().isdigit():
            timing = None
        if timing is None:
            problems.error(
                f"cue {number}: blok zonder nummer en tijdregel "
                f"('1' / '00:00:01,000 --> 00:00:04,000'): {snippet(block[0])!r}",
                first,
            )
            continue
        match = _SRT_TIMING.match(block[timing])
        try:
            start = srt.srt_timestamp_to_timedelta(match.group(1)) if match else None
        except (ValueError, srt.TimestampParseError):
            start = None
        if start is None:
            problems.error(
                f"cue {number}: ongeldige tijdregel {snippet(block[timing])!r}", first + timing
            )
            continue
        _warn_long_fraction(block[timing], first + timing, problems, warned)
        cues.append(Cue(number, first, int(start.total_seconds()), tuple(block[timing + 1 :])))
    if not cues and not problems.errors:
        problems.error("geen cues gevonden")
    return cues, problems


def _clean(text: str) -> str:
    return " ".join(html.unescape(_TAG.sub("", text)).split())


@dataclass
class _Open:
    """The turn being built from consecutive cue lines."""

    cue: Cue
    speaker: str
    role: str
    texts: list[str]


def _close(turns: list[RawTurn], turn: _Open, problems: Problems) -> None:
    text = " ".join(t for t in turn.texts if t)
    if not text:
        problems.warn(f"beurt {len(turns) + 1} ({turn.speaker}) heeft geen tekst", turn.cue.line)
    turns.append(
        RawTurn(
            len(turns) + 1,
            turn.cue.number,
            turn.speaker,
            turn.role,
            format_seconds(turn.cue.start),
            text,
        )
    )


def cues_to_turns(cues: Sequence[Cue], speakers: Speakers) -> tuple[tuple[RawTurn, ...], Problems]:
    """Turns from cues: consecutive cue lines of one speaker form one turn."""
    problems = Problems()
    turns: list[RawTurn] = []
    current: _Open | None = None
    warned: set[tuple[str, str]] = set()
    unassigned: list[Cue] = []
    for cue in cues:
        for line in cue.lines:
            speaker, role, text = _speaker_of(line.strip(), cue, speakers, problems, warned)
            if speaker is None and current is None and not text:
                continue
            if speaker is None and (
                current is None or (not turns and current.speaker == UNKNOWN_SPEAKER)
            ):
                unassigned.append(cue)
                speaker, role = UNKNOWN_SPEAKER, FALLBACK_ROLE
            if (
                speaker is not None
                and role is not None
                and (current is None or (current.speaker, current.role) != (speaker, role))
            ):
                if current is not None:
                    _close(turns, current, problems)
                current = _Open(cue, speaker, role, [])
            current.texts.append(text)  # type: ignore[union-attr]
    if current is not None:
        _close(turns, current, problems)
    if unassigned and len(turns) == 1:
        problems.warn(
            f"geen sprekers in dit bestand; alle tekst toegekend aan '{UNKNOWN_SPEAKER}'",
            unassigned[0].line,
        )
    elif unassigned:
        first, last = unassigned[0].number, unassigned[-1].number
        shown = f"cues {first}–{last}" if last != first else f"cue {first}"
        problems.warn(
            f"{shown} zonder spreker vóór de eerste spreker; toegekend aan '{UNKNOWN_SPEAKER}'",
            unassigned[0].line,
        )
    if not turns and not problems.errors:
        problems.error("geen tekst in de cues gevonden")
    return tuple(turns), problems


def _speaker_of(
    line: str, cue: Cue, speakers: Speakers, problems: Problems, warned: set[tuple[str, str]]
) -> tuple[str | None, str | None, str]:
    """(speaker, role, text) of one cue line; speaker None when the line names nobody."""
    voice = _VOICE.match(line)
    if voice:
        written = " ".join(voice.group(1).split())
        label = split_label(written + ":")
        name, written_role = (label.label, label.role) if label else (written, None)
        speaker = speakers.name(name) if speakers.deelnemers else name
        if speaker is None:
            speaker = name
            if ("niet in deelnemers", name) not in warned:
                warned.add(("niet in deelnemers", name))
                problems.warn(f"spreker {name!r} staat niet in deelnemers", cue.line)
        role = speakers.role(speaker, written_role, cue.line, problems, warned)
        return speaker, role, _clean(line[voice.end() :])
    text = _clean(line)
    label = split_label(text)
    speaker = speakers.name(label.label) if label else None
    if label is None or speaker is None:
        return None, None, text
    return speaker, speakers.role(speaker, label.role, cue.line, problems, warned), label.text
