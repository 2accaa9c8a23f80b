"""The supply chain's multi-threaded builds: `prange` and `kernel`, one loop compiled twice.

A per-agent pass written with `prange` is compiled serial (`prange` is `range` there) and
multi-threaded (`envs.compiled.jit(parallel=True)`); `kernel` wraps both in a `ParallelKernel`
that runs the threaded build from `MIN_AGENTS` items of its `split` argument up (below that,
starting the threads costs more than they save: the small presets and 1,000 agents stay serial).
Every `prange` iteration writes only its own agent's (or seller's) items, never a shared sum, so
the threaded build gives the serial one's numbers bit for bit at any thread count.
"""

from __future__ import annotations

from typing import Callable

from ..compiled import ParallelKernel, jit, prange

MIN_AGENTS = 4000          # agents (or slots: see each kernel) from which the threaded build runs
LIGHT = 30_000             # the same for light passes (a few operations an agent: below this, a thread's start
                           # and join cost about what it saves)


def kernel(name: str, twin: Callable, loop: Callable, split: str, min_items: int = MIN_AGENTS) -> ParallelKernel:
    """A `ParallelKernel` of `loop` (serial and threaded builds) beside its NumPy `twin`."""
    return ParallelKernel(name, twin, jit(loop), jit(loop, parallel=True), split, min_items)


__all__ = ["prange", "kernel", "MIN_AGENTS", "LIGHT"]
