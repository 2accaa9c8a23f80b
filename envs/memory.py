"""Keep a step's freed memory for the next step (glibc heap tuning).

A market step allocates a few MB of temporaries (offers, trades, routes, the observation; in the supply
chain neighbour candidates and offers) and frees them. With glibc's defaults the freed top of the heap is
returned to the system and the next step's arrays page-fault fresh, zeroed pages: at 10,000 agents about
550 minor faults a supply-chain day (~1 ms of its ~9 ms) and 130-380 an energy step with routing on
(0.2-0.5 ms of its ~5 ms CPU), measured interleaved in one process. `retain_heap` asks glibc to keep up to `trim_mb` of freed heap and to
serve arrays under `mmap_mb` from it (32 MB is glibc's own upper bound for its adaptive threshold), so the
pages are reused. It is process-wide and changes no number the economy computes; elsewhere than glibc it
does nothing. `MarketCore`, `BatchCore` and `SupplyChainCore` call it (once per process) unless
CHANNELMARKET_RETAIN_HEAP=0.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_done: "bool | None" = None


def retain_heap(trim_mb: int = 64, mmap_mb: int = 32) -> bool:
    """Set glibc's trim and mmap thresholds (MB) once per process; True if they are set (glibc, not
    switched off by CHANNELMARKET_RETAIN_HEAP=0). ValueError for a size outside [1, 1024]."""
    global _done
    for name, v in (("trim_mb", trim_mb), ("mmap_mb", mmap_mb)):
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 1024:
            raise ValueError(f"retain_heap: {name} = {v!r}; allowed: an integer number of MB in [1, 1024]")
    if _done is not None:
        return _done
    _done = False
    if os.environ.get("CHANNELMARKET_RETAIN_HEAP", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):   # not glibc (macOS, musl without mallopt, Windows)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    _done = bool(mallopt(_M_TRIM_THRESHOLD, trim_mb << 20)) and bool(mallopt(_M_MMAP_THRESHOLD, mmap_mb << 20))
    return _done


__all__ = ["retain_heap"]
