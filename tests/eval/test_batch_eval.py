"""Seeds as the markets of one batch give the same episodes as separate runs."""

from __future__ import annotations

import numpy as np

from channelmarket import MarketCore
from channelmarket.eval.batch_eval import evaluate_seeds
from channelmarket.policies.base import Policy


class Reactive(Policy):
    """An observation-only policy (deterministic): acts on a few observation columns."""

    name = "reactive"

    def act(self, obs):
        o = np.asarray(obs, dtype=np.float64)
        return np.tanh(np.stack([o[:, 0] - o[:, 1], o[:, 2], o[:, 3] - 0.5, o[:, 4]], axis=1))


def test_batched_seeds_equal_separate_episodes():
    kw = dict(episode_steps=6)
    res = evaluate_seeds("energy_small", Reactive(), seeds=[3, 8], **kw)
    assert res["profit"].shape == (2, 12) and res["steps"] == 6
    for i, s in enumerate([3, 8]):
        core = MarketCore("energy_small", **kw)
        obs = core.reset(seed=s)
        pol = Reactive()
        total = np.zeros(core.n_agents)
        while not core.done:
            obs, r, *_ = core.step(pol.act(obs))
            total += r
        assert np.array_equal(res["profit"][i], total)
    assert set(res["by_kind"]) == {"solar", "wind", "storage", "consumer"}
