"""Bytes -> text: encodings, line endings, binary and empty input (FORMAT.md)."""

from __future__ import annotations

import os

import pytest

from pipeline.decoding import decode, first_long_line, split_lines


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ("Karel: één café\n".encode(), "Karel: één café\n"),
        (b"\xef\xbb\xbfKarel: hoi\n", "Karel: hoi\n"),  # UTF-8 BOM
        (b"Karel: hoi\r\nAnne: dag\r\n", "Karel: hoi\nAnne: dag\n"),  # CRLF
        (b"Karel: hoi\rAnne: dag", "Karel: hoi\nAnne: dag"),  # old Mac CR
        ("Jose\u0301: hoi".encode(), "José: hoi"),  # NFC normalised
    ],
)
def test_valid_utf8_is_read_without_warnings(data: bytes, text: str) -> None:
    decoded, problems = decode(data)
    assert decoded == text
    assert not problems.warnings and not problems.errors


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_bom_is_decoded_with_a_warning(encoding: str) -> None:
    data = "Fatima: Ja, en daar waren wij blij mee.\r\n".encode(encoding)
    if encoding != "utf-16":
        data = "\ufeff".encode(encoding) + data
    decoded, problems = decode(data)
    assert decoded == "Fatima: Ja, en daar waren wij blij mee.\n"
    assert len(problems.warnings) == 1 and "UTF-16" in problems.warnings[0].message
    assert not problems.errors


def test_windows_1252_is_read_with_a_warning_naming_the_offset() -> None:
    data = "Karel: Hoi\nAnne: Café – één € per kop".encode("cp1252")
    decoded, problems = decode(data)
    assert decoded == "Karel: Hoi\nAnne: Café – één € per kop"
    [warning] = problems.warnings
    assert warning.line == 2 and "offset 20" in warning.message
    assert "Windows-1252" in warning.message


def test_mixed_utf8_and_cp1252_keeps_the_utf8_characters() -> None:
    data = "Karel: één ".encode() + "café".encode("cp1252")
    decoded, problems = decode(data)
    assert decoded == "Karel: één café"
    assert problems.warnings and not problems.errors


def test_invalid_utf8_that_is_no_cp1252_is_an_error_with_the_byte_offset() -> None:
    decoded, problems = decode(b"Karel: ok\nAnne: \x81\x8d")
    assert decoded is None
    [error] = problems.errors
    assert "byte-offset 16" in error.message and error.line == 2


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"Karel: hoi\x00\x00\x00", "NUL-byte op byte-offset 10"),
        (b"PK\x03\x04\x14\x00\x06\x00", "NUL-byte"),  # a zip (docx renamed to .txt)
        (os.urandom(4096) + b"\x00", "geen tekstbestand"),
        (b"Karel: hoi\n\x07\x1b[31m", "stuurteken U+0007"),  # control characters
        ("Karel: hoi\x00".encode("utf-16"), "stuurteken U+0000"),  # NUL inside UTF-16
    ],
)
def test_binary_content_is_never_decoded(data: bytes, needle: str) -> None:
    decoded, problems = decode(data)
    assert decoded is None
    assert any(needle in e.message for e in problems.errors), problems.errors


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "leeg bestand"),
        (b"\xef\xbb\xbf", "leeg bestand"),
        (b"  \r\n\t\n\n", "bestand bevat alleen witruimte"),
        ("\ufeff \n".encode("utf-16"), "bestand bevat alleen witruimte"),
    ],
)
def test_empty_and_whitespace_only_are_errors(data: bytes, message: str) -> None:
    decoded, problems = decode(data)
    assert decoded is None
    assert [e.message for e in problems.errors] == [message]


def test_split_lines_keeps_blank_lines_but_not_the_final_newline() -> None:
    assert split_lines("a\n\nb\n") == ["a", "", "b"]
    assert split_lines("a") == ["a"]


def test_first_long_line() -> None:
    assert first_long_line(["kort", "x" * 11, "y" * 20], 10) == 2
    assert first_long_line(["kort"], 10) is None
