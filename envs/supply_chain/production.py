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
    n = st.n
    rows = np.arange(n)
    # finish
    going = st.alive & (st.busy > 0)
    st.busy = np.where(going, st.busy - 1, st.busy)
    done = going & (st.busy == 0)
    if done.any():
        i = np.flatnonzero(done)
        g = st.out_good[i]
        old = st.hold[i, g]
        new = old + st.wip[i]
        st.out_cost[i] = np.where(new > 0, (old * st.out_cost[i] + st.wip_cost[i]) / np.maximum(new, 1e-12),
                                  st.out_cost[i])
        st.hold[i, g] = new
        np.add.at(st.produced, g, st.wip[i])
        st.wip[i] = 0.0
        st.wip_cost[i] = 0.0
    # start
    idle = st.alive & (st.busy == 0) & (st.hold[rows, st.out_good] < 2.0 * batch[st.kind])
    k = st.kind
    needs_input = st.in_good >= 0
    stock = np.where(needs_input, st.hold[rows, np.maximum(st.in_good, 0)], np.inf)
    units = np.where(idle, np.minimum(np.floor(stock), batch[k]), 0.0)
    start = units > 0
    if start.any():
        i = np.flatnonzero(start & needs_input)
        if i.size:
            left, cost = take_cheapest(st.lot_qty[i], st.lot_cost[i], units[i])
            st.lot_qty[i] = left
            st.hold[i, st.in_good[i]] -= units[i]
            np.add.at(st.consumed, st.in_good[i], units[i])
            st.wip_cost[i] = cost
        j = np.flatnonzero(start)
        st.wip[j] = units[j]
        st.wip_cost[j] += units[j] * labour[k[j]]
        st.busy[j] = days[k[j]]
    return st.alive & (st.busy > 0)


def eat_and_live(st: SupplyState, producing: np.ndarray, food: int, decay: float, work: float,
                 restore: float) -> np.ndarray:
    """Food intake and vital energy, in place; returns [N] bool: agents that died today."""
    eats = st.alive & (st.hold[:, food] >= 1.0) & (st.vital - decay <= 1.0 - restore)   # nothing wasted
    st.hold[:, food] -= eats
    st.eaten[food] += float(eats.sum())
    v = st.vital - decay - work * producing + restore * eats
    st.vital = np.where(st.alive, np.clip(v, 0.0, 1.0), st.vital)
    dead = st.alive & (v <= 0.0)
    st.alive = st.alive & ~dead
    st.died = np.where(dead, st.t, st.died)
    return dead


__all__ = ["produce", "eat_and_live", "take_cheapest", "add_lots"]
