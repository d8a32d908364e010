"""`buurtlens import-qdpx`: human coding from a QDA tool's `.qdpx` back to (source, turn) rows.

Reading (`read_qdpx`) and mapping (`map_codings`) are pure; `import_file` does the I/O. Whatever
cannot be used — codes outside the codebook, sources outside the corpus, selections that fall
on no turn — is listed in the report, never dropped silently.
"""

from __future__ import annotations

import difflib
import io as bytes_io
import re
import unicodedata
import zipfile
from bisect import bisect_right
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pandas as pd
from lxml import etree

from pipeline.codebook import Codebook
from pipeline.qdpx import (
    INTERNAL,
    PROJECT_NS,
    SOURCE_MARKER,
    QdpxError,
    SourceText,
    render_sources,
    schema_errors,
)
from pipeline.schemas import Annotations

NS = {"q": PROJECT_NS}
SNIPPET = 60


@dataclass(frozen=True)
class QdaSelection:
    """One PlainTextSelection as the QDA tool wrote it."""

    guid: str
    start: int
    end: int
    name: str
    codes: tuple[str, ...]  # code GUIDs
    coders: tuple[str, ...]  # user names (or GUIDs when the user is not listed)


@dataclass(frozen=True)
class QdaSource:
    """One TextSource: its name, description, text (None when unreadable) and selections."""

    guid: str
    name: str
    description: str
    text: str | None
    selections: tuple[QdaSelection, ...]
    problem: str = ""


@dataclass(frozen=True)
class QdaProject:
    """What the import needs from a REFI-QDA project."""

    origin: str
    codes: dict[str, str]  # code GUID -> name (nested codes included)
    sources: tuple[QdaSource, ...]
    users: dict[str, str]
    other_sources: int = 0  # PDF, picture, audio, video: not transcripts


@dataclass
class ImportResult:
    """The annotations to write and the report of what could not be used."""

    annotations: pd.DataFrame
    report: dict = field(default_factory=dict)


def _open_archive(data: bytes, name: str) -> tuple[bytes, dict[str, bytes]]:
    try:
        archive = zipfile.ZipFile(bytes_io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise QdpxError(f"{name}: not a .qdpx project (not a ZIP archive)") from exc
    with archive:
        names = [n for n in archive.namelist() if not n.endswith("/")]
        qde = [n for n in names if n.lower().endswith(".qde") and "/" not in n.strip("/")]
        preferred = [n for n in qde if n.lower() == "project.qde"] or qde
        if not preferred:
            raise QdpxError(
                f"{name}: no project.qde in the archive (found: {', '.join(names[:8])})"
            )
        files = {n: archive.read(n) for n in names if n.lower().startswith("sources/")}
        return archive.read(preferred[0]), files


def _decode(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "utf-16"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("cp1252", errors="replace")


def _user_names(root: etree._Element) -> dict[str, str]:
    return {
        u.get("guid", "").strip("{}").lower(): u.get("name") or u.get("id") or u.get("guid", "")
        for u in root.iterfind("q:Users/q:User", NS)
    }


def _norm_guid(value: str | None) -> str:
    return (value or "").strip("{}").lower()


def _selection(el: etree._Element, users: dict[str, str]) -> QdaSelection:
    codes, coders = [], []
    for coding in el.iterfind("q:Coding", NS):
        ref = coding.find("q:CodeRef", NS)
        if ref is not None:
            codes.append(_norm_guid(ref.get("targetGUID")))
            who = coding.get("creatingUser") or el.get("creatingUser") or el.get("modifyingUser")
            if who:
                coders.append(users.get(_norm_guid(who), _norm_guid(who)))
    return QdaSelection(
        guid=_norm_guid(el.get("guid")),
        start=int(el.get("startPosition")),
        end=int(el.get("endPosition")),
        name=el.get("name") or "",
        codes=tuple(codes),
        coders=tuple(coders),
    )


def _source_text(el: etree._Element, files: dict[str, bytes]) -> tuple[str | None, str]:
    inline = el.find("q:PlainTextContent", NS)
    if inline is not None:
        return inline.text or "", ""
    path = el.get("plainTextPath") or ""
    if not path.startswith(INTERNAL):
        return None, f"text not inside the project (plainTextPath {path!r})"
    wanted = path[len(INTERNAL) :].lstrip("/").lower()
    for name, raw in files.items():
        if name.split("/", 1)[1].lower() == wanted:  # sources/ or Sources/
            return _decode(raw), ""
    return None, f"{path} is missing from the archive"


def parse_project(
    qde: bytes, files: dict[str, bytes], name: str, validate: bool = True
) -> QdaProject:
    """Parse (and XSD-validate) a project document and its internal source files."""
    try:
        root = etree.fromstring(qde, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        raise QdpxError(f"{name}: project.qde is not well-formed XML: {exc}") from exc
    namespace = etree.QName(root).namespace
    if etree.QName(root).localname != "Project" or namespace != PROJECT_NS:
        raise QdpxError(
            f"{name}: not a REFI-QDA project: root element is {root.tag}, "
            f"expected {{{PROJECT_NS}}}Project"
        )
    if validate:
        errors = schema_errors(root)
        if errors:
            shown = "; ".join(errors[:5]) + (
                f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
            )
            raise QdpxError(f"{name}: project.qde does not follow the REFI-QDA schema: {shown}")
    users = _user_names(root)
    codes = {
        _norm_guid(c.get("guid")): c.get("name", "")
        for c in root.iterfind("q:CodeBook/q:Codes//q:Code", NS)
    }
    sources = []
    for el in root.iterfind("q:Sources/q:TextSource", NS):
        text, problem = _source_text(el, files)
        description = el.findtext("q:Description", default="", namespaces=NS) or ""
        sources.append(
            QdaSource(
                guid=_norm_guid(el.get("guid")),
                name=el.get("name") or "",
                description=description,
                text=text,
                selections=tuple(
                    _selection(s, users) for s in el.iterfind("q:PlainTextSelection", NS)
                ),
                problem=problem,
            )
        )
    other = len(root.findall("q:Sources/*", NS)) - len(sources)
    return QdaProject(root.get("origin") or "", codes, tuple(sources), users, other)


def read_qdpx(data: bytes, name: str = "project.qdpx", validate: bool = True) -> QdaProject:
    """A `.qdpx` archive's bytes as a QdaProject; QdpxError with the reason when unusable."""
    qde, files = _open_archive(data, name)
    return parse_project(qde, files, name, validate)


def _normalise(text: str) -> str:
    return unicodedata.normalize(
        "NFC", text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    )


def match_source(qda: QdaSource, corpus: dict[str, SourceText]) -> tuple[str | None, str]:
    """Which transcript a QDA source is: by our marker, by name, or by its text."""
    marker = re.search(re.escape(SOURCE_MARKER) + r"(.+)", qda.description)
    if marker and marker.group(1).strip() in corpus:
        return marker.group(1).strip(), "description"
    name = qda.name.strip()
    for candidate in (name, name.removesuffix(".txt"), name.replace("\\", "/")):
        if candidate in corpus:
            return candidate, "name"
    if qda.text is not None:
        text = _normalise(qda.text).strip()
        for source, rendered in corpus.items():
            if _normalise(rendered.text).strip() == text:
                return source, "text"
    by_stem = [s for s in corpus if name and PurePosixPath(s).stem == PurePosixPath(name).stem]
    if len(by_stem) == 1:
        return by_stem[0], "name"
    return None, ""


class Aligner:
    """Maps positions in a QDA tool's copy of a text to positions in our source text."""

    def __init__(self, theirs: str, ours: str, crlf_as_one: bool) -> None:
        stripped = theirs.lstrip("\ufeff")
        self.bom = len(theirs) - len(stripped)
        # positions count the text the tool shows: without BOM, and CRLF as one or two characters
        shown = stripped.replace("\r\n", "\n") if crlf_as_one else stripped
        self.shown = shown
        self.to_lf = self._lf_map(shown)
        lf = shown.replace("\r\n", "\n").replace("\r", "\n")
        self.identical = lf == ours
        if not self.identical:
            matcher = difflib.SequenceMatcher(None, lf, ours, autojunk=False)
            self.blocks = [b for b in matcher.get_matching_blocks() if b.size]
            self.starts = [b.a for b in self.blocks]

    @staticmethod
    def _lf_map(shown: str) -> list[int]:
        mapping, at = [], 0
        for i, ch in enumerate(shown):
            mapping.append(at)
            if not (ch == "\r" and shown[i + 1 : i + 2] == "\n"):
                at += 1
        mapping.append(at)
        return mapping

    def _ours(self, pos: int, is_end: bool) -> int | None:
        if self.identical:
            return pos
        k = bisect_right(self.starts, pos) - 1
        if k >= 0:
            block = self.blocks[k]
            if block.a <= pos < block.a + block.size or (is_end and pos == block.a + block.size):
                return block.b + pos - block.a
        if is_end:  # inside text the tool changed: end at the previous matching stretch
            return self.blocks[k].b + self.blocks[k].size if k >= 0 else None
        nxt = k + 1  # start at the next matching stretch
        return self.blocks[nxt].b if nxt < len(self.blocks) else None

    def in_range(self, start: int, end: int) -> bool:
        """Whether [start, end) is a non-empty stretch of the tool's text."""
        return 0 <= start < end <= len(self.shown)

    def span(self, start: int, end: int) -> tuple[int, int] | None:
        """Our (start, end) for the tool's (start, end), or None when it lies outside the text."""
        if not self.in_range(start, end):
            return None
        a, b = self._ours(self.to_lf[start], False), self._ours(self.to_lf[end], True)
        if a is None or b is None or a >= b:
            return None
        return a, b


def turns_in_span(rendered: SourceText, start: int, end: int) -> list[int]:
    """The turns whose line shares a non-blank character with [start, end)."""
    hit = []
    for row in rendered.turns.itertuples(index=False):
        lo, hi = max(start, row.line_start), min(end, row.line_end)
        if lo < hi and rendered.text[lo:hi].strip():
            hit.append(int(row.turn))
    return hit


def _why(aligner: Aligner, s: QdaSelection, span: tuple[int, int] | None) -> str:
    if not aligner.in_range(s.start, s.end):
        return "outside the text"
    return "text not found in the transcript" if span is None else "covers no turn text"


def _theme_for(name: str, codebook: Codebook) -> str | None:
    key = name.strip().casefold()
    for theme in codebook.themes:
        if key in (theme.id.casefold(), theme.label.casefold()):
            return theme.id
    return None


def _crlf_as_one(project: QdaProject, qda: QdaSource) -> bool:
    """ATLAS.ti counts CRLF as one position; others count code points of the file as stored.
    Selection names that quote the text decide when they can."""
    text = (qda.text or "").lstrip("\ufeff")
    if "\r\n" not in text:
        return False
    votes = Counter()
    for s in qda.selections:
        quote = s.name.rstrip(".… ").strip()
        if len(quote) < 8:
            continue
        for one in (True, False):
            shown = text.replace("\r\n", "\n") if one else text
            if shown[s.start : s.end].replace("\r\n", "\n").startswith(quote.replace("\r\n", "\n")):
                votes[one] += 1
    if votes[True] != votes[False]:
        return votes[True] > votes[False]
    return "atlas" in project.origin.casefold()


def map_codings(
    project: QdaProject,
    turns: pd.DataFrame,
    codebook: Codebook,
    default_coder: str,
    only_coded: bool = False,
) -> ImportResult:
    """Annotations (source, turn, themes, coder) for every turn of every recognised source."""
    corpus = render_sources(turns)
    themes: dict[tuple[str, int], set[str]] = defaultdict(set)
    coders: dict[tuple[str, int], set[str]] = defaultdict(set)
    report: dict = {
        "origin": project.origin,
        "sources": [],
        "unknown_sources": [],
        "unknown_codes": {},
        "unmapped_selections": [],
        "uncoded_selections": 0,
        "other_sources": project.other_sources,
    }
    unknown_codes: Counter[str] = Counter()
    matched: set[str] = set()
    for qda in project.sources:
        source, how = match_source(qda, corpus)
        if source is None or qda.text is None:
            report["unknown_sources"].append(
                {"name": qda.name, "selections": len(qda.selections),
                 "reason": qda.problem or "matches no transcript in the turns table"}
            )  # fmt: skip
            continue
        if source in matched:
            report["unknown_sources"].append(
                {"name": qda.name, "selections": len(qda.selections),
                 "reason": f"a second copy of {source}; only the first one is used"}
            )  # fmt: skip
            continue
        matched.add(source)
        rendered = corpus[source]
        aligner = Aligner(qda.text, rendered.text, _crlf_as_one(project, qda))
        counts = Counter()
        for s in qda.selections:
            if not s.codes:
                report["uncoded_selections"] += 1
                continue
            span = aligner.span(s.start, s.end)
            hit = turns_in_span(rendered, *span) if span else []
            if not hit:
                snippet = (qda.text or "")[max(s.start, 0) : max(s.start, 0) + SNIPPET]
                report["unmapped_selections"].append(
                    {"source": source, "guid": s.guid, "start": s.start, "end": s.end,
                     "text": snippet, "codes": [project.codes.get(c, c) for c in s.codes],
                     "reason": _why(aligner, s, span)}
                )  # fmt: skip
                continue
            counts["selections"] += 1
            for code in s.codes:
                theme = _theme_for(project.codes.get(code, ""), codebook)
                if theme is None:
                    unknown_codes[project.codes.get(code, f"<no code {code}>")] += 1
                    continue
                for turn in hit:
                    themes[(source, turn)].add(theme)
            for turn in hit:
                coders[(source, turn)].update(s.coders)
        report["sources"].append(
            {"source": source, "name": qda.name, "matched_by": how,
             "text_identical": aligner.identical, "selections": counts["selections"]}
        )  # fmt: skip
    report["unknown_codes"] = dict(sorted(unknown_codes.items()))
    rows = []
    for source in sorted(matched):
        for turn in corpus[source].turns["turn"]:
            key = (source, int(turn))
            if only_coded and key not in themes:
                continue
            who = ";".join(sorted(coders.get(key, ()))) or default_coder
            rows.append((source, int(turn), ";".join(sorted(themes.get(key, ()))), who))
    frame = pd.DataFrame(rows, columns=["source", "turn", "themes", "coder"])
    annotations = Annotations.validate(frame.astype({"turn": "int64"}))
    report["turns"] = len(annotations)
    report["coded_turns"] = int((annotations["themes"] != "").sum())
    report["codings_per_theme"] = {
        t: int(annotations["themes"].str.split(";").map(lambda ts, t=t: t in ts).sum())
        for t in codebook.ids
    }
    return ImportResult(annotations, report)


def format_report(report: dict, target: Path) -> str:
    """The import report as lines for the terminal."""
    lines = [
        f"{len(report['sources'])} bronnen herkend, {report['turns']} beurten "
        f"({report['coded_turns']} gecodeerd) -> {target}"
    ]
    for item in report["unknown_sources"]:
        lines.append(
            f"  bron niet gevonden: {item['name']!r} ({item['selections']} selecties): "
            f"{item['reason']}"
        )
    for code, n in report["unknown_codes"].items():
        lines.append(f"  code niet in het codeboek: {code!r} ({n} coderingen)")
    for item in report["unmapped_selections"]:
        lines.append(
            f"  selectie niet toe te wijzen: {item['source']} [{item['start']}:"
            f"{item['end']}] {item['text']!r} ({item['reason']})"
        )
    if report["uncoded_selections"]:
        lines.append(f"  {report['uncoded_selections']} selecties zonder code (memo's) genegeerd")
    if report["other_sources"]:
        lines.append(f"  {report['other_sources']} bronnen die geen tekst zijn genegeerd")
    return "\n".join(lines)


def target_name(qdpx: Path) -> str:
    """The annotations file for a .qdpx: 'z-qdpx-<stem>.csv'.

    `read_annotations` lets later files (in name order) win for the same turn, so the name
    sorts after the hand-made files such as 'voorbeeldcorpus.csv' ('qdpx-' alone would not).
    """
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(qdpx).stem).strip("-.") or "project"
    return f"z-qdpx-{stem}.csv"


def import_file(
    qdpx: Path,
    turns_path: Path,
    codebook: Codebook,
    out_dir: Path,
    validate: bool = True,
    only_coded: bool = False,
) -> tuple[Path, ImportResult]:
    """Read a .qdpx, map it onto the turns table, write the annotations CSV and a JSON report."""
    from pipeline import io
    from pipeline.schemas import Turns

    project = read_qdpx(Path(qdpx).read_bytes(), Path(qdpx).name, validate)
    turns = Turns.validate(pd.read_parquet(turns_path))
    default = f"qdpx:{Path(qdpx).stem}"
    result = map_codings(project, turns, codebook, default, only_coded)
    target = Path(out_dir) / target_name(qdpx)
    result.report["file"] = str(qdpx)
    result.report["annotations"] = str(target)
    io.write_csv(result.annotations, target)
    io.write_json(result.report, target.with_suffix(".json"))
    return target, result
