"""The TorchRL env over batched markets passes torchrl's `check_env_specs`."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torchrl")

import torch  # noqa: E402
from torchrl.envs.utils import check_env_specs, step_mdp  # noqa: E402

from channelmarket import MarketCore  # noqa: E402
from channelmarket.envs.batch_core import market_seeds  # noqa: E402
from channelmarket.training.torchrl_env import ChannelMarketTorchRL  # noqa: E402


def test_check_env_specs_and_groups_by_kind():
    env = ChannelMarketTorchRL("energy_small", n_markets=3, seed=0)
    check_env_specs(env, seed=0)
    assert set(env.group_map) == {"solar", "wind", "storage", "consumer"}
    td = env.rollout(4)
    assert td.batch_size == torch.Size([3, 4])
    assert td["next", "solar", "reward"].shape[-2:] == (len(env.group_map["solar"]), 1)


def test_markets_match_the_array_api_and_partial_reset():
    env = ChannelMarketTorchRL("energy_small", n_markets=2, seed=4, episode_steps=3)
    td = env.reset()
    single = MarketCore("energy_small", episode_steps=3)
    ob = single.reset(seed=market_seeds(4, 2)[1])
    got = torch.cat([td[g, "observation"][1] for g in env.groups], dim=0).numpy()
    assert np.array_equal(got, ob)
    for _ in range(3):
        td = step_mdp(env.rand_step(td))
    assert td["done"].all()
    td["_reset"] = torch.tensor([[True], [False]])
    reset = env.reset(td)
    assert env.core.dones.tolist() == [False, True] and not reset["done"][0].item()

