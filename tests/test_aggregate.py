"""Stage aggregate on literal tables: counts add up, first year, empty gemeente, symmetry."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from pipeline import aggregate
from pipeline.aggregate import (
    cooccurrence,
    overview,
    participants,
    prevalence,
    prevalence_by_role,
    prevalence_change,
)

THEMES = ("wij-zij", "dubbelrol", "mogelijk-maker")
GEMEENTEN = ("Utrecht", "Voorst", "Wageningen")  # Wageningen has no sessions at all


def _turns() -> pd.DataFrame:
    rows = [
        # source, turn, gemeente, jaar, speaker, role, text
        ("u/2025/a.txt", 1, "Utrecht", 2025, "P1", "bewoner", "Zij daar luisteren nooit naar ons."),
        ("u/2025/a.txt", 2, "Utrecht", 2025, "P2", "sociaal-werker", "Ik heb twee petten op."),
        ("u/2025/a.txt", 3, "Utrecht", 2025, "P1", "bewoner", "Ja."),
        ("u/2025/b.txt", 1, "Utrecht", 2025, "P1", "bewoner", "We geven de buurt ruimte."),
        ("u/2026/c.txt", 1, "Utrecht", 2026, "P1", "gemeente", "Over ons zonder ons, zeggen ze."),
        ("u/2026/c.txt", 2, "Utrecht", 2026, "P2", "bewoner", "Precies, en wij staan klem."),
        ("v/2026/d.txt", 1, "Voorst", 2026, "P1", "bewoner", "Loslaten is moeilijk."),
        ("v/2026/d.txt", 2, "Voorst", 2026, "P2", "facilitator", "Dank jullie wel."),
    ]
    frame = pd.DataFrame(
        rows, columns=["source", "turn", "gemeente", "jaar", "speaker", "role", "text"]
    )
    return frame.assign(
        line=frame["turn"],
        datum=frame["jaar"].astype(str) + "-03-01",
        sessie="Pitstop",
        timestamp=None,
    )


def _tags(decided: dict[tuple[str, int], set[str]]) -> pd.DataFrame:
    rows = []
    for source, turn in _turns()[["source", "turn"]].itertuples(index=False):
        for theme in THEMES:
            yes = theme in decided.get((source, turn), set())
            rows.append((source, turn, theme, 0.9 if yes else 0.1, yes, int(yes)))
    return pd.DataFrame(rows, columns=["source", "turn", "theme", "score", "decided", "rule_hits"])


DECIDED = {
    ("u/2025/a.txt", 1): {"wij-zij"},
    ("u/2025/a.txt", 2): {"dubbelrol", "wij-zij"},
    ("u/2025/b.txt", 1): {"mogelijk-maker"},
    ("u/2026/c.txt", 1): {"wij-zij"},
    ("u/2026/c.txt", 2): {"wij-zij", "dubbelrol"},
    ("v/2026/d.txt", 1): {"mogelijk-maker"},
}


@pytest.fixture
def tables() -> dict[str, pd.DataFrame]:
    return aggregate.aggregate(_turns(), _tags(DECIDED), THEMES, GEMEENTEN)


def _row(frame: pd.DataFrame, **keys: object) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for key, value in keys.items():
        mask &= frame[key] == value
    assert mask.sum() == 1, keys
    return frame[mask].iloc[0]


def test_prevalence_counts_add_up(tables: dict[str, pd.DataFrame]) -> None:
    prev = tables["prevalence"]
    row = _row(prev, gemeente="Utrecht", jaar=2025, theme="wij-zij")
    assert (row["turns"], row["turns_total"]) == (2, 4)
    assert (row["sessions"], row["sessions_total"]) == (1, 2)
    assert row["share"] == pytest.approx(0.5)
    decided_turns = sum(len(v) for v in DECIDED.values())
    assert prev["turns"].sum() == decided_turns
    per_cell = prev.groupby(["gemeente", "jaar"])["turns_total"].first()
    assert per_cell.sum() == len(_turns())


def test_every_theme_and_gemeente_has_a_row(tables: dict[str, pd.DataFrame]) -> None:
    prev = tables["prevalence"]
    assert len(prev) == len(GEMEENTEN) * 2 * len(THEMES)  # 2 years in the data
    zero = _row(prev, gemeente="Voorst", jaar=2026, theme="dubbelrol")
    assert zero["turns"] == 0 and zero["share"] == 0.0


def test_gemeente_without_sessions_has_zero_totals_and_no_share(
    tables: dict[str, pd.DataFrame],
) -> None:
    empty = tables["prevalence"].query("gemeente == 'Wageningen'")
    assert (empty["turns_total"] == 0).all() and (empty["sessions_total"] == 0).all()
    assert empty["share"].isna().all()
    ov = _row(tables["overview"], gemeente="Wageningen", jaar=2026)
    assert (ov["sessions"], ov["turns"], ov["words"], ov["participants"]) == (0, 0, 0, 0)


def test_voorst_without_sessions_in_2025(tables: dict[str, pd.DataFrame]) -> None:
    row = _row(tables["prevalence"], gemeente="Voorst", jaar=2025, theme="mogelijk-maker")
    assert row["sessions_total"] == 0 and math.isnan(row["share"])
    change = _row(tables["prevalence_change"], gemeente="Voorst", jaar=2026, theme="mogelijk-maker")
    assert not change["has_previous"] and math.isnan(change["change"])


def test_first_year_has_no_previous_and_does_not_crash(tables: dict[str, pd.DataFrame]) -> None:
    first = tables["prevalence_change"].query("jaar == 2025")
    assert not first["has_previous"].any()
    assert first["change"].isna().all() and first["share_previous"].isna().all()


def test_change_against_previous_year(tables: dict[str, pd.DataFrame]) -> None:
    row = _row(tables["prevalence_change"], gemeente="Utrecht", jaar=2026, theme="wij-zij")
    assert row["has_previous"]
    assert row["share_previous"] == pytest.approx(0.5)
    assert row["change"] == pytest.approx(1.0 - 0.5)


def test_single_year_corpus() -> None:
    turns = _turns().query("jaar == 2026")
    tags = _tags(DECIDED).merge(turns[["source", "turn"]])
    change = prevalence_change(prevalence(turns, tags, THEMES))
    assert len(change) and not change["has_previous"].any()


def test_cooccurrence_is_symmetric_with_counts_on_the_diagonal(
    tables: dict[str, pd.DataFrame],
) -> None:
    co = tables["cooccurrence"]
    keyed = co.set_index(["gemeente", "jaar", "theme_a", "theme_b"])["turns"]
    for (g, y, a, b), n in keyed.items():
        assert keyed[(g, y, b, a)] == n
    assert keyed[("Utrecht", 2025, "wij-zij", "dubbelrol")] == 1
    assert keyed[("Utrecht", 2026, "wij-zij", "dubbelrol")] == 1
    prev = tables["prevalence"].set_index(["gemeente", "jaar", "theme"])["turns"]
    for (g, y, a, b), n in keyed.items():
        if a == b:
            assert n == prev[(g, y, a)]
    row = _row(co, gemeente="Utrecht", jaar=2026, theme_a="wij-zij", theme_b="dubbelrol")
    assert row["jaccard"] == pytest.approx(1 / 2)
    none = _row(co, gemeente="Voorst", jaar=2026, theme_a="wij-zij", theme_b="dubbelrol")
    assert none["turns"] == 0 and math.isnan(none["jaccard"])


def test_by_role_shares(tables: dict[str, pd.DataFrame]) -> None:
    role = tables["prevalence_by_role"]
    row = _row(role, gemeente="Utrecht", jaar=2025, role="bewoner", theme="wij-zij")
    assert (row["turns"], row["turns_total"]) == (1, 3)
    assert role.groupby(["gemeente", "jaar", "theme"])["turns"].sum().sum() == sum(
        len(v) for v in DECIDED.values()
    )


def test_overview_and_participants() -> None:
    ov = overview(_turns(), GEMEENTEN)
    row = _row(ov, gemeente="Utrecht", jaar=2025)
    assert (row["sessions"], row["turns"], row["participants"]) == (2, 4, 3)
    assert row["words"] == 6 + 5 + 1 + 5  # whitespace-separated words
    part = participants(_turns())
    bewoners = _row(part, gemeente="Utrecht", jaar=2025, role="bewoner")
    assert (bewoners["participants"], bewoners["turns"]) == (2, 3)


def test_no_tags_at_all() -> None:
    tags = _tags({})
    prev = prevalence(_turns(), tags, THEMES, GEMEENTEN)
    assert prev["turns"].sum() == 0
    assert cooccurrence(_turns(), tags, THEMES)["turns"].sum() == 0
    assert prevalence_by_role(_turns(), tags, THEMES)["share"].eq(0).all()


def test_a_new_codebook_theme_appears_without_code_changes() -> None:
    themes = (*THEMES, "nieuw-thema")
    prev = prevalence(_turns(), _tags(DECIDED), themes, GEMEENTEN)
    assert "nieuw-thema" in set(prev["theme"])


def test_word_counts_count_as_str_split_does():
    texts = pd.Series(
        ["Wij  en zij.", "\tna\u00a0de\u2003vergadering\n", "", "   ", None, "één-twee drie"],
        dtype=object,
    )
    expected = [len(t.split()) if t is not None else 0 for t in texts]
    assert aggregate.word_counts(texts).tolist() == expected == [3, 3, 0, 0, 0, 2]


def test_tables_from_the_stage_files_equal_those_from_whole_tables(tmp_path) -> None:
    """main reads the turns without their texts (words counted row group by row group) and only
    the decided tags: the tables are the same as from the whole tables."""
    turns, tags = _turns(), _tags(DECIDED)
    turns.to_parquet(tmp_path / "turns.parquet", index=False, row_group_size=3)
    tags.to_parquet(tmp_path / "tags.parquet", index=False)

    read = aggregate.read_turns(tmp_path / "turns.parquet")
    decided = aggregate.read_decided_tags(tmp_path / "tags.parquet")

    assert "text" not in read and read["words"].tolist() == [6, 5, 1, 5, 6, 5, 3, 3]
    assert len(decided) == sum(map(len, DECIDED.values()))
    whole = aggregate.aggregate(turns, tags, THEMES, GEMEENTEN)
    for name, table in aggregate.aggregate(read, decided, THEMES, GEMEENTEN).items():
        pd.testing.assert_frame_equal(table, whole[name], check_dtype=False, obj=name)
