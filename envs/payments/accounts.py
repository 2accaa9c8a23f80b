"""Booking the payment layer's money into a step's per-agent breakdown (in place).

Routing fees earned forwarding others' payments are income (`routing_fees` column and profit);
the costs of keeping channels liquid (rebalancing fees, splice fees) are costs (`cost` and
profit). A leaf module: settlement and the payment layer both book through it.
"""

from __future__ import annotations

import numpy as np

from ..breakdown import BREAKDOWN_INDEX

_PROFIT, _COST, _FEES = BREAKDOWN_INDEX["profit"], BREAKDOWN_INDEX["cost"], BREAKDOWN_INDEX["routing_fees"]


def credit_fees(breakdown: np.ndarray, earned: np.ndarray) -> None:
    """Add routing fees earned as an intermediary to the `routing_fees` column and the profit."""
    breakdown[:, _FEES] += earned
    breakdown[:, _PROFIT] += earned


def charge(breakdown: np.ndarray, amount: np.ndarray) -> None:
    """Book a cost of running channels (rebalancing fees, splice fees) into cost and profit."""
    breakdown[:, _COST] += amount
    breakdown[:, _PROFIT] -= amount


__all__ = ["credit_fees", "charge"]
