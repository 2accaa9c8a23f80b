"""Proofs-as-tests for the ε-auction (``channelmarket.envs.eps_auction``).

Each test checks a statement the module docstring claims, against an independent reference:
scipy's ``linear_sum_assignment`` (dense, max-weight via zero-benefit stay-out padding, or
max-cardinality with -inf), ``min_weight_full_bipartite_matching`` (sparse, full matchings),
``maximum_bipartite_matching`` (cardinality) and brute-force enumeration (tiny instances).
Besides the k * eps optimality bound, the returned prices are checked as a dual certificate.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import maximum_bipartite_matching, min_weight_full_bipartite_matching

from channelmarket.envs import eps_auction as ea
from channelmarket.envs.eps_auction import assignment_benefit, auction, default_eps, distributed_auction

METHODS = ea.METHODS
TOL = 1e-9
HAS_NUMBA = ea.numba_available()


# --------------------------------------------------------------------------- references & checks


def dense_of(benefit):
    """Dense float copy with -inf for infeasible pairs (sparse: absent entries)."""
    if sp.issparse(benefit):
        csr = sp.csr_matrix(benefit)
        csr.sum_duplicates()
        a = np.full(csr.shape, -np.inf)
        rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
        a[rows, csr.indices] = csr.data
        return a
    return np.asarray(benefit, dtype=float)


def ref_max_weight(a):
    """Max-weight matching value: every bidder gets a private zero-benefit stay-out column."""
    n, m = a.shape
    if n == 0 or m == 0:
        return 0.0
    w = np.hstack([np.where(np.isfinite(a), a, -1e12), np.zeros((n, n))])
    r, c = linear_sum_assignment(w, maximize=True)
    return float(w[r, c].sum())


def ref_max_card(a):
    """(cardinality, benefit) of the best matching of maximum cardinality, for instances that
    have a matching of size min(n, m) (linear_sum_assignment with -inf = forbidden)."""
    r, c = linear_sum_assignment(a, maximize=True)
    return r.size, float(a[r, c].sum())


def brute_force(a):
    """(best max-weight value, (max cardinality, best benefit at that cardinality)) by enumeration."""
    n, m = a.shape
    best_w = 0.0
    best_c = (0, 0.0)

    def rec(i, used, total, card):
        nonlocal best_w, best_c
        if i == n:
            best_w = max(best_w, total)
            best_c = max(best_c, (card, total))
            return
        rec(i + 1, used, total, card)
        for j in range(m):
            if not used >> j & 1 and np.isfinite(a[i, j]):
                rec(i + 1, used | 1 << j, total + a[i, j], card + 1)

    rec(0, 0, 0.0, 0)
    return best_w, best_c


def usable_bidders(a, maximize_cardinality=False):
    """k of the bound: bidders with a usable pair (benefit > 0, or feasible in max-cardinality)."""
    ok = np.isfinite(a) if maximize_cardinality else (a > 0)
    return int(ok.any(axis=1).sum())


def check_solution(a, asg, prices, eps=None, maximize_cardinality=False):
    """Valid matching on feasible pairs; prices a dual certificate (max-weight mode).  Returns
    the total benefit."""
    n, m = a.shape
    assert asg.shape == (n,) and asg.dtype == np.int64
    assert prices.shape == (m,) and prices.dtype == np.float64
    on = np.flatnonzero(asg >= 0)
    objs = asg[on]
    assert ((asg >= -1) & (asg < m)).all()
    assert np.unique(objs).size == objs.size, "an object is assigned twice"
    assert np.isfinite(a[on, objs]).all(), "an infeasible pair is assigned"
    total = float(a[on, objs].sum()) if on.size else 0.0
    assert np.isfinite(prices).all() and (prices >= 0).all()
    free = np.setdiff1d(np.arange(m), objs)
    assert (prices[free] == 0).all(), "an unassigned object keeps a positive price"
    if not maximize_cardinality:
        assert (a[on, objs] > 0).all(), "max-weight mode assigned a pair of benefit <= 0"
        assert (prices[objs] <= a[on, objs] + TOL).all(), "a bidder pays above its benefit"
        if eps is not None and n and m:
            # weak duality: pi_i = max(0, max_j a_ij - p_j) and p are dual feasible
            pi = np.maximum(0.0, np.max(a - prices, axis=1, initial=-np.inf))
            dual = pi.sum() + prices.sum()
            assert dual - total <= usable_bidders(a) * eps + 1e-7 * max(1.0, abs(total))
    return total


def random_dense(rng, n, m, lo=-3, hi=6, p_inf=0.3, floats=False):
    a = rng.integers(lo, hi + 1, (n, m)).astype(float)
    if floats:
        a += rng.random((n, m))
    a[rng.random((n, m)) < p_inf] = -np.inf
    return a


def sparse_with_full_matching(rng, n, deg, lo=0, hi=9):
    """Square CSR with ~deg entries per row incl. a random permutation (so a perfect matching
    exists), integer benefits from [lo, hi] (explicit zeros included)."""
    rows = np.concatenate([np.repeat(np.arange(n), deg - 1), np.arange(n)])
    cols = np.concatenate([rng.integers(0, n, n * (deg - 1)), rng.permutation(n)])
    key = np.unique(rows * n + cols)
    rows, cols = key // n, key % n
    vals = rng.integers(lo, hi + 1, key.size).astype(float)
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, n))


# --------------------------------------------------------------------------- optimality


def use_twins(monkeypatch):
    """Run the solver's registered kernels as their twins (what CHANNELMARKET_NUMBA=0 selects)."""
    for k in ea._KERNELS.values():
        monkeypatch.setattr(k, "impl", k.twin)


@pytest.fixture(params=["compiled", "fallback"])
def backend(request, monkeypatch):
    """Run a test with the numba kernels and again with the numba-free path."""
    if request.param == "fallback":
        use_twins(monkeypatch)
    elif not HAS_NUMBA:
        pytest.skip("numba not installed")
    return request.param


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("scaling", [True, False])
def test_dense_integer_exact_vs_padded_lsa(method, scaling, backend):
    """Integer benefits, default eps: exactly the max-weight optimum, on rectangular instances
    both ways with ties (small range), negative benefits and infeasible pairs."""
    rng = np.random.default_rng(1000 + 2 * METHODS.index(method) + scaling)
    for _ in range(70):
        n, m = rng.integers(1, 11, 2)
        a = random_dense(rng, n, m, p_inf=rng.random() * 0.7)
        asg, prices = auction(a, method=method, scaling=scaling)
        total = check_solution(a, asg, prices, eps=default_eps(a))
        assert total == ref_max_weight(a)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("eps", [0.5, 0.05])
def test_dense_float_within_k_eps(method, eps, backend):
    """Real benefits, given eps: total within k * eps of optimal (k = usable bidders)."""
    rng = np.random.default_rng(int(eps * 100) + 7 * METHODS.index(method))
    for _ in range(50):
        n, m = rng.integers(1, 13, 2)
        a = random_dense(rng, n, m, lo=-2, hi=4, floats=True)
        asg, prices = auction(a, eps=eps, method=method)
        total = check_solution(a, asg, prices, eps=eps)
        opt = ref_max_weight(a)
        assert opt - usable_bidders(a) * eps - TOL <= total <= opt + TOL


@pytest.mark.parametrize("method", METHODS)
def test_large_instance_exact(method):
    """A 60 x 45 instance with many ties: exact, and Jacobi (dense path) and Gauss-Seidel agree
    on the value."""
    rng = np.random.default_rng(5)
    a = random_dense(rng, 60, 45, lo=0, hi=4, p_inf=0.5)
    asg, prices = auction(a, method=method)
    assert check_solution(a, asg, prices, eps=default_eps(a)) == ref_max_weight(a)
    asg, prices = auction(a.T.copy(), method=method)
    assert check_solution(a.T, asg, prices, eps=default_eps(a.T)) == ref_max_weight(a.T)


@pytest.mark.parametrize("method", METHODS)
def test_sparse_max_cardinality_vs_min_weight_full_matching(method):
    """Sparse square instances with a perfect matching (explicit zeros are feasible pairs):
    maximize_cardinality=True gives a perfect matching of the same benefit as scipy's LAPJVsp."""
    rng = np.random.default_rng(11 + METHODS.index(method))
    for _ in range(25):
        n = int(rng.integers(2, 40))
        b = sparse_with_full_matching(rng, n, deg=int(rng.integers(1, 5)), lo=-3)
        asg, prices = auction(b, method=method, maximize_cardinality=True)
        a = dense_of(b)
        total = check_solution(a, asg, prices, maximize_cardinality=True)
        shifted = b.copy()
        shifted.data = shifted.data - b.data.min() + 1.0  # LAPJVsp needs nonzero weights
        r, c = min_weight_full_bipartite_matching(shifted, maximize=True)
        assert (asg >= 0).sum() == n
        assert total == a[r, c].sum()


@pytest.mark.parametrize("method", METHODS)
def test_sparse_max_weight_vs_padded_lsa(method, backend):
    """Sparse rectangular instances, explicit zeros and negative entries: max-weight optimum."""
    rng = np.random.default_rng(21 + METHODS.index(method))
    for _ in range(40):
        n, m = (int(x) for x in rng.integers(1, 16, 2))
        b = sp.random(n, m, density=rng.random(), format="csr", random_state=rng)
        b.data = rng.integers(-2, 7, b.nnz).astype(float)  # zeros stay stored
        a = dense_of(b)
        asg, prices = auction(b, method=method)
        assert check_solution(a, asg, prices, eps=default_eps(b)) == ref_max_weight(a)
        assert assignment_benefit(b, asg) == ref_max_weight(a)


@pytest.mark.parametrize("method", METHODS)
def test_dense_max_cardinality_vs_lsa(method, backend):
    """Rectangular dense instances with a matching of size min(n, m) and forbidden pairs:
    maximize_cardinality=True equals linear_sum_assignment(maximize=True) exactly."""
    rng = np.random.default_rng(31 + METHODS.index(method))
    for _ in range(40):
        n, m = (int(x) for x in rng.integers(1, 11, 2))
        a = random_dense(rng, n, m, lo=-5, hi=5, p_inf=0.6)
        k = min(n, m)
        r, c = rng.permutation(n)[:k], rng.permutation(m)[:k]
        a[r, c] = rng.integers(-5, 6, k)  # guarantees a full matching
        asg, prices = auction(a, method=method, maximize_cardinality=True)
        total = check_solution(a, asg, prices, maximize_cardinality=True)
        assert ((asg >= 0).sum(), total) == ref_max_card(a)


@pytest.mark.parametrize("method", METHODS)
def test_max_cardinality_size_matches_maximum_bipartite_matching(method):
    """Without a full matching, the cardinality is still maximum (Hopcroft-Karp reference)."""
    rng = np.random.default_rng(41 + METHODS.index(method))
    for _ in range(40):
        n, m = (int(x) for x in rng.integers(1, 25, 2))
        b = sp.random(n, m, density=0.08 + 0.2 * rng.random(), format="csr", random_state=rng)
        b.data = rng.integers(-4, 5, b.nnz).astype(float)
        asg, prices = auction(b, method=method, maximize_cardinality=True)
        check_solution(dense_of(b), asg, prices, maximize_cardinality=True)
        pattern = b.copy()
        pattern.data[:] = 1.0
        expect = int((maximum_bipartite_matching(pattern, perm_type="column") >= 0).sum())
        assert (asg >= 0).sum() == expect


entries = st.sampled_from([-np.inf, -np.inf, -2.0, 0.0, 1.0, 2.0, 2.0, 3.0, 5.0])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    data=st.data(),
    method=st.sampled_from(METHODS),
    scaling=st.booleans(),
    as_sparse=st.booleans(),
)
def test_hypothesis_tiny_vs_brute_force(shape, data, method, scaling, as_sparse):
    """Tiny instances with heavy ties, infeasible pairs and zeros: both modes equal the
    brute-force optimum (max-weight value; cardinality and benefit in max-cardinality mode)."""
    n, m = shape
    a = np.array(data.draw(st.lists(entries, min_size=n * m, max_size=n * m)), dtype=float).reshape(n, m)
    if data.draw(st.booleans()):
        a = np.where(np.isfinite(a), a + np.array(data.draw(st.lists(
            st.floats(0, 1), min_size=n * m, max_size=n * m))).reshape(n, m), a)
    benefit = a
    if as_sparse:
        rows, cols = np.nonzero(np.isfinite(a))
        benefit = sp.csr_matrix((a[rows, cols], (rows, cols)), shape=(n, m))
    best_w, (card, best_c) = brute_force(a)
    asg, prices = auction(benefit, method=method, scaling=scaling)
    eps = default_eps(benefit)
    total = check_solution(a, asg, prices, eps=eps)
    assert best_w - usable_bidders(a) * eps - TOL <= total <= best_w + TOL
    asg, prices = auction(benefit, method=method, scaling=scaling, maximize_cardinality=True)
    total = check_solution(a, asg, prices, maximize_cardinality=True)
    assert (asg >= 0).sum() == card
    k = usable_bidders(a, True)
    assert best_c - k * default_eps(benefit, maximize_cardinality=True) - TOL <= total <= best_c + TOL


def test_integer_default_eps_is_below_one_over_k():
    a = np.array([[3, 1, -np.inf], [2, 0, 7], [-1, -2, -3]])
    assert default_eps(a) == 1 / 3  # two bidders with a positive benefit
    assert default_eps(a, maximize_cardinality=True) == 1 / 4
    f = a + 0.5
    assert default_eps(f) == pytest.approx(1e-6 * 7.5 / 3)


def test_gap_shrinks_with_eps():
    """On a fixed family, smaller eps never gives a larger mean gap, and the gap vanishes."""
    rng = np.random.default_rng(3)
    family = [rng.random((8, 8)) * 10 for _ in range(40)]
    opts = [ref_max_weight(a) for a in family]
    means = []
    for eps in [3.0, 1.0, 0.3, 0.1, 0.01]:
        gaps = []
        for a, opt in zip(family, opts):
            asg, _ = auction(a, eps=eps, scaling=False)
            gap = opt - assignment_benefit(a, asg)
            assert -TOL <= gap <= 8 * eps + TOL
            gaps.append(gap)
        means.append(np.mean(gaps))
    assert all(later <= earlier + 1e-6 for earlier, later in zip(means, means[1:])), means
    assert means[0] > 0.1 and means[-1] < 0.01 * means[0], means


def test_explicit_zero_is_feasible_absent_is_not():
    """A stored zero is a feasible pair (max-cardinality uses it), an absent entry is not;
    in max-weight mode a benefit-0 pair is never worth taking."""
    z = sp.csr_matrix((np.array([0.0]), (np.array([0]), np.array([0]))), shape=(1, 1))
    assert z.nnz == 1
    assert auction(z, maximize_cardinality=True)[0].tolist() == [0]
    assert auction(sp.csr_matrix((1, 1)), maximize_cardinality=True)[0].tolist() == [-1]
    assert auction(z)[0].tolist() == [-1]
    # the only perfect matching uses the explicit zero at (1, 0)
    b = sp.csr_matrix((np.array([5.0, 0.0, 1.0]), (np.array([0, 1, 1]), np.array([1, 0, 1]))), shape=(2, 2))
    assert auction(b, maximize_cardinality=True)[0].tolist() == [1, 0]


def test_more_bidders_than_objects_and_dead_rows():
    """Surplus bidders and bidders/objects without any feasible pair end unassigned."""
    a = np.full((6, 3), -np.inf)
    a[:4, :2] = [[5, 4], [6, 1], [2, 2], [7, 7]]
    for method in METHODS:
        asg, prices = auction(a, method=method)
        assert check_solution(a, asg, prices, eps=default_eps(a)) == ref_max_weight(a) == 13
        assert asg[4] == asg[5] == -1 and prices[2] == 0


@pytest.mark.parametrize("shape", [(0, 0), (0, 4), (4, 0)])
def test_empty_shapes(shape):
    asg, prices = auction(np.zeros(shape))
    assert asg.shape == (shape[0],) and prices.shape == (shape[1],)
    asg, prices = auction(sp.csr_matrix(shape), method="gauss_seidel", maximize_cardinality=True)
    assert asg.shape == (shape[0],) and prices.shape == (shape[1],)


def test_jacobi_ties_go_to_highest_bidder():
    """Three equal bids on one object in one Jacobi round: the highest bidder index wins;
    Gauss-Seidel lets bidder 0 bid first."""
    a = np.full((3, 1), 5.0)
    assert auction(a, eps=1.0, method="jacobi", scaling=False)[0].tolist() == [-1, -1, 0]
    assert auction(a, eps=1.0, method="gauss_seidel", scaling=False)[0].tolist() == [0, -1, -1]


# --------------------------------------------------------------------------- numba vs fallback


def _instances():
    rng = np.random.default_rng(77)
    out = [random_dense(rng, 30, 22, lo=-2, hi=8), random_dense(rng, 17, 40, lo=0, hi=3, p_inf=0.1)]
    out.append(random_dense(rng, 25, 25, lo=0, hi=5, floats=True))
    b = sparse_with_full_matching(rng, 120, 4)
    out += [b, sp.random(90, 60, density=0.05, format="csr", random_state=rng)]
    return out


@pytest.mark.parametrize("method", METHODS)
def test_numba_and_fallback_identical(method, monkeypatch):
    """The compiled kernels and the numba-free path (numpy Jacobi / plain-Python Gauss-Seidel)
    return bit-identical assignments and prices."""
    if not HAS_NUMBA:
        pytest.skip("numba not installed")
    configs = [dict(scaling=True), dict(scaling=False, eps=0.3), dict(maximize_cardinality=True)]
    compiled = [auction(b, method=method, **cfg) for b in _instances() for cfg in configs]
    calls = []
    use_twins(monkeypatch)
    spy_target = "_forward_jacobi" if method == "jacobi" else "_run_on_lists"
    real = getattr(ea, spy_target)
    monkeypatch.setattr(ea, spy_target, lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    fallback = [auction(b, method=method, **cfg) for b in _instances() for cfg in configs]
    assert calls, "the fallback path did not run"
    for (a1, p1), (a2, p2) in zip(compiled, fallback):
        np.testing.assert_array_equal(a1, a2)
        np.testing.assert_array_equal(p1, p2)


def test_dense_and_sparse_inputs_identical():
    """The same instance given dense or as CSR yields the same assignment and prices."""
    rng = np.random.default_rng(8)
    for _ in range(10):
        a = random_dense(rng, 20, 15, lo=1, hi=9, p_inf=0.5)
        rows, cols = np.nonzero(np.isfinite(a))
        b = sp.csr_matrix((a[rows, cols], (rows, cols)), shape=a.shape)
        for method in METHODS:
            d, s = auction(a, method=method), auction(b, method=method)
            np.testing.assert_array_equal(d[0], s[0])
            np.testing.assert_array_equal(d[1], s[1])


def test_imports_and_runs_with_numpy_only(tmp_path):
    """The solver imports without scipy and numba and the fallback solves correctly."""
    code = textwrap.dedent("""
        import sys
        for name in ("numba", "scipy"):
            sys.modules[name] = None
        from channelmarket.envs import eps_auction as mod
        import numpy as np
        a = np.array([[4., 1., 3.], [2., 0., 5.], [3., 2., 2.]])
        for method in mod.METHODS:
            asg, p = mod.auction(a, method=method)
            assert mod.assignment_benefit(a, asg) == 11.0, (method, asg)
        assert not mod.numba_available()
        print("ok")
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "benefit, exc, match",
    [
        (np.array([[1.0, np.nan]]), ValueError, "NaN"),
        (np.array([[1.0, np.inf]]), ValueError, r"\+inf"),
        (sp.csr_matrix(np.array([[1.0, np.nan]])), ValueError, "NaN"),
        (sp.csr_matrix(np.array([[np.inf, 1.0]])), ValueError, r"\+inf"),
        (np.zeros((2, 2, 2)), ValueError, "2-D"),
        (np.zeros(3), ValueError, "2-D"),
        ([[1.0, 2.0]], TypeError, "numpy.ndarray"),
        ("benefit", TypeError, "numpy.ndarray"),
        (np.array([[1 + 1j]]), TypeError, "real dtype"),
        (np.array([["a"]]), TypeError, "real dtype"),
    ],
)
def test_bad_benefit_is_rejected_clearly(benefit, exc, match):
    with pytest.raises(exc, match=match):
        auction(benefit)
    with pytest.raises(exc, match=match):
        distributed_auction(benefit, np.zeros((0, 2), dtype=int))


def test_bad_parameters_are_rejected():
    a = np.ones((2, 2))
    with pytest.raises(ValueError, match="method"):
        auction(a, method="hungarian")
    for eps in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="eps"):
            auction(a, eps=eps)
    with pytest.raises(TypeError, match="eps"):
        auction(a, eps="small")
    with pytest.raises(ValueError, match="scale_factor"):
        auction(a, scale_factor=1.0)
    with pytest.raises(ValueError, match="too small"):
        auction(a * 1e12, eps=1e-3)


# --------------------------------------------------------------------------- distributed


def ring_with_chords(rng, n, extra):
    edges = [(i, (i + 1) % n) for i in range(n)]
    edges += [tuple(int(x) for x in rng.integers(0, n, 2)) for _ in range(extra)]
    return np.array(edges, dtype=np.int64)


def test_distributed_matches_global_optimum_with_edges_down():
    """Random connected graphs with a ring edge and random chords down (still connected):
    agreement, all copies equal, and the k * eps bound (exact with integer benefits)."""
    rng = np.random.default_rng(51)
    for t in range(25):
        n, m = int(rng.integers(2, 16)), int(rng.integers(1, 16))
        floats = t % 3 == 0
        a = random_dense(rng, n, m, lo=-2, hi=9, floats=floats)
        edges = ring_with_chords(rng, n, extra=n // 2)
        mask = rng.random(len(edges)) < 0.6
        mask[:n] = True
        mask[int(rng.integers(0, n))] = False  # a ring minus one edge is a path: connected
        eps = 0.2 if floats else None
        res = distributed_auction(a, edges, eps=eps, edge_mask=mask, rng=t if t % 2 else None)
        assert res.agreed and res.converged
        assert res.rounds > res.diameter_bound
        eps = eps if eps else default_eps(a)
        total = check_solution(a, res.assignment, res.prices, eps=eps)
        bound = usable_bidders(a) * eps
        assert ref_max_weight(a) - bound - TOL <= total <= ref_max_weight(a) + TOL


def test_distributed_sparse_adjacency_path_and_star():
    """Sparse adjacency input (one flag per stored entry in the mask); a path has the largest
    diameter, a star the smallest; both agree on an optimal assignment."""
    rng = np.random.default_rng(52)
    n, m = 12, 9
    a = random_dense(rng, n, m, lo=0, hi=6)
    path = sp.csr_matrix((np.ones(n - 1), (np.arange(n - 1), np.arange(1, n))), shape=(n, n))
    star = sp.csr_matrix((np.ones(n - 1), (np.zeros(n - 1, int), np.arange(1, n))), shape=(n, n))
    for g, diam in [(path, n - 1), (star, 2)]:
        res = distributed_auction(a, g, edge_mask=np.ones(g.nnz, bool))
        assert res.diameter_bound == diam and res.agreed and res.converged
        assert check_solution(a, res.assignment, res.prices, eps=default_eps(a)) == ref_max_weight(a)


def test_distributed_raises_on_disconnected_graph():
    a = np.ones((4, 4))
    with pytest.raises(ValueError, match="disconnected"):
        distributed_auction(a, [(0, 1), (2, 3)])
    edges = np.array([(0, 1), (1, 2), (2, 3)])
    with pytest.raises(ValueError, match="disconnected"):
        distributed_auction(a, edges, edge_mask=[True, False, True])
    with pytest.raises(ValueError, match="edge_mask"):
        distributed_auction(a, edges, edge_mask=[True, False])
    with pytest.raises(TypeError, match="edge list"):
        distributed_auction(a, "ring")


def test_distributed_outbid_agent_learns_only_by_gossip():
    """Two agents want the same object at the ends of a path: the loser only learns through
    propagation, so the auction needs more rounds than on a complete graph."""
    a = np.array([[5.0, 1.0], [5.0, -np.inf], [-np.inf, -np.inf], [-np.inf, -np.inf], [5.0, 4.0]])
    path = np.array([(0, 1), (1, 2), (2, 3), (3, 4)])
    complete = np.array([(i, j) for i in range(5) for j in range(i + 1, 5)])
    far = distributed_auction(a, path)
    near = distributed_auction(a, complete)
    for res in (far, near):
        assert res.agreed and check_solution(a, res.assignment, res.prices) == ref_max_weight(a) == 9.0
    assert far.rounds > near.rounds


def test_benchmark_script_runs_tiny(capsys):
    """``python -m channelmarket.eval.bench_auction`` at toy sizes: zero gap on every row
    that solves the same problem as scipy."""
    from channelmarket.eval import bench_auction

    rows = bench_auction.run(dense_n=30, sparse_n=60, degree=4, repeats=1)
    assert {r["case"].split()[0] for r in rows} == {"dense", "sparse"}
    assert all(r["gap"] == 0 for r in rows if "max-weight" not in r["method"])
    assert all(r["gap"] <= 0 for r in rows)
    assert bench_auction.main(["--dense-n", "10", "--sparse-n", "20", "--repeats", "1"]) == 0
    assert "linear_sum_assignment" in capsys.readouterr().out
