"""The market: state, physics, channels, clearing, price dynamics, shocks and the env faces.

Imports here need only numpy, gymnasium and pettingzoo (matplotlib lazily, for rendering).
"""

from .core import MarketCore
from .observations import N_OBS, OBS_FIELDS, OBS_NAMES
from .offers import ACTION_FIELDS, N_ACTIONS
from .scenario import DEFAULT_SCENARIO, MECHANISMS, PRESETS, Scenario, get_scenario
from .settlement import BREAKDOWN_FIELDS
from .shocks import SHOCK_NAMES, Shock, ShockEvent
from .state import KIND_NAMES, AgentParams, Kind, MarketState

__all__ = [
    "MarketCore", "Scenario", "PRESETS", "DEFAULT_SCENARIO", "MECHANISMS", "get_scenario",
    "Shock", "ShockEvent", "SHOCK_NAMES", "Kind", "KIND_NAMES", "AgentParams", "MarketState",
    "OBS_FIELDS", "OBS_NAMES", "N_OBS", "ACTION_FIELDS", "N_ACTIONS", "BREAKDOWN_FIELDS",
]
