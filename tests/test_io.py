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
