"""Shared helpers of the env tests."""

import numpy as np
import pytest

from channelmarket.envs import MarketCore
from channelmarket.policies import make


def _rollout(sc, seed, policy=None):
    """Step an episode of `sc` with random actions (or a registered policy over every agent);
    yield (core, previous state, result) after each step."""
    core = MarketCore(sc)
    core.reset(seed=seed)
    rng = np.random.default_rng(seed)
    pol = None
    if policy is not None:
        pol = make(policy) if isinstance(policy, str) else policy
        pol.bind(core, np.arange(core.n_agents), seed)
    while not core.done:
        prev = core.state
        a = pol.act(core.observe()) if pol is not None else rng.uniform(-1, 1, (core.n_agents, 4))
        core.step(a)
        if pol is not None:
            pol.update(core)
        yield core, prev, core.last_result


@pytest.fixture(scope="session")
def rollout():
    """`_rollout` (session-scoped, so hypothesis tests may use it)."""
    return _rollout
