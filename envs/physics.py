"""Physics: who can generate, consume and store how much in each interval.

The rules live with the kinds (`channelmarket.envs.kinds`: solar bell curve and clouds, wind
power curve, demand profiles, storage limits, ...); this module runs their declarations and
hooks over the kinds' contiguous blocks of agents: the draws at reset, the exogenous state,
the next interval's generation and demand, and what every agent can sell or needs now. Shocks
multiply generation and demand.
"""

from __future__ import annotations

import numpy as np

from .clock import hour_of_day
from .kinds import EXTRA_COLUMNS, EXTRA_INDEX, GOODS, KINDS
from .kinds.consumer import industrial_shape, residential_shape
from .kinds.solar import SOLAR_NOON, SOLAR_WIDTH, SUNRISE, SUNSET, solar_shape
from .kinds.wind import CUT_IN, CUT_OUT, RATED_SPEED, wind_power_curve
from .scenario import Scenario
from .shocks import DEMAND_FACTOR, SUPPLY_FACTOR
from .state import AgentParams, NO_GOOD, Profile

ENERGY = 0  # index of the energy good
_COLUMNS = ("capacity", "power", "efficiency", "marginal_cost", "reserve", "limit", "grid_limit", "initial_soc")
_PHASES = sorted({d.phase for s in KINDS for d in s.draws})


def layout(sc: Scenario) -> tuple[np.ndarray, np.ndarray, list]:
    """(kind [N] int8, profile [N] int8, [(spec, slice, {profile: slice})]): kinds in registry
    order, each a contiguous block, its counts (profiles) in declaration order within it."""
    kind, profile, blocks = [], [], []
    start = 0
    for code, spec in enumerate(KINDS):
        subs, s0 = {}, start
        for c in spec.counts:
            k = getattr(sc, c.field)
            subs[c.profile] = slice(start, start + k)
            kind.append(np.full(k, code, dtype=np.int8))
            profile.append(np.full(k, c.profile, dtype=np.int8))
            start += k
        blocks.append((spec, slice(s0, start), subs))
    return np.concatenate(kind), np.concatenate(profile), blocks


def sample_agents(sc: Scenario, rng: np.random.Generator) -> AgentParams:
    """Draw the per-agent parameters of a scenario: the kinds' declared draws (phase by phase,
    kind by kind in registry order), then each kind's `derive` of its static parameters."""
    kind, profile, blocks = layout(sc)
    n = kind.shape[0]
    cols = {c: np.zeros(n) for c in _COLUMNS}
    cols["efficiency"][:] = 1.0
    extra = np.zeros((n, len(EXTRA_COLUMNS)))
    for phase in _PHASES:
        for spec, sl, subs in blocks:
            for d in spec.draws:
                if d.phase != phase:
                    continue
                part = subs[d.profile] if d.profile else sl
                lo, hi = getattr(sc, d.param)
                out = cols[d.into] if d.into in cols else extra[:, EXTRA_INDEX[d.into]]
                out[part] = rng.uniform(lo, hi, size=part.stop - part.start)
    cols["extra"] = extra
    for spec, sl, _ in blocks:
        if spec.derive is not None and sl.stop > sl.start:
            spec.derive(sc, sl, cols)
    goods = {g: i for i, g in enumerate(GOODS)}
    sells = np.array([goods[s.sells[0]] if s.sells else NO_GOOD for s in KINDS], dtype=np.int8)
    buys = np.array([goods[s.buys[0]] if s.buys else NO_GOOD for s in KINDS], dtype=np.int8)
    xy = rng.random((n, 2))  # positions, for economies with space; the draw keeps the channel stream as it is
    return AgentParams(kind=kind, profile=profile, sells_good=sells[kind], buys_good=buys[kind], xy=xy,
                       **cols)


def initial_weather(sc: Scenario, agents: AgentParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Exogenous state at reset (cloud cover, wind speed), drawn by the kinds' `init_state`."""
    arrays = {"cloud": np.zeros(agents.n), "wind_speed": np.zeros(agents.n)}
    for spec in KINDS:
        if spec.init_state is not None:
            spec.init_state(sc, agents.n, arrays, rng)
    return arrays["cloud"], arrays["wind_speed"]


def advance_weather(sc: Scenario, agents: AgentParams, cloud: np.ndarray, wind_speed: np.ndarray,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One step of every kind's exogenous state (`weather` hooks, registry order)."""
    arrays = {"cloud": cloud.copy(), "wind_speed": wind_speed.copy()}
    for spec, sl in agents.blocks:
        if spec.weather is not None:
            spec.weather(sc, sl, arrays, rng)
    return arrays["cloud"], arrays["wind_speed"]


def interval_energy(sc: Scenario, agents: AgentParams, t: int, cloud: np.ndarray, wind_speed: np.ndarray,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Generation and demand (MWh, before shocks) of every agent in interval `t` (`energy` hooks)."""
    shape = agents.kind.shape  # [N], or [M, N] over a batch of markets (envs.batch)
    arrays = {"cloud": cloud, "wind_speed": wind_speed, "generation": np.zeros(shape), "demand": np.zeros(shape)}
    for spec, sl in agents.blocks:
        if spec.energy is not None:
            spec.energy(sc, sl, t, arrays, agents, rng)
    return arrays["generation"], arrays["demand"]


def shock_factors(shock_kind: int) -> tuple[float, float]:
    """(supply multiplier, demand multiplier) of a shock."""
    return float(SUPPLY_FACTOR[shock_kind]), float(DEMAND_FACTOR[shock_kind])


def tradable(sc: Scenario, agents: AgentParams, state, shock_kind: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Energy each agent could sell and needs (or could absorb) this interval, MWh.

    By default an agent sells its (shocked) generation and needs its (shocked) demand; kinds
    with a `tradable` hook (stores: deliverable charge and headroom within power) overwrite
    their block."""
    fs, fd = shock_factors(state.shock_kind if shock_kind is None else shock_kind)
    sellable = state.generation * fs
    needed = state.demand * fd
    for spec, sl in agents.blocks:
        if spec.tradable is not None:
            spec.tradable(sc, sl, agents, state, state.t, fs, fd, sellable, needed)
    return sellable, needed


__all__ = ["hour_of_day", "solar_shape", "wind_power_curve", "residential_shape", "industrial_shape",
           "sample_agents", "initial_weather", "advance_weather", "interval_energy", "tradable", "layout",
           "shock_factors", "ENERGY", "Profile", "SOLAR_NOON", "SOLAR_WIDTH", "SUNRISE", "SUNSET", "CUT_IN",
           "RATED_SPEED", "CUT_OUT"]


def book_kinds(sc: Scenario, agents: AgentParams, t: int, active: np.ndarray, soc: np.ndarray,
               wallet: np.ndarray, breakdown: np.ndarray) -> float:
    """After settlement: the `book` hooks of the kinds that have one (e.g. an electric vehicle's
    departure), in place on the fresh soc, wallet and breakdown arrays; EUR the grid account gains."""
    grid = 0.0
    for spec, sl in agents.blocks:
        if spec.book is not None:
            grid += spec.book(sc, sl, agents, t, active, soc, wallet, breakdown)
    return grid
