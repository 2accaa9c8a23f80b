"""The supply-chain scenario: frozen, validated parameters of one MASER economy, and the presets.

The kinds' counts and production parameters (`n_farmer`, `farmer_production_days`, ...) and the
goods' prices and package sizes (`food_start_price`, `corn_package`, ...) are declared by the kind
and good modules (`envs/kinds/{farmer,miller,baker,seller}.py`, `envs/goods/{corn,...}.py`,
`market="supply_chain"`) and appended to the fields below, with the ranges they declare.

The paper's tables of initial conditions (Tables 2-7) are images that the text does not carry:
every number below is our choice, sized so that the closed loop can feed itself (a farmer makes
4 corn a day, the chain turns them 1:1 into food, every agent eats one portion a day) and so that
its parameters keep the paper's stated relations (corn takes longest; Sellers are few; a radius
that covers a fraction of the space; agent numbering Farmers 0-9, Millers 10-19, Bakers 20-29,
Sellers 30-32 as in the paper's figures, 1-based there). Units: days, space units, money units.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

from ..goods import market_goods
from ..kinds import market_kinds

KINDS = market_kinds("supply_chain")
GOODS = market_goods("supply_chain")
KIND_NAMES = tuple(k.name for k in KINDS)
GOOD_NAMES = tuple(g.name for g in GOODS)
_DECLARED = tuple(p for k in KINDS for p in k.params) + tuple(p for g in GOODS for p in g.params)
_COUNTS = tuple(c for k in KINDS for c in k.counts)
MAX_DAYS = 2 ** 24          # the slots' days and transactions are float32: whole numbers exact up to 2^24
MAX_LAPSE_DAYS = 32_766     # days out of range are int16 (a slot lapses the day after lapse_days)
REWARDS = ("profit", "stability")


def _declared_fields(cls):
    for c in _COUNTS:
        cls.__annotations__[c.field] = "int"
        setattr(cls, c.field, field(default=c.default))
    for p in _DECLARED:
        cls.__annotations__[p.field] = type(p.default).__name__
        setattr(cls, p.field, field(default=p.default))
    return cls


@dataclass(frozen=True)
@_declared_fields
class SupplyChainScenario:
    """Parameters of one supply-chain economy; every field is validated on construction."""

    name: str = "custom"
    # --- space and movement ------------------------------------------------------------
    width: float = 500.0              # the 2D rectangle
    height: float = 500.0
    radius: float = 120.0             # neighbourhood radius, the same for every agent (paper 4.2)
    max_speed: float = 50.0           # space units per day at full dissatisfaction
    inertia: float = 0.5              # share of yesterday's heading kept when moving on
    restless: float = 0.3             # probability scale of a satisfied risk-taker moving anyway (x r)
    # --- agents --------------------------------------------------------------------------
    r_range: tuple = (0.1, 0.3)       # risk factor drawn uniformly per agent
    initial_budget: float = 150.0     # money per agent at the start
    initial_food: int = 12            # free food portions per agent at the start
    seller_stock: int = 40            # food units each Seller starts with to sell (at the start price)
    vital_decay: float = 0.05         # vital energy lost per day
    work_energy: float = 0.02         # extra vital energy a producing day costs
    food_energy: float = 0.10         # vital energy one eaten portion restores (max 1)
    food_target: float = 4.0          # portions a restrained agent (r = 0) stocks; x (1.5 - r)
    input_batches: float = 1.5        # input stock an agent wants, in batches
    # --- relations -------------------------------------------------------------------------
    contacts: int = 32                # customer slots per agent (its list of customers)
    lapse_days: int = 5               # a contact out of range this many days lapses
    advertising: float = 0.8          # probability of resetting the "already offered" memory
    # --- episode ----------------------------------------------------------------------------
    days: int = 200
    reward: str = "profit"            # "profit" (own money gained) or "stability" (shared survival)
    death_penalty: float = 0.0        # subtracted from an agent's reward the day it dies
    shock_day: int = -1               # day a key agent (the best-connected Seller) is moved far away (-1: never)

    def __post_init__(self) -> None:
        def bad(name, value, allowed):
            raise ValueError(f"SupplyChainScenario.{name} = {value!r}; allowed: {allowed}")

        if not isinstance(self.name, str):
            bad("name", self.name, "a string")
        for p in _DECLARED:
            v = getattr(self, p.field)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not p.lo <= v <= p.hi:
                bad(p.field, v, f"a number in [{p.lo}, {p.hi}] ({p.doc})")
        for c in _COUNTS:
            v = getattr(self, c.field)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0 or v > 10_000_000:
                bad(c.field, v, "an integer in [0, 10000000]")
        if self.n_agents < 1:
            bad("n_farmer..n_seller", self.n_agents, "at least one agent in total")
        pos = ("width", "height", "radius", "food_energy")
        nonneg = ("max_speed", "vital_decay", "work_energy", "food_target", "input_batches", "death_penalty",
                  "initial_budget")
        unit = ("inertia", "restless", "advertising")
        for name in pos + nonneg + unit:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                bad(name, v, "a finite number")
            if name in pos and v <= 0:
                bad(name, v, "> 0")
            if name in nonneg and v < 0:
                bad(name, v, ">= 0")
            if name in unit and not 0.0 <= v <= 1.0:
                bad(name, v, "[0, 1]")
        r = self.r_range
        if (not isinstance(r, (tuple, list)) or len(r) != 2
                or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in r)
                or not 0.0 <= r[0] <= r[1] <= 1.0):
            bad("r_range", r, "(low, high) with 0 <= low <= high <= 1")
        object.__setattr__(self, "r_range", (float(r[0]), float(r[1])))
        # the slot arrays' dtypes bound two of them (`state.SupplyState`): days out of range are int16 (a slot
        # lapses after lapse_days), transactions and days of the slots' history float32 (whole numbers up to 2^24)
        for name, lo, hi in (("initial_food", 0, None), ("seller_stock", 0, None), ("contacts", 1, None),
                             ("lapse_days", 0, MAX_LAPSE_DAYS), ("days", 1, MAX_DAYS)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
                bad(name, v, f"an integer >= {lo}" if hi is None else f"an integer in [{lo}, {hi}]")
        if not isinstance(self.shock_day, int) or isinstance(self.shock_day, bool) or self.shock_day < -1:
            bad("shock_day", self.shock_day, "-1 (no shock) or a day >= 0")
        if self.reward not in REWARDS:
            bad("reward", self.reward, ", ".join(REWARDS))

    # ---- derived ----------------------------------------------------------------------------
    @property
    def n_agents(self) -> int:
        return sum(getattr(self, c.field) for c in _COUNTS)

    def counts(self) -> tuple[int, ...]:
        return tuple(k.count(self) for k in KINDS)

    def kind_param(self, what: str) -> tuple:
        """Per kind (registry order): `<kind>_<what>` (production_days, batch, labour_cost)."""
        return tuple(getattr(self, f"{k.name}_{what}") for k in KINDS)

    def good_param(self, what: str) -> tuple:
        """Per good (registry order): `<good>_<what>` (start_price, price_cap, package)."""
        return tuple(getattr(self, f"{g.name}_{what}") for g in GOODS)

    # ---- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {f.name: (list(getattr(self, f.name)) if isinstance(getattr(self, f.name), tuple)
                         else getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SupplyChainScenario":
        if not isinstance(data, dict):
            raise TypeError(f"supply-chain scenario data must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"supply-chain scenario: unknown field(s) {unknown}; allowed: {sorted(known)}")
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()}
        return cls(**kw)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def replace(self, **kw: Any) -> "SupplyChainScenario":
        return dataclasses.replace(self, **kw)


# One preset per experiment table of the paper (Tables 2-7); numbers chosen (see module docstring).
PRESETS: dict[str, dict] = {
    "maser_exp1": dict(days=200),                                              # Table 2: prices
    "maser_exp2": dict(width=600.0, height=600.0, radius=110.0, days=300),    # Table 3: arrangements
    "maser_exp3a": dict(r_range=(0.05, 0.25), days=1000),                     # Table 4: stable
    "maser_exp3b": dict(r_range=(0.75, 0.95), days=750),                      # Table 5: decay
    "maser_exp4": dict(n_seller=2, days=150, shock_day=40),                   # Table 6: key agent moved
    "maser_exp5": dict(days=250),                                             # Table 7: transactions
    "supply_chain_small": dict(n_farmer=4, n_miller=4, n_baker=4, n_seller=2, width=250.0, height=250.0,
                               days=60),
    # the benchmark: 10,000 agents at the density of maser_exp1 (about 6 neighbours each)
    "supply_chain_10k": dict(n_farmer=3000, n_miller=3000, n_baker=3000, n_seller=1000, width=8700.0,
                             height=8700.0, contacts=16, days=1000),
}


def make_scenario(scenario: "str | SupplyChainScenario | None" = None, **overrides: Any) -> SupplyChainScenario:
    """A preset by name, a scenario, or the default, with field overrides."""
    if scenario is None:
        base = SupplyChainScenario(name="maser_exp1", **PRESETS["maser_exp1"])
    elif isinstance(scenario, SupplyChainScenario):
        base = scenario
    elif isinstance(scenario, str):
        if scenario not in PRESETS:
            raise ValueError(f"supply-chain scenario = {scenario!r}; allowed: {', '.join(PRESETS)}")
        base = SupplyChainScenario(name=scenario, **PRESETS[scenario])
    else:
        raise TypeError(f"scenario = {scenario!r}; allowed: a preset name ({', '.join(PRESETS)}) or a "
                        "SupplyChainScenario")
    known = {f.name for f in fields(SupplyChainScenario)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"supply-chain scenario: unknown field(s) {unknown}; allowed: {sorted(known)}")
    return dataclasses.replace(base, **overrides) if overrides else base


__all__ = ["SupplyChainScenario", "PRESETS", "make_scenario", "KINDS", "GOODS", "KIND_NAMES", "GOOD_NAMES", "REWARDS",
           "MAX_DAYS", "MAX_LAPSE_DAYS"]
