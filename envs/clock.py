"""The market clock: hour of day of a step (a leaf module, shared by the kinds and the pipeline)."""

from __future__ import annotations


def hour_of_day(sc, t: float) -> float:
    """Hour of day at step `t` (fractions allowed: t + 0.5 is mid-interval)."""
    return (sc.start_hour + t * sc.step_hours) % 24.0
