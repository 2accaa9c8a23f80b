"""Tianshou: its `PettingZooEnv` wrapper over the AEC face runs whole episodes, and every transition
(infos included: the same numeric keys from reset and step) goes into a `ReplayBuffer` without a
`MalformedBufferError`."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tianshou")

from tianshou.data import Batch, ReplayBuffer  # noqa: E402
from tianshou.env import PettingZooEnv  # noqa: E402

from channelmarket.envs import channel_market_v0  # noqa: E402


def test_tianshou_wrapper_fills_a_replay_buffer_with_infos():
    env = PettingZooEnv(channel_market_v0.env(scenario="energy_small", episode_steps=4, info_keys="trade"))
    buf = ReplayBuffer(size=200)
    rng = np.random.default_rng(0)
    obs, info = env.reset(seed=0)
    keys = set(info)
    steps = 0
    while True:
        act = rng.uniform(-1, 1, 4).astype(np.float32)
        nxt, rew, term, trunc, info = env.step(act)
        assert set(info) == keys                                  # the same keys from reset and step
        buf.add(Batch(obs=obs["obs"], act=act, rew=float(rew[env.agent_idx[obs["agent_id"]]]), terminated=term,
                      truncated=trunc, obs_next=nxt["obs"], info=info))
        obs, steps = nxt, steps + 1
        if term or trunc:
            break
    assert steps >= 12 * 4 and len(buf) == steps
    assert np.isfinite(buf.info["revenue"][:len(buf)]).all() and buf.info["shock"].dtype.kind in "if"
