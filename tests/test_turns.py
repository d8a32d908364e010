"""Turn syntax: timestamps, labels, roles, continuation lines and false turn starts."""

from __future__ import annotations

import pytest

from pipeline.metadata import load_rollen
from pipeline.params import REPO_ROOT
from pipeline.turns import (
    Speakers,
    is_speaker_label,
    load_label_words,
    parse_turns,
    split_label,
    split_timestamp,
)
from tests.conftest import no_hang

WORDS = load_label_words()
ROLLEN = load_rollen(REPO_ROOT / "config" / "rollen.yaml")
DEELNEMERS = {"Anne": "facilitator", "Karel": "bewoner", "Fatima": "sociaal-werker"}


def parse(text: str, deelnemers: dict[str, str] | None = None, first: int = 1):
    lines = list(enumerate(text.split("\n"), start=first))
    return parse_turns(lines, Speakers(deelnemers or {}, ROLLEN, WORDS))


@pytest.mark.parametrize(
    ("line", "timestamp", "rest"),
    [
        ("[00:01:02] Karel: ja", "00:01:02", "Karel: ja"),
        ("[1:02:03] Karel: ja", "01:02:03", "Karel: ja"),
        ("[01:02] Karel: ja", "00:01:02", "Karel: ja"),
        ("[75:30] Karel: ja", "01:15:30", "Karel: ja"),  # minutes past the hour
        ("01:02:03 Karel: ja", "01:02:03", "Karel: ja"),
        ("(01:02) Karel: ja", "00:01:02", "Karel: ja"),
        ("  (01:02)Karel: ja", "00:01:02", "Karel: ja"),
        ("Karel: ja", None, "Karel: ja"),
        ("10:30 Karel: ja", None, "10:30 Karel: ja"),  # bare mm:ss is no timestamp
    ],
)
def test_timestamp_forms_are_normalised(line, timestamp, rest) -> None:
    assert split_timestamp(line)[0] == timestamp
    assert split_timestamp(line)[2] == rest


@pytest.mark.parametrize(
    ("text", "label", "role", "rest"),
    [
        ("Karel (bewoner): Nou, wij", "Karel", "bewoner", "Nou, wij"),
        ("Karel:", "Karel", None, ""),
        ("Karel : ja", "Karel", None, "ja"),
        ("Spreker  2:\tja", "Spreker 2", None, "ja"),
    ],
)
def test_split_label(text, label, role, rest) -> None:
    found = split_label(text)
    assert (found.label, found.role, found.text) == (label, role, rest)


@pytest.mark.parametrize(
    "text",
    [
        "Om 10:30 gingen we",
        "zie https://buurt.nl",
        "Karel (): ja",
        ": leeg",
        "(bewoner): ja",
        "x" * 200 + ": ja",
    ],
)
def test_no_label_shape(text) -> None:
    assert split_label(text) is None


@pytest.mark.parametrize(
    "label",
    [
        "Karel",
        "Spreker 2",
        "R1",
        "Deelnemer 3",
        "2",
        "Jan de Boer",
        "De Vries",
        "Van der Berg",
        "Moeder van Ahmed",
        "Dhr. Jansen",
        "Anne-Marie",
        "KAREL",
        "Meerdere sprekers",
        "Vrouw uit het publiek",
        "Fatima El Amrani",
        "Ten Brink",
        "Dan",
    ],
)
def test_speaker_labels_without_deelnemers(label) -> None:
    assert is_speaker_label(label, WORDS)


@pytest.mark.parametrize(
    "label",
    [
        "Maar goed",
        "Dus wat ik zeg",
        "Nou ja",
        "Nou",
        "Kortom",
        "Het punt is",
        "Wat ik bedoel",
        "De vraag",
        "Twee dingen",
        "In Overvecht",
        "Jan de",
        "En toen Karel",
        "Ik zeg",
        "spreker 1",
        "Conclusie",
        "Nou, zeg",
        "Een Twee Drie Vier Vijf",
        "Ja zeker",
        "Let op",
        "Eén ding is zeker",
    ],
)
def test_running_text_is_no_speaker_label(label) -> None:
    assert not is_speaker_label(label, WORDS)


def test_turns_with_continuation_lines_and_paragraphs() -> None:
    text = (
        "\n[00:01:02] Karel (bewoner): Nou, wij hebben dat gewoon zelf geregeld.\n"
        "Maar goed: het was niet makkelijk.\n\n"
        "Dus wat ik zeg: doe het zelf. [gelach]\n\n"
        "Fatima: Ja, en daar waren wij heel blij mee.\n"
    )
    turns, problems = parse(text, first=5)
    assert not problems.errors and not problems.warnings
    assert [(t.turn, t.line, t.speaker, t.role, t.timestamp) for t in turns] == [
        (1, 6, "Karel", "bewoner", "00:01:02"),
        (2, 11, "Fatima", "overig", None),
    ]
    assert turns[0].text == (
        "Nou, wij hebben dat gewoon zelf geregeld.\n"
        "Maar goed: het was niet makkelijk.\n\n"
        "Dus wat ik zeg: doe het zelf. [gelach]"
    )
    assert turns[1].text == "Ja, en daar waren wij heel blij mee."


def test_speaker_on_its_own_line_takes_the_next_lines() -> None:
    turns, problems = parse("Anne:\n\n  Welkom allemaal.  \nFijn dat jullie er zijn.\n")
    assert turns[0].text == "Welkom allemaal.\nFijn dat jullie er zijn."
    assert not problems.warnings


def test_with_deelnemers_only_those_names_start_a_turn() -> None:
    text = (
        "anne: Welkom.\nFatima (welzijnswerker): Dank je.\nSpreker 2: Ik sta niet op de lijst."
        "\nKarel: Ik wel."
    )
    turns, problems = parse(text, DEELNEMERS)
    assert [(t.speaker, t.role) for t in turns] == [
        ("Anne", "facilitator"),
        ("Fatima", "sociaal-werker"),
        ("Karel", "bewoner"),
    ]
    assert turns[1].text == "Dank je.\nSpreker 2: Ik sta niet op de lijst."
    [warning] = problems.warnings
    assert warning.line == 3 and "Spreker 2" in warning.message


def test_a_label_names_the_first_deelnemer_with_the_same_alias_key() -> None:
    speakers = Speakers({"Jan-Willem": "bewoner", "jan willem": "facilitator"}, ROLLEN, WORDS)
    assert speakers.name("JAN_WILLEM") == "Jan-Willem"
    assert speakers.name("jan   willem") == "Jan-Willem"
    assert speakers.name("Jan") is None


def test_role_in_parentheses_wins_over_deelnemers_with_a_warning() -> None:
    turns, problems = parse(
        "Karel (wethouder): Ik ben ook raadslid.\nKarel (wethouder): Ja.", DEELNEMERS
    )
    assert [t.role for t in turns] == ["gemeente", "gemeente"]
    assert len(problems.warnings) == 1 and "wijkt af" in problems.warnings[0].message


def test_unknown_role_in_parentheses_is_overig_with_a_warning() -> None:
    turns, problems = parse("Karel (bakker): Brood.\nKarel (bakker): Nog meer brood.")
    assert [t.role for t in turns] == ["overig", "overig"]
    [warning] = problems.warnings
    assert "bakker" in warning.message and warning.line == 1


def test_text_before_the_first_turn_is_one_error() -> None:
    turns, problems = parse("\n# Verslag pitstop\nopgenomen in het buurthuis\nKarel: hoi")
    assert [e.line for e in problems.errors] == [2]
    assert "vóór de eerste" in problems.errors[0].message
    assert [t.speaker for t in turns] == ["Karel"]


def test_blank_lines_before_the_first_turn_are_fine() -> None:
    _, problems = parse("\n  \n\nKarel: hoi")
    assert not problems.errors


def test_no_turns_at_all_is_an_error() -> None:
    _, problems = parse("")
    assert [e.message for e in problems.errors] == [
        "geen sprekersbeurten gevonden (verwacht 'Naam: tekst')"
    ]


def test_empty_turn_is_kept_with_a_warning() -> None:
    turns, problems = parse("Anne:\nKarel: Ja.")
    assert [(t.turn, t.speaker, t.text) for t in turns] == [(1, "Anne", ""), (2, "Karel", "Ja.")]
    assert [(w.line, w.message) for w in problems.warnings] == [
        (1, "beurt 1 (Anne) heeft geen tekst")
    ]


def test_invalid_time_and_time_without_speaker_are_warnings() -> None:
    turns, problems = parse("[00:75:00] Anne: Hoi.\n[00:01:02] en toen ging het licht uit")
    assert turns[0].timestamp is None
    assert turns[0].text == "Hoi.\n[00:01:02] en toen ging het licht uit"
    assert [w.line for w in problems.warnings] == [1, 2]


def test_four_word_limit() -> None:
    turns, _ = parse("Jan van der Berg: Vier woorden.\nMevr. Anne van Dijk Smit: Vijf.")
    assert [t.speaker for t in turns] == ["Jan van der Berg"]
    assert turns[0].text == "Vier woorden.\nMevr. Anne van Dijk Smit: Vijf."


def test_one_huge_line_gets_a_verdict() -> None:
    line = "Karel " + "(" * 200_000 + ": " + "a:" * 200_000
    with no_hang():
        turns, _ = parse(f"Anne: hoi\n{line}\n{'9' * 300_000}:\n{'[' * 300_000}")
    assert [t.speaker for t in turns] == ["Anne"]
