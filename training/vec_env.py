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

Seeds: market m's e-th episode is seeded with `episode_seed(seed, m, e)` (`markets`), and the
policy groups' seeds derive from it, so the same `seed` gives the same training data bit for bit.

Rewards: profit in EUR per step, by default divided by each agent's scale (retail tariff x
its energy scale, the `last_profit` normalisation of the observation) so that a 10 MW and a
3 MW generator weigh alike in the shared policy's gradient. Each agent's optimum is
unchanged by a positive per-agent factor. `reward_scale="eur"` keeps raw EUR.

Batched: when every agent learns (no background, no partners) and `n_markets > 1`, the markets are
one `MarketCore(scenario, n_markets=M)` stepped in one call (`Markets.step_batch`): the sub-envs
are the batch's rows, market-major, and the training data are the same as with separate cores.

The markets themselves (learners, background, episode seeds) are `training.markets.Markets`,
shared with the IPPO trainer; market metrics are `training.metrics.MarketMetrics`, returned by
`pop_metrics()`, which the TensorBoard callback calls once per rollout.
"""

from __future__ import annotations

import warnings
from typing import Any, Iterable, Sequence

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from ..envs.observations import agent_scale, obs_bounds
from ..envs.scenario import get_scenario
from .markets import (Market, Markets, episode_seed, make_policy, parse_kinds, scenario_kinds,  # noqa: F401
                      scenario_learners, select_agents)
from .metrics import SUMMARY_METRICS  # noqa: F401  (re-exported)


class MarketVecEnv(VecEnv):
    """SB3 `VecEnv` whose sub-envs are the controlled agents of `n_markets` markets
    (`training.markets.Markets` with the "spread" learner draw).

    Args:
        scenario: preset name, YAML/JSON path, dict or `Scenario`.
        learners: agent kinds the learning policy controls ("solar,wind", "sellers", "all"), or
            an explicit index array of agents.
        learner_share: share of each learner kind that is controlled (the rest of the kind is
            driven by `background`, so learners and baselines meet in the same market).
        background: policy driving every agent that is neither controlled nor a partner: a
            registry name ("risk_factor", "truthful", "random", ...), a trained model's path, a
            `Policy` (deep-copied per market) or a factory (`training.policy_specs`).
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
                 batched: "bool | None" = None, **scenario_overrides: Any) -> None:
        self.scenario = get_scenario(scenario, **scenario_overrides)
        if not isinstance(n_markets, int) or isinstance(n_markets, bool) or n_markets < 1:
            raise ValueError(f"n_markets = {n_markets!r}; allowed: an integer >= 1")
        if reward_scale not in ("agent", "eur"):
            raise ValueError(f"reward_scale = {reward_scale!r}; allowed: 'agent', 'eur'")
        self.reward_scale = reward_scale
        self.n_markets = n_markets
        base_seed = int(np.random.SeedSequence().generate_state(1)[0]) if seed is None else int(seed)
        self._mk = Markets(self.scenario, n_markets=n_markets, learners=learners, learner_share=learner_share,
                           background=background, partners=partners, seed=base_seed, learner_draw="spread",
                           batched=batched)
        self.learner_kinds = self._mk.learner_kinds
        self.learner_share = float(learner_share)
        self.kind = self._mk.kind
        self.controlled = self._mk.controlled
        self.background = background
        self._partner_specs = self._mk.partners
        self.markets: list[Market] = self._mk.markets
        m_ctrl = self.controlled.shape[0]
        num_envs = n_markets * m_ctrl
        self._slices = [slice(m * m_ctrl, (m + 1) * m_ctrl) for m in range(n_markets)]
        self._dead = [np.zeros(m_ctrl, dtype=bool) for _ in range(n_markets)]

        self.render_mode = render_mode
        obs_low, obs_high = obs_bounds(self.scenario)   # the scenario's kinds fix the width
        obs_space = spaces.Box(obs_low, obs_high, dtype=np.float32)
        self.n_actions = self.markets[0].core.n_actions   # the scenario's action columns (5 with partner_action)
        act_space = spaces.Box(-1.0, 1.0, shape=(self.n_actions,), dtype=np.float32)
        super().__init__(num_envs, obs_space, act_space)
        self._buf_obs = np.zeros((num_envs, obs_low.shape[0]), dtype=np.float32)
        self._buf_rews = np.zeros(num_envs, dtype=np.float32)
        self._buf_dones = np.zeros(num_envs, dtype=bool)
        self._empty_infos: list[dict] = [{} for _ in range(num_envs)]
        self._actions: np.ndarray | None = None
        self._reward_factor: list[np.ndarray] = [np.ones(m_ctrl) for _ in range(n_markets)]
        self.total_steps = 0           # market steps taken (per market)
        self.episodes_done = 0

    @property
    def _seed(self) -> int:
        """Base seed of the episode seeds (`markets.episode_seed`)."""
        return self._mk.seed

    @_seed.setter
    def _seed(self, value: int) -> None:
        self._mk.seed = int(value)

    @property
    def _metric_steps(self) -> int:
        return self._mk.metrics.steps

    # ---- SB3 VecEnv contract ---------------------------------------------------------------
    def reset(self):
        """Reset every market (episode seeds restart from `seed` if `seed()` was called)."""
        if any(s is not None for s in self._seeds):
            self._seed = int(self._seeds[0])
            for mk in self.markets:
                mk.episode = 0
        if self._mk.batched:
            self._reset_markets(list(range(self.n_markets)))
        else:
            for m, mk in enumerate(self.markets):
                self._reset_market(m)
        self._reset_seeds()
        self._reset_options()
        return self._buf_obs.copy()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        actions = np.asarray(self._actions)
        if actions.shape != (self.num_envs, self.n_actions):
            actions = actions.reshape(self.num_envs, self.n_actions)
        dones = self._buf_dones
        dones[:] = False
        infos: list[dict] | None = None
        if self._mk.batched:
            infos = self._step_batch(actions)
        for m, mk in enumerate(self.markets if not self._mk.batched else ()):
            sl, dead = self._slices[m], self._dead[m]
            obs, rew, term, trunc, info = self._mk.step(mk, actions[sl])
            ctrl = mk.learn_idx
            self._buf_obs[sl] = obs[ctrl]
            self._buf_rews[sl] = rew[ctrl] * self._reward_factor[m]
            left = term[ctrl] & ~dead
            ended = bool(trunc[0]) or mk.core.done
            if left.any() or ended:
                if infos is None:
                    infos = list(self._empty_infos)
                rows = np.arange(left.shape[0]) if ended else np.flatnonzero(left)
                for r in rows.tolist():
                    infos[sl.start + r] = {"terminal_observation": self._buf_obs[sl.start + r].copy(),
                                           "TimeLimit.truncated": bool(ended and not left[r])}
                dones[sl][rows] = True
                dead |= left
                if ended:
                    self.episodes_done += 1
                    self._reset_market(m)
                elif dead.any():   # agents that left act in a zero world until the market ends
                    self._buf_obs[sl][dead] = 0.0
            elif dead.any():
                self._buf_obs[sl][dead] = 0.0
                self._buf_rews[sl][dead] = 0.0
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
                    self._buf_obs[self._slices[m]] = mk.obs[mk.learn_idx]
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
        """Market and profit metrics since the last call, by TensorBoard tag (`training.metrics`:
        a value with a zero denominator is left out); resets the sums. Empty when no step was taken."""
        return self._mk.metrics.pop(self.scenario.episode_steps)

    def _reset_metrics(self) -> None:
        self._mk.metrics.reset()

    # ---- internals ---------------------------------------------------------------------------
    def _step_batch(self, actions: np.ndarray) -> "list[dict] | None":
        """One call steps every market (batched: every agent learns, sub-env i is batch row i)."""
        obs, rew, term, trunc, info = self._mk.step_batch(actions)
        self._buf_obs[:] = obs
        np.multiply(rew, self._factor_all, out=self._buf_rews, casting="unsafe")
        dead = self._dead_all
        left = term & ~dead
        ended = info["ended"]
        infos = None
        if left.any() or ended.any():
            infos = list(self._empty_infos)
            ended_rows = ended[self._mk.core.market_of]
            rows = np.flatnonzero(ended_rows | left)
            for r in rows.tolist():
                infos[r] = {"terminal_observation": self._buf_obs[r].copy(),
                            "TimeLimit.truncated": bool(ended_rows[r] and not left[r])}
            self._buf_dones[rows] = True
            dead |= left
            if ended.any():
                self.episodes_done += int(ended.sum())
                self._reset_markets(np.flatnonzero(ended).tolist())
        if dead.any():   # agents that left act in a zero world until their market ends
            self._buf_obs[dead] = 0.0
            self._buf_rews[dead & ~self._buf_dones] = 0.0
        return infos

    def _reset_markets(self, ms: "list[int]") -> None:
        """Batched: reset markets `ms` in one call and refresh their rows."""
        obs = self._mk.reset_many([self.markets[m] for m in ms])
        n = self._mk.kind.shape[0]
        if not hasattr(self, "_dead_all"):
            self._dead_all = np.zeros(self.num_envs, dtype=bool)
            self._factor_all = np.ones(self.num_envs)
        for m in ms:
            mk = self.markets[m]
            rows = slice(m * n, (m + 1) * n)
            self._dead_all[rows] = False
            if self.reward_scale == "agent":
                scale = agent_scale(mk.core.scenario, mk.core.agents)
                self._factor_all[rows] = 1.0 / np.maximum(self.scenario.retail_tariff * scale, 1e-9)
        self._buf_obs[:] = obs

    def _reset_market(self, m: int) -> None:
        mk = self.markets[m]
        obs = self._mk.reset(mk)
        self._dead[m][:] = False
        if self.reward_scale == "agent":
            scale = agent_scale(mk.core.scenario, mk.core.agents)[mk.learn_idx]
            self._reward_factor[m] = 1.0 / np.maximum(self.scenario.retail_tariff * scale, 1e-9)
        self._buf_obs[self._slices[m]] = obs[mk.learn_idx]

    def _market_of(self, i: int) -> Market:
        return self.markets[int(i) // self.controlled.shape[0]]

    def _markets_of(self, indices: VecEnvIndices) -> list[Market]:
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
