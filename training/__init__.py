"""Training learned pricing and bidding policies: one base (the config, the markets with their
learners and background, the metrics, policy specs, checkpoints) under two trainers (the SB3
adapter and IPPO/MAPPO in torch), the trainer CLI, TensorBoard callbacks and the
learned-vs-baseline evaluation.

    from channelmarket.training import MarketVecEnv, TrainConfig, train, compare_to_baseline
    train(TrainConfig(scenario="energy_default", total_steps=200_000), "runs/ppo")

Needs the `train` extra (torch, stable-baselines3, tensorboard, tqdm); imported lazily so
`import channelmarket.training` stays cheap.
"""

from __future__ import annotations

from typing import Any

from . import best_response as _best_response  # noqa: F401  registers the "ippo" trainer for eval's exploitability

_EXPORTS = {
    "MarketVecEnv": ".vec_env",
    "select_agents": ".markets",
    "Markets": ".markets",
    "MarketMetrics": ".metrics",
    "IPPOSettings": ".config",
    "ippo_config": ".config",
    "TrainConfig": ".config",
    "load_config": ".config",
    "train": ".sb3_train",
    "compare_to_baseline": ".evaluate",
    "MarketMetricsCallback": ".callbacks",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_EXPORTS)
