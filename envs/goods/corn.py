"""MASER corn (supply_chain_v0): grown by farmers, milled by millers.

Price bounds [0, `corn_price_cap`] and the starting price level `corn_start_price` (money per
unit); trades are whole packages of `corn_package` units. Declared for the supply-chain economy.
"""

from ..kinds.base import Param
from .base import GoodSpec


def price_bounds(sc):
    return 0.0, float(sc.corn_price_cap)


def level(sc, hour=0.0):
    return float(sc.corn_start_price)


SPEC = GoodSpec(
    name="corn", order=0, unit="unit", market="supply_chain",
    params=(
        Param("corn_start_price", 2.0, 0.0, 1e6, "num", "money per unit at the start (first cycles' cost basis)"),
        Param("corn_price_cap", 4.5, 1e-6, 1e6, "num", "highest price per unit anyone offers or accepts"),
        Param("corn_package", 4, 1, 1e6, "num", "units per package: the granularity of trades"),
    ),
    price_bounds=price_bounds, level=level, span=lambda sc: float(sc.corn_price_cap),
)
