"""The suite's own machinery (tests/conftest.py): under xdist, numba compiles a kernel once per run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

_WORKER = """
import importlib.util, os, sys, time
spec = importlib.util.spec_from_file_location("suite_conftest", sys.argv[1])
conftest = importlib.util.module_from_spec(spec)
spec.loader.exec_module(conftest)
if sys.argv[4] == "lock":
    conftest._one_compile_per_kernel(sys.argv[2])
sys.path.insert(0, sys.argv[3])
import kernel_mod
import numpy as np
open(os.path.join(sys.argv[2], "ready-%d" % os.getpid()), "w").close()
while len([f for f in os.listdir(sys.argv[2]) if f.startswith("ready-")]) < 2:   # both call at once
    time.sleep(0.005)
kernel_mod.total(np.arange(5.0))
d = kernel_mod.total
print(sum(d._cache_misses.values()), sum(d._cache_hits.values()))
"""


def test_two_workers_compile_a_new_kernel_once(tmp_path):
    """Two processes with the xdist hook, one lock folder and one numba cache, calling a kernel that
    is in no cache at the same moment: one compiles it, the other waits and loads that build (without
    the hook, "none" instead of "lock", both compile it)."""
    pytest.importorskip("numba")
    if os.environ.get("CHANNELMARKET_NUMBA", "1") == "0":
        pytest.skip("numba is off")
    src = tmp_path / "src"
    src.mkdir()
    (src / "kernel_mod.py").write_text(textwrap.dedent("""
        import numba

        @numba.njit(cache=True)
        def total(x):
            s = 0.0
            for i in range(x.shape[0]):
                s += x[i] * x[i]
            return s
        """))
    conftest = Path(__file__).with_name("conftest.py")
    (tmp_path / "locks").mkdir()
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(conftest), str(tmp_path / "locks"), str(src), "lock"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
    counts = sorted(tuple(map(int, out.split())) for out, _ in outs)
    assert counts == [(0, 1), (1, 0)], counts   # (misses, hits): one compiled, the other loaded its build
