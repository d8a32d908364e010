"""The same floating-point results on every x86-64 CPU with AVX2.

NumPy and OpenBLAS choose their vector code when they load, and numba compiles UMAP's code for
the CPU at hand: AVX-512 where the CPU has it, AVX2 where it has that. The two round some sums
and logarithms differently in the last bits, and that is enough to change results: on an AVX-512
machine the committed pipeline gave macro-F1 0.8065 instead of 0.8075, other borderline tags and
other topics. `pipeline/__init__.py` asks all three for AVX2 code before any of them loads, so
the results are the same bytes on AVX2 and AVX-512 machines. CPUs without AVX2 and other
architectures (ARM) keep their own code and may differ in the last bits; a variable the user set
is never overridden.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping, MutableMapping
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
# OpenBLAS's Haswell kernels are what it runs on AVX2 CPUs (its Zen kernels are the same code);
# NumPy 2's X86_V4 and later groups are its AVX-512 code paths; numba needs a CPU name and a
# feature list, or it adds the host's features (AVX-512 among them) to the name's.
AVX2_CODE = {
    "OPENBLAS_CORETYPE": "Haswell",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
    "NUMBA_CPU_NAME": "haswell",
    "NUMBA_CPU_FEATURES": "+avx2",
}
SET_TOGETHER = ({"NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES"},)


def cpu_flags(cpuinfo: Path = CPUINFO) -> set[str]:
    """The CPU's feature flags as Linux reports them; empty where there is no /proc/cpuinfo."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


def avx2_settings(flags: set[str], machine: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables to set so that NumPy, OpenBLAS and numba run AVX2 code (none on a CPU that
    lacks AVX2, where forcing it would crash, and none the user already set)."""
    if machine.lower() not in {"x86_64", "amd64"} or "avx2" not in flags:
        return {}
    users = {name for name in AVX2_CODE if name in environ}
    for group in SET_TOGETHER:
        if users & group:
            users |= group
    return {name: value for name, value in AVX2_CODE.items() if name not in users}


def use_avx2_code(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Set the variables in `environ` (inherited by every process started from here); takes
    effect only in a process that has not loaded NumPy yet. Returns what it set."""
    settings = avx2_settings(cpu_flags(), platform.machine(), environ)
    environ.update(settings)
    return settings
