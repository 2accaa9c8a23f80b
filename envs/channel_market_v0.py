"""`channel_market_v0`: the energy market over payment channels, versioned (a change in dynamics bumps it).

    from channelmarket import channel_market_v0
    par = channel_market_v0.parallel_env(n_agents=200)   # PettingZoo ParallelEnv
    aec = channel_market_v0.env()                        # AEC, via the standard conversion

The spec (spaces, reward, episode end, arguments) is the docstring of `ChannelMarketEnv`.
"""

from pettingzoo.utils.conversions import parallel_to_aec

from .channel_market import ChannelMarketEnv

raw_env = ChannelMarketEnv


def parallel_env(**kwargs) -> ChannelMarketEnv:
    return ChannelMarketEnv(**kwargs)


def env(**kwargs):
    return parallel_to_aec(ChannelMarketEnv(**kwargs))


__all__ = ["env", "parallel_env", "raw_env", "ChannelMarketEnv"]
