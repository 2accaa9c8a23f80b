"""The two economies a tournament runs: which market a scenario or a population belongs to, the
supply chain's mechanism and shock settings, and populations over either market's kinds.

Part of the settings layer of the evaluation pipeline (settings -> jobs -> runs -> statistics ->
report): everything here is checked before any job runs.

- The energy market (`channel_market_v0`: `envs.scenario.Scenario`): kinds solar, wind, storage,
  consumer, ev (and their aliases), its clearing mechanisms and shock settings (`eval.settings`).
- The supply chain (`supply_chain_v0`: `SupplyChainScenario`, presets maser_exp1 ...
  supply_chain_small): kinds farmer, miller, baker, seller; one mechanism, its own offers and
  answers (`MECHANISM` = "maser"); shock settings "scenario" (its `shock_day`), "none" or
  "move_key@DAY" (the key Seller moved far away on DAY, experiment 4); the policy spec `maser`
  (`BUILTIN_POLICY`) leaves agents to the market's own MASER rules.

Kind words resolve against the energy market first (its aliases win: "sellers" are solar, wind,
storage and ev), then against the supply chain ("seller", "millers", ...).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Iterable, Sequence

from ..envs.kinds import market_kinds
from ..envs.state import KIND_NAMES
from ..envs.state import resolve_kinds as _resolve_energy_kinds
from ..envs.supply_chain.scenario import SupplyChainScenario

SUPPLY_CHAIN_KINDS = tuple(k.name for k in market_kinds("supply_chain"))
MARKETS = {"energy": KIND_NAMES, "supply_chain": SUPPLY_CHAIN_KINDS}
BUILTIN_POLICY = "maser"        # supply chain only: the market's own agents act (no policy object)
EQUILIBRIUM_POLICY = "mean_field"   # energy only: the mean-field equilibrium of the energy market
MECHANISM = "maser"             # the supply chain's offers and answers (MASER's two-step protocol)
SHOCK_FORMS = ("scenario", "none", "move_key@DAY")


def is_supply_chain(scenario: Any) -> bool:
    return isinstance(scenario, SupplyChainScenario)


def market_of(scenario: Any) -> str:
    """'supply_chain' or 'energy'."""
    return "supply_chain" if is_supply_chain(scenario) else "energy"


# ---- kinds -------------------------------------------------------------------------------------------

def _supply_chain_kind(word: str) -> "str | None":
    w = word.strip().lower()
    w = w[:-1] if w.endswith("s") and w[:-1] in SUPPLY_CHAIN_KINDS else w
    return w if w in SUPPLY_CHAIN_KINDS else None


def resolve_kinds(kinds: "str | Iterable[str]") -> tuple[str, ...]:
    """Kind names (in `KIND_NAMES` order, no duplicates) from names, aliases or a comma list; else the
    supply chain's kinds (in its order) when every word names one of them."""
    try:
        return _resolve_energy_kinds(kinds, what="kinds")
    except ValueError as exc:
        items = [p for p in re.split(r"[,+\s]+", kinds) if p] if isinstance(kinds, str) else list(kinds)
        if items and all(isinstance(i, str) and _supply_chain_kind(i) for i in items):
            got = {_supply_chain_kind(i) for i in items}
            return tuple(k for k in SUPPLY_CHAIN_KINDS if k in got)
        raise ValueError(f"{exc}; or the supply chain's kinds: {', '.join(SUPPLY_CHAIN_KINDS)}") from None


def kinds_market(kinds: Sequence[str]) -> str:
    """'supply_chain' when `kinds` are the supply chain's, else 'energy'."""
    return "supply_chain" if kinds and all(k in SUPPLY_CHAIN_KINDS for k in kinds) else "energy"


def market_population(spec: Any, market: str) -> Any:
    """A population spec (`eval.populations.PopulationSpec`) for the kinds of `market`: slots covering
    every energy kind (`homogeneous`) cover every kind of either market; ValueError naming the
    population when a slot names kinds of the other market or `maser` would run on the energy market."""
    names = MARKETS[market]
    slots = []
    for s in spec.slots:
        if s.policy == BUILTIN_POLICY and market != "supply_chain":
            raise ValueError(f"population {spec.name!r}: policy {BUILTIN_POLICY!r} (the MASER agents) runs on "
                             "supply-chain scenarios only")
        if s.policy == EQUILIBRIUM_POLICY and market != "energy":
            raise ValueError(f"population {spec.name!r}: policy {EQUILIBRIUM_POLICY!r} (the energy market's "
                             "mean-field equilibrium) runs on energy scenarios only")
        if market == "supply_chain" and set(KIND_NAMES) <= set(s.kinds):
            s = replace(s, kinds=SUPPLY_CHAIN_KINDS)
        other = [k for k in s.kinds if k not in names]
        if other:
            raise ValueError(f"population {spec.name!r}: kinds {', '.join(other)} are not kinds of the {market} "
                             f"market; allowed: {', '.join(names)} (or every agent: a homogeneous population)")
        slots.append(s)
    return replace(spec, slots=tuple(slots))


def runs_on(spec: Any, scenario: Any) -> bool:
    """Whether a population runs on a scenario's market: its kinds are that market's (or it is
    homogeneous), `maser` only on the supply chain, one with its own (energy) shock setting only on
    the energy market."""
    if is_supply_chain(scenario) and spec.shocks:
        return False
    try:
        market_population(spec, market_of(scenario))
    except ValueError:
        return False
    return True


# ---- the supply chain's cells -----------------------------------------------------------------------------

def supply_chain_shocks(sc: SupplyChainScenario, setting: str) -> SupplyChainScenario:
    """The scenario under a shock setting; ValueError naming the setting and the allowed forms."""
    s = setting.strip()
    if s == "scenario":
        return sc
    if s == "none":
        return sc.replace(shock_day=-1)
    if s.startswith("move_key@"):
        try:
            day = int(s.split("@", 1)[1])
        except ValueError:
            day = -1
        if 0 <= day < sc.days:
            return sc.replace(shock_day=day)
    raise ValueError(f"shock setting {setting!r} on supply-chain scenario {sc.name!r}; allowed: "
                     f"{', '.join(SHOCK_FORMS)} with 0 <= DAY < {sc.days}")


def supply_chain_mechanism(mechanism: "str | None") -> str:
    """`MECHANISM`; ValueError for another name."""
    if mechanism not in (None, MECHANISM):
        raise ValueError(f"mechanism {mechanism!r} on a supply-chain scenario; allowed: {MECHANISM!r}")
    return MECHANISM


__all__ = ["SUPPLY_CHAIN_KINDS", "MARKETS", "BUILTIN_POLICY", "MECHANISM", "SHOCK_FORMS", "is_supply_chain",
           "market_of", "resolve_kinds", "kinds_market", "market_population", "runs_on", "supply_chain_shocks",
           "supply_chain_mechanism"]
