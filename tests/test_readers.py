"""The reader API: discover a folder, read one file of each format, reject bad files quickly."""

from __future__ import annotations

import shutil
from pathlib import Path

import docx
import pytest

from pipeline.readers import (
    ParsedTranscript,
    ReaderConfig,
    content_hash,
    discover,
    load_reader_config,
    read_transcript,
)
from tests.conftest import REPO_ROOT, TEST_DATA, no_hang

FORMATS = TEST_DATA / "formats"
FRONT = "---\ngemeente: Horst a/d Maas\ndatum: 2023-02-14\n---\n"
BODY = "[00:01:02] Karel (bewoner): Nou, wij hebben dat zelf geregeld.\nFatima: Ja.\n"
SIDECAR = "gemeente: Voorst\ndatum: 2025-03-01\ndeelnemers:\n  Anne: facilitator\n"


@pytest.fixture(scope="module")
def config() -> ReaderConfig:
    return load_reader_config(
        REPO_ROOT / "config" / "gemeenten.yaml",
        REPO_ROOT / "config" / "rollen.yaml",
        max_file_mb=1,
        max_line_chars=1000,
    )


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def make_docx(path: Path, paragraphs: list[str]) -> Path:
    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    document.save(str(path))
    return path


def messages(parsed: ParsedTranscript) -> list[tuple[int | None, str]]:
    return [(p.line, p.message) for p in parsed.errors]


# discover -------------------------------------------------------------------------------------


def test_discover_lists_every_file_with_its_verdict(tmp_path: Path) -> None:
    for rel in [
        "utrecht/2025/a.txt",
        "utrecht/2025/b.docx",
        "utrecht/2025/b.docx.yaml",
        "voorst/c.VTT",
        "voorst/c.VTT.yaml",
        "d.srt",
        "e.md",
        "e.md.yaml",
        "README.md",
        "notities.pdf",
        "wees.docx.yaml",
        "los.yaml",
        "f.yml",
        ".DS_Store",
        ".git/config",
        "g/.verborgen.txt",
        "zonder-extensie",
        "readme.MD",
    ]:
        write(tmp_path / rel, "x")
    found = discover(tmp_path, ["README.md", "LEESMIJ.md"])
    table = [(f.rel, f.status, f.reason, f.sidecar and f.sidecar.name) for f in found]
    assert table == [
        (".DS_Store", "skipped", "verborgen bestand", None),
        (".git", "skipped", "verborgen map", None),
        ("README.md", "skipped", "documentatiebestand", None),
        ("d.srt", "transcript", None, None),
        ("e.md", "transcript", None, "e.md.yaml"),
        ("f.yml", "skipped", "geen transcript (.yml); een sidecar eindigt op .yaml", None),
        ("g/.verborgen.txt", "skipped", "verborgen bestand", None),
        ("los.yaml", "skipped", "sidecar zonder transcript", None),
        ("notities.pdf", "skipped", "geen transcript (.pdf)", None),
        ("readme.MD", "skipped", "documentatiebestand", None),
        ("utrecht/2025/a.txt", "transcript", None, None),
        ("utrecht/2025/b.docx", "transcript", None, "b.docx.yaml"),
        ("voorst/c.VTT", "transcript", None, "c.VTT.yaml"),
        ("wees.docx.yaml", "skipped", "sidecar zonder transcript", None),
        ("zonder-extensie", "skipped", "geen transcript (geen extensie)", None),
    ]
    assert found[3].path == tmp_path / "d.srt"


def test_discover_on_the_fixture_folder_finds_each_format() -> None:
    found = discover(FORMATS, ["README.md"])
    assert {f.rel.rsplit(".", 1)[-1] for f in found if f.status == "transcript"} == {
        "txt",
        "md",
        "vtt",
        "srt",
    }
    assert not any(f.rel.endswith(".yaml") for f in found)


# reading each format --------------------------------------------------------------------------


def test_text_with_front_matter(config: ReaderConfig) -> None:
    parsed = read_transcript(FORMATS / "kanaleneiland.txt", config)
    assert parsed.errors == ()
    assert parsed.meta.gemeente == "Utrecht" and parsed.meta.jaar == 2025
    assert parsed.meta.deelnemers["Ruud"] == "sociaal-werker"
    assert [(t.turn, t.line, t.speaker, t.timestamp) for t in parsed.turns] == [
        (1, 11, "Marloes", "00:00:05"),
        (2, 12, "Hatice", "00:00:16"),
        (3, 16, "Ruud", "00:01:08"),
        (4, 17, "Ingrid", "00:02:30"),
        (5, 19, "Marloes", None),
    ]
    assert "[gelach]" in parsed.turns[0].text
    assert "Maar goed: die maakt" in parsed.turns[1].text
    assert [w.line for w in parsed.warnings] == [18, 19]  # Kees not listed; empty turn


def test_markdown_without_deelnemers(config: ReaderConfig) -> None:
    parsed = read_transcript(FORMATS / "overvecht-zonder-deelnemers.md", config)
    assert [(t.speaker, t.role) for t in parsed.turns] == [
        ("Spreker 1", "facilitator"),
        ("Spreker 2", "overig"),
        ("Jan de Boer", "gemeente"),
        ("R1", "overig"),
        ("Deelnemer 3", "overig"),
    ]
    assert parsed.meta.sessie == "overvecht-zonder-deelnemers"
    assert [w.line for w in parsed.warnings] == [11]  # unknown role 'bakker'


@pytest.mark.parametrize(
    ("name", "speakers"),
    [
        ("teams.vtt", ["Esther", "Gerrit", "Esther"]),
        ("zoom.vtt", ["Anne de Vries", "Karel", "Anne de Vries"]),
        ("whisper.vtt", ["onbekend"]),
        ("kerschoten.srt", ["Thijs", "Rob"]),
    ],
)
def test_captions_with_sidecar(name: str, speakers: list[str], config: ReaderConfig) -> None:
    parsed = read_transcript(FORMATS / name, config)
    assert parsed.errors == ()
    assert [t.speaker for t in parsed.turns] == speakers
    assert parsed.sidecar == f"{name}.yaml"


def test_docx_paragraphs_are_lines(tmp_path: Path, config: ReaderConfig) -> None:
    path = make_docx(
        tmp_path / "sessie-3.docx",
        ["[00:00:05] Anne: Welkom.", "", "Dat was het.", "Karel (bewoner): Dag.\nFatima: Hoi."],
    )
    write(tmp_path / "sessie-3.docx.yaml", "gemeente: Voorst\ndatum: 2025-03-01\n")
    parsed = read_transcript(path, config)
    assert parsed.errors == ()
    assert [(t.line, t.speaker, t.role, t.text) for t in parsed.turns] == [
        (1, "Anne", "overig", "Welkom.\n\nDat was het."),
        (4, "Karel", "bewoner", "Dag."),
        (4, "Fatima", "overig", "Hoi."),
    ]  # a soft line break splits the paragraph
    assert parsed.meta.gemeente == "Voorst" and parsed.sidecar == "sessie-3.docx.yaml"


@pytest.mark.parametrize("ending", [".docx", ".vtt", ".srt"])
def test_sidecar_only_formats_without_sidecar(
    tmp_path: Path, ending: str, config: ReaderConfig
) -> None:
    if ending == ".docx":
        path = make_docx(tmp_path / "sessie.docx", ["Anne: hoi"])
    else:
        path = write(
            tmp_path / f"sessie{ending}",
            "WEBVTT\n\n00:01.000 --> 00:02.000\nAnne: Hoi\n"
            if ending == ".vtt"
            else "1\n00:00:01,000 --> 00:00:02,000\nAnne: Hoi\n",
        )
    parsed = read_transcript(path, config)
    assert messages(parsed) == [(None, f"metadata ontbreekt: verwacht sessie{ending}.yaml")]


def test_text_without_any_metadata(tmp_path: Path, config: ReaderConfig) -> None:
    parsed = read_transcript(write(tmp_path / "a.txt", BODY), config)
    assert messages(parsed) == [(None, "metadata ontbreekt: geen front matter en geen a.txt.yaml")]


def test_text_with_sidecar_and_front_matter(tmp_path: Path, config: ReaderConfig) -> None:
    path = write(tmp_path / "a.txt", FRONT + BODY)
    write(tmp_path / "a.txt.yaml", SIDECAR + "sessie: Uit sidecar\n")
    parsed = read_transcript(path, config)
    assert (parsed.meta.gemeente, parsed.meta.datum, parsed.meta.sessie) == (
        "Horst aan de Maas",
        "2023-02-14",
        "Uit sidecar",
    )
    assert parsed.meta.deelnemers == {"Anne": "facilitator"}  # only the sidecar lists them


def test_crlf_bom_and_utf16_give_the_same_turns_and_hash(
    tmp_path: Path, config: ReaderConfig
) -> None:
    text = FRONT + BODY
    variants = {
        "lf.txt": text.encode(),
        "crlf.txt": text.replace("\n", "\r\n").encode(),
        "bom.txt": b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode(),
        "utf16.txt": text.encode("utf-16"),
        "cp1252.txt": (text + "Karel: Één café.\n").encode("cp1252"),
    }
    parsed = {
        name: read_transcript(write(tmp_path / name, data), config)
        for name, data in variants.items()
    }
    assert all(not p.errors for p in parsed.values())
    base = parsed["lf.txt"]
    for name in ("crlf.txt", "bom.txt", "utf16.txt"):
        assert parsed[name].turns == base.turns and parsed[name].content_hash == base.content_hash
    assert not parsed["crlf.txt"].warnings and not parsed["bom.txt"].warnings
    assert "UTF-16" in parsed["utf16.txt"].warnings[0].message
    assert "Windows-1252" in parsed["cp1252.txt"].warnings[0].message
    assert parsed["cp1252.txt"].turns[-1].text == "Één café."
    assert parsed["cp1252.txt"].content_hash != base.content_hash


def test_content_hash_ignores_layout_but_not_words() -> None:
    assert content_hash(["Karel: ja", "", "  Anne: nee  "]) == content_hash(
        ["Karel: ja", "Anne: nee"]
    )
    assert content_hash(["Karel: ja"]) != content_hash(["Karel: nee"])


# rejected files -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("leeg.txt", b"", [(None, "leeg bestand")]),
        ("wit.txt", b" \n\t\r\n", [(None, "bestand bevat alleen witruimte")]),
        (
            "nul.txt",
            FRONT.encode() + b"Karel: \x00\x00",
            [(5, "geen tekstbestand: NUL-byte op byte-offset 58")],
        ),
        (
            "kapot.txt",
            FRONT.encode() + b"Karel: \x81",
            [(5, "geen geldige UTF-8 (byte-offset 58) en ook geen Windows-1252")],
        ),
        (
            "open.txt",
            "---\ngemeente: Utrecht\n" + BODY,
            [(1, "front matter niet afgesloten: geen regel '---' na regel 1")],
        ),
        (
            "yaml.md",
            "---\ngemeente: Utrecht\ndatum: [2023\n---\n" + BODY,
            [(3, "ongeldige YAML in front matter (expected ',' or ']', but got '<stream end>')")],
        ),
        (
            "voor.txt",
            FRONT + "Verslag van de avond\n" + BODY,
            [
                (
                    5,
                    "tekst vóór de eerste sprekersbeurt: 'Verslag van de avond' (verwacht 'Naam: "
                    "tekst')",
                )
            ],
        ),
        (
            "ams.txt",
            FRONT.replace("Horst a/d Maas", "Amsterdam") + BODY,
            [
                (
                    2,
                    "onbekende gemeente 'Amsterdam'; bekend zijn: Utrecht, Horst aan de Maas, "
                    "Wageningen, Apeldoorn, Voorst",
                )
            ],
        ),
        (
            "datum.txt",
            FRONT.replace("2023-02-14", "14 februari") + BODY,
            [(3, "ongeldige datum '14 februari'; verwacht JJJJ-MM-DD")],
        ),
        (
            "lang.txt",
            FRONT + "Karel: " + "bla " * 300 + "\n",
            [(5, "regel te lang (1207 tekens; maximaal 1000)")],
        ),
        ("fout.docx", b"PK but not a zip", [(None, "geen geldig Word-bestand (geen zip-archief)")]),
        ("leeg.srt", b"\n\n", [(None, "bestand bevat alleen witruimte")]),
        (
            "kapot.vtt",
            b"1\n00:00:01,000 --> 00:00:02,000\nAnne: hoi\n",
            [(1, "geen WebVTT: de eerste regel moet met 'WEBVTT' beginnen")],
        ),
    ],
)
def test_bad_files_are_rejected_with_line_and_reason(
    tmp_path: Path, name: str, content, expected, config: ReaderConfig
) -> None:
    path = write(tmp_path / name, content)
    if not name.endswith((".txt", ".md")):
        write(tmp_path / f"{name}.yaml", SIDECAR)
    parsed = read_transcript(path, config)
    assert messages(parsed) == expected
    assert parsed.turns == () or parsed.errors


def test_docx_without_text_and_with_tables(tmp_path: Path, config: ReaderConfig) -> None:
    document = docx.Document()
    document.add_table(rows=1, cols=2).rows[0].cells[0].text = "Anne"
    document.save(str(tmp_path / "tabel.docx"))
    write(tmp_path / "tabel.docx.yaml", SIDECAR)
    parsed = read_transcript(tmp_path / "tabel.docx", config)
    assert messages(parsed) == [(None, "leeg document (geen tekst in alinea's)")]
    assert "tabel" in parsed.warnings[0].message


def test_a_bad_sidecar_rejects_the_file(tmp_path: Path, config: ReaderConfig) -> None:
    path = write(tmp_path / "a.srt", "1\n00:00:01,000 --> 00:00:02,000\nAnne: Hoi\n")
    write(tmp_path / "a.srt.yaml", "gemeente: Voorst\ndatum: 2025-03-01\ngemeente: Epe\n")
    parsed = read_transcript(path, config)
    assert parsed.errors and "sidecar a.srt.yaml" in parsed.errors[0].message


@pytest.mark.parametrize("kind", ["huge", "one-line", "digits-srt", "brackets"])
def test_pathological_files_get_a_verdict_fast(tmp_path: Path, kind: str) -> None:
    config = load_reader_config(
        REPO_ROOT / "config" / "gemeenten.yaml",
        REPO_ROOT / "config" / "rollen.yaml",
        max_file_mb=20,
        max_line_chars=100_000,
    )
    data = {
        "huge": b"Karel: bla\n" * 2_000_000,  # 22 MB
        "one-line": FRONT.encode() + b"Karel: " + b"a" * 15_000_000,
        "digits-srt": b"\n".join([b"9" * 99_000] * 100),
        "brackets": FRONT.encode() + (b"[" * 99_000 + b":\n" + b"(" * 99_000 + b": :\n") * 50,
    }[kind]
    name = "x.srt" if kind == "digits-srt" else "x.txt"
    path = write(tmp_path / name, data)
    write(tmp_path / "x.srt.yaml", SIDECAR)
    with no_hang():
        parsed = read_transcript(path, config)
    assert parsed.errors


def test_every_fixture_file_is_read_without_errors(config: ReaderConfig, tmp_path: Path) -> None:
    shutil.copytree(FORMATS, tmp_path / "formats")
    for found in discover(tmp_path / "formats", ["README.md"]):
        if found.status == "transcript":
            assert read_transcript(found.path, config).errors == (), found.rel
