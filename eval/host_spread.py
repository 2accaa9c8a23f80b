"""The host's own spread: one fixed workload timed many times in a row.

A benchmark's median on a shared machine carries the host's noise as well as the code's cost. This
workload never changes (sums over a 1.6 MB array, products of 64 x 64 matrices: memory and compute),
so the ratio of its median to its fastest repetition is what the host alone adds in the same
minutes. The benchmarks print it beside their tables: a step whose median/fastest is no larger than
this ratio spread because of the host, not because of the code.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np

SUMS = 10          # sums of the array per repetition
PRODUCTS = 100     # matrix products per repetition


class Spread(NamedTuple):
    fastest_ms: float   # the fastest repetition of the workload
    median_ms: float    # the median repetition

    @property
    def ratio(self) -> float:
        """Median over fastest: 1.0 on a quiet host."""
        return self.median_ms / self.fastest_ms

    def line(self) -> str:
        return (f"host spread (one fixed workload, timed in a row): fastest {self.fastest_ms:.3f} ms, "
                f"median {self.median_ms:.3f} ms, median/fastest {self.ratio:.2f}")


def measure(repeats: int = 200, seed: int = 0) -> Spread:
    """The workload's fastest and median time over `repeats` repetitions (about 0.4 s at 200)."""
    if not isinstance(repeats, (int, np.integer)) or isinstance(repeats, bool) or repeats < 1:
        raise ValueError(f"repeats={repeats!r}: expected a whole number >= 1")
    rng = np.random.default_rng(seed)
    a = rng.random(200_000)
    b = rng.random((64, 64))
    times = np.empty(int(repeats))
    for i in range(int(repeats)):
        t = time.perf_counter()
        for _ in range(SUMS):
            a.sum()
        for _ in range(PRODUCTS):
            b @ b
        times[i] = time.perf_counter() - t
    return Spread(float(times.min() * 1e3), float(np.median(times) * 1e3))
