"""Per-source results of the per-transcript stages, kept between runs so unchanged work is reused.

DVC re-runs a stage when any input changes; adding one transcript would redo the whole corpus.
Each stage therefore keeps one entry per source (transcript) in its own folder below
`paths.cache` (a DVC output with `persist: true`, `cache: false`), addressed by a SHA-256 over
everything that decides that source's result: the stage's `salt` (code, params, library
versions) and the source's own inputs. An entry is used only when its key matches, so a run with
the cache gives exactly what a run without it gives. After a run the entries no source used any
more are removed, so the folder holds one entry per source and never grows without bound.

Entries are pickles of the stage's own (pseudonymised) results: they are written and read only
by this project, and the pandas version is part of every salt.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline import io

FORMAT = "1"  # bump when what an entry holds changes shape without a change in the code below
PIPELINE_DIR = Path(__file__).resolve().parent


def digest(*parts: bytes | str) -> str:
    """SHA-256 over the parts, each length-prefixed so no two part lists collide."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def salt(
    stage: str,
    files: Iterable[Path | str],
    settings: dict[str, Any],
    packages: Iterable[str] = (),
) -> str:
    """The part of every key that one run shares: the stage's code and resource files (relative
    names are below `pipeline/`), its settings and the versions of the libraries it relies on."""
    parts: list[bytes | str] = [f"buurtlens-cache {FORMAT} {stage}"]
    parts.append(json.dumps(settings, sort_keys=True, default=str))
    for package in ("pandas", *packages):
        parts.append(f"{package}=={version(package)}")
    for file in files:
        path = PIPELINE_DIR / file if not Path(file).is_absolute() else Path(file)
        parts += [path.name, path.read_bytes()]  # not the full path: a clone elsewhere hits too
    return digest(*parts)


def row_hashes(frame: pd.DataFrame) -> tuple[str, np.ndarray]:
    """The header (columns and dtypes) and one 64-bit hash per row of a table (vectorised)."""
    listed = [c for c in frame.columns if frame[c].dtype == object and
              frame[c].map(lambda v: isinstance(v, (list, tuple, set))).any()]
    if listed:  # e.g. the cue lists of the model inputs: hashed by their text
        frame = frame.assign(**{c: frame[c].map(repr) for c in listed})
    rows = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    header = json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()])
    return header, rows


def frame_digest(frame: pd.DataFrame) -> str:
    """A digest of a table's columns, dtypes and values, row by row in order (vectorised)."""
    header, rows = row_hashes(frame)
    return digest(header, rows.tobytes())


def digested_groups(
    frame: pd.DataFrame, column: str, columns: list[str] | None = None
) -> list[tuple[str, pd.DataFrame, str]]:
    """`contiguous_groups` of `frame`, each with the `frame_digest` of its `columns` (default:
    all), hashing the table once: hashing a thousand small tables cost seconds in pandas' own
    overhead. A row's hash depends on that row only (no object column holds lists here)."""
    header, rows = row_hashes(frame[columns] if columns is not None else frame)
    return [
        (value, part, digest(header, rows[a:b].tobytes()))
        for value, part, (a, b) in _runs(frame, column)
    ]


def contiguous_groups(frame: pd.DataFrame, column: str) -> list[tuple[str, pd.DataFrame]]:
    """(value, rows) for each run of equal values of `column`, in table order (the tables are
    written source by source, so each source is one run)."""
    return [(value, part) for value, part, _ in _runs(frame, column)]


def arrow_groups(frame: pd.DataFrame, column: str) -> list[tuple[str, pa.Table]]:
    """`contiguous_groups` as Arrow tables, each in buffers of its own (a slice would pickle
    with the whole table). Cache entries as Arrow tables unpickle several times faster than
    pandas tables and are written to Parquet without passing through pandas again."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return [
        (value, table.take(np.arange(a, b))) for value, _, (a, b) in _runs(frame, column)
    ]


def _runs(frame: pd.DataFrame, column: str) -> list[tuple[str, pd.DataFrame, tuple[int, int]]]:
    values = frame[column].to_numpy()
    if not len(values):
        return []
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    return [(values[a], frame.iloc[a:b], (a, b)) for a, b in zip(starts, ends, strict=True)]


class SourceCache:
    """Entries `<key[:2]>/<key>.pkl` below `folder`. With `None` as folder the entries live in
    memory for this run only (a run from scratch, same code path)."""

    def __init__(self, folder: Path | None, salt: str = "") -> None:
        self.folder = Path(folder) if folder is not None else None
        self.salt = salt
        self.used: set[str] = set()  # keys asked for or stored in this run
        self.stored: set[str] = set()  # keys computed in this run
        self._memory: dict[str, Any] = {}
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)  # a DVC output, even when empty

    def key(self, *parts: bytes | str) -> str:
        return digest(self.salt, *parts)

    def _path(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / key[:2] / f"{key}.pkl"

    def has(self, key: str) -> bool:
        """Whether an entry for `key` exists (it may still turn out unreadable in `get`)."""
        return key in self._memory if self.folder is None else self._path(key).is_file()

    def get(self, key: str) -> Any | None:
        """The entry stored under `key`, or None (also for an unreadable entry: it is redone)."""
        self.used.add(key)
        return self._memory.get(key) if self.folder is None else self._read(key)

    def _read(self, key: str) -> Any | None:
        try:
            with open(self._path(key), "rb") as fh:
                return pickle.load(fh)
        except Exception:  # noqa: BLE001 - a missing, cut-off or stale entry is simply redone
            return None

    def put(self, key: str, value: Any) -> None:
        self.used.add(key)
        self.stored.add(key)
        if self.folder is None:
            self._memory[key] = value
        else:
            data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            io.write_bytes(data, self._path(key), durable=False)

    def prune(self) -> int:
        """Remove every entry not asked for or stored in this run; returns how many."""
        if self.folder is None:
            return 0
        wanted = {f"{k}.pkl" for k in self.used}
        removed = 0
        for folder, _, names in os.walk(self.folder):
            for name in names:
                if name not in wanted:
                    os.unlink(os.path.join(folder, name))
                    removed += 1
        for folder, subfolders, names in os.walk(self.folder, topdown=False):
            if folder != str(self.folder) and not subfolders and not names:
                os.rmdir(folder)
        return removed

    def summary(self) -> str:
        return f"{len(self.used - self.stored)} reused, {len(self.stored)} computed"
