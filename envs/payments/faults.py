"""Faults: agents and channels that fail during an episode, and the force-close that settles them.

At a configured rate (`agent_fault_rate`, `channel_fault_rate`) the exogenous generator decides,
between clearing and payment, which active agents and open channels fail this step: N uniforms
for agents when the agent rate is positive, then E uniforms for channels when the channel rate is
(a fixed count, whatever the agents do, so two populations on one seed face the same faults).
Payments in flight through a failed agent or channel are released (`reasons.PEER_FAULT`); the
others complete. Right after the payments the failed agents leave the episode (terminated) and
every channel of theirs, and every failed channel, is force-closed: both sides settle to the
endpoints' on-chain wallets, less the on-chain fee split between them, into the fee sink, exactly
as a cooperative close in the lifecycle. `MarketCore.remove_agents(..., close_channels=True)` and
`MarketCore.fail_channels` do the same by API between steps.
"""

from __future__ import annotations

import numpy as np


def draw_faults(sc, active: np.ndarray, is_open: np.ndarray, rng_exo: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray]:
    """(failed agents [N] bool, failed channels [E] bool) of this step (see the module docstring)."""
    failed_agent = np.zeros(active.shape[0], dtype=bool)
    failed_channel = np.zeros(is_open.shape[0], dtype=bool)
    if sc.agent_fault_rate > 0.0:
        failed_agent = active & (rng_exo.random(active.shape[0]) < sc.agent_fault_rate)
    if sc.channel_fault_rate > 0.0:
        failed_channel = is_open & (rng_exo.random(is_open.shape[0]) < sc.channel_fault_rate)
    return failed_agent, failed_channel


def force_close(u, v, capacity, balance_u, is_open, wallet, fee_sink: float, closing: np.ndarray, fee: float):
    """Close the open channels in `closing` now: (open, wallet, fee_sink, closed count), fresh arrays."""
    closing = closing & is_open
    k = int(closing.sum())
    if k == 0:
        return is_open, wallet, fee_sink, 0
    n = wallet.shape[0]
    bu = balance_u[closing]
    wallet = wallet + np.bincount(u[closing], weights=bu - fee / 2, minlength=n)
    wallet = wallet + np.bincount(v[closing], weights=capacity[closing] - bu - fee / 2, minlength=n)
    return is_open & ~closing, wallet, fee_sink + fee * k, k


def closing_of(u, v, is_open, failed_agent: np.ndarray, failed_channel: np.ndarray) -> np.ndarray:
    """[E] the open channels a fault closes: failed ones and every one of a failed agent."""
    return is_open & (failed_channel | failed_agent[u] | failed_agent[v])


__all__ = ["draw_faults", "force_close", "closing_of"]
