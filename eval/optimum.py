"""Optimal welfare of one market interval: the reference that allocative efficiency is measured against.

    opt = solve_interval(interval, network="channels")   # OptimumResult(welfare, p2p_volume, q, status, ...)
    # from a MarketCore (eval.welfare): optimal_welfare(core, prev), realized_welfare(core)

A reference under the evaluation pipeline (settings -> jobs -> runs -> statistics -> report):
it consumes a `MarketInterval` (plain arrays) and produces the interval's optimum;
`eval.welfare` builds the interval from a `MarketCore` step and values what the step realized.

Welfare (EUR) of an interval, the exact definition used on both sides of the ratio
---------------------------------------------------------------------------------
Peer-to-peer payments are transfers and cancel; what remains is the agents' values and costs:

    W =   sum over P2P MWh q from seller s to buyer b of   (value_b - cost_s) q
        + sum over generators g of     (feed_in - marginal_cost_g) * grid_sold_g
        + sum over consumers c of      (limit_c - retail) * grid_bought_c

with value_b = limit_b for consumers (the env values served energy at the consumer's limit price),
cost_s = marginal_cost_s for generators (the env charges marginal cost per MWh sold), and for
storage (`storage_value`, default "reserve_limit"):

- "reserve_limit": a store buying values the MWh at its limit, a store selling gives it up at its
  reserve (Gode and Sunder's induced values: the bounds the env puts on its bids and asks).
  Then W = sum of the step's rewards + sum over storage (limit * charged - reserve * discharged):
  the rewards plus the stores' inventory change valued at their own limit/reserve.
- "reward": stored energy is worth nothing; W = the sum of the step's rewards exactly (the
  env's own objective; the optimum then treats a store's charge as free energy to dump).
- a number lam (EUR per MWh of state of charge): buying q is worth lam * eff * q (what it adds
  to the charge), selling q costs lam * q / eff; a round trip through storage loses value.

`eval.welfare.realized_welfare(core, storage_value)` evaluates W on what the step settled (paid quantities,
the env's grid sales and purchases), so realized <= optimal always holds (the realized
allocation is feasible in the program below) and efficiency = realized / optimal is in [0, 1].
Curtailed energy is worth zero. The scenario's accounting (issue 10) enters both sides alike:
`value_of_lost_load` (VoLL, EUR/MWh) costs every consumer VoLL x unserved MWh (unserved = need -
P2P purchases - grid import), i.e. a constant -VoLL x need plus VoLL on every MWh served; and
`network_charge` (EUR/MWh) is a cost on every P2P MWh (paid to the network operator, who, like the
grid, is outside the market). With both zero (the legacy market) W is the definition above.

The program (HiGHS through scipy; the matrix is built with scipy.sparse, no loop over channels)
------------------------------------------------------------------------------------------------
Variables: q_e >= 0 for every open channel and direction whose one end sells what the other
buys (both with energy this interval), grid export of each generator in [0, grid_limit], grid
import of each consumer in [0, grid_limit]. Constraints: a seller's P2P sales plus grid export
are at most its sellable energy, a buyer's P2P purchases plus grid import at most its need.
Storage trades one side per interval in the env (one action quantity): `storage_sides="exact"`
(default) adds one binary per store that can both charge and discharge (sales <= sellable * z,
purchases <= headroom * (1 - z), a MILP); `"relaxed"` uses the convex hull
sales / sellable + purchases / headroom <= 1 (an LP, an upper bound of the exact optimum).
`network="channels"` restricts P2P trade to the open channels of the interval; `"complete"`
lets every seller reach every buyer of the same good (the centralized exchange; one hub per good,
O(N) variables) and is the default when the scenario clears by `double_auction`, whose on-chain
trades do not use channels. Channel liquidity (a payment must fit the payer's side of the
channel) is ignored by default, so the optimum is an upper bound; `liquidity="reserve"` adds
q_e <= payer side / seller reserve, a bound every bilateral trade satisfies (its price is at
least the seller's reserve), so the result is still an upper bound, a tighter one.
`liquidity="ref"` (or a number) prices every P2P MWh at the interval's reference price (or that
number) for the balance check: the liquidity-feasible optimum at that price, an estimate, not a
bound (a trade below that price moves more energy per EUR).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from ..envs import mechanisms
from ..envs.state import kind_has

TINY = 1e-9  # MWh: float dust (a store emptied to 1e-16) would make the storage rows ill-conditioned


@dataclass
class OptimumResult:
    """The welfare-maximizing allocation of one interval.

    `q[k]` MWh flows from `seller[k]` to `buyer[k]` over channel slot `channel[k]` (network
    "channels"); with network "complete" the pairs are empty and only the per-agent totals
    `sold`/`bought` are meaningful (the hub does not say who trades with whom)."""

    welfare: float
    p2p_volume: float
    q: np.ndarray
    status: str
    channel: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    seller: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    buyer: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    sold: np.ndarray = field(default_factory=lambda: np.zeros(0))       # [N] MWh P2P
    bought: np.ndarray = field(default_factory=lambda: np.zeros(0))     # [N] MWh P2P
    grid_sold: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [N] MWh
    grid_bought: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [N] MWh
    n_variables: int = 0
    n_binaries: int = 0
    seconds: float = 0.0


@dataclass
class MarketInterval:
    """Everything the program needs about one interval, as plain arrays (testable without an env).

    Per agent [N]: kind, sells_good / buys_good (-1 none), sellable / needed MWh, marginal_cost,
    reserve, limit, efficiency, grid_limit, active. Per channel slot [E]: u, v, open, capacity,
    balance_u (EUR, before the step's payments). Tariffs feed_in and retail (EUR/MWh)."""

    kind: np.ndarray
    sells_good: np.ndarray
    buys_good: np.ndarray
    sellable: np.ndarray
    needed: np.ndarray
    marginal_cost: np.ndarray
    reserve: np.ndarray
    limit: np.ndarray
    efficiency: np.ndarray
    grid_limit: np.ndarray
    active: np.ndarray
    u: np.ndarray
    v: np.ndarray
    open: np.ndarray
    capacity: np.ndarray
    balance_u: np.ndarray
    feed_in: float
    retail: float
    ref_price: float = float("nan")   # EUR/MWh, the interval's reference price (for liquidity="ref")
    value_of_lost_load: float = 0.0   # EUR/MWh a consumer loses per MWh unserved
    network_charge: float = 0.0       # EUR/MWh cost of every P2P MWh

    @property
    def n(self) -> int:
        return int(self.kind.shape[0])


# ---- values ------------------------------------------------------------------------------------

def storage_values(kind, reserve, limit, efficiency, storage_value: Any = "reserve_limit") -> tuple[np.ndarray, np.ndarray]:
    """(value per MWh a store buys, cost per MWh a store sells) [N]; zero for other kinds.
    See the module docstring for the three definitions."""
    st = kind_has(kind, "stores")
    if isinstance(storage_value, str):
        if storage_value == "reserve_limit":
            return np.where(st, limit, 0.0), np.where(st, reserve, 0.0)
        if storage_value == "reward":
            z = np.zeros(st.shape[0])
            return z, z.copy()
        raise ValueError(f"storage_value = {storage_value!r}; allowed: 'reserve_limit', 'reward' or a number (EUR/MWh)")
    lam = float(storage_value)
    if not np.isfinite(lam) or lam < 0:
        raise ValueError(f"storage_value = {storage_value!r}; allowed: a finite number >= 0 (EUR per MWh stored)")
    return np.where(st, lam * efficiency, 0.0), np.where(st, lam / np.where(st, efficiency, 1.0), 0.0)


def buyer_value_seller_cost(iv: MarketInterval, storage_value: Any) -> tuple[np.ndarray, np.ndarray]:
    """value[N] of a MWh bought P2P and cost[N] of a MWh sold P2P, per agent (a consumer's value
    includes the value of lost load it avoids; the network charge is not in here)."""
    charge_value, discharge_cost = storage_values(iv.kind, iv.reserve, iv.limit, iv.efficiency, storage_value)
    st = kind_has(iv.kind, "stores")
    cons = kind_has(iv.kind, "grid_import")
    value = np.where(st, charge_value, np.where(cons, iv.limit + iv.value_of_lost_load, 0.0))
    cost = np.where(st, discharge_cost, iv.marginal_cost)
    return value, cost


# ---- the program -------------------------------------------------------------------------------

def solve_interval(iv: MarketInterval, *, network: str = "channels", storage_sides: str = "exact",
                   storage_value: Any = "reserve_limit", liquidity: Any = None) -> OptimumResult:
    """Optimal welfare of one interval given as arrays (see the module docstring)."""
    t0 = time.perf_counter()
    if network not in mechanisms.base.OPTIMUM_NETWORKS:
        raise ValueError(f"network = {network!r}; allowed: 'channels', 'complete'")
    if storage_sides not in ("exact", "relaxed"):
        raise ValueError(f"storage_sides = {storage_sides!r}; allowed: 'exact', 'relaxed'")
    numeric = isinstance(liquidity, (int, float)) and not isinstance(liquidity, bool)
    if not (liquidity in (None, "ignore", "reserve", "ref") or (numeric and liquidity > 0)):
        raise ValueError(f"liquidity = {liquidity!r}; allowed: None/'ignore' (upper bound), 'reserve' (upper bound), "
                         "'ref' or a price > 0 (EUR/MWh)")
    if liquidity not in (None, "ignore") and network == "complete":
        raise ValueError(f"liquidity = {liquidity!r} needs network = 'channels' (the exchange pays on-chain)")
    if liquidity == "ref" and not np.isfinite(iv.ref_price):
        raise ValueError("liquidity = 'ref' needs the interval's reference price (pass the step's starting state)")
    n = iv.n
    value, cost = buyer_value_seller_cost(iv, storage_value)
    st = kind_has(iv.kind, "stores")
    gen = kind_has(iv.kind, "grid_export")
    cons = kind_has(iv.kind, "grid_import")
    sg, bg = iv.sells_good.astype(np.int64), iv.buys_good.astype(np.int64)
    sellable = np.where(iv.active & (sg >= 0), iv.sellable, 0.0)
    needed = np.where(iv.active & (bg >= 0), iv.needed, 0.0)
    sell_ok = sellable > TINY
    buy_ok = needed > TINY
    voll, charge = float(iv.value_of_lost_load), float(iv.network_charge)
    lost_all = voll * float(needed[cons].sum())   # VoLL of every consumer's need: served MWh earn it back

    # --- P2P variables --------------------------------------------------------------------------
    if network == "channels":
        u, v = iv.u.astype(np.int64), iv.v.astype(np.int64)
        fwd = np.flatnonzero(iv.open & sell_ok[u] & buy_ok[v] & (sg[u] == bg[v]))
        rev = np.flatnonzero(iv.open & sell_ok[v] & buy_ok[u] & (sg[v] == bg[u]))
        ch = np.concatenate([fwd, rev])
        s_of = np.concatenate([u[fwd], v[rev]])
        b_of = np.concatenate([v[fwd], u[rev]])
        gain = value[b_of] - cost[s_of] - charge
        keep = gain > 0  # a pair that destroys value is never used at the optimum
        ch, s_of, b_of, gain = ch[keep], s_of[keep], b_of[keep], gain[keep]
        hi = np.full(ch.shape[0], np.inf)
        if liquidity not in (None, "ignore"):
            payer_u = u[ch] == b_of
            side = np.where(payer_u, iv.balance_u[ch], iv.capacity[ch] - iv.balance_u[ch])
            floor = (iv.reserve[s_of] if liquidity == "reserve"
                     else np.full(ch.shape[0], iv.ref_price if liquidity == "ref" else float(liquidity)))
            with np.errstate(divide="ignore", invalid="ignore"):
                hi = np.where(floor > 0, np.maximum(side, 0.0) / floor, np.inf)
        npair = ch.shape[0]
        # rows: seller s (out), buyer b (in); pair k has +1 in both
        out_rows, out_cols = s_of, np.arange(npair)
        in_rows, in_cols = b_of, np.arange(npair)
        obj_p2p = gain
        hub_eq = None
        nx = npair
    else:
        # hub per good: x_i >= 0 seller -> hub at -cost_i, y_j >= 0 hub -> buyer at +value_j, sum x = sum y
        sel = np.flatnonzero(sell_ok)
        buy = np.flatnonzero(buy_ok)
        ch = np.zeros(0, dtype=np.int64)
        s_of = np.zeros(0, dtype=np.int64)
        b_of = np.zeros(0, dtype=np.int64)
        nsx, nby = sel.shape[0], buy.shape[0]
        nx = nsx + nby
        obj_p2p = np.concatenate([-cost[sel], value[buy] - charge])
        hi = np.full(nx, np.inf)
        out_rows, out_cols = sel, np.arange(nsx)
        in_rows, in_cols = buy, nsx + np.arange(nby)
        goods = max(int(sg.max(initial=-1)), int(bg.max(initial=-1))) + 1
        hub_eq = sp.csr_matrix(
            (np.concatenate([np.ones(nsx), -np.ones(nby)]),
             (np.concatenate([sg[sel], bg[buy]]), np.arange(nx))), shape=(max(goods, 1), nx))

    # --- grid variables -------------------------------------------------------------------------
    g_idx = np.flatnonzero(gen & sell_ok & (iv.grid_limit > 0) & (iv.feed_in - iv.marginal_cost > 0))
    m_idx = np.flatnonzero(cons & buy_ok & (iv.grid_limit > 0) & (iv.limit + voll - iv.retail > 0))
    ng, nm = g_idx.shape[0], m_idx.shape[0]
    obj = np.concatenate([obj_p2p, iv.feed_in - iv.marginal_cost[g_idx], iv.limit[m_idx] + voll - iv.retail])
    ub = np.concatenate([hi, np.minimum(iv.grid_limit[g_idx], sellable[g_idx]),
                         np.minimum(iv.grid_limit[m_idx], needed[m_idx])])
    gcols = nx + np.arange(ng)
    mcols = nx + ng + np.arange(nm)

    # --- storage that could use both sides ------------------------------------------------------
    out_deg = np.bincount(out_rows, minlength=n)
    in_deg = np.bincount(in_rows, minlength=n)
    both = np.flatnonzero(st & (out_deg > 0) & (in_deg > 0))
    ncont = nx + ng + nm
    if ncont == 0:
        z = np.zeros(n)
        return OptimumResult(-lost_all, 0.0, np.zeros(nx if network == "channels" else 0), "empty", ch, s_of, b_of,
                             z, z.copy(), z.copy(), z.copy(), 0, 0, time.perf_counter() - t0)

    # sales row of every seller and purchase row of every buyer: rows 0..n-1 sales, n..2n-1 purchases
    rows = np.concatenate([out_rows, g_idx, n + in_rows, n + m_idx])
    cols = np.concatenate([out_cols, gcols, in_cols, mcols])
    base = sp.csr_matrix((np.ones(rows.shape[0]), (rows, cols)), shape=(2 * n, ncont))
    rhs = np.concatenate([sellable, needed])
    eq = None if hub_eq is None else (hub_eq, np.zeros(hub_eq.shape[0]))
    c = -obj
    ub_all = ub

    if both.size == 0 or storage_sides == "exact":
        nz = both.shape[0]
        if nz == 0:
            x, fun = _lp(c, base, rhs, eq, ub_all)
            status = "optimal"
        else:
            # one binary per store: sales <= sellable z, purchases <= headroom (1 - z). (The hull
            # relaxation almost never puts every store on one side here, so no LP shortcut.)
            zc = np.arange(nz)
            zpart = sp.csr_matrix((np.concatenate([-sellable[both], needed[both]]),
                                   (np.concatenate([both, n + both]), np.concatenate([zc, zc]))), shape=(2 * n, nz))
            a = sp.hstack([base, zpart]).tocsr()
            r = rhs.copy()
            r[both] = 0.0
            x, fun = _milp(np.concatenate([c, np.zeros(nz)]), a, r, eq, np.concatenate([ub_all, np.ones(nz)]), nz)
            status = "optimal (MILP)"
    else:
        # the hull relaxation: sales / sellable + purchases / headroom <= 1 replaces a store's two rows
        keep = np.ones(2 * n, dtype=bool)
        keep[both] = False
        keep[n + both] = False
        hull = base[both].multiply(1.0 / sellable[both, None]) + base[n + both].multiply(1.0 / needed[both, None])
        x, fun = _lp(c, sp.vstack([base[keep], sp.csr_matrix(hull)]).tocsr(),
                     np.concatenate([rhs[keep], np.ones(both.shape[0])]), eq, ub_all)
        status, nz = "optimal (relaxed)", 0
    nvar = ncont + nz
    x = np.maximum(x, 0.0)
    sold = np.bincount(out_rows, weights=x[out_cols], minlength=n)
    bought = np.bincount(in_rows, weights=x[in_cols], minlength=n)
    grid_sold = np.zeros(n)
    grid_sold[g_idx] = x[gcols]
    grid_bought = np.zeros(n)
    grid_bought[m_idx] = x[mcols]
    q = x[:nx] if network == "channels" else np.zeros(0)
    return OptimumResult(float(-fun) - lost_all, float(bought.sum()), q, status, ch, s_of, b_of, sold, bought,
                         grid_sold, grid_bought, nvar, nz, time.perf_counter() - t0)


def _nonempty(a: sp.csr_matrix, b: np.ndarray):
    used = np.flatnonzero(np.diff(a.indptr) > 0)
    return (a[used], b[used]) if used.size else (None, None)


def _lp(c, a, b, eq, ub):
    """HiGHS LP: min c x, a x <= b, eq rows = 0 (padded to x), 0 <= x <= ub. Returns (x, fun)."""
    a, b = _nonempty(sp.csr_matrix(a), b)
    a_eq = b_eq = None
    if eq is not None:
        a_eq = sp.hstack([eq[0], sp.csr_matrix((eq[0].shape[0], c.shape[0] - eq[0].shape[1]))]).tocsr()
        b_eq = eq[1]
    res = linprog(c, A_ub=a, b_ub=b, A_eq=a_eq, b_eq=b_eq, bounds=np.stack([np.zeros(c.shape[0]), ub], axis=1),
                  method="highs")
    if res.status != 0:  # pragma: no cover - x = 0 is feasible and every variable is bounded by rows
        raise RuntimeError(f"welfare program failed: {res.message}")
    return np.maximum(res.x, 0.0), float(res.fun)


def _milp(c, a, b, eq, ub, nz):
    """HiGHS MILP: as `_lp` with the last `nz` variables binary."""
    a, b = _nonempty(a, b)
    cons = [LinearConstraint(a, -np.inf, b)]
    if eq is not None:
        a_eq = sp.hstack([eq[0], sp.csr_matrix((eq[0].shape[0], c.shape[0] - eq[0].shape[1]))]).tocsr()
        cons.append(LinearConstraint(a_eq, 0.0, 0.0))
    integrality = np.concatenate([np.zeros(c.shape[0] - nz), np.ones(nz)])
    res = milp(c, constraints=cons, integrality=integrality, bounds=Bounds(np.zeros(c.shape[0]), ub),
               options={"mip_rel_gap": 1e-9})
    if res.status != 0 or res.x is None:  # pragma: no cover
        raise RuntimeError(f"welfare program failed: {res.message}")
    return np.maximum(res.x, 0.0), float(res.fun)


# ---- the optimum a mechanism is measured against ---------------------------------------------

def default_network(core: Any) -> str:
    """The optimum the core's clearing mechanism is measured against (`Mechanism.optimum_network`):
    'complete' for a central exchange such as the double auction, 'channels' for the others."""
    return mechanisms.get(core.scenario.mechanism).optimum_network


__all__ = ["OptimumResult", "MarketInterval", "solve_interval", "storage_values", "buyer_value_seller_cost",
           "default_network"]
