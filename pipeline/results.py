"""Print where the pipeline's results are (the last line of `make run`)."""

from __future__ import annotations

import json

from pipeline.params import REPO_ROOT, paths, read_params


def summary() -> str:
    """A short Dutch/English summary of the outputs that exist."""
    p = paths(read_params())
    lines = ["buurtlens: results"]
    if p.ingest_report.exists():
        t = json.loads(p.ingest_report.read_text(encoding="utf-8"))["totals"]
        lines.append(
            f"  ingest: {t['read']} of {t['files']} files read, {t['rejected']} rejected, "
            f"{t['turns']} turns  -> {p.ingest_report.relative_to(REPO_ROOT)}"
        )
    for label, path in (
        ("turns", p.turns),
        ("tokens", p.tokens),
        ("sentences", p.sentences),
        ("nlp model", p.nlp_meta),
    ):
        if path.exists():
            lines.append(f"  {label:<10} {path.relative_to(REPO_ROOT)}")
    return "\n".join(lines)


def main() -> None:
    print(summary())


if __name__ == "__main__":
    main()
