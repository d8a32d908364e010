"""End to end: `dvc repro` in a temporary copy of the repository, then outputs, totals, a clean
`dvc status`, a second repro that does no work, and no speaker name in anything written."""

from __future__ import annotations

import json
import pickle
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
import yaml

from pipeline import ingest, pseudonymise
from pipeline.params import IngestParams, Paths, paths, read_params, section
from pipeline.readers import discover, read_transcript
from pipeline.tag import TrainedModel
from tests.conftest import diagnostics, dvc

pytestmark = pytest.mark.slow

TEMPLATE_RE = re.compile(r"\$\{\s*([\w.]+)\s*\}")
# Folders whose every file the leak check reads (data/raw is the only place names may be).
WRITTEN = ("data/processed", "data/cache", "metrics", "models")

# Names from the bundled corpus that the pipeline is known to leak (reported to the lead; both
# are third persons deduce misses). The leak test skips them and `test_known_leaks_are_fixed`
# (strict xfail) starts failing once they are pseudonymised: then delete the entry.


@pytest.fixture(scope="module")
def copy(reproduced) -> Path:
    return reproduced[0]


@pytest.fixture(scope="module")
def repro(reproduced) -> subprocess.CompletedProcess[str]:
    print(diagnostics(reproduced[1]))  # shown by pytest when a test using this fixture fails
    return reproduced[1]


@pytest.fixture(scope="module")
def succeeded(repro) -> subprocess.CompletedProcess[str]:
    if repro.returncode != 0:
        pytest.fail(f"dvc repro failed in the copy:\n{diagnostics(repro)}")
    return repro


@pytest.fixture(scope="module")
def copy_params(copy) -> dict[str, Any]:
    return read_params(copy / "params.yaml")


@pytest.fixture(scope="module")
def copy_paths(copy, copy_params) -> Paths:
    return paths(copy_params, root=copy)


def stages(copy: Path) -> dict[str, dict[str, Any]]:
    return yaml.safe_load((copy / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def stage_outputs(copy: Path, params: dict[str, Any]) -> dict[str, list[str]]:
    """Per stage, its outs and metrics paths from dvc.yaml with `${...}` filled in."""

    def fill(path: str) -> str:
        def value(m: re.Match[str]) -> str:
            node: Any = params
            for part in m.group(1).split("."):
                node = node[part]
            return str(node)

        return TEMPLATE_RE.sub(value, path)

    result = {}
    for name, spec in stages(copy).items():
        items = [*(spec.get("outs") or []), *(spec.get("metrics") or [])]
        result[name] = [fill(i if isinstance(i, str) else next(iter(i))) for i in items]
    return result


def test_dvc_repro_succeeds(repro):
    assert repro.returncode == 0, diagnostics(repro)


def test_every_stage_output_exists(succeeded, copy, copy_params):
    outputs = stage_outputs(copy, copy_params)
    missing = {s: [o for o in outs if not (copy / o).exists()] for s, outs in outputs.items()}
    assert not any(missing.values()), f"stage outputs missing: {missing}"
    lock = yaml.safe_load((copy / "dvc.lock").read_text(encoding="utf-8"))["stages"]
    assert set(lock) == set(outputs), "dvc.lock does not record every stage"
    for name, spec in lock.items():
        for out in spec.get("outs", []):
            assert (copy / out["path"]).exists(), f"{name}: {out['path']} in dvc.lock missing"


def test_ingest_report_totals_match_the_turns_table(succeeded, copy_paths):
    report = json.loads(copy_paths.ingest_report.read_text(encoding="utf-8"))
    turns = pd.read_parquet(copy_paths.turns)
    totals = report["totals"]
    assert totals["turns"] == len(turns) == sum(f["turns"] for f in report["files"])
    assert totals["files"] == totals["read"] + totals["skipped"] + totals["rejected"]
    per_source = turns.groupby("source").size().to_dict()
    assert per_source == {f["source"]: f["turns"] for f in report["files"] if f["status"] == "read"}
    assert totals["rejected"] == 0, "a bundled transcript is rejected"


def test_dvc_status_is_clean_and_second_repro_does_nothing(succeeded, copy):
    status = dvc(copy, "status", "--json")
    assert status.returncode == 0, diagnostics(status)
    assert json.loads(status.stdout or "{}") == {}, diagnostics(status)
    again = dvc(copy, "repro")
    assert again.returncode == 0, diagnostics(again)
    output = again.stdout + again.stderr
    assert "Running stage" not in output, diagnostics(again)
    for name in stages(copy):
        assert f"Stage '{name}' didn't change, skipping" in output, diagnostics(again)


NEW_TRANSCRIPT = """---
gemeente: Voorst
datum: 2026-10-01
sessie: Pitstop nagekomen
---
Gespreksleider: Welkom bij deze extra Pitstop.
Bewoner 1: Die van de gemeente beslissen alles al voordat wij er iets van horen.
Bewoner 2: Ik heb alleen de sleutel van het buurthuis geregeld, de rest deden ze zelf.
"""


def test_adding_a_transcript_redoes_only_that_transcript(succeeded, copy, copy_paths, tmp_path):
    """The per-transcript stages reuse every unchanged transcript's cached result; train does not
    run (nobody annotated the new transcript), and the old transcripts' tags stay."""
    work = shutil.copytree(copy, tmp_path / "copy", symlinks=True)
    (work / "data/raw/transcripts/voorst/nagekomen.txt").write_text(NEW_TRANSCRIPT, "utf-8")
    result = dvc(work, "repro", "tag")
    assert result.returncode == 0, diagnostics(result)
    log = result.stdout + result.stderr
    before = pd.read_parquet(copy_paths.tags)
    after = pd.read_parquet(work / copy_paths.tags.relative_to(copy))
    sessions = before["source"].nunique()
    for stage in ("ingest", "nlp", "tag"):
        counts = re.search(rf"buurtlens\.{stage}: cache: (\d+) reused, (\d+) computed", log)
        assert counts, diagnostics(result)
        assert int(counts[1]) >= sessions and int(counts[2]) == 1, diagnostics(result)
    # only the new file is read again for the corpus's names and words
    read = re.search(r"buurtlens\.ingest: read cache: (\d+) reused, (\d+) computed", log)
    assert read and int(read[1]) >= sessions and int(read[2]) == 1, diagnostics(result)
    # the coded sessions' tables come out byte-identical, so DVC does not even start train
    assert "Stage 'train' didn't change, skipping" in log, diagnostics(result)
    new = after["source"] == "voorst/nagekomen.txt"
    assert new.sum() == 3 * before["theme"].nunique()  # three turns, each theme
    pd.testing.assert_frame_equal(after[~new].reset_index(drop=True), before)


# --- leaks --------------------------------------------------------------------------------------


def speaker_names(copy_paths: Paths, params: dict[str, Any]) -> set[str]:
    """Speaker labels and `deelnemers` names of every transcript in the copy.

    Labels with a digit (`Spreker 2`, `R1`, `Deelnemer 3`) are already codes that FORMAT.md
    allows instead of names, and facilitators say them aloud ("R2 had gelijk"): not personal
    data, left out.
    """
    cfg = section(IngestParams, params.get("ingest"))
    reader = ingest.reader_config(copy_paths, cfg)
    names: set[str] = set()
    for found in discover(copy_paths.transcripts, cfg.ignore):
        if found.status != "transcript":
            continue
        parsed = read_transcript(found.path, reader)
        names.update(t.speaker for t in parsed.turns)
        if parsed.meta is not None:
            names.update(parsed.meta.deelnemers)
    return {n for n in names if n.strip() and not re.search(r"\d", n)}


def frame_text(frame: pd.DataFrame) -> str:
    cells = [
        str(v)
        for col in frame.columns
        if frame[col].dtype == object or pd.api.types.is_string_dtype(frame[col])
        for v in frame[col].dropna().tolist()
    ]
    # joined with spaces, so that a term split over token rows ("Albert" "Heijn") reads whole
    return " ".join([*map(str, frame.columns), *cells])


def object_text(value: Any) -> str:
    """The strings a cached or saved object holds: table cells, a model's feature names (its
    float arrays are bytes that can spell a short name by chance), dict keys and values."""
    if isinstance(value, pd.DataFrame):
        return frame_text(value)
    if isinstance(value, pa.Table):  # str() of an Arrow table shows only its first rows
        return frame_text(value.to_pandas())
    if isinstance(value, TrainedModel):
        return " ".join(map(str, value.tagger.features_.get_feature_names_out()))
    if isinstance(value, dict):
        return " ".join(object_text(v) for item in value.items() for v in item)
    if isinstance(value, (list, tuple)):
        return " ".join(map(object_text, value))
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return object_text(vars(value))
    return str(value)


def written_text(path: Path) -> str:
    """Every string a written file holds: parquet tables, models and cache entries read as the
    objects they are, any other file's bytes as UTF-8."""
    if path.suffix == ".parquet":
        return frame_text(pd.read_parquet(path))
    if path.suffix == ".pkl":
        return object_text(pickle.loads(path.read_bytes()))
    return path.read_bytes().decode("utf-8", errors="ignore")


@pytest.fixture(scope="module")
def leaks(repro, copy, copy_paths, copy_params) -> dict[str, list[str]]:
    """Name -> files under data/processed, metrics, models that contain it as a whole word.

    Runs on whatever `dvc repro` wrote, even when a later stage failed. Exception: names that
    are also allow-listed terms or part of one (a place such as `Horst`, an organisation such as
    `Albert Heijn`) are not personal data there; every allow-listed term is masked before the
    search, so a name still counts wherever it stands on its own ("Albert zei ...").
    """
    allowlist = pseudonymise.load_allowlist(copy_paths.allowlist, copy_paths.gemeenten)
    names = speaker_names(copy_paths, copy_params)
    assert len(names) > 20, "expected the bundled corpus's speakers"
    files = [p for folder in WRITTEN for p in sorted((copy / folder).rglob("*")) if p.is_file()]
    assert any(p.name == copy_paths.turns.name for p in files), "ingest wrote no turns table"
    found: dict[str, list[str]] = {}
    for path in files:
        text = allowlist.pattern.sub(" ", written_text(path))
        words = set(re.findall(r"\w+", text))
        for name in names:
            if set(name.split()) <= words and re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text):
                found.setdefault(name, []).append(path.relative_to(copy).as_posix())
    return found


def test_no_speaker_name_in_any_written_file(leaks):
    assert not leaks, f"speaker/deelnemers names in written files: {leaks}"


def test_leak_check_sees_a_leak(tmp_path, copy_paths, copy_params):
    """The check itself: a name planted in a written-looking file is found."""
    name = sorted(speaker_names(copy_paths, copy_params))[0]
    planted = tmp_path / "planted.parquet"
    pd.DataFrame({"text": [f"Gisteren zei {name} dat het goed ging."]}).to_parquet(planted)
    assert re.search(rf"(?<!\w){re.escape(name)}(?!\w)", written_text(planted))
