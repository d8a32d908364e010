"""The `buurtlens` command: a thin layer over the stage functions."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from pipeline import ingest as ingest_stage
from pipeline import io
from pipeline import nlp as nlp_stage
from pipeline import tag as tag_stage
from pipeline import train as train_stage
from pipeline.params import IngestParams, paths, read_params, section

STATUS_NL = {"read": "gelezen", "skipped": "overgeslagen", "rejected": "afgewezen"}


def format_report(report: dict) -> str:
    """The ingestion report as lines a researcher can read."""
    lines = []
    for entry in report["files"]:
        problems = entry["errors"] + entry["warnings"]
        if entry["status"] == "read" and not problems:
            continue
        head = f"{entry['source']}: {STATUS_NL[entry['status']]}"
        if entry.get("reason"):
            head += f" ({entry['reason']})"
        lines.append(head)
        for kind, items in (("fout", entry["errors"]), ("waarschuwing", entry["warnings"])):
            for item in items:
                where = f"regel {item['line']}" if item["line"] else "bestand"
                lines.append(f"  {kind}, {where}: {item['message']}")
    t = report["totals"]
    lines.append(
        f"{t['files']} bestanden: {t['read']} gelezen, {t['skipped']} overgeslagen, "
        f"{t['rejected']} afgewezen; {t['turns']} beurten, {t['errors']} fouten, "
        f"{t['warnings']} waarschuwingen"
    )
    return "\n".join(lines)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """buurtlens: qualitative analysis of Dutch Pitstop transcripts.

    Run the whole pipeline with `dvc repro`; these commands run single steps.
    """


@cli.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--json", "as_json", is_flag=True, help="Print the report as JSON (ingest_report.json)."
)
def check(directory: Path, as_json: bool) -> None:
    """Validate every transcript below DIRECTORY without writing anything.

    Exits with status 1 when any file is rejected.

    Example: buurtlens check data/raw/transcripts --json
    """
    params = read_params()
    cfg = section(IngestParams, params.get("ingest"))
    reader = ingest_stage.reader_config(paths(params), cfg)
    report = ingest_stage.check(directory, reader, cfg.ignore)
    click.echo(
        json.dumps(report, ensure_ascii=False, indent=2) if as_json else format_report(report)
    )
    sys.exit(1 if report["totals"]["rejected"] else 0)


@cli.command()
@click.option(
    "--strict/--no-strict",
    default=None,
    help="Fail when any file is rejected (default: ingest.strict in params.yaml).",
)
def ingest(strict: bool | None) -> None:
    """Stage ingest: transcripts -> pseudonymised turns table + ingestion report.

    Example: buurtlens ingest --strict
    """
    ingest_stage.main(strict=strict)


@cli.command()
def nlp() -> None:
    """Stage nlp: turns -> token and sentence tables (spaCy).

    Example: buurtlens nlp
    """
    nlp_stage.main()


@cli.command()
def coded() -> None:
    """Stage coded: the annotated sessions' turns and tokens, which train reads.

    Example: buurtlens coded
    """
    from pipeline import coded as coded_stage

    coded_stage.main()


@cli.command()
def train() -> None:
    """Stage train: fit the theme tagger on data/raw/annotations and evaluate it.

    Example: buurtlens train && dvc metrics show
    """
    train_stage.main()


@cli.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for turns.csv, evidence.csv and ingest_report.json.")
def tag(directory: Path, out_dir: Path) -> None:
    """Tag every transcript below DIRECTORY with the codebook themes.

    Runs ingest (with pseudonymisation), nlp and tag with the repository's codebook and trained
    model and writes OUT/turns.csv (one row per turn: source, turn, speaker, role, themes,
    score_<theme>, text), OUT/evidence.csv and OUT/ingest_report.json. Writes nothing else.
    Exits with status 1 when any file was rejected; the readable files are still tagged.

    Example: buurtlens tag ~/pitstops-2026 --out results/
    """
    turns, evidence, report = tag_stage.tag_folder(directory, read_params())
    io.write_json(report, out_dir / "ingest_report.json")
    io.write_csv(turns, out_dir / "turns.csv")
    io.write_csv(evidence, out_dir / "evidence.csv")
    totals = report["totals"]
    click.echo(f"{len(turns)} turns from {totals['read']} files tagged -> {out_dir / 'turns.csv'}",
               err=True)
    if totals["rejected"]:
        click.echo(format_report(report), err=True)
        sys.exit(1)


@cli.command()
def export() -> None:
    """Stage export: the year's coding as a REFI-QDA project (.qdpx) plus the codebook (.qdc).

    Writes exports/buurtlens-<year>.qdpx for ATLAS.ti, NVivo, MAXQDA or QualCoder (year and
    unit from `export:` in params.yaml).

    Example: buurtlens export && ls exports/
    """
    from pipeline import export as export_stage

    export_stage.main()


@cli.command("import-qdpx")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--only-coded",
    is_flag=True,
    help="Write only turns with a coding (default: every turn of each recognised "
    "source, so codes the coder removed count as 'no theme').",
)
@click.option(
    "--no-validate",
    "no_validate",
    is_flag=True,
    help="Skip the REFI-QDA schema check (for tools that write slightly invalid XML).",
)
def import_qdpx(file: Path, only_coded: bool, no_validate: bool) -> None:
    """Import human coding from a REFI-QDA project (.qdpx) made in a QDA tool.

    Maps every coded text selection back to (source, turn) and writes
    data/raw/annotations/z-qdpx-<name>.csv (used by train and agreement) plus a .json report
    beside it. Codes outside the codebook, sources outside the corpus and selections that fall
    on no turn are reported. Exits with status 1 when the file is not a usable .qdpx.

    Example: buurtlens import-qdpx ~/Downloads/buurtlens-2026-gecorrigeerd.qdpx
    """
    from pipeline.codebook import load_codebook
    from pipeline.qdpx import QdpxError
    from pipeline.qdpx_import import format_report, import_file

    p = paths(read_params())
    try:
        target, result = import_file(
            file,
            p.turns,
            load_codebook(p.codebook),
            p.annotations,
            validate=not no_validate,
            only_coded=only_coded,
        )
    except QdpxError as exc:
        click.echo(f"fout: {exc}", err=True)
        sys.exit(1)
    click.echo(format_report(result.report, target))


@cli.command()
@click.option(
    "--human",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Annotation CSV or folder of them (default: paths.annotations).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write agreement.json and agreement.md here instead of the stage outputs.",
)
def agreement(human: Path | None, out_dir: Path | None) -> None:
    """Agreement between automatic coding (tags) and human coding: kappa, alpha, % per theme.

    Prints a Markdown table for a method section; writes metrics/agreement.json and
    reports/agreement.md (or OUT/agreement.json and OUT/agreement.md).

    Example: buurtlens agreement --human data/raw/annotations/z-qdpx-buurtlens-2026.csv --out tmp/
    """
    from pipeline import agreement as agreement_stage

    click.echo(agreement_stage.main(human=human, out_dir=out_dir)["markdown"], nl=False)



@cli.command()
def aggregate() -> None:
    """Stage aggregate: tags -> prevalence tables per gemeente, year, role and theme pair.

    Writes Parquet and CSV to paths.aggregate (data/processed/aggregate/).

    Example: buurtlens aggregate && dvc plots show
    """
    from pipeline import aggregate as aggregate_stage

    aggregate_stage.main()


@cli.command()
@click.option(
    "--year",
    type=int,
    default=None,
    help="Report this year instead of report.year in params.yaml (default: the latest year).",
)
def report(year: int | None) -> None:
    """Stage report: the yearly theme report as one self-contained Dutch HTML file.

    Writes jaarrapport-<year>.html, .md and .csv tables to paths.report (reports/jaarrapport/).
    Inside the pipeline, prefer `dvc exp run -S report.year=2025`.

    Example: buurtlens report --year 2025
    """
    from pipeline import report as report_stage

    report_stage.main(year=year)


if __name__ == "__main__":
    cli()
