"""Find the transcript files below a folder and read one into validated metadata and raw turns.

`discover` lists every file with its verdict (transcript or skipped, and why); `read_transcript`
never raises on bad input: everything wrong with a file is an error or warning on the result,
with its line, and the file is rejected iff it has errors.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import docx

from pipeline.captions import cues_to_turns, parse_srt, parse_vtt
from pipeline.decoding import decode, first_long_line, split_lines
from pipeline.metadata import (
    Metadata,
    build_metadata,
    load_gemeenten,
    load_rollen,
    parse_front_matter,
    read_sidecar,
    split_front_matter,
)
from pipeline.problems import Problem, Problems
from pipeline.turns import LabelWords, RawTurn, Speakers, load_label_words, parse_turns

__all__ = [
    "Found",
    "Metadata",
    "ParsedTranscript",
    "Problem",
    "RawTurn",
    "ReaderConfig",
    "content_hash",
    "discover",
    "load_reader_config",
    "read_transcript",
]

TEXT_ENDINGS = (".txt", ".md")
SIDECAR_ONLY_ENDINGS = (".docx", ".vtt", ".srt")
TRANSCRIPT_ENDINGS = TEXT_ENDINGS + SIDECAR_ONLY_ENDINGS
SIDECAR_ENDING = ".yaml"
# A .docx unpacks to far more than its size; beyond this factor it is treated as a zip bomb.
DOCX_UNPACKED_FACTOR = 20


@dataclass(frozen=True)
class ParsedTranscript:
    """One file read: rejected iff `errors` is non-empty (then `meta` may be None and `turns`
    empty). `content_hash` is None when the content could not be decoded."""

    meta: Metadata | None
    turns: tuple[RawTurn, ...]
    warnings: tuple[Problem, ...]
    errors: tuple[Problem, ...]
    sidecar: str | None
    content_hash: str | None


@dataclass(frozen=True)
class ReaderConfig:
    """What reading needs: alias tables (alias key -> canonical name), label words, limits."""

    gemeenten: Mapping[str, str]
    rollen: Mapping[str, str]
    max_file_bytes: int
    max_line_chars: int
    label_words: LabelWords


@dataclass(frozen=True)
class Found:
    """One file below the transcripts folder and what to do with it."""

    rel: str
    path: Path
    status: Literal["transcript", "skipped"]
    reason: str | None = None
    sidecar: Path | None = None


def load_reader_config(
    gemeenten_path: Path, rollen_path: Path, max_file_mb: float, max_line_chars: int
) -> ReaderConfig:
    """The reader settings from the config files and the `ingest` params."""
    return ReaderConfig(
        load_gemeenten(Path(gemeenten_path)),
        load_rollen(Path(rollen_path)),
        int(max_file_mb * 1024 * 1024),
        int(max_line_chars),
        load_label_words(),
    )


def _ending(name: str) -> str:
    return os.path.splitext(name)[1].lower()


def discover(root: Path, ignore: Iterable[str]) -> list[Found]:
    """Every file below `root` (any depth) with its verdict, sorted by relative path.

    A hidden folder is listed once as skipped and not entered. A `.yaml` next to a transcript of
    the same name is that transcript's sidecar and not listed on its own.
    """
    root = Path(root)
    ignored = {name.casefold() for name in ignore}
    entries: list[tuple[str, Path, bool]] = []  # (rel, path, is_hidden_dir)
    for folder, dirs, files in os.walk(root):
        base = Path(folder)
        for name in sorted(dirs):
            if name.startswith("."):
                entries.append(((base / name).relative_to(root).as_posix(), base / name, True))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        entries.extend(((base / f).relative_to(root).as_posix(), base / f, False) for f in files)
    names = {rel for rel, _, hidden_dir in entries if not hidden_dir}

    def is_transcript(rel: str) -> bool:
        name = rel.rsplit("/", 1)[-1]
        return (
            rel in names
            and not name.startswith(".")
            and name.casefold() not in ignored
            and _ending(name) in TRANSCRIPT_ENDINGS
        )

    found: list[Found] = []
    for rel, path, hidden_dir in sorted(entries):
        name = path.name
        if hidden_dir:
            found.append(Found(rel, path, "skipped", "verborgen map"))
        elif name.startswith("."):
            found.append(Found(rel, path, "skipped", "verborgen bestand"))
        elif name.casefold() in ignored:
            found.append(Found(rel, path, "skipped", "documentatiebestand"))
        elif _ending(name) == SIDECAR_ENDING:
            if not is_transcript(rel[: -len(SIDECAR_ENDING)]):
                found.append(Found(rel, path, "skipped", "sidecar zonder transcript"))
        elif _ending(name) not in TRANSCRIPT_ENDINGS:
            ending = _ending(name) or "geen extensie"
            hint = "; een sidecar eindigt op .yaml" if ending == ".yml" else ""
            found.append(Found(rel, path, "skipped", f"geen transcript ({ending}){hint}"))
        elif not path.is_file():
            found.append(Found(rel, path, "skipped", "geen gewoon bestand"))
        else:
            sidecar = rel + SIDECAR_ENDING
            found.append(
                Found(
                    rel,
                    path,
                    "transcript",
                    None,
                    path.with_name(name + SIDECAR_ENDING) if sidecar in names else None,
                )
            )
    return found


def content_hash(lines: Iterable[str]) -> str:
    """SHA-256 of the content: lines NFC-normalised, stripped, blank lines left out, so the same
    body in another encoding, line ending or layout hashes the same."""
    digest = hashlib.sha256()
    for line in lines:
        line = unicodedata.normalize("NFC", line).strip()
        if line:
            digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


def _docx_lines(path: Path, max_unpacked: int, problems: Problems) -> list[tuple[int, str]] | None:
    """(paragraph number, text) of a Word document; a soft line break splits a paragraph."""
    if not zipfile.is_zipfile(path):
        problems.error("geen geldig Word-bestand (geen zip-archief)")
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
        if unpacked > max_unpacked:
            problems.error(f"Word-bestand pakt uit tot {unpacked // 2**20} MB; te groot")
            return None
        document = docx.Document(str(path))
    except Exception as exc:  # python-docx raises many kinds on a damaged file
        problems.error(f"Word-bestand kan niet gelezen worden ({type(exc).__name__}: {exc})"[:200])
        return None
    if document.tables:
        problems.warn(
            f"document bevat {len(document.tables)} tabel(len); tekst in tabellen "
            "wordt niet gelezen"
        )
    lines = [
        (number, part)
        for number, paragraph in enumerate(document.paragraphs, start=1)
        for part in unicodedata.normalize("NFC", paragraph.text).split("\n")
    ]
    if not any(text.strip() for _, text in lines):
        problems.error("leeg document (geen tekst in alinea's)")
        return None
    return lines


def _rejected(
    problems: Problems, sidecar: str | None, digest: str | None = None, meta: Metadata | None = None
) -> ParsedTranscript:
    return ParsedTranscript(
        meta, (), tuple(problems.warnings), tuple(problems.errors), sidecar, digest
    )


def _long_line(lines: Sequence[str], config: ReaderConfig, problems: Problems) -> bool:
    number = first_long_line(list(lines), config.max_line_chars)
    if number is not None:
        problems.error(
            f"regel te lang ({len(lines[number - 1])} tekens; maximaal {config.max_line_chars})",
            number,
        )
    return number is not None


def read_transcript(path: Path, config: ReaderConfig) -> ParsedTranscript:
    """Read, decode and validate one transcript with its sidecar (`<name>.yaml`) if present."""
    path = Path(path)
    problems = Problems()
    ending = _ending(path.name)
    sidecar_path = path.with_name(path.name + SIDECAR_ENDING)
    sidecar_name = sidecar_path.name if sidecar_path.is_file() else None
    if ending not in TRANSCRIPT_ENDINGS:
        problems.error(f"geen transcript-extensie ({ending or 'geen extensie'})")
        return _rejected(problems, sidecar_name)
    try:
        size = path.stat().st_size
    except OSError as exc:
        problems.error(f"bestand kan niet gelezen worden ({exc.strerror})")
        return _rejected(problems, sidecar_name)
    if size == 0:
        problems.error("leeg bestand")
        return _rejected(problems, sidecar_name)
    if size > config.max_file_bytes:
        problems.error(
            f"bestand te groot ({size / 2**20:.1f} MB; maximaal "
            f"{config.max_file_bytes / 2**20:.1f} MB)"
        )
        return _rejected(problems, sidecar_name)

    front, key_lines, body = None, {}, []
    if ending == ".docx":
        lines = _docx_lines(path, DOCX_UNPACKED_FACTOR * config.max_file_bytes, problems)
        if lines is None or _long_line([text for _, text in lines], config, problems):
            return _rejected(problems, sidecar_name)
        body = lines
        digest = content_hash(text for _, text in lines)
    else:
        try:
            data = path.read_bytes()
        except OSError as exc:
            problems.error(f"bestand kan niet gelezen worden ({exc.strerror})")
            return _rejected(problems, sidecar_name)
        text, decoded = decode(data)
        problems.extend(decoded)
        if text is None:
            return _rejected(problems, sidecar_name)
        all_lines = split_lines(text)
        if _long_line(all_lines, config, problems):
            return _rejected(problems, sidecar_name)
        start = 0
        if ending in TEXT_ENDINGS:
            block, start, found = split_front_matter(all_lines)
            problems.extend(found)
            if found.errors:
                return _rejected(problems, sidecar_name, content_hash(all_lines))
            if block is not None:
                front, key_lines, parsed = parse_front_matter(block)
                problems.extend(parsed)
        body = [(number, line) for number, line in enumerate(all_lines, start=1)][start:]
        digest = content_hash(line for _, line in body)

    sidecar = None
    if sidecar_name is not None:
        sidecar, found = read_sidecar(sidecar_path)
        problems.extend(found)
    meta, deelnemers = None, {}
    if front is None and sidecar is None:
        if not problems.errors:
            where = (
                f"verwacht {sidecar_path.name}"
                if ending in SIDECAR_ONLY_ENDINGS
                else f"geen front matter en geen {sidecar_path.name}"
            )
            problems.error(f"metadata ontbreekt: {where}")
    else:
        meta, deelnemers, found = build_metadata(
            front, sidecar, path.stem, config.gemeenten, config.rollen, key_lines
        )
        problems.extend(found)

    speakers = Speakers(deelnemers, config.rollen, config.label_words)
    if ending in (".vtt", ".srt"):
        parse = parse_vtt if ending == ".vtt" else parse_srt
        cues, found = parse([line for _, line in body])
        problems.extend(found)
        turns, found = cues_to_turns(cues, speakers) if cues else ((), Problems())
    else:
        turns, found = parse_turns(body, speakers)
    problems.extend(found)
    if problems.errors:
        return _rejected(problems, sidecar_name, digest, meta)
    return ParsedTranscript(meta, turns, tuple(problems.warnings), (), sidecar_name, digest)
