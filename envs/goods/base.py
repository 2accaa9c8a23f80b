"""What a good declares: `GoodSpec`.

    price_bounds(sc) -> (low, high)       EUR per unit; the reference price stays within
    level(sc, hour) -> float              the price level its reference price reverts to
    span(sc) -> float                     EUR an ask/bid action of +-1 moves the opening price
    roles(sc, agents) -> (sells [N] bool, buys [N] bool, reserve [N], limit [N])
    tradable(sc, agents, state, g) -> (sellable [N], needed [N])   units this interval
    book(sc, agents, state, g, energy_breakdown, holdings, owed, issued) -> None
                                          after energy's settlement (issue certificates, grow
                                          obligations); arrays are fresh, written in place
    end(sc, agents, state, g, holdings, owed, retired, wallet, breakdown) -> float
                                          at the episode's end (retire, penalties); EUR the grid
                                          account gains
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True, eq=False)
class GoodSpec:
    name: str
    order: int
    unit: str = "MWh"
    params: tuple = ()                              # kinds.base.Param: scenario fields of the good
    presets: dict = field(default_factory=dict)     # preset name -> Scenario field overrides
    price_bounds: Callable | None = None
    level: Callable | None = None
    span: Callable | None = None
    roles: Callable | None = None
    tradable: Callable | None = None
    book: Callable | None = None
    end: Callable | None = None
    doc: Any = ""
    market: str = "energy"                          # the economy the good is traded in
