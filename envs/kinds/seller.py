"""MASER seller (supply_chain_v0): turns bread into food and sells it to every kind.

Declared for the supply-chain economy (`market="supply_chain"`); `envs.supply_chain` reads its
counts, production time, batch and labour cost from here. Every kind also buys food to live.
"""

from .base import Count, KindSpec, Param, Role

SPEC = KindSpec(
    name="seller", order=3, market="supply_chain", role=Role.BOTH, sells=("food",), buys=("bread", "food"),
    counts=(Count("n_seller", 3),),
    params=(
        Param("seller_production_days", 1, 1, 365, "num", "days one production cycle of food takes"),
        Param("seller_batch", 15, 1, 1e6, "num", "most food units one cycle makes (one input unit each)"),
        Param("seller_labour_cost", 0.2, 0.0, 1e6, "num", "money per unit added to the input cost (the price floor)"),
    ),
    traits=dict(produces="food", input='bread', colour="blue"),
)
