"""`channel_market_v1`: the sound Lightning market, the same env class as v0 with `SOUND_MARKET` defaults.

    from channelmarket.envs import channel_market_v1
    par = channel_market_v1.parallel_env()                     # energy_lightning, 100 agents
    par = channel_market_v1.parallel_env(scenario="energy_10k") # any scenario, made sound
    aec = channel_market_v1.env()

The spec (spaces, reward, episode end, infos, checkpoints, arguments) is the docstring of
`ChannelMarketEnv`; v1 differs in dynamics only: every scenario it is given gets the
`envs.scenario.SOUND_MARKET` overrides (a field given as a keyword wins), so by default

- channels join a seller and a buyer (`topology="kind_aware"`), sized at `channel_sizing_steps`
  steps of their larger endpoint's expected spend (`channel_sizing="spend"`), and half of the
  reopenings go to the opener's regular partner (`partner_channel_share=0.5`);
- grid bills settle on an energy account apart from the on-chain wallet that funds channels
  (`grid_billing="energy_account"`), unserved energy costs `value_of_lost_load` (3000 EUR/MWh)
  and every P2P MWh carries a `network_charge` (10 EUR/MWh) to the network operator; rewards
  carry both, and `eval.welfare` / `eval.optimum` price them the same way;
- the eps-auction mechanism settles at the auction's prices (`auction_pricing="auction"`);
- plus the payment layer's fields once they land (routing, rebalancing, faults).

`parallel_env(scenario=..., topology="scale_free")` etc. override single fields;
`scenario="seed000"` with `topology="random"` runs the seed's own dynamics.

## Version history
- infos revision (issue 12): per-agent infos hold the shock code only by default; `info_keys="trade"`
  gives the seven fields they held before (`ChannelMarketEnv`'s version history).
- v1: the sound Lightning market (issue 10): SOUND_MARKET defaults, the `energy_lightning` preset.
- v0: first release (`channel_market_v0`, the legacy dynamics).
"""

from __future__ import annotations

from typing import Any

from pettingzoo.utils.conversions import parallel_to_aec

from .channel_market import ChannelMarketEnv
from .scenario import SOUND_MARKET, get_scenario

DEFAULT_SCENARIO = "energy_lightning"


class ChannelMarketV1(ChannelMarketEnv):
    """`ChannelMarketEnv` with the sound market's fields (`SOUND_MARKET`) under any keyword overrides."""

    metadata = dict(ChannelMarketEnv.metadata, name="channel_market_v1")

    def __init__(self, scenario: Any = None, **kwargs: Any) -> None:
        sound = {k: v for k, v in SOUND_MARKET.items() if k not in kwargs}   # a keyword wins
        sc = get_scenario(DEFAULT_SCENARIO if scenario is None else scenario)
        super().__init__(sc.replace(**sound), **kwargs)


raw_env = ChannelMarketV1


def parallel_env(**kwargs: Any) -> ChannelMarketV1:
    return ChannelMarketV1(**kwargs)


def env(**kwargs: Any):
    return parallel_to_aec(ChannelMarketV1(**kwargs))


__all__ = ["env", "parallel_env", "raw_env", "ChannelMarketV1", "SOUND_MARKET"]
