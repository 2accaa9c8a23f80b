"""Compiled kernels for the few O(E) scatter passes NumPy alone cannot make fast enough.

Each kernel has a NumPy twin giving the same result (to float round-off); numba, a default
dependency, is imported here only, so `envs` still imports with numpy alone. Set the environment
variable CHANNELMARKET_NUMBA=0 to use the NumPy twins. Both paths are tested against each other.
"""

from __future__ import annotations

import os

import numpy as np

try:  # pragma: no cover - depends on the install
    if os.environ.get("CHANNELMARKET_NUMBA", "1") == "0":
        raise ImportError("disabled by CHANNELMARKET_NUMBA=0")
    from numba import njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    HAVE_NUMBA = False


def liquidity_numpy(n, u, v, capacity, balance_u, is_open):
    o = is_open.astype(np.float64)
    bu = balance_u * o
    bv = capacity * o - bu
    ends = np.concatenate((u, v))
    degree = np.bincount(ends, weights=np.concatenate((o, o)), minlength=n)
    outbound = np.bincount(ends, weights=np.concatenate((bu, bv)), minlength=n)
    inbound = np.bincount(ends, weights=np.concatenate((bv, bu)), minlength=n)
    return degree, outbound, inbound


if HAVE_NUMBA:

    @njit(cache=True, nogil=True)
    def _liquidity_nb(n, u, v, capacity, balance_u, is_open):  # pragma: no cover - compiled
        degree = np.zeros(n)
        outbound = np.zeros(n)
        inbound = np.zeros(n)
        for e in range(u.shape[0]):
            if is_open[e]:
                a, b = u[e], v[e]
                bu = balance_u[e]
                bv = capacity[e] - bu
                degree[a] += 1.0
                degree[b] += 1.0
                outbound[a] += bu
                outbound[b] += bv
                inbound[a] += bv
                inbound[b] += bu
        return degree, outbound, inbound

    def liquidity(n, u, v, capacity, balance_u, is_open):
        return _liquidity_nb(n, u, v, capacity, balance_u, is_open)

else:  # pragma: no cover
    liquidity = liquidity_numpy


# ---- bilateral negotiation over channels --------------------------------------------------

def _first_agreeing_round(ask0, bid0, ask_step, bid_step, rounds):  # pragma: no cover - compiled
    """Scalar twin of clearing.negotiate's closed form with its round-rule check."""
    gap = ask0 - bid0
    rate = ask_step + bid_step
    if gap <= 0:
        k = 0.0
    elif rate > 0:
        k = np.ceil(gap / rate)
    else:
        k = rounds + 1.0
    k = min(max(k, 0.0), rounds + 1.0)
    ki = int(k)
    for _ in range(2):
        if ki > 0:
            kk = ki - 1
            if bid0 + bid_step * kk >= ask0 - ask_step * kk:
                ki -= 1
    for _ in range(2):
        if ki <= rounds and not (bid0 + bid_step * ki >= ask0 - ask_step * ki):
            ki += 1
    return ki


if HAVE_NUMBA:
    _first_agreeing_round_nb = njit(cache=True, nogil=True)(_first_agreeing_round)

    @njit(cache=True, nogil=True)
    def _bilateral_nb(u, v, is_open, sell_qty, buy_qty, sells_good, buys_good, ask, bid, reserve, limit,
                      concession, rounds):  # pragma: no cover - compiled
        e_n = u.shape[0]
        channel = np.empty(2 * e_n, dtype=np.int64)
        seller = np.empty(2 * e_n, dtype=np.int64)
        buyer = np.empty(2 * e_n, dtype=np.int64)
        price = np.empty(2 * e_n)
        m = 0
        negotiations = 0
        for direction in range(2):  # all forward (u sells) pairs first, then reverse, as in NumPy
            for e in range(e_n):
                if not is_open[e]:
                    continue
                if direction == 0:
                    s, b = u[e], v[e]
                else:
                    s, b = v[e], u[e]
                if not (sell_qty[s] > 0.0 and buy_qty[b] > 0.0 and sells_good[s] == buys_good[b]):
                    continue
                negotiations += 1
                a0 = ask[s]
                b0 = bid[b]
                a_step = concession[s] * (a0 - reserve[s]) / rounds
                b_step = concession[b] * (limit[b] - b0) / rounds
                k = _first_agreeing_round_nb(a0, b0, a_step, b_step, rounds)
                if k <= rounds:
                    kf = float(k)
                    channel[m] = e
                    seller[m] = s
                    buyer[m] = b
                    price[m] = 0.5 * ((a0 - a_step * kf) + (b0 + b_step * kf))
                    m += 1
        return channel[:m].copy(), seller[:m].copy(), buyer[:m].copy(), price[:m].copy(), negotiations

    def bilateral_agreements(u, v, is_open, sell_qty, buy_qty, sells_good, buys_good, ask, bid, reserve, limit,
                             concession, rounds):
        """(channel, seller, buyer, price) of agreed pairs and the number of negotiations."""
        return _bilateral_nb(u, v, is_open, sell_qty, buy_qty, sells_good, buys_good, ask, bid, reserve, limit,
                             concession, rounds)
else:  # pragma: no cover
    bilateral_agreements = None
