"""A pool of forked worker processes that share what the parent has loaded."""

from __future__ import annotations

import gc
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager


@contextmanager
def fork_pool(n_process: int) -> Iterator[ProcessPoolExecutor | None]:
    """`n_process` forked workers, or None (work in this process) for one process or where the
    platform cannot fork.

    The parent's objects are frozen first (and stay so: reference counting still frees them, only
    the cycle collector skips them): a worker's garbage collector would otherwise walk every
    inherited object and so copy every shared page.
    """
    if n_process <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        yield None
        return
    gc.freeze()
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=n_process, mp_context=context) as pool:
        yield pool
