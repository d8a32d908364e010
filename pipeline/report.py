"""Stage `report`: the yearly theme report as one self-contained Dutch HTML file (plus Markdown
and CSV tables beside it). `build_report` makes a plain dict; the templates only format it."""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from pipeline import figures, io, quotes
from pipeline.aggregate import TABLES, table_path
from pipeline.codebook import Codebook, load_codebook
from pipeline.formatting import nl_number, nl_percent, nl_points
from pipeline.metadata import canonical_names, load_gemeenten
from pipeline.params import Paths, ReportParams, paths, read_params, section
from pipeline.schemas import ROLES, Evidence, Tags, TopicsPerGemeente, Turns

log = logging.getLogger("buurtlens.report")

TEMPLATES = Path(__file__).parent / "templates"
NAME = "jaarrapport-{year}"
ROLE_LABELS = {  # column headings: the people in a role
    "bewoner": "bewoners",
    "sociaal-werker": "sociaal werkers",
    "gemeente": "gemeente",
    "facilitator": "gespreksleiders",
    "overig": "overig",
}
ROLE_NAMES = {  # one speaker in a role
    "bewoner": "bewoner",
    "sociaal-werker": "sociaal werker",
    "gemeente": "gemeente",
    "facilitator": "gespreksleider",
    "overig": "overig",
}


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report reads, already loaded."""

    tables: dict[str, pd.DataFrame]  # the aggregate tables by name
    # the turns, tags and evidence the quotes come from (`load_inputs` reads only what they use)
    turns: pd.DataFrame
    tags: pd.DataFrame
    evidence: pd.DataFrame
    codebook: Codebook
    gemeenten: tuple[str, ...]
    nlp_meta: dict[str, Any]
    tagging_metrics: dict[str, Any]
    ingest_report: dict[str, Any]
    topics: pd.DataFrame | None = None  # the `topics` stage's output, when it has run
    topics_meta: dict[str, Any] | None = None  # how the topics were found (topics_meta.json)


def _num(value: Any) -> float | None:
    """A plain float, or None for missing values (NaN, NA, None)."""
    if value is None or value is pd.NA:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def choose_year(overview: pd.DataFrame, requested: int | None) -> int:
    """The requested year, or the latest year with sessions; an unknown year is an error."""
    years = sorted(int(y) for y in overview.loc[overview["sessions"] > 0, "jaar"].unique())
    if not years:
        raise ValueError("no sessions in the data: nothing to report")
    if requested is None:
        return years[-1]
    if int(requested) not in years:
        raise ValueError(
            f"report.year={requested}: no sessions in that year; years in the data: "
            + ", ".join(str(y) for y in years)
        )
    return int(requested)


def _overview(inputs: ReportInputs, year: int) -> dict[str, Any]:
    ov = inputs.tables["overview"]
    ov = ov[ov["jaar"] == year].set_index("gemeente")
    part = inputs.tables["participants"]
    part = part[part["jaar"] == year]
    roles = [r for r in ROLES if r in set(part["role"])]
    by_role = part.set_index(["gemeente", "role"])["participants"]
    rows = []
    for gemeente in inputs.gemeenten:
        row = ov.loc[gemeente] if gemeente in ov.index else None
        has = row is not None and int(row["sessions"]) > 0
        rows.append(
            {
                "gemeente": gemeente,
                "has_sessions": has,
                "sessions": int(row["sessions"]) if has else 0,
                "turns": int(row["turns"]) if has else 0,
                "words": int(row["words"]) if has else 0,
                "participants": int(row["participants"]) if has else 0,
                "by_role": [int(by_role.get((gemeente, r), 0)) for r in roles],
            }
        )
    total = {
        key: sum(r[key] for r in rows) for key in ("sessions", "turns", "words", "participants")
    }
    total["by_role"] = [sum(r["by_role"][i] for r in rows) for i in range(len(roles))]
    return {
        "roles": [ROLE_LABELS[r] for r in roles],
        "rows": rows,
        "total": total,
        "missing": [r["gemeente"] for r in rows if not r["has_sessions"]],
    }


def _quotes(
    inputs: ReportInputs, year: int, theme: str, gemeente: str, params: ReportParams
) -> list[dict[str, Any]]:
    cands = quotes.quote_candidates(
        inputs.turns, inputs.tags, inputs.evidence, gemeente=gemeente, jaar=year, theme=theme
    )
    chosen = quotes.select_quotes(
        cands, params.quotes_per_gemeente, params.quote_min_words, params.quote_max_words
    )
    items = []
    for q in chosen.itertuples(index=False):
        spans = quotes.evidence_spans(inputs.evidence, q.source, int(q.turn), theme, "regel")
        items.append(
            {
                "speaker": q.speaker,
                "role": ROLE_NAMES.get(q.role, q.role),
                "source": q.source,
                "turn": int(q.turn),
                "datum": q.datum,
                "sessie": q.sessie,
                "score": float(q.score),
                "cues": q.cues,
                "parts": [{"text": t, "mark": m} for t, m in quotes.highlight(q.text, spans)],
            }
        )
    return items


def _theme(
    inputs: ReportInputs, year: int, theme_id: str, has_previous_year: bool, params: ReportParams
) -> dict[str, Any]:
    theme = inputs.codebook.theme(theme_id)
    prev = inputs.tables["prevalence"]
    prev = prev[(prev["jaar"] == year) & (prev["theme"] == theme_id)].set_index("gemeente")
    change = inputs.tables["prevalence_change"]
    change = change[(change["jaar"] == year) & (change["theme"] == theme_id)].set_index("gemeente")
    roles_table = inputs.tables["prevalence_by_role"]
    roles_table = roles_table[(roles_table["jaar"] == year) & (roles_table["theme"] == theme_id)]
    roles = [r for r in ROLES if r in set(roles_table["role"])]
    by_role = roles_table.set_index(["gemeente", "role"])["share"]
    rows = []
    for gemeente in inputs.gemeenten:
        p = prev.loc[gemeente] if gemeente in prev.index else None
        c = change.loc[gemeente] if gemeente in change.index else None
        has = p is not None and int(p["sessions_total"]) > 0
        rows.append(
            {
                "gemeente": gemeente,
                "has_sessions": has,
                "turns": int(p["turns"]) if has else 0,
                "turns_total": int(p["turns_total"]) if has else 0,
                "share": _num(p["share"]) if has else None,
                "sessions": int(p["sessions"]) if has else 0,
                "sessions_total": int(p["sessions_total"]) if has else 0,
                "has_previous": bool(c["has_previous"]) if c is not None else False,
                "share_previous": _num(c["share_previous"]) if c is not None else None,
                "change": _num(c["change"]) if c is not None else None,
                "roles": [_num(by_role.get((gemeente, r))) for r in roles],
                "quotes": _quotes(inputs, year, theme_id, gemeente, params) if has else [],
            }
        )
    present = [r for r in rows if r["has_sessions"]]
    turns = sum(r["turns"] for r in present)
    total = sum(r["turns_total"] for r in present)
    ranked = sorted(present, key=lambda r: (-(r["share"] or 0.0), r["gemeente"]))
    role_turns = roles_table.groupby("role")[["turns", "turns_total"]].sum()
    figure = figures.bars(
        [r["gemeente"] for r in rows],
        [r["share"] for r in rows],
        [r["share_previous"] for r in rows] if has_previous_year else None,
        year,
        prefix=f"thema-{theme_id}",
    )
    return {
        "id": theme_id,
        "label": theme.label,
        "definition": theme.definition,
        "rows": rows,
        "turns": turns,
        "turns_total": total,
        "share": turns / total if total else None,
        "highest": ranked[0] if ranked else None,
        "lowest": ranked[-1] if len(ranked) > 1 else None,
        "roles": [ROLE_LABELS[r] for r in roles],
        "role_totals": [
            _num(role_turns.loc[r, "turns"] / role_turns.loc[r, "turns_total"]) for r in roles
        ],
        "figure": figure,
    }


def _cooccurrence(inputs: ReportInputs, year: int) -> dict[str, Any]:
    co = inputs.tables["cooccurrence"]
    co = co[co["jaar"] == year].groupby(["theme_a", "theme_b"])["turns"].sum()
    ids = inputs.codebook.ids
    labels = [inputs.codebook.theme(t).label for t in ids]
    own = {t: int(co.get((t, t), 0)) for t in ids}
    matrix = [
        [None if a == b or not own[a] else co.get((a, b), 0) / own[a] for b in ids] for a in ids
    ]
    pairs = []
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            both = int(co.get((a, b), 0))
            either = own[a] + own[b] - both
            pairs.append(
                {
                    "a": inputs.codebook.theme(a).label,
                    "b": inputs.codebook.theme(b).label,
                    "turns": both,
                    "jaccard": both / either if either else None,
                }
            )
    pairs.sort(key=lambda r: (-r["turns"], r["a"], r["b"]))
    figure = figures.heatmap(labels, labels, matrix, prefix="samen", empty_label="–")
    return {"pairs": pairs, "figure": figure, "own": [own[t] for t in ids], "labels": labels}


def _topics(inputs: ReportInputs, year: int, per_gemeente: int) -> dict[str, Any]:
    if inputs.topics is None:
        return {"available": False, "gemeenten": []}
    topics = TopicsPerGemeente.validate(inputs.topics)
    topics = topics[(topics["jaar"] == year) & (topics["topic"] >= 0)]  # -1: outliers
    labels = {t.id: t.label for t in inputs.codebook.themes}
    out = []
    for gemeente in inputs.gemeenten:
        rows = topics[topics["gemeente"] == gemeente].sort_values(
            ["size", "topic"], ascending=[False, True]
        )
        items = []
        for row in rows.head(per_gemeente).to_dict("records"):
            overlap = row["overlap_theme"] if isinstance(row["overlap_theme"], str) else None
            items.append(
                {
                    "topic": int(row["topic"]),
                    "words": row["words"],
                    "size": int(row["size"]),
                    "share": _num(row.get("share")),
                    "overlap": labels.get(overlap, overlap) if overlap else None,
                }
            )
        out.append({"gemeente": gemeente, "count": len(rows), "topics": items})
    meta = inputs.topics_meta or {}
    method = {
        "mode": meta.get("mode"),
        "units": meta.get("n_units"),
        "unit": {"sentence": "zinnen", "turn": "beurten"}.get(meta.get("unit"), meta.get("unit")),
        "topics": meta.get("n_topics"),
        "new": meta.get("n_new_topics"),
        "left_out": meta.get("n_units_left_out"),
    }
    return {"available": True, "gemeenten": out, "per_gemeente": per_gemeente, "method": method}


def _method(inputs: ReportInputs) -> dict[str, Any]:
    metrics = inputs.tagging_metrics
    by_session = metrics.get("by_session", {})
    rows = []
    for theme in inputs.codebook.themes:
        m = by_session.get("themes", {}).get(theme.id)
        threshold = metrics.get("thresholds", {}).get(theme.id)
        rows.append({"label": theme.label, "metrics": m, "threshold": threshold})
    files = inputs.ingest_report.get("files", [])
    trained = metrics.get("codebook", {})
    return {
        "nlp": inputs.nlp_meta,
        "codebook": {
            "version": inputs.codebook.version,
            "digest": inputs.codebook.digest,
            "themes": len(inputs.codebook.themes),
            "trained_version": trained.get("version"),
            "trained_matches": trained.get("digest") in (None, inputs.codebook.digest),
        },
        "metrics": {
            "rows": rows,
            "macro_f1": by_session.get("macro_f1"),
            "folds": by_session.get("folds"),
            "annotated_turns": metrics.get("annotations", {}).get("turns"),
        },
        "ingest": {
            "totals": inputs.ingest_report.get("totals", {}),
            "rejected": [f for f in files if f.get("status") == "rejected"],
            "skipped": [f for f in files if f.get("status") == "skipped"],
        },
    }


def build_report(inputs: ReportInputs, params: ReportParams) -> dict[str, Any]:
    """The whole report as plain data: numbers, words and inline SVG figures."""
    year = choose_year(inputs.tables["overview"], params.year)
    years = sorted(int(y) for y in inputs.tables["overview"]["jaar"].unique())
    prev_overview = inputs.tables["overview"]
    has_previous_year = bool(
        (prev_overview.loc[prev_overview["jaar"] == year - 1, "sessions"] > 0).any()
    )
    overview = _overview(inputs, year)
    themes = [_theme(inputs, year, t, has_previous_year, params) for t in inputs.codebook.ids]
    heat = figures.heatmap(
        [t["label"] for t in themes],
        list(inputs.gemeenten),
        [[r["share"] for r in t["rows"]] for t in themes],
        prefix="heatmap",
    )
    return {
        "title": f"Thema's in de Pitstops van {year}",
        "year": year,
        "years": years,
        "previous_year": year - 1,
        "has_previous_year": has_previous_year,
        "gemeenten": list(inputs.gemeenten),
        "overview": overview,
        "heatmap": heat,
        "themes": themes,
        "cooccurrence": _cooccurrence(inputs, year),
        "topics": _topics(inputs, year, params.topics_per_gemeente),
        "method": _method(inputs),
        "quotes_per_gemeente": params.quotes_per_gemeente,
    }


def environment() -> Environment:
    """Jinja with the Dutch number filters; HTML templates autoescape, Markdown does not."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(number=nl_number, percent=nl_percent, points=nl_points)
    return env


def render(report: dict[str, Any], template: str) -> str:
    """One of the templates in pipeline/templates/ filled with the report dict."""
    return environment().get_template(template).render(report=report)


def tables(report: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The report's main tables for spreadsheets, taken from the report dict."""
    overview = pd.DataFrame(
        [
            {
                "gemeente": r["gemeente"],
                "sessies": r["sessions"],
                "deelnemers": r["participants"],
                **{
                    f"deelnemers_{role}": n
                    for role, n in zip(report["overview"]["roles"], r["by_role"])
                },
                "beurten": r["turns"],
                "woorden": r["words"],
            }
            for r in report["overview"]["rows"]
        ]
    )
    prevalence = pd.DataFrame(
        [
            {
                "thema": t["label"],
                "gemeente": r["gemeente"],
                "beurten_met_thema": r["turns"],
                "beurten": r["turns_total"],
                "aandeel": r["share"],
                "sessies_met_thema": r["sessions"],
                "sessies": r["sessions_total"],
                "aandeel_vorig_jaar": r["share_previous"],
                "verschil": r["change"],
            }
            for t in report["themes"]
            for r in t["rows"]
        ]
    )
    quotes_table = pd.DataFrame(
        [
            {
                "thema": t["label"],
                "gemeente": r["gemeente"],
                "bron": q["source"],
                "beurt": q["turn"],
                "spreker": q["speaker"],
                "rol": q["role"],
                "score": q["score"],
                "bewijs": q["cues"],
                "tekst": "".join(p["text"] for p in q["parts"]),
            }
            for t in report["themes"]
            for r in t["rows"]
            for q in r["quotes"]
        ],
        columns=[
            "thema",
            "gemeente",
            "bron",
            "beurt",
            "spreker",
            "rol",
            "score",
            "bewijs",
            "tekst",
        ],
    )
    return {"overzicht": overview, "prevalentie": prevalence, "citaten": quotes_table}


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def load_inputs(p: Paths, year: int | None = None) -> ReportInputs:
    """Read every input of the report; the topics table only when the topics stage has run.
    Of the turns, tags and evidence only what the quotes of the report's year (`choose_year`)
    can use: that year's turns, the decided tags and their sessions' evidence."""
    tables = {name: pd.read_parquet(table_path(p, name)) for name in TABLES}
    chosen = choose_year(tables["overview"], year)
    turns = io.read_table(p.turns, Turns, filters=[(Turns.jaar, "==", chosen)])
    sources = turns[Turns.source].unique()
    return ReportInputs(
        tables=tables,
        turns=turns,
        tags=io.read_table(p.tags, Tags, filters=[(Tags.decided, "==", True)]),
        evidence=Evidence.validate(io.read_sources(p.evidence, sources)),
        codebook=load_codebook(p.codebook),
        gemeenten=tuple(canonical_names(load_gemeenten(p.gemeenten))),
        nlp_meta=_read_json(p.nlp_meta),
        tagging_metrics=_read_json(p.tagging_metrics),
        ingest_report=_read_json(p.ingest_report),
        topics=pd.read_parquet(p.topics_per_gemeente) if p.topics_per_gemeente.exists() else None,
        topics_meta=_read_json(p.topics_meta) or None,
    )


def write_report(report: dict[str, Any], out_dir: Path) -> Path:
    """Write the HTML, the Markdown and the CSV tables; return the HTML path."""
    stem = NAME.format(year=report["year"])
    html = out_dir / f"{stem}.html"
    io.write_text(render(report, "report.html.j2"), html)
    io.write_text(render(report, "report.md.j2"), out_dir / f"{stem}.md")
    for name, table in tables(report).items():
        io.write_csv(table, out_dir / f"{stem}-{name}.csv")
    return html


def main(year: int | None = None) -> None:
    """Run the stage; `year` overrides `report.year` (for the CLI)."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    started = time.perf_counter()
    params = read_params()
    p = paths(params)
    cfg = section(ReportParams, params.get("report"))
    if year is not None:
        cfg = replace(cfg, year=year)
    report = build_report(load_inputs(p, cfg.year), cfg)
    html = write_report(report, p.report)
    log.info(
        "report %d: %d themes, %d gemeenten, topics %s -> %s (%s kB, %.1f s)",
        report["year"],
        len(report["themes"]),
        len(report["gemeenten"]),
        "shown" if report["topics"]["available"] else "not run yet",
        html,
        nl_number(html.stat().st_size / 1024),
        time.perf_counter() - started,
    )


if __name__ == "__main__":
    main()
