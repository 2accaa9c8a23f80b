"""MASER flour (supply_chain_v0): milled by millers, baked by bakers.

Price bounds [0, `flour_price_cap`] and the starting price level `flour_start_price` (money per
unit); trades are whole packages of `flour_package` units. Declared for the supply-chain economy.
"""

from ..kinds.base import Param
from .base import GoodSpec


def price_bounds(sc):
    return 0.0, float(sc.flour_price_cap)


def level(sc, hour=0.0):
    return float(sc.flour_start_price)


SPEC = GoodSpec(
    name="flour", order=1, unit="unit", market="supply_chain",
    params=(
        Param("flour_start_price", 3.3, 0.0, 1e6, "num", "money per unit at the start (first cycles' cost basis)"),
        Param("flour_price_cap", 7.0, 1e-6, 1e6, "num", "highest price per unit anyone offers or accepts"),
        Param("flour_package", 4, 1, 1e6, "num", "units per package: the granularity of trades"),
    ),
    price_bounds=price_bounds, level=level, span=lambda sc: float(sc.flour_price_cap),
)
