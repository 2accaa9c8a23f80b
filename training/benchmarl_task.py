"""The market as a BenchMARL task: `ChannelMarketTask` (a BenchMARL `Task` enum) and its
`TaskClass`, so IPPO, MAPPO and BenchMARL's other continuous-action algorithms train on it as on
its bundled tasks. One TorchRL group per agent kind (the env's `group_map`), the flat global state
as the centralized critic's `state` (MAPPO), every info kept.

    from benchmarl.algorithms import MappoConfig
    from benchmarl.experiment import Experiment, ExperimentConfig
    from benchmarl.models.mlp import MlpConfig
    from channelmarket.training.benchmarl_task import market_task

    Experiment(task=market_task("energy_small", episode_steps=24), algorithm_config=MappoConfig.get_from_yaml(),
               model_config=MlpConfig.get_from_yaml(), critic_model_config=MlpConfig.get_from_yaml(),
               seed=0, config=ExperimentConfig.get_from_yaml()).run()

BenchMARL pins torchrl (1.5.x: torchrl 0.11), older than the TorchRL of the main environment, so
it lives in its own environment: `make test-benchmarl` builds `.venv-benchmarl` (torch 2.13.0 CPU
first) and runs tests/training/test_torchrl_benchmarl.py there. Nothing in the package imports this
module: importing it is what needs BenchMARL.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Dict, List, Optional

from benchmarl.environments.common import Task, TaskClass
from torchrl.data import Composite
from torchrl.envs import EnvBase
from torchrl.envs.libs.pettingzoo import PettingZooWrapper

from ..envs import channel_market_v0


def make_torchrl_env(config: Dict[str, Any], seed: Optional[int] = None, device: Any = "cpu") -> EnvBase:
    """TorchRL's `PettingZooWrapper` over `channel_market_v0.parallel_env(**config)`, grouped by kind."""
    pz = channel_market_v0.parallel_env(**config)
    return PettingZooWrapper(pz, group_map=pz.group_map, use_mask=False, categorical_actions=False,
                             done_on_any=False, return_state=True, seed=seed, device=device)


class ChannelMarketClass(TaskClass):
    """How BenchMARL builds the market: config = `parallel_env` keywords (scenario, episode_steps, ...)."""

    def get_env_fun(self, num_envs: int, continuous_actions: bool, seed: Optional[int],
                    device: Any) -> Callable[[], EnvBase]:
        config = copy.deepcopy(self.config)
        return lambda: make_torchrl_env(config, seed=seed, device=device)

    def supports_continuous_actions(self) -> bool:
        return True

    def supports_discrete_actions(self) -> bool:
        return False

    def has_render(self, env: EnvBase) -> bool:
        return False

    def max_steps(self, env: EnvBase) -> int:
        return int(env._env.scenario.episode_steps)

    def group_map(self, env: EnvBase) -> Dict[str, List[str]]:
        return env.group_map

    def _only(self, env: EnvBase, key: str) -> Composite:
        spec = env.observation_spec.clone()
        for group in self.group_map(env):
            for k in list(spec[group].keys()):
                if k != key:
                    del spec[group][k]
        if "state" in spec.keys():
            del spec["state"]
        return spec

    def observation_spec(self, env: EnvBase) -> Composite:
        return self._only(env, "observation")

    def info_spec(self, env: EnvBase) -> Optional[Composite]:
        return self._only(env, "info")

    def state_spec(self, env: EnvBase) -> Optional[Composite]:
        return Composite({"state": env.observation_spec["state"].clone()})

    def action_mask_spec(self, env: EnvBase) -> Optional[Composite]:
        return None

    def action_spec(self, env: EnvBase) -> Composite:
        return env.full_action_spec

    @staticmethod
    def env_name() -> str:
        return "channelmarket"


class ChannelMarketTask(Task):
    """The market's presets as BenchMARL tasks; `get_task(config={...})` takes parallel_env keywords."""

    ENERGY_SMALL = None
    ENERGY_DEFAULT = None
    ENERGY_EV = None

    @staticmethod
    def associated_class():
        return ChannelMarketClass


def market_task(scenario: str = "energy_small", **overrides: Any) -> ChannelMarketClass:
    """A ready task: the preset `scenario` (or a scenario file) with any parallel_env keywords."""
    name = scenario.upper() if scenario.upper() in ChannelMarketTask.__members__ else "ENERGY_SMALL"
    return ChannelMarketTask[name].get_task(config={"scenario": scenario, **overrides})


__all__ = ["ChannelMarketClass", "ChannelMarketTask", "market_task", "make_torchrl_env"]
