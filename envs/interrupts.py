"""Ctrl-C held over a block that must not stop halfway.

A step that writes the next channels into the current state's own arrays (`MarketCore.step` when
nothing else holds them) has a window in which the state is half of step t and half of step t + 1:
a KeyboardInterrupt there (Ctrl-C in a notebook, between two Python lines of the step) would leave a
state that no longer conserves money. Inside `held_interrupt()` a SIGINT is recorded instead, and
the handler that was installed runs once the block is whole: the interrupt still comes, one step
later in time, never in the middle.

Only the main thread receives signals, and only a Python handler can be held (SIG_IGN and SIG_DFL
are left alone); elsewhere the block runs as it is. A block that raises passes its own exception on
and drops an interrupt held meanwhile (the loop stops either way).
"""

from __future__ import annotations

import threading
from typing import Any

try:   # the C module under `signal`: the same calls without the enum wrapping (2 µs a step instead of 15)
    import _signal as _sig
except ImportError:  # pragma: no cover - not CPython
    import signal as _sig

_MAIN = threading.main_thread()
_SIGINT = int(_sig.SIGINT)


class held_interrupt:
    """Context manager: SIGINT recorded during the block, the installed handler called after it."""

    __slots__ = ("_handler", "_caught")

    def __enter__(self) -> "held_interrupt":
        self._handler = None
        self._caught: "tuple[int, Any] | None" = None
        if threading.current_thread() is _MAIN:
            handler = _sig.getsignal(_SIGINT)
            if callable(handler):
                _sig.signal(_SIGINT, self._record)
                self._handler = handler
        return self

    def _record(self, signum: int, frame: Any) -> None:
        self._caught = (signum, frame)

    def __exit__(self, kind, value, tb) -> bool:
        handler = self._handler
        if handler is not None:
            _sig.signal(_SIGINT, handler)
            if self._caught is not None and kind is None:
                handler(*self._caught)   # default_int_handler raises KeyboardInterrupt here
        return False


__all__ = ["held_interrupt"]
