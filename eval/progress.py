"""Progress bars that suit where the output goes.

In a terminal or a notebook: tqdm's live bar. Anywhere else (a cluster job's log, `nohup`, CI, a
pipe) a live bar writes its carriage-return updates ten times a second into the file, which then
holds one line megabytes long; there the bar prints a plain line every `LOG_SECONDS` instead (and
its last state at the end), which a log reader can follow.
"""

from __future__ import annotations

import sys
from typing import Any

LOG_SECONDS = 30.0   # seconds between two lines of a bar written to a file


class _Lines:
    """A text stream for tqdm that turns each redraw into one line of its own."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, s: str) -> None:
        s = s.replace("\r", "").rstrip()
        if s:
            self.stream.write(s + "\n")

    def flush(self) -> None:
        self.stream.flush()


def _notebook() -> bool:
    from tqdm.auto import tqdm as auto

    return any(c.__module__ == "tqdm.notebook" for c in auto.__mro__)   # tqdm.auto chose the widget


def progress_bar(total: "int | None", *, desc: str, unit: str = "step", initial: int = 0, disable: bool = False,
                 file: Any = None, **kw: Any) -> Any:
    """A tqdm bar of `total` `unit`s: live in a terminal or notebook, a line every `LOG_SECONDS` elsewhere."""
    from tqdm.auto import tqdm

    stream = sys.stderr if file is None else file
    isatty = getattr(stream, "isatty", None)
    if not disable and not (callable(isatty) and isatty()) and not _notebook():
        kw.setdefault("mininterval", LOG_SECONDS)
        kw.setdefault("maxinterval", LOG_SECONDS)
        kw["ncols"] = kw.pop("ncols", 100)
        kw.pop("dynamic_ncols", None)
        stream = _Lines(stream)
    return tqdm(total=total, desc=desc, unit=unit, initial=initial, disable=disable, file=stream, **kw)


__all__ = ["progress_bar", "LOG_SECONDS"]
