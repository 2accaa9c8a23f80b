"""MASER farmer (supply_chain_v0): grows corn and needs no input; corn takes longest.

Declared for the supply-chain economy (`market="supply_chain"`); `envs.supply_chain` reads its
counts, production time, batch and labour cost from here. Every kind also buys food to live.
"""

from .base import Count, KindSpec, Param, Role

SPEC = KindSpec(
    name="farmer", order=0, market="supply_chain", role=Role.BOTH, sells=("corn",), buys=("food",),
    counts=(Count("n_farmer", 10),),
    params=(
        Param("farmer_production_days", 3, 1, 365, "num", "days one production cycle of corn takes"),
        Param("farmer_batch", 12, 1, 1e6, "num", "most corn units one cycle makes (one input unit each)"),
        Param("farmer_labour_cost", 1.5, 0.0, 1e6, "num", "money per unit added to the input cost (the price floor)"),
    ),
    traits=dict(produces="corn", input=None, colour="green"),
)
