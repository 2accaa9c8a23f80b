"""`envs.prefetch`: a hint that changes no value, compiled or in Python, and the negotiations that use it."""

import numpy as np
import pytest

from channelmarket.envs.compiled import USE_NUMBA, jit
from channelmarket.envs.mechanisms import bilateral
from channelmarket.envs.prefetch import AHEAD, prefetch


def _ahead(a, idx):
    flat = a.reshape(-1)
    s = 0.0
    for k in range(idx.shape[0]):
        prefetch(a, idx[(k + 8) % idx.shape[0]])
        prefetch(flat, idx[k] + 1_000_000)   # past the end: only an address, never read
        prefetch(flat, idx[k] - 1_000_000)   # before the start too
        s += float(flat[idx[k]])
    return s


def test_prefetch_is_a_hint_compiled_and_nothing_in_python():
    """A compiled loop asking for lines ahead (past either end too) sums what the plain loop sums,
    over 1D and 2D arrays of several dtypes; in Python it returns None and touches nothing."""
    compiled = jit(_ahead)
    rng = np.random.default_rng(3)
    for a in (rng.random(1000), rng.random((250, 4)), rng.integers(0, 9, 1000).astype(np.int32),
              rng.random(1000).astype(np.float32), rng.random(5)):
        idx = rng.integers(0, a.size, 300)
        before = a.copy()
        want = 0.0
        for i in idx:
            want += float(a.reshape(-1)[i])
        assert _ahead(a, idx) == want
        if compiled is not None:
            assert compiled(a, idx) == want
        np.testing.assert_array_equal(a, before)
    assert prefetch(np.zeros(3), 1) is None


@pytest.mark.parametrize("m", [0, 1, AHEAD - 1, AHEAD, AHEAD + 1, 60])
def test_negotiations_asking_ahead_equal_the_plain_loop(m):
    """`_negotiate_list` compiled (asking for the rows of the pair AHEAD on, and none past the list's
    end) writes what the same loop run by Python writes, bit for bit, for lists shorter and longer
    than the distance."""
    if not USE_NUMBA:
        pytest.skip("numba off: only the Python loop runs")
    rng = np.random.default_rng(m)
    n, e_n = 40, 70
    sell_end = rng.integers(0, n, e_n).astype(np.int32)
    buy_end = rng.integers(0, n, e_n).astype(np.int32)
    cd = np.zeros(e_n + 1, dtype=np.int32)
    cd[:m] = np.sort(rng.choice(e_n, m, replace=False))
    ask_q = np.column_stack([rng.uniform(40, 80, n), rng.uniform(0, 3, n)])
    bid_q = np.column_stack([rng.uniform(30, 70, n), rng.uniform(0, 3, n)])
    outs = []
    for fn in (bilateral._negotiate_list, bilateral._negotiate_list_nb):
        o_c, o_s, o_b = (np.full(e_n, -7, dtype=np.int64) for _ in range(3))
        o_p = np.full(e_n, -7.0)
        k = fn(cd, m, sell_end, buy_end, ask_q, bid_q, 5, 3, o_c, o_s, o_b, o_p)
        outs.append((k, o_c, o_s, o_b, o_p))
    (k0, *a), (k1, *b) = outs
    assert k0 == k1
    for x, y in zip(a, b):
        assert x.tobytes() == y.tobytes()
