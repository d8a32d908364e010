import pandas as pd

from pipeline.annotations import align, read_annotations
from tests.conftest import make_turns

THEMES = ("wij-zij", "dubbelrol", "mogelijk-maker")


def write(path, rows):
    pd.DataFrame(rows, columns=["source", "turn", "themes", "coder"]).to_csv(path, index=False)


def test_later_file_wins_and_is_counted(tmp_path):
    write(tmp_path / "a.csv", [("a/sessie.txt", 1, "wij-zij", "x"), ("a/sessie.txt", 2, "", "x")])
    write(tmp_path / "b-correcties.csv", [("a/sessie.txt", 1, "dubbelrol", "y")])
    annotations, overridden = read_annotations(tmp_path)
    assert overridden == 1
    assert annotations.set_index("turn").loc[1, "themes"] == "dubbelrol"
    assert annotations.set_index("turn").loc[2, "themes"] == ""


def test_align_reports_what_it_cannot_use():
    turns = make_turns(["een", "twee", "drie"])
    annotations = pd.DataFrame(
        {
            "source": ["a/sessie.txt", "a/sessie.txt", "a/weg.txt"],
            "turn": [1, 3, 1],
            "themes": ["mogelijk-maker; wij-zij", "eenzaamheid", "wij-zij"],
            "coder": "x",
        }
    )
    coding = align(annotations, turns, THEMES)
    assert coding.labels[["turn", *THEMES]].values.tolist() == [[1, 1, 0, 1], [3, 0, 0, 0]]
    assert coding.unmatched == [{"source": "a/weg.txt", "turn": 1}]
    assert coding.unknown_themes == {"eenzaamheid": 1}


def test_empty_folder_gives_empty_annotations(tmp_path):
    annotations, overridden = read_annotations(tmp_path)
    assert annotations.empty and overridden == 0
