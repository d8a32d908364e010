"""Read `params.yaml` once and hand each stage its section as a frozen dataclass."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
PARAMS_FILE = REPO_ROOT / "params.yaml"

T = TypeVar("T")


@dataclass(frozen=True)
class Paths:
    transcripts: Path
    annotations: Path
    processed: Path
    turns: Path
    ingest_report: Path
    tokens: Path
    sentences: Path
    nlp_meta: Path
    coded_turns: Path
    coded_tokens: Path
    metrics: Path
    gemeenten: Path
    rollen: Path
    allowlist: Path
    codebook: Path
    model: Path
    tagging_metrics: Path
    tagging_oof: Path
    tags: Path
    evidence: Path
    exports: Path
    agreement_metrics: Path
    agreement_report: Path
    aggregate: Path
    report: Path
    topics_per_gemeente: Path
    topics: Path
    topic_info: Path
    topics_over_time: Path
    topics_meta: Path
    cache: Path
    raw_cache: Path


@dataclass(frozen=True)
class IngestParams:
    strict: bool = False
    ignore: tuple[str, ...] = ("README.md",)
    max_file_mb: float = 20.0
    max_line_chars: int = 100_000
    n_process: int = 1


@dataclass(frozen=True)
class NlpParams:
    model: str = "nl_core_news_sm"
    batch_size: int = 256
    n_process: int = 1


@dataclass(frozen=True)
class TrainParams:
    C: float = 16.0
    min_df: int = 2
    lemma_weight: float = 1.5
    cue_weight: float = 1.0
    context_weight: float = 3.0
    session_stage: bool = True
    session_C: float = 1.0
    cv_folds: int = 5
    n_process: int = 1
    seed: int = 0


@dataclass(frozen=True)
class TagParams:
    default_threshold: float = 0.5
    thresholds: dict[str, float] = dataclasses.field(default_factory=dict)
    evidence_per_theme: int = 3
    n_process: int = 1

    def threshold(self, theme: str) -> float:
        return float(self.thresholds.get(theme, self.default_threshold))


@dataclass(frozen=True)
class ReportParams:
    year: int | None = None  # None: the latest year in the data
    quotes_per_gemeente: int = 3
    quote_min_words: int = 8  # shorter or longer turns are quoted only when nothing else is there
    quote_max_words: int = 90
    topics_per_gemeente: int = 5  # emerging topics shown per gemeente (largest first)


def read_params(path: Path = PARAMS_FILE) -> dict[str, Any]:
    """The whole `params.yaml` as a dict."""
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def section(cls: type[T], values: dict[str, Any] | None) -> T:
    """Build a params dataclass from a `params.yaml` section, rejecting unknown keys."""
    values = dict(values or {})
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"params.yaml: unknown key(s) for {cls.__name__}: {', '.join(unknown)}")
    for name, value in values.items():
        if isinstance(value, list):
            values[name] = tuple(value)
    return cls(**values)


def paths(params: dict[str, Any], root: Path = REPO_ROOT) -> Paths:
    """The `paths` section, resolved against the repository root."""
    raw = section(Paths, params["paths"])
    return Paths(**{f.name: root / getattr(raw, f.name) for f in dataclasses.fields(Paths)})
