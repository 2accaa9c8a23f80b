"""The MASER supply-chain economy (`supply_chain_v0`) on the channelmarket engine.

Four producer kinds in a closed loop (farmer -> corn -> miller -> flour -> baker -> bread ->
seller -> food -> everyone), on a 2D rectangle, after Krolikowski, Kopys and Jedruch (2016).
Modules: `scenario` (fields, presets), `space` (neighbourhood queries), `movement`, `production`,
`protocol` (offers, answers, sales), `state`, `core` (array API), `env` (PettingZoo).
"""

from .core import SupplyChainCore
from .scenario import PRESETS, SupplyChainScenario, make_scenario

__all__ = ["SupplyChainCore", "SupplyChainScenario", "PRESETS", "make_scenario"]
