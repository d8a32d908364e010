"""Stage `ingest`: read, validate and pseudonymise every transcript into one table of turns.

Every file found below the transcripts folder gets one entry in the ingestion report, with its
status (read / skipped / rejected), its turn count and every error and warning with its line.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from bisect import bisect_right
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from tqdm import tqdm

from pipeline import io, pseudonymise, schemas
from pipeline.cache import SourceCache, digest
from pipeline.cache import salt as cache_salt_of
from pipeline.parallel import ForkedChild, can_fork, fork_pool
from pipeline.params import IngestParams, Paths, paths, read_params, section
from pipeline.readers import (
    Found,
    ParsedTranscript,
    Problem,
    ReaderConfig,
    discover,
    load_reader_config,
    read_transcript,
)
from pipeline.schemas import Turns

log = logging.getLogger("buurtlens.ingest")

# Files per task of a read worker: fewer, larger tasks cost less to hand out than 4 (measured),
# while a corpus of a hundred files still spreads over the workers.
READ_CHUNK = 16
# Turns per row group of the turns table (about 150 transcripts): a stage that reads it a range
# of sources at a time (`io.read_by_source`) then decodes only that range's groups.
TURNS_PER_ROW_GROUP = 10_000

# The modules and resources whose code decides a file's result (part of the cache salt).
INGEST_CODE = (
    "ingest.py",
    "readers.py",
    "decoding.py",
    "metadata.py",
    "turns.py",
    "captions.py",
    "problems.py",
    "pseudonymise.py",
    "schemas.py",
    "resources/sprekerlabels.yaml",
)


@dataclass(frozen=True)
class FileResult:
    """What ingest learned about one file: its report entry and, when read, its turns (an Arrow
    table of `Turns` columns: cache entries of Arrow tables unpickle and concatenate several
    times faster than pandas tables)."""

    entry: dict[str, Any]
    turns: pa.Table | None
    content_hash: str | None


def _problems(problems: Sequence[Problem], messages: Sequence[str]) -> list[dict[str, Any]]:
    return [{"line": p.line, "message": m} for p, m in zip(problems, messages, strict=True)]


def turn_rows(
    rel: str, parsed: ParsedTranscript, speakers: Sequence[str], texts: Sequence[str], sessie: str
) -> pa.Table:
    """The turns of one parsed transcript as `Turns` rows (texts already pseudonymised), in the
    Arrow types of an empty `Turns` table (a file without timestamps has a typed column too)."""
    meta, n = parsed.meta, len(parsed.turns)
    columns = {
        Turns.source: [rel] * n,
        Turns.turn: [t.turn for t in parsed.turns],
        Turns.line: [t.line for t in parsed.turns],
        Turns.gemeente: [meta.gemeente] * n,
        Turns.datum: [meta.datum] * n,
        Turns.jaar: [meta.jaar] * n,
        Turns.sessie: [sessie] * n,
        Turns.speaker: list(speakers),
        Turns.role: [t.role for t in parsed.turns],
        Turns.timestamp: [t.timestamp for t in parsed.turns],
        Turns.text: list(texts),
    }
    return pa.Table.from_pydict(columns, schema=turns_schema())


@functools.cache
def turns_schema() -> pa.Schema:
    return pa.Schema.from_pandas(empty_turns(), preserve_index=False)


def process_file(
    found: Found,
    reader: ReaderConfig,
    deidentifier: Any | None,
    allowlist: Any | None,
    other_names: Sequence[str] = (),
) -> FileResult:
    """Read one file, validate it and (when a de-identifier is given) pseudonymise its turns.

    With a de-identifier the report's messages are pseudonymised too, in the same session as
    the turns: a message may quote a line of the transcript.
    """
    entry: dict[str, Any] = {
        "source": found.rel,
        "status": "skipped",
        "turns": 0,
        "errors": [],
        "warnings": [],
    }
    if found.status == "skipped":
        entry["reason"] = found.reason
        return FileResult(entry, None, None)
    parsed = read_transcript(found.path, reader)
    problems = [*parsed.errors, *parsed.warnings]
    if parsed.sidecar:
        entry["sidecar"] = parsed.sidecar
    status = "rejected" if parsed.errors else "read"
    turns = parsed.turns if status == "read" else ()
    if status == "read":
        entry.update(turns=len(turns), gemeente=parsed.meta.gemeente, datum=parsed.meta.datum)
    frame = None
    messages = [p.message for p in problems]
    if deidentifier is not None:
        labels = [t.speaker for t in turns]
        deelnemers = list(parsed.meta.deelnemers) if parsed.meta else []
        sessie = [parsed.meta.sessie] if status == "read" else []
        texts, speakers = pseudonymise.pseudonymise_session(
            [*sessie, *(t.text for t in turns), *messages],
            labels,
            list(dict.fromkeys([*labels, *deelnemers])),
            deidentifier=deidentifier,
            allowlist=allowlist,
            other_names=other_names,
        )
        messages = texts[len(texts) - len(messages) :]
        if status == "read":
            frame = turn_rows(found.rel, parsed, speakers, texts[1 : 1 + len(turns)], texts[0])
    n_errors = len(parsed.errors)
    entry.update(
        status=status,
        errors=_problems(problems[:n_errors], messages[:n_errors]),
        warnings=_problems(problems[n_errors:], messages[n_errors:]),
    )
    return FileResult(entry, frame, parsed.content_hash)


def flag_duplicates(results: Iterable[FileResult]) -> Iterator[FileResult]:
    """Skip a transcript whose content equals an earlier one, saying which one it repeats."""
    first_seen: dict[str, str] = {}
    for res in results:
        if res.content_hash is None or res.entry["status"] != "read":
            yield res
            continue
        original = first_seen.setdefault(res.content_hash, res.entry["source"])
        if original == res.entry["source"]:
            yield res
            continue
        entry = {
            **res.entry,
            "status": "skipped",
            "turns": 0,
            "reason": f"duplicaat van {original} (zelfde inhoud)",
        }
        entry["warnings"] = [
            *res.entry["warnings"],
            {"line": None, "message": f"zelfde inhoud als {original}; niet dubbel geteld"},
        ]
        yield FileResult(entry, None, res.content_hash)


def build_report(results: Sequence[FileResult]) -> dict[str, Any]:
    """The ingestion report: one entry per file found, plus totals that add up."""
    files = [r.entry for r in results]
    totals = {
        "files": len(files),
        **{s: sum(f["status"] == s for f in files) for s in ("read", "skipped", "rejected")},
        "turns": sum(f["turns"] for f in files),
        "errors": sum(len(f["errors"]) for f in files),
        "warnings": sum(len(f["warnings"]) for f in files),
        "duplicates": sum("duplicaat" in (f.get("reason") or "") for f in files),
    }
    return {"files": files, "totals": totals}


@dataclass(frozen=True)
class ReadSummary:
    """What the cache key of a file needs from reading it: the participant names it adds to the
    corpus (`participant_names`) and the distinct words of its `haystack`. A read worker sends
    this back, not the parsed transcript: pickling that cost more than reading in one process."""

    names: tuple[str, ...]
    words: str


def summarise(parsed: ParsedTranscript) -> ReadSummary:
    return ReadSummary(tuple(participant_names(parsed)), distinct_words(haystack(parsed)))


_WORKER: dict[str, Any] = {}


def _read_in_worker(found: Found) -> ReadSummary | None:
    if found.status == "skipped":
        return None
    return summarise(read_transcript(found.path, _WORKER["reader"]))


def _process_in_worker(found: Found) -> FileResult:
    return process_file(
        found,
        _WORKER["reader"],
        _WORKER["deidentifier"],
        _WORKER["allowlist"],
        _WORKER["other_names"],
    )


def participant_names(transcript: ParsedTranscript) -> list[str]:
    """The speaker labels and `deelnemers` names of a transcript, each once; none if rejected."""
    if transcript.errors:
        return []
    speakers = (t.speaker for t in transcript.turns)
    return list(dict.fromkeys([*speakers, *transcript.meta.deelnemers]))


def corpus_names(per_file: Iterable[Iterable[str]]) -> list[str]:
    """Every participant name of the corpus (`participant_names` per file), in first-seen order:
    a participant of one session who is mentioned in another is a person there too (matched
    with capitals only)."""
    return list(dict.fromkeys(name for names in per_file for name in names))


def _mapped(
    work: Callable[[Any], Any], items: Sequence[Any], chunksize: int, desc: str, n_process: int
) -> Iterator[Any]:
    """`work` over `items` in order, over `n_process` forked workers, with a progress bar."""
    progress = dict(total=len(items), desc=desc, unit="file", disable=None, mininterval=2)
    # Forked workers share what this process has loaded (the de-identifier takes seconds).
    with fork_pool(n_process if len(items) > 1 else 1) as pool:
        if pool is None:
            yield from tqdm(map(work, items), **progress)
        else:
            yield from tqdm(pool.map(work, items, chunksize=chunksize), **progress)


def _pseudonymised(
    files: Sequence[Found], names: Sequence[str], n_process: int
) -> Generator[FileResult, None, None]:
    """Each file's result, pseudonymised with the corpus's `names` known, in order."""
    _WORKER["other_names"] = names
    # read again: sending every parsed transcript back from the read workers cost more
    yield from _mapped(_process_in_worker, files, 1, "pseudonymise", n_process)


class _Pseudonymiser:
    """Where the files are pseudonymised. With more than one process, in a forked child that
    loads the de-identifier (seconds) while this process reads the corpus and its cache; that
    child forks the workers, and this process never holds the de-identifier's tables (about
    1 GB), which `buurtlens tag` does not need afterwards. With one process, here."""

    def __init__(self, load: Callable[[], Any], n_process: int) -> None:
        self._load, self._n_process = load, n_process
        self._child: ForkedChild | None = None
        self._in_child = n_process > 1 and can_fork()

    def start(self) -> None:
        """Begin loading the de-identifier (in the child; here it waits for `results`)."""
        if self._in_child and self._child is None:
            self._child = ForkedChild(self._load_here)

    def _load_here(self) -> None:
        if _WORKER["deidentifier"] is None:
            _WORKER["deidentifier"] = self._load()

    def results(
        self, files: Sequence[Found], names: Sequence[str]
    ) -> Generator[FileResult, None, None]:
        """Each file's result, in order (`_pseudonymised`)."""
        n_files = sum(f.status != "skipped" for f in files)
        log.info("pseudonymising %d file(s) not in the cache", n_files)
        if not self._in_child:
            self._load_here()
            return _pseudonymised(files, names, self._n_process)
        self.start()
        return self._child.run(_pseudonymised, files, names, self._n_process)

    def one(self, file: Found, names: Sequence[str]) -> FileResult:
        """One file's result, here (for the rare cache entry that turns out unreadable)."""
        self._load_here()
        _WORKER["other_names"] = names
        return _process_in_worker(file)

    def close(self) -> None:
        if self._child is not None:
            self._child.close()
        # the tables are not kept past the run: `buurtlens tag` goes on in this process
        _WORKER.update(deidentifier=None, other_names=())


def process_all(
    found: Sequence[Found],
    reader: ReaderConfig,
    deidentifier: Callable[[], Any] | None,
    allowlist: Any | None,
    n_process: int = 1,
    cache: SourceCache | None = None,
    read_cache: SourceCache | None = None,
) -> Iterator[FileResult]:
    """Read every file, then pseudonymise each with the whole corpus's names known, over
    `n_process` processes, and yield the results one by one in file order. A file whose `cache`
    entry matches is not pseudonymised again (see `file_key`), and its entry is read only when
    its turn comes; a file whose `read_cache` entry matches is not read again for its names and
    words (`ReadSummary`). `deidentifier` loads the de-identifier: it is called once, and only
    when some file is not in the cache, or some file is new to `read_cache` (then it starts
    loading at once, see `_Pseudonymiser`); None: read and validate only."""
    if cache is None or deidentifier is None:  # entries hold pseudonymised results only
        cache = SourceCache(None)
    _WORKER.update(reader=reader, deidentifier=None, allowlist=allowlist, other_names=())
    if deidentifier is None:
        read_cache = None  # validating only: nothing to reuse
        pseudonymiser = None
    else:
        pseudonymiser = _Pseudonymiser(deidentifier, n_process)
    computed: Generator[FileResult, None, None] | None = None
    try:
        contents = [content_digest(f) if f.status != "skipped" else None for f in found]
        if pseudonymiser is not None and any_unread(found, contents, read_cache):
            pseudonymiser.start()  # a new or changed file: its result cannot be in the cache
        read = read_summaries(
            found,
            contents,
            read_cache,
            lambda todo: list(_mapped(_read_in_worker, todo, READ_CHUNK, "read", n_process)),
        )
        summaries = [r for r in read if r is not None]
        names = corpus_names(r.names for r in summaries) if pseudonymiser is not None else []
        present = names_present([r.words if r is not None else "" for r in read], names)
        keys = [
            file_key(cache, f, content, here) if r is not None else None
            for f, content, r, here in zip(found, contents, read, present, strict=True)
        ]
        todo = [i for i, k in enumerate(keys) if k is None or not cache.has(k)]
        files = [found[i] for i in todo]
        if pseudonymiser is not None and any(keys[i] is not None for i in todo):
            computed = pseudonymiser.results(files, names)
        else:  # skipped files, or validating only
            computed = _pseudonymised(files, names, n_process)
        todo_set = set(todo)
        for i, key in enumerate(keys):
            if i in todo_set:
                result = next(computed)
            else:
                # entries are plain tuples: a class pickled by `python -m pipeline.ingest` lives
                # in __main__
                entry = cache.get(key)
                if entry is not None:
                    yield FileResult(*entry)
                    continue
                result = pseudonymiser.one(found[i], names)  # its entry was unreadable
            if key is not None:
                cache.put(key, (result.entry, result.turns, result.content_hash))
            yield result
    finally:
        if computed is not None:
            computed.close()
        if pseudonymiser is not None:
            pseudonymiser.close()


def haystack(parsed: ParsedTranscript) -> str:
    """Everything of a file that is pseudonymised: its session name, turns and messages."""
    meta = parsed.meta
    return "\n".join(
        [
            meta.sessie if meta is not None else "",
            *(t.text for t in parsed.turns),
            *(p.message for p in (*parsed.errors, *parsed.warnings)),
        ]
    )


def distinct_words(text: str) -> str:
    """The distinct whitespace-separated chunks of `text`, space-separated, in no fixed order:
    `names_present` finds the same names in it as in `text` (it looks at the chunks only)."""
    return " ".join(set(text.split()))


def names_present(texts: Sequence[str], names: Sequence[str]) -> list[list[str]]:
    """Per text, the searchable `names` whose first word occurs in it (as a substring), sorted.

    Same as testing `first in text` for every name and text, which cost seconds at a thousand
    transcripts: a first word holds no whitespace, so it occurs in a text iff it occurs in one of
    the text's whitespace-separated chunks, and the corpus has far fewer distinct chunks than
    texts times names. Each first word is searched once in all distinct chunks joined.
    """
    by_first: dict[str, list[str]] = {}
    for name in names:
        if pseudonymise.is_searchable_name(name):
            by_first.setdefault(name.split()[0], []).append(name)
    chunks_of = [text.split() for text in texts]
    vocabulary = sorted(set().union(*chunks_of)) if by_first else []
    joined = "\n".join(vocabulary)
    ends, end = [], -1
    for chunk in vocabulary:
        end += len(chunk) + 1
        ends.append(end)  # the position of the separator after the chunk
    firsts_in: dict[str, set[str]] = {}
    for first in by_first:
        at = joined.find(first)
        while at != -1:
            k = bisect_right(ends, at)
            firsts_in.setdefault(vocabulary[k], set()).add(first)
            at = joined.find(first, ends[k] + 1)  # the next chunk on
    hits = set(firsts_in)  # few: intersecting each text's chunks with them is one C loop
    found = [
        {f for chunk in hits.intersection(chunks) for f in firsts_in[chunk]} for chunks in chunks_of
    ]
    return [sorted(n for first in firsts for n in by_first[first]) for firsts in found]


def content_digest(found: Found) -> str:
    """A digest of a file's bytes and its sidecar's."""
    sidecar = found.path.with_name(found.path.name + ".yaml")
    return digest(found.path.read_bytes(), sidecar.read_bytes() if sidecar.is_file() else b"")


def any_unread(
    found: Sequence[Found], contents: Sequence[str | None], read_cache: SourceCache | None
) -> bool:
    """Whether some file (`contents`: its `content_digest`) has no `read_cache` entry."""
    if read_cache is None:
        return True
    return any(
        c is not None and not read_cache.has(read_cache.key(f.rel, c))
        for f, c in zip(found, contents, strict=True)
    )


def read_summaries(
    found: Sequence[Found],
    contents: Sequence[str | None],
    read_cache: SourceCache | None,
    read: Callable[[list[Found]], list[ReadSummary | None]],
) -> list[ReadSummary | None]:
    """Each file's `ReadSummary` (None for a skipped file): from `read_cache` when its path and
    `contents` (`content_digest`) have an entry there, else from `read`, which reads the files
    left over (and the entries are stored). The summaries hold participant names and the
    files' words, so the cache lives next to the transcripts (`paths.raw_cache`)."""
    if read_cache is None:
        return read(list(found))
    keys = [read_cache.key(f.rel, c) if c is not None else None for f, c in zip(found, contents)]
    # entries are plain tuples: a class pickled by `python -m pipeline.ingest` lives in __main__
    cached = [read_cache.get(k) if k is not None else None for k in keys]
    summaries = [ReadSummary(*entry) if entry is not None else None for entry in cached]
    todo = [i for i, (k, s) in enumerate(zip(keys, summaries)) if k is not None and s is None]
    for i, summary in zip(todo, read([found[i] for i in todo]), strict=True):
        summaries[i] = summary
        if summary is not None:
            read_cache.put(keys[i], (summary.names, summary.words))
    return summaries


def file_key(cache: SourceCache, found: Found, content: str, present: Sequence[str]) -> str:
    """What decides one file's result besides the run's salt: its path, its bytes and its
    sidecar's (`content_digest`), and the corpus names that can occur in it (`names_present`: a
    participant of another session who is mentioned here is pseudonymised here; a superset by
    first word is enough; sorted, so the corpus's file order does not change a file's result)."""
    return cache.key(found.rel, content, json.dumps(list(present), ensure_ascii=False))


def cache_salt(p: Paths, cfg: IngestParams) -> str:
    """What every file's result depends on besides the file: the code, the configuration and the
    params that change a result (`n_process`, `strict` and `ignore` change none)."""
    code = [*INGEST_CODE, p.gemeenten, p.rollen, p.allowlist]
    settings = {"max_file_mb": cfg.max_file_mb, "max_line_chars": cfg.max_line_chars}
    return cache_salt_of("ingest", code, settings, packages=("deduce", "docdeid", "python-docx"))


def check(root: Path, reader: ReaderConfig, ignore: Iterable[str]) -> dict[str, Any]:
    """Validate every transcript below `root` without pseudonymising or writing anything."""
    found = discover(root, ignore)
    return build_report(list(flag_duplicates(process_file(f, reader, None, None) for f in found)))


def ingested(
    root: Path,
    reader: ReaderConfig,
    cfg: IngestParams,
    deidentifier: Callable[[], Any],
    allowlist: Any,
    cache: SourceCache | None = None,
    read_cache: SourceCache | None = None,
) -> Iterator[FileResult]:
    """Every file below `root`, pseudonymised with the de-identifier that `deidentifier` loads
    (only when some file is not in `cache`; `process_all`) and duplicates flagged, one file at a
    time in file order."""
    found = discover(root, cfg.ignore)
    return flag_duplicates(
        process_all(found, reader, deidentifier, allowlist, cfg.n_process, cache, read_cache)
    )


def collect(results: Iterable[FileResult]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """All turns of `results` (`ingested`) in one table, and the ingestion report."""
    results = list(results)
    tables = [r.turns for r in results if r.turns is not None]
    turns = pa.concat_tables(tables).to_pandas() if tables else empty_turns()
    return Turns.validate(turns), build_report(results)


def empty_turns() -> pd.DataFrame:
    """A `Turns` table with no rows."""
    return schemas.empty(Turns)


def reader_config(p: Paths, cfg: IngestParams) -> ReaderConfig:
    return load_reader_config(p.gemeenten, p.rollen, cfg.max_file_mb, cfg.max_line_chars)


def run(p: Paths, cfg: IngestParams) -> dict[str, Any]:
    """Ingest `p.transcripts` and write the turns table and report; returns the report.

    The turns are written file by file as they come, so the corpus's turns are never in memory
    at once; the table is moved into place only if `finish` accepts the run (strict mode)."""
    reader = reader_config(p, cfg)
    allowlist = pseudonymise.load_allowlist(p.allowlist, p.gemeenten)
    salt = cache_salt(p, cfg)
    cache = SourceCache(p.cache / "ingest", salt)
    read_cache = SourceCache(p.raw_cache / "ingest", salt)
    load = pseudonymise.load_deidentifier
    results = []
    with io.parquet_row_groups(p.turns, empty_turns(), TURNS_PER_ROW_GROUP, Turns.validate) as add:
        for result in ingested(p.transcripts, reader, cfg, load, allowlist, cache, read_cache):
            if result.turns is not None:
                add(result.turns)
            results.append(FileResult(result.entry, None, result.content_hash))
        log.info("cache: %s; %d old entries removed", cache.summary(), cache.prune())
        log.info("read cache: %s; %d old entries removed", read_cache.summary(), read_cache.prune())
        return finish(build_report(results), p, cfg)


def finish(report: dict[str, Any], p: Paths, cfg: IngestParams) -> dict[str, Any]:
    """Write and log the report; in strict mode, fail when a file was rejected."""
    io.write_json(report, p.ingest_report)
    totals = report["totals"]
    log.info(
        "%d files: %d read, %d skipped, %d rejected; %d turns",
        totals["files"],
        totals["read"],
        totals["skipped"],
        totals["rejected"],
        totals["turns"],
    )
    for entry in report["files"]:
        for err in entry["errors"]:
            log.warning("%s:%s: %s", entry["source"], err["line"] or "-", err["message"])
    if cfg.strict and totals["rejected"]:
        raise SystemExit(
            f"ingest: {totals['rejected']} file(s) rejected and strict mode is on; "
            f"see {p.ingest_report}"
        )
    return report


def main(strict: bool | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    params = read_params()
    cfg = section(IngestParams, params.get("ingest"))
    if strict is not None:
        cfg = IngestParams(**{**cfg.__dict__, "strict": strict})
    run(paths(params), cfg)


if __name__ == "__main__":
    main()
