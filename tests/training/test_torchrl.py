"""TorchRL: `PettingZooWrapper` over `channel_market_v0`, one TorchRL group per agent kind (the
env's own `group_map`), passes `check_env_specs`, keeps every info (numeric, same keys from reset
and step) and the flat global state for centralized critics."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torchrl")

from torchrl.envs.libs.pettingzoo import PettingZooWrapper  # noqa: E402
from torchrl.envs.utils import check_env_specs  # noqa: E402

from channelmarket.envs import channel_market_v0  # noqa: E402


def make(**kw):
    pz = channel_market_v0.parallel_env(scenario="energy_small", episode_steps=8, **kw)
    return pz, PettingZooWrapper(pz, group_map=pz.group_map, use_mask=False, categorical_actions=False,
                                 done_on_any=False, return_state=True)


def test_grouped_by_kind_passes_check_env_specs():
    pz, env = make()
    assert env.group_map == pz.group_map and set(env.group_map) == {"solar", "wind", "storage", "consumer"}
    check_env_specs(env, seed=0)


def test_rollout_keeps_infos_rewards_and_state():
    pz, env = make(info_keys="trade")   # the breakdown fields in the infos (by default only the shock code)
    env.set_seed(0)
    td = env.rollout(8)
    low, high = pz.state_space.low, pz.state_space.high
    state = td["next", "state"].numpy()
    assert state.shape == (8,) + pz.state_space.shape and ((state >= low) & (state <= high)).all()
    for kind, agents in pz.group_map.items():
        info = td["next", kind, "info"]
        assert set(info.keys()) == set(pz.info_keys)                    # nothing dropped
        assert info["revenue"].shape == (8, len(agents))
        reward = td["next", kind, "reward"].numpy()
        assert reward.shape == (8, len(agents), 1) and np.isfinite(reward).all()
    assert td["next", "truncated"][-1].all()                            # the episode ends at episode_steps
