"""Front matter, sidecars and their normalisation against config/gemeenten.yaml and rollen.yaml."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from pipeline import metadata
from pipeline.metadata import (
    build_metadata,
    load_gemeenten,
    load_rollen,
    load_yaml,
    parse_front_matter,
    read_sidecar,
    split_front_matter,
)
from pipeline.params import REPO_ROOT


@pytest.fixture(scope="module")
def gemeenten() -> dict[str, str]:
    return load_gemeenten(REPO_ROOT / "config" / "gemeenten.yaml")


@pytest.fixture(scope="module")
def rollen() -> dict[str, str]:
    return load_rollen(REPO_ROOT / "config" / "rollen.yaml")


def build(front, gemeenten, rollen, sidecar=None, key_lines=None):
    return build_metadata(front, sidecar, "sessie-3", gemeenten, rollen, key_lines)


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("Horst aan de Maas", "Horst aan de Maas"),
        ("horst a/d maas", "Horst aan de Maas"),
        ("  Horst   A/D   Maas ", "Horst aan de Maas"),
        ("Horst-aan-de-Maas", "Horst aan de Maas"),
        ("GEMEENTE UTRECHT", "Utrecht"),
        ("gem. Voorst", "Voorst"),
        ("wageningen", "Wageningen"),
    ],
)
def test_gemeente_is_normalised_against_the_aliases(written, canonical, gemeenten, rollen):
    meta, _, problems = build({"gemeente": written, "datum": "2023-02-14"}, gemeenten, rollen)
    assert not problems.errors
    assert meta is not None and meta.gemeente == canonical


def test_unknown_gemeente_is_an_error_naming_the_known_ones(gemeenten, rollen):
    meta, _, problems = build(
        {"gemeente": "Amsterdam", "datum": "2023-02-14"},
        gemeenten,
        rollen,
        key_lines={"gemeente": 2},
    )
    assert meta is None
    [error] = problems.errors
    assert error.line == 2 and "'Amsterdam'" in error.message
    for known in ("Utrecht", "Horst aan de Maas", "Wageningen", "Apeldoorn", "Voorst"):
        assert known in error.message


@pytest.mark.parametrize(
    ("datum", "iso", "jaar"),
    [
        ("2023-02-14", "2023-02-14", 2023),
        (dt.date(2024, 12, 31), "2024-12-31", 2024),  # a YAML date object
        ("2023-2-4", "2023-02-04", 2023),
    ],
)
def test_datum_gives_iso_date_and_year(datum, iso, jaar, gemeenten, rollen):
    meta, _, problems = build({"gemeente": "Utrecht", "datum": datum}, gemeenten, rollen)
    assert not problems.errors
    assert (meta.datum, meta.jaar) == (iso, jaar)


@pytest.mark.parametrize(
    "datum",
    [
        "14-02-2023",
        "2023-02-30",
        "februari 2023",
        2023,
        dt.datetime(2023, 2, 14, 10, 0),
        "1850-01-01",
        "",
    ],
)
def test_bad_datum_is_an_error(datum, gemeenten, rollen):
    meta, _, problems = build({"gemeente": "Utrecht", "datum": datum}, gemeenten, rollen)
    assert meta is None
    assert any("datum" in e.message for e in problems.errors)


@pytest.mark.parametrize("missing", ["gemeente", "datum"])
def test_required_keys(missing, gemeenten, rollen):
    front = {"gemeente": "Utrecht", "datum": "2023-02-14"}
    del front[missing]
    meta, _, problems = build(front, gemeenten, rollen)
    assert meta is None
    assert [e.message for e in problems.errors] == [f"{missing} ontbreekt in metadata"]


def test_sessie_defaults_to_the_file_stem_and_keeps_a_free_title(gemeenten, rollen):
    front = {"gemeente": "Utrecht", "datum": "2023-02-14"}
    assert build(front, gemeenten, rollen)[0].sessie == "sessie-3"
    titled = {**front, "sessie": "Pitstop 2 – impact"}
    assert build(titled, gemeenten, rollen)[0].sessie == "Pitstop 2 – impact"


@pytest.mark.parametrize(
    ("role", "canonical"),
    [
        ("facilitator", "facilitator"),
        ("Gespreksleider", "facilitator"),
        ("sociaal werker", "sociaal-werker"),
        ("Sociaal-Werker", "sociaal-werker"),
        ("sociaal_werker", "sociaal-werker"),
        ("vrijwilliger", "bewoner"),
        ("initiatiefnemer", "bewoner"),
        ("WETHOUDER", "gemeente"),
        ("opbouwwerker", "sociaal-werker"),
    ],
)
def test_roles_are_normalised(role, canonical, gemeenten, rollen):
    front = {"gemeente": "Utrecht", "datum": "2023-02-14", "deelnemers": {"Fatima": role}}
    meta, _, problems = build(front, gemeenten, rollen)
    assert meta.deelnemers == {"Fatima": canonical}
    assert not problems.warnings


@pytest.mark.parametrize("role", ["bakker", None])
def test_unknown_or_missing_role_becomes_overig_with_a_warning(role, gemeenten, rollen):
    front = {"gemeente": "Utrecht", "datum": "2023-02-14", "deelnemers": {"Karel": role}}
    meta, deelnemers, problems = build(front, gemeenten, rollen)
    assert meta.deelnemers == deelnemers == {"Karel": "overig"}
    [warning] = problems.warnings
    assert "Karel" in warning.message and "overig" in warning.message


def test_deelnemers_as_a_list_of_names_gets_overig_with_one_warning(gemeenten, rollen):
    front = {"gemeente": "Utrecht", "datum": "2023-02-14", "deelnemers": ["Anne", "Karel"]}
    meta, _, problems = build(front, gemeenten, rollen)
    assert meta.deelnemers == {"Anne": "overig", "Karel": "overig"}
    assert len(problems.warnings) == 1


def test_deelnemers_of_the_wrong_type_is_an_error(gemeenten, rollen):
    front = {"gemeente": "Utrecht", "datum": "2023-02-14", "deelnemers": "Anne en Karel"}
    meta, _, problems = build(front, gemeenten, rollen)
    assert meta is None and "deelnemers" in problems.errors[0].message


def test_unknown_keys_are_warnings(gemeenten, rollen):
    front = {"gemeente": "Utrecht", "datum": "2023-02-14", "locatie": "buurthuis"}
    meta, _, problems = build(front, gemeenten, rollen, key_lines={"locatie": 4})
    assert meta is not None
    assert [(w.line, "'locatie'" in w.message) for w in problems.warnings] == [(4, True)]


def test_front_matter_wins_key_by_key_over_the_sidecar(gemeenten, rollen):
    front = {"datum": "2024-05-01", "deelnemers": {"Anne": "bewoner"}}
    sidecar = {
        "gemeente": "Voorst",
        "datum": "2020-01-01",
        "sessie": "Uit sidecar",
        "deelnemers": {"Anne": "wethouder", "Karel": "bewoner"},
    }
    meta, _, problems = build(front, gemeenten, rollen, sidecar=sidecar)
    assert not problems.errors
    assert (meta.gemeente, meta.datum, meta.sessie) == ("Voorst", "2024-05-01", "Uit sidecar")
    assert meta.deelnemers == {"Anne": "bewoner"}


# front matter ---------------------------------------------------------------------------------


def test_front_matter_block_and_body_start() -> None:
    lines = ["---", "gemeente: Utrecht", "datum: 2023-02-14", "---", "Karel: hoi"]
    block, body_start, problems = split_front_matter(lines)
    assert block == ["gemeente: Utrecht", "datum: 2023-02-14"] and body_start == 4
    data, key_lines, _ = parse_front_matter(block)
    assert data == {"gemeente": "Utrecht", "datum": "2023-02-14"}  # dates stay text
    assert key_lines == {"gemeente": 2, "datum": 3}


@pytest.mark.parametrize(
    "lines", [["Karel: hoi"], ["", "---", "gemeente: Utrecht", "---"], [" ---x", "Karel: hoi"]]
)
def test_front_matter_only_on_the_first_line(lines) -> None:
    block, body_start, problems = split_front_matter(lines)
    assert block is None and body_start == 0 and not problems.errors


def test_unclosed_front_matter_is_an_error_on_line_1() -> None:
    block, _, problems = split_front_matter(["---", "gemeente: Utrecht", "Karel: hoi"])
    assert block is None
    assert [e.line for e in problems.errors] == [1]
    assert "niet afgesloten" in problems.errors[0].message


@pytest.mark.parametrize(
    ("block", "line"),
    [
        (["gemeente: Utrecht", "datum: [2023", "sessie: x"], 4),
        (["gemeente: Utrecht", "  datum: 2023-02-14", "sessie: x: y"], 3),
        (["gemeente: Utrecht", "gemeente: Voorst"], 3),  # duplicate key
    ],
)
def test_invalid_yaml_is_an_error_with_the_file_line(block, line) -> None:
    data, _, problems = parse_front_matter(block)
    assert data is None
    [error] = problems.errors
    assert error.line == line and "ongeldige YAML" in error.message


@pytest.mark.parametrize(
    "text",
    [
        "gemeente: Utrecht\ndatum: 2023-02-14\ndeelnemers:\n  Anne: facilitator\n  12: bewoner",
        "sessie: 'Wat nu'\nlijst: [a, 'b c', 1.5, yes, ~]\nleeg:\n",
        "gemeente: Utrecht\ngemeente: Voorst",  # duplicate key
        "gemeente: Utrecht\n  datum: 2023-02-14",
        # where libyaml differs from PyYAML's parser: it accepts these, or reads them otherwise
        "gemeente: Horst\ta/d Maas",
        "deelnemers:\n\ufeff  Anne: facilitator",
        "deelnemers: {Anne: facili?tator}",
        "sessie: !",
        "sessie: >+#|",
    ],
)
def test_yaml_reads_as_with_pyyamls_own_parser(text: str) -> None:
    """`load_yaml` reads with libyaml where it can; PyYAML's own parser read everything before."""
    data, problems = load_yaml(text, "front matter", 2)
    own_data, own_problems = metadata._load_yaml_reported(text, "front matter", 2)
    assert repr(data) == repr(own_data)  # repr: True and 1, '' and None differ
    assert problems.errors == own_problems.errors and problems.warnings == own_problems.warnings


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML without libyaml")
def test_plain_front_matter_is_read_by_libyaml(monkeypatch) -> None:
    def pure_python(*args):
        raise AssertionError("read by PyYAML's own parser")

    monkeypatch.setattr(metadata, "_load_yaml_reported", pure_python)
    data, problems = load_yaml("gemeente: Utrecht\ndatum: 2023-02-14", "front matter", 2)
    assert data == {"gemeente": "Utrecht", "datum": "2023-02-14"} and not problems.errors


def test_front_matter_that_is_no_mapping_is_an_error() -> None:
    data, _, problems = parse_front_matter(["- Utrecht", "- 2023"])
    assert data is None and problems.errors


def test_sidecar_errors_name_the_sidecar(tmp_path: Path) -> None:
    sidecar = tmp_path / "sessie.docx.yaml"
    sidecar.write_text("gemeente: Utrecht\ndatum: [\n", encoding="utf-8")
    data, problems = read_sidecar(sidecar)
    assert data is None
    [error] = problems.errors
    assert error.line is None and "sessie.docx.yaml" in error.message and "regel" in error.message


def test_config_alias_conflict_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "rollen.yaml"
    config.write_text("bewoner: [vrijwilliger]\nfacilitator: [vrijwilliger]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="vrijwilliger"):
        load_rollen(config)
