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
