"""Market frames: what an observer (the dashboard, a recording) reads of a market after a step.

    obs = Observer(max_nodes=300, max_channels=2000)
    frame = obs.frame(core)            # a JSON-able dict; call after reset() and after each step

A frame holds the public market summary, energy and money summed by agent kind (per agent for
small markets), and the channel states (endpoints, capacity, balance, utilization, flow, its bounded
flow history, opened since the last frame) of a topology sample. The sample is drawn per episode: every agent when
the market has at most `max_nodes`, else `max_nodes` agents grown outwards from random seeds
along open channels, so the sampled graph stays connected enough to read; it stays fixed (a
recording's layout is computed once), or with `refresh=True` (the live web dashboard) sampled
agents left without a channel are swapped each frame for neighbours of the rest. At most
`max_channels` channels are kept per frame. Drawing and recording read frames only, never the
core: the observer is the one place that reads the market, and it reads only the core's public
read API (`summary()`, `channel_states()`, `agent_states()`: what a market operator sees) and the
kind registry's names. Everything is vectorized.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .kinds import KIND_NAMES

FRAME_VERSION = 1
# per-agent resources are shown (and recorded) up to this market size
PER_AGENT_MAX = 24
DIGITS = 4   # decimals kept in frames (compact recordings)


def _r(a: np.ndarray) -> list:
    return np.round(np.asarray(a, dtype=np.float64), DIGITS).tolist()


def sample_nodes(u: np.ndarray, v: np.ndarray, n_agents: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Up to `k` sorted agent indices: all when `n_agents <= k`, else seeds widened by a few hops
    along the open channels (`u`, `v`) and topped up at random."""
    if n_agents <= k:
        return np.arange(n_agents, dtype=np.int64)
    chosen = np.zeros(n_agents, dtype=bool)
    chosen[rng.choice(n_agents, size=max(1, k // 10), replace=False)] = True
    for _ in range(4):   # a few breadth-first hops over all channels at once
        room = k - int(chosen.sum())
        if room <= 0:
            break
        frontier = np.unique(np.concatenate([v[chosen[u]], u[chosen[v]]]))
        frontier = frontier[~chosen[frontier]]
        if frontier.size == 0:
            break
        chosen[rng.permutation(frontier)[:room]] = True
    room = k - int(chosen.sum())
    if room > 0:
        rest = np.flatnonzero(~chosen)
        chosen[rng.choice(rest, size=room, replace=False)] = True
    return np.flatnonzero(chosen).astype(np.int64)


def refresh_sample(chosen: np.ndarray, u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The sample mask `chosen` [N] with every sampled agent left without a channel inside the sample
    swapped for an agent one open channel (`u`, `v`) away from the rest of it, so a live view of a
    large market keeps showing connected agents as channels close and reopen; same size (where too
    few neighbours exist, the lonely agents stay)."""
    inside = chosen[u] & chosen[v]
    n = chosen.shape[0]
    deg = np.bincount(u[inside], minlength=n) + np.bincount(v[inside], minlength=n)
    lonely = chosen & (deg == 0)
    k = int(lonely.sum())
    keep = chosen & ~lonely
    if k == 0 or not keep.any():
        return chosen
    frontier = np.unique(np.concatenate([v[keep[u] & ~keep[v]], u[keep[v] & ~keep[u]]]))
    frontier = frontier[~lonely[frontier]]
    pick = rng.permutation(frontier)[:k]
    out = keep.copy()
    out[pick] = True
    out[np.flatnonzero(lonely)[:k - pick.size]] = True
    return out


class Observer:
    """Builds frames of a market; keeps the per-episode topology sample and the last open mask."""

    def __init__(self, max_nodes: int = 300, max_channels: int = 2000, seed: int = 0, refresh: bool = False) -> None:
        for name, val in (("max_nodes", max_nodes), ("max_channels", max_channels)):
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
                raise ValueError(f"Observer {name} = {val!r}; allowed: an integer >= 1")
        self.max_nodes = int(max_nodes)
        self.max_channels = int(max_channels)
        self.refresh = bool(refresh)   # live views: swap sampled agents left without channels (`refresh_sample`)
        self._rng = np.random.default_rng(seed)
        self._params = None      # the episode's kind array the sample belongs to (a new one each reset)
        self._nodes = np.zeros(0, np.int64)
        self._in_sample = np.zeros(0, bool)
        self._last_open: "np.ndarray | None" = None
        self.episode = -1

    def frame(self, core: Any) -> dict[str, Any]:
        """The frame of `core` now (after reset or a step), read through its public read API."""
        ch, ag = core.channel_states(), core.agent_states()
        n = int(core.n_agents)
        u, v, is_open = ch["u"], ch["v"], ch["open"]
        kind = ag["kind"]
        if kind.base is not self._params:   # a new episode (new agent parameters): new sample, nothing is "new"
            self._params = kind.base
            self.episode += 1
            self._nodes = sample_nodes(u[is_open], v[is_open], n, self.max_nodes, self._rng)
            self._in_sample = np.zeros(n, bool)
            self._in_sample[self._nodes] = True
            self._last_open = is_open.copy()
        elif self.refresh and n > self.max_nodes:
            self._in_sample = refresh_sample(self._in_sample, u[is_open], v[is_open], self._rng)
            self._nodes = np.flatnonzero(self._in_sample).astype(np.int64)
        new = is_open & ~self._last_open if self._last_open.shape == is_open.shape else np.zeros_like(is_open)
        self._last_open = is_open.copy()

        n_kinds = len(KIND_NAMES)
        cap, bal_u = ch["capacity"], ch["balance_u"]
        # money: on-chain wallet plus the agent's side of each open channel
        ou, ov = u[is_open], v[is_open]
        money = (ag["wallet"] + np.bincount(ou, bal_u[is_open], minlength=n)
                 + np.bincount(ov, (cap - bal_u)[is_open], minlength=n))
        gen, dem, soc = ag["generation"], ag["demand"], ag["soc"]

        def by_kind(x: np.ndarray) -> list:
            return _r(np.bincount(kind, weights=x, minlength=n_kinds))

        kinds = {"names": list(KIND_NAMES), "count": np.bincount(kind, minlength=n_kinds).tolist(),
                 "generation": by_kind(gen), "demand": by_kind(dem), "stored": by_kind(soc), "money": by_kind(money)}
        agents = None
        if n <= PER_AGENT_MAX:
            agents = {"kind": kind.tolist(), "energy": _r(gen + soc), "demand": _r(dem), "money": _r(money)}

        total = int(is_open.sum())
        keep = is_open & self._in_sample[u] & self._in_sample[v]
        slots = np.flatnonzero(keep)
        if slots.size > self.max_channels:
            slots = np.sort(self._rng.choice(slots, size=self.max_channels, replace=False))
        channels = {"total": total, "sampled": bool(slots.size < total), "slot": slots.tolist(),
                    "u": u[slots].tolist(), "v": v[slots].tolist(), "capacity": _r(cap[slots]),
                    "balance_u": _r(bal_u[slots]), "utilization": _r(ch["utilization"][slots]),
                    "flow": _r(ch["flow"][slots]), "new": new[slots].tolist()}
        if "flow_history" in ch:   # each sampled channel's last steps of flow, oldest first
            channels["flow_history"] = _r(ch["flow_history"][slots])
        nodes = {"id": self._nodes.tolist(), "kind": kind[self._nodes].tolist(),
                 "capacity": _r(ag["capacity"][self._nodes])}
        summary = {k: (float(x) if isinstance(x, (float, np.floating)) else int(x) if isinstance(x, (int, np.integer))
                       else x) for k, x in core.summary().items()}
        return {"v": FRAME_VERSION, "episode": self.episode, "scenario": core.scenario.name, "n_agents": n,
                "summary": summary, "kinds": kinds, "agents": agents, "nodes": nodes, "channels": channels}


__all__ = ["Observer", "sample_nodes", "refresh_sample", "FRAME_VERSION", "PER_AGENT_MAX"]
