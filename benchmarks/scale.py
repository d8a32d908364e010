"""Benchmark (not a test): buurtlens against the bare spaCy floor at growing corpus sizes.

For every size N it generates N realistic Dutch transcripts of about 2,000 words by recombining
the turns of the bundled corpus (other speakers, dates and gemeenten; names, phone numbers,
e-mail addresses and street addresses left in, so pseudonymisation has work), puts them next to
the bundled corpus (whose annotations `train` needs) and measures in one run:

  (a) floor   bare spaCy `nlp.pipe` over the same turn texts, same model and components as
              `pipeline.nlp.load_pipeline`, one process
  (a')        bare deduce over the same turns (one `deidentify` per transcript), one process:
              the de-identifier's own floor, for reading (b)
  (b) tag     `buurtlens tag DIR --out OUT` (ingest with pseudonymisation, nlp, tag)
  (c) repro   a full `dvc repro` in a copy of the repository, stage by stage (`dvc repro -s`)
  (d) update  `dvc repro tag` after adding one transcript to the up-to-date corpus (the median
              of three such additions), against the same stages (ingest, nlp, coded, train,
              tag) of (c)
  (e) peak memory (max RSS of the process and its children) of each

    .venv/bin/python -m benchmarks.scale --sizes 100 1000
    .venv/bin/python -m benchmarks.scale --sizes 100 --markdown docs/performance.md

Each measurement runs in its own child process; its peak memory comes from `os.wait4`.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
STAGES = ("ingest", "nlp", "coded", "train", "tag", "export", "agreement", "aggregate", "topics",
          "report")
PER_TRANSCRIPT = ("ingest", "nlp", "coded", "train", "tag")  # what `dvc repro tag` runs
GEMEENTEN = ("Utrecht", "Horst aan de Maas", "Wageningen", "Apeldoorn", "Voorst")
ROLES = ("bewoner", "sociaal werker", "ambtenaar", "gespreksleider", "vrijwilliger", "wethouder")
STRATEN = ("Kerkstraat", "Dorpsstraat", "Molenweg", "Stationsplein", "Beukenlaan", "Julianastraat")
WORDS_PER_TRANSCRIPT = 2000
UPDATES = 3  # (d) is measured this many times
# Copied into the repository copy; outputs, caches and the venv are not.
COPY_IGNORE = (".venv", ".git", "cache", "tmp", "processed", "__pycache__", ".pytest_cache",
               "*.egg-info", "exports", "reports", "models", "metrics", "dvc.lock", "dvc_plots")


# --------------------------------------------------------------------------- corpus generation


@dataclass
class Pool:
    """Turns and names of the bundled corpus to recombine."""

    turns: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)


def load_pool(transcripts: Path) -> Pool:
    from pipeline.ingest import reader_config
    from pipeline.params import IngestParams, paths, read_params, section
    from pipeline.readers import discover, read_transcript

    params = read_params(ROOT / "params.yaml")
    p = paths(params)
    cfg = section(IngestParams, params.get("ingest"))
    reader = reader_config(p, cfg)
    pool = Pool()
    names: set[str] = set()
    for found in discover(transcripts, cfg.ignore):
        if found.status != "transcript":
            continue
        parsed = read_transcript(found.path, reader)
        for t in parsed.turns:
            text = " ".join(t.text.split())
            if len(text.split()) >= 3:
                pool.turns.append(text)
            first = t.speaker.split()[0]
            if first.isalpha() and first[0].isupper() and len(first) > 2:
                names.add(first)
    pool.names = sorted(names)
    return pool


def _personal_data(rng: random.Random, name: str) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return f"Je kunt me bellen op 06-{rng.randrange(10**7, 10**8)}."
    if kind == 1:
        return f"Mail maar naar {name.lower()}{rng.randrange(100)}@gmail.com, dat lees ik wel."
    if kind == 2:
        letters = rng.choice("ABCDEFGHJK") + rng.choice("LMNPRSTVWX")
        postcode = f"{rng.randrange(1000, 9999)} {letters}"
        return f"Ik woon op de {rng.choice(STRATEN)} {rng.randrange(1, 200)}, {postcode}."
    other = rng.choice(("Jansen", "de Vries", "Bakker", "Visser", "Smit", "Mulder", "Bos"))
    return f"Dat heb ik ook met mevrouw {other} besproken."


def transcript_text(pool: Pool, rng: random.Random, words: int = WORDS_PER_TRANSCRIPT) -> str:
    """One transcript with front matter (docs/transcript-format.md) of about `words` words."""
    people = rng.sample(pool.names, rng.randrange(4, 8))
    roles = {name: rng.choice(ROLES) for name in people}
    roles[people[0]] = "gespreksleider"
    year, month, day = rng.choice((2024, 2025, 2026)), rng.randrange(1, 13), rng.randrange(1, 29)
    datum = f"{year}-{month:02d}-{day:02d}"
    head = {
        "gemeente": rng.choice(GEMEENTEN),
        "datum": datum,
        "sessie": f"Pitstop {rng.randrange(1, 9)} – gegenereerd",
        "deelnemers": roles,
    }
    lines = ["---", yaml.safe_dump(head, allow_unicode=True, sort_keys=False).strip(), "---"]
    n, seconds = 0, 5
    while n < words:
        speaker = rng.choice(people)
        text = rng.choice(pool.turns)
        if rng.random() < 0.06:
            text = f"{text} {_personal_data(rng, speaker)}"
        stamp = f"[{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}]"
        lines.append(f"{stamp} {speaker} ({roles[speaker]}): {text}")
        n += len(text.split())
        seconds += 3 + len(text.split()) // 3
    return "\n".join(lines) + "\n"


def generate(pool: Pool, folder: Path, n: int, seed: int, start: int = 0) -> list[Path]:
    """Write transcripts number `start` .. `start + n - 1` below `folder` (seeded per number)."""
    written = []
    for k in range(start, start + n):
        rng = random.Random(seed * 1_000_003 + k)
        path = folder / f"gegenereerd/{k // 500:03d}/sessie-{k:05d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(transcript_text(pool, rng), encoding="utf-8")
        written.append(path)
    return written


# --------------------------------------------------------------------------- measuring


@dataclass
class Run:
    seconds: float
    max_rss_mb: float
    output: str = ""


def measure(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> Run:
    """Wall time and peak RSS (the process and every child it waited for) of one command."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    output = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{output[-3000:]}")
    return Run(seconds, usage.ru_maxrss / 1024, output)


def turn_texts(folder: Path) -> list[list[str]]:
    """The turn texts of every transcript below `folder`, per transcript, as ingest reads them."""
    from pipeline.ingest import reader_config
    from pipeline.params import IngestParams, paths, read_params, section
    from pipeline.readers import discover, read_transcript

    params = read_params()
    cfg = section(IngestParams, params.get("ingest"))
    reader = reader_config(paths(params), cfg)
    return [
        [t.text for t in read_transcript(f.path, reader).turns]
        for f in discover(folder, cfg.ignore)
        if f.status == "transcript"
    ]


def floor(folder: Path) -> None:
    """Child mode (a): bare nlp.pipe over the turn texts below `folder`; prints the counts and
    the seconds of the loop."""
    from pipeline.nlp import load_pipeline
    from pipeline.params import NlpParams, read_params, section

    texts = [text for session in turn_texts(folder) for text in session]
    nlp_cfg = section(NlpParams, read_params().get("nlp"))
    nlp, _ = load_pipeline(nlp_cfg.model)
    start = time.perf_counter()
    tokens = sum(len(doc) for doc in nlp.pipe(texts, batch_size=nlp_cfg.batch_size))
    print(f"FLOOR words={sum(len(t.split()) for t in texts)} tokens={tokens} "
          f"turns={len(texts)} pipe_seconds={time.perf_counter() - start:.2f}")


def bare_deduce(folder: Path) -> None:
    """Child mode (a'): bare deduce over each transcript's turns (joined, one call per
    transcript); prints the seconds of the loop. A process of its own, so that (a)'s peak
    memory is spaCy's, not deduce's lookup tables."""
    from pipeline.pseudonymise import load_deidentifier

    sessions = turn_texts(folder)
    deidentifier = load_deidentifier()
    start = time.perf_counter()
    for session in sessions:
        deidentifier.deidentify("\n\n".join(session))
    print(f"FLOOR deduce_seconds={time.perf_counter() - start:.2f}")


def copy_repository(dest: Path) -> None:
    shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(*COPY_IGNORE), symlinks=True)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    shutil.rmtree(dest / "data/raw/transcripts")


def floor_figures(output: str) -> dict[str, float]:
    line = next(x for x in output.splitlines() if x.startswith("FLOOR "))
    return {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}


def bench_size(n: int, pool: Pool, work: Path, seed: int, keep: bool = False) -> dict:
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("VIRTUAL_ENV", None)
    repo = work / f"repo-{n}"
    env["PYTHONPATH"] = str(repo)  # the copy's code and REPO_ROOT, also for `buurtlens tag`
    copy_repository(repo)
    corpus = repo / "data/raw/transcripts"
    shutil.copytree(ROOT / "data/raw/transcripts", corpus)
    endings = (".txt", ".md", ".docx", ".vtt", ".srt")
    bundled = sum(f.suffix in endings and f.name != "README.md" for f in corpus.rglob("*"))
    generate(pool, corpus, n, seed)
    row: dict = {"n": n, "bundled": bundled}

    a = measure([sys.executable, "-m", "benchmarks.scale", "--floor", str(corpus)], ROOT, env)
    figures = floor_figures(a.output)
    row["words"] = int(figures["words"])
    # the floor is the nlp.pipe loop alone (not reading the files or loading the model)
    row["floor"] = Run(figures["pipe_seconds"], a.max_rss_mb)
    print(f"[{n}] floor {a.seconds:.1f}s {a.max_rss_mb:.0f} MB", flush=True)
    d = measure([sys.executable, "-m", "benchmarks.scale", "--deduce", str(corpus)], ROOT, env)
    row["deduce"] = Run(floor_figures(d.output)["deduce_seconds"], d.max_rss_mb)
    print(f"[{n}] bare deduce {d.seconds:.1f}s {d.max_rss_mb:.0f} MB", flush=True)

    row["stages"] = {}
    for stage in STAGES:
        r = measure([str(VENV_BIN / "dvc"), "repro", "-s", stage], repo, env)
        row["stages"][stage] = r
        print(f"[{n}] dvc repro -s {stage} {r.seconds:.1f}s {r.max_rss_mb:.0f} MB", flush=True)

    b = measure([str(VENV_BIN / "buurtlens"), "tag", str(corpus), "--out", str(work / "out")],
                repo, env)
    row["tag"] = b
    print(f"[{n}] buurtlens tag {b.seconds:.1f}s {b.max_rss_mb:.0f} MB", flush=True)

    updates = []
    for k in range(UPDATES):  # one new transcript each time; the median counts
        generate(pool, corpus, 1, seed, start=n + k)
        d = measure([str(VENV_BIN / "dvc"), "repro", "tag"], repo, env)
        updates.append(d)
        print(f"[{n}] dvc repro tag (+1 transcript) {d.seconds:.1f}s {d.max_rss_mb:.0f} MB",
              flush=True)
    row["update"] = sorted(updates, key=lambda r: r.seconds)[len(updates) // 2]
    if not keep:  # with --keep the copy stays, to measure its stages again
        shutil.rmtree(repo, ignore_errors=True)
    return row


# --------------------------------------------------------------------------- reporting


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = next(x for x in Path("/proc/meminfo").read_text().splitlines()
                   if x.startswith("MemTotal"))
        mem_gb = f"{int(mem.split()[1]) / 2**20:.0f} GB RAM"
    except (OSError, StopIteration):
        mem_gb = "? GB RAM"
    import spacy

    from pipeline.nlp import load_pipeline
    from pipeline.params import NlpParams, read_params, section

    params = read_params(ROOT / "params.yaml")
    model = section(NlpParams, params.get("nlp")).model
    _, info = load_pipeline(model)
    return (f"{cpu}, {os.cpu_count()} cores, {mem_gb}, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}, spaCy {spacy.__version__}"
            f" ({info.model}{', fallback' if info.fallback else ''}: "
            f"{', '.join(info.components)}); ingest.n_process="
            f"{params['ingest'].get('n_process')}, nlp.n_process={params['nlp'].get('n_process')}")


def table(rows: list[dict]) -> str:
    def cell(r: Run, words: int | None = None) -> str:
        wps = f", {words / r.seconds:,.0f} w/s" if words else ""
        return f"{r.seconds:,.1f} s{wps}, {r.max_rss_mb:,.0f} MB"

    head = ["measure"] + [
        f"{r['n']:,} + {r['bundled']} transcripts ({r['words']:,} words)" for r in rows
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]

    def add(label: str, values: list[str]) -> None:
        lines.append("| " + " | ".join([label, *values]) + " |")

    add("(a) floor: bare `nlp.pipe`, 1 process", [cell(r["floor"], r["words"]) for r in rows])
    add("(a') bare deduce `deidentify`, 1 call per transcript, 1 process",
        [cell(r["deduce"], r["words"]) for r in rows])
    add("(b) `buurtlens tag`", [cell(r["tag"], r["words"]) for r in rows])
    add("(b)/(a)", [f"{r['tag'].seconds / r['floor'].seconds:.2f}" for r in rows])
    for stage in STAGES:
        add(f"(c) `dvc repro -s {stage}`", [cell(r["stages"][stage]) for r in rows])
    add("(c) full `dvc repro`, sum",
        [f"{sum(s.seconds for s in r['stages'].values()):,.1f} s" for r in rows])
    add("(c) " + " + ".join(PER_TRANSCRIPT),
        [f"{sum(r['stages'][s].seconds for s in PER_TRANSCRIPT):,.1f} s" for r in rows])
    add(f"(d) `dvc repro tag` after adding 1 transcript (median of {UPDATES})",
        [cell(r["update"]) for r in rows])
    add("(d)/(c same stages)", [
        f"{r['update'].seconds / sum(r['stages'][s].seconds for s in PER_TRANSCRIPT):.1%}"
        for r in rows
    ])
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument(
        "--keep", type=Path, help="work folder to use and keep, with its repository copies"
    )
    parser.add_argument("--floor", type=Path, help=argparse.SUPPRESS)  # child modes
    parser.add_argument("--deduce", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor:
        floor(args.floor)
        return
    if args.deduce:
        bare_deduce(args.deduce)
        return
    pool = load_pool(ROOT / "data/raw/transcripts")
    print(f"pool: {len(pool.turns)} turns, {len(pool.names)} names", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="buurtlens-scale-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for n in args.sizes:
            rows.append(bench_size(n, pool, work, args.seed, keep=args.keep is not None))
    text = f"Machine: {machine()}\n\n{table(rows)}\n"
    print("\n" + text)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
