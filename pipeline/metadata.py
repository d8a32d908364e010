"""Session metadata from YAML front matter and sidecars, normalised against the configured
municipalities and roles (FORMAT.md "Metadata keys")."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.decoding import decode
from pipeline.problems import Problems, snippet
from pipeline.schemas import ROLES

KEYS = ("gemeente", "datum", "sessie", "deelnemers")
FALLBACK_ROLE = "overig"
_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


@dataclass(frozen=True)
class Metadata:
    """The validated metadata of one session; `deelnemers` maps name -> canonical role."""

    gemeente: str
    datum: str
    jaar: int
    sessie: str
    deelnemers: dict[str, str]


class _Rules:
    """Safe YAML that keeps dates as text (validated by us) and refuses duplicate keys."""

    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != _TIMESTAMP_TAG]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"dubbele sleutel {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _Loader(_Rules, yaml.SafeLoader):
    """The pure-Python parser: it decides what is valid YAML and words the errors."""


class _FastLoader(_Rules, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """The same rules over libyaml when PyYAML has it (about 8x faster on front matter)."""


def alias_key(text: str) -> str:
    """`text` as an alias-list key: case-folded, '-' and '_' as spaces, whitespace collapsed."""
    return " ".join(text.casefold().replace("-", " ").replace("_", " ").split())


def _aliases(path: Path, what: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{path}: expected a mapping of {what} -> aliases")
    return data


def _add_alias(table: dict[str, str], alias: str, canonical: str, path: Path) -> None:
    key = alias_key(str(alias))
    if table.setdefault(key, canonical) != canonical:
        raise ValueError(f"{path}: alias {alias!r} is both {table[key]!r} and {canonical!r}")


def load_gemeenten(path: Path) -> dict[str, str]:
    """Alias key -> canonical municipality, from `config/gemeenten.yaml`."""
    table: dict[str, str] = {}
    for canonical, entry in _aliases(path, "municipality").items():
        aliases = (entry or {}).get("aliases") or [] if isinstance(entry, dict) else None
        if aliases is None:
            raise ValueError(f"{path}: entry {canonical!r} must be a mapping with 'aliases'")
        for alias in [canonical, *aliases]:
            _add_alias(table, alias, str(canonical), path)
    return table


def load_rollen(path: Path) -> dict[str, str]:
    """Alias key -> canonical role, from `config/rollen.yaml`; every canonical role is known."""
    table: dict[str, str] = {}
    for canonical, aliases in _aliases(path, "role").items():
        if canonical not in ROLES:
            raise ValueError(f"{path}: unknown role {canonical!r}; roles are {', '.join(ROLES)}")
        for alias in [canonical, *(aliases or [])]:
            _add_alias(table, alias, canonical, path)
    return table


def canonical_names(table: Mapping[str, str]) -> list[str]:
    """The canonical names of an alias table, in file order."""
    return list(dict.fromkeys(table.values()))


def normalise_role(raw: object, rollen: Mapping[str, str]) -> str | None:
    """The canonical role for `raw`, or None when it is not a known role or alias."""
    return rollen.get(alias_key(str(raw))) if raw is not None else None


# libyaml reads some YAML otherwise than PyYAML's own parser, or accepts it where that parser
# reports an error: tabs, byte order marks, tags (`!`), block scalar headers (`|`, `>`), `?` in flow
# collections (found by comparing both on 1.7 million generated documents). YAML holding any of
# these characters, or the rarely used anchors, aliases, directives and reserved indicators, is
# read by PyYAML's parser alone.
_NOT_FOR_LIBYAML = re.compile(r"[\t\ufeff!&*|>?%@`]")


def load_yaml(text: str, where: str, first_line: int | None) -> tuple[Any, Problems]:
    """Parse YAML text; errors name the file line (front matter) or the sidecar line.

    libyaml (about 8x faster) reads the YAML it is given (see `_NOT_FOR_LIBYAML`) as PyYAML's own
    parser does; an error is always that parser's: its verdict, wording and line.
    """
    if not _NOT_FOR_LIBYAML.search(text):
        try:
            return yaml.load(text, Loader=_FastLoader), Problems()  # noqa: S506 - safe loader
        except yaml.YAMLError:
            pass
    return _load_yaml_reported(text, where, first_line)


def _load_yaml_reported(text: str, where: str, first_line: int | None) -> tuple[Any, Problems]:
    problems = Problems()
    try:
        return yaml.load(text, Loader=_Loader), problems  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc)
        if mark is None:
            problems.error(f"ongeldige YAML in {where} ({reason})")
        elif first_line is None:
            problems.error(f"ongeldige YAML in {where}, regel {mark.line + 1} ({reason})")
        else:
            problems.error(f"ongeldige YAML in {where} ({reason})", first_line + mark.line)
        return None, problems


def split_front_matter(lines: list[str]) -> tuple[list[str] | None, int, Problems]:
    """The front matter lines (without the `---` lines) and the index of the first body line."""
    problems = Problems()
    if not lines or lines[0].rstrip() != "---":
        return None, 0, problems
    for index in range(1, len(lines)):
        if lines[index].rstrip() == "---":
            return lines[1:index], index + 1, problems
    problems.error("front matter niet afgesloten: geen regel '---' na regel 1", 1)
    return None, len(lines), problems


def parse_front_matter(block: list[str]) -> tuple[dict[str, Any] | None, dict[str, int], Problems]:
    """The front matter as a dict, and the file line of each top-level key."""
    data, problems = load_yaml("\n".join(block), "front matter", first_line=2)
    key_lines = {}
    for offset, line in enumerate(block):
        key, colon, _ = line.partition(":")
        if colon and key and key == key.strip() and not key.startswith("#"):
            key_lines.setdefault(key, offset + 2)
    if data is None and not problems.errors:
        data = {}
    if data is not None and not isinstance(data, dict):
        problems.error("front matter is geen lijst van sleutels (sleutel: waarde)", 2)
        data = None
    return data, key_lines, problems


def read_sidecar(path: Path) -> tuple[dict[str, Any] | None, Problems]:
    """The sidecar `path` as a dict, or None with errors naming the sidecar."""
    problems = Problems()
    where = f"sidecar {path.name}"
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problems.error(f"{where} kan niet gelezen worden ({exc.strerror})")
        return None, problems
    text, decoded = decode(raw)
    for p in decoded.warnings:
        problems.warn(f"{where}: {p.message}")
    for p in decoded.errors:
        problems.error(f"{where}: {p.message}")
    if text is None:
        return None, problems
    data, parsed = load_yaml(text, where, first_line=None)
    problems.extend(parsed)
    if data is not None and not isinstance(data, dict):
        problems.error(f"{where} is geen lijst van sleutels (sleutel: waarde)")
        data = None
    return data, problems


def _datum(value: object) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return None
    if isinstance(value, dt.date):
        return value
    match = _DATE.fullmatch(str(value).strip()) if value is not None else None
    if not match:
        return None
    try:
        return dt.date(*(int(part) for part in match.groups()))
    except ValueError:
        return None


def resolve_deelnemers(
    raw: object, rollen: Mapping[str, str], line: int | None
) -> tuple[dict[str, str], Problems]:
    """`deelnemers` as name -> canonical role; unknown or missing roles become `overig`."""
    problems = Problems()
    if raw is None:
        return {}, problems
    if isinstance(raw, list) and all(isinstance(name, str | int) for name in raw):
        problems.warn(
            "deelnemers zonder rollen (lijst van namen): iedereen krijgt rol 'overig'", line
        )
        return {" ".join(str(name).split()): FALLBACK_ROLE for name in raw}, problems
    if not isinstance(raw, dict):
        problems.error("deelnemers moet een lijst 'naam: rol' zijn", line)
        return {}, problems
    deelnemers: dict[str, str] = {}
    for name, role in raw.items():
        name = " ".join(str(name).split())
        canonical = normalise_role(role, rollen)
        if canonical is None:
            reason = "geen rol" if role is None else f"onbekende rol {snippet(str(role))!r}"
            problems.warn(f"deelnemer {name}: {reason}; rol wordt 'overig'", line)
        deelnemers[name] = canonical or FALLBACK_ROLE
    return deelnemers, problems


def build_metadata(
    front: Mapping[str, Any] | None,
    sidecar: Mapping[str, Any] | None,
    stem: str,
    gemeenten: Mapping[str, str],
    rollen: Mapping[str, str],
    key_lines: Mapping[str, int] | None = None,
) -> tuple[Metadata | None, dict[str, str], Problems]:
    """Validated metadata (front matter wins key by key over the sidecar), the deelnemers even
    when the rest is invalid, and the problems found."""
    problems = Problems()
    merged = {**(sidecar or {}), **(front or {})}
    lines = {key: (key_lines or {}).get(key) if key in (front or {}) else None for key in merged}
    for key in merged:
        if key not in KEYS:
            problems.warn(
                f"onbekende sleutel {snippet(str(key))!r} in metadata; genegeerd", lines[key]
            )

    gemeente = merged.get("gemeente")
    canonical = gemeenten.get(alias_key(str(gemeente))) if gemeente is not None else None
    if gemeente is None or not str(gemeente).strip():
        problems.error("gemeente ontbreekt in metadata")
    elif canonical is None:
        problems.error(
            f"onbekende gemeente {snippet(str(gemeente))!r}; bekend zijn: "
            f"{', '.join(canonical_names(gemeenten))}",
            lines.get("gemeente"),
        )

    raw_datum = merged.get("datum")
    datum = _datum(raw_datum)
    if raw_datum is None:
        problems.error("datum ontbreekt in metadata")
    elif datum is None:
        problems.error(
            f"ongeldige datum {snippet(str(raw_datum))!r}; verwacht JJJJ-MM-DD", lines.get("datum")
        )
    elif not 1900 <= datum.year <= 2100:
        problems.error(f"datum {datum.isoformat()} ligt buiten 1900–2100", lines.get("datum"))
        datum = None

    sessie = " ".join(str(merged.get("sessie") or "").split()) or stem
    deelnemers, found = resolve_deelnemers(
        merged.get("deelnemers"), rollen, lines.get("deelnemers")
    )
    problems.extend(found)
    if problems.errors or canonical is None or datum is None:
        return None, deelnemers, problems
    meta = Metadata(
        gemeente=canonical,
        datum=datum.isoformat(),
        jaar=datum.year,
        sessie=sessie,
        deelnemers=deelnemers,
    )
    return meta, deelnemers, problems
