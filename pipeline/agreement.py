"""Stage `agreement`: how well the automatic coding agrees with a human coding, per theme.

Automatic coding = the decided themes in `tags.parquet`, except for turns the tagger was trained
on: there the out-of-fold decision of `train` counts (a model that never saw the session), or
the agreement would only measure memory. Human coding = annotation CSVs. Per
theme: percentage agreement, Cohen's kappa and Krippendorff's alpha (nominal) over the turns
both have coded, as JSON (a DVC metric) and as a Markdown table for a method section.
"""

from __future__ import annotations

import logging
from pathlib import Path

import krippendorff
import numpy as np
import pandas as pd

from pipeline import io
from pipeline.annotations import align, read_annotations
from pipeline.codebook import load_codebook
from pipeline.params import REPO_ROOT, TagParams, paths, read_params, section
from pipeline.schemas import Tags

log = logging.getLogger("buurtlens.agreement")

ALL = "alle thema's"


def cohen_kappa(auto: np.ndarray, human: np.ndarray) -> float | None:
    """Cohen's kappa of two 0/1 codings; None when chance agreement is 1 (one value only)."""
    n = len(auto)
    if n == 0:
        return None
    observed = float(np.mean(auto == human))
    p_auto, p_human = float(np.mean(auto)), float(np.mean(human))
    expected = p_auto * p_human + (1 - p_auto) * (1 - p_human)
    if expected >= 1:
        return None
    return (observed - expected) / (1 - expected)


def krippendorff_alpha(auto: np.ndarray, human: np.ndarray) -> float | None:
    """Krippendorff's alpha (nominal, two coders); None when only one value occurs."""
    if len(auto) == 0 or len(np.unique(np.concatenate([auto, human]))) < 2:
        return None
    data = np.vstack([auto, human]).astype(float)
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


def theme_agreement(auto: np.ndarray, human: np.ndarray) -> dict:
    """Counts and agreement figures for one theme (or all themes pooled)."""
    auto, human = np.asarray(auto, dtype=int), np.asarray(human, dtype=int)

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 4)

    return {
        "n": len(auto),
        "auto": int(auto.sum()),
        "human": int(human.sum()),
        "both": int((auto & human).sum()),
        "percent_agreement": rounded(100 * float(np.mean(auto == human))) if len(auto) else None,
        "cohen_kappa": rounded(cohen_kappa(auto, human)),
        "krippendorff_alpha": rounded(krippendorff_alpha(auto, human)),
    }


def agreement(tags: pd.DataFrame, human: pd.DataFrame, themes: tuple[str, ...]) -> dict:
    """Agreement per theme over the turns that are both tagged and human-coded."""
    keys = tags[[Tags.source, Tags.turn]].drop_duplicates()
    coding = align(human, keys, themes)
    decided = tags[tags[Tags.decided]]
    auto_sets = decided.groupby([Tags.source, Tags.turn])[Tags.theme].agg(set)
    index = pd.MultiIndex.from_frame(coding.labels[["source", "turn"]])
    auto_themes = auto_sets.reindex(index).map(lambda v: v if isinstance(v, set) else set())
    result: dict = {"turns": len(coding.labels), "themes": {}}
    pooled_auto, pooled_human = [], []
    for theme in themes:
        auto = np.array([int(theme in s) for s in auto_themes], dtype=int)
        human_col = coding.labels[theme].to_numpy(dtype=int)
        result["themes"][theme] = theme_agreement(auto, human_col)
        pooled_auto.append(auto)
        pooled_human.append(human_col)
    if themes:
        result["overall"] = theme_agreement(
            np.concatenate(pooled_auto), np.concatenate(pooled_human)
        )
    result["coders"] = sorted(human["coder"].unique().tolist()) if len(human) else []
    result["human_turns_not_tagged"] = len(coding.unmatched)
    result["unknown_themes"] = coding.unknown_themes
    return result


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}".replace(".", ",")


def markdown(result: dict, labels: dict[str, str], human_source: str) -> str:
    """A table a researcher can paste into a method section (Dutch, decimal commas)."""
    lines = [
        "| Thema | n | Automatisch | Mens | Beide | Overeenstemming (%) | Cohens κ "
        "| Krippendorffs α |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [(labels.get(t, t), m) for t, m in result["themes"].items()]
    if "overall" in result:
        rows.append((f"*{ALL}*", result["overall"]))
    for label, m in rows:
        lines.append(
            f"| {label} | {m['n']} | {m['auto']} | {m['human']} | {m['both']} "
            f"| {_fmt(m['percent_agreement'], 1)} | {_fmt(m['cohen_kappa'])} "
            f"| {_fmt(m['krippendorff_alpha'])} |"
        )
    coders = ", ".join(result["coders"]) or "–"
    lines += [
        "",
        f"Overeenstemming tussen de automatische codering (buurtlens) en de menselijke codering "
        f"({human_source}; codeurs: {coders}) op {result['turns']} beurten; per thema is elke "
        "beurt gecodeerd als wel/niet. κ en α nominaal; – = niet te berekenen (één waarde). "
        "Voor beurten waarop het model getraind is, telt de beslissing uit de kruisvalidatie "
        "(een model dat die sessie niet zag).",
    ]
    return "\n".join(lines) + "\n"


def out_of_fold_tags(tags: pd.DataFrame, oof: pd.DataFrame, params: TagParams) -> pd.DataFrame:
    """`tags` with the decisions for trained-on turns replaced by their out-of-fold decisions."""
    tags = tags.copy()
    for theme in tags[Tags.theme].unique():
        column = f"score_{theme}"
        if column not in oof or oof[column].isna().all():
            continue
        scores = oof.set_index(["source", "turn"])[column]
        keys = pd.MultiIndex.from_frame(tags[[Tags.source, Tags.turn]])
        held_out = scores.reindex(keys).to_numpy()
        rows = (tags[Tags.theme] == theme).to_numpy() & ~np.isnan(held_out)
        tags.loc[rows, Tags.score] = held_out[rows]
        tags.loc[rows, Tags.decided] = held_out[rows] >= params.threshold(theme)
    return tags


def main(human: Path | None = None, out_dir: Path | None = None) -> dict:
    """Compute agreement and write the metric JSON and the Markdown table."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    params = read_params()
    p = paths(params)
    codebook = load_codebook(p.codebook)
    human_path = Path(human) if human else p.annotations
    annotations, _ = read_annotations(human_path)
    # the human-coded sessions' tags: agreement compares no other turn
    tags = Tags.validate(io.read_sources(p.tags, annotations["source"]))
    if p.tagging_oof.exists():
        tag_params = section(TagParams, params.get("tag"))
        tags = out_of_fold_tags(tags, pd.read_parquet(p.tagging_oof), tag_params)
    result = agreement(tags, annotations, codebook.ids)
    labels = {t.id: t.label for t in codebook.themes}
    try:
        shown = str(human_path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        shown = human_path.name
    table = markdown(result, labels, shown)
    metrics = p.agreement_metrics if out_dir is None else Path(out_dir) / "agreement.json"
    report = p.agreement_report if out_dir is None else Path(out_dir) / "agreement.md"
    io.write_json(result, metrics)
    io.write_text(table, report)
    overall = result.get("overall", {})
    log.info(
        "%d turns compared; overall kappa %s, alpha %s -> %s",
        result["turns"],
        overall.get("cohen_kappa"),
        overall.get("krippendorff_alpha"),
        metrics,
    )
    result["markdown"] = table
    return result


if __name__ == "__main__":
    main()
