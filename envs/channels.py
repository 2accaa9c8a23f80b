"""Payment channels: a connected sparse graph of two-sided balances, opening and closing.

A channel locks `capacity` EUR split between its endpoints; paying moves balance from the
payer's side to the payee's. Closing settles both sides to the on-chain wallets; a closed slot
reopens between a fresh random pair, funded from both wallets. An on-chain fee per open and
per close goes to the fee sink. Everything is arrays over the E channel slots.
"""

from __future__ import annotations

import numpy as np

from . import kernels
from .scenario import Scenario
from .topology import build_graph, reopen_pairs  # noqa: F401 - build_graph: the legacy graph, re-exported


def draw_capacity(sc: Scenario, size: int, rng: np.random.Generator) -> np.ndarray:
    lo, hi = sc.channel_capacity
    return rng.uniform(lo, hi, size=size)


def expected_spend(sc: Scenario, agents) -> np.ndarray:
    """[N] EUR an agent turns over in one step at full rating and the base price: generators
    their rating, consumers their base load, stores their power (what a channel must carry)."""
    mw = np.where(agents.is_store, agents.power, agents.capacity)
    return mw * sc.step_hours * sc.base_price


def size_capacity(sc: Scenario, agents, u, v, drawn: np.ndarray) -> np.ndarray:
    """Channel capacities in the scenario's sizing: `uniform` keeps the drawn EUR; `spend` makes a
    channel `channel_sizing_steps` steps of its larger endpoint's expected spend, times the draw's
    relative spread (draw / mean of `channel_capacity`)."""
    if sc.channel_sizing == "uniform" or agents is None:
        return drawn
    spend = expected_spend(sc, agents)
    mean = 0.5 * (sc.channel_capacity[0] + sc.channel_capacity[1])
    return np.maximum(drawn / mean * sc.channel_sizing_steps * np.maximum(spend[u], spend[v]), 1e-9)


def update_partners(n: int, seller, buyer, paid, partner, partner_value, decay: float = 0.9):
    """Each agent's regular partner: the counterparty of its largest payment this step (as buyer or
    seller) takes over when it beats the decayed value of the current partner (EUR, an EMA)."""
    value = decay * partner_value
    partner = partner.copy()
    ok = paid > 0
    if ok.any():
        who = np.concatenate([buyer[ok], seller[ok]])
        other = np.concatenate([seller[ok], buyer[ok]])
        amt = np.concatenate([paid[ok], paid[ok]])
        best = np.zeros(n)
        np.maximum.at(best, who, amt)              # O(T): each agent's largest payment this step
        top = amt == best[who]
        pick = np.full(n, -1, dtype=np.int64)
        pick[who[top]] = other[top]                # ties: one of the tied counterparties (deterministic)
        w = np.flatnonzero(pick >= 0)
        o, a = pick[w], best[w]
        same = partner[w] == o
        take = same | (a > value[w])
        value[w] = np.where(same, value[w] + a, np.where(take, a, value[w]))
        partner[w] = np.where(take, o, partner[w])
    return partner, value


def funding(capacity: np.ndarray, split: float) -> tuple[np.ndarray, np.ndarray]:
    """Each endpoint's contribution to a channel's capacity (u side, v side)."""
    bu = capacity * split
    return bu, capacity - bu


def lifecycle(sc: Scenario, u, v, capacity, balance_u, is_open, active, wallet, fee_sink: float,
              rng: np.random.Generator, agents=None, partner=None):
    """One step of channel closes and opens. Returns new (u, v, capacity, balance_u, open,
    wallet, fee_sink, n_closed, opened slot indices).

    Draws, in order: E uniforms (one per slot: an open channel closes when it is under the close
    rate, a closed slot reopens when it is under the open rate), then for the reopening slots two
    integer arrays (endpoints) and one uniform array (capacity). An opening is refused, as a
    whole, when either funder's wallet cannot cover all channels it would fund this step plus fees.
    Endpoints follow the topology's rule (`topology.reopen_pairs`; the legacy two integer draws for
    `random`); with `partner_channel_share` > 0 one more uniform array decides which reopenings go
    from the first endpoint to its regular partner (`partner`, -1 for none) instead.
    """
    n = wallet.shape[0]
    e = u.shape[0]
    fee = sc.onchain_fee
    draw = rng.random(e)
    is_open, wallet, n_closed, slots = kernels.close_channels(
        u=u, v=v, capacity=capacity, balance_u=balance_u, is_open=is_open, active=active, wallet=wallet, draw=draw,
        close_rate=sc.channel_close_rate, open_rate=sc.channel_open_rate, fee=fee)
    if n_closed:
        fee_sink = fee_sink + fee * n_closed
    k = slots.shape[0]
    u = u.copy(); v = v.copy(); capacity = capacity.copy(); balance_u = balance_u.copy()
    opened = np.zeros(0, dtype=np.int64)
    if k:
        nu, nv = reopen_pairs(sc, agents, n, k, rng, u, v, is_open)
        cap = draw_capacity(sc, k, rng)
        if sc.partner_channel_share > 0 and partner is not None:
            p = partner[nu]
            use = (rng.random(k) < sc.partner_channel_share) & (p >= 0) & (p != nu)
            nv = np.where(use, p, nv)
        cap = size_capacity(sc, agents, nu, nv, cap)
        fu, fv = funding(cap, sc.initial_split)
        need = np.bincount(nu, weights=fu + fee / 2, minlength=n) + np.bincount(nv, weights=fv + fee / 2, minlength=n)
        solvent = wallet >= need
        ok = solvent[nu] & solvent[nv] & active[nu] & active[nv]
        if ok.any():
            s = slots[ok]
            u[s], v[s], capacity[s], balance_u[s] = nu[ok], nv[ok], cap[ok], fu[ok]
            wallet -= np.bincount(nu[ok], weights=fu[ok] + fee / 2, minlength=n)
            wallet -= np.bincount(nv[ok], weights=fv[ok] + fee / 2, minlength=n)
            fee_sink = fee_sink + fee * s.shape[0]
            is_open[s] = True  # a fresh array from close_channels
            opened = s
    return u, v, capacity, balance_u, is_open, wallet, fee_sink, n_closed, opened


def liquidity(n: int, u, v, capacity, balance_u, is_open) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per agent: open channel count, EUR it can pay out (own sides), EUR it can receive."""
    return kernels.liquidity(n=n, u=u, v=v, capacity=capacity, balance_u=balance_u, is_open=is_open)


def adjacency(n: int, u, v, is_open):
    """Symmetric CSR adjacency (scipy) of the open channels; data holds the channel slot index."""
    from scipy.sparse import csr_matrix

    idx = np.flatnonzero(is_open)
    rows = np.concatenate([u[idx], v[idx]])
    cols = np.concatenate([v[idx], u[idx]])
    data = np.concatenate([idx, idx]).astype(np.int64)
    # parallel channels: keep them all by building from COO without summing duplicates
    order = np.lexsort((cols, rows))
    rows, cols, data = rows[order], cols[order], data[order]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return csr_matrix((data, cols, indptr), shape=(n, n))
