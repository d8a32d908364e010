"""Stage `export`: the year's coding as a REFI-QDA project (`.qdpx`) and the codebook (`.qdc`).

Analysts open the project in ATLAS.ti, NVivo, MAXQDA or QualCoder: one text source per
transcript, the codebook as codes, every decided (turn, theme) as a coded text selection, source
variables (gemeente, datum, jaar, sessie) and one case per speaker with variable `rol`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd
from lxml import etree

from pipeline import io
from pipeline.codebook import Codebook, Theme, load_codebook
from pipeline.params import Paths, paths, read_params, section
from pipeline.qdpx import (
    CODEBOOK_NS,
    INTERNAL,
    PROJECT_FILE,
    PROJECT_NS,
    SOURCE_MARKER,
    SOURCES_DIR,
    SourceText,
    guid,
    render_sources,
    schema_errors,
    zip_bytes,
)
from pipeline.schemas import Evidence, Tags, Turns

log = logging.getLogger("buurtlens.export")

ORIGIN = "buurtlens 0.1.0"
USER = "buurtlens (automatische codering)"
UNITS = ("turn", "evidence")
# Colour-blind safe qualitative palette (Okabe & Ito 2008), then Tableau 10 for larger codebooks.
PALETTE = (
    "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
    "#4E79A7", "#F28E2B", "#E15759", "#76B7B2", "#59A14F", "#EDC948", "#B07AA1",
)  # fmt: skip
SOURCE_VARIABLES = (
    ("gemeente", "Text"),
    ("datum", "Date"),
    ("jaar", "Integer"),
    ("sessie", "Text"),
)
CASE_VARIABLES = (("rol", "Text"),)


@dataclass(frozen=True)
class ExportParams:
    year: int | None = None  # report year; None = the latest year in the turns table
    unit: str = "turn"  # turn: code the whole turn text; evidence: code each evidence span


@dataclass(frozen=True)
class Selection:
    """A coded stretch of one source text: code points, end exclusive."""

    source: str
    turn: int
    start: int
    end: int
    themes: tuple[str, ...]
    note: str


def report_year(turns: pd.DataFrame, year: int | None) -> int:
    """The year to export: the one asked for, or the latest year in the data."""
    years = sorted(int(y) for y in turns[Turns.jaar].unique())
    if not years:
        raise ValueError("the turns table is empty: nothing to export")
    if year is None:
        return years[-1]
    if int(year) not in years:
        raise ValueError(f"export.year {year} has no turns; years in the data: {years}")
    return int(year)


def selections(
    sources: dict[str, SourceText], tags: pd.DataFrame, evidence: pd.DataFrame, unit: str
) -> list[Selection]:
    """The coded selections: a whole turn, or each evidence span (whole turn when it has none)."""
    if unit not in UNITS:
        raise ValueError(f"export.unit must be one of {UNITS}, not {unit!r}")
    decided = tags[tags[Tags.decided] & tags[Tags.source].isin(sources)]
    # plain dicts, not a pandas lookup per turn: that cost a minute at 5,000 transcripts
    placed = {
        (name, turn): (start, end)
        for name, rendered in sources.items()
        for turn, start, end in zip(
            rendered.turns["turn"].tolist(),
            rendered.turns["text_start"].tolist(),
            rendered.turns["text_end"].tolist(),
        )
    }
    scores_of: dict[tuple[str, int], dict[str, float]] = {}
    for source, turn, theme, score in zip(
        decided[Tags.source].tolist(),
        decided[Tags.turn].tolist(),
        decided[Tags.theme].tolist(),
        decided[Tags.score].tolist(),
    ):
        scores_of.setdefault((source, int(turn)), {})[theme] = score
    spans: dict[tuple[str, int, int, int], dict[str, str]] = {}
    ev_by_turn = (
        {key: group for key, group in evidence.groupby([Evidence.source, Evidence.turn])}
        if unit == "evidence"
        else {}
    )
    for (source, turn), scores in scores_of.items():
        offset, end = placed[source, turn]
        length = end - offset
        ev = ev_by_turn.get((source, turn))
        covered: set[str] = set()
        if ev is not None:
            for row in ev[ev[Evidence.theme].isin(scores)].itertuples(index=False):
                key = (source, turn, offset + int(row.start), offset + int(row.end))
                spans.setdefault(key, {})[row.theme] = f"{row.kind}: {row.cue}"
                covered.add(row.theme)
        for theme, score in scores.items():
            if theme not in covered and length > 0:
                key = (source, turn, offset, offset + length)
                spans.setdefault(key, {})[theme] = f"score {score:.2f}"
    return [
        Selection(source, turn, start, end, tuple(sorted(notes)), _note(notes))
        for (source, turn, start, end), notes in sorted(spans.items())
    ]


def _note(notes: dict[str, str]) -> str:
    return "; ".join(f"{theme}: {notes[theme]}" for theme in sorted(notes))


def _sub(parent: etree._Element, tag: str, ns: str = PROJECT_NS, **attrs: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{ns}}}{tag}", {k: v for k, v in attrs.items()})


def _text(parent: etree._Element, tag: str, text: str, ns: str = PROJECT_NS) -> etree._Element:
    element = _sub(parent, tag, ns)
    element.text = text
    return element


def _description(theme: Theme) -> str:
    lines = [theme.definition]
    if theme.include:
        lines += ["", "Wel coderen:"] + [f"- {item}" for item in theme.include]
    if theme.exclude:
        lines += ["", "Niet coderen:"] + [f"- {item}" for item in theme.exclude]
    return "\n".join(lines)


def _codes(parent: etree._Element, codebook: Codebook, ns: str) -> None:
    codes = _sub(parent, "Codes", ns)
    for i, theme in enumerate(codebook.themes):
        color = PALETTE[i % len(PALETTE)]
        code = _sub(
            codes,
            "Code",
            ns,
            guid=guid("code", theme.id),
            name=theme.label,
            isCodable="true",
            color=color,
        )
        _text(code, "Description", _description(theme), ns)


def codebook_document(codebook: Codebook) -> etree._Element:
    """The codebook alone as a REFI-QDA `.qdc` document."""
    root = etree.Element(f"{{{CODEBOOK_NS}}}CodeBook", nsmap={None: CODEBOOK_NS}, origin=ORIGIN)
    _codes(root, codebook, CODEBOOK_NS)
    return root


def _variable_value(parent: etree._Element, name: str, kind: str, value: object) -> None:
    holder = _sub(parent, "VariableValue")
    _sub(holder, "VariableRef", targetGUID=guid("variable", name))
    _text(holder, f"{kind}Value", str(value))


def project_document(
    turns: pd.DataFrame,
    sources: dict[str, SourceText],
    coded: list[Selection],
    codebook: Codebook,
    year: int,
    created: str,
) -> etree._Element:
    """The `project.qde` document for the given turns, source texts and coded selections."""
    user = guid("user", USER)
    stamp = {"creatingUser": user, "creationDateTime": created}
    root = etree.Element(f"{{{PROJECT_NS}}}Project", nsmap={None: PROJECT_NS})
    for key, value in (
        ("name", f"buurtlens {year}"),
        ("origin", ORIGIN),
        ("creatingUserGUID", user),
        ("creationDateTime", created),
    ):
        root.set(key, value)
    _sub(_sub(root, "Users"), "User", guid=user, name=USER, id="buurtlens")
    _codes(_sub(root, "CodeBook"), codebook, PROJECT_NS)
    variables = _sub(root, "Variables")
    for name, kind in SOURCE_VARIABLES + CASE_VARIABLES:
        variable = _sub(
            variables, "Variable", guid=guid("variable", name), name=name, typeOfVariable=kind
        )
        scope = "per bron (transcript)" if (name, kind) in SOURCE_VARIABLES else "per spreker"
        _text(variable, "Description", f"buurtlens: {name}, {scope}")

    selection_guid = {s: guid("selection", s.source, s.turn, s.start, s.end) for s in coded}
    coded_in: dict[str, list[Selection]] = {}  # per source, in `coded` order
    for s in coded:
        coded_in.setdefault(s.source, []).append(s)
    cases = _sub(root, "Cases")
    speakers = turns.groupby([Turns.source, Turns.speaker, Turns.role], sort=True)
    for (source, speaker, role), group in speakers:
        case = _sub(
            cases,
            "Case",
            guid=guid("case", source, speaker, role),
            name=f"{speaker} ({role}) – {source}",
        )
        _text(case, "Description", f"Spreker {speaker} ({role}) in {source}")
        _variable_value(case, "rol", "Text", role)
        _sub(case, "SourceRef", targetGUID=guid("source", source))
        own = set(group[Turns.turn].astype(int))
        for s in coded_in.get(source, ()):
            if s.turn in own:
                _sub(case, "SelectionRef", targetGUID=selection_guid[s])

    sources_el = _sub(root, "Sources")
    meta = turns.drop_duplicates(Turns.source).set_index(Turns.source)
    for source in sources:
        source_guid = guid("source", source)
        element = _sub(
            sources_el,
            "TextSource",
            guid=source_guid,
            name=source,
            plainTextPath=f"{INTERNAL}{source_guid}.txt",
            **stamp,
        )
        row = meta.loc[source]
        _text(
            element,
            "Description",
            f"{SOURCE_MARKER}{source}\n{row[Turns.sessie]} ({row[Turns.gemeente]}, "
            f"{row[Turns.datum]}); pseudoniemen, automatisch gecodeerd door buurtlens",
        )
        for s in coded_in.get(source, ()):
            selection = _sub(
                element,
                "PlainTextSelection",
                guid=selection_guid[s],
                name=f"{source} beurt {s.turn}",
                startPosition=str(s.start),
                endPosition=str(s.end),
                **stamp,
            )
            _text(selection, "Description", f"buurtlens: {s.note}")
            for theme in s.themes:
                coding = _sub(
                    selection, "Coding", guid=guid("coding", selection_guid[s], theme), **stamp
                )
                _sub(coding, "CodeRef", targetGUID=guid("code", theme))
        for name, kind in SOURCE_VARIABLES:
            _variable_value(element, name, kind, row[name])
    _text(
        root,
        "Description",
        f"buurtlens {year}: automatische codering van {len(sources)} transcripten met codeboek "
        f"{codebook.version}. Sprekers zijn cases met variabele 'rol'; bronnen hebben de "
        "variabelen gemeente, datum, jaar en sessie.",
    )
    return root


def _xml(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def build_export(
    turns: pd.DataFrame,
    tags: pd.DataFrame,
    evidence: pd.DataFrame,
    codebook: Codebook,
    params: ExportParams,
) -> tuple[int, bytes, bytes, dict]:
    """The year, the `.qdpx` bytes, the `.qdc` bytes and a summary; raises if not XSD-valid."""
    year = report_year(turns, params.year)
    chosen = turns[turns[Turns.jaar] == year]
    sources = render_sources(chosen)
    coded = selections(sources, tags[tags[Tags.theme].isin(codebook.ids)], evidence, params.unit)
    latest = max(chosen[Turns.datum])  # fixed, data-derived timestamps: reproducible bytes
    created = f"{latest}T00:00:00Z"
    project = project_document(chosen, sources, coded, codebook, year, created)
    qdc = codebook_document(codebook)
    for name, document in ((PROJECT_FILE, project), ("codebook.qdc", qdc)):
        errors = schema_errors(document)
        if errors:
            raise ValueError(f"{name} is not valid REFI-QDA: {'; '.join(errors[:5])}")
    entries = {PROJECT_FILE: _xml(project)}
    for source, rendered in sources.items():
        entries[f"{SOURCES_DIR}/{guid('source', source)}.txt"] = rendered.text.encode("utf-8")
    date = tuple(int(x) for x in latest.split("-"))
    summary = {
        "year": year,
        "unit": params.unit,
        "sources": len(sources),
        "turns": len(chosen),
        "selections": len(coded),
        "codings": sum(len(s.themes) for s in coded),
    }
    return year, zip_bytes(entries, date), _xml(qdc), summary  # type: ignore[arg-type]


def read_year(p: Paths, year: int | None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The turns of the year to export (`report_year`) and their sessions' tags and evidence:
    all `build_export` uses of the tables."""
    chosen = report_year(io.read_table(p.turns, Turns, [Turns.jaar]), year)
    turns = io.read_table(p.turns, Turns, filters=[(Turns.jaar, "==", chosen)])
    sources = turns[Turns.source].unique()
    tags = Tags.validate(io.read_sources(p.tags, sources))
    return turns, tags, Evidence.validate(io.read_sources(p.evidence, sources))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    params = read_params()
    p = paths(params)
    cfg = section(ExportParams, params.get("export"))
    turns, tags, evidence = read_year(p, cfg.year)
    year, qdpx, qdc, summary = build_export(turns, tags, evidence, load_codebook(p.codebook), cfg)
    target = p.exports / f"buurtlens-{year}.qdpx"
    for stale in p.exports.glob("buurtlens-*.qdpx"):
        if stale != target:
            stale.unlink()
    io.write_bytes(qdpx, target)
    io.write_bytes(qdc, p.exports / "codebook.qdc")
    log.info(
        "%s: %d sources, %d turns, %d selections, %d codings (unit %s); %d bytes",
        target.name,
        summary["sources"],
        summary["turns"],
        summary["selections"],
        summary["codings"],
        summary["unit"],
        len(qdpx),
    )


if __name__ == "__main__":
    main()
