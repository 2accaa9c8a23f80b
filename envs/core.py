"""The array API: `MarketCore`, the fast face of the market used by trainers and benchmarks.

    core = MarketCore("energy_default")
    obs = core.reset(seed=0)                       # [N, O] float32
    obs, rewards, terminations, truncations, info = core.step(actions)   # actions [N, 4]

Many markets in one call: `MarketCore(scenario, n_markets=M)` is a batch of M independent markets
of the scenario in one struct of arrays (`envs.batch_core.BatchCore`, the same array API): observations
[M*N, O] market-major (rows m*N .. (m+1)*N - 1 are market m; `obs.reshape(M, N, O)` is the
per-market view), actions [M*N, 4], per-market `dones`, `reset_markets`, `inject_shock(...,
market=m)`, optional `auto_reset`. One market is the M = 1 case of the same pipeline
(`envs.batch`), and market m of a batch is bit-identical to the same market run alone.

Bad input raises before anything changes: a rejected step, shock or `load_state_dict` leaves the
state as it was. `reset()` without a seed continues the stream of the last `reset(seed=...)`
(`channelmarket.envs.seeding` has the exact rule).
"""

from __future__ import annotations

import contextlib
import sys
import sysconfig
from typing import Any

import numpy as np

from .obs_schema import ObsSchema, observation_schema
from .observations import N_OBS, OBS_HIGH, OBS_LOW, agent_scale, obs_bounds, static_columns
from .actions import check_actions, check_flag, check_indices
from .offers import N_ACTIONS, action_fields
from .interrupts import held_interrupt
from .memory import retain_heap
from . import state_io
from .scenario import Scenario, get_scenario
from .seeding import SeedStream, episode_seed
from .settlement import BREAKDOWN_FIELDS
from .shocks import check_duration, parse_shock
from .state import KIND_NAMES, AgentParams, Kind, MarketState, flow_matrix
from .view import MarketView
from .step import StepResult, current_tradable, initial_state, market_step, observation, summary
from . import batch as _batch

# The channel arrays a step may rewrite in place when nothing but the core can see them (`_channels_private`).
_REUSED_CHANNELS = ("u", "v", "capacity", "balance_u", "open", "fee_base", "fee_rate", "utilization")


class MarketCore:
    """One market over struct-of-arrays state. See `channelmarket.envs.channel_market_v0` for the spec."""

    n_actions = N_ACTIONS
    obs_dim = N_OBS
    obs_low = OBS_LOW
    obs_high = OBS_HIGH

    def __new__(cls, scenario: Any = None, n_markets: Any = None, **overrides: Any):
        """`MarketCore(scenario, n_markets=M)` (M given, even 1) is a batch of M markets in one struct of
        arrays (`envs.batch_core.BatchCore`, the same array API with a market axis); without
        `n_markets`, one market."""
        if cls is MarketCore and n_markets is not None:
            from .batch_core import BatchCore

            return BatchCore(scenario, n_markets=n_markets, **overrides)   # built here: not a MarketCore
        return super().__new__(cls)

    def __init__(self, scenario: "Scenario | str | dict | None" = None, n_markets: Any = None,
                 **overrides: Any) -> None:
        if n_markets is not None:
            raise TypeError("n_markets: a batch is a BatchCore (MarketCore(..., n_markets=M) builds one)")
        self.scenario: Scenario = get_scenario(scenario, **overrides)
        retain_heap()                          # a step's temporaries reuse freed pages (memory.py)
        self.n_agents = self.scenario.n_agents
        self.obs_low, self.obs_high = obs_bounds(self.scenario)   # the scenario's kinds fix the width
        self.obs_dim = int(self.obs_low.shape[0])
        self.obs_schema: ObsSchema = observation_schema(self.scenario)   # column names, `obs_schema["reserve"]`
        self.action_fields = action_fields(self.scenario)   # the scenario's action columns (optional ones last)
        self.n_actions = len(self.action_fields)
        self.agents: AgentParams | None = None
        self.state: MarketState | None = None
        self.last_result: StepResult | None = None
        self._result_state: MarketState | None = None
        self._static: np.ndarray | None = None
        self._scale: np.ndarray | None = None
        self._summary: dict[str, Any] | None = None
        self._seed_stream: SeedStream | None = None

    # ---- episode ------------------------------------------------------------------------
    def reset(self, seed: Any = None) -> np.ndarray:
        """Start an episode; every draw of it comes from one seed sequence: `SeedSequence(seed)`, or
        without a seed the next one of the stream the last seeded reset started (like Gymnasium)."""
        sc = self.scenario
        ss, stream = episode_seed(seed, self._seed_stream)
        self.agents, self.state = initial_state(sc, ss)
        self._seed_stream = stream
        self._static = static_columns(sc, self.agents)
        self._scale = agent_scale(sc, self.agents)
        self.last_result = None
        self._summary = None
        return self.observe()

    def step(self, actions: np.ndarray):
        """One interval. Returns obs [N, O] float32, rewards [N] float64 (EUR profit),
        terminations [N] bool (agent left), truncations [N] bool (episode end), info dict."""
        state = self._require_state()
        if self.done:
            raise RuntimeError(
                f"the episode ended at step {state.t} (episode_steps = {self.scenario.episode_steps}); call reset()"
            )
        acts = check_actions(actions, self.n_agents, self.action_fields, copy=False)   # read only: no copy
        reuse = _COUNTS_HOLD and self._channels_private(state)
        # rewriting this state's channel arrays, the step holds a Ctrl-C until it is whole
        with held_interrupt() if reuse else _NO_HOLD:
            new, result = market_step(self.scenario, self.agents, state, acts, self._tradable_of(state), reuse)
            self.state, self.last_result, self._summary = new, result, None
            self._result_state = new  # the state last_result.liquidity describes
        obs = self.observe()
        # the breakdown's profit column (contiguous), a fresh array; agents that had left get 0
        rewards = new.last_profit.copy() if state.active.all() else np.where(state.active, new.last_profit, 0.0)
        terminations = ~new.active
        truncations = np.full(self.n_agents, new.t >= self.scenario.episode_steps)
        info = StepInfo(lambda: self._summary_of(new, result), breakdown=_read_only(result.settlement.breakdown))
        return obs, rewards, terminations, truncations, info

    def _channels_private(self, state: MarketState) -> bool:
        """Whether nothing outside this core can see `state` (the current state) or its channel arrays
        (`_REUSED_CHANNELS`): the step may then write the next channels into those arrays instead of
        into fresh ones (at 10,000 agents five copies of 50,000 slots a step fewer, and the same
        memory each step).
        Counted by reference: the state's references must be exactly the core's own (`self.state`,
        the step's and this call's arguments, and, where they hold it, the last result's state, the
        tradable cache and the batch pipeline's last state), and each array's exactly the state's
        field and the pipeline's batch state beside it. A caller holding the state, an array, a view
        of one (it refers to its base), a shallow `replace` or the last step's info (its summary
        refers to the state) adds a reference, and the step copies as before (a state dict holds
        copies): a state a user holds never changes (a weak reference holds nothing: one to an array then sees the next
        state's values). `_COUNTS_HOLD` checks once that this interpreter counts references so."""
        last = _batch._LAST[0]
        in_last = last is not None and last[0] is state
        cache = self.__dict__.get("_tradable_cache")
        own = 3 + (self._result_state is state) + (cache is not None and cache[0] is state) + in_last
        if sys.getrefcount(state) != own + 1:   # + getrefcount's own argument
            return False
        held = 2 + in_last   # the state's field, the pipeline's batch state, getrefcount's argument
        d = state.__dict__
        for name in _REUSED_CHANNELS:
            if sys.getrefcount(d[name]) != held:
                return False
        return True

    def _summary_of(self, state: MarketState, result: StepResult) -> dict[str, Any]:
        """The summary of a step's (state, result): the cached `summary()` while they are current."""
        if self.state is state and self.last_result is result:
            return self.summary()
        return summary(self.scenario, state, result)

    def observe(self) -> np.ndarray:
        state = self._require_state()
        res = self.last_result
        liquidity = res.liquidity if res is not None and self._result_state is state else None
        return observation(self.scenario, self.agents, state, self._static, self._scale, self._tradable_of(state),
                           liquidity)

    def _tradable_of(self, state: MarketState):
        """(sellable, needed) of `state`'s interval, computed once per state (observation and step share it)."""
        cached = getattr(self, "_tradable_cache", None)
        if cached is None or cached[0] is not state:
            cached = self._tradable_cache = (state, *current_tradable(self.scenario, self.agents, state))
        return cached[1], cached[2]

    # ---- interventions ---------------------------------------------------------------------
    def inject_shock(self, kind: "str | int", duration: int) -> None:
        """Start a shock now (replacing any active one); it hits the next step's interval."""
        state = self._require_state()
        k = parse_shock(kind)
        d = check_duration(duration)
        self.state = state.replace(shock_kind=int(k), shock_remaining=d)
        self._summary = None

    def remove_agents(self, agents: "np.ndarray | list[int]", close_channels: bool = False) -> None:
        """Take agents out of the episode (a fault, a bankruptcy): from the next step they offer
        nothing, route nothing, observe zeros and are reported terminated; their channels close and
        settle to their wallets in the next channel lifecycle, or now with `close_channels=True`
        (force-closed: both sides to the wallets, the on-chain fee to the fee sink)."""
        state = self._require_state()
        idx = check_indices(agents, self.n_agents, "agents", "agent index", "agent indices")
        close_channels = check_flag(close_channels, "close_channels")
        active = state.active.copy()
        active[idx] = False
        self.state = state.replace(active=active)
        if close_channels:
            failed = np.zeros(self.n_agents, dtype=bool)
            failed[idx] = True
            self._force_close(failed[state.u] | failed[state.v])

    def fail_channels(self, channels: "np.ndarray | list[int]") -> None:
        """A channel failure without its agents: force-close the given channel slots now (open
        ones; both sides settle to the endpoints' wallets, the on-chain fee to the fee sink)."""
        state = self._require_state()
        e = state.u.shape[0]
        idx = check_indices(channels, e, "channels", "channel slot", "channel slots")
        closing = np.zeros(e, dtype=bool)
        closing[idx] = True
        self._force_close(closing)

    def _force_close(self, closing: np.ndarray) -> None:
        from .payments.faults import force_close

        st = self.state
        is_open, wallet, fee_sink, k = force_close(st.u, st.v, st.capacity, st.balance_u, st.open, st.wallet,
                                                   st.fee_sink, closing, self.scenario.onchain_fee)
        if k:
            self.state = st.replace(open=is_open, wallet=wallet, fee_sink=fee_sink,
                                    topology_version=st.topology_version + 1)
            self._summary = None

    # ---- persistence ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the episode exactly: a format version, the scenario, agent
        parameters, the market state, the generators' states and the seed stream (plain arrays,
        numbers and dicts; `channelmarket.envs.state_io` describes the format)."""
        return state_io.dump(self.scenario, self.agents, self._require_state(), self._seed_stream)

    def load_state_dict(self, d: dict[str, Any]) -> None:
        """Restore from `state_dict()`. Every field is checked against this core's scenario before
        anything changes; a rejected dict (ValueError/TypeError naming the field) leaves the core
        exactly as it was."""
        if self.state is not None:
            template = (self.agents, self.state)
        else:
            template = initial_state(self.scenario, 0)
        agents, state, stream = state_io.load(d, self.scenario, template)
        static = static_columns(self.scenario, agents)
        scale = agent_scale(self.scenario, agents)
        # everything is built: swap
        self.agents, self.state, self._seed_stream = agents, state, stream
        self._static, self._scale = static, scale
        self.last_result = self._result_state = None
        self._summary = None
        self._adj_key = None

    def adjacency(self):
        """Symmetric scipy CSR adjacency of the open channels (data = channel slot), rebuilt
        only when a channel opened or closed since the last call."""
        from .channels import adjacency

        state = self._require_state()
        key = (id(state.u), state.topology_version)
        if getattr(self, "_adj_key", None) != key:
            self._adj = adjacency(self.n_agents, state.u, state.v, state.open)
            self._adj_key = key
        return self._adj

    # ---- views ------------------------------------------------------------------------------
    def view(self, agents: Any = None) -> MarketView:
        """The read-only `MarketView` a policy controlling `agents` (indices or a mask; default all)
        reads: public market data and its own agents' private data only (`envs/view.py`)."""
        return MarketView(self, agents)

    @property
    def done(self) -> bool:
        return self.state is not None and self.state.t >= self.scenario.episode_steps

    def summary(self) -> dict[str, Any]:
        """The market summary of the last step (clearing price, volume, supply, demand, trades,
        active channels, active shock, ...)."""
        if self._summary is None:
            self._summary = summary(self.scenario, self._require_state(), self.last_result)
        return self._summary

    def breakdown(self) -> dict[str, np.ndarray]:
        """Per-agent arrays of the last step: profit, revenue, cost, sold, bought, grid use, ..."""
        if self.last_result is None:
            return {k: np.zeros(self.n_agents) for k in BREAKDOWN_FIELDS}
        b = _read_only(self.last_result.settlement.breakdown)  # the state's last_* fields share this memory
        return {k: b[:, i] for i, k in enumerate(BREAKDOWN_FIELDS)}

    def agent_names(self) -> list[str]:
        """`solar_0`, ..., `consumer_12`: numbered within each kind, in index order."""
        kind = self.agents.kind if self.agents is not None else _kinds_of(self.scenario)
        names = []
        counters = {k: 0 for k in KIND_NAMES}
        for k in kind.tolist():
            kn = KIND_NAMES[k]
            names.append(f"{kn}_{counters[kn]}")
            counters[kn] += 1
        return names

    def money_total(self) -> float:
        return self._require_state().money_total()

    # ---- checks ---------------------------------------------------------------------------
    def check_actions(self, actions: Any) -> np.ndarray:
        """float64 [N, n_actions] actions clipped to [-1, 1]; TypeError/ValueError naming the agent index
        and field for anything else (NaN and inf are errors, never traded); a base-width [N, 4] array
        leaves the optional columns at 0 (`envs.actions.check_actions`)."""
        return check_actions(actions, self.n_agents, self.action_fields)

    def _require_state(self) -> MarketState:
        if self.state is None:
            raise RuntimeError("the market has no state yet; call reset(seed=...) first")
        return self.state

    # ---- public read API for observers (dashboard, recordings): what a market operator sees ------------
    def channel_states(self) -> dict[str, np.ndarray]:
        """Read-only [E] arrays of every channel slot: `u`, `v` (endpoints), `open`, `capacity` and
        `balance_u` (EUR; v's side is capacity - balance_u), `utilization` (EMA of |flow| / capacity)
        and `flow` (EUR paid through it last step, u->v positive), and `flow_history` [E, 8] (EUR u->v
        of the channel's last 8 steps, oldest first, the last column is `flow`; 0 before the channel
        opened: the state's per-step columns side by side, a copy)."""
        st = self._require_state()
        out = {k: _read_only(getattr(st, k)) for k in
               ("u", "v", "open", "capacity", "balance_u", "utilization", "flow")}
        out["flow_history"] = _read_only(flow_matrix(st.flow_columns, st.flow_reopened))
        return out

    def agent_states(self) -> dict[str, np.ndarray]:
        """Read-only [N] arrays of every agent: `kind` (code), `capacity` (its plant's rating), `active`,
        `wallet` (EUR on chain), `generation` and `demand` (MWh this interval), `soc` (MWh stored). The
        `kind` and `capacity` arrays are the episode's own (the same objects' views until the next reset)."""
        st = self._require_state()
        out = {"kind": _read_only(self.agents.kind), "capacity": _read_only(self.agents.capacity)}
        out.update({k: _read_only(getattr(st, k)) for k in ("active", "wallet", "generation", "demand", "soc")})
        return out


class StepInfo(dict):
    """The info dict of `MarketCore.step`: a plain dict whose "summary" is computed when first read
    (a trainer stepping the array API never reads it, and at 100 agents it cost a quarter of the
    step). Every read of the dict (item, `in`, iteration, `get`, `items`, copying, pickling) sees it."""

    def __init__(self, make_summary, **items: Any) -> None:
        super().__init__(items)
        self._make = make_summary

    def _fill(self) -> None:
        make = self.__dict__.pop("_make", None)
        if make is not None:
            dict.__setitem__(self, "summary", make())

    def __missing__(self, key):
        if key == "summary" and "_make" in self.__dict__:
            self._fill()
            return dict.__getitem__(self, key)
        raise KeyError(key)

    def __setitem__(self, key, value) -> None:
        if key == "summary":
            self.__dict__.pop("_make", None)
        dict.__setitem__(self, key, value)

    def __contains__(self, key) -> bool:
        return (key == "summary" and "_make" in self.__dict__) or dict.__contains__(self, key)

    def __reduce__(self):
        return dict, (dict(self.items()),)


def _filled(name: str):
    base = getattr(dict, name)

    def method(self, *args, **kwargs):
        self._fill()
        return base(self, *args, **kwargs)

    method.__name__ = name
    return method


for _name in ("__iter__", "__len__", "__repr__", "__eq__", "__ne__", "__delitem__", "__or__", "__ior__", "get",
              "keys", "values", "items", "copy", "pop", "popitem", "setdefault", "update", "clear"):
    setattr(StepInfo, _name, _filled(_name))
del _name


def _read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view: callers can read the step's arrays without copying, but not write into the state."""
    view = a.view()
    view.flags.writeable = False
    return view


def _kinds_of(sc: Scenario) -> np.ndarray:
    from .physics import layout

    return layout(sc)[0]


__all__ = ["MarketCore", "Kind"]


def _step_like(core: MarketCore) -> bool:
    state = core.state   # as in `MarketCore.step`: the state in a local and in the call
    return core._channels_private(state)


def _counts_hold() -> bool:
    """Whether `MarketCore._channels_private` sees references as it counts them on this interpreter:
    a core's state and arrays that nothing else holds pass, one more reference to the state or to an
    array fails. False (an interpreter that borrows references where CPython 3.10-3.13 counts
    them): no step rewrites a state's arrays."""
    core = object.__new__(MarketCore)
    state = type("_Probe", (), {})()
    state.__dict__.update({k: np.zeros(1) for k in _REUSED_CHANNELS})
    core.state, core._result_state = state, None
    del state
    alone = _step_like(core)
    held = core.state
    with_state = _step_like(core)
    del held
    held = core.state.__dict__["fee_rate"]
    with_array = _step_like(core)
    del held
    return alone and not with_state and not with_array


# (a free-threaded build counts references per thread: no reuse there)
_NO_HOLD = contextlib.nullcontext()   # a step that copies: nothing to hold
_COUNTS_HOLD = not sysconfig.get_config_var("Py_GIL_DISABLED") and _counts_hold()
