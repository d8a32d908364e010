"""The REFI-QDA exchange format (QDA-XML 1.0): schemas, source texts, deterministic archives.

Shared by the `export` stage (writes `.qdpx`/`.qdc`) and `buurtlens import-qdpx` (reads them).
The schemas are the official REFI-QDA 1.5 ones, copied into `pipeline/resources/refi-qda/`.
"""

from __future__ import annotations

import io
import uuid
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandas as pd
from lxml import etree

from pipeline.schemas import Turns

PROJECT_NS = "urn:QDA-XML:project:1.0"
CODEBOOK_NS = "urn:QDA-XML:codebook:1.0"
SCHEMA_DIR = Path(__file__).parent / "resources" / "refi-qda"
SCHEMA_FILES = {PROJECT_NS: "Project-mrt2019.xsd", CODEBOOK_NS: "Codebook.xsd"}
PROJECT_FILE = "project.qde"
SOURCES_DIR = "sources"
INTERNAL = "internal://"
SOURCE_MARKER = "buurtlens-bron: "  # first line of an exported source's Description
TURN_SEPARATOR = "\n\n"  # between turn lines in a source text (a paragraph per turn)
GUID_NAMESPACE = uuid.UUID("6f1c3a52-4d0e-5b7e-9a39-b1e2c0d4a7f1")  # buurtlens' uuid5 namespace


class QdpxError(ValueError):
    """A file is not a usable REFI-QDA project or codebook; the message says why."""


def guid(*key: object) -> str:
    """A deterministic GUID from stable keys, so the same inputs give the same export."""
    return str(uuid.uuid5(GUID_NAMESPACE, "\x1f".join(str(k) for k in key)))


@cache
def schema(namespace: str) -> etree.XMLSchema:
    """The official XSD for a QDA-XML namespace (project or codebook)."""
    return etree.XMLSchema(etree.parse(str(SCHEMA_DIR / SCHEMA_FILES[namespace])))


def schema_errors(root: etree._Element) -> list[str]:
    """Schema violations of a project or codebook document, as 'line N: message' strings."""
    namespace = etree.QName(root).namespace
    if namespace not in SCHEMA_FILES:
        return [f"root element {root.tag} is not in a REFI-QDA namespace"]
    validator = schema(namespace)
    if validator.validate(root):
        return []
    return [f"line {e.line}: {e.message}" for e in validator.error_log]


@dataclass(frozen=True)
class SourceText:
    """One transcript as a plain-text source, with where each turn sits in it."""

    source: str
    text: str
    turns: pd.DataFrame  # turn, line_start, line_end, text_start, text_end (code points)


def turn_prefix(timestamp: str | None, speaker: str, role: str) -> str:
    """The start of a turn's line: '[00:01:02] [PERSOON-1] (bewoner): '."""
    stamp = f"[{timestamp}] " if timestamp else ""
    return f"{stamp}{speaker} ({role}): "


def render_source(turns: pd.DataFrame) -> SourceText:
    """One transcript's turns (one source, pseudonymised) as text, one paragraph per turn."""
    ordered = turns.sort_values(Turns.turn)
    parts: list[str] = []
    rows: list[tuple[int, int, int, int, int]] = []
    at = 0
    fields = [Turns.turn, Turns.timestamp, Turns.speaker, Turns.role, Turns.text]
    for turn, timestamp, speaker, role, text in zip(*(ordered[f].tolist() for f in fields)):
        if parts:
            parts.append(TURN_SEPARATOR)
            at += len(TURN_SEPARATOR)
        prefix = turn_prefix(timestamp if isinstance(timestamp, str) else None, speaker, role)
        parts.extend([prefix, text])
        text_start = at + len(prefix)
        text_end = text_start + len(text)
        rows.append((int(turn), at, text_end, text_start, text_end))
        at = text_end
    columns = ["turn", "line_start", "line_end", "text_start", "text_end"]
    source = str(ordered[Turns.source].iloc[0]) if len(ordered) else ""
    return SourceText(source, "".join(parts), pd.DataFrame(rows, columns=columns))


def render_sources(turns: pd.DataFrame) -> dict[str, SourceText]:
    """Every transcript in a turns table as a source text, keyed by source path."""
    return {
        str(source): render_source(group)
        for source, group in turns.groupby(Turns.source, sort=True)
    }


def zip_bytes(entries: dict[str, bytes], date: tuple[int, int, int]) -> bytes:
    """A ZIP with fixed timestamps and entry order: the same entries give identical bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries, key=lambda n: (n != PROJECT_FILE, n)):
            info = zipfile.ZipInfo(name, date_time=(*date, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            archive.writestr(info, entries[name])
    return buffer.getvalue()
