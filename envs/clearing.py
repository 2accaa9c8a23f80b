"""Clearing: turn offers into trades with the scenario's mechanism.

The mechanisms are plug-ins (`envs.mechanisms`: `bilateral`, `double_auction`, `eps_auction`,
one module each); this step asks the registry for the scenario's and runs its `clear`. Every
mechanism returns `Trades` (`envs.trades`); none draws random numbers.
"""

from __future__ import annotations

from . import mechanisms
from .offers import Offers
from .scenario import Scenario
from .state import AgentParams, MarketState
from .trades import Trades


def clear(sc: Scenario, agents: AgentParams, state: MarketState, offers: Offers) -> Trades:
    """The trades of the scenario's clearing mechanism."""
    return mechanisms.get(sc.mechanism).clear(sc, agents, state, offers)


__all__ = ["clear"]
