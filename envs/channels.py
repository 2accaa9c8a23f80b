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


def build_graph(n: int, n_slots: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Endpoints of a connected random graph: a random recursive spanning tree on a shuffled
    order plus uniform random extra edges (no self-loops; parallel channels allowed)."""
    perm = rng.permutation(n)
    parent_pos = np.floor(rng.random(n - 1) * np.arange(1, n)).astype(np.int64)
    u_tree = perm[1:]
    v_tree = perm[parent_pos]
    extra = n_slots - (n - 1)
    u_x = rng.integers(0, n, size=extra)
    v_x = (u_x + 1 + rng.integers(0, n - 1, size=extra)) % n
    return np.concatenate([u_tree, u_x]).astype(np.int32), np.concatenate([v_tree, v_x]).astype(np.int32)


def draw_capacity(sc: Scenario, size: int, rng: np.random.Generator) -> np.ndarray:
    lo, hi = sc.channel_capacity
    return rng.uniform(lo, hi, size=size)


def funding(capacity: np.ndarray, split: float) -> tuple[np.ndarray, np.ndarray]:
    """Each endpoint's contribution to a channel's capacity (u side, v side)."""
    bu = capacity * split
    return bu, capacity - bu


# Draws of one step of the lifecycle: a fixed block of uniforms per slot (see `lifecycle`).
LIFECYCLE_DRAWS = 3


def reopen_candidates(sc: Scenario, n: int, r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u, v, capacity) of the channel each slot would reopen as, from its two uniforms `r` [2, k]:
    the first picks an ordered pair of distinct agents uniformly (one of N (N - 1), exact in a
    double for N up to ~10^7), the second the capacity uniformly in the scenario's range."""
    pairs = n * (n - 1)
    idx = np.minimum((r[0] * pairs).astype(np.int64), pairs - 1)
    nu = idx // (n - 1)
    nv = (nu + 1 + idx % (n - 1)) % n
    lo, hi = sc.channel_capacity
    return nu, nv, lo + (hi - lo) * r[1]


def lifecycle(sc: Scenario, u, v, capacity, balance_u, is_open, active, wallet, fee_sink: float,
              rng: np.random.Generator):
    """One step of channel closes and opens. Returns new (u, v, capacity, balance_u, open,
    wallet, fee_sink, n_closed, opened slot indices).

    Draws one fixed block per step: `rng.random((LIFECYCLE_DRAWS, E))`. Row 0 decides each slot's
    event (an open channel closes when it is under the close rate, a closed slot reopens when it
    is under the open rate); rows 1-2 are the slot's reopening candidate (`reopen_candidates`),
    used only when it reopens. A fixed-size block per step keeps the stream layout independent of
    how many slots reopen, so a batch of markets draws it in one call per market (`envs.batch`).
    An opening is refused, as a whole, when either funder's wallet cannot cover all channels it
    would fund this step plus fees.
    """
    e = u.shape[0]
    block = rng.random((LIFECYCLE_DRAWS, e))
    return apply_lifecycle(sc, u, v, capacity, balance_u, is_open, active, wallet, fee_sink, block[0], block[1:],
                           wallet.shape[0], None)


def apply_lifecycle(sc: Scenario, u, v, capacity, balance_u, is_open, active, wallet, fee_sink, draw: np.ndarray,
                    candidates: np.ndarray, n: int, offset: "np.ndarray | None"):
    """The lifecycle with its draws given: `draw` [E] decisions, `candidates` [2, E] reopening draws,
    `n` agents per market and `offset` [E] the first agent index of each slot's market (None: one
    market). `fee_sink` is a float (one market) or [M] (a batch, slots market-major of E/M each)."""
    total = wallet.shape[0]
    fee = sc.onchain_fee
    was_open = is_open
    is_open, wallet, n_closed, slots = kernels.close_channels(
        u=u, v=v, capacity=capacity, balance_u=balance_u, is_open=is_open, active=active, wallet=wallet, draw=draw,
        close_rate=sc.channel_close_rate, open_rate=sc.channel_open_rate, fee=fee)
    batched = offset is not None
    if batched:
        m = fee_sink.shape[0]
        slot_market = np.arange(u.shape[0]) // (u.shape[0] // m)
        n_closed = np.bincount(slot_market[was_open & ~is_open], minlength=m)
        fee_sink = fee_sink + fee * n_closed
        n_opened = np.zeros(m, dtype=np.int64)
    elif n_closed:
        fee_sink = fee_sink + fee * n_closed
    k = slots.shape[0]
    u = u.copy(); v = v.copy(); capacity = capacity.copy(); balance_u = balance_u.copy()
    opened = np.zeros(0, dtype=np.int64)
    if k:
        nu, nv, cap = reopen_candidates(sc, n, candidates[:, slots])
        if batched:
            nu, nv = nu + offset[slots], nv + offset[slots]
        fu, fv = funding(cap, sc.initial_split)
        need = (np.bincount(nu, weights=fu + fee / 2, minlength=total)
                + np.bincount(nv, weights=fv + fee / 2, minlength=total))
        solvent = wallet >= need
        ok = solvent[nu] & solvent[nv] & active[nu] & active[nv]
        if ok.any():
            s = slots[ok]
            u[s], v[s], capacity[s], balance_u[s] = nu[ok], nv[ok], cap[ok], fu[ok]
            wallet -= np.bincount(nu[ok], weights=fu[ok] + fee / 2, minlength=total)
            wallet -= np.bincount(nv[ok], weights=fv[ok] + fee / 2, minlength=total)
            if batched:
                n_opened = np.bincount(slot_market[s], minlength=fee_sink.shape[0])
                fee_sink = fee_sink + fee * n_opened
            else:
                fee_sink = fee_sink + fee * s.shape[0]
            is_open[s] = True  # a fresh array from close_channels
            opened = s
    if batched:
        return u, v, capacity, balance_u, is_open, wallet, fee_sink, n_closed, n_opened, opened
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
