"""Checking an action array before a step: the one rule both faces of the array API apply
(`MarketCore` of one market and the batch of `MarketCore(..., n_markets=M)`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import kernels
from .offers import ACTION_FIELDS, N_ACTIONS


def check_actions(actions: Any, n_agents: int) -> np.ndarray:
    """float64 [n_agents, 4] actions clipped to [-1, 1]; TypeError/ValueError naming the agent index
    and field for anything else (NaN and inf are errors, never traded)."""
    if isinstance(actions, np.ma.MaskedArray):  # its hidden values would trade silently
        raise TypeError("actions is a masked array; pass a plain array (e.g. actions.filled(0.0)) so every "
                        "agent's action is explicit")
    if isinstance(actions, (list, tuple)):
        try:
            actions = np.asarray(actions)
        except (ValueError, TypeError) as err:
            raise TypeError(f"actions could not be read as a numeric array of shape ({n_agents}, "
                            f"{N_ACTIONS}): {err}") from None
    if not isinstance(actions, np.ndarray):
        raise TypeError(f"actions must be a numpy array of shape ({n_agents}, {N_ACTIONS}), got {type(actions).__name__}")
    if actions.dtype.kind not in "fiu" or actions.dtype.kind == "b":
        raise TypeError(f"actions must be a float array, got dtype {actions.dtype}")
    if actions.shape != (n_agents, N_ACTIONS):
        raise ValueError(
            f"actions have shape {actions.shape}; expected ({n_agents}, {N_ACTIONS}): one row per agent, "
            f"columns {ACTION_FIELDS}"
        )
    a = np.asarray(actions).astype(np.float64, copy=False)  # a plain array (np.matrix, memmap, ...)
    out, bad = kernels.clip_actions(actions=a)
    if bad >= 0:
        i, j = divmod(int(bad), N_ACTIONS)
        raise ValueError(
            f"actions[{i}, {j}] ({ACTION_FIELDS[j]} of agent {i}) = {a[i, j]}; actions must be finite, in [-1, 1]"
        )
    return out


__all__ = ["check_actions"]
