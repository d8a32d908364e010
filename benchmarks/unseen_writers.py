"""How the tagger does on sessions by writers it never saw (not a test; needs `dvc repro nlp`).

Trains on the annotations of every coder except the held-out ones and scores the held-out coders'
sessions at the thresholds of params.yaml. The default holds out the last three writers of the
bundled corpus (speech-recognition style, implied themes, formal register).

    python -m benchmarks.unseen_writers [--hold-out fictief-S fictief-I fictief-F]
"""

from __future__ import annotations

import argparse

import pandas as pd

from pipeline.annotations import align, read_annotations
from pipeline.codebook import load_codebook
from pipeline.evaluate import agreement_table, macro_f1
from pipeline.params import TagParams, TrainParams, paths, read_params, section
from pipeline.train import make_tagger, training_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold-out", nargs="+", default=["fictief-S", "fictief-I", "fictief-F"])
    args = parser.parse_args()
    params = read_params()
    p = paths(params)
    codebook = load_codebook(p.codebook)
    turns, tokens = pd.read_parquet(p.turns), pd.read_parquet(p.tokens)
    annotations, _ = read_annotations(p.annotations)
    held_out = annotations["coder"].isin(args.hold_out)
    X, Y, _ = training_set(
        turns, tokens, codebook, align(annotations[~held_out], turns, codebook.ids)
    )
    Xh, Yh, meta = training_set(
        turns, tokens, codebook, align(annotations[held_out], turns, codebook.ids)
    )
    tagger = make_tagger(codebook, section(TrainParams, params["train"])).fit(X, Y)
    tag_params = section(TagParams, params["tag"])
    table = agreement_table(
        Yh, tagger.predict_proba(Xh), {t: tag_params.threshold(t) for t in codebook.ids}
    )
    print(
        f"trained on {len(X)} turns, scored {len(Xh)} turns of "
        f"{meta['source'].nunique()} unseen sessions by {', '.join(args.hold_out)}"
    )
    print(f"{'theme':<16}{'precision':>10}{'recall':>8}{'F1':>8}{'kappa':>8}")
    for theme, m in table.items():
        print(
            f"{theme:<16}{m['precision']:>10.3f}{m['recall']:>8.3f}{m['f1']:>8.3f}{m['kappa']:>8.3f}"
        )
    print(f"macro-F1 {macro_f1(table):.3f}")


if __name__ == "__main__":
    main()
