"""Seed lists of a tournament: read from "0-9,20" text, an int or an iterable of ints, and capped.

A leaf under the settings layer of the evaluation pipeline (settings -> jobs -> runs ->
statistics -> report).

A run keeps every episode's rows in memory, so a seed list is bounded before anything is built:
at most `MAX_SEEDS` seeds per run (counted from the range bounds, so "0-1000000000" fails at
once instead of filling the memory), each in [0, 2**63 - 1] (the int64 seed column of the
Parquet tables). NumPy integers count as integers; floats, bools and strings in a list do not.
"""

from __future__ import annotations

import itertools
import operator
import re
from typing import Any

MAX_SEEDS = 100_000
MAX_SEED = 2**63 - 1
SEEDS_HELP = "non-negative integers and inclusive ranges low-high, e.g. '0-9' or '0,3,5-7'"

__all__ = ["parse_seeds", "check_seed", "MAX_SEEDS", "MAX_SEED"]


def _show(value: Any) -> str:
    """A short repr of a seed argument for an error message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _too_many(value: Any, n: "int | str", max_seeds: int) -> ValueError:
    return ValueError(f"seeds {_show(value)}: {n} seeds; allowed: at most {max_seeds:,} per run "
                      "(split the seeds over several runs)")


def check_seed(value: Any, what: str = "seed") -> int:
    """`value` as a Python int if it is an integer (NumPy integers included, bools not) in
    [0, MAX_SEED]; ValueError/TypeError naming it otherwise."""
    if isinstance(value, bool):
        raise TypeError(f"{what} {value!r} is a bool; allowed: an integer in [0, 2**63 - 1]")
    try:
        s = operator.index(value)
    except TypeError:
        raise TypeError(f"{what} {_show(value)} of type {type(value).__name__}; allowed: an integer in "
                        "[0, 2**63 - 1]") from None
    if not 0 <= s <= MAX_SEED:
        raise ValueError(f"{what} {s}; allowed: an integer in [0, 2**63 - 1]")
    return s


def _from_text(text: str, max_seeds: int) -> list[int]:
    ranges = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part) or re.fullmatch(r"(\d+)", part)
        if not m:
            raise ValueError(f"seeds {_show(text)}: cannot read {part!r}; allowed: {SEEDS_HELP}")
        lo, hi = int(m.group(1)), int(m.group(m.lastindex))
        if hi < lo:
            raise ValueError(f"seeds {_show(text)}: range {part!r} runs backwards; allowed: low-high with "
                             "low <= high")
        if hi > MAX_SEED:
            raise ValueError(f"seeds {_show(text)}: seed {hi} is too large; allowed: seeds in [0, 2**63 - 1]")
        ranges.append((lo, hi))
    total = sum(hi - lo + 1 for lo, hi in ranges)      # counted before any list is built
    if total > max_seeds:
        raise _too_many(text, f"{total:,}", max_seeds)
    return [s for lo, hi in ranges for s in range(lo, hi + 1)]


def _is_index(value: Any) -> bool:
    """Whether `value` is one integer (int, NumPy integer or 0-d integer array), not a bool."""
    if isinstance(value, bool):
        return False
    try:
        operator.index(value)
    except TypeError:
        return False
    return True


def parse_seeds(text: Any, max_seeds: int = MAX_SEEDS) -> list[int]:
    """Seeds from "0-9", "0,3,7", "0-4,10-12" (inclusive ranges), an integer or an iterable of
    integers, in the order given; at most `max_seeds` of them, no repeats. ValueError (TypeError
    for a non-integer in a list) naming the value and what is allowed."""
    if isinstance(text, str):
        seeds = _from_text(text, max_seeds)
    elif _is_index(text):
        seeds = [check_seed(text)]
    else:
        try:
            it = iter(text)
        except TypeError:
            raise TypeError(f"seeds {_show(text)} of type {type(text).__name__}; allowed: {SEEDS_HELP}, an "
                            "integer or a list of integers") from None
        try:
            n = len(text)
        except TypeError:
            n = None
        if n is not None and n > max_seeds:
            raise _too_many(text, f"{n:,}", max_seeds)
        seeds = [check_seed(s) for s in itertools.islice(it, max_seeds + 1)]
        if len(seeds) > max_seeds:
            raise _too_many(text, f"more than {max_seeds:,}", max_seeds)
    if not seeds:
        raise ValueError(f"seeds {_show(text)}: no seed given; allowed: {SEEDS_HELP}")
    if len(set(seeds)) != len(seeds):
        seen: set[int] = set()
        dup = next(s for s in seeds if s in seen or seen.add(s))
        raise ValueError(f"seeds {_show(text)}: seed {dup} is repeated; allowed: each seed once")
    return seeds
