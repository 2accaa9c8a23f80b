"""MASER food (supply_chain_v0): sold by sellers to every kind; eating it restores vital energy.

Price bounds [0, `food_price_cap`] and the starting price level `food_start_price` (money per
unit); trades are whole packages of `food_package` units. Declared for the supply-chain economy.
"""

from ..kinds.base import Param
from .base import GoodSpec


def price_bounds(sc):
    return 0.0, float(sc.food_price_cap)


def level(sc, hour=0.0):
    return float(sc.food_start_price)


SPEC = GoodSpec(
    name="food", order=3, unit="unit", market="supply_chain",
    params=(
        Param("food_start_price", 5.6, 0.0, 1e6, "num", "money per unit at the start (first cycles' cost basis)"),
        Param("food_price_cap", 8.0, 1e-6, 1e6, "num", "highest price per unit anyone offers or accepts"),
        Param("food_package", 2, 1, 1e6, "num", "units per package: the granularity of trades"),
    ),
    price_bounds=price_bounds, level=level, span=lambda sc: float(sc.food_price_cap),
)
