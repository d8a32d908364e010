"""Atomic writes: a crashed run never leaves a half-written file that a later stage would accept."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


@contextmanager
def atomic_path(path: Path, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it into place only if the block succeeds.

    `durable=False` skips the fsync: for files that are cheap to redo (cache entries), where a
    thousand fsyncs would cost more than the work they keep."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if durable:
            with open(tmp_path, "rb+") as fh:
                os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes files private (0600)
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_with(path: Path, write: Callable[[Path], Any], durable: bool = True) -> None:
    with atomic_path(path, durable) as tmp:
        write(tmp)


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    _write_with(path, lambda tmp: df.to_parquet(tmp, index=False))


@contextmanager
def parquet_writer(
    path: Path, like: pd.DataFrame
) -> Iterator[Callable[[pd.DataFrame | pa.Table], None]]:
    """Write a Parquet file table by table, one row group each, and move it into place only if
    the block succeeds: yields a function that appends a table (pandas or Arrow), cast to the
    columns and dtypes of `like` (an empty table will do), so every row group has one schema and
    a file with no table appended reads back as `like` does."""
    schema = pa.Schema.from_pandas(like, preserve_index=False)
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema) as writer:

        def append(frame: pd.DataFrame | pa.Table) -> None:
            if isinstance(frame, pa.Table):
                table = frame.select(schema.names).cast(schema)
            else:
                table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
            writer.write_table(table, row_group_size=max(len(table), 1))

        yield append


def write_csv(df: pd.DataFrame, path: Path) -> None:
    _write_with(
        path, lambda tmp: df.to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n")
    )


def write_bytes(data: bytes, path: Path, durable: bool = True) -> None:
    _write_with(path, lambda tmp: tmp.write_bytes(data), durable)


def write_text(text: str, path: Path) -> None:
    _write_with(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(obj: Any, path: Path) -> None:
    write_text(json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=False) + "\n", path)
