"""Energy, good 0: the core pipeline's own good (offers, clearing, grid settlement, storage).

Declared here for the per-good arrays of a market with several goods: its price stays within
the feed-in and retail tariffs and reverts to the time-of-day level (`prices.time_of_day_level`,
which the step applies to good 0 itself)."""

from __future__ import annotations

from .base import GoodSpec


def price_bounds(sc):
    return sc.feed_in_tariff, sc.retail_tariff


def span(sc):
    return sc.retail_tariff - sc.feed_in_tariff


SPEC = GoodSpec(name="energy", order=0, price_bounds=price_bounds, span=span)
