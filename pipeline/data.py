"""Loaders for analysts and notebooks: the pipeline's tables by name, read from the paths in
`params.yaml`.

The project root is this repository, or the folder named by the environment variable
`BUURTLENS_ROOT` (a copy in which `dvc repro` ran, e.g. in the tests); every loader also takes
`root=` explicitly.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from pipeline import aggregate, quotes
from pipeline.codebook import Codebook, load_codebook
from pipeline.params import REPO_ROOT, Paths, paths, read_params
from pipeline.schemas import Evidence, Tags, Turns

ROOT_VARIABLE = "BUURTLENS_ROOT"


def project_root(root: Path | str | None = None) -> Path:
    """`root`, else $BUURTLENS_ROOT, else the repository this package lives in."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get(ROOT_VARIABLE) or REPO_ROOT)


def project_paths(root: Path | str | None = None) -> Paths:
    """The `paths` section of the project's `params.yaml`, resolved against its root."""
    base = project_root(root)
    return paths(read_params(base / "params.yaml"), base)


def _read(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist yet: run `dvc repro` first")
    return pd.read_parquet(path)


def load_turns(root: Path | str | None = None) -> pd.DataFrame:
    """The pseudonymised turns (one row per speaker turn)."""
    return Turns.validate(_read(project_paths(root).turns))


def load_tags(root: Path | str | None = None) -> pd.DataFrame:
    """Score and decision per turn and theme."""
    return Tags.validate(_read(project_paths(root).tags))


def load_evidence(root: Path | str | None = None) -> pd.DataFrame:
    """The words and phrases behind each decided theme, with offsets into the turn text."""
    return Evidence.validate(_read(project_paths(root).evidence))


def load_codebook_file(root: Path | str | None = None) -> Codebook:
    """The validated codebook (theme ids, labels, definitions)."""
    return load_codebook(project_paths(root).codebook)


def load_table(name: str, root: Path | str | None = None) -> pd.DataFrame:
    """An aggregate table by name: one of `pipeline.aggregate.TABLES`."""
    path = aggregate.table_path(project_paths(root), name)  # KeyError names the known tables
    return aggregate.TABLES[name].validate(_read(path))


def load_overview(root: Path | str | None = None) -> pd.DataFrame:
    """Sessions, turns, words and participants per gemeente and year."""
    return load_table("overview", root)


def load_prevalence(root: Path | str | None = None) -> pd.DataFrame:
    """Turns and sessions with each theme per gemeente and year, and the share of turns."""
    return load_table("prevalence", root)


def load_prevalence_by_role(root: Path | str | None = None) -> pd.DataFrame:
    """Theme prevalence per gemeente, year and role."""
    return load_table("prevalence_by_role", root)


def load_cooccurrence(root: Path | str | None = None) -> pd.DataFrame:
    """Turns carrying both themes of a pair, per gemeente and year."""
    return load_table("cooccurrence", root)


def load_prevalence_change(root: Path | str | None = None) -> pd.DataFrame:
    """Each theme's share against the previous year."""
    return load_table("prevalence_change", root)


def load_quotes(
    gemeente: str | None = None,
    jaar: int | None = None,
    theme: str | None = None,
    root: Path | str | None = None,
) -> pd.DataFrame:
    """The turns behind a prevalence number, strongest evidence first (see pipeline.quotes)."""
    return quotes.quote_candidates(
        load_turns(root), load_tags(root), load_evidence(root), gemeente, jaar, theme
    )
