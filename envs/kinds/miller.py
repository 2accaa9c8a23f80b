"""MASER miller (supply_chain_v0): mills corn into flour.

Declared for the supply-chain economy (`market="supply_chain"`); `envs.supply_chain` reads its
counts, production time, batch and labour cost from here. Every kind also buys food to live.
"""

from .base import Count, KindSpec, Param, Role

SPEC = KindSpec(
    name="miller", order=1, market="supply_chain", role=Role.BOTH, sells=("flour",), buys=("corn", "food"),
    counts=(Count("n_miller", 10),),
    params=(
        Param("miller_production_days", 1, 1, 365, "num", "days one production cycle of flour takes"),
        Param("miller_batch", 6, 1, 1e6, "num", "most flour units one cycle makes (one input unit each)"),
        Param("miller_labour_cost", 0.6, 0.0, 1e6, "num", "money per unit added to the input cost (the price floor)"),
    ),
    traits=dict(produces="flour", input='corn', colour="gold"),
)
