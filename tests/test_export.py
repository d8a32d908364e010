"""Stage export: a REFI-QDA project and codebook, schema-valid, with exact offsets."""

from __future__ import annotations

import io
import zipfile

import pandas as pd
import pytest
from lxml import etree

from pipeline.export import ExportParams, build_export, read_year, report_year
from pipeline.params import paths, read_params
from pipeline.qdpx import PROJECT_NS, render_source
from tests.conftest import TEST_DATA, make_turns

XSD = TEST_DATA / "refi-qda"
NS = {"q": PROJECT_NS}


def xsd(name: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD / name)))


@pytest.fixture(scope="module")
def corpus() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return make_corpus()


def make_corpus() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Turns, tags and evidence: two 2025 transcripts and one 2024 one, non-ASCII, multi-line."""
    a = make_turns(
        [
            "Wij zaten in het café en zij bepalen het toch al.",
            "Ja, de gemeente zegt één ding\nen doet iets anders: überhaupt niet gehoord.",
            "Ik ben vrijwilliger én ik werk bij de gemeente, dat is een dubbelrol.",
            "Koffie?",
        ],
        source="voorst/2025/café-avond.txt",
    )
    a["timestamp"] = ["00:00:05", None, "00:01:10", "00:01:30"]
    a["role"] = ["bewoner", "facilitator", "sociaal-werker", "bewoner"]
    b = make_turns(
        ["Zij geven ons de ruimte, dat maakt het mogelijk.", "Financiële steun."],
        source="utrecht/2025/overvecht.docx",
    )
    b["datum"] = "2025-10-02"
    b["gemeente"] = "Utrecht"
    old = make_turns(["Oud gesprek."], source="voorst/2024/oud.txt")
    old["jaar"], old["datum"] = 2024, "2024-01-01"
    turns = pd.concat([a, b, old], ignore_index=True)
    decided = {
        ("voorst/2025/café-avond.txt", 1): ["wij-zij"],
        ("voorst/2025/café-avond.txt", 2): ["wij-zij", "dubbelrol"],
        ("voorst/2025/café-avond.txt", 3): ["dubbelrol"],
        ("utrecht/2025/overvecht.docx", 1): ["mogelijk-maker"],
        ("voorst/2024/oud.txt", 1): ["wij-zij"],
    }
    rows = []
    for s, t in zip(turns["source"], turns["turn"]):
        for theme in ("wij-zij", "dubbelrol", "mogelijk-maker"):
            hit = theme in decided.get((s, t), [])
            rows.append((s, t, theme, 0.9 if hit else 0.1, hit, int(hit)))
    tags = pd.DataFrame(rows, columns=["source", "turn", "theme", "score", "decided", "rule_hits"])
    text = dict(zip(zip(turns["source"], turns["turn"]), turns["text"]))

    def ev(source: str, turn: int, theme: str, phrase: str, kind: str = "regel") -> tuple:
        start = text[(source, turn)].index(phrase)
        return (source, turn, theme, kind, phrase, start, start + len(phrase), phrase, 1.0)

    evidence = pd.DataFrame(
        [
            ev("voorst/2025/café-avond.txt", 1, "wij-zij", "zij bepalen het toch al"),
            ev("voorst/2025/café-avond.txt", 2, "wij-zij", "überhaupt niet gehoord", "model"),
            ev("voorst/2025/café-avond.txt", 3, "dubbelrol", "én ik werk bij de gemeente"),
            ev("utrecht/2025/overvecht.docx", 1, "mogelijk-maker", "geven ons de ruimte"),
        ],
        columns=["source", "turn", "theme", "kind", "cue", "start", "end", "text", "weight"],
    )
    return turns, tags, evidence


def unpack(qdpx: bytes) -> tuple[etree._Element, dict[str, str]]:
    with zipfile.ZipFile(io.BytesIO(qdpx)) as archive:
        root = etree.fromstring(archive.read("project.qde"))
        texts = {
            n.removeprefix("sources/"): archive.read(n).decode("utf-8")
            for n in archive.namelist()
            if n.startswith("sources/")
        }
    return root, texts


def coded_selections(root: etree._Element, texts: dict[str, str]) -> list[tuple[str, str, set]]:
    """(source name, selected text, code names) for every selection in a project."""
    names = {c.get("guid"): c.get("name") for c in root.iterfind(".//q:Code", NS)}
    out = []
    for source in root.iterfind("q:Sources/q:TextSource", NS):
        text = texts[source.get("plainTextPath").removeprefix("internal://")]
        for sel in source.iterfind("q:PlainTextSelection", NS):
            start, end = int(sel.get("startPosition")), int(sel.get("endPosition"))
            codes = {names[r.get("targetGUID")] for r in sel.iterfind("q:Coding/q:CodeRef", NS)}
            out.append((source.get("name"), text[start:end], codes))
    return out


@pytest.mark.parametrize("unit", ["turn", "evidence"])
def test_export_is_valid_against_the_refi_qda_schemas(corpus, codebook, unit):
    _, qdpx, qdc, _ = build_export(*corpus, codebook, ExportParams(unit=unit))
    root, _ = unpack(qdpx)
    project_schema = xsd("Project-mrt2019.xsd")
    assert project_schema.validate(root), project_schema.error_log
    codebook_schema = xsd("Codebook.xsd")
    assert codebook_schema.validate(etree.fromstring(qdc)), codebook_schema.error_log


def test_turn_selections_are_exactly_the_coded_turn_texts(corpus, codebook):
    turns, tags, evidence = corpus
    year, qdpx, _, summary = build_export(turns, tags, evidence, codebook, ExportParams())
    assert year == 2025 and summary["sources"] == 2
    root, texts = unpack(qdpx)
    labels = {t.id: t.label for t in codebook.themes}
    decided = tags[tags["decided"] & (tags["source"] != "voorst/2024/oud.txt")]
    expected = (
        decided.groupby(["source", "turn"])["theme"].agg(lambda ts: {labels[t] for t in ts})
    ).to_dict()
    text = dict(zip(zip(turns["source"], turns["turn"]), turns["text"]))
    got = {}
    for source, selected, codes in coded_selections(root, texts):
        turn = next(t for (s, t), x in text.items() if s == source and x == selected)
        got[(source, turn)] = codes
    assert got == expected
    assert "Ja, de gemeente zegt één ding\nen doet iets anders: überhaupt niet gehoord." in [
        sel for _, sel, _ in coded_selections(root, texts)
    ]


def test_evidence_selections_are_exactly_the_evidence_texts(corpus, codebook):
    turns, tags, evidence = corpus
    _, qdpx, _, _ = build_export(turns, tags, evidence, codebook, ExportParams(unit="evidence"))
    root, texts = unpack(qdpx)
    selected = {(s, sel, frozenset(c)) for s, sel, c in coded_selections(root, texts)}
    for row in evidence.itertuples():
        label = codebook.theme(row.theme).label
        assert any(s == row.source and sel == row.text and label in c for s, sel, c in selected)
    # a decided theme without evidence (dubbelrol in turn 2) codes the whole turn
    whole = "Ja, de gemeente zegt één ding\nen doet iets anders: überhaupt niet gehoord."
    assert ("voorst/2025/café-avond.txt", whole, frozenset({"Dubbelrol"})) in selected


def test_export_is_byte_identical_for_the_same_inputs(corpus, codebook):
    first = build_export(*corpus, codebook, ExportParams())
    second = build_export(*corpus, codebook, ExportParams())
    assert first[1] == second[1] and first[2] == second[2]


def test_sources_are_utf8_files_and_the_project_has_what_importers_need(corpus, codebook):
    _, qdpx, _, _ = build_export(*corpus, codebook, ExportParams())
    root, texts = unpack(qdpx)
    assert root.get("origin") and root.get("creationDateTime")
    assert root.find("q:Users/q:User", NS) is not None
    for source in root.iterfind("q:Sources/q:TextSource", NS):
        assert source.find("q:PlainTextContent", NS) is None
        assert source.get("plainTextPath").removeprefix("internal://") in texts
    guids = [e.get("guid") for e in root.iter() if e.get("guid")]
    assert len(guids) == len(set(guids))
    codes = root.findall("q:CodeBook/q:Codes/q:Code", NS)
    assert [c.get("name") for c in codes] == [t.label for t in codebook.themes]
    assert all(c.get("color") and c.findtext("q:Description", namespaces=NS) for c in codes)


def test_variables_and_speaker_cases(corpus, codebook):
    _, qdpx, _, _ = build_export(*corpus, codebook, ExportParams())
    root, _ = unpack(qdpx)
    variables = {v.get("guid"): v.get("name") for v in root.iterfind(".//q:Variable", NS)}
    assert set(variables.values()) == {"gemeente", "datum", "jaar", "sessie", "rol"}

    def values(element: etree._Element) -> dict[str, str]:
        return {
            variables[v.find("q:VariableRef", NS).get("targetGUID")]: v[1].text
            for v in element.iterfind("q:VariableValue", NS)
        }

    source = root.find("q:Sources/q:TextSource[@name='utrecht/2025/overvecht.docx']", NS)
    assert values(source) == {
        "gemeente": "Utrecht", "datum": "2025-10-02", "jaar": "2025", "sessie": "Pitstop",
    }  # fmt: skip
    selections = {s.get("guid") for s in root.iterfind(".//q:PlainTextSelection", NS)}
    cases = root.findall("q:Cases/q:Case", NS)
    roles = {c.get("name"): values(c)["rol"] for c in cases}
    assert roles["[PERSOON-2] (facilitator) – voorst/2025/café-avond.txt"] == "facilitator"
    refs = [r.get("targetGUID") for c in cases for r in c.iterfind("q:SelectionRef", NS)]
    assert refs and set(refs) <= selections


def test_report_year_defaults_to_the_latest_and_rejects_a_missing_one(corpus):
    turns = corpus[0]
    assert report_year(turns, None) == 2025
    assert report_year(turns, 2024) == 2024
    with pytest.raises(ValueError, match="2019"):
        report_year(turns, 2019)


def test_render_source_offsets_are_code_points():
    turns = make_turns(["Één café.", "Daarna: ë."])
    rendered = render_source(turns)
    for row in rendered.turns.itertuples():
        assert rendered.text[row.text_start : row.text_end] == turns["text"][row.turn - 1]
    assert rendered.text.startswith("[PERSOON-1] (bewoner): Één café.")


@pytest.mark.parametrize("year", [None, 2024])
def test_reading_only_the_years_sessions_gives_the_same_export(tmp_path, corpus, codebook, year):
    turns, tags, evidence = corpus
    p = paths(read_params(), root=tmp_path)
    p.turns.parent.mkdir(parents=True)
    for frame, path in ((turns, p.turns), (tags, p.tags), (evidence, p.evidence)):
        frame.to_parquet(path, index=False, row_group_size=4)

    read_turns, read_tags, read_evidence = read_year(p, year)

    assert set(read_turns["jaar"]) == {2025 if year is None else year}
    assert set(read_tags["source"]) == set(read_turns["source"]) >= set(read_evidence["source"])
    params = ExportParams(year=year)
    expected = build_export(turns, tags, evidence, codebook, params)
    assert build_export(read_turns, read_tags, read_evidence, codebook, params) == expected
