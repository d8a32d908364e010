"""Shared fixtures: fixture corpora, the fallback spaCy pipeline, one de-identifier per run."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from pipeline.params import REPO_ROOT, paths, read_params

TEST_DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def repo_paths():
    return paths(read_params())


@pytest.fixture(scope="session")
def codebook(repo_paths):
    """The repository's codebook (a test module may define its own)."""
    from pipeline.codebook import load_codebook

    return load_codebook(repo_paths.codebook)


@pytest.fixture(scope="session")
def fallback_nlp():
    """The blank Dutch pipeline the stage falls back to (the model name does not exist)."""
    from pipeline.nlp import load_pipeline

    return load_pipeline("buurtlens_no_such_model")


@pytest.fixture(scope="session")
def deidentifier():
    """deduce, loaded once per test run (its lookup tables were built by `make setup`)."""
    from pipeline.pseudonymise import load_deidentifier

    return load_deidentifier()


@pytest.fixture(scope="session")
def allowlist(repo_paths):
    from pipeline.pseudonymise import load_allowlist

    return load_allowlist(repo_paths.allowlist, repo_paths.gemeenten)


def make_turns(texts: list[str], source: str = "a/sessie.txt") -> pd.DataFrame:
    """A literal `Turns` table for unit tests."""
    n = len(texts)
    return pd.DataFrame(
        {
            "source": [source] * n,
            "turn": list(range(1, n + 1)),
            "line": list(range(1, n + 1)),
            "gemeente": ["Voorst"] * n,
            "datum": ["2025-03-01"] * n,
            "jaar": [2025] * n,
            "sessie": ["Pitstop"] * n,
            "speaker": [f"[PERSOON-{i % 2 + 1}]" for i in range(n)],
            "role": ["bewoner"] * n,
            "timestamp": [None] * n,
            "text": texts,
        }
    )


__all__ = ["REPO_ROOT", "TEST_DATA", "make_turns", "no_hang"]


@contextmanager
def no_hang(seconds: int = 10) -> Iterator[None]:
    """Fail a block that runs for more than `seconds`: FORMAT.md wants a verdict on pathological
    files, never a hang. A guard against catastrophic regexes, not a speed target."""

    def _timeout(*_: object) -> None:
        raise TimeoutError(f"no verdict after {seconds} s: pathological input must not hang")

    previous = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


GIT = ["git", "-c", "user.name=buurtlens-test", "-c", "user.email=test@example.invalid"]


def copy_repository(dest: Path) -> Path:
    """The files git would commit (tracked plus untracked, not ignored), as a fresh git repo."""
    import shutil
    import subprocess

    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for rel in filter(None, listed):
        source = REPO_ROOT / rel
        if source.is_file():  # a tracked file may have been deleted in the working tree
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / rel)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "copy"]):
        subprocess.run([*GIT, *args], cwd=dest, check=True, capture_output=True)
    return dest


def dvc(copy: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`dvc <args>` in `copy` with the venv's bin first on PATH (stages run `python -m ...`)."""
    import os
    import subprocess
    import sys

    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
    }
    return subprocess.run(
        [str(bin_dir / "dvc"), *args],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,  # a guard against a hung stage, not a speed target
    )


def diagnostics(result: subprocess.CompletedProcess[str]) -> str:
    return (
        f"$ {' '.join(result.args)}\nexit {result.returncode}\n"
        f"--- stdout ---\n{result.stdout[-8000:]}\n--- stderr ---\n{result.stderr[-8000:]}"
    )


@pytest.fixture(scope="session")
def reproduced(tmp_path_factory: pytest.TempPathFactory):
    """A temporary copy of this repository in which a full `dvc repro` ran, once per test run
    (the end-to-end test checks it; the notebooks and the browser test read its outputs)."""
    root = copy_repository(tmp_path_factory.mktemp("repro") / "buurtlens")
    return root, dvc(root, "repro")


@pytest.fixture(scope="session")
def pipeline_root(reproduced) -> Path:
    """A project root with the pipeline's outputs: $BUURTLENS_ROOT when set (outputs you
    produced already), else the reproduced temporary copy."""
    import os

    from pipeline.data import ROOT_VARIABLE

    if os.environ.get(ROOT_VARIABLE):
        return Path(os.environ[ROOT_VARIABLE])
    root, result = reproduced
    if result.returncode:
        pytest.fail(f"`dvc repro` failed in {root}:\n{diagnostics(result)}")
    return root
