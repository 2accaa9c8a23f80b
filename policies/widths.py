"""Action widths: how a policy's actions fit a market's action array.

A market takes `core.n_actions` columns: the four base fields (ask, bid, quantity, concession),
then the scenario's optional ones (`open_partner` with `partner_action`; `envs.offers.action_fields`).
Baselines and models trained without the optional columns act with the base four; in a wider
market their optional columns are 0, which means "don't ask" — the same padding the core applies
to a 4-wide array. A model trained WITH an optional column (5 wide) cannot act in a market
without it: it learned to rely on an action the market does not have, so `check_width` refuses
with a message saying which scenario field to turn on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..envs.offers import ACTION_FIELDS, N_ACTIONS

OPTIONAL_FIELDS = ("open_partner",)          # `action_fields` order, after the base four
ALL_FIELDS = ACTION_FIELDS + OPTIONAL_FIELDS
_FIELD_OF = {"open_partner": "partner_action"}  # the scenario field that adds each optional column


def fields_of_width(width: int) -> tuple[str, ...]:
    """The action columns of a `width`-wide policy (ValueError outside base..all)."""
    if not isinstance(width, (int, np.integer)) or isinstance(width, bool) or not N_ACTIONS <= width <= len(ALL_FIELDS):
        raise ValueError(f"action width {width!r}: allowed {N_ACTIONS} ({', '.join(ACTION_FIELDS)}) to "
                         f"{len(ALL_FIELDS)} (+ {', '.join(OPTIONAL_FIELDS)})")
    return ALL_FIELDS[:int(width)]


def check_width(width: int, core: Any, what: str = "the model") -> None:
    """ValueError unless a policy acting with `width` columns fits `core`'s market: its full width
    (`core.action_fields`), or the base width in a wider market (the optional columns are padded
    with 0: nobody asks; the supply chain's `move` column: the built-in movement rule)."""
    fields = tuple(getattr(core, "action_fields", ACTION_FIELDS))
    if not isinstance(width, (int, np.integer)) or isinstance(width, bool):
        raise ValueError(f"action width {width!r}: allowed {N_ACTIONS} or {len(fields)} ({', '.join(fields)})")
    if width in (N_ACTIONS, len(fields)):
        return
    sc = getattr(core, "scenario", None)
    name = getattr(sc, "name", "?")
    energy = fields == ACTION_FIELDS and N_ACTIONS < width <= len(ALL_FIELDS)
    have = f" ({', '.join(fields_of_width(width))})" if energy else ""
    msg = f"{what} acts with {width} action columns{have} but scenario {name!r} takes {len(fields)} ({', '.join(fields)})"
    if energy:
        missing = [f for f in fields_of_width(width) if f not in fields]
        turn_on = ", ".join(f"{_FIELD_OF.get(f, f)}: true" for f in missing)
        msg += (f": the model was trained with {', '.join(missing)}; run it on a scenario with {turn_on} "
                f"(training CLI: --partner-action on), or use a model trained without it")
    else:
        msg += f"; use a model trained on this market ({len(fields)} columns) or the base {N_ACTIONS}"
    raise ValueError(msg)


def put_actions(out: np.ndarray, rows: Any, acts: np.ndarray) -> None:
    """out[rows] = acts, a narrower (base-width) block padded with 0 in the optional columns.
    A block wider than `out` or narrower than the base is a ValueError naming both widths."""
    w, width = acts.shape[-1], out.shape[1]
    if w == width:
        out[rows] = acts
    elif N_ACTIONS <= w < width:
        out[rows, :w] = acts
        out[rows, w:] = 0.0
    else:
        raise ValueError(f"a policy returned actions {w} columns wide; this market takes {width} "
                         f"({', '.join(ALL_FIELDS[:width])}), or {N_ACTIONS} padded with 0")


__all__ = ["ALL_FIELDS", "OPTIONAL_FIELDS", "fields_of_width", "check_width", "put_actions"]
