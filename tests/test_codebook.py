import pytest
import yaml

from pipeline.codebook import CodebookError, load_codebook, parse_codebook
from pipeline.params import REPO_ROOT

THEMES = ("wij-zij", "dubbelrol", "mogelijk-maker")


def repo_codebook() -> dict:
    return yaml.safe_load((REPO_ROOT / "codebook.yaml").read_text(encoding="utf-8"))


def test_default_codebook_has_the_three_themes_with_dutch_labels():
    codebook = load_codebook(REPO_ROOT / "codebook.yaml")
    assert codebook.ids == THEMES
    for theme in codebook.themes:
        assert theme.label and theme.definition and theme.examples and theme.negative_cues


def test_a_theme_added_to_the_file_is_loaded_without_code_changes():
    raw = repo_codebook()
    raw["themes"].append(
        {
            "id": "eenzaamheid",
            "label": "Eenzaamheid",
            "definition": "Alleen zijn.",
            "phrases": ["niemand om mee te praten"],
        }
    )
    codebook = parse_codebook(yaml.safe_dump(raw, allow_unicode=True))
    assert codebook.ids == (*THEMES, "eenzaamheid")


def test_digest_changes_with_the_content():
    text = (REPO_ROOT / "codebook.yaml").read_text(encoding="utf-8")
    assert parse_codebook(text).digest != parse_codebook(text + "\n# edit\n").digest


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t.pop("label"), r"theme 2 \('dubbelrol'\): label: Field required"),
        (lambda t: t.update(id="Dubbel Rol"), r"theme 2 \('Dubbel Rol'\): id: .*lower case"),
        (
            lambda t: t.update(phrases=["ok", " "]),
            r"theme 2 \('dubbelrol'\): phrases: .*entry 2 is empty",
        ),
        (
            lambda t: t.update(synoniemen=["x"]),
            r"theme 2 \('dubbelrol'\): synoniemen: Extra inputs",
        ),
        (lambda t: t.update(id="wij-zij"), r"used twice: wij-zij"),
        (lambda t: t.update(phrases=[], lemma_patterns=[]), r"'dubbelrol': needs phrases or lemma"),
    ],
)
def test_malformed_entry_is_named(mutate, message):
    raw = repo_codebook()
    mutate(raw["themes"][1])
    with pytest.raises(CodebookError, match=message):
        parse_codebook(yaml.safe_dump(raw, allow_unicode=True))


def test_invalid_yaml_names_the_line():
    with pytest.raises(CodebookError, match=r"line 3"):
        parse_codebook("version: '1'\nthemes:\n  - id: [unclosed\n")
