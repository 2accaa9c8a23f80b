"""`MarketCore(scenario, n_markets=M)`: M independent markets of one scenario stepped in one call.

    core = MarketCore("energy_default", n_markets=256)
    obs = core.reset(seed=0)                  # [M*N, O] float32, market-major: rows m*N..(m+1)*N are market m
    obs, rewards, terminations, truncations, info = core.step(actions)   # actions [M*N, 4]

Layout: every per-agent array is [M*N] (or [M*N, ...]) market-major, so `x.reshape(M, N, ...)`
gives the per-market view; channel slots likewise [M*E]. `core.market_of[i]` is agent i's market.

Seeds: `reset(seed=s)` seeds market m with the m-th child of `SeedSequence(s).spawn(M)`
(`market_seeds(s, M)`); `reset(seed=[s_0, ..., s_{M-1}])` seeds market m with `s_m` exactly as
`MarketCore(scenario).reset(seed=s_m)` would. Either way market m is bit-identical to the same
market run alone with its seed. `reset()` without a seed continues every market's own seed stream.

Per market: `reset_markets(markets, seeds=None)`, `inject_shock(kind, duration, market=m)`,
`dones` [M] (a market's episode ended), optional `auto_reset=True`: a market whose episode ends
is reset in the same `step` (its next seedless episode); the step's `info["final_observation"]`
holds the rows of the ended markets' last observation and `info["reset_markets"]` their indices.
Without auto-reset, stepping a batch with an ended market raises (reset it first).
All markets share the scenario (the same agent counts): different sizes per market are a non-goal.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import state_io
from .batch import BatchAgents, BatchState, Layout, batch_step, normals_per_step, observe, tradable
from .channels import liquidity as channel_liquidity
from .memory import retain_heap
from .observations import agent_scale, static_columns
from .seeding import check_seed, episode_seed
from .settlement import BREAKDOWN_FIELDS
from .shocks import check_duration, parse_shock
from .actions import check_actions, check_flag, check_indices
from .obs_schema import observation_schema
from .observations import obs_bounds
from .offers import N_ACTIONS, action_fields
from .scenario import get_scenario
from .step import initial_state

SEEDS_ALLOWED = "None, one seed (spawned into one child per market) or a list of one seed per market"


def market_seeds(seed: Any, n_markets: int) -> list[np.random.SeedSequence]:
    """The seed of each market of a batch reset with one seed: the children of `SeedSequence(seed).spawn(M)`."""
    s = check_seed(seed)
    ss = s if isinstance(s, np.random.SeedSequence) else np.random.SeedSequence(s)
    return ss.spawn(n_markets)


class BatchCore:
    """M markets in one struct of arrays; see the module docstring. Created by `MarketCore(..., n_markets=M)`
    (or directly); the array API of `MarketCore` with a market axis."""

    n_actions = N_ACTIONS

    def __init__(self, scenario: Any = None, n_markets: int = 1, auto_reset: bool = False, **overrides: Any) -> None:
        self.scenario = get_scenario(scenario, **overrides)
        retain_heap()                          # a step's temporaries reuse freed pages (memory.py)
        self.obs_low, self.obs_high = obs_bounds(self.scenario)
        self.obs_dim = int(self.obs_low.shape[0])
        self.obs_schema = observation_schema(self.scenario)
        self.action_fields = action_fields(self.scenario)   # the scenario's action columns (optional ones last)
        self.n_actions = len(self.action_fields)
        self.last_result = None
        self._setup(n_markets, auto_reset)

    def _setup(self, n_markets: Any, auto_reset: bool) -> None:
        if isinstance(n_markets, (bool, np.bool_)) or not isinstance(n_markets, (int, np.integer)) or n_markets < 1:
            raise ValueError(f"n_markets = {n_markets!r}; allowed: an integer >= 1")
        self.n_markets = int(n_markets)
        self.agents_per_market = self.scenario.n_agents
        self.n_agents = self.n_markets * self.agents_per_market
        self.auto_reset = bool(auto_reset)
        sc = self.scenario
        self.layout = Layout.of(self.n_markets, sc.n_agents, sc.n_channels)
        self.market_of = self.layout.market
        self.batch: BatchState | None = None
        self.bagents: BatchAgents | None = None
        self._streams: list = [None] * self.n_markets
        self._n_normals = 0

    # ---- episodes ------------------------------------------------------------------------------
    def _seeds(self, seed: Any) -> list:
        m = self.n_markets
        if isinstance(seed, list):  # one seed per market (a tuple or array is one seed, as for MarketCore)
            if len(seed) != m:
                raise ValueError(f"seed is a list of {len(seed)} seeds; allowed: {SEEDS_ALLOWED} ({m})")
            return [check_seed(s, f"seed[{i}]") for i, s in enumerate(seed)]
        if seed is None:
            return [None] * m
        return market_seeds(seed, m)

    def reset(self, seed: Any = None) -> np.ndarray:
        """Start an episode in every market (module docstring: the seed rule)."""
        seeds = self._seeds(seed)
        agents, states, streams = [], [], []
        for i, s in enumerate(seeds):
            ss, stream = episode_seed(s, self._streams[i])
            a, st = initial_state(self.scenario, ss)
            agents.append(a); states.append(st); streams.append(stream)
        self._streams = streams
        self.bagents = BatchAgents.stack(agents)
        self.batch = BatchState.stack(states, self.layout)
        self._static = static_columns(self.scenario, self.bagents.flat)
        self._scale = agent_scale(self.scenario, self.bagents.flat)
        self._n_normals = normals_per_step(self.scenario, self.bagents, self.batch)
        self.last_result = None
        self._liquidity = None
        return self.observe()

    def reset_markets(self, markets: Any, seeds: Any = None) -> np.ndarray:
        """Start a new episode in the given markets (indices or an [M] bool mask) only; `seeds`
        None (each market's next seedless episode) or one seed per market given. Returns obs [M*N, O]."""
        batch = self._require()
        idx = self._market_indices(markets)
        if seeds is None:
            seeds = [None] * idx.size
        elif not isinstance(seeds, (list, tuple, np.ndarray)) or len(seeds) != idx.size:
            raise ValueError(f"seeds = {seeds!r}; allowed: None or one seed per market reset ({idx.size})")
        new = [(int(m), *episode_seed(s, self._streams[int(m)])) for m, s in zip(idx, seeds)]
        agents = list(self.bagents.per_market)
        for m, ss, stream in new:
            a, st = initial_state(self.scenario, ss)
            agents[m] = a
            batch = batch.put(m, st, self.layout)
            self._streams[m] = stream
        self.bagents = BatchAgents.stack(agents)
        self.batch = batch
        self._static = static_columns(self.scenario, self.bagents.flat)
        self._scale = agent_scale(self.scenario, self.bagents.flat)
        self.last_result = None
        self._liquidity = None
        return self.observe()

    def _market_indices(self, markets: Any) -> np.ndarray:
        idx = np.asarray(markets)
        if idx.dtype == bool:
            if idx.shape != (self.n_markets,):
                raise ValueError(f"market mask has shape {idx.shape}; expected ({self.n_markets},)")
            return np.flatnonzero(idx)
        idx = np.atleast_1d(idx)
        if idx.dtype.kind not in "iu" or idx.ndim != 1:
            raise TypeError(f"markets must be market indices or an [M] bool mask, got {markets!r}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_markets):
            bad = idx[(idx < 0) | (idx >= self.n_markets)][0]
            raise ValueError(f"market index {bad} out of range; allowed: 0..{self.n_markets - 1}")
        return idx.astype(np.int64)

    def step(self, actions: np.ndarray):
        """One interval of every market. Returns obs [M*N, O] float32, rewards [M*N] float64,
        terminations [M*N], truncations [M*N] (the market's episode ended), info dict of [M] arrays."""
        batch = self._require()
        done = self.dones
        if done.any():
            raise RuntimeError(f"the episodes of markets {np.flatnonzero(done).tolist()} ended (episode_steps = "
                               f"{self.scenario.episode_steps}); call reset_markets() or use auto_reset=True")
        acts = check_actions(actions, self.n_agents, self.action_fields, copy=False)   # read only: no copy
        new, result = batch_step(self.scenario, self.bagents, batch, acts, self.layout, self._n_normals,
                                 self._tradable_of(batch))
        self.batch, self.last_result = new, result
        self._liquidity = (new, result.liquidity)
        obs = self.observe()
        rewards = np.where(batch.active, result.settlement.breakdown[:, 0], 0.0)
        terminations = ~new.active
        ended = new.t >= self.scenario.episode_steps
        truncations = ended[self.market_of]
        info = {"t": new.t.copy(), "ref_price": new.ref_price[:, 0].copy(),
                "clearing_price": new.clearing_price[:, 0].copy(), "volume": new.volume[:, 0].copy(),
                "shock": new.shock_kind.copy(), "ended": ended,
                "breakdown": result.settlement.breakdown}
        if self.auto_reset and ended.any():
            info["final_observation"] = obs.copy()
            info["reset_markets"] = np.flatnonzero(ended)
            obs = self.reset_markets(info["reset_markets"])
        return obs, rewards, terminations, truncations, info

    def observe(self) -> np.ndarray:
        batch = self._require()
        liq = self._liquidity[1] if self._liquidity is not None and self._liquidity[0] is batch else None
        if liq is None:
            liq = channel_liquidity(self.n_agents, batch.u, batch.v, batch.capacity, batch.balance_u, batch.open)
        s, d = self._tradable_of(batch)
        return observe(self.scenario, self.bagents, batch, self._static, self._scale, s, d, liq, self.layout)

    def _tradable_of(self, batch: BatchState):
        cached = getattr(self, "_tradable_cache", None)
        if cached is None or cached[0] is not batch:
            cached = self._tradable_cache = (batch, *tradable(self.scenario, self.bagents, batch))
        return cached[1], cached[2]

    @property
    def dones(self) -> np.ndarray:
        """[M] bool: the market's episode ended."""
        if self.batch is None:
            return np.zeros(self.n_markets, dtype=bool)
        return self.batch.t >= self.scenario.episode_steps

    @property
    def done(self) -> bool:
        """Every market's episode ended."""
        return self.batch is not None and bool(self.dones.all())

    # ---- interventions -------------------------------------------------------------------------
    def inject_shock(self, kind: "str | int", duration: int, market: Any = None) -> None:
        """Start a shock now in `market` (an index, indices, a mask; None: every market)."""
        batch = self._require()
        k, d = int(parse_shock(kind)), check_duration(duration)
        idx = np.arange(self.n_markets) if market is None else self._market_indices(market)
        sk, sr = batch.shock_kind.copy(), batch.shock_remaining.copy()
        sk[idx], sr[idx] = k, d
        self.batch = batch.replace(shock_kind=sk, shock_remaining=sr)

    def remove_agents(self, agents: Any, close_channels: bool = False) -> None:
        """Take agents (global indices m*N + i) out of their market's episode; with
        `close_channels=True` their channels force-close now (as `MarketCore.remove_agents`)."""
        batch = self._require()
        idx = check_indices(agents, self.n_agents, "agents", "agent index", "agent indices")
        close_channels = check_flag(close_channels, "close_channels")
        active = batch.active.copy()
        active[idx] = False
        self.batch = batch.replace(active=active)
        if close_channels:
            failed = np.zeros(self.n_agents, dtype=bool)
            failed[idx] = True
            self._force_close(failed[batch.u] | failed[batch.v])

    def fail_channels(self, channels: Any) -> None:
        """Force-close channel slots now (global slots m*E + c; `MarketCore.fail_channels`)."""
        batch = self._require()
        e = batch.u.shape[0]
        idx = check_indices(channels, e, "channels", "channel slot", "channel slots")
        closing = np.zeros(e, dtype=bool)
        closing[idx] = True
        self._force_close(closing)

    def _force_close(self, closing: np.ndarray) -> None:
        """`payments.faults.force_close` over the batch, fee sinks and topology versions per market."""
        from .payments.faults import force_close

        b = self.batch
        closing = closing & b.open
        k = np.bincount(self.layout.edge_market[closing], minlength=self.n_markets)
        if not k.any():
            return
        fee = self.scenario.onchain_fee
        is_open, wallet, _, _ = force_close(b.u, b.v, b.capacity, b.balance_u, b.open, b.wallet, 0.0, closing, fee)
        self.batch = b.replace(open=is_open, wallet=wallet, fee_sink=b.fee_sink + fee * k,
                               topology_version=b.topology_version + (k > 0))

    # ---- per-market reads ------------------------------------------------------------------------
    def market_state(self, m: int):
        """Market m as the `MarketState` it would have alone (views; local channel endpoints)."""
        return self._require().market(int(self._market_indices(m)[0]), self.layout)

    def summary(self, market: int = 0) -> dict[str, Any]:
        """Market `market`'s summary of the last step (the keys of `MarketCore.summary()`)."""
        from .payments.layer import summary_fields
        from .step import summary as one_summary

        m = int(self._market_indices(market)[0])
        out = one_summary(self.scenario, self.market_state(m), None)
        res = self.last_result
        if res is None:
            return out
        st, tm = res.settlement, res.trade_market
        a = self.layout.agents_of(m)
        bd = st.breakdown[a].sum(axis=0)
        col = {k: i for i, k in enumerate(BREAKDOWN_FIELDS)}
        mine = tm == m if tm is not None else np.ones(st.paid_qty.shape[0], dtype=bool)   # one market: all its own
        out.update(trades=int((st.paid_qty[mine] > 0).sum()), failed_payments=int(st.failed[mine].sum()),
                   partial_payments=int(st.partial[mine].sum()), channels_opened=int(res.n_opened[m]),
                   channels_closed=int(res.n_closed[m]), grid_bought=float(bd[col["grid_bought"]]),
                   grid_sold=float(bd[col["grid_sold"]]), unserved=float(bd[col["unserved"]]),
                   curtailed=float(bd[col["curtailed"]]), welfare=float(bd[col["profit"]]),
                   network_charges=float(bd[col["network_charges"]]), lost_load=float(bd[col["lost_load"]]))
        report = res.payments[m] if res.payments is not None else None
        out.update(summary_fields(st._replace(paid_qty=st.paid_qty[mine], failed=st.failed[mine], payments=report),
                                  self.scenario.max_hops))
        out.pop("negotiations", None)   # counted over the whole batch (res.trades.negotiations)
        return out

    def view(self, agents: Any = None):
        raise TypeError("a batch of markets has no single-market MarketView; read market_state(m), summary(m), "
                        "or step the market alone (MarketCore(scenario))")

    def money_total(self) -> np.ndarray:
        """[M] money of every market (constant over its episode)."""
        return self._require().money_total(self.layout)

    def breakdown(self) -> dict[str, np.ndarray]:
        if self.last_result is None:
            return {k: np.zeros(self.n_agents) for k in BREAKDOWN_FIELDS}
        b = self.last_result.settlement.breakdown
        return {k: b[:, i] for i, k in enumerate(BREAKDOWN_FIELDS)}

    # ---- persistence ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """{"n_markets": M, "markets": [the state dict of each market as `MarketCore` writes it]}."""
        batch = self._require()
        return {"n_markets": self.n_markets,
                "markets": [state_io.dump(self.scenario, self.bagents.per_market[m], batch.market(m, self.layout),
                                          self._streams[m]) for m in range(self.n_markets)]}

    def market_state_dict(self, m: int) -> dict[str, Any]:
        """Market m's state dict, the format `MarketCore.state_dict()` writes."""
        m = int(self._market_indices(m)[0])
        return state_io.dump(self.scenario, self.bagents.per_market[m], self._require().market(m, self.layout),
                             self._streams[m])

    def load_market_state_dict(self, m: int, d: dict[str, Any]) -> None:
        """Restore market m alone from a `MarketCore` state dict (checked before anything changes)."""
        m = int(self._market_indices(m)[0])
        batch = self._require()
        agents, state, stream = state_io.load(d, self.scenario, (self.bagents.per_market[m], batch.market(m, self.layout)))
        per = list(self.bagents.per_market)
        per[m] = agents
        self.batch = batch.put(m, state, self.layout)
        self.bagents = BatchAgents.stack(per)
        self._streams[m] = stream
        self._static = static_columns(self.scenario, self.bagents.flat)
        self._scale = agent_scale(self.scenario, self.bagents.flat)
        self.last_result = None
        self._liquidity = None

    def load_state_dict(self, d: dict[str, Any]) -> None:
        """Restore from `state_dict()`; every market's dict is checked before anything changes."""
        if not isinstance(d, dict) or set(d) != {"n_markets", "markets"}:
            raise ValueError("batch state dict: expected a dict with keys n_markets, markets")
        if d["n_markets"] != self.n_markets or not isinstance(d["markets"], (list, tuple)) \
                or len(d["markets"]) != self.n_markets:
            raise ValueError(f"batch state dict: n_markets = {d['n_markets']!r}; this core has {self.n_markets}")
        template = initial_state(self.scenario, 0)
        loaded = [state_io.load(x, self.scenario, template) for x in d["markets"]]
        self.bagents = BatchAgents.stack([a for a, _, _ in loaded])
        self.batch = BatchState.stack([s for _, s, _ in loaded], self.layout)
        self._streams = [s for _, _, s in loaded]
        self._static = static_columns(self.scenario, self.bagents.flat)
        self._scale = agent_scale(self.scenario, self.bagents.flat)
        self._n_normals = normals_per_step(self.scenario, self.bagents, self.batch)
        self.last_result = None
        self._liquidity = None

    def check_actions(self, actions: Any) -> np.ndarray:
        """float64 [M*N, n_actions] actions clipped to [-1, 1] (`envs.actions.check_actions`)."""
        return check_actions(actions, self.n_agents, self.action_fields)

    def _require(self) -> BatchState:
        if self.batch is None:
            raise RuntimeError("the markets have no state yet; call reset(seed=...) first")
        return self.batch


__all__ = ["BatchCore", "market_seeds"]
