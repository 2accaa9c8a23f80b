"""`supply_chain_v0`: the MASER production loop (Krolikowski, Kopys and Jedruch, 2016) on the
channelmarket engine, versioned (a change in dynamics bumps it).

    from channelmarket import supply_chain_v0
    par = supply_chain_v0.parallel_env(scenario="maser_exp1")   # PettingZoo ParallelEnv
    aec = supply_chain_v0.env()                                 # AEC, via the standard conversion
    core = supply_chain_v0.SupplyChainCore("supply_chain_10k")  # the array API

Four producer kinds in a closed loop (Farmer grows corn; Miller mills it into flour; Baker bakes
bread; Seller makes food and sells it to everyone; every agent eats food to live) on a 2D
rectangle: neighbourhood queries through a uniform grid, movement in three phases (prospect, stay
or move, direction and speed), production with per-kind times, cheapest inputs first and a vital
energy cost, daily decay of vital energy restored only by food, death (PettingZoo termination);
trading by the two-step offer/answer protocol of the paper's Table 1 with the risk-factor rules
(`envs.risk_rules`): cost + risk margin, regular-customer rates, the purchase IF-chain, the
highest accepted price wins, the advertising factor, budgets, package sizes, transaction history.
Kinds and goods are declared in the engine's registries (`envs/kinds/{farmer,miller,baker,seller}.py`,
`envs/goods/{corn,flour,bread,food}.py`, `market="supply_chain"`). Presets: one per experiment table
of the paper (`maser_exp1` ... `maser_exp5`, `maser_exp3a` stable / `maser_exp3b` decay), plus
`supply_chain_small` (tests) and `supply_chain_10k` (benchmark). The paper's tables are images the
text does not carry: every number is ours (`envs.supply_chain.scenario`). The spec of spaces,
reward and episode end is the docstring of `SupplyChainEnv`.
"""

from pettingzoo.utils.conversions import parallel_to_aec

from .supply_chain.core import SupplyChainCore
from .supply_chain.env import SupplyChainEnv
from .supply_chain.scenario import PRESETS, SupplyChainScenario

raw_env = SupplyChainEnv


def parallel_env(**kwargs) -> SupplyChainEnv:
    return SupplyChainEnv(**kwargs)


def env(**kwargs):
    return parallel_to_aec(SupplyChainEnv(**kwargs))


__all__ = ["env", "parallel_env", "raw_env", "SupplyChainEnv", "SupplyChainCore", "SupplyChainScenario", "PRESETS"]
