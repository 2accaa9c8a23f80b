"""Episode seeds: which seed an episode is drawn from, with or without `reset(seed=...)`.

The rule (both faces, like Gymnasium's `np_random`): `reset(seed=s)` draws the episode from
`SeedSequence(s)` and makes `s` the root of a stream; each later `reset()` without a seed
continues that stream, the k-th one (k = 1, 2, ...) drawing its episode from
`SeedSequence(s, spawn_key=(SEEDLESS_STREAM, k))`. So `reset(seed=0); reset(); reset()` is the
same three episodes on every run, and differs from `reset(seed=0)` three times. A first
`reset()` without any seed takes its root from OS entropy. The stream is part of
`MarketCore.state_dict()`, so a restored core continues it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# Spawn-key prefix of seedless episodes; the episode's own two generators use children 0 and 1.
SEEDLESS_STREAM = 2

SEED_ALLOWED = "None, a non-negative integer, a sequence of non-negative integers or a numpy SeedSequence"


@dataclass(frozen=True)
class SeedStream:
    """The root of the episode-seed stream and how many seedless resets followed it."""

    entropy: "int | tuple[int, ...]"
    spawn_key: tuple[int, ...] = ()
    pool_size: int = 4
    seedless: int = 0

    def next(self) -> tuple[np.random.SeedSequence, "SeedStream"]:
        """(seed of the next seedless episode, the advanced stream)."""
        k = self.seedless + 1
        ss = np.random.SeedSequence(self.entropy, spawn_key=self.spawn_key + (SEEDLESS_STREAM, k),
                                    pool_size=self.pool_size)
        return ss, SeedStream(self.entropy, self.spawn_key, self.pool_size, k)

    def to_dict(self) -> dict[str, Any]:
        ent = self.entropy if isinstance(self.entropy, int) else list(self.entropy)
        return {"entropy": ent, "spawn_key": list(self.spawn_key), "pool_size": self.pool_size,
                "seedless": self.seedless}


def check_seed(seed: Any, what: str = "seed") -> "None | int | tuple[int, ...] | np.random.SeedSequence":
    """The seed as None, int, tuple of ints or SeedSequence; TypeError/ValueError naming `what` otherwise
    (bools are not seeds: `True` is far more likely a bug than the seed 1)."""
    if seed is None or isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, (bool, np.bool_)):
        raise TypeError(f"{what} = {seed!r}; allowed: {SEED_ALLOWED}")
    if isinstance(seed, (int, np.integer)):
        if seed < 0:
            raise ValueError(f"{what} = {seed!r}; allowed: {SEED_ALLOWED}")
        return int(seed)
    if isinstance(seed, (list, tuple, np.ndarray)):
        items = seed.tolist() if isinstance(seed, np.ndarray) else list(seed)
        if isinstance(seed, np.ndarray) and (seed.ndim != 1 or seed.dtype.kind not in "iu"):
            raise TypeError(f"{what} = {seed!r}; allowed: {SEED_ALLOWED}")
        for x in items:
            if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
                raise TypeError(f"{what} = {seed!r}; allowed: {SEED_ALLOWED}")
            if x < 0:
                raise ValueError(f"{what} = {seed!r}; allowed: {SEED_ALLOWED}")
        return tuple(int(x) for x in items)
    raise TypeError(f"{what} = {seed!r} ({type(seed).__name__}); allowed: {SEED_ALLOWED}")


def episode_seed(seed: Any, stream: "SeedStream | None") -> tuple[np.random.SeedSequence, SeedStream]:
    """(seed sequence of the episode, the stream after it) for `reset(seed)`; see the module rule."""
    seed = check_seed(seed)
    if seed is None:
        if stream is not None:
            return stream.next()
        seed = np.random.SeedSequence()
    if isinstance(seed, np.random.SeedSequence):
        ss = seed
    else:
        ss = np.random.SeedSequence(seed)
    ent = ss.entropy
    ent = int(ent) if isinstance(ent, (int, np.integer)) else tuple(int(x) for x in ent)
    return ss, SeedStream(ent, tuple(int(x) for x in ss.spawn_key), int(ss.pool_size), 0)


def stream_from_dict(d: Any, where: str) -> SeedStream:
    """A `SeedStream` from `SeedStream.to_dict()` output, every entry checked (errors name `where`)."""
    if not isinstance(d, dict) or set(d) != {"entropy", "spawn_key", "pool_size", "seedless"}:
        raise ValueError(f"{where} = {d!r}; expected a dict with keys entropy, spawn_key, pool_size, seedless")
    ent = check_seed(d["entropy"], f"{where}['entropy']")
    if ent is None or isinstance(ent, np.random.SeedSequence):
        raise TypeError(f"{where}['entropy'] = {d['entropy']!r}; allowed: a non-negative integer or a list of them")
    key = check_seed(list(d["spawn_key"]) if isinstance(d["spawn_key"], (list, tuple)) else d["spawn_key"],
                     f"{where}['spawn_key']")
    if not isinstance(key, tuple):
        raise TypeError(f"{where}['spawn_key'] = {d['spawn_key']!r}; allowed: a list of non-negative integers")
    for name, lo in (("pool_size", 4), ("seedless", 0)):
        v = d[name]
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{where}['{name}'] = {v!r}; allowed: an integer >= {lo}")
        if v < lo or (name == "pool_size" and v > 1 << 16):
            raise ValueError(f"{where}['{name}'] = {v!r}; allowed: an integer >= {lo}")
    return SeedStream(ent, key, int(d["pool_size"]), int(d["seedless"]))


__all__ = ["SeedStream", "SEEDLESS_STREAM", "check_seed", "episode_seed", "stream_from_dict"]
