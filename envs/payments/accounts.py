"""Booking the payment layer's money into a step's per-agent breakdown (in place).

Routing fees earned forwarding others' payments are income (`routing_fees` column and profit);
the costs of keeping channels liquid (rebalancing fees, splice fees) are costs (`cost` and
profit). A leaf module: the payment layer books through it, and settlement's booking pass
(`kernels.book_agents`) credits the fees the same way (its twin calls `credit_numpy`). Crediting is one
compiled pass over the agents' rows (two strided NumPy column updates cost about four times as
much at 10,000 agents).
"""

from __future__ import annotations

import numpy as np

from ..breakdown import BREAKDOWN_INDEX
from ..compiled import jit, register

_PROFIT, _COST, _FEES = BREAKDOWN_INDEX["profit"], BREAKDOWN_INDEX["cost"], BREAKDOWN_INDEX["routing_fees"]


def credit_numpy(breakdown, earned):
    """`breakdown` [N, F] with `earned` [N] added to its `routing_fees` column and the profit, in place
    (returned)."""
    breakdown[:, _FEES] += earned
    breakdown[:, _PROFIT] += earned
    return breakdown


@jit
def _credit_nb(breakdown, earned):  # pragma: no cover - compiled
    for i in range(earned.shape[0]):
        e = earned[i]
        breakdown[i, _FEES] += e
        breakdown[i, _PROFIT] += e
    return breakdown


credit = register("credit_fees", credit_numpy, _credit_nb)


def credit_fees(breakdown: np.ndarray, earned: np.ndarray) -> None:
    """Add routing fees earned as an intermediary to the `routing_fees` column and the profit."""
    credit(breakdown=breakdown, earned=earned)


def charge(breakdown: np.ndarray, amount: np.ndarray) -> None:
    """Book a cost of running channels (rebalancing fees, splice fees) into cost and profit."""
    breakdown[:, _COST] += amount
    breakdown[:, _PROFIT] -= amount


__all__ = ["credit_fees", "charge", "credit", "credit_numpy"]
