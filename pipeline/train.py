"""Stage `train`: fit the tagger on human-coded turns; evaluate it by grouped cross-validation."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline import io
from pipeline.annotations import Coding, align, read_annotations
from pipeline.cache import SourceCache, frame_digest
from pipeline.cache import salt as cache_salt_of
from pipeline.classifier import ThemeTagger
from pipeline.codebook import Codebook, load_codebook
from pipeline.evaluate import agreement_table, best_thresholds, macro_f1, out_of_fold_scores
from pipeline.params import TagParams, TrainParams, paths, read_params, section
from pipeline.schemas import Tokens, Turns
from pipeline.session_model import SessionTagger
from pipeline.tag import TrainedModel, compute_features, save_model

log = logging.getLogger("buurtlens.train")


def make_tagger(codebook: Codebook, cfg: TrainParams) -> ThemeTagger | SessionTagger:
    turn_model = ThemeTagger(
        themes=codebook.ids,
        C=cfg.C,
        min_df=cfg.min_df,
        lemma_weight=cfg.lemma_weight,
        cue_weight=cfg.cue_weight,
        context_weight=cfg.context_weight,
        random_state=cfg.seed,
    )
    if not cfg.session_stage:
        return turn_model
    return SessionTagger(turn_model, folds=cfg.cv_folds, C=cfg.session_C, n_process=cfg.n_process)


def training_set(
    turns: pd.DataFrame, tokens: pd.DataFrame, codebook: Codebook, coding: Coding
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Model inputs X, 0/1 labels Y and the turns' metadata for every annotated turn."""
    keys = coding.labels[["source", "turn"]]
    # features of whole sessions, so that an annotated turn sees its real neighbours
    in_sessions = turns[Turns.source].isin(keys["source"])
    features, _ = compute_features(
        turns[in_sessions], tokens[tokens[Tokens.source].isin(keys["source"])], codebook
    )
    features = features.merge(keys, on=["source", "turn"], how="inner")
    annotated = features[["source", "turn"]].merge(turns, on=["source", "turn"], how="left")
    labels = features[["source", "turn"]].merge(coding.labels, on=["source", "turn"], how="left")
    return features, labels[list(codebook.ids)], annotated


def evaluate_tagger(
    X: pd.DataFrame,
    Y: pd.DataFrame,
    meta: pd.DataFrame,
    codebook: Codebook,
    train_cfg: TrainParams,
    tag_cfg: TagParams,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Grouped cross-validation: by session (the reported figures) and by municipality."""
    thresholds = {t: tag_cfg.threshold(t) for t in codebook.ids}
    coded = [t for t in codebook.ids if Y[t].sum() > 0]
    result: dict[str, Any] = {"thresholds": thresholds}
    oof = None
    for name, groups in (("by_session", meta[Turns.source]), ("by_gemeente", meta[Turns.gemeente])):
        if groups.nunique() < 2 or not coded:
            result[name] = {"skipped": "fewer than two groups or no coded themes"}
            continue
        scores = out_of_fold_scores(
            X,
            Y,
            groups.reset_index(drop=True),
            lambda: make_tagger(codebook, train_cfg),
            train_cfg.cv_folds,
        )
        table = agreement_table(Y[coded], scores[coded], thresholds)
        result[name] = {
            "folds": min(train_cfg.cv_folds, groups.nunique()),
            "themes": table,
            "macro_f1": macro_f1(table),
        }
        if oof is None:
            oof = scores
            result["suggested_thresholds"] = best_thresholds(Y[coded], scores[coded])
    oof_table = meta[[Turns.source, Turns.turn, Turns.gemeente]].reset_index(drop=True)
    if oof is not None:
        for theme in codebook.ids:
            oof_table[f"truth_{theme}"] = Y[theme].to_numpy()
            oof_table[f"score_{theme}"] = oof[theme].to_numpy()
    return result, oof_table


def fit_model(turns: pd.DataFrame, tokens: pd.DataFrame, codebook: Codebook,
              annotations_dir: Path, cfg: TrainParams) -> TrainedModel:
    """Train on every annotated turn (no evaluation): what `buurtlens tag` does without a model."""
    annotations, overridden = read_annotations(annotations_dir)
    coding = align(annotations, turns, codebook.ids, overridden)
    X, Y, _ = training_set(turns, tokens, codebook, coding)
    return TrainedModel(make_tagger(codebook, cfg).fit(X, Y), codebook.digest, codebook.version)


# The modules whose code decides the model and its evaluation (part of the cache salt).
TRAIN_CODE = (
    "train.py", "classifier.py", "session_model.py", "features.py", "rules.py", "annotations.py",
    "evaluate.py", "codebook.py", "tag.py", "schemas.py", "cpu.py",
)


def fit_and_evaluate(
    X: pd.DataFrame,
    Y: pd.DataFrame,
    meta: pd.DataFrame,
    codebook: Codebook,
    train_cfg: TrainParams,
    tag_cfg: TagParams,
    cache: SourceCache,
) -> tuple[TrainedModel, dict[str, Any], pd.DataFrame]:
    """The model fitted on all of X, its cross-validated figures and out-of-fold scores; taken
    from `cache` when the training set, codebook and params are the ones it was made from (a
    new transcript that nobody annotated changes none of them)."""
    training = {k: v for k, v in asdict(train_cfg).items() if k != "n_process"}  # same result
    key = cache.key(
        frame_digest(X), frame_digest(Y), frame_digest(meta), codebook.digest,
        json.dumps([training, {t: tag_cfg.threshold(t) for t in codebook.ids}]),
    )
    found = cache.get(key)
    if found is not None:
        log.info("training set, codebook and params unchanged: model and figures reused")
        return found
    metrics, oof = evaluate_tagger(X, Y, meta, codebook, train_cfg, tag_cfg)
    tagger = make_tagger(codebook, train_cfg).fit(X, Y)
    result = (TrainedModel(tagger, codebook.digest, codebook.version, key), metrics, oof)
    cache.put(key, result)
    return result


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    params = read_params()
    p = paths(params)
    train_cfg = section(TrainParams, params.get("train"))
    tag_cfg = section(TagParams, params.get("tag"))
    codebook = load_codebook(p.codebook)
    # the annotated sessions' rows (stage `coded`): an annotation of a session missing from
    # them matches no turn, exactly as against the whole turns table
    turns = Turns.validate(pd.read_parquet(p.coded_turns))
    tokens = Tokens.validate(pd.read_parquet(p.coded_tokens))
    annotations, overridden = read_annotations(p.annotations)
    coding = align(annotations, turns, codebook.ids, overridden)
    X, Y, meta = training_set(turns, tokens, codebook, coding)
    log.info(
        "training on %d annotated turns from %d sessions", len(X), meta[Turns.source].nunique()
    )
    salt = cache_salt_of("train", TRAIN_CODE, {}, packages=("scikit-learn",))
    cache = SourceCache(p.cache / "train", salt)
    model, metrics, oof = fit_and_evaluate(X, Y, meta, codebook, train_cfg, tag_cfg, cache)
    cache.prune()
    save_model(model, p.model)
    metrics = {
        "codebook": {"version": codebook.version, "digest": codebook.digest},
        "annotations": {
            "turns": len(X),
            "sessions": int(meta[Turns.source].nunique()),
            "positives": {t: int(Y[t].sum()) for t in codebook.ids},
            "unmatched": len(coding.unmatched),
            "unknown_themes": coding.unknown_themes,
            "overridden": coding.overridden,
        },
        **metrics,
    }
    for row in coding.unmatched[:20]:
        log.warning("annotation for %s turn %s matches no turn", row["source"], row["turn"])
    io.write_json(metrics, p.tagging_metrics)
    io.write_parquet(oof, p.tagging_oof)
    session = metrics.get("by_session", {})
    log.info("macro-F1 (grouped by session): %s", session.get("macro_f1"))


if __name__ == "__main__":
    main()
