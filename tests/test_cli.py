"""The `buurtlens` command: `check` output, exit codes and JSON, no writes; help examples."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from tests.test_ingest import EXPECTED_STATUS, copy_corpus, line_of

CLEAN = ("twello-bewonersavond.txt", "online/teams-overleg.vtt", "dorpsraad.docx")
REJECTED = {
    "onbekende-gemeente.txt": ("gemeente:", "onbekende gemeente"),
    "inleiding-voor-beurt.txt": ("Verslag", "eerste sprekersbeurt"),
}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def corpus(tmp_path) -> Path:
    return copy_corpus(tmp_path / "transcripts")


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file and folder below `root` with its size, modification time and content."""
    return {
        p.relative_to(root).as_posix(): (
            (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes()) if p.is_file() else (0, 0, b"")
        )
        for p in root.rglob("*")
    }


def test_check_lists_problems_with_file_line_and_reason_and_exits_1(runner, corpus):
    result = runner.invoke(cli, ["check", str(corpus)])
    assert result.exit_code == 1, result.output
    out = result.output
    for source, (first_words, reason) in REJECTED.items():
        line = next(row for row in out.splitlines() if row.startswith(source))
        assert "afgewezen" in line
        assert f"regel {line_of(source, first_words)}" in out
        assert reason in out
    assert "notities.rtf" in out  # skipped files are listed with their reason too
    assert "wilp-kopie.txt" in out and "twello-bewonersavond.txt" in out


def test_check_exits_0_on_a_clean_folder(runner, tmp_path):
    clean = copy_corpus(tmp_path / "clean", only=CLEAN)
    result = runner.invoke(cli, ["check", str(clean)])
    assert result.exit_code == 0, result.output
    *problems, totals = result.output.strip().splitlines()
    assert not any("afgewezen" in line for line in problems), result.output
    assert "0 afgewezen" in totals


def test_check_json_has_the_report_structure_with_relative_sources(
    runner, tmp_path, corpus, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # DIR given relative to the working directory
    result = runner.invoke(cli, ["check", "transcripts", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert set(report) == {"files", "totals"}
    assert {"files", "read", "skipped", "rejected", "turns"} <= set(report["totals"])
    for entry in report["files"]:
        assert {"source", "status", "turns", "errors", "warnings"} <= set(entry)
        assert entry["status"] in ("read", "skipped", "rejected")
        for problem in entry["errors"] + entry["warnings"]:
            assert set(problem) == {"line", "message"}
    sources = {entry["source"]: entry["status"] for entry in report["files"]}
    assert sources == EXPECTED_STATUS  # relative to DIR, '/' separators ("online/…")


def test_check_json_source_is_relative_to_the_folder_checked(runner, corpus):
    result = runner.invoke(cli, ["check", str(corpus / "online"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [entry["source"] for entry in report["files"]] == ["teams-overleg.vtt"]


def test_check_writes_nothing(runner, tmp_path, corpus, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    for args in (["check", str(corpus)], ["check", str(corpus), "--json"]):
        runner.invoke(cli, args)
    assert snapshot(tmp_path) == before


def test_check_rejects_a_missing_folder(runner, tmp_path):
    result = runner.invoke(cli, ["check", str(tmp_path / "nergens")])
    assert result.exit_code == 2
    assert "nergens" in result.output


def commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The argv prefix of every command below `group` (nested groups included)."""
    found = []
    for name, command in sorted(group.commands.items()):
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found += commands(command, (*prefix, name))
    return found


@pytest.mark.parametrize("argv", commands(cli), ids=" ".join)
def test_help_of_every_command_has_an_example(runner, argv):
    result = runner.invoke(cli, [*argv, "--help"])
    assert result.exit_code == 0, result.output
    assert any(line.strip().startswith("Example") for line in result.output.splitlines())
