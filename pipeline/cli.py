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


if __name__ == "__main__":
    cli()
