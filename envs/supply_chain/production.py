"""Production, food intake and death: pure vectorized functions over the state's arrays.

Production (paper 3.2.2, Production): an idle agent with input, and less than two batches of
its product unsold, starts a cycle of its kind's
production time; it takes up to its kind's batch of input units (one input unit makes one
output unit; Farmers need no input and always make a full batch), the cheapest lots first, and
the cycle's cost is what those units cost plus the kind's labour cost per unit. The output is
added to the product stock when the cycle ends, at its unit cost (the stock's cost is the
running average). A producing day costs `work_energy` of vital energy on top of the daily
`vital_decay` (Food intake): every agent eats one portion a day if it holds one and the portion
would not be wasted (vital energy after the day's decay at most 1 - `food_energy`); a portion
restores `food_energy` (vital energy stays in [0, 1]); an agent whose vital energy reaches 0 dies.
"""

from __future__ import annotations

import numpy as np

from ..compiled import jit
from ..risk_rules import scalar_clip, scalar_clip_to, scalar_maximum, scalar_minimum
from .parallel import LIGHT, kernel, prange
from .state import SupplyState


def take_cheapest(lot_qty: np.ndarray, lot_cost: np.ndarray, units: np.ndarray):
    """Take `units[N]` from the lots, cheapest first: (new lot_qty, cost of what was taken [N])."""
    order = np.argsort(lot_cost, axis=1, kind="stable")
    q = np.take_along_axis(lot_qty, order, axis=1)
    c = np.take_along_axis(lot_cost, order, axis=1)
    before = np.cumsum(q, axis=1) - q
    take = np.clip(units[:, None] - before, 0.0, q)
    left = np.empty_like(lot_qty)
    np.put_along_axis(left, order, q - take, axis=1)
    return left, (take * c).sum(axis=1)


def add_lots(lot_qty: np.ndarray, lot_cost: np.ndarray, who: np.ndarray, qty: np.ndarray, unit_cost: np.ndarray):
    """Add one lot per agent `who` (unique) of `qty` units at `unit_cost`: into an empty lot, else
    merged (weighted average) into its dearest lot. Arrays are written in place."""
    if who.size == 0:
        return
    q = lot_qty[who]
    empty = q <= 0
    has_empty = empty.any(axis=1)
    slot = np.where(has_empty, np.argmax(empty, axis=1), np.argmax(lot_cost[who], axis=1))
    old_q = q[np.arange(who.size), slot]
    old_c = lot_cost[who, slot]
    new_q = old_q + qty
    lot_cost[who, slot] = np.where(new_q > 0, (old_q * old_c + qty * unit_cost) / np.maximum(new_q, 1e-12), unit_cost)
    lot_qty[who, slot] = new_q


def produce(st: SupplyState, days: np.ndarray, batch: np.ndarray, labour: np.ndarray) -> np.ndarray:
    """One day of production in place: finish cycles, then start new ones. `days`, `batch`,
    `labour` are per kind. Returns [N] bool: agents producing today (for the energy cost)."""
    st.busy, producing = produce_kernel(
        alive=st.alive, busy=st.busy, kind=st.kind, out_good=st.out_good, in_good=st.in_good, hold=st.hold,
        out_cost=st.out_cost, wip=st.wip, wip_cost=st.wip_cost, lot_qty=st.lot_qty, lot_cost=st.lot_cost,
        produced=st.produced, consumed=st.consumed, days=days, batch=batch, labour=labour)
    return producing


def _produce_numpy(alive, busy, kind, out_good, in_good, hold, out_cost, wip, wip_cost, lot_qty, lot_cost, produced,
                   consumed, days, batch, labour):
    """(new busy, producing today); the other arrays in place. NumPy twin of `_produce_loop`."""
    n = alive.shape[0]
    rows = np.arange(n)
    # finish
    going = alive & (busy > 0)
    busy = np.where(going, busy - 1, busy)
    done = going & (busy == 0)
    if done.any():
        i = np.flatnonzero(done)
        g = out_good[i]
        old = hold[i, g]
        new = old + wip[i]
        out_cost[i] = np.where(new > 0, (old * out_cost[i] + wip_cost[i]) / np.maximum(new, 1e-12), out_cost[i])
        hold[i, g] = new
        np.add.at(produced, g, wip[i])
        wip[i] = 0.0
        wip_cost[i] = 0.0
    # start
    idle = alive & (busy == 0) & (hold[rows, out_good] < 2.0 * batch[kind])
    k = kind
    needs_input = in_good >= 0
    stock = np.where(needs_input, hold[rows, np.maximum(in_good, 0)], np.inf)
    units = np.where(idle, np.minimum(np.floor(stock), batch[k]), 0.0)
    start = units > 0
    if start.any():
        i = np.flatnonzero(start & needs_input)
        if i.size:
            left, cost = take_cheapest(lot_qty[i], lot_cost[i], units[i])
            lot_qty[i] = left
            hold[i, in_good[i]] -= units[i]
            np.add.at(consumed, in_good[i], units[i])
            wip_cost[i] = cost
        j = np.flatnonzero(start)
        wip[j] = units[j]
        wip_cost[j] += units[j] * labour[k[j]]
        busy[j] = days[k[j]]
    return busy, alive & (busy > 0)


def _produce_loop(alive, busy, kind, out_good, in_good, hold, out_cost, wip, wip_cost, lot_qty, lot_cost, produced,
                  consumed, days, batch, labour):
    """`_produce_numpy` one agent at a time (compiled): the same float operations, the cheapest lots first
    (stable order), the ledgers summed in agent order."""
    n = alive.shape[0]
    lots = lot_qty.shape[1]
    busy = busy.copy()
    producing = np.zeros(n, np.bool_)
    made = np.zeros(n)                       # per agent: output finished today, input units taken today (> 0
    used = np.zeros(n)                       # when it happened: a cycle starts with units > 0)
    chunks = min(n, 64)                      # one scratch order a chunk
    for ch in prange(chunks):
        order = np.empty(lots, np.int64)
        for a in range(ch * n // chunks, (ch + 1) * n // chunks):
            if not alive[a]:
                continue
            og = out_good[a]
            if busy[a] > 0:                      # finish
                busy[a] -= 1
                if busy[a] == 0:
                    old = hold[a, og]
                    new = old + wip[a]
                    if new > 0:
                        out_cost[a] = (old * out_cost[a] + wip_cost[a]) / _pmax(new, 1e-12)
                    hold[a, og] = new
                    made[a] = wip[a]
                    wip[a] = 0.0
                    wip_cost[a] = 0.0
            if busy[a] == 0 and hold[a, og] < 2.0 * batch[kind[a]]:     # start
                ig = in_good[a]
                stock = hold[a, ig] if ig >= 0 else np.inf
                units = _pmin(np.floor(stock), batch[kind[a]])
                if units > 0:
                    if ig >= 0:
                        for s in range(lots):            # stable sort of the lots by cost (NaN last): each
                            # lot's rank (how many go before it), no branches
                            v = lot_cost[a, s]
                            rk = 0
                            for j in range(lots):
                                u = lot_cost[a, j]
                                rk += ((j < s) & (not _later(u, v))) | ((j > s) & _later(v, u))
                            order[rk] = s
                        cum = 0.0
                        cost = 0.0
                        for s in range(lots):
                            x = order[s]
                            q = lot_qty[a, x]
                            cum = cum + q
                            take = _pclip_to(units - (cum - q), 0.0, q)
                            lot_qty[a, x] = q - take
                            cost = take * lot_cost[a, x] if s == 0 else cost + take * lot_cost[a, x]
                        hold[a, ig] -= units
                        used[a] = units
                        wip_cost[a] = cost
                    wip[a] = units
                    wip_cost[a] += units * labour[kind[a]]
                    busy[a] = days[kind[a]]
            producing[a] = busy[a] > 0
    for a in range(n):                       # the ledgers, summed in agent order (a zero adds nothing)
        if made[a] > 0:
            produced[out_good[a]] += made[a]
        if used[a] > 0:
            consumed[in_good[a]] += used[a]
    return busy, producing


def _sorts_after(u, v):
    """u goes after v in NumPy's ascending sort (NaN last); no short-circuit (no branches)."""
    return (u > v) | ((u != u) & (v == v))


_pmax, _pmin, _pclip_to, _later = (jit(f) or f for f in (scalar_maximum, scalar_minimum, scalar_clip_to, _sorts_after))
produce_kernel = kernel("supply_chain_produce", _produce_numpy, _produce_loop, split="alive")


def _live_numpy(alive, vital, died, hold, producing, food, decay, work, restore, t):
    """(new vital, alive, died, dead today, portions eaten); `hold` in place. NumPy twin of `_live_loop`."""
    eats = alive & (hold[:, food] >= 1.0) & (vital - decay <= 1.0 - restore)   # nothing wasted
    hold[:, food] -= eats
    v = vital - decay - work * producing + restore * eats
    vital = np.where(alive, np.clip(v, 0.0, 1.0), vital)
    dead = alive & (v <= 0.0)
    return vital, alive & ~dead, np.where(dead, t, died), dead, float(eats.sum())


def _live_loop(alive, vital, died, hold, producing, food, decay, work, restore, t):
    """`_live_numpy` one agent at a time (compiled), the same float operations."""
    n = alive.shape[0]
    new_vital = vital.copy()
    new_alive = alive.copy()
    new_died = died.copy()
    dead = np.zeros(n, np.bool_)
    ate = np.zeros(n, np.int64)
    keep = 1.0 - restore
    for a in prange(n):
        eats = alive[a] and hold[a, food] >= 1.0 and vital[a] - decay <= keep
        e = 1.0 if eats else 0.0
        hold[a, food] -= e
        ate[a] = 1 if eats else 0
        v = vital[a] - decay - work * (1.0 if producing[a] else 0.0) + restore * e
        if alive[a]:
            new_vital[a] = _pclip(v, 0.0, 1.0)
            if v <= 0.0:
                dead[a] = True
                new_alive[a] = False
                new_died[a] = t
    eaten = 0
    for a in range(n):
        eaten += ate[a]
    return new_vital, new_alive, new_died, dead, float(eaten)


_pclip = jit(scalar_clip) or scalar_clip
live_kernel = kernel("supply_chain_live", _live_numpy, _live_loop, split="alive", min_items=LIGHT)


__all__ = ["produce", "produce_kernel", "live_kernel", "take_cheapest", "add_lots"]
