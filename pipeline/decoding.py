"""Bytes of a text transcript -> str, following FORMAT.md: UTF-8 (BOM allowed), UTF-16 with a BOM,
Windows-1252 as a fallback with a warning; NUL bytes, binary content and empty files are errors.

The fallback decodes only the bytes that are not valid UTF-8 as Windows-1252, so a UTF-8 file with
a few bytes typed in a Windows tool keeps its UTF-8 characters, and a pure Windows-1252 file reads
the same as with `bytes.decode("cp1252")` (Dutch text has no byte pairs that are also UTF-8).
Bytes undefined in Windows-1252 (0x81, 0x8D, 0x8F, 0x90, 0x9D) make the file an error.
"""

from __future__ import annotations

import codecs
import re
import unicodedata

from pipeline.problems import Problems

_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# C0 control characters that never occur in text (tab, LF, VT, FF and CR do).
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_FALLBACK = "buurtlens-cp1252"


def _cp1252_bytes(exc: UnicodeError) -> tuple[str, int]:
    """Decode the bytes UTF-8 rejected as Windows-1252 (raises when they are not cp1252 either)."""
    assert isinstance(exc, UnicodeDecodeError)
    return exc.object[exc.start : exc.end].decode("cp1252"), exc.end


codecs.register_error(_FALLBACK, _cp1252_bytes)


def _line_of_byte(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def decode(data: bytes) -> tuple[str | None, Problems]:
    """The text of `data` with LF line endings and NFC normalisation, or None with an error."""
    problems = Problems()
    if not data:
        problems.error("leeg bestand")
        return None, problems
    if data.startswith(_UTF16_BOMS):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            problems.error(f"ongeldige UTF-16 op byte-offset {exc.start}")
            return None, problems
        problems.warn("bestand is UTF-16; gelezen als UTF-16 (sla het liefst op als UTF-8)")
    else:
        nul = data.find(b"\x00")
        if nul >= 0:
            problems.error(
                f"geen tekstbestand: NUL-byte op byte-offset {nul}", _line_of_byte(data, nul)
            )
            return None, problems
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            offset = exc.start + (3 if data.startswith(codecs.BOM_UTF8) else 0)
            line = _line_of_byte(data, offset)
            try:
                text = data.decode("utf-8-sig", errors=_FALLBACK)
            except UnicodeDecodeError:
                problems.error(
                    f"geen geldige UTF-8 (byte-offset {offset}) en ook geen Windows-1252", line
                )
                return None, problems
            problems.warn(
                f"geen geldige UTF-8 (eerste ongeldige byte op offset {offset}); "
                "ongeldige bytes gelezen als Windows-1252",
                line,
            )
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    control = _CONTROL.search(text)
    if control:
        line = text.count("\n", 0, control.start()) + 1
        problems.error(
            f"geen tekstbestand: stuurteken U+{ord(control.group()):04X} (binaire inhoud)", line
        )
        return None, problems
    if not text.strip():
        problems.error("leeg bestand" if not text else "bestand bevat alleen witruimte")
        return None, problems
    return unicodedata.normalize("NFC", text), problems


def split_lines(text: str) -> list[str]:
    """The lines of LF-normalised `text`, without a final empty line."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def first_long_line(lines: list[str], max_chars: int) -> int | None:
    """The 1-based number of the first line longer than `max_chars`, or None."""
    for number, line in enumerate(lines, start=1):
        if len(line) > max_chars:
            return number
    return None
