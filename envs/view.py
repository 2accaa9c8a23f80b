"""`MarketView`: the read-only window a policy has on the market, and what it may see through it.

    view = core.view(agents)          # the agents a policy controls; Policy.bind makes one
    view.reserve[view.agents]         # its own agents' reserve prices
    view.ref_price                    # the public reference price [G]
    view.my_trades()                  # last step's trades its agents were party to

A policy trades for some agents of the market. What it may know is what those agents could know
in a real market over payment channels, and nothing else:

| public (every participant)                 | why                                              |
|--------------------------------------------|--------------------------------------------------|
| `scenario` (tariffs, clock, mechanism)      | the market's published rules and tariffs         |
| `t`, `episode_steps`, `done`, `stepped`     | the clock                                        |
| `kind`, `kind_names`, `sells_good`, `buys_good`, `is_store`, `active` | the directory of participants: who sells and buys what (the kind registry, `envs/kinds`), who is still in the market |
| `u`, `v`, `open`, `channel_capacity`, `topology_version` | the channel graph: Lightning gossips channel endpoints and capacities |
| `ref_price`, `summary()`                    | the published mean-field reference price and the last step's market summary (clearing price, volume, supply, demand, ...) |
| `grid`                                      | a grid beside the market (True here; the supply chain has none) |
| `price_unit`                                | this market's price of one EUR/MWh of the energy market: 1 here; another economy's view (the supply chain's, in cap units) says how its prices compare, so the baselines' absolute parameters (margins in EUR/MWh, loyalty points in EUR) keep their meaning |
| `schema`                                    | the observation's column names                   |

| own (controlled agents only; NaN for every other agent or channel) | why |
|--------------------------------------------|--------------------------------------------------|
| `reserve`, `limit`, `capacity`, `power`, `efficiency`, `grid_limit`, `marginal_cost`, `initial_soc` | an agent knows its own costs, values and plant |
| `soc`, `tradable()` (sellable, needed)      | its own charge, generation and demand            |
| `balance_u` on channels one of its agents is an endpoint of | both ends of a Lightning channel know its split (a node knows its local balances) |
| `my_trades()`, `breakdown()`                | its own trades, payments and profit of the last step |
| `advised(agents, direction)`                | its own kinds' declared advice (`KindSpec.advise`) for its agents |

Never visible: other agents' private parameters, charges, balances, wallets, trades or profits,
the random generators and the future. Every array is a read-only NumPy view (`flags.writeable`
False) or a fresh read-only copy; writing raises. Private fields are [N] (or [E]) arrays indexed
by agent (channel slot) so policies index them as they index observations, with NaN where the
policy may not look. The one exception is explicit: `oracle_copy()` hands a *copy* of the whole
market to perfect-foresight references (the `mean_field` baseline simulates the rest of the
day on it); a trader that uses it is a benchmark, not a market participant.
"""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

import numpy as np

from .breakdown import BREAKDOWN_FIELDS
from .kinds import KIND_NAMES

# the per-agent parameters a policy knows of its own agents (AgentParams fields)
OWN_PARAMS = ("reserve", "limit", "capacity", "power", "efficiency", "grid_limit", "marginal_cost", "initial_soc")


class OwnTrades(NamedTuple):
    """Last step's trades a policy's agents were party to (as seller or buyer), in clearing order."""

    channel: np.ndarray   # [T] int64 channel slot, or trades.ON_CHAIN
    seller: np.ndarray    # [T] int64
    buyer: np.ndarray     # [T] int64
    good: np.ndarray      # [T] int64
    qty: np.ndarray       # [T] MWh agreed
    price: np.ndarray     # [T] EUR/MWh agreed
    paid_qty: np.ndarray  # [T] MWh actually paid for
    paid: np.ndarray      # [T] EUR actually paid
    failed: np.ndarray    # [T] bool, nothing could be paid
    partial: np.ndarray   # [T] bool, cut to the channel balance


def read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view of `a` (an array or anything np.asarray takes)."""
    v = np.asarray(a).view()
    v.flags.writeable = False
    return v


def own_trades(controlled: np.ndarray, parts: tuple) -> OwnTrades:
    """`OwnTrades` of the rows whose seller (parts[1]) or buyer (parts[2]) is `controlled`, as
    read-only copies; `parts` are the ten `OwnTrades` columns of every trade of the step."""
    sel = controlled[np.asarray(parts[1])] | controlled[np.asarray(parts[2])]
    out = []
    for a in parts:
        c = np.asarray(a)[sel]
        c.flags.writeable = False
        out.append(c)
    return OwnTrades(*out)


def agent_indices(agents: Any, n: int, what: str) -> np.ndarray:
    """int64 indices of `agents` (a 1-d index array or a boolean mask over `n` agents); TypeError
    for another form, ValueError for an index outside [0, n) — `what` names the argument."""
    idx = np.asarray(agents)
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise ValueError(f"{what}: boolean mask has shape {idx.shape}; expected ({n},)")
        idx = np.flatnonzero(idx)
    if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
        raise TypeError(f"{what} must be a 1-d array of agent indices or a boolean mask, got {agents!r:.80}")
    idx = idx.astype(np.int64)
    bad = idx[(idx < 0) | (idx >= n)]
    if bad.size:
        raise ValueError(f"{what}: agent indices {bad[:5].tolist()} are outside [0, {n})")
    return idx


class MarketView:
    """What a policy controlling `agents` may read of `core` (see the module docstring)."""

    def __init__(self, core: Any, agents: Any = None) -> None:
        n = core.n_agents
        idx = np.arange(n) if agents is None else agent_indices(agents, n, "view agents")
        mask = np.zeros(n, dtype=bool)
        mask[idx] = True
        self._core = core
        self._agents = read_only(idx)
        self._controlled = read_only(mask)
        self._static_of = None      # the AgentParams the cached own parameters come from
        self._static: dict[str, np.ndarray] = {}
        self._step_of = None        # the MarketState the per-state cache describes
        self._step: dict[str, Any] = {}

    def _per_state(self, key: str, make: Any) -> Any:
        """`make(state)` computed once per market state (states are replaced, never changed, by a step),
        so reading a field twice in a step copies it once; every cached array is read-only."""
        st = self._state
        if self._step_of is not st:
            self._step_of, self._step = st, {}
        out = self._step.get(key)
        if out is None:
            out = self._step[key] = make(st)
        return out

    # ---- who and when (public) ---------------------------------------------------------------
    @property
    def agents(self) -> np.ndarray:
        """[M] int64 indices of the controlled agents."""
        return self._agents

    @property
    def controlled(self) -> np.ndarray:
        """[N] bool: controlled agents."""
        return self._controlled

    @property
    def scenario(self):
        """The market's rules (a frozen `Scenario`)."""
        return self._core.scenario

    @property
    def n_agents(self) -> int:
        return int(self._core.n_agents)

    @property
    def schema(self):
        """The observation schema (`obs_schema.ObsSchema`): column names, `schema["reserve"]`."""
        return self._core.obs_schema

    @property
    def t(self) -> int:
        """Index of the current interval (steps taken this episode)."""
        return int(self._state.t)

    @property
    def episode_steps(self) -> int:
        return int(self._core.scenario.episode_steps)

    @property
    def done(self) -> bool:
        return bool(self._core.done)

    @property
    def stepped(self) -> bool:
        """A step was taken since the last reset or restore (`my_trades`, `breakdown` describe it)."""
        return self._core.last_result is not None

    # ---- the directory (public) ------------------------------------------------------------------
    kind_names = KIND_NAMES

    @property
    def kind(self) -> np.ndarray:
        """[N] kind codes (`kind_names[code]`)."""
        return read_only(self._params.kind)

    @property
    def sells_good(self) -> np.ndarray:
        """[N] good each agent can sell, or -1."""
        return read_only(self._params.sells_good)

    @property
    def buys_good(self) -> np.ndarray:
        """[N] good each agent can buy, or -1."""
        return read_only(self._params.buys_good)

    @property
    def is_store(self) -> np.ndarray:
        """[N] bool: kinds that hold a charge (signed quantity action)."""
        return read_only(self._params.is_store)

    @property
    def active(self) -> np.ndarray:
        """[N] bool: agents still in the episode."""
        return self._per_state("active", lambda st: read_only(st.active))

    # ---- the channel graph (public) and own balances ---------------------------------------------
    @property
    def u(self) -> np.ndarray:
        return self._per_state("u", lambda st: read_only(st.u))

    @property
    def v(self) -> np.ndarray:
        return self._per_state("v", lambda st: read_only(st.v))

    @property
    def open(self) -> np.ndarray:
        return self._per_state("open", lambda st: read_only(st.open))

    @property
    def channel_capacity(self) -> np.ndarray:
        """[E] EUR funded into each channel slot."""
        return self._per_state("channel_capacity", lambda st: read_only(st.capacity))

    @property
    def topology_version(self) -> int:
        """Bumps whenever a channel opens or closes."""
        return int(self._state.topology_version)

    @property
    def balance_u(self) -> np.ndarray:
        """[E] EUR on u's side of each channel with a controlled endpoint (v's side is
        `channel_capacity - balance_u`); NaN on every other channel."""
        return self._per_state("balance_u", self._own_balance)

    def _own_balance(self, st: Any) -> np.ndarray:
        mine = self._controlled[st.u] | self._controlled[st.v]
        out = np.where(mine, st.balance_u, np.nan)
        out.flags.writeable = False
        return out

    # ---- prices and the last step (public) ----------------------------------------------------------
    @property
    def ref_price(self) -> np.ndarray:
        """[G] EUR/MWh mean-field reference price of each good for the current interval."""
        return self._per_state("ref_price", lambda st: read_only(st.ref_price))

    def summary(self) -> dict[str, Any]:
        """The last step's public market summary (a copy)."""
        return dict(self._core.summary())

    @property
    def grid(self) -> bool:
        """True: a grid buys and sells at the scenario's tariffs beside the peer-to-peer market (what an
        unmatched trader falls back on); another economy's view may say False (the supply chain)."""
        return True

    @property
    def price_unit(self) -> float:
        """This market's price of one EUR/MWh: 1.0 (prices are EUR/MWh). The baselines multiply their
        absolute parameters (EUR/MWh margins, EUR of loyalty points) by it."""
        return 1.0

    # ---- own agents -------------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name in OWN_PARAMS:
            return self._own_param(name)
        raise AttributeError(
            f"{type(self).__name__} has no {name!r}: a policy reads the declared view only (public: scenario, t, kind, "
            f"sells_good, buys_good, is_store, active, u, v, open, channel_capacity, ref_price, grid, price_unit, summary(); own "
            f"agents: {', '.join(OWN_PARAMS)}, soc, tradable(), balance_u, my_trades(), breakdown())")

    def _own_param(self, name: str) -> np.ndarray:
        params = self._params
        if self._static_of is not params:   # a new episode: new parameters
            self._static_of, self._static = params, {}
        out = self._static.get(name)
        if out is None:
            out = self._static[name] = self._own(getattr(params, name))
        return out

    def _own(self, a: np.ndarray) -> np.ndarray:
        """[N] float64 copy with the controlled agents' values and NaN elsewhere, read-only."""
        a = np.asarray(a)
        out = np.full(a.shape[0], np.nan)
        out[self._agents] = a[self._agents]
        out.flags.writeable = False
        return out

    @property
    def soc(self) -> np.ndarray:
        """[N] MWh in store (own agents; NaN elsewhere)."""
        return self._per_state("soc", lambda st: self._own(st.soc))

    def tradable(self) -> tuple[np.ndarray, np.ndarray]:
        """(sellable, needed) [N] MWh this interval (own agents; NaN elsewhere): what each can sell
        now and what it needs (stores: deliverable charge and headroom)."""
        def make(st: Any) -> tuple[np.ndarray, np.ndarray]:
            sellable, needed = self._core._tradable_of(st)
            return self._own(sellable), self._own(needed)

        return self._per_state("tradable", make)

    def advised(self, agents: np.ndarray, direction: np.ndarray) -> np.ndarray:
        """`direction` [M] (+1 sell, -1 buy, 0 idle) of controlled `agents` with their kinds'
        `advise` hooks applied (electric vehicles: buy under the departure target, idle away)."""
        agents = np.asarray(agents, dtype=np.int64)
        if agents.size and not self._controlled[agents].all():
            bad = agents[~self._controlled[agents]][0]
            raise ValueError(f"advised: agent {bad} is not controlled by this view")
        core = self._core
        for spec, sl in self._params.blocks:
            if spec.advise is not None:
                mine = (agents >= sl.start) & (agents < sl.stop)
                if mine.any():
                    direction = np.array(direction, copy=True)
                    direction[mine] = spec.advise(core, agents[mine], direction[mine])
        return direction

    def my_trades(self) -> OwnTrades:
        """Last step's trades with a controlled seller or buyer (empty before the first step)."""
        res = self._core.last_result
        if res is None:
            i, f, b = np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool)
            return OwnTrades(i, i, i, i, f, f, f, f, b, b)
        tr, stl = res.trades, res.settlement
        return own_trades(self._controlled, (tr.channel, tr.seller, tr.buyer, tr.good, tr.qty, tr.price, stl.paid_qty,
                                             stl.paid, stl.failed, stl.partial))

    def breakdown(self) -> dict[str, np.ndarray]:
        """Last step's settlement breakdown (profit, revenue, cost, sold, bought, grid use, ...),
        [N] per field: own agents' values, NaN elsewhere (zeros for own agents before the first step)."""
        full = self._core.breakdown()
        return {k: self._own(np.asarray(full[k], dtype=np.float64)) for k in BREAKDOWN_FIELDS}

    # ---- references only ------------------------------------------------------------------------------
    def oracle_copy(self) -> Any:
        """A deep copy of the whole market, for perfect-foresight references (the `mean_field`
        baseline simulates the rest of the episode on it). Not market knowledge: see the module doc."""
        return copy.deepcopy(self._core)

    # ---- internals -------------------------------------------------------------------------------------
    @property
    def _state(self):
        return self._core._require_state()

    @property
    def _params(self):
        if self._core.agents is None:
            raise RuntimeError("the market has no agents yet; call reset(seed=...) first")
        return self._core.agents

    def __repr__(self) -> str:
        return f"MarketView({self._core.scenario.name!r}, {self._agents.shape[0]} of {self.n_agents} agents)"


__all__ = ["MarketView", "OwnTrades", "OWN_PARAMS", "own_trades", "read_only"]
