"""`MarketVecEnv`: Stable-Baselines3's `VecEnv` over the array API, one sub-env per learning agent.

Parameter sharing: every controlled agent of every market is one sub-environment of the same
policy (the agent kind is in its observation). `n_markets` markets run side by side, so
`num_envs = n_markets x controlled agents per market`. The agents not being trained are driven
inside the adapter by ordinary `Policy` objects (a baseline from the registry, a frozen learned
policy, random), exactly as `policies.rollout.run_episode` would drive them.

    venv = MarketVecEnv("energy_default", learners="solar,wind,storage", learner_share=0.5,
                        background="risk_factor", n_markets=2, seed=0)
    obs = venv.reset()                        # [num_envs, 30] float32
    obs, rewards, dones, infos = venv.step(actions)   # actions [num_envs, 4]

Per step the work is a loop over markets and over policy groups, never over agents: actions
are scattered into each market's [N, 4] array with one fancy index, observations and rewards
gathered with another. The `infos` list SB3 requires holds one shared empty dict per sub-env
(reused every step) except on the step a market's episode ends, when each of its sub-envs
gets a fresh dict with `terminal_observation` and `TimeLimit.truncated` (SB3 only writes
into infos that carry `terminal_observation`; a guard clears the shared dicts if anything
else ever writes into them). Then the market is reset at once (SB3 auto-reset).

Seeds: market m's e-th episode is seeded with `episode_seed(seed, m, e)`, and the policy
groups' seeds derive from it, so the same `seed` gives the same training data bit for bit.

Rewards: profit in EUR per step, by default divided by each agent's scale (retail tariff x
its energy scale, the `last_profit` normalisation of the observation) so that a 10 MW and a
3 MW generator weigh alike in the shared policy's gradient. Each agent's optimum is
unchanged by a positive per-agent factor. `reward_scale="eur"` keeps raw EUR.

Market metrics (clearing price, volume, balance, trades, failed payments, channels,
unserved energy, shocks, profit per kind for learners and for the rest) are summed every
step with a few array operations and returned, averaged, by `pop_metrics()`; the TensorBoard
callback calls it once per rollout.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any, Iterable, Sequence

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from ..envs.core import MarketCore
from ..envs.observations import agent_scale, obs_bounds
from .good_tags import GoodTags
from ..envs.offers import N_ACTIONS
from ..envs.scenario import Scenario, get_scenario
from ..envs.settlement import BREAKDOWN_FIELDS
from ..envs.state import KIND_ALIASES, KIND_NAMES, Kind, resolve_kinds
from ..policies.base import Policy

# Market-summary fields averaged per step into `market/<name>` tags (see `pop_metrics`).
SUMMARY_METRICS = (
    "ref_price", "volume", "supply", "demand", "trades", "negotiations", "failed_payments", "partial_payments",
    "active_channels", "unserved", "curtailed", "grid_bought", "grid_sold", "welfare",
)
# Breakdown columns summed per (kind, learner/baseline) group.
_GROUP_COLS = np.array([BREAKDOWN_FIELDS.index(k) for k in
                        ("profit", "revenue", "cost", "sold", "bought", "grid_sold", "grid_bought", "unserved")])
_G_PROFIT, _G_REVENUE, _G_COST, _G_SOLD, _G_BOUGHT, _G_GRID_SOLD, _G_GRID_BOUGHT, _G_UNSERVED = range(8)
GROUP_NAMES = ("baseline", "learner")


# ---- which agents learn ----------------------------------------------------------------------

def parse_kinds(kinds: "str | Iterable[str] | None") -> tuple[str, ...]:
    """("solar", "wind", ...) from "solar,wind", ["solar", "wind"], "all" (or None), or an alias
    (sellers, generators, buyers, consumers; `envs.state.KIND_ALIASES`)."""
    return KIND_NAMES if kinds is None else resolve_kinds(kinds, what="learners")


def scenario_learners(sc: Scenario, kinds: "str | Iterable[str] | None") -> tuple[str, ...]:
    """`parse_kinds(kinds)` restricted to the kinds scenario `sc` has (an alias such as "sellers"
    names every kind of that role; a market without electric vehicles learns none)."""
    names = parse_kinds(kinds)
    return tuple(k for k in names if sc.count(k) > 0) or names


def scenario_kinds(sc: Scenario) -> np.ndarray:
    """Kind of every agent in index order (fixed by the scenario's counts)."""
    from ..envs.physics import layout

    return layout(sc)[0].astype(np.int64)


def select_agents(kind: np.ndarray, kinds: "str | Iterable[str] | None", share: float = 1.0) -> np.ndarray:
    """Indices of the agents of `kinds`, `share` of each kind spread evenly over its agents
    (every other agent for 0.5; at least one per kind when share > 0)."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"learner_share = {share!r}; allowed: [0, 1]")
    names = parse_kinds(kinds)
    mask = np.zeros(kind.shape[0], dtype=bool)
    for name in names:
        idx = np.flatnonzero(kind == Kind[name.upper()])
        r = np.arange(idx.shape[0])
        pick = np.ceil((r + 1) * share - 1e-9) - np.ceil(r * share - 1e-9) >= 1
        mask[idx[pick]] = True
    return np.flatnonzero(mask)


def episode_seed(seed: int, market: int, episode: int) -> int:
    """The reset seed of market `market`'s `episode`-th episode under base `seed`."""
    return int(np.random.SeedSequence([int(seed), int(market), int(episode)]).generate_state(1)[0])


def make_policy(spec: Any, **kw: Any) -> Policy:
    """A fresh `Policy` from a registry name, a factory, or an instance (deep-copied)."""
    if isinstance(spec, Policy):
        return copy.deepcopy(spec)
    if isinstance(spec, str):
        from ..policies.registry import make

        return make(spec, **kw)
    if callable(spec):
        pol = spec()
        if not isinstance(pol, Policy):
            raise TypeError(f"policy factory {spec!r} returned {type(pol).__name__}, not a Policy")
        return pol
    raise TypeError(f"policy spec {spec!r}; allowed: a registry name, a Policy, or a callable returning one")


# ---- the adapter --------------------------------------------------------------------------------

class _Market:
    """One market inside the adapter: its core, controlled rows, the policies driving the rest."""

    def __init__(self, scenario: Scenario, controlled: np.ndarray, drivers: list[tuple[Policy, np.ndarray]],
                 offset: int) -> None:
        self.core = MarketCore(scenario)
        self.controlled = controlled
        self.drivers = drivers
        self.sl = slice(offset, offset + controlled.shape[0])
        self.actions = np.zeros((scenario.n_agents, N_ACTIONS))
        self.obs: np.ndarray | None = None
        self.episode = 0
        self.dead = np.zeros(controlled.shape[0], dtype=bool)


class MarketVecEnv(VecEnv):
    """SB3 `VecEnv` whose sub-envs are the controlled agents of `n_markets` markets.

    Args:
        scenario: preset name, YAML/JSON path, dict or `Scenario`.
        learners: agent kinds the learning policy controls ("solar,wind", "sellers", "all"), or
            an explicit index array of agents.
        learner_share: share of each learner kind that is controlled (the rest of the kind is
            driven by `background`, so learners and baselines meet in the same market).
        background: policy driving every agent that is neither controlled nor a partner: a
            registry name ("risk_factor", "truthful", "random", ...), a `Policy` (deep-copied per
            market) or a factory.
        partners: extra (policy spec, agent indices) groups, e.g. a frozen learned bidding
            policy for the buyers while the pricing policy trains.
        n_markets: markets side by side (independent episodes, same scenario).
        seed: base seed of every market's episode seeds (None: drawn from the OS once).
        reward_scale: "agent" (profit / (retail x agent energy scale)) or "eur" (raw profit).
        scenario_overrides: scenario fields to replace (e.g. shock_rate=0.02).
    """

    def __init__(self, scenario: Any = "energy_default", learners: Any = "all", learner_share: float = 1.0,
                 background: Any = "risk_factor", partners: Sequence[tuple[Any, Any]] = (), n_markets: int = 1,
                 seed: int | None = None, reward_scale: str = "agent", render_mode: str | None = None,
                 **scenario_overrides: Any) -> None:
        self.scenario = get_scenario(scenario, **scenario_overrides)
        if not isinstance(n_markets, int) or isinstance(n_markets, bool) or n_markets < 1:
            raise ValueError(f"n_markets = {n_markets!r}; allowed: an integer >= 1")
        if reward_scale not in ("agent", "eur"):
            raise ValueError(f"reward_scale = {reward_scale!r}; allowed: 'agent', 'eur'")
        self.reward_scale = reward_scale
        self.n_markets = n_markets
        kind = scenario_kinds(self.scenario)
        n = kind.shape[0]
        if isinstance(learners, (np.ndarray, list, tuple)) and len(learners) and not isinstance(learners[0], str):
            controlled = np.unique(np.asarray(learners, dtype=np.int64))
            if controlled.size and (controlled[0] < 0 or controlled[-1] >= n):
                raise ValueError(f"learner indices must lie in [0, {n}); got {controlled[[0, -1]].tolist()}")
            self.learner_kinds = tuple(KIND_NAMES[k] for k in np.unique(kind[controlled]))
        else:
            self.learner_kinds = scenario_learners(self.scenario, learners)
            controlled = select_agents(kind, self.learner_kinds, learner_share)
        if controlled.size == 0:
            raise ValueError(f"no agent to train: learners {learners!r} with share {learner_share} select nobody "
                             f"in scenario {self.scenario.name!r}")
        self.learner_share = float(learner_share)
        self.kind = kind
        self.controlled = controlled
        taken = np.zeros(n, dtype=bool)
        taken[controlled] = True
        partner_groups = []
        for i, (spec, idx) in enumerate(partners):
            idx = np.asarray(idx)
            idx = np.flatnonzero(idx) if idx.dtype == bool else idx.astype(np.int64)
            if taken[idx].any():
                raise ValueError(f"partners[{i}] overlaps the controlled agents or another partner group: "
                                 f"agents {idx[taken[idx]][:5].tolist()}")
            taken[idx] = True
            if idx.size:
                partner_groups.append((spec, idx))
        rest = np.flatnonzero(~taken)
        self.background = background
        self._partner_specs = partner_groups

        self.markets: list[_Market] = []
        m_ctrl = controlled.shape[0]
        for m in range(n_markets):
            drivers = [(make_policy(spec), idx) for spec, idx in partner_groups]
            if rest.size:
                drivers.append((make_policy(background), rest))
            self.markets.append(_Market(self.scenario, controlled, drivers, m * m_ctrl))
        num_envs = n_markets * m_ctrl

        # group of every agent for the metrics: kind * 2 + (controlled)
        self._group = kind * 2 + taken_controlled(n, controlled)
        self._group_onehot = np.zeros((2 * len(KIND_NAMES), n))
        self._group_onehot[self._group, np.arange(n)] = 1.0
        self._group_counts = self._group_onehot.sum(axis=1)

        self.render_mode = render_mode
        self._seed = int(np.random.SeedSequence().generate_state(1)[0]) if seed is None else int(seed)
        obs_low, obs_high = obs_bounds(self.scenario)   # the scenario's kinds fix the width
        obs_space = spaces.Box(obs_low, obs_high, dtype=np.float32)
        act_space = spaces.Box(-1.0, 1.0, shape=(N_ACTIONS,), dtype=np.float32)
        super().__init__(num_envs, obs_space, act_space)
        self._buf_obs = np.zeros((num_envs, obs_low.shape[0]), dtype=np.float32)
        self._buf_rews = np.zeros(num_envs, dtype=np.float32)
        self._buf_dones = np.zeros(num_envs, dtype=bool)
        self._empty_infos: list[dict] = [{} for _ in range(num_envs)]
        self._actions: np.ndarray | None = None
        self._reward_factor: list[np.ndarray] = [np.ones(m_ctrl) for _ in range(n_markets)]
        self.total_steps = 0           # market steps taken (per market)
        self.episodes_done = 0
        self._reset_metrics()

    # ---- SB3 VecEnv contract ---------------------------------------------------------------
    def reset(self):
        """Reset every market (episode seeds restart from `seed` if `seed()` was called)."""
        if any(s is not None for s in self._seeds):
            self._seed = int(self._seeds[0])
            for mk in self.markets:
                mk.episode = 0
        for m, mk in enumerate(self.markets):
            self._reset_market(m)
        self._reset_seeds()
        self._reset_options()
        return self._buf_obs.copy()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        actions = np.asarray(self._actions)
        if actions.shape != (self.num_envs, N_ACTIONS):
            actions = actions.reshape(self.num_envs, N_ACTIONS)
        dones = self._buf_dones
        dones[:] = False
        infos: list[dict] | None = None
        for m, mk in enumerate(self.markets):
            core, sl = mk.core, mk.sl
            acts = mk.actions
            acts[mk.controlled] = actions[sl]
            obs = mk.obs
            for pol, idx in mk.drivers:
                acts[idx] = pol.act(obs[idx])
            obs, rew, term, trunc, info = core.step(acts)
            for pol, _ in mk.drivers:
                pol.update(core)
            mk.obs = obs
            self._record(info, rew)
            self._buf_obs[sl] = obs[mk.controlled]
            self._buf_rews[sl] = rew[mk.controlled] * self._reward_factor[m]
            left = term[mk.controlled] & ~mk.dead
            ended = bool(trunc[0]) or core.done
            if left.any() or ended:
                if infos is None:
                    infos = list(self._empty_infos)
                rows = np.arange(left.shape[0]) if ended else np.flatnonzero(left)
                for r in rows.tolist():
                    infos[sl.start + r] = {"terminal_observation": self._buf_obs[sl.start + r].copy(),
                                           "TimeLimit.truncated": bool(ended and not left[r])}
                dones[sl][rows] = True
                mk.dead |= left
                if ended:
                    self.episodes_done += 1
                    self._reset_market(m)
                elif mk.dead.any():   # agents that left act in a zero world until the market ends
                    self._buf_obs[sl][mk.dead] = 0.0
            elif mk.dead.any():
                self._buf_obs[sl][mk.dead] = 0.0
                self._buf_rews[sl][mk.dead] = 0.0
        self.total_steps += 1
        if infos is None:
            if any(self._empty_infos):   # someone wrote into a shared dict: clear, warn once
                warnings.warn("MarketVecEnv: a consumer wrote into the shared per-step infos; clearing them",
                              RuntimeWarning, stacklevel=2)
                for d in self._empty_infos:
                    d.clear()
            infos = list(self._empty_infos)
        return self._buf_obs.copy(), self._buf_rews.copy(), dones.copy(), infos

    def close(self) -> None:
        self.markets = []

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Base seed for the next `reset()`: episode e of market m is seeded `episode_seed(seed, m, e)`."""
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        self._seeds = [int(seed) + i for i in range(self.num_envs)]
        return self._seeds

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Attribute per sub-env: the adapter's own attribute if it has one (shared by all
        sub-envs), else the attribute of the sub-env's `MarketCore`."""
        idx = self._get_indices(indices)
        if attr_name in ("render_mode", "scenario", "learner_kinds", "n_markets") or (
                attr_name in self.__dict__ and not attr_name.startswith("_")):
            return [getattr(self, attr_name)] * len(list(idx))
        return [getattr(self._market_of(i).core, attr_name) for i in idx]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute of the markets (MarketCore) holding the given sub-envs."""
        for mk in self._markets_of(indices):
            setattr(mk.core, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        """Call a `MarketCore` method once per market holding the given sub-envs (e.g.
        `env_method("inject_shock", "DEMAND_SURGE", 4, indices=[0])`); the result is repeated
        for every sub-env of that market."""
        idx = list(self._get_indices(indices))
        results = {}
        for i in idx:
            m = i // self.controlled.shape[0]
            if m not in results:
                mk = self.markets[m]
                results[m] = getattr(mk.core, method_name)(*method_args, **method_kwargs)
                if method_name == "inject_shock":   # the shock shows in the next observation
                    mk.obs = mk.core.observe()
                    self._buf_obs[mk.sl] = mk.obs[mk.controlled]
        return [results[i // self.controlled.shape[0]] for i in idx]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False] * len(list(self._get_indices(indices)))

    def get_images(self) -> Sequence[np.ndarray | None]:
        if self.render_mode != "rgb_array":
            return [None] * self.num_envs
        from ..envs.render import render_rgb

        return [render_rgb([self._market_of(i).core.summary()]) for i in range(self.num_envs)]

    def render(self, mode: str | None = None):
        """ANSI mode: one market-summary line per market."""
        if (mode or self.render_mode) == "ansi":
            from ..envs.render import render_ansi

            return "\n".join(render_ansi(mk.core.summary()) for mk in self.markets)
        return super().render(mode)

    # ---- metrics ---------------------------------------------------------------------------
    def pop_metrics(self) -> dict[str, float]:
        """Per-step market averages and per-agent profits since the last call, by TensorBoard tag;
        resets the sums. Empty when no step was taken since."""
        n = self._metric_steps
        if n == 0:
            return {}
        s = self._metric_sums
        out: dict[str, float] = {}
        for i, k in enumerate(SUMMARY_METRICS):
            out[f"market/{_TAG.get(k, k)}"] = s[i] / n
        vol = s[SUMMARY_METRICS.index("volume")]
        out["market/clearing_price"] = self._vwap_sum / vol if vol > 0 else float("nan")
        out["market/supply_demand_balance"] = self._imbalance_sum / n
        out["market/shock_share"] = self._shock_steps / n
        att = s[SUMMARY_METRICS.index("trades")] + s[SUMMARY_METRICS.index("failed_payments")]
        out["market/failed_payment_share"] = s[SUMMARY_METRICS.index("failed_payments")] / att if att > 0 else 0.0
        out.update(self._good_tags.pop(n))   # further goods (certificates), if the market has any
        g = self._group_sums          # [2K, 8] summed over steps and markets
        steps_per_episode = self.scenario.episode_steps
        denom = self._group_counts * n   # agent-steps per group (n counts market-steps)
        for k, kname in enumerate(KIND_NAMES):
            for c, cname in enumerate(GROUP_NAMES):
                gi = 2 * k + c
                if self._group_counts[gi] == 0:
                    continue
                out[f"profit/{kname}/{cname}"] = g[gi, _G_PROFIT] / denom[gi] * steps_per_episode
                if kname in KIND_ALIASES["buyers"]:
                    served = g[gi, _G_BOUGHT] + g[gi, _G_GRID_BOUGHT]
                    if served > 0:
                        out[f"cost_per_mwh/{kname}/{cname}"] = g[gi, _G_COST] / served
                if kname in KIND_ALIASES["sellers"]:
                    sold = g[gi, _G_SOLD] + g[gi, _G_GRID_SOLD]
                    if sold > 0:
                        out[f"revenue_per_mwh/{kname}/{cname}"] = g[gi, _G_REVENUE] / sold
        self._reset_metrics()
        return out

    def _reset_metrics(self) -> None:
        self._metric_sums = np.zeros(len(SUMMARY_METRICS))
        self._good_tags = GoodTags(self.scenario.goods[1:])
        self._vwap_sum = 0.0
        self._imbalance_sum = 0.0
        self._shock_steps = 0
        self._metric_steps = 0
        self._group_sums = np.zeros((2 * len(KIND_NAMES), _GROUP_COLS.shape[0]))

    def _record(self, info: dict, rewards: np.ndarray) -> None:
        s = info["summary"]
        self._metric_sums += [s[k] for k in SUMMARY_METRICS]
        self._good_tags.add(s)
        self._vwap_sum += s["clearing_price"] * s["volume"]
        sup, dem = s["supply"], s["demand"]
        self._imbalance_sum += (dem - sup) / (dem + sup) if dem + sup > 0 else 0.0
        self._shock_steps += s["shock"] != "NONE"
        self._metric_steps += 1
        self._group_sums += self._group_onehot @ info["breakdown"][:, _GROUP_COLS]

    # ---- internals ---------------------------------------------------------------------------
    def _reset_market(self, m: int) -> None:
        mk = self.markets[m]
        seed = episode_seed(self._seed, m, mk.episode)
        mk.episode += 1
        obs = mk.core.reset(seed=seed)
        if not np.array_equal(mk.core.agents.kind, self.kind):   # pragma: no cover - core contract
            raise RuntimeError("the market's agent kinds differ from the scenario's counts")
        ss = np.random.SeedSequence([seed, 0x7A1])
        for g, ((pol, idx), child) in enumerate(zip(mk.drivers, ss.spawn(len(mk.drivers)))):
            pol.bind(mk.core, idx, seed=child)
        mk.obs = obs
        mk.dead[:] = False
        if self.reward_scale == "agent":
            scale = agent_scale(mk.core.scenario, mk.core.agents)[mk.controlled]
            self._reward_factor[m] = 1.0 / np.maximum(self.scenario.retail_tariff * scale, 1e-9)
        self._buf_obs[mk.sl] = obs[mk.controlled]

    def _market_of(self, i: int) -> _Market:
        return self.markets[int(i) // self.controlled.shape[0]]

    def _markets_of(self, indices: VecEnvIndices) -> list[_Market]:
        ms = sorted({int(i) // self.controlled.shape[0] for i in self._get_indices(indices)})
        return [self.markets[m] for m in ms]

    def _get_indices(self, indices: VecEnvIndices) -> Iterable[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, (int, np.integer)):
            return [int(indices)]
        return indices

    # ---- views ---------------------------------------------------------------------------------
    @property
    def agents_per_market(self) -> int:
        return int(self.controlled.shape[0])

    def sub_env_kind(self) -> np.ndarray:
        """Kind of every sub-env's agent, [num_envs]."""
        return np.tile(self.kind[self.controlled], self.n_markets)

    def __repr__(self) -> str:
        return (f"MarketVecEnv(scenario={self.scenario.name!r}, learners={','.join(self.learner_kinds)}, "
                f"share={self.learner_share:g}, markets={self.n_markets}, num_envs={self.num_envs})")


def taken_controlled(n: int, controlled: np.ndarray) -> np.ndarray:
    out = np.zeros(n, dtype=np.int64)
    out[controlled] = 1
    return out


_TAG = {"unserved": "unserved_energy", "curtailed": "curtailed_energy"}


# ---- the standard route: SuperSuit -------------------------------------------------------------

def supersuit_vec_env(par_env: Any, num_vec_envs: int = 1):
    """`pettingzoo_env_to_vec_env_v1` + `concat_vec_envs_v1(..., base_class="stable_baselines3")`,
    with `seed()` added: SuperSuit 3.11's ConcatVecEnv has no `seed` method, which SB3 >= 2
    calls when an algorithm gets `seed=` (AttributeError). The seed given is used by the next
    `reset()`; later episodes are reset by SuperSuit without a seed, which continues the seeded
    stream (Gymnasium's rule, `channelmarket.envs.seeding`), so the whole run is reproducible;
    `MarketVecEnv` is still the faster route."""
    import supersuit as ss

    venv = ss.pettingzoo_env_to_vec_env_v1(par_env)
    venv = ss.concat_vec_envs_v1(venv, num_vec_envs, num_cpus=0, base_class="stable_baselines3")
    concat = venv.venv
    if not hasattr(concat, "seed"):
        pending: dict[str, Any] = {"seed": None}
        reset = concat.reset

        def seed(seed: int | None = None):
            pending["seed"] = seed
            return [seed] * concat.num_envs

        def seeded_reset(seed: int | None = None, options: Any = None):
            if seed is None:
                seed, pending["seed"] = pending["seed"], None
            return reset(seed=seed, options=options)

        concat.seed = seed
        concat.reset = seeded_reset
    return venv


__all__ = ["MarketVecEnv", "select_agents", "parse_kinds", "scenario_kinds", "episode_seed", "make_policy", "supersuit_vec_env",
           "SUMMARY_METRICS"]
