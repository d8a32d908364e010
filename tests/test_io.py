import json
import os

import pandas as pd
import pyarrow as pa
import pytest

from pipeline import io


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.json"
    io.write_json({"ok": 1}, target)
    with pytest.raises(RuntimeError), io.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert json.loads(target.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_parquet_and_csv_round_trip(tmp_path):
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "ë"]})
    io.write_parquet(df, tmp_path / "d" / "t.parquet")
    io.write_csv(df, tmp_path / "t.csv")
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "d" / "t.parquet"), df, check_dtype=False
    )
    assert (tmp_path / "t.csv").read_text(encoding="utf-8") == "a,b\n1,x\n2,ë\n"


def test_written_files_get_the_usual_permissions(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    io.write_text("x", tmp_path / "a.txt")
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_parquet_writer_gives_every_table_the_schema_of_the_first(tmp_path):
    """Row groups of one schema, whatever dtypes a table comes with (an empty one as object);
    with no table appended the file reads back as the template."""
    like = pd.DataFrame({"a": pd.Series(dtype="int64"), "b": pd.Series(dtype="str")})
    with io.parquet_writer(tmp_path / "t.parquet", like) as append:
        append(pd.DataFrame({"a": [1], "b": ["x"]}))
        append(pd.DataFrame({"a": pd.Series(dtype="int64"), "b": pd.Series(dtype=object)}))
        append(pd.DataFrame({"b": ["ë", "y"], "a": [2, 3]}))
    expected = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "ë", "y"]})
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "t.parquet"), expected)
    with io.parquet_writer(tmp_path / "empty.parquet", like):
        pass
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "empty.parquet"), like)
    with pytest.raises(RuntimeError), io.parquet_writer(tmp_path / "t.parquet", like) as append:
        append(expected.iloc[:1])
        raise RuntimeError("crash")
    assert len(pd.read_parquet(tmp_path / "t.parquet")) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.parquet", "t.parquet"]


@pytest.mark.parametrize("sizes", [[7], [2, 0, 5, 1, 3, 4], [3, 3, 3], [1] * 10, []])
def test_parquet_row_groups_writes_the_file_write_parquet_writes(tmp_path, sizes):
    """Tables of any size, appended one by one, give the same bytes as the whole table written
    at once in groups of 3 rows; `check` sees each group once, never more than 3 rows."""
    whole = pd.DataFrame({"n": range(sum(sizes)), "s": [f"ë{i}" for i in range(sum(sizes))]})
    like = whole.iloc[:0]
    io.write_parquet(whole, tmp_path / "whole.parquet", row_group_size=3)
    checked: list[int] = []

    def check(frame: pd.DataFrame) -> pd.DataFrame:
        checked.append(len(frame))
        return frame

    with io.parquet_row_groups(tmp_path / "parts.parquet", like, 3, check) as add:
        start = 0
        for size in sizes:
            add(pa.Table.from_pandas(whole.iloc[start : start + size], preserve_index=False))
            start += size
    assert checked == [3] * (len(whole) // 3) + ([len(whole) % 3] if len(whole) % 3 else [])
    read = pd.read_parquet(tmp_path / "parts.parquet")
    pd.testing.assert_frame_equal(read, whole if len(whole) else like)
    if len(whole):
        assert (tmp_path / "parts.parquet").read_bytes() == (
            tmp_path / "whole.parquet"
        ).read_bytes()


def test_parquet_row_groups_writes_nothing_when_the_block_or_a_check_fails(tmp_path):
    like = pd.DataFrame({"n": pd.Series(dtype="int64")})
    table = pa.table({"n": [1, 2, 3, 4]})

    def reject_big(frame: pd.DataFrame) -> pd.DataFrame:
        if frame["n"].max() > 3:
            raise ValueError("n too big")
        return frame

    with (
        pytest.raises(RuntimeError),
        io.parquet_row_groups(tmp_path / "a.parquet", like, 2, reject_big) as add,
    ):
        add(table.slice(0, 2))
        raise RuntimeError("crash")
    with (
        pytest.raises(ValueError, match="too big"),
        io.parquet_row_groups(tmp_path / "b.parquet", like, 2, reject_big) as add,
    ):
        add(table)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("per_read", [1, 2, 3, 10])
def test_source_ranges_read_every_row_once_with_each_source_whole(tmp_path, per_read):
    names = ["b.txt", "a/z.txt", "a-b.txt", "één.txt", "Zaal.txt", "a/b.txt"]  # '-' < '/' < 'Z'
    table = pd.DataFrame(
        {"source": [n for n in names for _ in range(3)], "turn": list(range(3)) * len(names)}
    )
    path = tmp_path / "t.parquet"
    table.to_parquet(path, index=False, row_group_size=4)
    ranges = io.source_ranges(path, per_read)
    reads = [pd.read_parquet(path, filters=r) for r in ranges]
    assert len(ranges) == -(-len(names) // per_read)
    assert [sorted(set(r["source"])) for r in reads] == [
        sorted(names)[i : i + per_read] for i in range(0, len(names), per_read)
    ]
    together = pd.concat(reads, ignore_index=True).sort_values(["source", "turn"])
    pd.testing.assert_frame_equal(
        together.reset_index(drop=True),
        table.sort_values(["source", "turn"]).reset_index(drop=True),
    )


@pytest.mark.parametrize(
    "sources", [["a/b.txt"], ["b.txt", "één.txt"], ["a-b.txt", "Zaal.txt", "b.txt"], ["x.txt"], []]
)
def test_read_sources_equals_parquets_in_filter(tmp_path, sources):
    names = ["Zaal.txt", "a-b.txt", "a/b.txt", "a/z.txt", "b.txt", "één.txt"]
    table = pd.DataFrame(
        {"source": [n for n in names for _ in range(3)], "turn": list(range(3)) * len(names)}
    )
    path = tmp_path / "t.parquet"
    table.to_parquet(path, index=False, row_group_size=4)  # groups straddle sources
    expected = pd.read_parquet(path, filters=[("source", "in", sources or [""])])
    pd.testing.assert_frame_equal(io.read_sources(path, sources), expected)
    assert len(expected) == 3 * len(set(sources) & set(names))


def test_read_sources_decodes_only_the_row_groups_that_can_hold_them(tmp_path, monkeypatch):
    table = pd.DataFrame({"source": [f"{k:02d}.txt" for k in range(20) for _ in range(5)]})
    path = tmp_path / "t.parquet"
    table.to_parquet(path, index=False, row_group_size=10)
    read: list[list[int]] = []
    original = io.pq.ParquetFile.read_row_groups
    monkeypatch.setattr(
        io.pq.ParquetFile,
        "read_row_groups",
        lambda self, groups, *a, **k: read.append(list(groups)) or original(self, groups, *a, **k),
    )
    assert (
        io.read_sources(path, ["03.txt", "17.txt"])["source"].tolist()
        == ["03.txt"] * 5 + ["17.txt"] * 5
    )
    assert read == [[1, 8]]
