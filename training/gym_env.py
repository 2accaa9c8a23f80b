"""Single-agent Gymnasium view: one learning agent of a chosen kind, every other agent driven by a
baseline or a trained model. A `gymnasium.Env`, so Gymnasium's and SB3's `check_env`, wrappers and
single-agent algorithms work as on any other env.

    import gymnasium as gym, channelmarket
    env = gym.make("channelmarket/SingleAgentMarket-v0", kind="storage", opponents="risk_factor")

Observation and action: the learner's row of the market (the PettingZoo face's spaces). Reward:
its profit for the step (EUR). terminated: the learner left the market; truncated: the episode
reached `episode_steps`. Infos: the learner's step breakdown (every `BREAKDOWN_FIELDS` entry) and
the shock code, the same numeric keys from `reset()` and `step()`. `reset(options={"shock":
(kind, duration)})` starts the episode under a shock, as on the PettingZoo face.

Seeding follows Gymnasium: `reset(seed=s)` seeds the market and `np_random`; a later `reset()`
continues both streams (`envs.seeding`), and the opponents' own randomness is drawn from
`np_random` at each reset, so a seeded run is the same run across resets.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ..envs.core import MarketCore
from ..policies.widths import put_actions
from ..envs.kinds import KIND_NAMES
from ..envs.physics import layout
from ..envs.channel_market import HISTORY_LEN
from ..envs.render import render_ansi, render_rgb
from ..envs.settlement import BREAKDOWN_FIELDS
from ..envs.shocks import check_duration, parse_shock
from .policy_specs import resolve

SHOCK_INFO = "shock"


class SingleAgentMarketEnv(gym.Env):
    """`kind`'s agent number `agent` learns; `opponents` (a `policies.registry` name, a trained
    model path or a `Policy`) drives every other agent. Scenario keywords go to the market."""

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(self, scenario: Any = "energy_small", kind: str = "storage", agent: int = 0,
                 opponents: Any = "truthful", render_mode: "str | None" = None, **overrides: Any) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode = {render_mode!r}; allowed: None, 'ansi', 'rgb_array'")
        self.render_mode = render_mode
        # market summaries of the episode for rgb rendering (the newest HISTORY_LEN), kept only then
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY_LEN)
        self.core = MarketCore(scenario, **overrides)
        self.scenario = self.core.scenario
        if kind not in KIND_NAMES:
            raise ValueError(f"kind = {kind!r}; allowed: {', '.join(KIND_NAMES)}")
        members = np.flatnonzero(layout(self.scenario)[0] == KIND_NAMES.index(kind))
        if isinstance(agent, (bool, np.bool_)) or not isinstance(agent, (int, np.integer)) \
                or not 0 <= agent < members.size:
            raise ValueError(f"agent = {agent!r}: scenario {self.scenario.name!r} has {members.size} {kind} agents; "
                             f"allowed: 0..{members.size - 1}" if members.size else
                             f"kind = {kind!r}: scenario {self.scenario.name!r} has no {kind} agents")
        self.kind, self.agent = kind, int(agent)
        self.learner = int(members[agent])
        self.agent_name = self.core.agent_names()[self.learner]
        self.others = np.setdiff1d(np.arange(self.core.n_agents), [self.learner])
        self.opponents = resolve(opponents)
        if self.opponents is None and self.others.size:
            raise ValueError(f"opponents = {opponents!r}: {self.others.size} other agents need a policy; name a "
                             "baseline (policies.registry) or a trained model path")
        self.observation_space = spaces.Box(self.core.obs_low, self.core.obs_high, dtype=np.float32)
        self.n_actions = self.core.n_actions   # the scenario's action columns (5 with partner_action)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(self.n_actions,), dtype=np.float32)
        self._actions = np.zeros((self.core.n_agents, self.n_actions))
        self._obs: "np.ndarray | None" = None

    def reset(self, *, seed: "int | None" = None, options: "dict | None" = None):
        shock = None
        if options is not None:
            if not isinstance(options, dict) or set(options) - {"shock"}:
                raise ValueError(f"reset options = {options!r}; allowed: None or {{'shock': (kind, duration)}}")
            if "shock" in options:
                shock = options["shock"]
                if not isinstance(shock, (tuple, list)) or len(shock) != 2:
                    raise ValueError(f"reset option 'shock' = {shock!r}; allowed: (kind, duration)")
                shock = (parse_shock(shock[0]), check_duration(shock[1]))  # checked before anything changes
        super().reset(seed=seed)
        self._obs = self.core.reset(seed=seed)
        if shock is not None:
            self.core.inject_shock(*shock)
            self._obs = self.core.observe()
        self.history.clear()
        if self.render_mode == "rgb_array":
            self.history.append(self.core.summary())
        if self.opponents is not None:
            self.opponents.bind(self.core, self.others, seed=int(self.np_random.integers(2**63)))
        return self._obs[self.learner].copy(), self._info(None)

    def step(self, action: Any):
        if self._obs is None:
            raise RuntimeError("step() before reset(); call reset()")
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (self.n_actions,):
            raise ValueError(f"action of {self.agent_name!r} has shape {a.shape}; expected ({self.n_actions},) in "
                             f"[-1, 1]: {', '.join(self.core.action_fields)}")
        acts = self._actions
        if self.opponents is not None:
            put_actions(acts, self.others, self.opponents.act(self._obs[self.others]))
        acts[self.learner] = a
        obs, rew, term, trunc, info = self.core.step(acts)
        if self.opponents is not None:
            self.opponents.update(self.core)
        self._obs = obs
        if self.render_mode == "rgb_array":
            self.history.append(info["summary"])
        terminated = bool(term[self.learner])
        truncated = bool(trunc[self.learner]) and not terminated
        return obs[self.learner].copy(), float(rew[self.learner]), terminated, truncated, self._info(info)

    def _info(self, info: "dict | None") -> dict[str, float | int]:
        if info is None:
            out = dict.fromkeys(BREAKDOWN_FIELDS, 0.0)
        else:
            out = dict(zip(BREAKDOWN_FIELDS, info["breakdown"][self.learner].tolist()))
        out[SHOCK_INFO] = int(self.core.state.shock_kind)
        return out

    def render(self):
        if self.render_mode == "ansi":
            return render_ansi(self.core.summary()) if self.core.state is not None else ""
        if self.render_mode == "rgb_array":
            return render_rgb(self.history, title=f"{self.agent_name} ({self.scenario.name})")
        return None

    def close(self) -> None:
        pass


__all__ = ["SingleAgentMarketEnv"]
