"""The history pulls of the customer slots: movement's resultant (paper 3.2.2, phase 3), per slot row.

A customer pulls its seller toward it, and the seller its customer, with weight (1 + transactions) over
their distance (a unit vector times 1 + the slot's transactions). `add_row_pulls` adds one seller's row;
the refresh of the slots (`protocol.refresh_slots`) takes each slot's `pull_weight` where it computes the
distance and adds the row with `add_pull` as soon as the row is final, in slot order and the sellers' order,
which is the order `movement.history_pulls` adds them in, so both give the same sums.
"""

from __future__ import annotations

import numpy as np

from ..compiled import Kernel, jit


def _pull_weight_py(trades, d2):  # pragma: no cover - compiled (inlined)
    """A slot's weight: (1 + its transactions) over the distance (squared: `d2`; at least 1e-9)."""
    return (1.0 + trades) / max(np.sqrt(d2), 1e-9)


pull_weight = jit(_pull_weight_py, inline=True) or _pull_weight_py


def _add_pull_py(res, a, b, wx, wy):  # pragma: no cover - compiled (inlined)
    """Seller a pulled by (wx, wy) toward customer b, and b by the same toward a."""
    res[a, 0] += wx
    res[a, 1] += wy
    res[b, 0] -= wx
    res[b, 1] -= wy


add_pull = jit(_add_pull_py, inline=True) or _add_pull_py


def _add_row_pulls_py(res, a, hi, xy, partner, n_tr):  # pragma: no cover - compiled (inlined)
    """Seller a's open slots below `hi`: res[a] += w (xy[b] - xy[a]), res[b] -= the same, w = `pull_weight`."""
    for s in range(hi):
        b = partner[a, s]
        if b < 0:
            continue
        dx = xy[b, 0] - xy[a, 0]
        dy = xy[b, 1] - xy[a, 1]
        w = pull_weight(n_tr[a, s], dx * dx + dy * dy)
        add_pull(res, a, b, w * dx, w * dy)


add_row_pulls = jit(_add_row_pulls_py, inline=True) or _add_row_pulls_py


def _pulls_loop(xy, partner, reach, n_tr):
    """[N, 2] the history pulls of every open slot, the sellers in order (its own twin, compiled)."""
    res = np.zeros((partner.shape[0], 2))
    for a in range(partner.shape[0]):
        add_row_pulls(res, a, reach[a], xy, partner, n_tr)
    return res


pulls_kernel = Kernel("supply_chain_history_pulls", _pulls_loop, jit(_pulls_loop))

__all__ = ["add_row_pulls", "add_pull", "pull_weight", "pulls_kernel"]
