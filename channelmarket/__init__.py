"""channelmarket: a multi-agent RL environment of a decentralized peer-to-peer market over
Lightning-style payment channels.

    from channelmarket import channel_market_v0
    env = channel_market_v0.parallel_env(n_agents=200)
"""

from ._version import __version__
from .envs import channel_market_v0, channel_market_v1
from .envs.core import MarketCore
from .envs.scenario import PRESETS, Scenario
from .gym_ids import register_envs

register_envs()  # Gymnasium ids (`gym_ids`): gymnasium.make("channelmarket/SingleAgentMarket-v0")



def __getattr__(name: str):
    """`supply_chain_v0` (the MASER economy) imports on first use."""
    if name == "supply_chain_v0":
        from .envs import supply_chain_v0

        return supply_chain_v0
    raise AttributeError(f"module 'channelmarket' has no attribute {name!r}")


__all__ = ["__version__", "channel_market_v0", "channel_market_v1", "supply_chain_v0", "MarketCore", "Scenario", "PRESETS"]
