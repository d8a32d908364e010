"""The forked pool: work in this process for one process; the parent's heap frozen when forking."""

from __future__ import annotations

import gc
import multiprocessing

import pytest

from pipeline.parallel import fork_pool


def _square(x: int) -> int:
    return x * x


def test_one_process_means_no_pool():
    with fork_pool(1) as pool:
        assert pool is None


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="this platform cannot fork"
)
def test_two_processes_share_the_frozen_heap():
    with fork_pool(2) as pool:
        assert pool is not None
        assert gc.get_freeze_count() > 0  # inherited objects are not walked by the workers' gc
        assert list(pool.map(_square, range(5))) == [0, 1, 4, 9, 16]
