"""The per-source cache: keys, entries, pruning, and that each per-transcript stage gives the same
result with and without it while redoing only what changed."""

from __future__ import annotations

import dataclasses
import os
import pickle
from pathlib import Path

import pandas as pd
import pytest

from pipeline import cache, ingest, nlp, tag
from pipeline.cache import SourceCache
from pipeline.codebook import load_codebook
from pipeline.lemmas import LemmaBackoff
from pipeline.parallel import can_fork
from pipeline.params import IngestParams, TagParams, TrainParams, read_params, section
from pipeline.schemas import Turns
from pipeline.train import fit_and_evaluate, make_tagger
from tests.conftest import make_turns
from tests.test_ingest import copy_corpus


def test_entries_round_trip_and_prune(tmp_path):
    store = SourceCache(tmp_path / "c", salt="s")
    key = store.key("a", b"bytes")
    assert not store.has(key) and store.get(key) is None
    store.put(key, {"x": pd.DataFrame({"a": [1, 2]})})
    again = SourceCache(tmp_path / "c", salt="s")
    assert again.has(key) and again.get(key)["x"]["a"].tolist() == [1, 2]
    assert again.summary() == "1 reused, 0 computed"
    assert again.prune() == 0  # the entry was used
    assert SourceCache(tmp_path / "c", salt="s").prune() == 1  # not used in that run: removed
    assert not list((tmp_path / "c").rglob("*.pkl"))


def test_key_depends_on_salt_and_every_part(tmp_path):
    a = SourceCache(tmp_path, salt="code v1")
    b = SourceCache(tmp_path, salt="code v2")
    assert a.key("x", "y") != b.key("x", "y")
    assert a.key("x", "y") != a.key("xy", "")  # parts are length-prefixed
    assert a.key("x", "y") == SourceCache(None, salt="code v1").key("x", "y")


def test_unreadable_entry_counts_as_missing(tmp_path):
    store = SourceCache(tmp_path, salt="s")
    key = store.key("a")
    store.put(key, [1, 2, 3])
    path = next(tmp_path.rglob("*.pkl"))
    path.write_bytes(path.read_bytes()[:5])  # cut off, as after a crash
    assert SourceCache(tmp_path, salt="s").get(key) is None


def test_memory_cache_stores_nothing_on_disk(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = SourceCache(None)
    store.put("k", 1)
    assert store.get("k") == 1 and store.prune() == 0
    assert not list(tmp_path.iterdir())


def test_frame_digest_sees_values_dtypes_and_order():
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    base = cache.frame_digest(frame)
    assert cache.frame_digest(frame.copy()) == base
    assert cache.frame_digest(frame.assign(b=["x", "z"])) != base
    assert cache.frame_digest(frame.astype({"a": "float64"})) != base
    assert cache.frame_digest(frame.iloc[::-1]) != base


def test_digested_groups_digest_each_group_as_frame_digest_does():
    frame = pd.DataFrame({"source": ["b", "b", "a", "c"], "v": range(4), "t": list("wxyz")})
    groups = cache.digested_groups(frame, "source")
    assert [(s, d) for s, _, d in groups] == [
        (s, cache.frame_digest(rows)) for s, rows in cache.contiguous_groups(frame, "source")
    ]
    some = cache.digested_groups(frame, "source", ["t"])
    assert [d for *_, d in some] == [cache.frame_digest(rows[["t"]]) for _, rows, _ in groups]
    assert cache.digested_groups(frame.iloc[:0], "source") == []


def test_contiguous_groups_keep_table_order():
    frame = pd.DataFrame({"source": ["b", "b", "a", "c", "c"], "v": range(5)})
    groups = cache.contiguous_groups(frame, "source")
    assert [(s, rows["v"].tolist()) for s, rows in groups] == [
        ("b", [0, 1]), ("a", [2]), ("c", [3, 4])
    ]
    assert cache.contiguous_groups(frame.iloc[:0], "source") == []


def test_salt_changes_with_code_settings_and_files(tmp_path):
    code = tmp_path / "module.py"
    code.write_text("x = 1\n")
    first = cache.salt("stage", [code], {"p": 1})
    assert cache.salt("stage", [code], {"p": 1}) == first
    assert cache.salt("stage", [code], {"p": 2}) != first
    assert cache.salt("other", [code], {"p": 1}) != first
    code.write_text("x = 2\n")
    assert cache.salt("stage", [code], {"p": 1}) != first


# --------------------------------------------------------------------------- ingest


@pytest.fixture
def ingest_setup(repo_paths, deidentifier, allowlist):
    cfg = section(IngestParams, read_params().get("ingest"))
    cfg = IngestParams(**{**cfg.__dict__, "n_process": 1})
    return cfg, ingest.reader_config(repo_paths, cfg), lambda: deidentifier, allowlist


def same_without_and_with_cache(run, folder):
    """`run` (turns, report, what else it tells) without a cache, then twice with one in
    `folder`: the turns and reports must be equal. Returns the three runs."""
    plain, cold, warm = run(None), run(folder), run(folder)
    pd.testing.assert_frame_equal(cold[0], plain[0])
    pd.testing.assert_frame_equal(warm[0], plain[0])
    assert cold[1] == warm[1] == plain[1]
    return plain, cold, warm


def test_ingest_with_cache_equals_without_and_redoes_only_changes(tmp_path, ingest_setup):
    cfg, reader, deidentifier, allowlist = ingest_setup
    corpus = copy_corpus(tmp_path / "corpus")
    salt = ingest.cache_salt_of("ingest", ingest.INGEST_CODE, {})

    loads = []

    def run(folder):
        store = SourceCache(folder, salt)
        load = lambda: loads.append(folder) or deidentifier()  # noqa: E731
        turns, report = ingest.collect(ingest.ingested(corpus, reader, cfg, load, allowlist, store))
        return turns, report, store

    plain, cold, warm = same_without_and_with_cache(run, tmp_path / "cache")
    read_or_rejected = sum(f["status"] != "skipped" or "duplicaat" in f.get("reason", "")
                           for f in plain[1]["files"])
    assert len(cold[2].stored) == read_or_rejected and not warm[2].stored
    assert len(loads) == 2  # deduce is loaded once per run with work, not for the warm run

    changed = corpus / "online/teams-overleg.vtt"
    changed.write_text(changed.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    _, _, after = run(tmp_path / "cache")
    assert len(after.stored) == 1  # only the edited file is pseudonymised again
    assert len(loads) == 3


def test_ingest_with_a_read_cache_reads_only_new_and_changed_files(
    tmp_path, ingest_setup, monkeypatch
):
    """The names and words of unchanged files come from the read cache; the result is that of
    a run without it."""
    cfg, reader, deidentifier, allowlist = ingest_setup
    corpus = copy_corpus(tmp_path / "corpus")
    salt = ingest.cache_salt_of("ingest", ingest.INGEST_CODE, {})
    read = []
    read_in_worker = ingest._read_in_worker
    monkeypatch.setattr(
        ingest, "_read_in_worker", lambda found: read.append(found.rel) or read_in_worker(found)
    )

    def run(read_folder):
        read.clear()
        read_cache = SourceCache(read_folder, salt) if read_folder else None
        store = SourceCache(tmp_path / "cache", salt)
        turns, report = ingest.collect(
            ingest.ingested(corpus, reader, cfg, deidentifier, allowlist, store, read_cache)
        )
        return turns, report, list(read)

    plain, cold, warm = same_without_and_with_cache(run, tmp_path / "raw-cache")
    not_skipped = [f.rel for f in ingest.discover(corpus, cfg.ignore) if f.status != "skipped"]
    assert cold[2] == not_skipped and warm[2] == []
    assert len(plain[2]) == len(ingest.discover(corpus, cfg.ignore))

    changed = corpus / "online/teams-overleg.vtt"
    changed.write_text(changed.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    sidecar = corpus / "dorpsraad.docx.yaml"
    sidecar.write_text(sidecar.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    turns, _, changed_read = run(tmp_path / "raw-cache")
    assert sorted(changed_read) == ["dorpsraad.docx", "online/teams-overleg.vtt"]
    pd.testing.assert_frame_equal(turns, run(None)[0])


def test_ingest_reads_each_entry_as_its_file_comes_and_redoes_an_unreadable_one(
    tmp_path, ingest_setup
):
    """The stage writes the turns file by file: an entry is read only when its file's turn
    comes, and one that turns out unreadable then is pseudonymised again in its place."""
    cfg, reader, deidentifier, allowlist = ingest_setup
    corpus = copy_corpus(tmp_path / "corpus")
    salt = ingest.cache_salt_of("ingest", ingest.INGEST_CODE, {})

    def run(store=None):
        return ingest.collect(ingest.ingested(corpus, reader, cfg, deidentifier, allowlist, store))

    plain = run()
    run(SourceCache(tmp_path / "c", salt))

    store = SourceCache(tmp_path / "c", salt)
    results = ingest.ingested(corpus, reader, cfg, deidentifier, allowlist, store)
    next(results)
    assert len(store.used) <= 1
    assert len(list(results)) + 1 == plain[1]["totals"]["files"]

    entries = sorted((tmp_path / "c").rglob("*.pkl"))
    entries[len(entries) // 2].write_bytes(b"cut off")  # exists, so planned as reused
    store = SourceCache(tmp_path / "c", salt)
    turns, report = run(store)
    pd.testing.assert_frame_equal(turns, plain[0])
    assert report == plain[1]
    assert len(store.stored) == 1


@pytest.mark.parametrize("with_read_cache", [False, True], ids=["", "read cache"])
def test_ingest_redoes_a_file_that_mentions_a_new_participant(
    tmp_path, ingest_setup, with_read_cache
):
    """A participant added elsewhere is pseudonymised in every file that mentions them, so the
    files mentioning that name must not come from the cache."""
    cfg, reader, deidentifier, allowlist = ingest_setup
    read_cache = SourceCache(tmp_path / "raw-cache", "salt") if with_read_cache else None
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    front = "---\ngemeente: Voorst\ndatum: 2025-03-01\n---\n"
    (corpus / "a.txt").write_text(
        front + "Anne: Welkom allemaal.\nKees: Ik sprak Wubbo gisteren nog.\n", encoding="utf-8"
    )
    salt = ingest.cache_salt_of("ingest", ingest.INGEST_CODE, {})
    store = SourceCache(tmp_path / "cache", salt)

    def run(store):
        return ingest.collect(
            ingest.ingested(corpus, reader, cfg, deidentifier, allowlist, store, read_cache)
        )

    run(store)
    (corpus / "b.txt").write_text(
        front + "Wubbo: Hallo, ik ben nieuw.\nAnne: Welkom.\n", encoding="utf-8"
    )
    store = SourceCache(tmp_path / "cache", salt)
    turns, _ = run(store)
    assert len(store.stored) == 2  # the new file and the file that mentions Wubbo
    assert not turns[Turns.text].str.contains("Wubbo").any()


# --------------------------------------------------------------------------- nlp


@pytest.mark.parametrize("per_source", [False, True], ids=["one range", "a range per source"])
def test_nlp_with_cache_equals_without_and_redoes_only_changes(tmp_path, fallback_nlp, per_source):
    pipe, _ = fallback_nlp
    backoff = LemmaBackoff()
    turns = pd.concat(
        [
            make_turns(["Wij willen dat zij luisteren.", "Ja [gelach]."], source="a.txt"),
            make_turns(["Ik ben [PERSOON-1] van de buurt."], source="b.txt"),
            make_turns(["", "Nou."], source="c.txt"),
        ],
        ignore_index=True,
    )
    plain = [pd.concat(parts, ignore_index=True)
             for parts in zip(*nlp.analyse(turns, pipe, backoff=backoff), strict=True)]

    loads = []

    def load():
        loads.append(1)
        return pipe, backoff

    def run(frame):
        store = SourceCache(tmp_path / "cache", "salt")
        if per_source:  # the stage reads a range of sources at a time
            ranges = [rows for _, rows in cache.contiguous_groups(frame, Turns.source)]
        else:
            ranges = [frame]
        chunks = list(nlp.analyse_sources(lambda: ranges, load, store, rows_per_chunk=4))
        tables = [pd.concat([part.to_pandas() for part in parts], ignore_index=True)
                  for parts in zip(*chunks, strict=True)]
        return tables, store

    cold, first = run(turns)
    warm, second = run(turns)
    for plain_frame, cold_frame, warm_frame in zip(plain, cold, warm, strict=True):
        pd.testing.assert_frame_equal(cold_frame, plain_frame)
        pd.testing.assert_frame_equal(warm_frame, plain_frame)
    assert len(first.stored) == 3 and not second.stored
    assert len(loads) == 1  # the pipeline is not loaded when every source is in the cache
    edited = turns.copy()
    edited.loc[0, Turns.text] = "Wij en zij."
    _, third = run(edited)
    assert len(third.stored) == 1 and len(loads) == 2


@pytest.mark.skipif(not can_fork(), reason="the pipeline loads in a worker only where it can fork")
def test_nlp_in_a_worker_equals_here_never_loads_here_and_redoes_an_unreadable_entry(
    tmp_path, fallback_nlp
):
    pipe, _ = fallback_nlp
    turns = pd.concat(
        [
            make_turns(["Wij willen dat zij luisteren.", "Ja [gelach]."], source="a.txt"),
            make_turns(["Ik ben [PERSOON-1] van de buurt."], source="b.txt"),
            make_turns(["", "Nou."], source="c.txt"),
        ],
        ignore_index=True,
    )
    ranges = [rows for _, rows in cache.contiguous_groups(turns, Turns.source)]
    loaded_in = tmp_path / "loaded-in"

    def load():
        loaded_in.write_text(str(os.getpid()))
        return pipe, LemmaBackoff()

    def run(folder, in_worker):
        store = SourceCache(tmp_path / folder, "salt")
        chunks = nlp.analyse_sources(
            lambda: ranges, load, store, batch_turns=2, rows_per_chunk=4, in_worker=in_worker
        )
        tables = [pd.concat([part.to_pandas() for part in parts], ignore_index=True)
                  for parts in zip(*chunks, strict=True)]
        return tables, store

    here, _ = run("here", in_worker=False)
    there, store = run("worker", in_worker=True)
    assert int(loaded_in.read_text()) != os.getpid()
    assert len(store.stored) == 3
    for here_frame, there_frame in zip(here, there, strict=True):
        pd.testing.assert_frame_equal(there_frame, here_frame)

    loaded_in.unlink()
    next((tmp_path / "worker").rglob("*.pkl")).write_bytes(b"cut off")
    again, store = run("worker", in_worker=True)
    assert len(store.stored) == 1 and int(loaded_in.read_text()) != os.getpid()
    for here_frame, again_frame in zip(here, again, strict=True):
        pd.testing.assert_frame_equal(again_frame, here_frame)


# --------------------------------------------------------------------------- tag and train


@pytest.fixture(scope="module")
def tagged_inputs(repo_paths, fallback_nlp):
    """Two sessions of turns and tokens, and a model trained on the first."""
    pipe, _ = fallback_nlp
    backoff = LemmaBackoff()
    codebook = load_codebook(repo_paths.codebook)
    texts = [
        "Die van de gemeente bepalen alles, wij mogen alleen knikken.",
        "Ik zit hier als bewoner maar ben ook betaald opbouwwerker, dat schuurt.",
        "Ik heb alleen de sleutel geregeld, de rest deden zij zelf.",
        "Zullen we koffie halen?",
    ] * 3
    turns = pd.concat(
        [make_turns(texts, source="a.txt"), make_turns(texts[::-1], source="b.txt")],
        ignore_index=True,
    )
    tokens = pd.concat([t for t, _ in nlp.analyse(turns, pipe, backoff=backoff)],
                       ignore_index=True)
    X, hits = tag.compute_features(turns, tokens, codebook)
    Y = pd.DataFrame({t: [int(k % 4 == i) for k in range(len(X))]
                      for i, t in enumerate(codebook.ids)})
    train_cfg = section(TrainParams, read_params().get("train"))
    model = tag.TrainedModel(make_tagger(codebook, train_cfg).fit(X, Y), codebook.digest,
                             codebook.version)
    return turns, tokens, codebook, model, (X, Y, train_cfg)


def test_tag_sources_equals_tag_corpus_and_reuses(tmp_path, tagged_inputs):
    turns, tokens, codebook, model, _ = tagged_inputs
    cfg = section(TagParams, read_params().get("tag"))
    plain = tag.tag_corpus(turns, tokens, codebook, model, cfg)

    def run():
        store = SourceCache(tmp_path / "cache", "salt")
        token_groups = cache.digested_groups(tokens, "source")
        sources = tag.joined_by_source(turns, token_groups)
        return tag.tag_sources(sources, codebook, model, cfg, store, batch_turns=5), store

    cold, first = run()
    warm, second = run()
    for plain_frame, cold_frame, warm_frame in zip(plain, cold, warm, strict=True):
        pd.testing.assert_frame_equal(cold_frame, plain_frame)
        pd.testing.assert_frame_equal(warm_frame, plain_frame)
    assert len(first.stored) == 2 and not second.stored


def written(tmp_path: Path, turns: pd.DataFrame, tokens: pd.DataFrame) -> tuple[Path, Path]:
    """The turns and tokens as the stage reads them: Parquet files, turns in row groups of 2."""
    turns_path, tokens_path = tmp_path / "turns.parquet", tmp_path / "tokens.parquet"
    turns.to_parquet(turns_path, index=False, row_group_size=2)
    tokens.to_parquet(tokens_path, index=False)
    return turns_path, tokens_path


def test_stage_sources_read_tokens_only_for_sources_without_an_entry(tmp_path, tagged_inputs):
    turns, tokens, codebook, model, _ = tagged_inputs
    cfg = section(TagParams, read_params().get("tag"))
    turns_path, path = written(tmp_path, turns, tokens)
    store = SourceCache(tmp_path / "cache", "salt")
    cold = list(tag.stage_sources(turns_path, path, "nlp salt", store, sources_per_read=1))
    assert [s for s, *_ in cold] == ["a.txt", "b.txt"]
    pd.testing.assert_frame_equal(pd.concat([t for _, _, t, _ in cold], ignore_index=True), tokens)
    tag.tag_sources(cold, codebook, model, cfg, store)
    path.unlink()  # every source has an entry now: the token table is not even opened
    warm = list(
        tag.stage_sources(turns_path, path, "nlp salt", SourceCache(tmp_path / "cache", "salt"))
    )
    assert [t for _, _, t, _ in warm] == [None, None]
    assert [d for *_, d in warm] == [d for *_, d in cold]
    other_nlp = tag.stage_sources(turns_path, path, "other nlp salt", store)  # other tokens: read
    with pytest.raises(FileNotFoundError):
        list(other_nlp)


@pytest.mark.parametrize("sources_per_read", [1, 2, 250])
def test_stage_sources_read_each_source_whole_once_in_any_range_size(
    tmp_path, tagged_inputs, sources_per_read
):
    """The stage reads the turns a range of sources at a time: every source comes once, with
    all its turns and tokens, whatever the range size and the row groups."""
    turns, tokens, *_ = tagged_inputs
    turns_path, tokens_path = written(tmp_path, turns, tokens)
    store = SourceCache(None)
    sources = list(
        tag.stage_sources(turns_path, tokens_path, "salt", store, sources_per_read=sources_per_read)
    )
    expected = list(tag.joined_by_source(turns, cache.digested_groups(tokens, "source")))
    assert [s for s, *_ in sources] == [s for s, *_ in expected] == ["a.txt", "b.txt"]
    for (_, rows, tokens_of, _), (_, rows_expected, tokens_expected, _) in zip(
        sources, expected, strict=True
    ):
        for got, want in ((rows, rows_expected), (tokens_of, tokens_expected)):
            pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))


def test_tag_tables_equal_tag_corpus_and_survive_an_unreadable_entry(tmp_path, tagged_inputs):
    turns, tokens, codebook, model, _ = tagged_inputs
    cfg = section(TagParams, read_params().get("tag"))
    turns_path, path = written(tmp_path, turns, tokens)
    plain = tag.tag_corpus(turns, tokens, codebook, model, cfg)

    def run():
        store = SourceCache(tmp_path / "cache", "salt")
        return tag.tag_tables(turns_path, path, "nlp salt", codebook, model, cfg, store), store

    (cold, first), (warm, second) = run(), run()
    for entry in (tmp_path / "cache").rglob("*.pkl"):
        entry.write_bytes(b"cut off")  # exists, so expected in the cache, but unreadable
    broken, third = run()
    for plain_frame, *others in zip(plain, cold, warm, broken, strict=True):
        for frame in others:
            pd.testing.assert_frame_equal(frame, plain_frame)
    assert len(first.stored) == 2 and not second.stored and len(third.stored) == 2


def test_tag_tables_written_survive_an_unreadable_entry_met_while_writing(tmp_path, tagged_inputs):
    """The stage writes while it reads the entries back: one found unreadable then leaves no
    file from that attempt, and the files of the next hold the tables."""
    turns, tokens, codebook, model, _ = tagged_inputs
    cfg = section(TagParams, read_params().get("tag"))
    turns_path, path = written(tmp_path, turns, tokens)
    plain = tag.tag_corpus(turns, tokens, codebook, model, cfg)
    store = SourceCache(tmp_path / "c")
    tag.tag_tables(turns_path, path, "nlp salt", codebook, model, cfg, store)
    digests = {s: d for s, _, _, d in tag.stage_sources(turns_path, path, "nlp salt", store)}
    last = store.key("b.txt", digests["b.txt"])
    # b.txt sorts last: its entry is read back once the files are open
    next((tmp_path / "c").rglob(f"{last}.pkl")).write_bytes(b"cut off")
    out = tmp_path / "tags.parquet", tmp_path / "evidence.parquet"
    attempts = []

    def write(tagged):
        attempts.append(tagged)
        return tag.write_tables(tagged, *out, rows_per_group=1)

    store = SourceCache(tmp_path / "c")
    _, evidence_rows = tag.tag_tables(
        turns_path, path, "nlp salt", codebook, model, cfg, store, consume=write
    )
    assert len(attempts) == 2 and len(store.stored) == 1
    for frame, file in zip(plain, out, strict=True):
        pd.testing.assert_frame_equal(pd.read_parquet(file), frame)
    assert evidence_rows == len(plain[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "c", "evidence.parquet", "tags.parquet", "tokens.parquet", "turns.parquet"
    ]


def test_tag_sources_give_the_same_tables_in_any_source_order(tagged_inputs):
    """The sources come in whatever order they are read: the order must change nothing."""
    turns, tokens, codebook, model, _ = tagged_inputs
    cfg = section(TagParams, read_params().get("tag"))
    sources = list(tag.joined_by_source(turns, cache.digested_groups(tokens, "source")))
    in_order = tag.tag_sources(sources, codebook, model, cfg, SourceCache(None))
    reversed_ = tag.tag_sources(sources[::-1], codebook, model, cfg, SourceCache(None))
    assert in_order[1].duplicated(["source", "turn", "theme", "kind", "start"]).any()  # ties
    for expected, frame in zip(in_order, reversed_, strict=True):
        pd.testing.assert_frame_equal(frame, expected)


def test_training_is_reused_only_while_its_inputs_are_unchanged(tmp_path, tagged_inputs):
    turns, _, codebook, _, (X, Y, train_cfg) = tagged_inputs
    tag_cfg = section(TagParams, read_params().get("tag"))
    meta = X[["source", "turn"]].merge(turns, on=["source", "turn"])

    def run(labels):
        store = SourceCache(tmp_path / "cache", "salt")
        return fit_and_evaluate(X, labels, meta, codebook, train_cfg, tag_cfg, store), store

    (model, metrics, oof), first = run(Y)
    (model2, metrics2, oof2), second = run(Y)
    assert len(first.stored) == 1 and not second.stored
    assert metrics2 == metrics
    pd.testing.assert_frame_equal(oof2, oof)
    pd.testing.assert_frame_equal(model2.tagger.predict_proba(X), model.tagger.predict_proba(X))
    relabelled = Y.copy()
    relabelled.iloc[0, 0] = 1 - relabelled.iloc[0, 0]
    _, third = run(relabelled)
    assert len(third.stored) == 1


def test_tagging_over_two_processes_gives_the_same_tables(tagged_inputs):
    turns, tokens, codebook, model, _ = tagged_inputs
    cfg = section(TagParams, read_params().get("tag"))
    results = []
    for n_process in (1, 2):
        sources = tag.joined_by_source(turns, cache.digested_groups(tokens, "source"))
        params = dataclasses.replace(cfg, n_process=n_process)
        results.append(tag.tag_sources(sources, codebook, model, params, SourceCache(None), 5))
    for single, forked in zip(*results, strict=True):
        pd.testing.assert_frame_equal(forked, single)


def test_nlp_pipeline_info_is_kept_so_a_cached_run_need_not_load_the_pipeline(
    tmp_path, fallback_nlp
):
    _, info = fallback_nlp
    loads = []

    def load():
        loads.append(1)
        return info

    assert nlp.pipeline_info(SourceCache(tmp_path, "salt"), load) == info
    assert nlp.pipeline_info(SourceCache(tmp_path, "salt"), load) == info
    assert len(loads) == 1
    assert nlp.pipeline_info(SourceCache(tmp_path, "another model"), load) == info
    assert len(loads) == 2


def test_nlp_pipeline_info_remembered_where_it_loaded_is_found_without_loading(
    tmp_path, fallback_nlp
):
    _, info = fallback_nlp
    nlp.remember_pipeline_info(SourceCache(tmp_path, "salt"), info)  # as a worker does
    assert nlp.pipeline_info(SourceCache(tmp_path, "salt"), lambda: pytest.fail("loaded")) == info


def test_nlp_entries_hold_only_their_own_rows(tmp_path, fallback_nlp):
    """An entry is one source's slice of a batch: pickled as a slice, it carried the batch."""
    pipe, _ = fallback_nlp
    texts = ["Wij willen dat zij luisteren naar de buurt."] * 50
    turns = pd.concat([make_turns(texts, source=f"{k}.txt") for k in range(20)],
                      ignore_index=True)
    store = SourceCache(tmp_path, "salt")
    chunks = list(nlp.analyse_sources(lambda: [turns], lambda: (pipe, LemmaBackoff()), store))
    whole = sum(len(pickle.dumps(table)) for chunk in chunks for table in chunk)
    sizes = [p.stat().st_size for p in tmp_path.rglob("*.pkl")]
    assert len(sizes) == 20 and max(sizes) < whole / 10
