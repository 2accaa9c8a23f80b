"""The compiled-kernel dispatch: keyword calls, the multi-threaded builds (bit for bit the serial
build, chosen by size, serialized across Python threads, safe across fork) and CHANNELMARKET_THREADS."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from channelmarket.envs import compiled

try:
    from numba import prange
except ImportError:  # pragma: no cover - numba is a dependency
    prange = range


def _scaled_twin(x, scale):
    return np.sqrt(x) * scale + np.float64(1.0) / (x + 1.0)


def _scaled(x, scale):
    out = np.empty_like(x)
    for i in prange(x.shape[0]):
        out[i] = np.sqrt(x[i]) * scale + 1.0 / (x[i] + 1.0)
    return out


_SERIAL = compiled.jit(_scaled)
_PARALLEL = compiled.jit(_scaled, parallel=True)
needs_threads = pytest.mark.skipif(_PARALLEL is None, reason="numba off or one thread")


def _kernel(min_items=1000):
    return compiled.ParallelKernel("test_scaled", _scaled_twin, _SERIAL, _PARALLEL, "x", min_items)


@needs_threads
def test_parallel_build_is_bit_for_bit_the_serial_one_and_chosen_by_size():
    k = _kernel(min_items=1000)
    x = np.random.default_rng(0).uniform(0, 10, 50_000)
    np.testing.assert_array_equal(k.run("parallel", x=x, scale=1.5), k.run("compiled", x=x, scale=1.5))
    np.testing.assert_allclose(k(x=x, scale=1.5), k.run("twin", x=x, scale=1.5), rtol=1e-15)
    calls = []
    k.parallel = lambda *a: calls.append("parallel") or _PARALLEL(*a)
    k.impl = lambda *a: calls.append("serial") or _SERIAL(*a)
    k(x=x[:999], scale=1.0)
    k(x=x[:1000], scale=1.0)
    assert calls == ["serial", "parallel"]


@needs_threads
def test_parallel_calls_from_python_threads_are_serialized():
    k = _kernel(min_items=10)
    x = np.random.default_rng(1).uniform(0, 10, 200_000)
    want = k.run("compiled", x=x, scale=2.0)
    errors = []

    def work():
        for _ in range(20):
            if not np.array_equal(k(x=x, scale=2.0), want):
                errors.append("differs")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


_FORK = """
import os, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import test_compiled as t
k = t._kernel(10)
x = np.arange(100_000, dtype=float)
want = k.run("compiled", x=x, scale=1.0)
assert np.array_equal(k(x=x, scale=1.0), want)
pid = os.fork()
if pid == 0:
    os._exit(0 if np.array_equal(k(x=x, scale=1.0), want) else 3)
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status))
"""


@needs_threads
@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_parallel_builds_work_in_a_forked_child():
    out = subprocess.run([sys.executable, "-c", _FORK, os.path.dirname(__file__)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "child 0" in out.stdout, out.stdout + out.stderr


def test_channelmarket_threads_is_checked_and_1_turns_the_parallel_builds_off():
    probe = "from channelmarket.envs import compiled; print(compiled.THREADS, compiled.jit(abs, parallel=True))"
    out = subprocess.run([sys.executable, "-c", probe], env=dict(os.environ, CHANNELMARKET_THREADS="1"),
                         capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.split() == ["1", "None"]
    bad = subprocess.run([sys.executable, "-c", probe], env=dict(os.environ, CHANNELMARKET_THREADS="two"),
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "CHANNELMARKET_THREADS='two'" in bad.stderr


def test_one_thread_by_default_and_auto_takes_numbas_count():
    probe = "import numba; from channelmarket.envs import compiled; print(compiled.THREADS, numba.config.NUMBA_NUM_THREADS)"
    unset = {k: v for k, v in os.environ.items() if k != "CHANNELMARKET_THREADS"}
    out = subprocess.run([sys.executable, "-c", probe], env=unset, capture_output=True, text=True, timeout=300,
                         check=True)
    assert out.stdout.split()[0] == "1"
    out = subprocess.run([sys.executable, "-c", probe], env=dict(unset, CHANNELMARKET_THREADS="auto"),
                         capture_output=True, text=True, timeout=300, check=True)
    threads, cores = out.stdout.split()
    assert threads == cores


def test_a_parallel_build_needs_the_argument_that_splits_it():
    # any callable stands for the parallel build: the check is on the arguments, so it runs whether or
    # not this process has a threaded build (CHANNELMARKET_THREADS=1 or numba off leave _PARALLEL None)
    parallel = _PARALLEL if _PARALLEL is not None else _scaled_twin
    with pytest.raises(TypeError, match="split"):
        compiled.register("test_no_split", _scaled_twin, _SERIAL, parallel=parallel)
    with pytest.raises(TypeError, match="split='y' is not an argument"):
        compiled.ParallelKernel("test_bad_split", _scaled_twin, _SERIAL, parallel, "y", 10)
    assert "test_no_split" not in compiled.KERNELS


_CACHED = '''
import sys
import numba
import numpy as np
from channelmarket.envs import compiled


def threads_used(n):
    out = np.zeros(n, dtype=np.int64)
    for i in compiled.prange(n):
        out[i] = numba.get_thread_id()
    return out


serial, parallel = compiled.jit(threads_used), compiled.jit(threads_used, parallel=True)
builds = {"serial": serial, "parallel": parallel}
for name in sys.argv[1:]:   # compiled (or loaded from the cache) in this order
    print(name, len(np.unique(builds[name](20_000))))
'''


@needs_threads
def test_the_serial_and_parallel_builds_keep_their_own_cached_code(tmp_path):
    """Regression: numba's disk cache keyed both builds of a function alike, so the build compiled
    second loaded the first one's machine code (a parallel build running on one thread, or a
    serial build starting threads), whichever order."""
    (tmp_path / "cached_kernel.py").write_text(_CACHED)
    env = dict(os.environ, CHANNELMARKET_THREADS="2", NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    for order in (["serial", "parallel"], ["parallel", "serial"]):   # the second run loads from the cache
        out = subprocess.run([sys.executable, str(tmp_path / "cached_kernel.py"), *order], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        used = dict(line.split() for line in out.stdout.splitlines())
        assert used == {"serial": "1", "parallel": "2"}, (order, out.stdout)
