"""The registry of goods: every module of this package that defines `SPEC` is a good.

Energy (order 0) is the good the step pipeline was built around: its offers, clearing,
settlement with the grid and storage are the core's. Every further good a scenario lists in
`Scenario.goods` (renewable-energy certificates, `rec`) is traded over the same channels with
the same action row, cleared by the scenario's mechanism good by good after energy (so a
channel's balance carries over from one good's payments to the next), and kept as a stock per
agent (`MarketState.holdings`). A good declares its scenario fields, price bounds and level,
who sells and buys it, what they can sell / need, and its booking (issue, obligations, the
episode's end). Adding a good is one module here. Goods belong to one economy (`GoodSpec.market`): `GOOD_SPECS`
are the energy market's; `market_goods("supply_chain")` the MASER chain's corn, flour, bread, food.
"""

from __future__ import annotations

from ..plugins import declared_specs
from .base import GoodSpec


ALL_GOODS: tuple[GoodSpec, ...] = tuple(declared_specs(__name__, __path__, GoodSpec))


def market_goods(market: str) -> tuple[GoodSpec, ...]:
    """The goods of economy `market`, in registry order."""
    specs = tuple(s for s in ALL_GOODS if s.market == market)
    if not specs:
        raise ValueError(f"market = {market!r}; allowed: {', '.join(sorted({s.market for s in ALL_GOODS}))}")
    return specs


def _discover() -> tuple[GoodSpec, ...]:
    specs = list(market_goods("energy"))
    if [s.order for s in specs][:1] != [0] or specs[0].name != "energy":
        raise RuntimeError("goods: energy must be registered with order 0")
    return tuple(specs)


GOOD_SPECS: tuple[GoodSpec, ...] = _discover()
GOOD_NAMES: tuple[str, ...] = tuple(s.name for s in GOOD_SPECS)
BY_NAME: dict[str, GoodSpec] = {s.name: s for s in GOOD_SPECS}
PARAMS = tuple(p for s in GOOD_SPECS for p in s.params)
PRESETS: dict[str, dict] = {name: dict(kw) for s in GOOD_SPECS for name, kw in s.presets.items()}


def scenario_goods(sc) -> tuple[GoodSpec, ...]:
    """The specs of the goods scenario `sc` trades, in its order (energy first)."""
    return tuple(BY_NAME[g] for g in sc.goods)


__all__ = ["ALL_GOODS", "market_goods", "GoodSpec", "GOOD_SPECS", "GOOD_NAMES", "BY_NAME", "PARAMS", "PRESETS", "scenario_goods"]
