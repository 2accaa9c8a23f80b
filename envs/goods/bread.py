"""MASER bread (supply_chain_v0): baked by bakers, turned into food by sellers.

Price bounds [0, `bread_price_cap`] and the starting price level `bread_start_price` (money per
unit); trades are whole packages of `bread_package` units. Declared for the supply-chain economy.
"""

from ..kinds.base import Param
from .base import GoodSpec


def price_bounds(sc):
    return 0.0, float(sc.bread_price_cap)


def level(sc, hour=0.0):
    return float(sc.bread_start_price)


SPEC = GoodSpec(
    name="bread", order=2, unit="unit", market="supply_chain",
    params=(
        Param("bread_start_price", 5.0, 0.0, 1e6, "num", "money per unit at the start (first cycles' cost basis)"),
        Param("bread_price_cap", 9.5, 1e-6, 1e6, "num", "highest price per unit anyone offers or accepts"),
        Param("bread_package", 4, 1, 1e6, "num", "units per package: the granularity of trades"),
    ),
    price_bounds=price_bounds, level=level, span=lambda sc: float(sc.bread_price_cap),
)
