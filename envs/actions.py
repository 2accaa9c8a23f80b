"""Checking an action array before a step: the one rule both faces of the array API apply
(`MarketCore` of one market and the batch of `MarketCore(..., n_markets=M)`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .kernels import clip_actions
from .offers import ACTION_FIELDS, N_ACTIONS


def check_actions(actions: Any, n_agents: int, fields: tuple[str, ...] = ACTION_FIELDS,
                  copy: bool = True) -> np.ndarray:
    """float64 [n_agents, len(fields)] actions clipped to [-1, 1]; TypeError/ValueError naming the agent
    index and field for anything else (NaN and inf are errors, never traded). `fields` are the
    scenario's columns (`offers.action_fields`): with optional columns, a base-width [n_agents, 4]
    array is accepted too and the optional columns are 0 (`open_partner` 0: nobody asks), so every
    baseline and trainer runs unchanged. `copy=False` (the step, which only reads them): an array
    already float64, C-contiguous and in [-1, 1] is returned itself, not copied."""
    width = len(fields)
    if isinstance(actions, np.ma.MaskedArray):  # its hidden values would trade silently
        raise TypeError("actions is a masked array; pass a plain array (e.g. actions.filled(0.0)) so every "
                        "agent's action is explicit")
    if isinstance(actions, (list, tuple)):
        try:
            actions = np.asarray(actions)
        except (ValueError, TypeError) as err:
            raise TypeError(f"actions could not be read as a numeric array of shape ({n_agents}, "
                            f"{width}): {err}") from None
    if not isinstance(actions, np.ndarray):
        raise TypeError(f"actions must be a numpy array of shape ({n_agents}, {width}), got {type(actions).__name__}")
    if actions.dtype.kind not in "fiu" or actions.dtype.kind == "b":
        raise TypeError(f"actions must be a float array, got dtype {actions.dtype}")
    if actions.shape != (n_agents, width) and actions.shape != (n_agents, N_ACTIONS):
        raise ValueError(
            f"actions have shape {actions.shape}; expected ({n_agents}, {width}): one row per agent, "
            f"columns {fields}"
        )
    with np.errstate(over="ignore"):   # a long double beyond float64 becomes inf, refused below as not finite
        a = np.asarray(actions).astype(np.float64, copy=False)  # a plain array (np.matrix, memmap, ...)
    out, finite = clip_actions(actions=a, share=not copy)   # one pass: clipped copy, and whether all is finite
    if not finite:
        i, j = np.argwhere(~np.isfinite(a))[0]
        raise ValueError(
            f"actions[{i}, {j}] ({fields[j]} of agent {i}) = {a[i, j]}; actions must be finite, in [-1, 1]"
        )
    if out.shape[1] < width:   # the base width: optional columns 0
        out = np.concatenate([out, np.zeros((n_agents, width - out.shape[1]))], axis=1)
    return out


def check_indices(values: Any, count: int, name: str, item: str, items: str) -> np.ndarray:
    """`values` as a 1-D integer array of indices in 0..count-1 (agents of `remove_agents`, channel
    slots of `fail_channels`, for one market and for a batch alike); TypeError/ValueError naming
    `name`, the offending index and the allowed range. `item` / `items`: what one index is
    ("agent index" / "agent indices")."""
    idx = np.asarray(values)
    if idx.dtype.kind not in "iu" or idx.ndim != 1:
        raise TypeError(f"{name} must be a 1-D integer array of {items}, got {values!r}")
    if idx.size and (idx.min() < 0 or idx.max() >= count):
        bad = idx[(idx < 0) | (idx >= count)][0]
        raise ValueError(f"{item} {bad} out of range; allowed: 0..{count - 1}")
    return idx


def check_flag(value: Any, name: str) -> bool:
    """`value` as a bool (True, False or a NumPy bool); TypeError naming `name` otherwise."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} = {value!r}; allowed: True or False")
    return bool(value)


__all__ = ["check_actions", "check_indices", "check_flag"]
