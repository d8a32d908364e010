"""Shared fixtures: fixture corpora, the fallback spaCy pipeline, one de-identifier per run."""

from __future__ import annotations

import signal
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


def _copy_repository(target: Path) -> None:
    """The working tree (tracked and new files, not ignored ones) copied to `target`."""
    import shutil
    import subprocess

    listed = (
        subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=REPO_ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = REPO_ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


@pytest.fixture(scope="session")
def pipeline_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project root in which `dvc repro report` has run: $BUURTLENS_ROOT when set (outputs you
    produced already), else a temporary copy of this repository where the fixture runs it."""
    import os
    import subprocess
    import sys

    from pipeline.data import ROOT_VARIABLE

    if os.environ.get(ROOT_VARIABLE):
        return Path(os.environ[ROOT_VARIABLE])
    root = tmp_path_factory.mktemp("repro") / "buurtlens"
    _copy_repository(root)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "repro", "report"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        log = (done.stdout + done.stderr)[-5000:]
        pytest.fail(f"`dvc repro report` failed in {root}:\n{log}")
    return root
