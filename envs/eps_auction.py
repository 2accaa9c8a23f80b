"""ε-auction solver for max-weight bipartite matching (Bertsekas' auction algorithm).

Problem.  ``n`` bidders and ``m`` objects; ``benefit[i, j]`` is what bidder ``i`` gains from
object ``j``; some pairs are infeasible.  Find a matching (each bidder at most one object,
each object at most one bidder) of maximum total benefit.  A bidder may stay unassigned
(benefit 0), so pairs with benefit <= 0 are never worth taking: this is MAX-WEIGHT matching,
not perfect matching.  With ``maximize_cardinality=True`` the solver instead returns a
maximum-benefit matching among the matchings of maximum cardinality (what
``scipy.optimize.linear_sum_assignment`` computes on feasible instances), by adding a large
constant to every feasible benefit.

Forward auction [1].  Every object ``j`` has a price ``p_j`` (initially 0).  An unassigned
bidder ``i`` looks at the net values ``benefit[i, j] - p_j``: best ``v`` on object ``j*``,
second best ``w``.  It bids ``p_j* + v - w + eps`` for ``j*``, i.e. raises the price until
``j*`` is only ``eps`` better than its second choice, and takes ``j*`` from its owner.
Jacobi: all unassigned bidders bid at once, each object goes to the highest bid (ties to the
highest bidder index).  Gauss-Seidel: one bidder at a time.

Stay-out objects.  Each bidder also owns a private "stay-out" object of benefit 0 and price
0.  It is the second choice of a bidder with a single usable object (so the increment stays
bounded), and a bidder whose best net value is <= 0 takes it and stops bidding.  This makes
every instance feasible and the auction terminating, also with more bidders than objects or
with infeasible pairs.  A bid is also capped at the bidder's own benefit (it never pays more
than the object is worth to it; its net value is then 0 >= w - eps, still eps-CS).  Each
capped bid ends the pair (prices only rise), the others raise a price by >= eps, and prices
stay <= max benefit, hence termination.

ε-complementary slackness (ε-CS) and the bound.  At the end every assigned bidder holds an
object within ``eps`` of its best net value (stay-out counted as 0), every stay-out bidder has
no net value above ``eps``, and every unassigned object has price 0.  Then bidder profits
``pi_i = max(0, max_j benefit[i, j] - p_j)`` and prices ``p`` are a feasible solution of the
dual LP (min sum pi + sum p, pi_i + p_j >= benefit[i, j], pi, p >= 0) whose objective exceeds
the matching's benefit by at most ``k * eps``, ``k`` being the number of bidders with a usable
pair; by weak duality the result is within ``k * eps`` of optimal, and with integer benefits
and ``eps < 1/k`` (the default) it is optimal.

ε-scaling [1, 3].  Phases with ``eps = eps0, eps0/f, eps0/f**2, ..., eps_final`` keep the
prices; a phase starts from the previous assignment minus the bidders that violate ε-CS at
the new eps.  Prices carried over make objects nobody bids on in a phase end unassigned with a
positive price, which breaks the dual bound; after every phase a reverse auction [2, Sec. 7.2]
(such objects bid for bidders, at the second best offer minus eps, or drop their price to 0)
restores it while keeping ε-CS: each reverse bid raises the winning bidder's profit by >= eps.

Implementation.  Jacobi is vectorized numpy over bidders (per-row best / second best with
``np.maximum.reduceat`` on CSR); with numba installed both methods run as compiled kernels
(registered in ``channelmarket.envs.compiled``, which ``CHANNELMARKET_NUMBA=0`` switches off)
that reproduce the numpy Jacobi bit for bit; without numba Gauss-Seidel runs the same kernel
code as plain Python.

Distributed variant [4] (``distributed_auction``).  Every agent (bidder) keeps its own copy of
the price vector and of the highest-bidder vector; an agent that is not the highest bidder
in its own copy bids under its own prices, then all agents merge their neighbours' copies
(per object the highest price, ties to the highest bidder index).  On a connected graph the
copies agree after ``diameter`` quiet rounds and the same ``k * eps`` bound holds.  This is
the scheme the Python-DTU team used for goal assignment in MAPC 2011 [5].

References
----------
[1] D. P. Bertsekas, "The auction algorithm: a distributed relaxation method for the
    assignment problem", Annals of Operations Research 14, 105-123, 1988.
[2] D. P. Bertsekas, "Network Optimization: Continuous and Discrete Models", Athena
    Scientific, 1998 (asymmetric assignment, forward/reverse auction).
[3] D. P. Bertsekas, D. A. Castanon, "Parallel synchronous and asynchronous implementations
    of the auction algorithm", Parallel Computing 17, 707-732, 1991.
[4] M. M. Zavlanos, L. Spesivtsev, G. J. Pappas, "A distributed auction algorithm for the
    assignment problem", Proc. 47th IEEE CDC, 2008.
[5] M. Ettienne, S. Vester, J. Villadsen, "Implementing a multi-agent system in Python with
    an auction-based agreement approach", MAPC 2011.
"""

from __future__ import annotations

import functools
import math
import sys
import types
from typing import NamedTuple

import numpy as np

from .compiled import USE_NUMBA as _USE_NUMBA
from .compiled import jit as _jit
from .compiled import register as _register_kernel

__all__ = [
    "auction",
    "distributed_auction",
    "DistributedAuctionResult",
    "assignment_benefit",
    "default_eps",
    "numba_available",
    "METHODS",
]

METHODS = ("jacobi", "gauss_seidel")

_UNASSIGNED = -1
_OUT = -2  # internal: the bidder took its private stay-out object
_FLOAT_UNIT = 1e-6  # default resolution for non-integer benefits, relative to max |benefit|
_MIN_EPS_REL = 2.0**-40  # eps below this times the largest benefit could stall in float64


# --------------------------------------------------------------------------- input checks


def _sparse_module(x):
    """scipy.sparse if ``x`` is a scipy sparse matrix/array (scipy is never imported here)."""
    sp = sys.modules.get("scipy.sparse")
    if sp is not None and sp.issparse(x):
        return sp
    return None


def _read_benefit(benefit):
    """Validate ``benefit``; return ``("dense", a, shape)`` or ``("csr", (indptr, indices, data), shape)``.

    Dense: float64 copy, ``-inf`` = infeasible.  Sparse: canonical CSR arrays (int64
    indices sorted per row, duplicates summed), ``-inf`` entries dropped, explicit zeros kept.
    """
    sp = _sparse_module(benefit)
    if sp is not None:
        if len(benefit.shape) != 2:
            raise ValueError(f"benefit must be 2-D (n_bidders x n_objects); got shape {benefit.shape}")
        if benefit.dtype.kind not in "biuf":
            raise TypeError(f"benefit must have a real dtype (bool, int, float); got {benefit.dtype}")
        csr = sp.csr_matrix(benefit, dtype=np.float64, copy=True)
        csr.sum_duplicates()  # canonical: sorted indices, no duplicates; explicit zeros stay
        data = np.asarray(csr.data, dtype=np.float64)
        _check_values(data, sparse=True)
        indptr = csr.indptr.astype(np.int64)
        indices = csr.indices.astype(np.int64)
        n, m = csr.shape
        if np.isneginf(data).any():
            rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
            keep = ~np.isneginf(data)
            indptr, indices, data = _csr_from_sorted(rows[keep], indices[keep], data[keep], n)
        return "csr", (indptr, indices, data), (n, m)
    if not isinstance(benefit, np.ndarray):
        raise TypeError(
            "benefit must be a 2-D numpy.ndarray (-inf = infeasible pair) or a scipy.sparse "
            f"matrix/array (absent entry = infeasible pair); got {type(benefit).__name__}"
        )
    if benefit.ndim != 2:
        raise ValueError(f"benefit must be 2-D (n_bidders x n_objects); got ndim={benefit.ndim}")
    if benefit.dtype.kind not in "biuf":
        raise TypeError(f"benefit must have a real dtype (bool, int, float); got {benefit.dtype}")
    a = np.array(benefit, dtype=np.float64, order="C", copy=True)
    _check_values(a, sparse=False)
    return "dense", a, a.shape


def _check_values(v, sparse):
    """Reject NaN and +inf, naming the offending value."""
    if v.size == 0 or np.isfinite(v).all():
        return
    if np.isnan(v).any():
        raise ValueError("benefit contains NaN; benefits must be finite (or -inf for an infeasible pair)")
    if np.isposinf(v).any():
        hint = "leave the entry out" if sparse else "use -inf"
        raise ValueError(f"benefit contains +inf; benefits must be finite ({hint} for an infeasible pair)")


def _check_eps(eps):
    if eps is None:
        return None
    try:
        e = float(eps)
    except (TypeError, ValueError):
        raise TypeError(f"eps must be a positive float or None; got {eps!r}") from None
    if not (math.isfinite(e) and e > 0.0):
        raise ValueError(f"eps must be a positive finite float or None; got {eps!r}")
    return e


def _csr_from_sorted(rows, cols, vals, n):
    """CSR arrays from entries already sorted by row (int64 indices)."""
    counts = np.bincount(rows, minlength=n) if rows.size else np.zeros(n, dtype=np.int64)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr, np.ascontiguousarray(cols, dtype=np.int64), np.ascontiguousarray(vals, dtype=np.float64)


def _is_integral(v):
    return bool(v.size == 0 or (np.abs(v).max() <= 2.0**52 and (v.astype(np.int64) == v).all()))


# --------------------------------------------------------------------------- matrix views
# Two views of the working benefit matrix (only useful pairs; -inf / absent = unusable).
# ``top2`` is the vectorized per-row best / second-best used by the numpy Jacobi auction;
# ``kernel_arrays`` is the CSR triple the kernels walk (dense: indices None, data = a.ravel()).


class _Dense:
    """Dense benefit matrix with -inf for infeasible pairs."""

    def __init__(self, a):
        self.a = a
        self.shape = a.shape
        self._t = None
        self._k = None

    def transpose(self):
        if self._t is None:
            self._t = _Dense(np.ascontiguousarray(self.a.T))
        return self._t

    def kernel_arrays(self):
        if self._k is None:
            n, m = self.shape
            indptr = np.arange(0, n * m + 1, m, dtype=np.int64)
            self._k = (indptr, None, self.a.ravel())  # None: column = position in the row
        return self._k

    def top2(self, rows, offsets):
        """For each row in ``rows``: column of the best ``a - offsets`` (first on ties), its
        benefit, the best and the second-best net value (-inf if none)."""
        net = self.a[rows] - offsets
        r = np.arange(rows.size)
        j1 = np.argmax(net, axis=1)
        v1 = net[r, j1]
        a1 = self.a[rows, j1]
        net[r, j1] = -np.inf
        v2 = net.max(axis=1)
        return j1.astype(np.int64), a1, v1, v2


class _CSR:
    """CSR benefit matrix (absent entry = infeasible); best/second-best via ``reduceat``."""

    def __init__(self, indptr, indices, data, shape):
        self.indptr, self.indices, self.data = indptr, indices, data
        self.shape = shape
        self._t = None

    def kernel_arrays(self):
        return self.indptr, self.indices, self.data

    def transpose(self):
        if self._t is None:
            n, m = self.shape
            rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(self.indptr))
            order = np.argsort(self.indices, kind="stable")  # by column, then row
            self._t = _CSR(*_csr_from_sorted(self.indices[order], rows[order], self.data[order], m), (m, n))
        return self._t

    def top2(self, rows, offsets):
        """Same contract as ``_Dense.top2``; rows without entries get v1 = v2 = -inf."""
        k = rows.size
        j1 = np.zeros(k, dtype=np.int64)
        a1 = np.zeros(k)
        v1 = np.full(k, -np.inf)
        v2 = np.full(k, -np.inf)
        starts = self.indptr[rows]
        lens = self.indptr[rows + 1] - starts
        nz = np.flatnonzero(lens > 0)
        if nz.size == 0:
            return j1, a1, v1, v2
        starts, lens = starts[nz], lens[nz]
        seg = np.zeros(nz.size, dtype=np.int64)
        np.cumsum(lens[:-1], out=seg[1:])
        total = int(seg[-1] + lens[-1])
        pos = np.arange(total, dtype=np.int64)
        idx = pos + np.repeat(starts - seg, lens)
        cols = self.indices[idx]
        net = self.data[idx] - offsets[cols]
        best = np.maximum.reduceat(net, seg)
        seg_of = np.repeat(np.arange(nz.size), lens)
        first = np.minimum.reduceat(np.where(net == best[seg_of], pos, total), seg)
        net[first] = -np.inf
        j1[nz] = cols[first]
        a1[nz] = self.data[idx[first]]
        v1[nz] = best
        v2[nz] = np.maximum.reduceat(net, seg)
        return j1, a1, v1, v2


# --------------------------------------------------------------------------- Jacobi, numpy
# The vectorized reference implementation (and the fallback without numba).  The compiled
# Jacobi kernels below reproduce it operation for operation, hence bit-identical results.


def _last_per_group(keys, primary):
    """Positions of the lexicographically largest ``keys`` (most significant last) within each
    ``primary`` group, and the other positions."""
    order = np.lexsort((*keys, primary))
    g = primary[order]
    last = np.ones(order.size, dtype=bool)
    last[:-1] = g[1:] != g[:-1]
    return order[last], order[~last]


def _warm_start(mat, prices, eps, assigned, owner, held):
    """Keep from the previous phase only what satisfies eps-CS at the new eps: a holder more
    than eps below its best option (stay-out = 0) and a stay-out bidder with a net value
    above eps become unassigned again."""
    rows = np.flatnonzero(assigned != _UNASSIGNED)
    if rows.size == 0:
        return
    _, _, v1, _ = mat.top2(rows, prices)
    cur = assigned[rows]
    on = cur >= 0
    net = np.zeros(rows.size)
    net[on] = held[rows[on]] - prices[cur[on]]
    bad = net < np.maximum(v1, 0.0) - eps
    owner[cur[bad & on]] = _UNASSIGNED
    assigned[rows[bad]] = _UNASSIGNED


def _forward_jacobi(mat, prices, eps, assigned, owner, held):
    """Jacobi forward auction: all unassigned bidders bid at once; each object goes to the
    highest bid, ties to the highest bidder index; a bid never exceeds the bidder's benefit."""
    _warm_start(mat, prices, eps, assigned, owner, held)
    bidders = np.flatnonzero(assigned == _UNASSIGNED)
    while bidders.size:
        j1, a1, v1, v2 = mat.top2(bidders, prices)
        stay = v1 <= 0.0
        if stay.any():
            assigned[bidders[stay]] = _OUT
            go = ~stay
            bidders, j1, a1, v2 = bidders[go], j1[go], a1[go], v2[go]
            if bidders.size == 0:
                break
        bid = np.minimum(a1 - np.maximum(v2, 0.0) + eps, a1)
        win, lose = _last_per_group((bidders, bid), j1)
        wj, wi = j1[win], bidders[win]
        prev = owner[wj]
        displaced = prev[prev >= 0]
        assigned[displaced] = _UNASSIGNED
        owner[wj] = wi
        assigned[wi] = wj
        held[wi] = a1[win]
        prices[wj] = bid[win]
        bidders = np.concatenate([bidders[lose], displaced])


def _reverse_jacobi(matT, prices, eps, assigned, owner, held, profit):
    """Jacobi reverse auction: every unassigned object with a positive price bids for its best
    bidder (value benefit - profit) at price max(0, second best - eps), or drops its price to
    0 if even the best is within eps of 0; each bidder takes the offer leaving it the largest
    profit, ties to the highest object index."""
    objs = np.flatnonzero((owner == _UNASSIGNED) & (prices > 0.0))
    while objs.size:
        i1, a1, beta, omega = matT.top2(objs, profit)
        drop = beta - eps <= 0.0
        if drop.any():
            prices[objs[drop]] = 0.0
            go = ~drop
            objs, i1, a1, omega = objs[go], i1[go], a1[go], omega[go]
            if objs.size == 0:
                break
        newp = np.maximum(omega - eps, 0.0)
        offer = a1 - newp
        win, lose = _last_per_group((objs, offer), i1)
        wi, wj = i1[win], objs[win]
        old = assigned[wi]
        freed = old[old >= 0]
        owner[freed] = _UNASSIGNED
        assigned[wi] = wj
        owner[wj] = wi
        prices[wj] = newp[win]
        held[wi] = a1[win]
        profit[wi] = offer[win]
        objs = np.concatenate([objs[lose], freed[prices[freed] > 0.0]])


# --------------------------------------------------------------------------- kernels
# Plain Python in numba's subset, compiled with numba.njit(cache=True) when numba imports.
# Without numba the Gauss-Seidel kernels run as plain Python (on lists), the Jacobi ones are
# replaced by the numpy functions above.  State: assigned[i] = object, -1 (bidding) or -2
# (stay-out); owner[j] = bidder or -1; held[i] = benefit of the held object.


def _gs_forward_kernel(indptr, indices, data, prices, eps, assigned, owner, held):
    n = len(assigned)
    stack = np.empty(n, np.int64)
    top = 0
    for i in range(n - 1, -1, -1):
        if assigned[i] != -1:  # warm start: keep what still satisfies eps-CS
            best = 0.0
            start = indptr[i]
            for k in range(start, indptr[i + 1]):
                if indices is None:
                    v = data[k] - prices[k - start]
                else:
                    v = data[k] - prices[indices[k]]
                if v > best:
                    best = v
            j = assigned[i]
            net = held[i] - prices[j] if j >= 0 else 0.0
            if net >= best - eps:
                continue
            if j >= 0:
                owner[j] = -1
            assigned[i] = -1
        stack[top] = i
        top += 1
    while top > 0:
        top -= 1
        i = stack[top]
        best, second, bj, ba = _top_two(indptr[i], indptr[i + 1], indices, data, prices)
        if best <= 0.0:
            assigned[i] = -2
            continue
        w = second if second > 0.0 else 0.0
        bid = ba - w + eps
        prices[bj] = bid if bid < ba else ba
        prev = owner[bj]
        if prev >= 0:
            assigned[prev] = -1
            stack[top] = prev
            top += 1
        owner[bj] = i
        assigned[i] = bj
        held[i] = ba


def _gs_reverse_kernel(cindptr, crows, cdata, prices, eps, assigned, owner, held, profit):
    m = len(owner)
    stack = np.empty(m, np.int64)
    top = 0
    for j in range(m - 1, -1, -1):
        if owner[j] == -1 and prices[j] > 0.0:
            stack[top] = j
            top += 1
    while top > 0:
        top -= 1
        j = stack[top]
        best, second, bi, ba = _top_two(cindptr[j], cindptr[j + 1], crows, cdata, profit)
        if best - eps <= 0.0:
            prices[j] = 0.0
            continue
        newp = second - eps
        if newp < 0.0:
            newp = 0.0
        old = assigned[bi]
        if old >= 0:
            owner[old] = -1
            if prices[old] > 0.0:
                stack[top] = old
                top += 1
        assigned[bi] = j
        owner[j] = bi
        prices[j] = newp
        held[bi] = ba
        profit[bi] = ba - newp


def _top_two_py(start, stop, cols, vals, less):
    """The best and second-best net value ``vals[k] - less[col]`` over one row's entries
    [start, stop) (columns ``cols[k]``, or ``k - start`` for a dense row: ``cols`` None), the best's
    column and gross value: a bidder's scan in the forward phase (net of prices), an object's in the
    reverse phase (net of profits)."""
    best = -np.inf
    second = -np.inf
    arg = -1
    gross = 0.0
    for k in range(start, stop):
        if cols is None:
            c = k - start
        else:
            c = cols[k]
        v = vals[k] - less[c]
        if v > best:
            second = best
            best = v
            arg = c
            gross = vals[k]
        elif v > second:
            second = v
    return best, second, arg, gross


_top_two = _jit(_top_two_py, inline=True) or _top_two_py


def _jacobi_forward_kernel(indptr, indices, data, prices, eps, assigned, owner, held):
    n = len(assigned)
    m = len(owner)
    cur = np.empty(n, np.int64)
    nxt = np.empty(n, np.int64)
    nc = 0
    # warm start, decided on the prices before any change (as _warm_start)
    drop = np.zeros(n, np.bool_)
    for i in range(n):
        if assigned[i] != -1:
            best = 0.0
            start = indptr[i]
            for k in range(start, indptr[i + 1]):
                if indices is None:
                    v = data[k] - prices[k - start]
                else:
                    v = data[k] - prices[indices[k]]
                if v > best:
                    best = v
            j = assigned[i]
            net = held[i] - prices[j] if j >= 0 else 0.0
            drop[i] = net < best - eps
    for i in range(n):
        if drop[i]:
            if assigned[i] >= 0:
                owner[assigned[i]] = -1
            assigned[i] = -1
        if assigned[i] == -1:
            cur[nc] = i
            nc += 1
    bid_obj = np.empty(n, np.int64)
    bid_val = np.empty(n)
    bid_ben = np.empty(n)
    win_t = np.full(m, -1, np.int64)
    touched = np.empty(n, np.int64)
    while nc > 0:
        nt = 0
        for t in range(nc):
            i = cur[t]
            best, second, bj, ba = _top_two(indptr[i], indptr[i + 1], indices, data, prices)
            if best <= 0.0:
                assigned[i] = -2
                bid_obj[t] = -1
                continue
            w = second if second > 0.0 else 0.0
            bid = ba - w + eps
            if bid > ba:
                bid = ba
            bid_obj[t] = bj
            bid_val[t] = bid
            bid_ben[t] = ba
            q = win_t[bj]
            if q < 0:
                win_t[bj] = t
                touched[nt] = bj
                nt += 1
            elif bid > bid_val[q] or (bid == bid_val[q] and i > cur[q]):
                win_t[bj] = t
        nn = 0
        for t in range(nc):
            j = bid_obj[t]
            if j >= 0 and win_t[j] != t:
                nxt[nn] = cur[t]
                nn += 1
        for q in range(nt):
            j = touched[q]
            t = win_t[j]
            win_t[j] = -1
            i = cur[t]
            prev = owner[j]
            if prev >= 0:
                assigned[prev] = -1
                nxt[nn] = prev
                nn += 1
            owner[j] = i
            assigned[i] = j
            held[i] = bid_ben[t]
            prices[j] = bid_val[t]
        cur, nxt = nxt, cur
        nc = nn


def _jacobi_reverse_kernel(cindptr, crows, cdata, prices, eps, assigned, owner, held, profit):
    m = len(owner)
    n = len(assigned)
    cur = np.empty(m, np.int64)
    nxt = np.empty(m, np.int64)
    nc = 0
    for j in range(m):
        if owner[j] == -1 and prices[j] > 0.0:
            cur[nc] = j
            nc += 1
    off_bidder = np.empty(m, np.int64)
    off_price = np.empty(m)
    off_val = np.empty(m)
    off_ben = np.empty(m)
    win_t = np.full(n, -1, np.int64)
    touched = np.empty(m, np.int64)
    while nc > 0:
        nt = 0
        for t in range(nc):
            j = cur[t]
            best, second, bi, ba = _top_two(cindptr[j], cindptr[j + 1], crows, cdata, profit)
            if best - eps <= 0.0:
                prices[j] = 0.0
                off_bidder[t] = -1
                continue
            newp = second - eps
            if newp < 0.0:
                newp = 0.0
            offer = ba - newp
            off_bidder[t] = bi
            off_price[t] = newp
            off_val[t] = offer
            off_ben[t] = ba
            q = win_t[bi]
            if q < 0:
                win_t[bi] = t
                touched[nt] = bi
                nt += 1
            elif offer > off_val[q] or (offer == off_val[q] and j > cur[q]):
                win_t[bi] = t
        nn = 0
        for t in range(nc):
            i = off_bidder[t]
            if i >= 0 and win_t[i] != t:
                nxt[nn] = cur[t]
                nn += 1
        for q in range(nt):
            i = touched[q]
            t = win_t[i]
            win_t[i] = -1
            j = cur[t]
            old = assigned[i]
            if old >= 0:
                owner[old] = -1
                if prices[old] > 0.0:
                    nxt[nn] = old
                    nn += 1
            assigned[i] = j
            owner[j] = i
            prices[j] = off_price[t]
            held[i] = off_ben[t]
            profit[i] = off_val[t]
        cur, nxt = nxt, cur
        nc = nn


def _matrix(indptr, indices, data, n_cols):
    """The matrix view of a kernel's arrays (dense when ``indices`` is None)."""
    n = indptr.shape[0] - 1
    if indices is None:
        return _Dense(data.reshape(n, n_cols))
    return _CSR(indptr, indices, data, (n, n_cols))


def _jacobi_forward_numpy(indptr, indices, data, prices, eps, assigned, owner, held):
    """Twin of ``_jacobi_forward_kernel``: the vectorized numpy Jacobi forward phase."""
    _forward_jacobi(_matrix(indptr, indices, data, prices.shape[0]), prices, eps, assigned, owner, held)


def _jacobi_reverse_numpy(cindptr, crows, cdata, prices, eps, assigned, owner, held, profit):
    """Twin of ``_jacobi_reverse_kernel``: the vectorized numpy Jacobi reverse phase."""
    _reverse_jacobi(_matrix(cindptr, crows, cdata, assigned.shape[0]), prices, eps, assigned, owner, held, profit)


@functools.lru_cache(maxsize=None)
def _as_python(kernel):
    """``kernel``'s own code with the compiled helpers it calls bound to their Python originals, so
    the twin runs it on lists."""
    return types.FunctionType(kernel.__code__, {**kernel.__globals__, "_top_two": _top_two_py}, kernel.__name__)


def _run_on_lists(kernel, args):
    """Run ``kernel`` as plain Python on lists (far faster element access than numpy
    scalars), then copy the mutated state back into the arrays."""
    lists = [a.tolist() if isinstance(a, np.ndarray) else a for a in args]
    _as_python(kernel)(*lists)
    for a, lst in zip(args[3:], lists[3:]):  # the state arguments
        if isinstance(a, np.ndarray):
            a[:] = lst


def _gs_forward_python(indptr, indices, data, prices, eps, assigned, owner, held):
    """Twin of the compiled ``_gs_forward_kernel``: the same code as plain Python."""
    _run_on_lists(_gs_forward_kernel, (indptr, indices, data, prices, eps, assigned, owner, held))


def _gs_reverse_python(cindptr, crows, cdata, prices, eps, assigned, owner, held, profit):
    """Twin of the compiled ``_gs_reverse_kernel``: the same code as plain Python."""
    _run_on_lists(_gs_reverse_kernel, (cindptr, crows, cdata, prices, eps, assigned, owner, held, profit))


# One kernel per (method, direction) in the project's registry (`envs.compiled`), which
# CHANNELMARKET_NUMBA governs: compiled with numba, else the twins above.
_KERNELS = {
    ("gauss_seidel", "forward"): _register_kernel("auction_gauss_seidel_forward", _gs_forward_python,
                                                  _jit(_gs_forward_kernel)),
    ("gauss_seidel", "reverse"): _register_kernel("auction_gauss_seidel_reverse", _gs_reverse_python,
                                                  _jit(_gs_reverse_kernel)),
    ("jacobi", "forward"): _register_kernel("auction_jacobi_forward", _jacobi_forward_numpy,
                                            _jit(_jacobi_forward_kernel)),
    ("jacobi", "reverse"): _register_kernel("auction_jacobi_reverse", _jacobi_reverse_numpy,
                                            _jit(_jacobi_reverse_kernel)),
}


def numba_available():
    """True if the compiled kernels are used (numba imports and CHANNELMARKET_NUMBA is not 0)."""
    return _USE_NUMBA


def _phase_solvers(mat, method):
    """(forward, reverse) callables on the state ``(prices, eps, assigned, owner, held[, profit])``."""
    fwd_k, rev_k = _KERNELS[(method, "forward")].impl, _KERNELS[(method, "reverse")].impl
    return (
        lambda *state: fwd_k(*mat.kernel_arrays(), *state),
        lambda *state: rev_k(*mat.transpose().kernel_arrays(), *state),
    )


# --------------------------------------------------------------------------- driver


def default_eps(benefit, maximize_cardinality=False):
    """The final eps ``auction`` uses when ``eps=None``: ``unit / (k + 1)``.

    ``k`` is the number of bidders with a usable pair; ``unit`` is 1 for integer benefits
    (then ``k * eps < 1`` and the auction is exactly optimal) and ``1e-6 * max |benefit|``
    otherwise (total benefit within ``1e-6 * max |benefit|`` of optimal).  Raised if needed
    to ``2**-40 * max benefit`` so that float64 prices still move.
    """
    kind, *rest = _read_benefit(benefit)
    return _prepare(kind, rest, None, bool(maximize_cardinality))[1]


def _prepare(kind, rest, eps, maximize_cardinality):
    """Working matrix (usable pairs only, all benefits > 0), final eps, offset, active bidders.

    Max-weight: pairs with benefit <= 0 are dropped (never worth taking).  Max-cardinality:
    every feasible benefit gets ``offset`` added, large enough that one more matched pair
    outweighs any loss in benefit plus the ``k * eps`` slack.
    """
    if kind == "dense":
        a, (n, m) = rest[0], rest[0].shape
        use = np.isfinite(a) if maximize_cardinality else (a > 0.0)
        vals = a[use]
        active = use.any(axis=1)
    else:
        (indptr, indices, data), (n, m) = rest
        use = np.isfinite(data) if maximize_cardinality else (data > 0.0)
        vals = data[use]
        rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
        active = np.bincount(rows[use], minlength=n) > 0
    if vals.size == 0:
        return None, (eps if eps is not None else 1.0), 0.0, active
    k = int(active.sum())
    unit = 1.0 if _is_integral(vals) else _FLOAT_UNIT * float(np.abs(vals).max())
    eps_final = eps if eps is not None else unit / (k + 1)
    lo, hi = float(vals.min()), float(vals.max())

    def offset_for(e):
        return float(math.ceil(k * (hi - lo + e)) + max(0.0, -lo) + 1.0) if maximize_cardinality else 0.0

    offset = offset_for(eps_final)
    top = hi + offset
    if eps_final < top * _MIN_EPS_REL:
        if eps is not None:
            raise ValueError(
                f"eps={eps_final:g} is too small for benefits up to {top:g} in float64 "
                f"(need eps >= {top * _MIN_EPS_REL:g}); rescale the benefits or raise eps"
            )
        eps_final = top * _MIN_EPS_REL
        offset = offset_for(eps_final)
    if kind == "dense":
        a[~use] = -np.inf
        if offset:
            a += offset  # -inf stays -inf
        mat = _Dense(a)
    else:
        if not use.all():
            indptr, indices, data = _csr_from_sorted(rows[use], indices[use], data[use], n)
        mat = _CSR(indptr, indices, data + offset, (n, m))
    return mat, eps_final, offset, active


def auction(benefit, eps=None, method="jacobi", scaling=True, *, maximize_cardinality=False, scale_factor=7.0):
    """Maximum-benefit matching of bidders to objects by the ε-auction.

    Parameters
    ----------
    benefit : (n_bidders, n_objects) numpy array or scipy.sparse matrix/array
        Dense: ``-inf`` marks an infeasible pair.  Sparse: absent entries are infeasible,
        explicitly stored zeros are feasible pairs of benefit 0.  Any shape, either way
        rectangular.  NaN and +inf are rejected.
    eps : float or None
        Final bid increment.  The total benefit is within ``k * eps`` of optimal, ``k`` =
        bidders with a usable pair.  None: ``default_eps`` (exact for integer benefits).
    method : "jacobi" or "gauss_seidel"
        Jacobi: all unassigned bidders bid at once, ties to the highest bidder.
        Gauss-Seidel: one bidder at a time.  Both compiled with numba when it is installed;
        otherwise Jacobi runs vectorized in numpy and Gauss-Seidel as plain Python (same
        results either way).
    scaling : bool
        ε-scaling: phases with eps from ``max benefit / scale_factor`` down to ``eps``.
    maximize_cardinality : bool
        False: max-weight matching, pairs with benefit <= 0 are never assigned.  True: the
        best matching among those of maximum cardinality (a constant offset is added to all
        feasible benefits; the returned prices then refer to the offset benefits).
    scale_factor : float > 1
        eps divisor between scaling phases.

    Returns
    -------
    assignment : int64 array (n_bidders,)
        Object of each bidder, -1 if unassigned.
    prices : float64 array (n_objects,)
        Final prices: 0 for unassigned objects, never above the holder's benefit, and every
        bidder's object is within ``eps`` of its best net value ``benefit - price`` (0 for
        staying unassigned): an eps-competitive equilibrium, i.e. an eps-optimal dual.  Not
        the minimal (buyer-optimal) equilibrium prices: a bidder without competitor bids up
        to its whole benefit, and coarse scaling phases can leave prices higher still.
        ``assignment_benefit`` sums the benefit.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    if isinstance(scale_factor, bool) or not isinstance(scale_factor, (int, float)) or not scale_factor > 1.0:
        raise ValueError(f"scale_factor must be a number > 1; got {scale_factor!r}")
    eps = _check_eps(eps)
    kind, *rest = _read_benefit(benefit)
    n, m = rest[-1]
    assignment = np.full(n, -1, dtype=np.int64)
    prices = np.zeros(m, dtype=np.float64)
    mat, eps_final, _, active = _prepare(kind, rest, eps, bool(maximize_cardinality))
    if mat is None:
        return assignment, prices

    schedule = [eps_final]
    if scaling:
        top = float(mat.data.max()) if kind == "csr" else float(np.max(mat.a))
        e = top / scale_factor
        schedule = []
        while e > eps_final:
            schedule.append(e)
            e /= scale_factor
        schedule.append(eps_final)

    forward, reverse = _phase_solvers(mat, method)
    assigned = np.where(active, _UNASSIGNED, _OUT).astype(np.int64)
    owner = np.full(m, _UNASSIGNED, dtype=np.int64)
    held = np.zeros(n)
    for e in schedule:
        forward(prices, e, assigned, owner, held)
        # prices carried over from earlier phases can leave unassigned objects priced > 0;
        # the reverse auction brings them to 0 (or sells them) and keeps eps-CS
        if ((owner == _UNASSIGNED) & (prices > 0.0)).any():
            on = assigned >= 0
            profit = np.zeros(n)
            profit[on] = held[on] - prices[assigned[on]]
            reverse(prices, e, assigned, owner, held, profit)
    on = assigned >= 0
    assignment[on] = assigned[on]
    return assignment, prices


def assignment_benefit(benefit, assignment):
    """Total benefit of ``assignment`` (-1 = unassigned); checks it is a feasible matching."""
    kind, *rest = _read_benefit(benefit)
    n, m = rest[-1]
    assignment = np.asarray(assignment)
    if assignment.shape != (n,):
        raise ValueError(f"assignment must have shape ({n},); got {assignment.shape}")
    on = np.flatnonzero(assignment >= 0)
    objs = assignment[on].astype(np.int64)
    if objs.size and (objs.max() >= m or np.unique(objs).size != objs.size):
        raise ValueError("assignment is not a matching (object out of range or used twice)")
    if kind == "dense":
        vals = rest[0][on, objs]
    else:  # canonical CSR: keys row * m + col are sorted
        indptr, indices, data = rest[0]
        keys = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr)) * m + indices
        want = on.astype(np.int64) * m + objs
        k = np.minimum(np.searchsorted(keys, want), max(keys.size - 1, 0))
        found = (keys[k] == want) if keys.size else np.zeros(on.size, bool)
        vals = np.where(found, data[k] if keys.size else 0.0, -np.inf)
    if np.isneginf(vals).any():
        raise ValueError("assignment uses an infeasible pair")
    return float(vals.sum())


# --------------------------------------------------------------------------- distributed


class DistributedAuctionResult(NamedTuple):
    """Outcome of ``distributed_auction``."""

    assignment: np.ndarray  # [n] object each agent holds in its own copy, -1 if none
    prices: np.ndarray      # [m] agreed prices (per-object max over the copies if not agreed)
    rounds: int             # bidding+merging rounds run
    agreed: bool            # all local price and highest-bidder copies equal at the end
    converged: bool         # stopped after diameter_bound + 1 rounds without a bid
    diameter_bound: int     # upper bound on the communication graph's diameter used


def _read_graph(adjacency, n, edge_mask):
    """Undirected up-edges (src, dst), both directions, from a sparse adjacency or an edge list."""
    sp = _sparse_module(adjacency)
    if sp is not None:
        if adjacency.shape != (n, n):
            raise ValueError(f"adjacency must be ({n}, {n}) for {n} agents; got {adjacency.shape}")
        coo = sp.coo_matrix(adjacency)
        u, v = coo.row.astype(np.int64), coo.col.astype(np.int64)
        up = np.asarray(coo.data) != 0
        what = "adjacency.tocoo() entries"
    else:
        try:
            edges = np.asarray(adjacency)
        except Exception:
            edges = None
        if edges is None or edges.ndim != 2 or edges.shape[1] != 2 or edges.dtype.kind not in "iu":
            if not (edges is not None and edges.size == 0):
                raise TypeError(
                    "adjacency must be a scipy.sparse (n, n) matrix or an (E, 2) integer edge list"
                )
            edges = np.zeros((0, 2), dtype=np.int64)
        u, v = edges[:, 0].astype(np.int64), edges[:, 1].astype(np.int64)
        up = np.ones(u.size, bool)
        what = "edges"
        if u.size and (min(u.min(), v.min()) < 0 or max(u.max(), v.max()) >= n):
            raise ValueError(f"edge list has agent indices outside [0, {n})")
    if edge_mask is not None:
        edge_mask = np.asarray(edge_mask, dtype=bool)
        if edge_mask.shape != up.shape:
            raise ValueError(f"edge_mask must have one flag per {what} ({up.size}); got shape {edge_mask.shape}")
        up &= edge_mask
    u, v = u[up], v[up]
    loop = u == v
    u, v = u[~loop], v[~loop]
    return np.concatenate([u, v]), np.concatenate([v, u])


def _diameter_bound(src, dst, n):
    """Raise if the graph is disconnected; else its diameter (exact for n <= 1000 via BFS from
    every agent, else 2 * the BFS eccentricity of agent 0)."""
    if n <= 1:
        return 0
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components, shortest_path

    g = sp.csr_matrix((np.ones(src.size), (src, dst)), shape=(n, n))
    ncomp, _ = connected_components(g, directed=False)
    if ncomp > 1:
        raise ValueError(
            f"communication graph is disconnected ({ncomp} components with the edges that are up); "
            "the distributed auction needs a connected graph to reach agreement"
        )
    if n <= 1000:
        return int(shortest_path(g, directed=False, unweighted=True).max())
    return 2 * int(shortest_path(g, directed=False, unweighted=True, indices=[0]).max())


def _merge(P, B, src, dst):
    """One gossip step: each agent takes, per object, the highest (price, bidder) among its own
    copy and its neighbours' (lexicographic, i.e. ties to the highest bidder index)."""
    Pn = P.copy()
    chunk = max(1, (1 << 20) // max(1, P.shape[1]))
    for s in range(0, src.size, chunk):
        np.maximum.at(Pn, dst[s:s + chunk], P[src[s:s + chunk]])
    Bn = np.where(P == Pn, B, -1)
    for s in range(0, src.size, chunk):
        d, o = dst[s:s + chunk], src[s:s + chunk]
        np.maximum.at(Bn, d, np.where(P[o] == Pn[d], B[o], -1))
    return Pn, Bn


def distributed_auction(benefit, adjacency, eps=None, *, edge_mask=None, max_rounds=None, rng=None):
    """Distributed ε-auction (Zavlanos, Spesivtsev & Pappas 2008) over a communication graph.

    Agent ``i`` knows only row ``i`` of ``benefit`` and its own copies of the prices and of
    the highest bidders.  Each round: (1) an agent that is not the highest bidder of any
    object in its own copy bids on its best object under its own prices, as in ``auction``
    (increment best - second best + eps, capped at its benefit; it stays out if no net value
    is positive); (2) every agent merges its neighbours' copies (per object: highest
    price, ties to the highest bidder).  An agent learns it was outbid only through (2).
    Stops after ``diameter_bound + 1`` rounds without any bid; on a connected graph all
    copies then agree and the matching is within ``k * eps`` of the max-weight optimum.

    Parameters
    ----------
    benefit : (n_agents, n_objects) dense array (-inf infeasible) or scipy.sparse matrix
        Max-weight semantics as in ``auction`` (pairs with benefit <= 0 are never taken).
    adjacency : scipy.sparse (n_agents, n_agents) matrix (nonzero stored entry = channel,
        taken as undirected) or (E, 2) integer edge list.
    eps : float or None -- bid increment; None: ``default_eps`` (exact for integer benefits).
    edge_mask : bool array, optional -- False = edge down; one flag per edge-list row, or per
        stored entry of a sparse adjacency in ``adjacency.tocoo()`` order.
    max_rounds : int, optional -- safety cap (default: the theoretical bound).
    rng : numpy Generator / seed, optional -- if given, ties between equally good objects
        are broken at random (spreads agents out); otherwise the lowest object index wins.

    Raises ValueError if the graph (with the edges that are up) is disconnected.
    Memory is O(n_agents * n_objects): every agent holds a full price vector.
    """
    eps = _check_eps(eps)
    kind, *rest = _read_benefit(benefit)
    n, m = rest[-1]
    src, dst = _read_graph(adjacency, n, edge_mask)
    diam = _diameter_bound(src, dst, n)
    if kind == "csr":
        (indptr, indices, data), _ = rest
        a = np.full((n, m), -np.inf)
        rows = np.repeat(np.arange(n), np.diff(indptr))
        a[rows, indices] = data
        kind, rest = "dense", [a, a.shape]
    mat, eps, _, active = _prepare(kind, rest, eps, False)
    P = np.zeros((n, m))
    B = np.full((n, m), -1, dtype=np.int64)
    if mat is None or m == 0:
        return DistributedAuctionResult(np.full(n, -1, dtype=np.int64), np.zeros(m), 0, True, True, diam)
    A = mat.a
    gen = None if rng is None else np.random.default_rng(rng)
    if max_rounds is None:
        top = float(A[np.isfinite(A)].max())
        max_rounds = (diam + 1) * (n * (math.ceil(top / eps) + 2) + 2)
    held = np.full(n, -1, dtype=np.int64)
    out = ~active
    agents = np.arange(n)
    quiet = 0
    rounds = 0
    while rounds < max_rounds and quiet < diam + 1:
        rounds += 1
        has = held >= 0
        lost = has & (B[agents, np.maximum(held, 0)] != agents)
        held[lost] = -1
        bidders = np.flatnonzero(~out & (held < 0))
        if bidders.size:
            net = A[bidders] - P[bidders]
            r = np.arange(bidders.size)
            if gen is None:
                j1 = np.argmax(net, axis=1)
            else:
                best = net.max(axis=1, keepdims=True)
                j1 = np.argmax(np.where(net == best, gen.random(net.shape), -1.0), axis=1)
            v1 = net[r, j1]
            a1 = A[bidders, j1]
            net[r, j1] = -np.inf
            v2 = net.max(axis=1)
            stay = v1 <= 0.0
            out[bidders[stay]] = True
            go = ~stay
            bidders, j1 = bidders[go], j1[go]
            P[bidders, j1] = np.minimum(a1[go] - np.maximum(v2[go], 0.0) + eps, a1[go])
            B[bidders, j1] = bidders
            held[bidders] = j1
        quiet = 0 if bidders.size else quiet + 1
        P, B = _merge(P, B, src, dst)
    agreed = bool((P == P[0]).all() and (B == B[0]).all())
    has = held >= 0
    mine = has & (B[agents, np.maximum(held, 0)] == agents)
    assignment = np.where(mine, held, -1).astype(np.int64)
    return DistributedAuctionResult(assignment, P.max(axis=0), rounds, agreed, quiet >= diam + 1, diam)
