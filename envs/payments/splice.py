"""Splicing: move money between an agent's wallet and its side of a channel, on chain.

Splice in: a side still under `splice_below` of its channel's capacity after rebalancing grows by
what brings it to `liquidity_target` (capacity grows by the same), paid from its owner's wallet
with `splice_fee` on top, to the fee sink; an owner whose wallet cannot pay all its splices of the
step makes none. Splice out: a side over `splice_above` shrinks to the target (capacity shrinks),
the excess to the owner's wallet, less the fee. Both move |target x capacity - side| (the capacity before the splice), so a
channel never shrinks below the target share of what it held. Money stays in wallets +
capacities + fee sink.
"""

from __future__ import annotations

import numpy as np

from .rebalance import depleted_sides


def splice(sc, u, v, capacity, balance_u, usable, wallet, fee_sink: float):
    """(capacity, balance_u, wallet, fee_sink, fees paid [N], splices in, splices out), fresh arrays."""
    n = wallet.shape[0]
    t = sc.liquidity_target
    fee = sc.splice_fee
    capacity, balance_u, wallet = capacity.copy(), balance_u.copy(), wallet.copy()
    fees = np.zeros(n)
    n_in = n_out = 0
    spliced = np.zeros(u.shape[0], dtype=bool)
    if sc.splice_below > 0.0:
        owner, chan, _ = depleted_sides(u, v, capacity, balance_u, usable, sc.splice_below)
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
    if sc.splice_above < 1.0:
        high_u = usable & ~spliced & (balance_u > sc.splice_above * capacity)
        high_v = usable & ~spliced & (capacity - balance_u > sc.splice_above * capacity)
        cu, cv = np.flatnonzero(high_u), np.flatnonzero(high_v)
        chan = np.concatenate([cu, cv])
        owner = np.concatenate([u[cu], v[cv]]).astype(np.int64)
        own = np.concatenate([balance_u[cu], capacity[cv] - balance_u[cv]])
        out = np.maximum(own - t * capacity[chan], 0.0)
        is_u = np.arange(chan.shape[0]) < cu.shape[0]
        capacity[chan] -= out
        balance_u[chan] -= np.where(is_u, out, 0.0)
        np.clip(balance_u, 0.0, capacity, out=balance_u)
        wallet += np.bincount(owner, weights=out - fee, minlength=n)
        fees += np.bincount(owner, minlength=n) * fee
        fee_sink += fee * chan.shape[0]
        n_out = int(chan.shape[0])
    return capacity, balance_u, wallet, fee_sink, fees, n_in, n_out


__all__ = ["splice"]
