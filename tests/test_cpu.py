"""pipeline.cpu: NumPy, OpenBLAS and numba run AVX2 code on every x86-64 CPU that has it."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from pipeline.cpu import AVX2_CODE, avx2_settings, cpu_flags
from pipeline.params import REPO_ROOT

AVX512_CPU = {"fpu", "sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw"}


def test_an_avx2_cpu_gets_avx2_code_from_all_three_libraries():
    assert avx2_settings(AVX512_CPU, "x86_64", {}) == AVX2_CODE
    assert avx2_settings(AVX512_CPU - {"avx512f", "avx512bw"}, "AMD64", {}) == AVX2_CODE


def test_a_cpu_without_avx2_or_another_architecture_keeps_its_own_code():
    assert avx2_settings({"fpu", "sse4_2", "avx"}, "x86_64", {}) == {}  # forcing AVX2 would crash
    assert avx2_settings({"fp", "asimd", "avx2"}, "aarch64", {}) == {}
    assert avx2_settings(set(), "x86_64", {}) == {}  # no /proc/cpuinfo: nothing is known


def test_a_variable_the_user_set_is_kept():
    settings = avx2_settings(AVX512_CPU, "x86_64", {"OPENBLAS_CORETYPE": "SkylakeX"})
    assert settings == {k: v for k, v in AVX2_CODE.items() if k != "OPENBLAS_CORETYPE"}


def test_numbas_cpu_name_and_features_are_set_together():
    """A CPU name alone would get the host's features (AVX-512) added; a user's name stays whole."""
    settings = avx2_settings(AVX512_CPU, "x86_64", {"NUMBA_CPU_NAME": "generic"})
    assert settings == {k: v for k, v in AVX2_CODE.items() if not k.startswith("NUMBA_")}


def test_cpu_flags_reads_the_flags_line(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 fma\n\n")
    assert cpu_flags(cpuinfo) == {"fpu", "avx2", "fma"}
    assert cpu_flags(tmp_path / "missing") == set()


def vector_code(env: dict[str, str]) -> dict[str, object]:
    """What NumPy, OpenBLAS and numba run in a new process that imports a pipeline module first."""
    probe = (
        "import json, pipeline.io, numpy\n"
        "from numpy._core._multiarray_umath import __cpu_features__ as features\n"
        "from threadpoolctl import threadpool_info\n"
        "blas = [i['architecture'] for i in threadpool_info() if i['internal_api'] == 'openblas']\n"
        "import numba\n"
        "@numba.njit(fastmath=True)\n"
        "def squares(a):\n"
        "    return (a * a).sum()\n"
        "squares(numpy.ones(4))\n"
        "asm = next(iter(squares.inspect_asm().values()))\n"
        "print(json.dumps({'blas': blas, 'x86_v4': features.get('X86_V4', False),\n"
        "                  'numba_avx512': 'zmm' in asm}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_ROOT, env=env
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def environment_without_the_pin() -> dict[str, str]:
    """This process's environment as it was before `pipeline` set the variables."""
    return {k: v for k, v in os.environ.items() if k not in AVX2_CODE}


needs_avx2 = pytest.mark.skipif(
    platform.machine() != "x86_64" or "avx2" not in cpu_flags(),
    reason="this CPU has no AVX2 (or is not x86-64): pipeline.cpu leaves its vector code alone",
)


@needs_avx2
def test_a_stage_process_runs_the_avx2_code():
    code = vector_code(environment_without_the_pin())
    assert code["x86_v4"] is False
    assert code["blas"] and set(code["blas"]) == {"Haswell"}
    assert code["numba_avx512"] is False  # no AVX-512 register in UMAP's kind of compiled code


@needs_avx2
def test_the_users_own_choice_reaches_openblas():
    code = vector_code({**environment_without_the_pin(), "OPENBLAS_CORETYPE": "Sandybridge"})
    assert set(code["blas"]) == {"Sandybridge"}


def test_the_test_process_runs_the_stages_vector_code():
    """pyproject's `-p pipeline` loads the package before any pytest plugin loads NumPy."""
    expected = avx2_settings(cpu_flags(), platform.machine(), {})
    assert {k: os.environ.get(k) for k in expected} == expected
    if expected:
        from threadpoolctl import threadpool_info

        blas = {i["architecture"] for i in threadpool_info() if i["internal_api"] == "openblas"}
        assert blas == {"Haswell"}
