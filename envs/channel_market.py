"""PettingZoo face of the market: `ChannelMarketEnv`, a `ParallelEnv` over `MarketCore`.

It names agents, turns arrays into per-agent dicts and checks input; the market itself is the
array core. Same seed, same trajectory, bit for bit, through either face.

## Spaces (identical for every agent, so one policy can be shared)

| space        | type                      | contents                                                   |
|--------------|---------------------------|------------------------------------------------------------|
| action       | Box(-1, 1, (4,), float32) | ask offset, bid offset, quantity, concession (see below)   |
| observation  | Box(low, high, (30,), float32) | own state, channel liquidity, mean field, time, shock (`OBS_FIELDS`) |

Actions: `ask` = reference price + a x the tariff spread (retail - feed-in), never under the agent's reserve;
`bid` likewise, never over its limit; `quantity` = share (a+1)/2 of the energy a generator can
sell or a consumer needs offered peer-to-peer (storage: a > 0 sells a x deliverable charge,
a < 0 buys -a x headroom); `concession` = share (a+1)/2 of the gap to reserve/limit conceded
over the K negotiation rounds. Finite values outside [-1, 1] are clipped; NaN/inf raise.
With `partner_action=True` the action is (5,) (`core.n_actions`): `open_partner` > 0 asks for a
channel to the agent's regular partner (`channels.partner_openings`); a (4,) row means no ask.

## Reward
Profit in EUR for the step: revenue - cost (peer-to-peer and grid) - marginal cost of energy
sold, plus, for consumers, the value of the energy served at their limit price.

## Infos
Per agent, by default: the active `shock` as an integer code (`{"shock": 0}`). `info_keys` adds
fields of the step's breakdown: `"trade"` (`TRADE_INFO_KEYS`) the revenue, cost (EUR), sold,
bought, grid_sold, grid_bought (MWh) and failed_payments, which the infos held by default before
the infos revision (version history); `"all"` every field of `BREAKDOWN_FIELDS`; or a tuple of
field names. `env.breakdown()` gives every field of the last step as [N] arrays at no per-agent
cost (the cheap way to read them at scale). `reset()` returns the same keys as `step()` (zeros,
and the shock active at the start), every value a number, so buffers that stack infos (Tianshou,
TorchRL) keep them. Shock codes (`envs.shocks.Shock`, `SHOCK_NAMES`): 0 NONE, 1 DEMAND_SURGE,
2 DEMAND_DROP, 3 SUPPLY_SURPLUS, 4 SUPPLY_SHORTAGE. The market summary (clearing price, volume,
supply, demand, trades, active channels, shock, ...) is `env.market_summary()` every step.

Every step returns fresh dicts (a fresh info dict per agent, Python numbers); observations are
row views of the step's fresh observation array, which nothing in the env keeps or changes later.
The dicts are built by C-level copies and maps, not a Python loop per agent: at 10,000 agents the
dict face costs about 0.6 µs per agent over the array API with the default infos, about 1.2 µs
with `info_keys="trade"`, fastest blocks on a shared machine (README, Performance).

## Episode end
Truncation for every agent after `episode_steps` steps (`max_cycles=` is PettingZoo's name for
it, accepted as an alias). Terminations mark agents that left.

## Agent kinds
`env.agent_kinds` maps each agent name to its kind name (`"solar_0" -> "solar"`); `env.group_map`
maps each kind present to its agents, in index order (the grouping RLlib policy mappings and
TorchRL/BenchMARL groups take). Both derive from the kind registry (`channelmarket.envs.kinds`).

## State (centralized critics)
`state_mode="global"` (default): `env.state()` is a flat float32 vector inside `env.state_space`
whose size does not grow with the number of agents: the market columns of the observation
(prices, time, shock), then per kind the share of agents of that kind still in the episode and
the means of their own observation columns (`channelmarket.envs.global_state`, which names every
entry with `state_fields`). `state_mode="full"`: every agent's observation stacked, [N, O].

## Seeding
`reset(seed=s)` draws the episode from `SeedSequence(s)`; a later `reset()` without a seed
continues that stream like Gymnasium's `np_random` (the k-th seedless reset after `reset(seed=s)`
is the same episode on every run; `channelmarket.envs.seeding` has the exact rule). Seeds are
non-negative integers (Python or NumPy), sequences of them or a `SeedSequence`; bools are refused.

## Arguments
`parallel_env(scenario="energy_default", render_mode=None, info_keys=DEFAULT_INFO_KEYS,
history_len=HISTORY_LEN, **overrides)`: a preset name, a YAML/JSON path, a dict or a `Scenario`;
any scenario field as a keyword override; `n_agents=` rescales the population. Unknown keywords
raise TypeError. `history_len` bounds `env.history`, the market summaries of the episode kept for
`render()` (the newest `history_len`; None keeps all, 0 none).
`state_mode="global"|"full"` picks what `state()` returns (see State); `max_cycles=` is an alias
of `episode_steps` (ValueError if both are given and differ).

## Checkpoints
`env.unwrapped.state_dict()` is plain data (arrays, numbers, strings; no pickles): the core's state
dict (`MarketCore.state_dict`: scenario, agents, market state, both generators, seed stream), the
live agents and the recorded market summaries. `load_state_dict(d)` checks all of it before
anything changes (a truncated or foreign dict is a ValueError/TypeError naming what is wrong) and
the restored env continues bit-identically. `pickle` works too (the same continuation).

## Version history
- v0, infos revision (issue 12, the dict face's speed): each agent's info holds only the shock
  code by default (`DEFAULT_INFO_KEYS = ()`); the seven breakdown fields it held before are
  `info_keys="trade"` (`TRADE_INFO_KEYS`). Eight numbers in 10,000 fresh dicts were about 5 of
  the face's 12 ms per step; spaces, rewards, observations and trajectories are unchanged.
- v0: first release.
"""

from __future__ import annotations

import functools
import operator
import warnings
from collections import deque
from itertools import compress, repeat
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from .core import MarketCore
from .global_state import STATE_MODES, global_state, state_bounds
from .kinds import KIND_NAMES
from .offers import N_ACTIONS
from .render import render_ansi, render_rgb
from .settlement import BREAKDOWN_FIELDS
from .shocks import Shock, check_duration, parse_shock

RENDER_MODES = ("ansi", "rgb_array", "human")
# Breakdown fields in each agent's info by default: none (the info holds the shock code). Eight
# numbers per agent cost about a third of the dict face at 10,000 agents; `env.breakdown()` gives
# every field as arrays at no per-agent cost, and `info_keys` puts fields in the infos.
DEFAULT_INFO_KEYS: tuple[str, ...] = ()
# `info_keys="trade"`: the step's money, energy, grid use and payment failures (the default before
# the infos revision, see the version history).
TRADE_INFO_KEYS = ("revenue", "cost", "sold", "bought", "grid_sold", "grid_bought", "failed_payments")
INFO_KEY_SETS = {"all": BREAKDOWN_FIELDS, "trade": TRADE_INFO_KEYS}


def info_fields(info_keys: "tuple[str, ...] | list[str] | str") -> tuple[str, ...]:
    """The breakdown fields `info_keys` names ("all", "trade" or a tuple of `BREAKDOWN_FIELDS`);
    ValueError naming the value and what is allowed."""
    if isinstance(info_keys, str) and info_keys in INFO_KEY_SETS:
        info_keys = INFO_KEY_SETS[info_keys]
    if (isinstance(info_keys, str) or not isinstance(info_keys, (tuple, list))
            or not all(isinstance(k, str) and k in BREAKDOWN_FIELDS for k in info_keys)):
        raise ValueError(f"info_keys = {info_keys!r}; allowed: 'all', 'trade' or a tuple of {BREAKDOWN_FIELDS}")
    return tuple(info_keys)
ENV_FORMAT = 1   # version of the env's state dict (the core's has its own, state_io.FORMAT_VERSION)
# Market summaries kept in `env.history` for rgb rendering: ten default episodes, a readable plot.
HISTORY_LEN = 1024


class ChannelMarketEnv(ParallelEnv):
    metadata = {"name": "channel_market_v0", "render_modes": list(RENDER_MODES), "render_fps": 4,
                "is_parallelizable": True}

    def __init__(self, scenario: Any = None, render_mode: str | None = None,
                 info_keys: "tuple[str, ...] | str" = DEFAULT_INFO_KEYS, history_len: "int | None" = HISTORY_LEN,
                 state_mode: str = "global", max_cycles: "int | None" = None, **overrides: Any) -> None:
        if history_len is not None and (isinstance(history_len, (bool, np.bool_))
                                        or not isinstance(history_len, (int, np.integer)) or history_len < 0):
            raise ValueError(f"history_len = {history_len!r}; allowed: None (keep all) or an integer >= 0")
        self.history_len = None if history_len is None else int(history_len)
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ValueError(f"render_mode = {render_mode!r}; allowed: None, {', '.join(map(repr, RENDER_MODES))}")
        info_keys = info_fields(info_keys)
        self.info_keys = info_keys + ("shock",)
        self._info_cols = np.array([BREAKDOWN_FIELDS.index(k) for k in info_keys], dtype=np.int64)
        if state_mode not in STATE_MODES:
            raise ValueError(f"state_mode = {state_mode!r}; allowed: {', '.join(map(repr, STATE_MODES))}")
        self.state_mode = state_mode
        if max_cycles is not None:  # PettingZoo's name for the episode length
            if isinstance(max_cycles, (bool, np.bool_)) or not isinstance(max_cycles, (int, np.integer)) or max_cycles < 1:
                raise ValueError(f"max_cycles = {max_cycles!r}; allowed: an integer >= 1 (an alias of episode_steps)")
            if "episode_steps" in overrides and overrides["episode_steps"] != max_cycles:
                raise ValueError(f"max_cycles = {max_cycles!r} and episode_steps = {overrides['episode_steps']!r} "
                                 "differ; pass one of them (max_cycles is an alias of episode_steps)")
            overrides["episode_steps"] = max_cycles
        self.core = MarketCore(scenario, **overrides)
        self.scenario = self.core.scenario
        self.render_mode = render_mode
        self.possible_agents = self.core.agent_names()
        self.agent_index = {a: i for i, a in enumerate(self.possible_agents)}
        self.agents: list[str] = []
        self._obs_space = spaces.Box(self.core.obs_low, self.core.obs_high, dtype=np.float32)
        self._act_space = spaces.Box(-1.0, 1.0, shape=(self.core.n_actions,), dtype=np.float32)  # scenario-sized
        self.observation_spaces = {a: self._obs_space for a in self.possible_agents}
        self.action_spaces = {a: self._act_space for a in self.possible_agents}
        self._kind_codes = _kind_codes(self.scenario)
        names = np.array(self.possible_agents, dtype=object)
        self.agent_kinds: dict[str, str] = dict(zip(self.possible_agents, np.array(KIND_NAMES)[self._kind_codes].tolist()))
        self.group_map: dict[str, list[str]] = {  # kinds present, in registry order (codes ascending)
            KIND_NAMES[c]: names[self._kind_codes == c].tolist() for c in np.unique(self._kind_codes).tolist()}
        if state_mode == "global":
            self.state_space = spaces.Box(*state_bounds(self.scenario), dtype=np.float32)
        else:
            n = self.core.n_agents
            self.state_space = spaces.Box(np.tile(self.core.obs_low, (n, 1)), np.tile(self.core.obs_high, (n, 1)),
                                          dtype=np.float32)
        self.history: deque[dict[str, Any]] = deque(maxlen=self.history_len)

    # ---- spaces --------------------------------------------------------------------------
    def observation_space(self, agent: str) -> spaces.Box:
        self._check_name(agent)
        return self._obs_space

    def action_space(self, agent: str) -> spaces.Box:
        self._check_name(agent)
        return self._act_space

    # ---- episode -------------------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict | None = None):
        shock = None
        if options is not None:
            if not isinstance(options, dict):
                raise TypeError(f"reset options must be a dict or None, got {type(options).__name__}")
            unknown = sorted(map(str, set(options) - {"shock"}))
            if unknown:
                # A warning, not an error: PettingZoo's api tests call reset(options={"options": 1}).
                warnings.warn(f"reset options {unknown} are unknown and ignored; allowed: 'shock' = (kind, duration)",
                              UserWarning, stacklevel=2)
            if "shock" in options:
                shock = options["shock"]
                if not isinstance(shock, (tuple, list)) or len(shock) != 2:
                    raise ValueError(f"reset option 'shock' = {shock!r}; allowed: (kind, duration)")
                shock = (parse_shock(shock[0]), check_duration(shock[1]))  # checked before anything changes
        obs = self.core.reset(seed=seed)
        if shock is not None:
            self.core.inject_shock(*shock)
            obs = self.core.observe()
        self.agents = list(self.possible_agents)
        self.history = deque([self.core.summary()], maxlen=self.history_len)
        start = _shock_info(int(self.core.state.shock_kind))
        if len(self.info_keys) > 1:
            start = {**dict.fromkeys(self.info_keys[:-1], 0.0), **start}
        infos = dict(zip(self.agents, map(dict.copy, repeat(start, len(self.agents)))))   # one dict per agent
        return self._obs_dict(obs), infos

    def step(self, actions: dict[str, Any]):
        if not self.agents:
            raise RuntimeError("no live agents: the episode ended or reset() was not called; call reset()")
        arr = self._actions_array(actions)
        alive = self.agents
        obs, rew, term, trunc, info = self.core.step(arr)
        bd = info["breakdown"]
        if len(alive) != self.core.n_agents:   # some agents left: their rows are not reported
            idx = self._live_index(alive)
            obs, rew, term, trunc, bd = obs[idx], rew[idx], term[idx], trunc[idx], bd[idx]
        # every dict is built by C loops (copies of a template keyed by the live agents, map): no
        # Python bytecode per agent; values are fresh Python numbers and row views of a fresh array
        false = self._template(alive)
        rewards = false.copy()
        rewards.update(zip(alive, rew.tolist()))
        ended = term | trunc
        terminations = false.copy()
        if term.any():
            terminations.update(zip(alive, term.tolist()))
        truncations = false.copy()
        if trunc.any():
            truncations.update(zip(alive, trunc.tolist()))
        shock = int(self.core.state.shock_kind)   # a number, like every info
        infos = false.copy()
        if self._info_cols.size:   # breakdown fields asked for: a fresh dict per agent, values mapped by C
            cols = bd[:, self._info_cols].T.tolist()
            cols.append(repeat(shock, len(alive)))
            infos.update(zip(alive, map(_info_maker(self.info_keys), *cols)))
        else:   # the shock code only (the default): copies of one dict, about a fifth of the cost
            infos.update(zip(alive, map(dict.copy, repeat(_shock_info(shock), len(alive)))))
        obs_d = false.copy()
        obs_d.update(zip(alive, obs))   # row views of this step's fresh observation array
        if ended.any():
            self.agents = list(compress(alive, (~ended).tolist()))
        if self.history.maxlen != 0:   # the step's summary is computed when read (about 0.5 ms at 10k agents)
            self.history.append(info["summary"])
        return obs_d, rewards, terminations, truncations, infos

    # ---- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this env exactly (see Checkpoints in the module docstring)."""
        return {"env_format": ENV_FORMAT, "env": self.metadata["name"], "core": self.core.state_dict(),
                "agents": list(self.agents), "history": [dict(h) for h in self.history]}

    def load_state_dict(self, d: Any) -> None:
        """Restore from `state_dict()`; every part is checked first, a rejected dict changes nothing."""
        if not isinstance(d, dict):
            raise TypeError(f"env state_dict must be a dict (from env.state_dict()), got {type(d).__name__}")
        keys = ("env_format", "env", "core", "agents", "history")
        missing = [k for k in keys if k not in d]
        unknown = [repr(k) for k in d if k not in keys]
        if missing or unknown:
            what = ([f"missing {', '.join(map(repr, missing))}"] if missing else []) + (
                [f"unknown {', '.join(unknown)}"] if unknown else [])
            raise ValueError(f"env state_dict: {'; '.join(what)}; expected exactly {', '.join(keys)} "
                             "(a MarketCore state dict goes to env.core.load_state_dict)")
        if d["env_format"] != ENV_FORMAT or isinstance(d["env_format"], bool):
            raise ValueError(f"env state_dict['env_format'] = {d['env_format']!r}; this channelmarket reads {ENV_FORMAT}")
        if d["env"] != self.metadata["name"]:
            raise ValueError(f"env state_dict['env'] = {d['env']!r}; this env is {self.metadata['name']!r}")
        agents = d["agents"]
        if not isinstance(agents, list) or not all(isinstance(a, str) and a in self.agent_index for a in agents):
            bad = agents if not isinstance(agents, list) else [a for a in agents if a not in self.agent_index][:3]
            raise ValueError(f"env state_dict['agents']: {bad!r} are not agents of this env; allowed: a list of "
                             f"names like {self.possible_agents[0]!r}")
        if len(set(agents)) != len(agents) or [a for a in self.possible_agents if a in set(agents)] != agents:
            raise ValueError("env state_dict['agents'] must list distinct agents in the env's order")
        hist = d["history"]
        if not isinstance(hist, list) or not all(isinstance(h, dict) for h in hist):
            raise ValueError("env state_dict['history'] must be a list of market summaries (dicts)")
        try:   # the live agents must be active in the saved market (the core checks the array itself)
            active = np.asarray(d["core"]["state"]["active"])
        except (TypeError, KeyError, ValueError):
            active = None
        if active is not None and active.shape == (self.core.n_agents,) and active.dtype == bool:
            live = np.zeros(self.core.n_agents, dtype=bool)
            live[[self.agent_index[a] for a in agents]] = True
            if (live & ~active).any():
                a = self.possible_agents[int(np.flatnonzero(live & ~active)[0])]
                raise ValueError(f"env state_dict['agents'] lists {a!r}, which the market state marks as having left")
        self.core.load_state_dict(d["core"])   # checked whole; raises before changing the core
        self.agents = list(agents)
        self.history = deque((dict(h) for h in hist), maxlen=self.history_len)

    # ---- extras --------------------------------------------------------------------------
    def inject_shock(self, kind: "str | int", duration: int) -> None:
        """Start DEMAND_SURGE, DEMAND_DROP, SUPPLY_SURPLUS or SUPPLY_SHORTAGE now, for `duration` steps."""
        self.core.inject_shock(kind, duration)
        if self.history:
            self.history[-1] = dict(self.history[-1], shock=Shock(self.core.state.shock_kind).name,
                                    shock_remaining=self.core.state.shock_remaining)

    def breakdown(self) -> dict[str, np.ndarray]:
        """Every breakdown field of the last step as an [N] array (index order of `possible_agents`)."""
        return self.core.breakdown()

    def market_summary(self) -> dict[str, Any]:
        """Clearing price, volume, supply, demand, trades, active channels, active shock, ... of the last step."""
        return self.core.summary()

    def state(self) -> np.ndarray:
        """State for centralized critics, inside `state_space`: the flat market state of fixed size
        (`state_mode="global"`, `envs.global_state`) or every agent's observation stacked, [N, O]."""
        obs = self.core.observe()
        if self.state_mode == "full":
            return obs
        return global_state(self.scenario, self._kind_codes, self.core.state.active, obs)

    def render(self):
        if self.render_mode is None:
            import gymnasium

            gymnasium.logger.warn("render() called without a render_mode; pass render_mode='ansi' or 'rgb_array'")
            return None
        if self.render_mode == "ansi":
            return render_ansi(self.core.summary()) if self.core.state is not None else ""
        if self.core.state is None:   # before reset: the price chart of nothing
            img = render_rgb(self.history, title=f"{self.metadata['name']} ({self.scenario.name})")
        else:   # the dashboard (envs/dashboard.py) from the recorded summaries and a frame of the market now
            from .dashboard import Dashboard, show
            from .frames import Observer

            if getattr(self, "_dashboard", None) is None:
                self._dashboard, self._observer, self._window = Dashboard(), Observer(), {}
            img = self._dashboard.draw(list(self.history), self._observer.frame(self.core))
        if self.render_mode == "human":
            show(img, getattr(self, "_window", {}))
            return None
        return img

    def close(self) -> None:
        pass

    # ---- translation and checks ---------------------------------------------------------------
    def _obs_dict(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(self.possible_agents, obs))

    def _template(self, alive: list[str]) -> dict[str, bool]:
        """{agent: False} over the live agents, built once per agent list (`self.agents` is replaced,
        never changed in place, when agents leave): per step, its copies are the result dicts."""
        t = getattr(self, "_template_of", None)
        if t is None or t[0] is not alive or len(t[1]) != len(alive):
            t = self._template_of = (alive, dict.fromkeys(alive, False))
        return t[1]

    def _live_index(self, names: list[str]) -> np.ndarray:
        if len(names) == self.core.n_agents:
            return np.arange(len(names))
        return np.fromiter((self.agent_index[a] for a in names), dtype=np.int64, count=len(names))

    def _check_name(self, agent: Any) -> None:
        if agent not in self.agent_index:
            raise ValueError(f"unknown agent {agent!r}; agents are named like {self.possible_agents[0]!r}")

    def _actions_array(self, actions: Any) -> np.ndarray:
        """[N, n_actions] float64 from a dict of live agents' actions; agents that left act with zeros.
        A row of the base width (4) leaves the scenario's optional columns at 0."""
        width = self.core.n_actions
        if not isinstance(actions, dict):
            raise TypeError(f"actions must be a dict agent name -> array of shape ({width},), got {type(actions).__name__}")
        live = self.agents
        vals = None
        if len(actions) == len(live):   # one action per live agent (distinct names: no extra keys)
            if list(actions) == live:   # keys in the agents' order (dict(zip(env.agents, ...))): no lookups
                vals = list(actions.values())
            else:
                try:
                    vals = list(map(actions.__getitem__, live))
                except KeyError:
                    vals = None
        if vals is None:
            live_set = set(live)
            missing = [a for a in live if a not in actions]
            unknown = [a for a in actions if a not in self.agent_index]
            dead = [a for a in actions if a in self.agent_index and a not in live_set]
            parts = []
            if missing:
                parts.append(f"missing actions for {_short(missing)}")
            if unknown:
                parts.append(f"unknown agents {_short(unknown)}")
            if dead:
                parts.append(f"agents no longer in the episode {_short(dead)}")
            raise ValueError("; ".join(parts) + f"; pass exactly one action per live agent ({len(live)} agents)")
        arr = None
        # fast path: plain numeric arrays (what policies and action_space.sample() give), all of one
        # dtype and the scenario's width: their bytes joined by C (mixed ones go through np.asarray)
        if set(map(type, vals)) == {np.ndarray}:
            dtypes = set(map(_DTYPE, vals))
            if all(dt.kind in "fiu" for dt in dtypes):
                if len(dtypes) == 1 and set(map(_NDIM, vals)) == {1} and set(map(len, vals)) == {width}:
                    try:
                        arr = np.frombuffer(b"".join(vals), dtype=next(iter(dtypes))).reshape(len(live), width)
                    except (BufferError, TypeError, ValueError):   # a non-contiguous row
                        arr = None
                if arr is None:
                    try:
                        arr = np.asarray(vals)
                    except ValueError:  # ragged: the row check below names the agent
                        arr = None
        if arr is None or arr.shape != (len(live), width):
            arr = np.stack([_action_row(a, v, width) for a, v in zip(live, vals)])
        with np.errstate(over="ignore"):   # a long double beyond float64 becomes inf, refused just below
            arr = arr.astype(np.float64, copy=False)
        bad = ~np.isfinite(arr)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise ValueError(
                f"action of {live[i]!r}: {self.core.action_fields[j]} = {arr[i, j]}; actions must be finite, in [-1, 1]"
            )
        if len(live) == self.core.n_agents:
            return arr
        full = np.zeros((self.core.n_agents, width))
        full[self._live_index(live)] = arr
        return full


_DTYPE = operator.attrgetter("dtype")
_NDIM = operator.attrgetter("ndim")


def _kind_codes(sc) -> np.ndarray:
    """[N] kind code of every agent (the layout the scenario fixes; kinds in registry order)."""
    from .physics import layout

    return layout(sc)[0]


def _action_row(agent: str, v: Any, width: int = N_ACTIONS) -> np.ndarray:
    """One agent's action as a numeric array of shape (width,) (a base-width row gets zeros in the
    optional columns), or TypeError/ValueError naming the agent: no strings, None, bools (one bool
    row is refused like all-bool ones) or masked arrays."""
    if isinstance(v, np.ma.MaskedArray):
        raise TypeError(f"action of {agent!r} is a masked array; pass a plain array (e.g. .filled(0.0))")
    if isinstance(v, (list, tuple)) and any(isinstance(x, (bool, np.bool_)) for x in v):
        raise TypeError(f"action of {agent!r} = {v!r} holds a bool; expected numbers, an array of shape ({width},)")
    try:
        va = np.asarray(v)
    except (ValueError, TypeError):
        va = None
    if va is not None and va.dtype.kind == "b":
        raise TypeError(f"action of {agent!r} = {v!r} is boolean; expected numbers, an array of shape ({width},)")
    if va is None or va.dtype.kind not in "fiu":
        raise TypeError(f"action of {agent!r} = {v!r} is not numeric; expected an array of shape ({width},)")
    if va.shape != (width,) and va.shape != (N_ACTIONS,):
        raise ValueError(f"action of {agent!r} has shape {va.shape}; expected ({width},) in [-1, 1]")
    if va.shape[0] < width:
        va = np.concatenate([va, np.zeros(width - va.shape[0], dtype=va.dtype)])
    return va


class _ShockInfo:
    """Lends its instances' `__dict__` to `_shock_info`."""


def _shock_info(code: int) -> dict[str, int]:
    """`{"shock": code}` as the `__dict__` of a private instance: a plain `dict` whose key table
    CPython shares with its copies, so the copies the default infos are made of skip a key table of
    their own each (about a quarter cheaper to build and free than copies of a literal)."""
    o = _ShockInfo()
    o.shock = code
    return o.__dict__


@functools.lru_cache(maxsize=8)
def _info_maker(keys: tuple[str, ...]):
    """The function of one value per info key that returns an agent's info dict, mapped over the
    columns by C. It sets the values as attributes of a fresh instance of a private class and
    returns the instance's `__dict__`: a plain `dict` (same keys, same order, Python numbers) whose
    key table CPython shares across all of them, about a third cheaper to build and free than a
    dict of its own keys. The keys are checked names (`BREAKDOWN_FIELDS` and "shock"); cached here,
    not on the env, so the env still pickles."""
    if not all((k in BREAKDOWN_FIELDS or k == "shock") and k.isidentifier() for k in keys):
        raise ValueError(f"info keys {keys!r}; allowed: names of BREAKDOWN_FIELDS and 'shock'")
    args = ", ".join(f"v{i}" for i in range(len(keys)))
    body = "".join(f"    o.{k} = v{i}\n" for i, k in enumerate(keys))
    scope = {"Info": type("AgentInfo", (), {"__module__": __name__})}
    exec(compile(f"def make({args}):\n    o = Info()\n{body}    return o.__dict__\n", "<info keys>", "exec"), scope)
    return scope["make"]


def _short(names: list[str], k: int = 5) -> str:
    return ", ".join(map(repr, names[:k])) + (f" and {len(names) - k} more" if len(names) > k else "")
