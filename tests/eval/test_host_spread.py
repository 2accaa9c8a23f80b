"""`eval.host_spread`: the fixed workload's fastest and median, and the ratio the benchmarks print."""

from __future__ import annotations

import pytest

from channelmarket.eval.host_spread import Spread, measure


def test_fastest_never_above_median():
    s = measure(repeats=7)
    assert 0.0 < s.fastest_ms <= s.median_ms
    assert s.ratio >= 1.0
    assert "median/fastest" in s.line()


def test_ratio_of_a_known_spread():
    assert Spread(2.0, 3.0).ratio == pytest.approx(1.5)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_repeats_must_be_a_positive_whole_number(bad):
    with pytest.raises(ValueError, match="repeats="):
        measure(repeats=bad)
