"""The forked pool: work in this process for one process; the parent's heap frozen when forking.
The loading worker: loads in its own process before its first task. The forked child: prepares
while the parent works, streams its job's results, ends with its workers."""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path

import pytest

from pipeline import parallel
from pipeline.parallel import ForkedChild, can_fork, fork_pool, loading_worker

needs_fork = pytest.mark.skipif(not can_fork(), reason="this platform cannot fork")
PREPARED: dict[str, object] = {}


def _square(x: int) -> int:
    return x * x


def test_one_process_means_no_pool():
    with fork_pool(1) as pool:
        assert pool is None


@needs_fork
def test_the_loading_worker_loads_in_its_own_process_before_its_first_task(tmp_path):
    loaded_in = tmp_path / "loaded-in"

    def load() -> None:
        with loaded_in.open("a") as out:
            out.write(f"{os.getpid()}\n")

    with loading_worker(load) as pool:
        # the task reads what the load wrote: it fails if the load had not run before it
        first = pool.submit(Path.read_text, loaded_in).result()
        worker = pool.submit(os.getpid).result()
        assert first.split() == [str(worker)] and worker != os.getpid()
        assert pool.submit(Path.read_text, loaded_in).result().split() == [str(worker)]  # once


def test_without_fork_there_is_no_loading_worker(monkeypatch):
    monkeypatch.setattr(parallel, "can_fork", lambda: False)
    with loading_worker(lambda: pytest.fail("loaded")) as pool:
        assert pool is None


@needs_fork
def test_two_processes_share_the_frozen_heap():
    with fork_pool(2) as pool:
        assert pool is not None
        assert gc.get_freeze_count() > 0  # inherited objects are not walked by the workers' gc
        assert list(pool.map(_square, range(5))) == [0, 1, 4, 9, 16]


def _prepare() -> None:
    PREPARED.update(pid=os.getpid(), state="loaded")


def _slow_prepare() -> None:
    time.sleep(60)


def _results(n: int) -> list:
    """What the child prepared, then n squares computed by two workers of its own."""
    yield PREPARED["pid"], PREPARED["state"]
    with fork_pool(2) as pool:
        yield from pool.map(_square, range(n))


def _failing(n: int):
    yield n
    raise ValueError(f"transcript {n} is unreadable")


def _write_pid_then_sleep(folder: Path) -> None:
    (folder / str(os.getpid())).touch()
    time.sleep(60)


def _busy_workers(folder: Path):
    """Starts two workers that stay busy for a minute."""
    with fork_pool(2) as pool:
        busy = [pool.submit(_write_pid_then_sleep, folder) for _ in range(2)]
        yield "started"
        for future in busy:
            yield future.result()


@needs_fork
def test_the_child_prepares_in_its_own_process_and_streams_its_job_in_order():
    with ForkedChild(_prepare) as child:
        results = list(child.run(_results, 6))
    (pid, state), squares = results[0], results[1:]
    assert pid != os.getpid() and state == "loaded"
    assert "pid" not in PREPARED  # the parent never prepared
    assert squares == [0, 1, 4, 9, 16, 25]


@needs_fork
def test_an_error_in_the_job_is_raised_in_the_parent_with_the_childs_traceback():
    with ForkedChild(_prepare) as child:
        results = child.run(_failing, 7)
        assert next(results) == 7
        with pytest.raises(RuntimeError, match="ValueError: transcript 7 is unreadable"):
            next(results)


def _dying(folder: Path | None):
    """Yields once, then the child ends without a word (killed, out of memory), leaving its
    workers busy when `folder` is given."""
    yield "started"
    if folder is None:
        os._exit(3)
    with fork_pool(2) as pool:
        busy = [pool.submit(_write_pid_then_sleep, folder) for _ in range(2)]
        while len(list(folder.iterdir())) < 2:
            time.sleep(0.05)
        os._exit(3)
        yield busy


@needs_fork
@pytest.mark.parametrize("with_workers", [False, True], ids=["alone", "workers-left-behind"])
def test_a_child_that_dies_is_an_error_not_a_hang(tmp_path, with_workers):
    with ForkedChild(_prepare) as child:
        results = child.run(_dying, tmp_path if with_workers else None)
        assert next(results) == "started"
        with pytest.raises(RuntimeError, match=r"ended \(exit code 3\) before finishing"):
            next(results)
    assert _all_ended([int(f.name) for f in tmp_path.iterdir()])


@needs_fork
def test_closing_a_child_still_preparing_ends_it_at_once():
    started = time.perf_counter()
    child = ForkedChild(_slow_prepare)
    child.close()
    assert time.perf_counter() - started < 10
    assert child._process.exitcode is not None


@needs_fork
def test_closing_a_child_at_work_also_ends_the_workers_it_forked(tmp_path):
    child = ForkedChild(_prepare)
    results = child.run(_busy_workers, tmp_path)
    assert next(results) == "started"
    deadline = time.monotonic() + 30
    while len(list(tmp_path.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = [int(f.name) for f in tmp_path.iterdir()]
    assert len(workers) == 2
    child.close()
    assert _all_ended(workers)


def _all_ended(pids: list[int]) -> bool:
    """Whether every process of `pids` has ended within ten seconds (signals take a moment)."""
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a parent to reap it has ended)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status
