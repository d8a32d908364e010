"""WebVTT and SubRip: voice tags, `Name:` prefixes, merging cues, malformed cues."""

from __future__ import annotations

import pytest

from pipeline.captions import cues_to_turns, parse_srt, parse_vtt
from pipeline.metadata import load_rollen
from pipeline.params import REPO_ROOT
from pipeline.turns import Speakers, load_label_words
from tests.conftest import no_hang

SPEAKERS = Speakers({}, load_rollen(REPO_ROOT / "config" / "rollen.yaml"), load_label_words())


def vtt_turns(text: str, speakers: Speakers = SPEAKERS):
    cues, problems = parse_vtt(text.split("\n"))
    assert not problems.errors, problems.errors
    return cues_to_turns(cues, speakers)


def test_voice_tags_and_merging_consecutive_cues() -> None:
    text = (
        "WEBVTT\n\n00:00:05.000 --> 00:00:06.500\n<v Esther>Goedemiddag.</v>\n\n"
        "00:00:06.500 --> 00:00:16.500\n<v Esther>De koffie is van Gerrit.</v>\n\n"
        "00:00:17.154 --> 00:00:22.154\n<v Gerrit van Dam>Hij is <b>prima</b>. [gelach]</v>"
    )
    turns, problems = vtt_turns(text)
    assert [(t.turn, t.line, t.speaker, t.timestamp, t.text) for t in turns] == [
        (1, 1, "Esther", "00:00:05", "Goedemiddag. De koffie is van Gerrit."),
        (2, 3, "Gerrit van Dam", "00:00:17", "Hij is prima. [gelach]"),
    ]
    assert not problems.warnings


def test_name_prefix_in_cue_text_and_speaker_change_inside_a_cue() -> None:
    text = (
        "WEBVTT\n\n1\n00:00:01.000 --> 00:00:04.000\nAnne de Vries: Welkom.\n\n"
        "2\n00:00:04.000 --> 00:00:08.000\nMaar goed: we beginnen.\n\n"
        "3\n01:02:09.500 --> 01:02:12.000\nKarel (vrijwilliger): Ik woon in Twello.\n"
        "Anne de Vries: Fijn."
    )
    turns, _ = vtt_turns(text)
    assert [(t.line, t.speaker, t.role, t.timestamp, t.text) for t in turns] == [
        (1, "Anne de Vries", "overig", "00:00:01", "Welkom. Maar goed: we beginnen."),
        (3, "Karel", "bewoner", "01:02:09", "Ik woon in Twello."),
        (3, "Anne de Vries", "overig", "01:02:09", "Fijn."),
    ]


def test_voice_with_class_and_role_and_deelnemers() -> None:
    speakers = Speakers({"Esther": "facilitator"}, SPEAKERS.rollen, SPEAKERS.words)
    text = (
        "WEBVTT\n\n00:01.000 --> 00:02.000\n<v.loud esther>Hallo.\n\n"
        "00:03.000 --> 00:04.000\n<v Onbekende Gast>Dag."
    )
    turns, problems = vtt_turns(text, speakers)
    assert [(t.speaker, t.role) for t in turns] == [
        ("Esther", "facilitator"),
        ("Onbekende Gast", "overig"),
    ]
    assert ["niet in deelnemers" in w.message for w in problems.warnings] == [True]


def test_cues_without_speaker_continue_and_leading_ones_go_to_onbekend() -> None:
    text = (
        "WEBVTT\n\n00:00.000 --> 00:04.000\nWelkom allemaal.\n\n"
        "00:04.000 --> 00:08.000\nZullen we?\n\n00:09.000 --> 00:10.000\n<v Karel>Ja."
    )
    turns, problems = vtt_turns(text)
    assert [(t.speaker, t.role, t.text) for t in turns] == [
        ("onbekend", "overig", "Welkom allemaal. Zullen we?"),
        ("Karel", "overig", "Ja."),
    ]
    [warning] = problems.warnings
    assert "cues 1–2" in warning.message and warning.line == 3


def test_whisper_export_without_any_speaker_is_read_with_a_warning() -> None:
    turns, problems = vtt_turns("WEBVTT\n\n00:00.000 --> 00:04.000\nWelkom.\n")
    assert [(t.speaker, t.text) for t in turns] == [("onbekend", "Welkom.")]
    assert "geen sprekers" in problems.warnings[0].message


def test_notes_styles_headers_and_entities() -> None:
    text = (
        "WEBVTT - Teams\nKind: captions\n\nNOTE export\n\nSTYLE\n::cue { color: red }\n\n"
        "00:01.000 --> 00:02.000 align:start\n<v Anne>Koek &amp; thee&nbsp;?"
    )
    turns, _ = vtt_turns(text)
    assert [(t.speaker, t.text) for t in turns] == [("Anne", "Koek & thee ?")]


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("Karel: hoi", 1, "WEBVTT"),
        (
            "WEBVTT\n\n00:01.000 --> 00:02.000\n<v Anne>Hoi\n\nlos tekstblok\n",
            6,
            "cue 2: blok zonder tijdregel",
        ),
        ("WEBVTT\n\n00:01.000 -> 00:02.000\n<v Anne>Hoi\n", 3, "cue 1: blok zonder tijdregel"),
        ("WEBVTT\n\n1\n00:01.000 --> 00:xx.000\n<v Anne>Hoi\n", 4, "cue 1: ongeldige tijdregel"),
        ("WEBVTT\n\n00:01:99.000 --> 00:02:00.000\n<v Anne>Hoi\n", 3, "ongeldige tijdregel"),
    ],
)
def test_malformed_vtt_is_an_error_with_line_and_cue(text, line, needle) -> None:
    _, problems = parse_vtt(text.split("\n"))
    assert any(e.line == line and needle in e.message for e in problems.errors), problems.errors


def test_cue_right_after_the_header_is_not_lost() -> None:
    cues, problems = parse_vtt(["WEBVTT", "00:01.000 --> 00:02.000", "<v Anne>Hoi"])
    assert not problems.errors and [c.lines for c in cues] == [("<v Anne>Hoi",)]


def test_four_digit_milliseconds_are_read_with_one_warning() -> None:
    text = (
        "WEBVTT\n\n00:00:58.500 --> 00:00:59.1000\n<v Anne>Hoi\n\n"
        "00:00:59.1000 --> 00:01:02.000\n<v Karel>Dag"
    )
    cues, problems = parse_vtt(text.split("\n"))
    assert [c.start for c in cues] == [58, 60]
    assert len(problems.warnings) == 1 and not problems.errors


def test_srt_with_name_prefixes_and_tags() -> None:
    text = (
        "1\n00:00:05,000 --> 00:00:10,385\nThijs: Zo. De soep is op.\n\n"
        "2\n00:00:11,385 --> 00:00:13,692\nRob: Die soep was goed,\n<i>Fatma</i>. Echt.\n\n"
        "3\n00:00:14,692 --> 00:00:21,615\nRob: Echt waar.\n\n"
        "4\n01:00:22,615 --> 01:00:30,308\nThijs: Welkom.\n"
    )
    cues, problems = parse_srt(text.split("\n"))
    assert not problems.errors
    turns, _ = cues_to_turns(cues, SPEAKERS)
    assert [(t.line, t.speaker, t.timestamp, t.text) for t in turns] == [
        (1, "Thijs", "00:00:05", "Zo. De soep is op."),
        (2, "Rob", "00:00:11", "Die soep was goed, Fatma. Echt. Echt waar."),
        (4, "Thijs", "01:00:22", "Welkom."),
    ]


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        (
            "1\n00:00:05,000 --> 00:00:10,000\nThijs: Zo.\n\nlosse tekst\n",
            5,
            "cue 2: blok zonder nummer en tijdregel",
        ),
        ("1\n00:00:05,000 --> straks\nThijs: Zo.\n", 2, "cue 1: ongeldige tijdregel"),
        ("een\n00:00:05,000 --> 00:00:10,000\nThijs: Zo.\n", 1, "cue 1: blok zonder nummer"),
    ],
)
def test_malformed_srt_is_an_error_with_line_and_cue(text, line, needle) -> None:
    _, problems = parse_srt(text.split("\n"))
    assert any(e.line == line and needle in e.message for e in problems.errors), problems.errors


def test_pathological_caption_lines_get_a_verdict() -> None:
    with no_hang():
        _, problems = parse_srt(["9" * 100_000, "9" * 100_000, "9" * 100_000])
        parse_vtt(["WEBVTT", "", "9" * 100_000 + " --> " + "9" * 100_000, "<" * 100_000])
        cues, _ = parse_srt(["1", "00:00:01,000 --> 00:00:02,000", "<v " + "<" * 100_000])
        cues_to_turns(cues, SPEAKERS)
    assert problems.errors
