"""Splicing: move money between an agent's wallet and its side of a channel, on chain.

Splice in: a side still under `splice_below` of its channel's capacity after rebalancing grows by
what brings it to `liquidity_target` (capacity grows by the same), paid from its owner's wallet
with `splice_fee` on top, to the fee sink; an owner whose wallet cannot pay all its splices of the
step makes none. Splice out: a side over `splice_above` shrinks to the target (capacity shrinks),
the excess to the owner's wallet, less the fee. Both move |target x capacity - side| (the capacity before the splice), so a
channel never shrinks below the target share of what it held. Money stays in wallets +
capacities + fee sink. One compiled kernel (`splices`, about half the vectorized twin's time at
10,000 agents), bit for bit the twin's floats, its fancy-index updates and np.clip included.
"""

from __future__ import annotations

import numpy as np

from ..compiled import jit, register

from .rebalance import _depleted_sides_nb, depleted_sides


def splice(sc, u, v, capacity, balance_u, usable, wallet, fee_sink: float, by_agent: bool = False):
    """(capacity, balance_u, wallet, fee_sink, fees paid [N], splices in, splices out), fresh arrays:
    one `splices` kernel call with the scenario's splice fields; with `by_agent` the splices in and
    out of each owner [N] instead of the counts."""
    capacity, balance_u, wallet, fee_sink, fees, n_in, n_out, in_by, out_by = splices(
        u=u, v=v, capacity=capacity, balance_u=balance_u, usable=usable, wallet=wallet, fee_sink=float(fee_sink),
        target=float(sc.liquidity_target), fee=float(sc.splice_fee), below=float(sc.splice_below),
        above=float(sc.splice_above))
    if by_agent:
        return capacity, balance_u, wallet, fee_sink, fees, in_by, out_by
    return capacity, balance_u, wallet, fee_sink, fees, int(n_in), int(n_out)


def splices_numpy(u, v, capacity, balance_u, usable, wallet, fee_sink, target, fee, below, above):
    """The splices of one step, vectorized (see the module docstring); the compiled twin follows
    these expressions and their order exactly, fancy-index updates included."""
    n = wallet.shape[0]
    t = target
    capacity, balance_u, wallet = capacity.copy(), balance_u.copy(), wallet.copy()
    fees = np.zeros(n)
    n_in = n_out = 0
    in_by, out_by = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    spliced = np.zeros(u.shape[0], dtype=bool)
    if below > 0.0:
        owner, chan, _ = depleted_sides(u, v, capacity, balance_u, usable, below)
        is_u = u[chan] == owner
        own = np.where(is_u, balance_u[chan], capacity[chan] - balance_u[chan])
        add = np.maximum(t * capacity[chan] - own, 0.0)
        need = np.bincount(owner, weights=add + fee, minlength=n)
        ok = (wallet >= need)[owner] & (add > 0.0)
        chan, owner, add, is_u = chan[ok], owner[ok], add[ok], is_u[ok]
        capacity[chan] += add
        balance_u[chan] += np.where(is_u, add, 0.0)
        wallet -= np.bincount(owner, weights=add + fee, minlength=n)
        fees += np.bincount(owner, minlength=n) * fee
        fee_sink += fee * chan.shape[0]
        spliced[chan] = True
        n_in = int(chan.shape[0])
        in_by = np.bincount(owner, minlength=n).astype(np.int64)
    if above < 1.0:
        high_u = usable & ~spliced & (balance_u > above * capacity)
        high_v = usable & ~spliced & (capacity - balance_u > above * capacity)
        cu, cv = np.flatnonzero(high_u), np.flatnonzero(high_v)
        chan = np.concatenate([cu, cv])
        owner = np.concatenate([u[cu], v[cv]]).astype(np.int64)
        own = np.concatenate([balance_u[cu], capacity[cv] - balance_u[cv]])
        out = np.maximum(own - t * capacity[chan], 0.0)
        is_u = np.arange(chan.shape[0]) < cu.shape[0]
        capacity[chan] -= out
        balance_u[chan] -= np.where(is_u, out, 0.0)
        np.clip(balance_u, 0.0, capacity, out=balance_u)
        balance_u += 0.0   # -0.0 -> 0.0: np.clip's sign of a zero tie differs between its SIMD and scalar loops
        wallet += np.bincount(owner, weights=out - fee, minlength=n)
        fees += np.bincount(owner, minlength=n) * fee
        fee_sink += fee * chan.shape[0]
        n_out = int(chan.shape[0])
        out_by = np.bincount(owner, minlength=n).astype(np.int64)
    return capacity, balance_u, wallet, fee_sink, fees, n_in, n_out, in_by, out_by


@jit
def _splices_nb(u, v, capacity, balance_u, usable, wallet, fee_sink, target, fee, below,
                above):  # pragma: no cover - compiled
    n = wallet.shape[0]
    e_n = u.shape[0]
    t = target
    cap0 = capacity
    bal0 = balance_u
    capacity = capacity.copy()
    balance_u = balance_u.copy()
    wallet = wallet.copy()
    fees = np.zeros(n)
    n_in = 0
    n_out = 0
    in_by = np.zeros(n, dtype=np.int64)
    out_by = np.zeros(n, dtype=np.int64)
    spliced = np.zeros(e_n, dtype=np.bool_)
    if below > 0.0:
        chan, owner, _ = _depleted_sides_nb(u, v, cap0, bal0, usable, below)
        d_n = chan.shape[0]
        is_u = np.empty(d_n, dtype=np.bool_)
        add = np.empty(d_n)
        need = np.zeros(n)
        for i in range(d_n):
            c = chan[i]
            is_u[i] = u[c] == owner[i]
            own = bal0[c] if is_u[i] else cap0[c] - bal0[c]
            x = t * cap0[c] - own
            add[i] = x if x > 0.0 else 0.0
            need[owner[i]] += add[i] + fee
        paid = np.zeros(n)
        count = np.zeros(n)
        for i in range(d_n):
            o = owner[i]
            if not (wallet[o] >= need[o] and add[i] > 0.0):
                continue
            c = chan[i]
            capacity[c] = cap0[c] + add[i]          # fancy-index `+=`: from the value before, last one wins
            balance_u[c] = bal0[c] + (add[i] if is_u[i] else 0.0)
            paid[o] += add[i] + fee
            count[o] += 1.0
            spliced[c] = True
            n_in += 1
            in_by[o] += 1
        for o in range(n):
            wallet[o] -= paid[o]
            fees[o] += count[o] * fee
        fee_sink += fee * n_in
    if above < 1.0:
        cap1 = capacity.copy()
        bal1 = balance_u.copy()
        high_u = np.empty(e_n, dtype=np.int64)
        high_v = np.empty(e_n, dtype=np.int64)
        k_u = 0
        m_v = 0
        for c in range(e_n):
            ok = usable[c] & (not spliced[c])
            b = bal1[c]
            cp = cap1[c]
            high_u[k_u] = c
            k_u += ok & (b > above * cp)
            high_v[m_v] = c
            m_v += ok & (cp - b > above * cp)
        k_n = k_u + m_v
        chan = np.empty(k_n, dtype=np.int64)
        chan[:k_u] = high_u[:k_u]
        chan[k_u:] = high_v[:m_v]
        got = np.zeros(n)
        count = np.zeros(n)
        for i in range(k_n):
            c = chan[i]
            is_u_i = i < k_u
            o = u[c] if is_u_i else v[c]
            own = bal1[c] if is_u_i else cap1[c] - bal1[c]
            x = own - t * cap1[c]
            out = x if x > 0.0 else 0.0
            capacity[c] = cap1[c] - out
            balance_u[c] = bal1[c] - (out if is_u_i else 0.0)
            got[o] += out - fee
            count[o] += 1.0
            out_by[o] += 1
        for c in range(e_n):   # as np.clip(x, 0, capacity) + 0.0: a bound wins ties (-0.0 becomes 0.0), NaN stays
            x = balance_u[c]
            if x <= 0.0:
                x = 0.0
            if x >= capacity[c]:
                x = capacity[c]
            balance_u[c] = x
        for o in range(n):
            wallet[o] += got[o]
            fees[o] += count[o] * fee
        fee_sink += fee * k_n
        n_out = k_n
    return capacity, balance_u, wallet, fee_sink, fees, n_in, n_out, in_by, out_by


splices = register("splices", splices_numpy, _splices_nb)


__all__ = ["splice", "splices", "splices_numpy"]
