"""`channelmarket.eval.progress`: a live bar on a terminal, plain lines at most every LOG_SECONDS in a log file."""

from __future__ import annotations

import io

from channelmarket.eval.progress import LOG_SECONDS, progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_file_gets_a_few_whole_lines_not_a_redraw_per_update():
    out = io.StringIO()
    bar = progress_bar(10_000, desc="ppo energy_default", file=out)
    for _ in range(10_000):
        bar.update(1)
    bar.close()
    text = out.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert 1 <= len(lines) <= 3   # the start and the end (an update every LOG_SECONDS in between)
    assert lines[-1].startswith("ppo energy_default: 100%") and "10000/10000" in lines[-1]
    assert LOG_SECONDS >= 10


def test_a_terminal_gets_the_live_bar():
    out = _Terminal()
    bar = progress_bar(50, desc="jobs", unit="job", file=out, mininterval=0)
    for _ in range(50):
        bar.update(1)
    bar.close()
    assert out.getvalue().count("\r") >= 10


def test_disabled_writes_nothing():
    out = io.StringIO()
    bar = progress_bar(5, desc="x", file=out, disable=True)
    bar.update(5)
    bar.close()
    assert out.getvalue() == ""
