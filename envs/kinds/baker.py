"""MASER baker (supply_chain_v0): bakes flour into bread.

Declared for the supply-chain economy (`market="supply_chain"`); `envs.supply_chain` reads its
counts, production time, batch and labour cost from here. Every kind also buys food to live.
"""

from .base import Count, KindSpec, Param, Role

SPEC = KindSpec(
    name="baker", order=2, market="supply_chain", role=Role.BOTH, sells=("bread",), buys=("flour", "food"),
    counts=(Count("n_baker", 10),),
    params=(
        Param("baker_production_days", 1, 1, 365, "num", "days one production cycle of bread takes"),
        Param("baker_batch", 6, 1, 1e6, "num", "most bread units one cycle makes (one input unit each)"),
        Param("baker_labour_cost", 0.6, 0.0, 1e6, "num", "money per unit added to the input cost (the price floor)"),
    ),
    traits=dict(produces="bread", input='flour', colour="red"),
)
