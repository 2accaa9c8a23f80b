"""What an agent kind declares: `KindSpec`, its scenario fields (`Count`, `Param`), its draws and hooks.

A kind is one module in `channelmarket.envs.kinds` holding `SPEC = KindSpec(...)`. Everything
that differs between kinds lives there: the goods it sells and buys, its role, its scenario
counts and parameters (defaults and allowed ranges, from which `Scenario` gets its fields and
validation), the per-agent draws at reset, how its static parameters follow from them, and
vectorized hooks over its contiguous block of agents (next interval's weather and energy,
what it can sell or needs, booking after settlement). Kinds are laid out in blocks in registry
order, so a hook works on slices of the market's arrays, never on one agent at a time.

Hooks (all optional; a missing hook means the default rule):

    init_state(sc, n, arrays, rng)         exogenous state at reset ("cloud", "wind_speed" [N])
    weather(sc, sl, arrays, rng)           advance the kind's exogenous state one step
    energy(sc, sl, t, arrays, agents, rng) generation / demand (MWh) of interval t into arrays
    tradable(sc, sl, agents, state, t, fs, fd, sellable, needed)
                                           what the block can sell / needs now (default: it sells
                                           its shocked generation and needs its shocked demand)
    book(sc, sl, agents, t, active, soc, wallet, breakdown) -> float
                                           after settlement: moves of its own (returns EUR the grid
                                           account gains); arrays are fresh and written in place
    advise(core, idx, direction)           for baselines: the store's side (+1 sell, -1 buy, 0 idle)
                                           for agents `idx` of this kind, given the generic rule's
"""

from __future__ import annotations

import numpy as np

from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import Any, Callable

class Role(IntFlag):
    """Which side of the market a kind trades on; storage-like kinds are both."""

    SELLER = 1
    BUYER = 2
    BOTH = 3


@dataclass(frozen=True)
class Count:
    """A scenario count field of a kind (`n_solar`); a kind with demand profiles has one per profile."""

    field: str
    default: int
    profile: int = 0   # state.Profile of the agents it counts (consumers), else NONE


@dataclass(frozen=True)
class Param:
    """A scenario parameter field of a kind: `pair` (low, high) sampled per agent, or a `num`."""

    field: str
    default: Any
    lo: float
    hi: float
    shape: str = "pair"   # "pair" | "num"
    doc: str = ""


@dataclass(frozen=True)
class Draw:
    """One uniform draw per agent at reset: `rng.uniform(*sc.<param>, size=block)` into column `into`
    (`capacity`, `marginal_cost`, `efficiency` or one of the kind's `extra` columns). `profile`
    restricts it to the agents of one count (0: the whole block). Draws run phase by phase, in
    each phase kind by kind in registry order; that order is part of every recorded trajectory."""

    phase: int
    param: str
    into: str
    profile: int = 0


@dataclass(frozen=True, eq=False)
class KindSpec:
    name: str
    order: int                     # position in the registry (kind code); fixes block and draw order
    role: Role
    sells: tuple[str, ...] = ()    # goods it can sell
    buys: tuple[str, ...] = ()     # goods it can buy
    counts: tuple[Count, ...] = ()
    params: tuple[Param, ...] = ()
    draws: tuple[Draw, ...] = ()
    extra: tuple[str, ...] = ()    # per-agent parameter columns of its own (AgentParams.extra)
    stores: bool = False           # holds a charge: quantity action is signed, trades move `soc`,
                                   # charge valued at the episode's end
    grid_export: bool = False      # what it does not sell goes to the grid at feed-in (or is curtailed)
    grid_import: bool = False      # what it does not buy comes from the grid at retail; consumption
                                   # valued at its limit
    generator: bool = False        # member of the `generators` alias
    optional: bool = False         # observed (one-hot column) only in scenarios that have it
    presets: dict = field(default_factory=dict)   # preset name -> Scenario field overrides
    derive: Callable | None = None     # (sc, sl, cols) fills static columns of the block
    init_state: Callable | None = None
    weather: Callable | None = None
    energy: Callable | None = None
    tradable: Callable | None = None
    book: Callable | None = None
    advise: Callable | None = None     # baselines: (core, idx, direction) -> +1 sell / -1 buy / 0 idle
    market: str = "energy"             # the economy the kind belongs to (`kinds.market_kinds`)
    traits: dict = field(default_factory=dict)   # market-specific declarations (production time, colour, ...)

    @property
    def sells_any(self) -> bool:
        return bool(self.role & Role.SELLER)

    @property
    def buys_any(self) -> bool:
        return bool(self.role & Role.BUYER)

    def count(self, sc) -> int:
        """Agents of this kind in scenario `sc`."""
        return sum(getattr(sc, c.field) for c in self.counts)

    def fields(self) -> list[tuple[str, Any]]:
        """(name, default) of the scenario fields this kind declares."""
        return [(c.field, c.default) for c in self.counts] + [(p.field, p.default) for p in self.params]


class Profile(IntEnum):
    """Demand profile of consumers (ignored for other kinds)."""

    NONE = 0
    RESIDENTIAL = 1
    INDUSTRIAL = 2


def grid(x):
    """`x` as an [M, N] grid: itself, or a one-row view of an [N] array (in-place writes reach it).
    The kinds' compiled per-step kernels take grids: one market's [N] arrays and a batch's [M, N] alike."""
    return x if x.ndim == 2 else x.reshape(1, -1)


def per_market(value, m: int):
    """A per-market value as an [M, 1] float64 array: a number (the markets' clocks agree) repeated,
    or an [M, 1] array (each market's own clock) as it is."""
    if isinstance(value, np.ndarray) and value.ndim:
        return value.reshape(m, 1).astype(np.float64, copy=False)
    return np.array([[float(value)]]) if m == 1 else np.full((m, 1), float(value))
