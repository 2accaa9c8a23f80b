"""The history pulls of the customer slots: movement's resultant (paper 3.2.2, phase 3), per slot row.

A customer pulls its seller toward it, and the seller its customer, with weight (1 + transactions) over
their distance (a unit vector times 1 + the slot's transactions). `add_row_pulls` adds one seller's row;
the refresh of the slots (`protocol.refresh_slots`) adds each row as soon as the row is final, in the
sellers' order, which is the order `movement.history_pulls` adds them in, so both give the same sums.
"""

from __future__ import annotations

import numpy as np

from ..compiled import Kernel, jit


def _add_row_pulls_py(res, a, hi, xy, partner, n_tr):  # pragma: no cover - compiled (inlined)
    """Seller a's open slots below `hi`: res[a] += w (xy[b] - xy[a]), res[b] -= the same, w = (1 + trades)
    / distance (at least 1e-9)."""
    for s in range(hi):
        b = partner[a, s]
        if b < 0:
            continue
        dx = xy[b, 0] - xy[a, 0]
        dy = xy[b, 1] - xy[a, 1]
        norm = max(np.sqrt(dx * dx + dy * dy), 1e-9)
        w = (1.0 + n_tr[a, s]) / norm
        res[a, 0] += w * dx
        res[a, 1] += w * dy
        res[b, 0] -= w * dx
        res[b, 1] -= w * dy


add_row_pulls = jit(_add_row_pulls_py, inline=True) or _add_row_pulls_py


def _pulls_loop(xy, partner, reach, n_tr):
    """[N, 2] the history pulls of every open slot, the sellers in order (its own twin, compiled)."""
    res = np.zeros((partner.shape[0], 2))
    for a in range(partner.shape[0]):
        add_row_pulls(res, a, reach[a], xy, partner, n_tr)
    return res


pulls_kernel = Kernel("supply_chain_history_pulls", _pulls_loop, jit(_pulls_loop))

__all__ = ["add_row_pulls", "pulls_kernel"]
