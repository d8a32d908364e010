"""Agreement between automatic and human coding, checked against values computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.agreement import (
    agreement,
    cohen_kappa,
    krippendorff_alpha,
    markdown,
    theme_agreement,
)
from pipeline.annotations import read_annotations

# 10 turns: both code 4, only auto 1, only human 1, neither 4.
AUTO = np.array([1, 1, 0, 0, 1, 0, 0, 0, 1, 1])
HUMAN = np.array([1, 0, 0, 0, 1, 0, 1, 0, 1, 1])


def test_cohen_kappa_by_hand():
    # p_o = 8/10; p_e = .5*.5 + .5*.5 = .5; kappa = (.8 - .5) / (1 - .5) = .6
    assert cohen_kappa(AUTO, HUMAN) == pytest.approx(0.6)


def test_krippendorff_alpha_by_hand():
    # 20 pairable values, n_0 = n_1 = 10; disagreements o_01 = o_10 = 2;
    # alpha = 1 - (n - 1) * (o_01 + o_10) / (2 * n_0 * n_1) = 1 - 19 * 4 / 200 = 0.62
    assert krippendorff_alpha(AUTO, HUMAN) == pytest.approx(0.62)


def test_skewed_table_by_hand():
    auto = np.array([1, 0, 0, 0, 0, 0, 0, 0])
    human = np.array([1, 1, 0, 0, 0, 0, 0, 0])
    # p_o = 7/8; p_e = 1/8*2/8 + 7/8*6/8 = 44/64; kappa = (56/64 - 44/64) / (20/64) = 0.6
    assert cohen_kappa(auto, human) == pytest.approx(0.6)
    # n = 16, n_1 = 3, n_0 = 13, o_01 + o_10 = 2: alpha = 1 - 15 * 2 / (2 * 3 * 13) = 8/13
    assert krippendorff_alpha(auto, human) == pytest.approx(8 / 13)


def test_one_value_only_leaves_kappa_and_alpha_undefined():
    zeros = np.zeros(5, dtype=int)
    result = theme_agreement(zeros, zeros)
    assert result["percent_agreement"] == 100.0
    assert result["cohen_kappa"] is None and result["krippendorff_alpha"] is None
    assert theme_agreement(np.array([], dtype=int), np.array([], dtype=int))["n"] == 0


def tags_table(decided: dict[int, list[str]], n: int, themes: tuple[str, ...]) -> pd.DataFrame:
    rows = [
        ("s.txt", t, theme, 0.5, theme in decided.get(t, []), 0)
        for t in range(1, n + 1)
        for theme in themes
    ]
    return pd.DataFrame(rows, columns=["source", "turn", "theme", "score", "decided", "rule_hits"])


def test_agreement_per_theme_on_literal_tables():
    themes = ("wij-zij", "dubbelrol")
    auto = {t + 1: ["wij-zij"] for t in np.flatnonzero(AUTO)}
    tags = tags_table(auto, 10, themes)
    human = pd.DataFrame(
        {
            "source": ["s.txt"] * 11,
            "turn": list(range(1, 11)) + [99],
            "themes": ["wij-zij" if h else "" for h in HUMAN] + ["wij-zij"],
            "coder": ["A"] * 11,
        }
    )
    human.loc[2, "themes"] = "nieuw-thema"
    result = agreement(tags, human, themes)
    wz = result["themes"]["wij-zij"]
    assert (wz["n"], wz["auto"], wz["human"], wz["both"]) == (10, 5, 5, 4)
    assert wz["percent_agreement"] == 80.0
    assert wz["cohen_kappa"] == pytest.approx(0.6)
    assert wz["krippendorff_alpha"] == pytest.approx(0.62)
    assert result["themes"]["dubbelrol"]["cohen_kappa"] is None
    assert result["overall"]["n"] == 20
    assert result["human_turns_not_tagged"] == 1
    assert result["unknown_themes"] == {"nieuw-thema": 1}
    table = markdown(result, {"wij-zij": "Wij-zij"}, "test.csv")
    assert "| Wij-zij | 10 | 5 | 5 | 4 | 80,0 | 0,60 | 0,62 |" in table
    assert "| dubbelrol | 10 | 0 | 0 | 0 | 100,0 | – | – |" in table


def test_human_coding_from_a_file_or_a_folder(tmp_path):
    frame = pd.DataFrame({"source": ["s.txt", "s.txt"], "turn": [1, 1], "themes": ["a", "b"]})
    frame.to_csv(tmp_path / "mens.csv", index=False)
    from_file, overridden = read_annotations(tmp_path / "mens.csv")
    assert from_file["themes"].tolist() == ["b"] and overridden == 1
    assert from_file["coder"].tolist() == ["mens"]
    from_folder, _ = read_annotations(tmp_path)
    assert from_folder.equals(from_file)


def test_trained_on_turns_count_with_their_out_of_fold_decision():
    from pipeline.agreement import out_of_fold_tags
    from pipeline.params import TagParams

    tags = pd.DataFrame(
        {
            "source": ["a.txt", "a.txt", "b.txt"],
            "turn": [1, 2, 1],
            "theme": "wij-zij",
            "score": [0.9, 0.1, 0.8],
            "decided": [True, False, True],
            "rule_hits": 0,
        }
    )
    oof = pd.DataFrame({"source": ["a.txt", "a.txt"], "turn": [1, 2], "score_wij-zij": [0.2, 0.7]})
    honest = out_of_fold_tags(tags, oof, TagParams(thresholds={"wij-zij": 0.5}))
    assert honest["decided"].tolist() == [False, True, True]  # b.txt: not trained on, kept
    assert honest["score"].tolist() == [0.2, 0.7, 0.8]
    assert tags["decided"].tolist() == [True, False, True]  # input untouched
