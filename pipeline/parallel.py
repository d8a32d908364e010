"""Forked processes: a pool of workers that share what the parent has loaded, and a worker or a
child that loads something slow while the parent goes on."""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import traceback
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any


@contextmanager
def fork_pool(n_process: int) -> Iterator[ProcessPoolExecutor | None]:
    """`n_process` forked workers, or None (work in this process) for one process or where the
    platform cannot fork.

    The parent's objects are frozen first (and stay so: reference counting still frees them, only
    the cycle collector skips them): a worker's garbage collector would otherwise walk every
    inherited object and so copy every shared page.
    """
    if n_process <= 1 or not can_fork():
        yield None
        return
    gc.freeze()
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=n_process, mp_context=context) as pool:
        yield pool


@contextmanager
def loading_worker(load: Callable[[], Any]) -> Iterator[ProcessPoolExecutor | None]:
    """One forked worker that calls `load` before its first task: something slow to load loads
    there while this process goes on, and this process never holds it. None (load and work in
    this process) where the platform cannot fork."""
    if not can_fork():
        yield None
        return
    gc.freeze()  # as in `fork_pool`
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=load) as pool:
        yield pool


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


class ForkedChild:
    """A forked child process that runs `prepare` at once, then one job handed to it later, and
    sends the job's results back one by one, in order.

    For work behind a slow load (deduce's lookup tables): the child loads while the parent goes
    on with its own work, and the parent never holds what was loaded. The child leads a process
    group of its own, so closing it also ends any pool it forked (`fork_pool`).
    """

    def __init__(self, prepare: Callable[[], None]) -> None:
        context = multiprocessing.get_context("fork")
        self._conn, child_end = context.Pipe()
        self._process = context.Process(target=_serve, args=(prepare, child_end), daemon=False)
        self._process.start()
        child_end.close()

    def run(self, job: Callable[..., Iterable[Any]], *args: Any) -> Generator[Any, None, None]:
        """Hand `job(*args)` to the child now (`job` a module-level function, `args` picklable)
        and return its results as they come; an error in the child is raised here with the
        child's traceback."""
        self._conn.send((job, args))
        return self._results()

    def _results(self) -> Generator[Any, None, None]:
        while True:
            kind, value = self._receive()
            if kind == "end":
                return
            if kind == "error":
                raise RuntimeError(f"in the child process:\n{value}")
            yield value

    def _receive(self) -> tuple[str, Any]:
        # polled: a child killed from outside may leave workers that hold the pipe open (no EOF)
        while not self._conn.poll(1.0):
            if not self._process.is_alive() and not self._conn.poll():
                raise self._ended()
        try:
            return self._conn.recv()
        except EOFError:
            raise self._ended() from None

    def _ended(self) -> RuntimeError:
        self.close()
        return RuntimeError(
            f"the child process ended (exit code {self._process.exitcode}) before finishing its "
            "work"
        )

    def close(self) -> None:
        """End the child and the workers it forked, at once wherever they are (also workers
        left behind by a child that died)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        if self._process.is_alive():
            self._process.kill()  # it had not yet made its own process group
        self._process.join()
        self._conn.close()

    def __enter__(self) -> ForkedChild:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve(prepare: Callable[[], None], conn: Connection) -> None:
    os.setpgrp()
    try:
        prepare()
        job, args = conn.recv()
        for result in job(*args):
            conn.send(("result", result))
        conn.send(("end", None))
    except BaseException:  # noqa: BLE001 - everything goes back to the parent
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()
