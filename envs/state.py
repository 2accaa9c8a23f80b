"""Market state as struct of arrays: static agent parameters and the dynamic state of an episode.

`AgentParams` is drawn at reset and stays fixed for the episode; `MarketState` is what the
step pipeline reads and replaces. N = agents, E = channel slots, G = goods (energy is good 0).
Nothing here holds a Python object per agent or per channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from enum import IntEnum

import numpy as np

from .kinds import EXTRA_INDEX, KIND_ALIASES, KIND_NAMES, KINDS, Profile


# Kind codes, names and aliases derive from the registered kinds (`channelmarket.envs.kinds`).
Kind = IntEnum("Kind", [(spec.name.upper(), code) for code, spec in enumerate(KINDS)])
N_KINDS = len(Kind)

# Per kind code: the declared behaviours, as lookup tables for masks over agents.
_STORES = np.array([s.stores for s in KINDS])
_EXPORTS = np.array([s.grid_export for s in KINDS])
_IMPORTS = np.array([s.grid_import for s in KINDS])
_BEHAVIOURS = {"stores": _STORES, "grid_export": _EXPORTS, "grid_import": _IMPORTS}


def kind_has(kind, behaviour: str) -> np.ndarray:
    """[N] bool: which agents (by kind code) declare `behaviour` ("stores", "grid_export",
    "grid_import"; see kinds.KindSpec); the one way code outside the kinds asks what a kind does."""
    return _BEHAVIOURS[behaviour][np.asarray(kind, dtype=np.int64)]


def resolve_kinds(kinds, what: str = "agent kinds") -> tuple[str, ...]:
    """Kind names in `KIND_NAMES` order, without duplicates, from names, aliases (`KIND_ALIASES`),
    plurals ("winds") or a comma/plus separated string. `what` names the field in errors."""
    import re

    if isinstance(kinds, str):
        items = [p for p in re.split(r"[,+\s]+", kinds) if p]
    else:
        items = list(kinds)
    allowed = ", ".join(KIND_NAMES) + " or an alias (" + ", ".join(KIND_ALIASES) + ")"
    out: set[str] = set()
    for it in items:
        if not isinstance(it, str):
            raise TypeError(f"{what}: {it!r} is not an agent kind name; allowed: {allowed}")
        key = it.strip().lower()
        if key in KIND_NAMES:
            out.add(key)
        elif key in KIND_ALIASES:
            out.update(KIND_ALIASES[key])
        elif key.endswith("s") and key[:-1] in KIND_NAMES:
            out.add(key[:-1])
        else:
            raise ValueError(f"{what}: unknown agent kind {it!r}; allowed: {allowed}")
    if not out:
        raise ValueError(f"{what}: no agent kind given; allowed: {allowed}")
    return tuple(k for k in KIND_NAMES if k in out)


NO_GOOD = -1
FLOW_HISTORY = 8  # steps of per-channel flow kept in MarketState.flow_history


# ---- the per-channel flow history as per-step columns ----------------------------------------------
# A state keeps its last FLOW_HISTORY steps of flow as a tuple of [E] float32 columns, oldest first,
# shared with the states before it (a step adds one fresh column and drops the oldest: nothing of an
# old state is written, and no [E, H] copy is made), and beside each column the slots (re)opened in
# the step that wrote it: a reopened slot is a new channel, so every older column reads 0 there.

def flow_columns_zero(e: int) -> tuple[tuple, tuple]:
    """(columns, reopened) of a fresh episode: every column the same zero array, nothing reopened."""
    zero = np.zeros(e, dtype=np.float32)
    none = np.zeros(0, dtype=np.int64)
    return (zero,) * FLOW_HISTORY, (none,) * FLOW_HISTORY


def flow_matrix(columns: tuple, reopened: tuple) -> np.ndarray:
    """[E, H] float32 flow of the last H steps, oldest first (column j: H - j steps ago; a fresh
    array), reopened slots' older steps zeroed."""
    out = np.stack(columns, axis=1)
    for j in range(1, len(columns)):
        if reopened[j].shape[0]:
            out[reopened[j], :j] = 0.0
    return out


def flow_ring(columns: tuple, reopened: tuple, t: int) -> np.ndarray:
    """The same history as the ring buffer [E, H] the state format stores: step s in column s % H."""
    return np.roll(flow_matrix(columns, reopened), t % len(columns), axis=1)


def flow_columns_of(ring: np.ndarray, t: int) -> tuple[tuple, tuple]:
    """(columns, reopened) of a ring buffer [E, H] at step t (a state dict's `flow_history`):
    fresh contiguous columns, oldest first, nothing reopened (the ring already holds the zeros)."""
    h = ring.shape[1]
    cols = tuple(np.ascontiguousarray(ring[:, (t + j) % h], dtype=np.float32) for j in range(h))
    return cols, (np.zeros(0, dtype=np.int64),) * h


@dataclass(frozen=True)
class AgentParams:
    """Per-agent parameters, fixed for an episode (drawn from the scenario at reset)."""

    kind: np.ndarray          # [N] int8, Kind
    profile: np.ndarray       # [N] int8, Profile (consumers)
    capacity: np.ndarray      # [N] float64, MW rating (generators), MWh (storage), MW base load (consumers)
    power: np.ndarray         # [N] float64, MW charge/discharge limit (storage), else 0
    efficiency: np.ndarray    # [N] float64, one-way efficiency sqrt(round trip) (storage), else 1
    marginal_cost: np.ndarray # [N] float64, EUR/MWh (generators)
    reserve: np.ndarray       # [N] float64, EUR/MWh, lowest ask a seller accepts
    limit: np.ndarray         # [N] float64, EUR/MWh, highest bid a buyer pays
    grid_limit: np.ndarray    # [N] float64, MWh per step the grid takes (generators) or serves (consumers)
    sells_good: np.ndarray    # [N] int8, good the agent can sell or NO_GOOD
    buys_good: np.ndarray     # [N] int8, good the agent can buy or NO_GOOD
    xy: np.ndarray            # [N, 2] float64, position in the unit square
    initial_soc: np.ndarray   # [N] float64, MWh stored at reset (storage), else 0
    extra: np.ndarray         # [N, X] float64, kind-specific parameters (kinds.EXTRA_COLUMNS), else 0

    @property
    def n(self) -> int:
        return int(self.kind.shape[0])

    def __getstate__(self) -> dict:
        """Pickled and deep-copied without the caches the pipeline keeps on it (rebuilt on use)."""
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    # Derived masks, computed once per episode (the arrays are fixed for the episode), from the
    # behaviours the kinds declare (kinds.KindSpec), never from kind names.
    @cached_property
    def is_store(self) -> np.ndarray:
        """Holds a charge (storage, electric vehicles): signed quantity action, charge moves with trades."""
        return _STORES[self.kind]

    @property
    def is_storage(self) -> np.ndarray:
        """Same as `is_store` (the name the pipeline grew up with)."""
        return self.is_store

    @cached_property
    def is_generator(self) -> np.ndarray:
        """Sells what it generates; the residual goes to the grid at feed-in."""
        return _EXPORTS[self.kind]

    @cached_property
    def is_consumer(self) -> np.ndarray:
        """Buys what it needs; the residual comes from the grid at retail."""
        return _IMPORTS[self.kind]

    @cached_property
    def blocks(self) -> tuple[tuple, ...]:
        """(spec, slice) of every kind present, in registry order (kinds are contiguous blocks)."""
        counts = np.bincount(self.kind.astype(np.int64), minlength=len(KINDS))
        ends = np.cumsum(counts)
        return tuple((spec, slice(int(e - c), int(e))) for spec, c, e in zip(KINDS, counts, ends) if c > 0)

    @cached_property
    def trade_pools(self) -> tuple[np.ndarray, np.ndarray]:
        """(agents that can sell, agents that can buy) as index arrays, storage in both (the kind-aware
        topology's reopening pools, read every step)."""
        return np.flatnonzero(self.sells_good >= 0), np.flatnonzero(self.buys_good >= 0)

    @cached_property
    def has_book_hooks(self) -> bool:
        return any(spec.book is not None for spec, _ in self.blocks)

    def extra_column(self, name: str) -> np.ndarray:
        """[N] view of one kind-specific parameter column (kinds.EXTRA_COLUMNS)."""
        return self.extra[..., EXTRA_INDEX[name]]  # [N], or [M, N] in a batch's grid view

    @cached_property
    def is_residential(self) -> np.ndarray:
        return self.profile == Profile.RESIDENTIAL

    @cached_property
    def single_good(self) -> bool:
        """True when every agent trades good 0 (or nothing): prices are then scalars."""
        return bool((self.sells_good <= 0).all() and (self.buys_good <= 0).all())


@dataclass(frozen=True)
class MarketState:
    """Everything that changes during an episode. Replaced, never mutated, by the step pipeline
    (the generators are the exception: they advance with every draw), with one more exception no
    one can see: a state that nothing outside its `MarketCore` holds (neither it nor its channel
    arrays) lends those arrays to the next state, rewritten in place (`MarketCore._channels_private`).

    Both generators are spawned from the one episode seed. The exogenous stream (weather, load
    noise, price noise, random shocks) draws the same numbers whatever the agents do, so two
    populations run on the same seed face the same days and shocks (common random numbers);
    the channel stream draws one fixed block per step (`channels.lifecycle`), whatever reopens."""

    # --- agents -------------------------------------------------------------------------
    active: np.ndarray        # [N] bool, agent still in the episode
    soc: np.ndarray           # [N] float64, MWh stored (storage), else 0
    wallet: np.ndarray        # [N] float64, EUR on-chain (may go negative: grid bills are post-paid)
    cloud: np.ndarray         # [N] float64, cloud cover in [0, 1] at each solar site
    wind_speed: np.ndarray    # [N] float64, m/s at each wind site
    generation: np.ndarray    # [N] float64, MWh this interval before shocks
    demand: np.ndarray        # [N] float64, MWh this interval before shocks
    last_sold: np.ndarray     # [N] float64, MWh sold peer-to-peer last step
    last_bought: np.ndarray   # [N] float64, MWh bought peer-to-peer last step
    last_profit: np.ndarray   # [N] float64, EUR reward of last step
    # --- channels -----------------------------------------------------------------------
    u: np.ndarray             # [E] int32, first endpoint (int32 halves the memory traffic of E-sized gathers)
    v: np.ndarray             # [E] int32, second endpoint
    capacity: np.ndarray      # [E] float64, EUR locked in the channel
    balance_u: np.ndarray     # [E] float64, EUR on u's side; v's side is capacity - balance_u
    open: np.ndarray          # [E] bool
    flow: np.ndarray          # [E] float64, EUR paid through the channel last step (u->v positive)
    utilization: np.ndarray   # [E] float64, EMA of |flow| / capacity
    topology_version: int     # bumps whenever a channel opens or closes
    fee_base: np.ndarray      # [E] float64, EUR a forwarding node charges per payment over the channel
    fee_rate: np.ndarray      # [E] float64, share of the forwarded amount it charges on top
    # --- market -------------------------------------------------------------------------
    ref_price: np.ndarray     # [G] float64, EUR/MWh mean-field reference price
    clearing_price: np.ndarray  # [G] float64, EUR/MWh VWAP of the last step (carried when no trade)
    price_history: np.ndarray # [H, G] float64, last H reference prices, newest last
    supply: np.ndarray        # [G] float64, MWh offered for sale last step (after shock)
    demand_total: np.ndarray  # [G] float64, MWh wanted last step (after shock)
    volume: np.ndarray        # [G] float64, MWh traded peer-to-peer last step
    holdings: np.ndarray      # [N, G] float64, units of each stock good held (certificates; energy column unused)
    owed: np.ndarray          # [N, G] float64, units an agent must hold by the episode's end (quotas)
    issued: np.ndarray        # [G] float64, units issued since reset
    retired: np.ndarray       # [G] float64, units retired against obligations since reset
    shock_kind: int           # Shock, active for the current interval
    shock_remaining: int      # steps the active shock still lasts, including the current one
    t: int                    # step index of the current interval
    fee_sink: float           # EUR paid in on-chain fees
    grid_account: float       # EUR the grid received minus paid
    # --- g-econ: accounts, regular partners, channel flow history (issue 10) ---------------
    energy_account: np.ndarray  # [N] float64, EUR energy account grid bills and network charges settle on
                                # (grid_billing="energy_account"; stays 0 with "wallet"); may go negative
    partner: np.ndarray       # [N] int32, regular trading partner (-1 none; tracked with partner_channel_share > 0)
    partner_value: np.ndarray # [N] float64, EUR traded with that partner (decaying)
    flow_columns: tuple       # FLOW_HISTORY [E] float32 columns, EUR u->v of the last steps, oldest first
    flow_reopened: tuple      # FLOW_HISTORY int64 arrays: slots reopened in the step of each column
    rng: np.random.Generator = field(repr=False)      # endogenous draws: channel closes and reopenings
    rng_exo: np.random.Generator = field(repr=False)  # exogenous draws: weather, load, price noise, random shocks

    @property
    def balance_v(self) -> np.ndarray:
        return self.capacity - self.balance_u

    @property
    def flow_history(self) -> np.ndarray:
        """[E, FLOW_HISTORY] float32, EUR u->v of the last steps as a ring buffer (step s in column
        s % FLOW_HISTORY; the state-dict layout), reopened slots' older steps 0. Built on first read
        (read-only, kept with the state)."""
        ring = self.__dict__.get("_flow_ring")
        if ring is None:
            ring = flow_ring(self.flow_columns, self.flow_reopened, self.t)
            ring.flags.writeable = False
            self.__dict__["_flow_ring"] = ring
        return ring

    def money_total(self) -> float:
        """Wallets + energy accounts + open channel capacities + fee sink + grid account: constant over an episode."""
        return float(
            self.wallet.sum() + self.capacity[self.open].sum() + self.fee_sink + self.grid_account
            + self.energy_account.sum()
        )

    def replace(self, **changes) -> "MarketState":
        return replace(self, **changes)

    @classmethod
    def from_fields(cls, d: dict) -> "MarketState":
        """A state from a dict holding every field (`batch.BatchState.market`, each step): what the
        frozen dataclass's __init__ would store, without its per-field work. KeyError naming a
        missing field."""
        missing = _STATE_FIELD_SET.difference(d)
        if missing:
            raise KeyError(f"MarketState fields missing: {sorted(missing)}")
        obj = object.__new__(cls)
        obj.__dict__.update(d)
        return obj

    def copy(self) -> "MarketState":
        """A deep copy, generator included (same future draws)."""
        import copy

        return copy.deepcopy(self)


_STATE_FIELD_SET = frozenset(f.name for f in fields(MarketState))
