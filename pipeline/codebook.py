"""Load and validate `codebook.yaml`, the only home of the themes and their cues."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

THEME_ID = re.compile(r"^[a-z][a-z0-9-]*$")
LEMMA_PREFIX = "lemma:"


class CodebookError(ValueError):
    """The codebook is malformed; the message names the entry and the field."""


class Theme(BaseModel):
    """One theme: its definition for people and its cues for the rule matcher."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    label: str = Field(min_length=1)
    definition: str = Field(min_length=1)
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    lemma_patterns: tuple[str, ...] = ()
    negative_cues: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not THEME_ID.match(value):
            raise ValueError("must be lower case letters, digits and '-', starting with a letter")
        return value

    @field_validator("phrases", "lemma_patterns", "negative_cues", "examples", "include", "exclude")
    @classmethod
    def _no_blank_entries(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for i, value in enumerate(values):
            if not str(value).strip():
                raise ValueError(f"entry {i + 1} is empty")
        return tuple(" ".join(str(v).split()) for v in values)


class _CodebookFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    themes: tuple[Theme, ...] = Field(min_length=1)


@dataclass(frozen=True)
class Codebook:
    """The validated codebook, with a hash of its content so outputs can say which one they used."""

    version: str
    themes: tuple[Theme, ...]
    digest: str

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.themes)

    def theme(self, theme_id: str) -> Theme:
        return next(t for t in self.themes if t.id == theme_id)


def _describe(error: dict, raw: dict) -> str:
    loc = list(error["loc"])
    where = "codebook"
    if len(loc) >= 2 and loc[0] == "themes" and isinstance(loc[1], int):
        entry = (raw.get("themes") or [])[loc[1]]
        name = entry.get("id") if isinstance(entry, dict) else None
        where = f"theme {loc[1] + 1}" + (f" ('{name}')" if name else "")
        loc = loc[2:]
    field = ".".join(str(x) for x in loc)
    return f"{where}: {field + ': ' if field else ''}{error['msg']}"


def parse_codebook(text: str, name: str = "codebook.yaml") -> Codebook:
    """Validate codebook YAML text; raise CodebookError naming the wrong entry."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark else ""
        raise CodebookError(f"{name}: not valid YAML{line}: {exc}") from exc
    if not isinstance(raw, dict):
        raise CodebookError(f"{name}: expected a mapping with 'version' and 'themes'")
    try:
        parsed = _CodebookFile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_describe(e, raw) for e in exc.errors())
        raise CodebookError(f"{name}: {problems}") from exc
    ids = [t.id for t in parsed.themes]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise CodebookError(f"{name}: theme id(s) used twice: {', '.join(duplicates)}")
    for theme in parsed.themes:
        if not (theme.phrases or theme.lemma_patterns):
            raise CodebookError(f"{name}: theme '{theme.id}': needs phrases or lemma_patterns")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return Codebook(version=parsed.version, themes=parsed.themes, digest=digest)


def load_codebook(path: Path) -> Codebook:
    """Read and validate the codebook file."""
    return parse_codebook(Path(path).read_text(encoding="utf-8"), name=Path(path).name)
