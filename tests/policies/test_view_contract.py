"""Baselines read the market only through their declared view: bound to a guard that exposes
nothing but `view()`, each acts exactly as when bound to the core itself."""

from __future__ import annotations

import numpy as np
import pytest

from channelmarket import MarketCore
from channelmarket.policies import make
from channelmarket.policies.registry import BASELINES


class Guard:
    """Stands for the core: `view(agents)` and the observation schema only; anything else fails."""

    def __init__(self, core: MarketCore) -> None:
        self._core = core

    def view(self, agents=None):
        return self._core.view(agents)

    @property
    def obs_schema(self):
        return self._core.obs_schema

    def __getattr__(self, name):
        raise AssertionError(f"a baseline read core.{name} instead of its view")


@pytest.mark.parametrize("name", BASELINES)
@pytest.mark.parametrize("scenario", ["energy_small", "energy_ev"])
def test_baselines_read_only_the_view(name, scenario):
    kw = {"episode_steps": 12} if scenario == "energy_ev" else {}
    a, b = MarketCore(scenario, **kw), MarketCore(scenario, **kw)
    obs_a, obs_b = a.reset(seed=4), b.reset(seed=4)
    idx = np.arange(0, a.n_agents, 2)          # half the market: private data of the rest is hidden
    rest = np.setdiff1d(np.arange(a.n_agents), idx)
    pa, pb = make(name), make(name)
    pa.bind(a, idx, seed=1)
    pb.bind(Guard(b), idx, seed=1)
    for _ in range(min(a.scenario.episode_steps, 12)):
        act_a, act_b = np.zeros((a.n_agents, 4)), np.zeros((b.n_agents, 4))
        act_a[idx], act_b[idx] = pa.act(obs_a[idx]), pb.act(obs_b[idx])
        np.testing.assert_array_equal(act_a, act_b)
        act_a[rest] = act_b[rest] = 0.3
        obs_a, *_ = a.step(act_a)
        obs_b, *_ = b.step(act_b)
        pa.update(a)
        pb.update(Guard(b))
