"""The report dict and its HTML, built from literal tables: Dutch, offline, deterministic."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace

import pandas as pd
import pytest

from pipeline import report as report_stage
from pipeline.aggregate import aggregate, table_path
from pipeline.codebook import parse_codebook
from pipeline.formatting import nl_number, nl_percent, nl_points
from pipeline.params import ReportParams, paths, read_params
from pipeline.quotes import highlight, quote_candidates, select_quotes
from pipeline.report import ReportInputs, build_report, choose_year, render

CODEBOOK = """
version: "test-1"
themes:
  - id: wij-zij
    label: Wij-zij
    definition: Wij tegenover zij.
    phrases: [de instanties]
  - id: dubbelrol
    label: Dubbelrol
    definition: Twee petten.
    phrases: [twee petten]
"""
PROJECT_PATHS = paths(read_params())
GEMEENTEN = ("Utrecht", "Voorst")  # Voorst has no sessions in 2026

TEXT_A = "Die instanties luisteren nooit naar ons, zij bepalen alles en wij mogen knikken."
TEXT_B = "Ik heb twee petten op: ik werk voor de gemeente en ik woon in de wijk zelf."


def _turns() -> pd.DataFrame:
    rows = [
        ("utrecht/2025/a.txt", 1, "Utrecht", 2025, "[PERSOON-1]", "bewoner", TEXT_A),
        ("utrecht/2025/a.txt", 2, "Utrecht", 2025, "[PERSOON-2]", "sociaal-werker", TEXT_B),
        ("voorst/2025/b.txt", 1, "Voorst", 2025, "[PERSOON-1]", "bewoner", TEXT_A),
        ("utrecht/2026/c.txt", 1, "Utrecht", 2026, "[PERSOON-1]", "bewoner", TEXT_A),
        ("utrecht/2026/c.txt", 2, "Utrecht", 2026, "[PERSOON-3]", "gemeente", TEXT_B),
        ("utrecht/2026/c.txt", 3, "Utrecht", 2026, "[PERSOON-2]", "bewoner", "Ja."),
    ]
    frame = pd.DataFrame(
        rows, columns=["source", "turn", "gemeente", "jaar", "speaker", "role", "text"]
    )
    return frame.assign(
        line=frame["turn"],
        datum=frame["jaar"].astype(str) + "-04-01",
        sessie="Pitstop <1> & co",  # escaped in HTML
        timestamp=None,
    )


def _tags(turns: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for source, turn, text in turns[["source", "turn", "text"]].itertuples(index=False):
        for theme, marker in (("wij-zij", "instanties"), ("dubbelrol", "petten")):
            yes = marker in text
            rows.append((source, turn, theme, 0.93 if yes else 0.04, yes, int(yes)))
    return pd.DataFrame(rows, columns=["source", "turn", "theme", "score", "decided", "rule_hits"])


def _evidence(turns: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for source, turn, text in turns[["source", "turn", "text"]].itertuples(index=False):
        for theme, cue in (("wij-zij", "instanties"), ("dubbelrol", "twee petten")):
            at = text.find(cue)
            if at >= 0:
                rows.append((source, turn, theme, "regel", cue, at, at + len(cue), cue, 1.0))
    return pd.DataFrame(
        rows,
        columns=["source", "turn", "theme", "kind", "cue", "start", "end", "text", "weight"],
    )


@pytest.fixture
def inputs() -> ReportInputs:
    turns = _turns()
    tags = _tags(turns)
    codebook = parse_codebook(CODEBOOK)
    return ReportInputs(
        tables=aggregate(turns, tags, codebook.ids, GEMEENTEN),
        turns=turns,
        tags=tags,
        evidence=_evidence(turns),
        codebook=codebook,
        gemeenten=GEMEENTEN,
        nlp_meta={
            "model": "blank:nl",
            "fallback": True,
            "spacy_version": "3.8",
            "lemmatizer": "lookup+backoff",
        },
        tagging_metrics={
            "codebook": {"version": "test-1", "digest": codebook.digest},
            "annotations": {"turns": 1234},
            "thresholds": {"wij-zij": 0.5, "dubbelrol": 0.6},
            "by_session": {
                "folds": 5,
                "macro_f1": 0.7347,
                "themes": {
                    "wij-zij": {
                        "precision": 0.65,
                        "recall": 0.8,
                        "f1": 0.72,
                        "kappa": 0.66,
                        "support": 363,
                    }
                },
            },
        },
        ingest_report={
            "totals": {"files": 4, "read": 3, "skipped": 0, "rejected": 1},
            "files": [
                {
                    "source": "kapot.docx",
                    "status": "rejected",
                    "reason": "geen tekst",
                    "errors": [],
                    "warnings": [],
                }
            ],
        },
    )


PARAMS = ReportParams(year=None, quotes_per_gemeente=3, quote_min_words=3, quote_max_words=90)


def test_dutch_number_formatting() -> None:
    assert nl_number(43391) == "43.391"
    assert nl_number(0.7347, 2) == "0,73"
    assert nl_percent(0.1973) == "19,7%"
    assert nl_percent(float("nan")) == "–"
    assert nl_points(0.027) == "+2,7 pp"
    assert nl_points(-0.011) == "\u22121,1 pp"
    assert nl_points(None) == "–"


def test_year_defaults_to_the_latest_and_an_unknown_year_is_named(inputs: ReportInputs) -> None:
    overview = inputs.tables["overview"]
    assert choose_year(overview, None) == 2026
    assert choose_year(overview, 2025) == 2025
    with pytest.raises(ValueError, match="2023.*2025, 2026"):
        choose_year(overview, 2023)


def test_dict_holds_the_numbers(inputs: ReportInputs) -> None:
    r = build_report(inputs, PARAMS)
    assert r["year"] == 2026 and r["has_previous_year"]
    assert r["overview"]["missing"] == ["Voorst"]
    assert r["overview"]["total"]["turns"] == 3
    wij = next(t for t in r["themes"] if t["id"] == "wij-zij")
    utrecht = wij["rows"][0]
    assert (utrecht["turns"], utrecht["turns_total"]) == (1, 3)
    assert utrecht["share"] == pytest.approx(1 / 3)
    assert utrecht["share_previous"] == pytest.approx(1 / 2)
    assert utrecht["change"] == pytest.approx(1 / 3 - 1 / 2)
    assert not wij["rows"][1]["has_sessions"]
    quote = utrecht["quotes"][0]
    assert (quote["source"], quote["turn"]) == ("utrecht/2026/c.txt", 1)
    assert [p["text"] for p in quote["parts"] if p["mark"]] == ["instanties"]
    assert r["topics"] == {"available": False, "gemeenten": []}


def test_first_year_and_missing_gemeente_are_said_in_words(inputs: ReportInputs) -> None:
    first = build_report(inputs, replace(PARAMS, year=2025))
    assert not first["has_previous_year"]
    html = render(first, "report.html.j2")
    assert "2025 is het eerste jaar in de gegevens" in html
    latest = render(build_report(inputs, PARAMS), "report.html.j2")
    assert "In 2026 waren er geen sessies in Voorst" in latest
    assert "geen sessies in 2026" in latest


def test_topics_section_says_the_stage_has_not_run(inputs: ReportInputs) -> None:
    html = render(build_report(inputs, PARAMS), "report.html.j2")
    assert "Opkomende onderwerpen" in html
    assert "is nog niet uitgevoerd" in html


def test_topics_section_when_the_topics_stage_ran(inputs: ReportInputs) -> None:
    topics = pd.DataFrame(
        {
            "gemeente": ["Utrecht", "Utrecht", "Utrecht"],
            "jaar": [2026, 2026, 2026],
            "topic": [-1, 0, 1],
            "words": ["ruis", "buurtkamer, sleutel, beheer", "subsidie, verantwoording"],
            "size": [50, 12, 9],
            "overlap_theme": [None, None, "dubbelrol"],
        }
    )
    r = build_report(replace(inputs, topics=topics), PARAMS)
    utrecht = r["topics"]["gemeenten"][0]
    assert [t["topic"] for t in utrecht["topics"]] == [0, 1]  # outliers (-1) left out
    assert utrecht["topics"][1]["overlap"] == "Dubbelrol"
    html = render(r, "report.html.j2")
    assert "buurtkamer, sleutel, beheer" in html and "lijkt op Dubbelrol" in html
    assert "nog niet uitgevoerd" not in html


def test_html_is_self_contained(inputs: ReportInputs) -> None:
    html = render(build_report(inputs, PARAMS), "report.html.j2")
    assert html.count("<svg") == 1 + 2 + 1  # heatmap, one chart per theme, co-occurrence
    external = re.findall(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html, flags=re.I)
    assert external == []
    assert not re.search(r"<link\b|@import|url\(\s*['\"]?https?:", html, flags=re.I)
    assert "<script" not in html
    assert "Pitstop &lt;1&gt; &amp; co" in html  # data is escaped
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "ids of inline SVGs must not collide"


def test_html_is_dutch(inputs: ReportInputs) -> None:
    html = render(build_report(inputs, PARAMS), "report.html.j2")
    assert '<html lang="nl">' in html
    assert "33,3%" in html and "\u221216,7 pp" in html
    assert "Methode en datakwaliteit" in html and "kapot.docx" in html and "geen tekst" in html
    assert "teruggevallen" in html  # the spaCy fallback is said
    assert "nog niet gemeten" in html  # dubbelrol has no metrics in this literal


def test_output_is_deterministic(inputs: ReportInputs, tmp_path) -> None:
    first = report_stage.write_report(build_report(inputs, PARAMS), tmp_path / "a")
    second = report_stage.write_report(build_report(inputs, PARAMS), tmp_path / "b")
    for path in sorted(first.parent.iterdir()):
        assert path.read_bytes() == (second.parent / path.name).read_bytes(), path.name
    names = sorted(p.name for p in first.parent.iterdir())
    assert names == [
        "jaarrapport-2026-citaten.csv",
        "jaarrapport-2026-overzicht.csv",
        "jaarrapport-2026-prevalentie.csv",
        "jaarrapport-2026.html",
        "jaarrapport-2026.md",
    ]
    markdown = (first.parent / "jaarrapport-2026.md").read_text(encoding="utf-8")
    assert "| Utrecht |" in markdown and "geen sessies" in markdown


def test_a_new_codebook_theme_gets_its_own_section(inputs: ReportInputs) -> None:
    extra = CODEBOOK + (
        "  - id: nieuw-thema\n    label: Nieuw thema\n    definition: Iets nieuws.\n"
        "    phrases: [iets nieuws]\n"
    )
    codebook = parse_codebook(extra)
    tables = aggregate(inputs.turns, inputs.tags, codebook.ids, GEMEENTEN)
    r = build_report(replace(inputs, codebook=codebook, tables=tables), PARAMS)
    assert [t["label"] for t in r["themes"]] == ["Wij-zij", "Dubbelrol", "Nieuw thema"]
    assert 'id="thema-nieuw-thema"' in render(r, "report.html.j2")


def test_highlight_merges_overlapping_spans() -> None:
    assert highlight("abcdef", [(1, 3), (2, 4)]) == [("a", False), ("bcd", True), ("ef", False)]
    assert highlight("abc", []) == [("abc", False)]


def test_quotes_prefer_distinct_sessions_and_readable_length() -> None:
    cands = pd.DataFrame(
        {
            "theme": ["t"] * 4,
            "gemeente": ["G"] * 4,
            "source": ["s1", "s1", "s2", "s3"],
            "turn": [1, 2, 1, 1],
            "rule_hits": [1, 1, 1, 0],
            "words": [20, 20, 20, 20],
        }
    )  # strongest first
    chosen = select_quotes(cands, n=3, min_words=8, max_words=90)
    assert list(zip(chosen["source"], chosen["turn"])) == [("s1", 1), ("s2", 1), ("s1", 2)]


def test_quote_candidates_sum_all_evidence_and_name_each_cue_once() -> None:
    turns = _turns()
    tags = _tags(turns)
    evidence = _evidence(turns)
    first = evidence.iloc[0]
    repeated = first.to_frame().T.assign(start=first["start"] + 1, weight=0.5)  # same cue again
    other = first.to_frame().T.assign(cue="zij bepalen", weight=0.25)
    elsewhere = first.to_frame().T.assign(source="voorst/2025/b.txt", weight=9.0)  # not chosen
    evidence = pd.concat([evidence, repeated, other, elsewhere], ignore_index=True)
    evidence = evidence.astype({"turn": int, "start": int, "end": int, "weight": float})
    tags.loc[(tags["source"] == "utrecht/2025/a.txt") & (tags["theme"] == "wij-zij"), "decided"] = (
        True  # turn 2 is decided without evidence for wij-zij
    )

    cands = quote_candidates(turns, tags, evidence, gemeente="Utrecht", jaar=2025, theme="wij-zij")

    by_turn = cands.set_index("turn")
    assert list(cands["source"].unique()) == ["utrecht/2025/a.txt"]
    assert by_turn.loc[1, "evidence_weight"] == 1.75
    assert by_turn.loc[1, "cues"] == "instanties; zij bepalen"
    assert by_turn.loc[2, "evidence_weight"] == 0.0 and by_turn.loc[2, "cues"] == ""
    assert list(cands["turn"]) == [1, 2]  # strongest first


@pytest.mark.parametrize("year", [None, 2025])
def test_reading_only_the_years_quote_inputs_gives_the_same_report(tmp_path, year) -> None:
    p = paths(read_params(), root=tmp_path)
    codebook = parse_codebook(CODEBOOK)
    turns = _turns()
    tags, evidence = _tags(turns), _evidence(turns)
    for frame, path in ((turns, p.turns), (tags, p.tags), (evidence, p.evidence)):
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, index=False)
    tables = aggregate(turns, tags, codebook.ids, GEMEENTEN)
    p.aggregate.mkdir(parents=True)
    for name, table in tables.items():
        table.to_parquet(table_path(p, name), index=False)
    p.codebook.write_text(CODEBOOK, encoding="utf-8")
    p.gemeenten.parent.mkdir(parents=True)
    shutil.copy(PROJECT_PATHS.gemeenten, p.gemeenten)

    loaded = report_stage.load_inputs(p, year)

    chosen = 2026 if year is None else year
    assert set(loaded.turns["jaar"]) == {chosen} and loaded.tags["decided"].all()
    assert set(loaded.evidence["source"]) <= set(loaded.turns["source"])
    whole = ReportInputs(
        tables=tables,
        turns=turns,
        tags=tags,
        evidence=evidence,
        codebook=codebook,
        gemeenten=loaded.gemeenten,
        nlp_meta={},
        tagging_metrics={},
        ingest_report={},
    )
    params = replace(PARAMS, year=year)
    assert build_report(loaded, params) == build_report(whole, params)
