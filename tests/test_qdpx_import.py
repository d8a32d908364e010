"""`buurtlens import-qdpx`: QDA-tool projects back to (source, turn) annotations, with a report."""

from __future__ import annotations

import io
import json
import unicodedata
import zipfile
from xml.sax.saxutils import escape

import pandas as pd
import pytest
from click.testing import CliRunner

from pipeline.annotations import read_annotations
from pipeline.cli import cli
from pipeline.export import ExportParams, build_export
from pipeline.qdpx import QdpxError, render_sources
from pipeline.qdpx_import import import_file, map_codings, read_qdpx, target_name
from tests.conftest import make_turns
from tests.test_export import make_corpus

CAFE = "voorst/2025/café-avond.txt"
WIJ, DUBBEL, NIEUW = (
    "0A1B2C3D-0000-4000-8000-00000000000A",
    "0A1B2C3D-0000-4000-8000-00000000000B",
    "0A1B2C3D-0000-4000-8000-00000000000C",
)
USER = "{5C94BC9E-DB8C-4F1D-9CD6-E900C7440860}"


@pytest.fixture(scope="module")
def corpus() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return make_corpus()


def archive(
    qde: str, files: dict[str, bytes] | None = None, qde_name: str = "project.qde"
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr(qde_name, qde.encode("utf-8"))
        for name, data in (files or {}).items():
            z.writestr(name, data)
    return buffer.getvalue()


def selection(guid: str, start: int, end: int, codes: list[str], name: str = "") -> str:
    codings = "".join(
        f'<Coding guid="{guid[:-3]}{i:03d}" creatingUser="{USER}"><CodeRef targetGUID="{c}"/>'
        "</Coding>"
        for i, c in enumerate(codes)
    )
    memo = "" if codes else "<Description>alleen een memo</Description>"
    return (
        f'<PlainTextSelection guid="{guid}" name="{escape(name)}" startPosition="{start}" '
        f'endPosition="{end}" creatingUser="{USER}">{memo}{codings}</PlainTextSelection>'
    )


def project(sources: str, origin: str = "MAXQDA 2022") -> str:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<Project xmlns="urn:QDA-XML:project:1.0" name="Correcties" origin="{origin}">
  <Users><User guid="{USER}" name="Fatima"/></Users>
  <CodeBook><Codes>
    <Code guid="{WIJ}" name="wij-zij" isCodable="true" color="#FF0000"/>
    <Code guid="0A1B2C3D-0000-4000-8000-0000000000FF" name="Thema's" isCodable="false">
      <Code guid="{DUBBEL}" name="Dubbelrol" isCodable="true"/>
    </Code>
    <Code guid="{NIEUW}" name="Nieuwe code" isCodable="true"/>
  </Codes></CodeBook>
  <Sources>{sources}</Sources>
</Project>"""


def raw_pos(text: str, pos: int) -> int:
    """A position in `text` counted in its CRLF version (each newline two code points)."""
    return pos + text[:pos].count("\n")


def test_round_trip_export_import_gives_back_the_codings(corpus, codebook):
    turns, tags, evidence = corpus
    for unit in ("turn", "evidence"):
        _, qdpx, _, _ = build_export(turns, tags, evidence, codebook, ExportParams(unit=unit))
        result = map_codings(read_qdpx(qdpx), turns, codebook, "fallback")
        decided = tags[tags["decided"] & (tags["source"] != "voorst/2024/oud.txt")]
        expected = decided.groupby(["source", "turn"])["theme"].agg(lambda t: ";".join(sorted(t)))
        got = result.annotations.set_index(["source", "turn"])["themes"]
        assert got[got != ""].to_dict() == expected.to_dict()
        assert len(got) == 6  # every turn of both exported sources, coded or not
        assert result.report["unknown_sources"] == [] and result.report["unknown_codes"] == {}
        assert result.report["unmapped_selections"] == []
        assert {s["matched_by"] for s in result.report["sources"]} == {"description"}


@pytest.fixture()
def hand_made(corpus):
    """A project as a QDA tool writes it: own GUIDs, renamed source, CRLF + BOM, Sources/."""
    turns = corpus[0]
    ours = render_sources(turns)[CAFE]
    text, at = ours.text, ours.turns.set_index("turn")
    crlf = "\ufeff" + text.replace("\n", "\r\n")

    def span(phrase: str, turn: int) -> tuple[int, int]:
        start = text.index(phrase, int(at.loc[turn, "line_start"]))
        return raw_pos(text, start), raw_pos(text, start + len(phrase))

    across = (span("niet gehoord.", 2)[0], span("Ik ben vrijwilliger", 3)[1])
    gap = int(at.loc[1, "line_end"])
    selections = "".join(
        [
            selection("B0000000-0000-4000-8000-000000000001", *span("zij bepalen", 1), [WIJ]),
            selection("B0000000-0000-4000-8000-000000000002", *across, [DUBBEL]),
            selection("B0000000-0000-4000-8000-000000000003", *span("Koffie", 4), [NIEUW]),
            selection("B0000000-0000-4000-8000-000000000004", raw_pos(text, gap),
                      raw_pos(text, gap + 2), [WIJ]),
            selection("B0000000-0000-4000-8000-000000000005", 5, len(crlf) + 40, [WIJ]),
            selection("B0000000-0000-4000-8000-000000000006", *span("café", 1), []),
        ]
    )  # fmt: skip
    sources = (
        '<TextSource guid="C0000000-0000-4000-8000-000000000001" name="Café-avond Voorst" '
        'plainTextPath="internal://C0000000-0000-4000-8000-000000000001.txt">'
        f"{selections}</TextSource>"
        '<TextSource guid="C0000000-0000-4000-8000-000000000002" name="Interview extern">'
        "<PlainTextContent>Een heel ander gesprek.</PlainTextContent>"
        + selection("B0000000-0000-4000-8000-000000000007", 0, 3, [WIJ])
        + "</TextSource>"
    )
    files = {"Sources/C0000000-0000-4000-8000-000000000001.txt": crlf.encode("utf-8")}
    return archive(project(sources), files)


def test_hand_made_project_maps_selections_to_turns_and_reports_the_rest(
    hand_made,
    corpus,
    codebook,
):
    result = map_codings(read_qdpx(hand_made, "correcties.qdpx"), corpus[0], codebook, "qdpx")
    got = result.annotations.set_index(["source", "turn"])
    assert got["themes"].to_dict() == {
        (CAFE, 1): "wij-zij",  # part of a turn codes the turn
        (CAFE, 2): "dubbelrol",  # a selection across turns 2 and 3 codes both
        (CAFE, 3): "dubbelrol",
        (CAFE, 4): "",  # coded only with a code outside the codebook
    }
    assert got.loc[(CAFE, 1), "coder"] == "Fatima"
    report = result.report
    assert report["sources"][0]["matched_by"] == "text"
    assert report["unknown_codes"] == {"Nieuwe code": 1}
    assert [s["name"] for s in report["unknown_sources"]] == ["Interview extern"]
    reasons = sorted(s["reason"] for s in report["unmapped_selections"])
    assert reasons == ["covers no turn text", "outside the text"]
    assert report["uncoded_selections"] == 1


def test_atlas_positions_count_crlf_as_one_and_nfd_text_still_maps(corpus, codebook):
    turns = corpus[0]
    text = render_sources(turns)[CAFE].text
    nfd = unicodedata.normalize("NFD", text).replace("\n", "\r\n")
    flat = nfd.replace("\r\n", "\n")  # ATLAS.ti: positions as if each line break is one character
    start = flat.index("dubbelrol")
    sources = (
        '<TextSource guid="C0000000-0000-4000-8000-000000000009" name="export"'
        ' plainTextPath="internal://x.txt">'
        + selection("B0000000-0000-4000-8000-000000000009", start, start + 9, [DUBBEL])
        + "</TextSource>"
    )
    qdpx = archive(project(sources, origin="ATLAS.ti 23"), {"sources/x.txt": nfd.encode()})
    result = map_codings(read_qdpx(qdpx), turns, codebook, "qdpx")
    coded = result.annotations[result.annotations["themes"] != ""]
    assert coded[["turn", "themes"]].values.tolist() == [[3, "dubbelrol"]]
    assert result.report["sources"][0]["text_identical"] is False


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PK\x03\x04 broken", "not a ZIP"),
        (b"just text", "not a ZIP"),
        (archive("<x/>", qde_name="readme.txt"), "no project.qde"),
        (archive('<Project xmlns="urn:other" name="x"/>'), "not a REFI-QDA project"),
        (archive("<Project"), "not well-formed"),
        (
            archive('<Project xmlns="urn:QDA-XML:project:1.0"><Sources/></Project>'),
            "does not follow the REFI-QDA schema",
        ),
    ],
)
def test_invalid_files_give_clear_errors(data, message):
    with pytest.raises(QdpxError, match=message):
        read_qdpx(data, "kapot.qdpx")


def test_cli_exits_non_zero_with_the_reason(tmp_path):
    bad = tmp_path / "kapot.qdpx"
    bad.write_bytes(b"geen zip")
    result = CliRunner().invoke(cli, ["import-qdpx", str(bad)])
    assert result.exit_code == 1
    assert "not a ZIP" in result.output


def test_import_file_writes_annotations_that_win_and_a_report(
    tmp_path, hand_made, corpus, codebook
):
    turns_path = tmp_path / "turns.parquet"
    corpus[0].to_parquet(turns_path, index=False)
    out = tmp_path / "annotations"
    out.mkdir()
    pd.DataFrame(
        {"source": [CAFE], "turn": [1], "themes": ["dubbelrol"], "coder": ["eerder"]}
    ).to_csv(out / "voorbeeldcorpus.csv", index=False)
    qdpx = tmp_path / "Correcties Fatima.qdpx"
    qdpx.write_bytes(hand_made)
    target, _ = import_file(qdpx, turns_path, codebook, out)
    assert target.name == "z-qdpx-Correcties-Fatima.csv"
    merged, overridden = read_annotations(out)
    assert overridden == 1
    assert merged.set_index(["source", "turn"]).loc[(CAFE, 1), "themes"] == "wij-zij"
    report = json.loads(target.with_suffix(".json").read_text(encoding="utf-8"))
    assert report["unknown_codes"] == {"Nieuwe code": 1}


def test_target_name_sorts_after_hand_made_annotation_files():
    assert sorted(["voorbeeldcorpus.csv", target_name("a b.qdpx")])[-1] == "z-qdpx-a-b.csv"


def test_only_coded_writes_just_the_coded_turns(hand_made, corpus, codebook):
    result = map_codings(read_qdpx(hand_made), corpus[0], codebook, "qdpx", only_coded=True)
    assert sorted(result.annotations["turn"]) == [1, 2, 3]


def test_a_source_is_recognised_by_its_name_when_the_text_was_edited(codebook):
    turns = make_turns(["Zij bepalen alles.", "Wij niet."], source="a/sessie.txt")
    edited = render_sources(turns)["a/sessie.txt"].text.replace("alles", "echt alles")
    start = edited.index("Wij")
    sources = (
        '<TextSource guid="C0000000-0000-4000-8000-00000000000A" name="a/sessie.txt">'
        f"<PlainTextContent>{escape(edited)}</PlainTextContent>"
        + selection("B0000000-0000-4000-8000-00000000000A", start, start + 9, [WIJ])
        + "</TextSource>"
    )
    result = map_codings(read_qdpx(archive(project(sources))), turns, codebook, "qdpx")
    assert result.annotations["themes"].tolist() == ["", "wij-zij"]
