import json
import os

import pandas as pd
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
        io.pq.ParquetFile, "read_row_groups",
        lambda self, groups, *a, **k: read.append(list(groups)) or original(self, groups, *a, **k),
    )
    assert io.read_sources(path, ["03.txt", "17.txt"])["source"].tolist() == ["03.txt"] * 5 + [
        "17.txt"
    ] * 5
    assert read == [[1, 8]]
