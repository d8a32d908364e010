"""Print where the pipeline's results are (the last lines of `make run`)."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.params import REPO_ROOT, paths, read_params


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT))


def summary() -> str:
    """A short summary of the outputs that exist, with their paths."""
    p = paths(read_params())
    lines = ["buurtlens: results"]
    if p.ingest_report.exists():
        t = json.loads(p.ingest_report.read_text(encoding="utf-8"))["totals"]
        lines.append(
            f"  ingest     {t['read']} of {t['files']} files read, {t['rejected']} rejected, "
            f"{t['turns']} turns -> {_rel(p.ingest_report)}"
        )
    for label, path in (
        ("turns", p.turns),
        ("tokens", p.tokens),
        ("tags", p.tags),
        ("evidence", p.evidence),
        ("aggregate", p.aggregate),
    ):
        if path.exists():
            lines.append(f"  {label:<10} {_rel(path)}")
    if p.tagging_metrics.exists():
        m = json.loads(p.tagging_metrics.read_text(encoding="utf-8")).get("by_session", {})
        lines.append(
            f"  tagger     macro-F1 {m.get('macro_f1')} (grouped by session) -> "
            f"{_rel(p.tagging_metrics)}"
        )
    for label, folder, pattern in (("report", p.report, "*.html"), ("export", p.exports, "*")):
        for path in sorted(folder.glob(pattern)) if folder.exists() else []:
            lines.append(f"  {label:<10} {_rel(path)}")
    if p.topic_info.exists():
        lines.append(f"  topics     {_rel(p.topic_info)}")
    return "\n".join(lines)


def main() -> None:
    print(summary())


if __name__ == "__main__":
    main()
