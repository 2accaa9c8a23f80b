"""Gymnasium ids of the package: `channelmarket/SingleAgentMarket-v0` (`training.gym_env`).

`register_envs()` runs when `channelmarket` is imported, so `import channelmarket` then
`gymnasium.make("channelmarket/SingleAgentMarket-v0", ...)` works, as does
`gymnasium.make("channelmarket:channelmarket/SingleAgentMarket-v0")` without the import (Gymnasium
imports the module before the `:`). It is also the package's `gymnasium.envs` entry point (what
Gymnasium 0.26-0.29 loaded by itself; 1.x no longer scans entry points). The entry point is a
string, so registering imports neither policies nor torch.
"""

from __future__ import annotations

ENV_IDS = {
    "channelmarket/SingleAgentMarket-v0": "channelmarket.training.gym_env:SingleAgentMarketEnv",
}


def register_envs() -> None:
    """Register every id once (idempotent: a second call, or Gymnasium's own plugin load, is a no-op)."""
    import gymnasium

    for env_id, entry_point in ENV_IDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=entry_point, disable_env_checker=False)


__all__ = ["ENV_IDS", "register_envs"]
