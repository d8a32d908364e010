"""Stage `tag`: score every turn for every codebook theme, decide, and keep the evidence."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import joblib
import pandas as pd

from pipeline import io, pseudonymise
from pipeline.classifier import ThemeTagger
from pipeline.codebook import Codebook, load_codebook
from pipeline.features import turn_features
from pipeline.params import TagParams, paths, read_params, section
from pipeline.rules import CueMatcher, find_hits
from pipeline.schemas import Evidence, Tags, Tokens, Turns

log = logging.getLogger("buurtlens.tag")

THEMES_SEPARATOR = ";"


@dataclass(frozen=True)
class TrainedModel:
    """What `train` saves: the fitted tagger and the codebook it was trained with."""

    tagger: ThemeTagger
    codebook_digest: str
    codebook_version: str


def save_model(model: TrainedModel, path: Path) -> None:
    with io.atomic_path(path) as tmp:
        joblib.dump(model, tmp)


def load_model(path: Path) -> TrainedModel:
    return joblib.load(path)


def compute_features(
    turns: pd.DataFrame, tokens: pd.DataFrame, codebook: Codebook
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cue hits for every turn, and the model inputs built from tokens and hits."""
    matcher = CueMatcher(codebook)
    texts = dict(zip(zip(turns[Turns.source], turns[Turns.turn]), turns[Turns.text], strict=True))
    hits = find_hits(tokens, matcher, texts)
    return turn_features(turns, tokens, hits), hits


def decide(
    features: pd.DataFrame, hits: pd.DataFrame, tagger: ThemeTagger, params: TagParams
) -> pd.DataFrame:
    """The `Tags` table: score, decision and number of cue hits per turn and theme."""
    scores = tagger.predict_proba(features)
    hit_counts = hits.groupby(["source", "turn", "theme"]).size()
    frames = []
    for theme in tagger.themes:
        keys = pd.MultiIndex.from_arrays(
            [features["source"], features["turn"], [theme] * len(features)]
        )
        frames.append(
            pd.DataFrame(
                {
                    "source": features["source"].to_numpy(),
                    "turn": features["turn"].to_numpy(),
                    "theme": theme,
                    "score": scores[theme].clip(0, 1).round(6).to_numpy(),
                    "decided": (scores[theme] >= params.threshold(theme)).to_numpy(),
                    "rule_hits": hit_counts.reindex(keys, fill_value=0).to_numpy().astype(int),
                }
            )
        )
    tags = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=list(Tags.to_schema().columns))
    )
    return Tags.validate(tags.sort_values(["source", "turn", "theme"], ignore_index=True))


def _locate(lemmas: list[str], ngram: list[str]) -> int | None:
    n = len(ngram)
    return next((k for k in range(len(lemmas) - n + 1) if lemmas[k : k + n] == ngram), None)


def evidence(
    tags: pd.DataFrame,
    features: pd.DataFrame,
    hits: pd.DataFrame,
    tokens: pd.DataFrame,
    texts: dict[tuple[str, int], str],
    tagger: ThemeTagger,
    per_theme: int,
) -> pd.DataFrame:
    """Evidence for every decided (turn, theme): its codebook cues and its strongest learned
    words or phrases, each with offsets into the turn text."""
    decided = tags[tags["decided"]]
    rows: list[tuple] = []
    decided_keys = set(zip(decided["source"], decided["turn"], decided["theme"]))
    for hit in hits.itertuples(index=False):
        if (hit.source, hit.turn, hit.theme) in decided_keys:
            rows.append(
                (
                    hit.source,
                    hit.turn,
                    hit.theme,
                    "regel",
                    hit.cue,
                    hit.start,
                    hit.end,
                    hit.text,
                    1.0,
                )
            )
    words = tokens[~tokens[Tokens.is_punct]]
    lemma = words[Tokens.lemma].where(~words[Tokens.is_placeholder], "persoon")
    by_turn = {
        key: (list(g_lemma), list(g_start), list(g_end))
        for key, g_lemma, g_start, g_end in (
            (k, g["lemma"], g["start"], g["end"])
            for k, g in words.assign(lemma=lemma).groupby([Tokens.source, Tokens.turn], sort=False)
        )
    }
    index = {key: pos for pos, key in enumerate(zip(features["source"], features["turn"]))}
    for theme in tagger.themes:
        if theme not in tagger.models_:
            continue
        chosen = decided[decided["theme"] == theme]
        if chosen.empty:
            continue
        rows_at = [index[(s, t)] for s, t in zip(chosen["source"], chosen["turn"])]
        contrib, names = tagger.contributions(features.iloc[rows_at], theme)
        for r, (source, turn) in enumerate(zip(chosen["source"], chosen["turn"])):
            row = contrib.getrow(r)
            order = row.data.argsort()[::-1]
            lemmas, starts, ends = by_turn.get((source, turn), ([], [], []))
            shown = 0
            for k in order:
                if shown >= per_theme or row.data[k] <= 0:
                    break
                name = names[row.indices[k]]
                if not name.startswith("lemmas__"):
                    continue
                ngram = name.removeprefix("lemmas__").split()
                at = _locate(lemmas, ngram)
                if at is None:
                    continue
                start, end = starts[at], ends[at + len(ngram) - 1]
                rows.append(
                    (
                        source,
                        turn,
                        theme,
                        "model",
                        " ".join(ngram),
                        start,
                        end,
                        texts[(source, turn)][start:end],
                        round(float(row.data[k]), 6),
                    )
                )
                shown += 1
    columns = list(Evidence.to_schema().columns)
    frame = pd.DataFrame(rows, columns=columns)
    frame = frame.astype({"turn": "int64", "start": "int64", "end": "int64", "weight": "float64"})
    return Evidence.validate(
        frame.sort_values(["source", "turn", "theme", "kind", "start"], ignore_index=True)
    )


def tag_corpus(
    turns: pd.DataFrame,
    tokens: pd.DataFrame,
    codebook: Codebook,
    model: TrainedModel,
    params: TagParams,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tags and evidence for every turn."""
    if model.codebook_digest != codebook.digest:
        raise ValueError(
            "the trained model was made with another codebook; run `dvc repro` (stage train) first"
        )
    features, hits = compute_features(turns, tokens, codebook)
    tags = decide(features, hits, model.tagger, params)
    texts = dict(zip(zip(turns[Turns.source], turns[Turns.turn]), turns[Turns.text], strict=True))
    ev = evidence(tags, features, hits, tokens, texts, model.tagger, params.evidence_per_theme)
    return tags, ev


def wide_table(turns: pd.DataFrame, tags: pd.DataFrame, themes: tuple[str, ...]) -> pd.DataFrame:
    """One row per turn: metadata, `themes` (sorted, ';'-joined) and `score_<theme>` columns."""
    base = turns[
        [
            Turns.source,
            Turns.turn,
            Turns.gemeente,
            Turns.datum,
            Turns.jaar,
            Turns.sessie,
            Turns.speaker,
            Turns.role,
            Turns.timestamp,
        ]
    ].copy()
    keyed = tags.set_index(["source", "turn", "theme"])
    decided = (
        tags[tags["decided"]]
        .groupby(["source", "turn"])["theme"]
        .agg(lambda ts: THEMES_SEPARATOR.join(sorted(ts)))
    )
    keys = pd.MultiIndex.from_frame(base[[Turns.source, Turns.turn]])
    base["themes"] = decided.reindex(keys, fill_value="").to_numpy()
    for theme in themes:
        score = keyed["score"].xs(theme, level="theme") if len(keyed) else pd.Series(dtype=float)
        base[f"score_{theme}"] = score.reindex(keys).round(4).to_numpy()
    base["text"] = turns[Turns.text].to_numpy()
    return base


def tag_folder(directory: Path, params: dict) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Ingest, analyse and tag every transcript below `directory`, in memory.

    Uses the repository's codebook and trained model; when the model is missing or was trained
    with another codebook, trains one in memory from the repository's annotations.
    Returns the wide turns table, the evidence and the ingestion report.
    """
    from pipeline import ingest, nlp, train  # the stages this command chains
    from pipeline.lemmas import LemmaBackoff
    from pipeline.params import IngestParams, NlpParams, TrainParams

    p = paths(params)
    ingest_cfg = section(IngestParams, params.get("ingest"))
    nlp_cfg = section(NlpParams, params.get("nlp"))
    codebook = load_codebook(p.codebook)
    deidentifier = pseudonymise.load_deidentifier()
    allowlist = pseudonymise.load_allowlist(p.allowlist, p.gemeenten)
    reader = ingest.reader_config(p, ingest_cfg)
    turns, report = ingest.ingest(directory, reader, ingest_cfg, deidentifier, allowlist)
    pipe, info = nlp.load_pipeline(nlp_cfg.model)
    backoff = LemmaBackoff() if info.fallback else None

    def analysed(frame: pd.DataFrame) -> pd.DataFrame:
        chunks = nlp.analyse(frame, pipe, backoff=backoff, batch_size=nlp_cfg.batch_size)
        return pd.concat([tokens for tokens, _ in chunks], ignore_index=True)

    model = load_model(p.model) if p.model.exists() else None
    if model is None or model.codebook_digest != codebook.digest:
        log.warning("no trained model for this codebook at %s; training one in memory from %s",
                    p.model, p.annotations)
        repo_turns, _ = ingest.ingest(p.transcripts, reader, ingest_cfg, deidentifier, allowlist)
        model = train.fit_model(repo_turns, analysed(repo_turns), codebook, p.annotations,
                                section(TrainParams, params.get("train")))
    tag_cfg = section(TagParams, params.get("tag"))
    tags, ev = tag_corpus(turns, analysed(turns), codebook, model, tag_cfg)
    return wide_table(turns, tags, codebook.ids), ev, report


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    params = read_params()
    p = paths(params)
    cfg = section(TagParams, params.get("tag"))
    turns = Turns.validate(pd.read_parquet(p.turns))
    tokens = Tokens.validate(pd.read_parquet(p.tokens))
    tags, ev = tag_corpus(turns, tokens, load_codebook(p.codebook), load_model(p.model), cfg)
    io.write_parquet(tags, p.tags)
    io.write_parquet(ev, p.evidence)
    counts = tags[tags["decided"]].groupby("theme").size().to_dict()
    log.info(
        "%d turns tagged; decided per theme: %s; %d evidence rows", len(turns), counts, len(ev)
    )


if __name__ == "__main__":
    main()
