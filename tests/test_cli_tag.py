"""The `buurtlens tag DIR --out OUTDIR` contract that other tools depend on."""

import shutil
import subprocess

import pandas as pd
import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.codebook import load_codebook
from pipeline.params import REPO_ROOT
from tests.conftest import TEST_DATA

CORPUS = TEST_DATA / "corpus"


def _tree(root):
    return {p.relative_to(root): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def _repo_state() -> str:
    listed = subprocess.run(
        ["git", "status", "--porcelain", "--ignored", "--untracked-files=all"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return "\n".join(sorted(line for line in listed.splitlines() if "__pycache__" not in line))


@pytest.fixture(scope="module")
def tagged(tmp_path_factory):
    work = tmp_path_factory.mktemp("tag")
    folder = work / "in"
    shutil.copytree(CORPUS, folder, ignore=shutil.ignore_patterns("personal_data.txt"))
    out = work / "uit"
    before_repo, before_in = _repo_state(), _tree(folder)
    result = CliRunner().invoke(cli, ["tag", str(folder), "--out", str(out)])
    return result, folder, out, work, (before_repo, before_in)


def test_exit_status_is_1_when_a_file_was_rejected(tagged):
    result, *_ = tagged
    assert result.exit_code == 1, result.output
    assert "onbekende-gemeente.txt" in result.output


def test_turns_csv_has_the_contract_columns(tagged):
    _, folder, out, _, _ = tagged
    turns = pd.read_csv(out / "turns.csv", keep_default_na=False)
    ids = load_codebook(REPO_ROOT / "codebook.yaml").ids
    for column in (
        "source",
        "turn",
        "speaker",
        "role",
        "themes",
        "text",
        *(f"score_{t}" for t in ids),
    ):
        assert column in turns.columns
    assert "online/teams-overleg.vtt" in set(turns["source"])  # relative, '/' separators
    assert not any(s.startswith(("/", str(folder))) for s in turns["source"])
    for source, group in turns.groupby("source"):
        assert group["turn"].tolist() == list(range(1, len(group) + 1)), source
    for value in turns["themes"]:
        parts = value.split(";") if value else []
        assert parts == sorted(parts) and set(parts) <= set(ids)
    assert turns["speaker"].str.fullmatch(r"\[PERSOON-\d+\]").all()
    for theme in ids:
        assert turns[f"score_{theme}"].between(0, 1).all()


def test_readable_files_are_tagged_and_the_report_lists_every_file(tagged):
    _, folder, out, _, _ = tagged
    turns = pd.read_csv(out / "turns.csv", keep_default_na=False)
    report = pd.read_json(out / "ingest_report.json", typ="series")
    files = {f["source"]: f for f in report["files"]}
    assert files["onbekende-gemeente.txt"]["status"] == "rejected"
    read = {s for s, f in files.items() if f["status"] == "read"}
    assert read == set(turns["source"])
    assert sum(f["turns"] for f in files.values()) == len(turns)


def test_nothing_is_written_outside_the_output_folder(tagged):
    _, folder, out, work, (before_repo, before_in) = tagged
    assert {p.name for p in out.iterdir()} == {"turns.csv", "evidence.csv", "ingest_report.json"}
    assert sorted(p.name for p in work.iterdir()) == ["in", "uit"]
    assert _tree(folder) == before_in
    assert _repo_state() == before_repo
