"""Mean-field equilibrium of the energy market over an episode: the price path and storage schedules.

    fc = forecast("energy_default", seed=0)         # generation and demand of the episode
    eq = solve_equilibrium(fc)                        # EquilibriumResult(price, storage_schedule, ...)
    eq = equilibrium("energy_default", seed=0)        # the same in one call

The model (price-taking storage against the env's own price formation)
----------------------------------------------------------------------
- Forecasts: generators offer all they generate and consumers want all they need (the env's
  mean-field aggregates count exactly these, whatever the policies), so aggregate supply S_t and
  demand D_t of every interval come from the env's physics alone. `forecast` runs the env
  forward from reset (or from a core's current state, on a copy) with a neutral policy that
  offers nothing. The physics draws depend on trades only through the channel lifecycle: a
  reopening refused for lack of funds changes how many random numbers later steps draw, and
  the weather from then on. With ample wallets the forecast is exact under any policy; on
  energy_default (industrial consumers' wallets run dry from grid bills) it holds for the first
  ~40-60 steps. Storage agents see these forecasts perfectly (a reference, not a forecaster).
- Storage agent i: state of charge on a grid of `soc_levels` points of its capacity; a move of
  a grid steps charges a*h/eff MWh bought (a > 0) or discharges |a|*h*eff MWh sold (a < 0),
  within its power limit per interval, starting from the env's initial charge. Its payoff is
  sum_t p_t * (sold_t - bought_t) (+ `terminal_value` per MWh left in store, default 0 as in
  the env's rewards). Best response: backward dynamic programming over (t, soc), vectorized
  over agents, grid and moves, O(N_storage * T * S * A).
- Price (the inverse demand): the env's reference price moves by
  ref' = ref + kappa (level - ref) + beta ref imb (+ the VWAP pull and noise). Holding the time-of-
  day level and the imbalance imb = (D - S) / (D + S) constant (and the VWAP at the reference,
  noise at its mean 0), its fixed point is
      p = kappa * level / (kappa - beta * imb), clipped to [feed-in, retail]
  (retail when kappa <= beta * imb). The equilibrium price of interval t is this static
  mapping of interval t's level and imbalance, where storage adds its purchases to D and its
  sales to S exactly as the env's aggregates do (`static_price`). The env's lag of one step
  and the VWAP pull are ignored: the path is the stationary price of each interval.
- Fixed point: fictitious play. Start from the best response to the no-storage prices; every
  iteration computes the prices of the average schedule so far, every store's best response
  to them, and moves the average toward it by a damping step alpha_k: 2 / (k + 3) by default
  (`step="frank_wolfe"`), 1 / (k + 2) for classical fictitious play (`"harmonic"`), or a
  constant. The average is a mixture of grid schedules, i.e. a mean-field population of stores
  of that type.
- Convergence: `residuals[k]` is the exploitability of the average schedule at its own prices,
  sum_i [J_i(best response) - J_i(average)] / sum_i J_i(best response): the share of the
  best-response profit the average leaves on the table (0 exactly at an equilibrium).
  `converged` when it falls to `tol`. `price_changes[k]` is max_t |p_k - p_{k-1}|.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..envs import physics, prices
from ..envs.offers import QUANTITY, N_ACTIONS


DP_SMALL = 50_000  # stores x levels x moves up to which one [n, S, A] array per interval is used


# ---- forecasts ---------------------------------------------------------------------------------

@dataclass
class Forecast:
    """Aggregate supply and demand of the rest of an episode, and the stores that can shift them."""

    t0: int                     # first interval
    hour: np.ndarray            # [T]
    level: np.ndarray           # [T] EUR/MWh, time-of-day level of the reference price
    supply: np.ndarray          # [T] MWh, generators' (shocked) energy offered
    demand: np.ndarray          # [T] MWh, consumers' (shocked) need
    shock: np.ndarray           # [T] int, shock kind active in each interval
    storage: np.ndarray         # [n_s] agent indices of the stores
    capacity: np.ndarray        # [n_s] MWh
    power: np.ndarray           # [n_s] MW
    efficiency: np.ndarray      # [n_s] one-way
    soc0: np.ndarray            # [n_s] MWh at t0
    step_hours: float
    feed_in: float
    retail: float
    price_reversion: float
    price_imbalance_gain: float

    @property
    def n_steps(self) -> int:
        return int(self.level.shape[0])


def forecast(source: Any, seed: Any = None) -> Forecast:
    """Forecast of an episode from the env's physics.

    `source`: a scenario (name, dict, Scenario; the episode of `seed` from reset) or a
    `MarketCore` after reset (the rest of its current episode, simulated on a copy of its state
    so the core itself is untouched). The neutral policy offers nothing, so nothing trades."""
    from ..envs.core import MarketCore
    from ..envs.step import market_step

    if isinstance(source, MarketCore):
        core = source
        if core.state is None:
            raise RuntimeError("forecast(core): the core has no state; call core.reset(seed) first")
        state = core.state.copy()
    else:
        core = MarketCore(source)
        core.reset(seed=seed)
        state = core.state
    sc, ag = core.scenario, core.agents
    storage = np.flatnonzero(ag.is_storage)
    t0 = state.t
    soc0 = state.soc[storage].copy()
    actions = np.zeros((ag.n, N_ACTIONS))
    actions[:, QUANTITY] = np.where(ag.is_storage, 0.0, -1.0)  # share 0 offered / wanted
    gen_mask = ag.sells_good >= 0
    gen_mask &= ~ag.is_storage
    cons_mask = (ag.buys_good >= 0) & ~ag.is_storage
    hours, supply, demand, shock = [], [], [], []
    while state.t < sc.episode_steps:
        hours.append(physics.hour_of_day(sc, state.t))
        shock.append(int(state.shock_kind))
        state, res = market_step(sc, ag, state, actions)
        supply.append(float(res.sellable[gen_mask].sum()))
        demand.append(float(res.needed[cons_mask].sum()))
    hour = np.asarray(hours, dtype=np.float64)
    level = np.array([prices.time_of_day_level(sc, h) for h in hours], dtype=np.float64)
    return Forecast(
        t0=int(t0), hour=hour, level=level, supply=np.asarray(supply), demand=np.asarray(demand),
        shock=np.asarray(shock, dtype=np.int64), storage=storage, capacity=ag.capacity[storage].copy(),
        power=ag.power[storage].copy(), efficiency=ag.efficiency[storage].copy(), soc0=soc0,
        step_hours=float(sc.step_hours), feed_in=float(sc.feed_in_tariff), retail=float(sc.retail_tariff),
        price_reversion=float(sc.price_reversion), price_imbalance_gain=float(sc.price_imbalance_gain))


# ---- the static price mapping --------------------------------------------------------------------

def static_price(level: np.ndarray, imb: np.ndarray, kappa: float, beta: float, feed_in: float,
                 retail: float) -> np.ndarray:
    """Fixed point of the reference-price update with level and imbalance held constant:
    p = kappa level / (kappa - beta imb), clipped to [feed_in, retail]; retail (feed-in) where the
    update has no finite fixed point and the imbalance pushes up (down)."""
    level = np.asarray(level, dtype=np.float64)
    imb = np.asarray(imb, dtype=np.float64)
    den = kappa - beta * imb
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(den > 1e-12, kappa * level / den,
                     np.where(imb > 0, retail, np.where(imb < 0, feed_in, level)))
    return np.clip(p, feed_in, retail)


def price_path(fc: Forecast, charge: np.ndarray | None = None, discharge: np.ndarray | None = None) -> np.ndarray:
    """Equilibrium price [T] for storage purchases `charge` [T, n_s] and sales `discharge` [T, n_s] (MWh)."""
    d = fc.demand + (0.0 if charge is None else charge.sum(axis=1))
    s = fc.supply + (0.0 if discharge is None else discharge.sum(axis=1))
    return static_price(fc.level, prices.imbalance(s, d), fc.price_reversion, fc.price_imbalance_gain,
                        fc.feed_in, fc.retail)


# ---- best response by dynamic programming ---------------------------------------------------------

@dataclass
class StorageGrid:
    """The discretized decision problem of the stores: moves and their energy per agent."""

    levels: int
    h: np.ndarray          # [n] MWh per grid step
    offsets: np.ndarray    # [A] grid steps per move, 0 first, then +-1, +-2, ... (ties pick smaller moves)
    bought: np.ndarray     # [n, A] MWh bought by each move
    sold: np.ndarray       # [n, A] MWh sold
    feasible: np.ndarray   # [n, S, A] move allowed from each grid point (power and bounds)
    target: np.ndarray     # [S, A] grid point after the move (clipped; masked by `feasible`)
    k0: np.ndarray         # [n] starting grid point

    @property
    def net(self) -> np.ndarray:
        return self.sold - self.bought


def storage_grid(capacity, power, efficiency, soc0, step_hours: float, levels: int = 21) -> StorageGrid:
    """Grid of `levels` charge levels per store (0..capacity); moves within the power limit."""
    if levels < 2:
        raise ValueError(f"soc_levels = {levels!r}; allowed: an integer >= 2")
    cap = np.asarray(capacity, dtype=np.float64)
    eff = np.asarray(efficiency, dtype=np.float64)
    pdt = np.asarray(power, dtype=np.float64) * step_hours
    h = cap / (levels - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        up = np.where(h > 0, np.floor(pdt * eff / h + 1e-9), 0)      # charge a steps: a h / eff bought <= P dt
        down = np.where(h > 0, np.floor(pdt / (eff * h) + 1e-9), 0)  # discharge a steps: a h eff sold <= P dt
    amax = int(min(max(up.max(initial=0), down.max(initial=0)), levels - 1))
    offsets = np.zeros(2 * amax + 1, dtype=np.int64)
    offsets[1::2] = np.arange(1, amax + 1)
    offsets[2::2] = -np.arange(1, amax + 1)
    a = offsets[None, :]
    bought = np.where(a > 0, a * h[:, None] / eff[:, None], 0.0)
    sold = np.where(a < 0, -a * h[:, None] * eff[:, None], 0.0)
    ok_a = (a <= up[:, None]) & (-a <= down[:, None])
    target = np.arange(levels)[:, None] + offsets[None, :]
    in_range = (target >= 0) & (target < levels)
    feasible = ok_a[:, None, :] & in_range[None, :, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        k0 = np.where(h > 0, np.rint(np.asarray(soc0, dtype=np.float64) / h), 0).astype(np.int64)
    k0 = np.clip(k0, 0, levels - 1)
    return StorageGrid(levels, h, offsets, bought, sold, feasible, np.clip(target, 0, levels - 1), k0)


@dataclass
class Schedule:
    """Per-interval purchases, sales and charge of every store [T, n] (soc is [T + 1, n], MWh)."""

    bought: np.ndarray
    sold: np.ndarray
    soc: np.ndarray
    value: np.ndarray      # [n] payoff of the schedule at the prices it answered

    @property
    def net(self) -> np.ndarray:
        return self.sold - self.bought


def best_response(grid: StorageGrid, price: np.ndarray, terminal_value: float = 0.0) -> Schedule:
    """Every store's payoff-maximizing schedule against `price` [T] (or [T, n]): backward
    induction over (t, grid point), all stores, grid points and moves at once."""
    n, s_levels = grid.h.shape[0], grid.levels
    price = np.asarray(price, dtype=np.float64)
    T = price.shape[0]
    pr = price if price.ndim == 2 else np.broadcast_to(price[:, None], (T, n))
    net = grid.net                                            # [n, A]
    value = terminal_value * grid.h[:, None] * np.arange(s_levels)[None, :]   # [n, S]
    choice = np.empty((T, n, s_levels), dtype=np.int64)
    gain = pr[:, :, None] * net[None, :, :]                   # [T, n, A]
    n_moves = grid.offsets.shape[0]
    if n * s_levels * n_moves <= DP_SMALL:
        # small: one [n, S, A] array per interval (fewer, larger numpy calls)
        penalty = np.where(grid.feasible, 0.0, -np.inf)       # [n, S, A]
        for t in range(T - 1, -1, -1):                        # loop over time only
            q = value[:, grid.target] + penalty + gain[t][:, None, :]
            a = np.argmax(q, axis=2)                          # first best: ties go to smaller moves
            choice[t] = a
            value = np.take_along_axis(q, a[:, :, None], axis=2)[:, :, 0]
    else:
        # large: a running maximum over the moves, contiguous [n, S] arrays (about 2x faster here)
        penalty = np.where(grid.feasible, 0.0, -np.inf).transpose(2, 0, 1).copy()   # [A, n, S]
        for t in range(T - 1, -1, -1):                        # loops over time and moves only
            best = value[:, grid.target[:, 0]] + penalty[0] + gain[t, :, 0, None]
            arg = np.zeros((n, s_levels), dtype=np.int64)
            for a in range(1, n_moves):                       # first best wins, as argmax
                cand = value[:, grid.target[:, a]] + penalty[a] + gain[t, :, a, None]
                better = cand > best
                best = np.where(better, cand, best)
                arg[better] = a
            choice[t] = arg
            value = best
    rows = np.arange(n)
    k = grid.k0.copy()
    v0 = value[rows, k]
    bought = np.empty((T, n))
    sold = np.empty((T, n))
    soc = np.empty((T + 1, n))
    soc[0] = k * grid.h
    for t in range(T):
        a = choice[t, rows, k]
        bought[t] = grid.bought[rows, a]
        sold[t] = grid.sold[rows, a]
        k = k + grid.offsets[a]
        soc[t + 1] = k * grid.h
    return Schedule(bought, sold, soc, v0)


def schedule_payoff(price: np.ndarray, bought: np.ndarray, sold: np.ndarray, soc_end: np.ndarray,
                    terminal_value: float = 0.0) -> np.ndarray:
    """Payoff [n] of schedules at `price` [T]: sum_t p_t (sold - bought) + terminal value of the charge."""
    p = np.asarray(price, dtype=np.float64)
    p = p[:, None] if p.ndim == 1 else p
    return (p * (sold - bought)).sum(axis=0) + terminal_value * soc_end


# ---- fictitious play -------------------------------------------------------------------------------

@dataclass
class EquilibriumResult:
    """Mean-field equilibrium of an episode (see the module docstring)."""

    price: np.ndarray              # [T] EUR/MWh
    storage_schedule: np.ndarray   # [T, n_s] MWh, sold - bought (positive = discharge)
    residuals: np.ndarray          # [K] relative exploitability per iteration
    converged: bool
    iterations: int
    bought: np.ndarray             # [T, n_s]
    sold: np.ndarray               # [T, n_s]
    soc: np.ndarray                # [T + 1, n_s]
    storage: np.ndarray            # [n_s] agent indices
    price_changes: np.ndarray      # [K] max_t |p_k - p_{k-1}|
    no_storage_price: np.ndarray   # [T] the static price path without storage
    t0: int = 0
    seconds: float = 0.0
    forecast: Forecast | None = field(default=None, repr=False)

    def price_at(self, t: int) -> float:
        """Equilibrium price of interval t (absolute step index)."""
        return float(self.price[min(max(t - self.t0, 0), self.price.shape[0] - 1)])


def step_size(step: Any, k: int) -> float:
    """Weight of iteration k's best response in the running average."""
    if step == "harmonic":
        return 1.0 / (k + 2)
    if step == "frank_wolfe":
        return 2.0 / (k + 3)
    return float(step)


def solve_equilibrium(fc: Forecast, *, soc_levels: int = 21, max_iter: int = 500, tol: float = 1e-3,
                      step: Any = "frank_wolfe", terminal_value: float = 0.0) -> EquilibriumResult:
    """Fictitious play to the mean-field fixed point (see the module docstring).

    `step`: the damping of the running average, "harmonic" (1 / (k + 2), classical fictitious
    play), "frank_wolfe" (2 / (k + 3), recent best responses weigh more; about twice as fast
    here) or a constant in (0, 1] (converges only to within a band of order that constant)."""
    if not (step in ("harmonic", "frank_wolfe") or (isinstance(step, (int, float)) and not isinstance(step, bool)
                                                    and 0.0 < step <= 1.0)):
        raise ValueError(f"step = {step!r}; allowed: 'harmonic', 'frank_wolfe' or a number in (0, 1]")
    t_start = time.perf_counter()
    p0 = price_path(fc)
    n = fc.storage.shape[0]
    if n == 0 or fc.n_steps == 0:
        T = fc.n_steps
        z = np.zeros((T, n))
        return EquilibriumResult(p0, z, np.zeros(0), True, 0, z, z.copy(), np.zeros((T + 1, n)), fc.storage,
                                 np.zeros(0), p0, fc.t0, time.perf_counter() - t_start, fc)
    grid = storage_grid(fc.capacity, fc.power, fc.efficiency, fc.soc0, fc.step_hours, soc_levels)
    br = best_response(grid, p0, terminal_value)
    bought, sold, soc = br.bought, br.sold, br.soc
    residuals, changes = [], []
    p_prev = p0
    converged = False
    k = 0
    for k in range(max_iter):
        p = price_path(fc, bought, sold)
        br = best_response(grid, p, terminal_value)
        best = br.value
        avg = schedule_payoff(p, bought, sold, soc[-1], terminal_value)
        gap = float(np.maximum(best - avg, 0.0).sum())
        scale = float(np.abs(best).sum())
        residuals.append(gap / scale if scale > 0 else gap)
        changes.append(float(np.abs(p - p_prev).max()))
        p_prev = p
        if residuals[-1] <= tol:
            converged = True
            break
        alpha = step_size(step, k)
        bought = bought + alpha * (br.bought - bought)
        sold = sold + alpha * (br.sold - sold)
        soc = soc + alpha * (br.soc - soc)
    price = price_path(fc, bought, sold)
    return EquilibriumResult(price, sold - bought, np.asarray(residuals), converged, k + 1, bought, sold, soc,
                             fc.storage, np.asarray(changes), p0, fc.t0, time.perf_counter() - t_start, fc)


def equilibrium(source: Any, seed: Any = None, **kwargs: Any) -> EquilibriumResult:
    """`solve_equilibrium(forecast(source, seed), **kwargs)`."""
    return solve_equilibrium(forecast(source, seed), **kwargs)


__all__ = [
    "Forecast", "forecast", "static_price", "price_path", "StorageGrid", "storage_grid", "Schedule",
    "best_response", "schedule_payoff", "EquilibriumResult", "solve_equilibrium", "equilibrium",
]
