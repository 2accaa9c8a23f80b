"""SB3 callbacks of a training run: market metrics and hyperparameters to TensorBoard,
checkpoints that `--resume` can continue from, and a tqdm progress bar.

Tags written besides SB3's own (`rollout/`, `train/`, `time/`) are listed, with their meaning,
in `TAGS` (and in the README's Training section).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import HParam
from stable_baselines3.common.vec_env import VecEnv

from .vec_env import MarketVecEnv

# Every tag the market callback writes, with its meaning (the README section is generated from this).
TAGS: dict[str, str] = {
    "market/clearing_price": "volume-weighted mean peer-to-peer price over the rollout (EUR/MWh)",
    "market/ref_price": "mean-field reference price, mean per step (EUR/MWh)",
    "market/volume": "peer-to-peer energy traded per market step (MWh)",
    "market/supply": "energy offered per step by sellers (MWh)",
    "market/demand": "energy wanted per step by buyers (MWh)",
    "market/supply_demand_balance": "mean imbalance (D - S) / (D + S): > 0 scarce, < 0 glut",
    "market/trades": "paid trades per market step",
    "market/negotiations": "channel negotiations per market step",
    "market/failed_payments": "trades the buyer's channel balance could not pay, per step",
    "market/partial_payments": "trades cut to the channel balance, per step",
    "market/failed_payment_share": "failed / (paid + failed) trades",
    "market/active_channels": "open payment channels, mean per step",
    "market/unserved_energy": "demand neither traded nor served by the grid, per step (MWh)",
    "market/curtailed_energy": "generation neither sold nor taken by the grid, per step (MWh)",
    "market/grid_bought": "energy consumers imported from the grid at the retail tariff, per step (MWh)",
    "market/grid_sold": "energy generators exported to the grid at the feed-in tariff, per step (MWh)",
    "market/welfare": "sum of all agents' profits per market step (EUR)",
    "market/shock_share": "share of steps with a supply or demand shock active",
    "profit/<kind>/learner": "profit per learning agent of the kind, per episode (EUR, rollout mean)",
    "profit/<kind>/baseline": "profit per agent of the kind driven by the background baseline, per episode (EUR)",
    "cost_per_mwh/<kind>/{learner,baseline}": "buyers (consumer, storage): EUR paid per MWh bought, "
                                               "peer-to-peer and grid together",
    "revenue_per_mwh/<kind>/{learner,baseline}": "sellers (solar, wind, storage): EUR earned per MWh sold, "
                                                  "peer-to-peer and grid together",
    "final/<metric>": "the last rollout's values of the headline metrics, also shown in the HPARAMS tab",
}


def market_env(env: VecEnv) -> MarketVecEnv:
    """The `MarketVecEnv` under any stack of VecEnv wrappers."""
    base = env.unwrapped if hasattr(env, "unwrapped") else env
    if not isinstance(base, MarketVecEnv):
        raise TypeError(f"expected a MarketVecEnv under the wrappers, got {type(base).__name__}")
    return base


class MarketMetricsCallback(BaseCallback):
    """Writes the adapter's market and profit metrics once per rollout (at least every
    `min_market_steps` market steps for off-policy algorithms that roll out step by step)."""

    def __init__(self, min_market_steps: int = 1, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.min_market_steps = int(min_market_steps)
        self.last: dict[str, float] = {}

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        venv = market_env(self.training_env)
        if venv._metric_steps < self.min_market_steps * venv.n_markets:
            return
        metrics = venv.pop_metrics()
        for k, v in metrics.items():
            if v == v:   # `training.metrics` leaves missing values out; a NaN would not be logged either
                self.logger.record(k, float(v))
        self.last.update(metrics)


def log_hparams(logger: Any, hparams: dict[str, Any], final: dict[str, float], step: int) -> None:
    """Hyperparameters with the final metrics, for TensorBoard's HPARAMS tab: the metric values
    are written as `final/...` scalars (the tab reads them by tag), then the hparams summary."""
    for k, v in final.items():
        logger.record(k, v)
    hp = {k: _hparam_value(v) for k, v in hparams.items()}
    logger.record("hparams", HParam(hp, final or {"final/num_timesteps": float(step)}),
                  exclude=("stdout", "log", "json", "csv"))
    logger.dump(step)


def final_metrics(last: dict[str, float], model: Any = None) -> dict[str, float]:
    """Headline numbers of a run: learner and baseline profit per kind, buyers' cost per MWh,
    market volume and clearing price, mean episode reward."""
    out: dict[str, float] = {}
    for k, v in last.items():
        if (k.startswith("profit/") or k.startswith("cost_per_mwh/") or k in (
                "market/clearing_price", "market/volume", "market/failed_payment_share")) and v == v:
            out["final/" + k.replace("/", "_")] = float(v)
    if model is not None and getattr(model, "ep_info_buffer", None):
        out["final/ep_rew_mean"] = float(np.mean([e["r"] for e in model.ep_info_buffer]))
    return out


def _hparam_value(v: Any) -> Any:
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    return str(v)


# ---- checkpoints ---------------------------------------------------------------------------------

class CheckpointCallback(BaseCallback):
    """Every `every` agent-steps, at the next rollout boundary where every market starts an episode
    (a checkpoint there resumes bit for bit; see `training.sb3_resume`), write `checkpoints/
    ckpt_<steps>_*` sealed by a manifest, keeping the newest `keep`. If no such boundary comes
    within another `every` steps, the checkpoint is taken at a plain rollout boundary.
    `extra_state()` adds run state (e.g. the role phase)."""

    def __init__(self, folder: str | Path, every: int, keep: int = 3, name: str = "ckpt",
                 extra_state: Callable[[], dict] | None = None, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.folder = Path(folder)
        self.every = int(every)
        self.keep = int(keep)
        self.name = name
        self.extra_state = extra_state
        self._next = None

    def _on_training_start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._next = (self.num_timesteps // self.every + 1) * self.every

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        from .sb3_resume import at_episode_start

        due = self.num_timesteps >= self._next
        if due and (at_episode_start(self.training_env) or self.num_timesteps >= self._next + self.every):
            self.save()
            self._next = (self.num_timesteps // self.every + 1) * self.every

    def save(self) -> Path:
        return save_checkpoint(self.model, self.folder, self.num_timesteps, self.name, self.keep,
                               self.extra_state() if self.extra_state else {})


def save_checkpoint(model: Any, folder: Path, steps: int, name: str = "ckpt", keep: int = 3,
                    extra: dict | None = None) -> Path:
    """Checkpoint `<name>_<steps>` of `model` (pickle-free, sealed; `training.sb3_resume.save`)."""
    from .sb3_resume import save

    return save(model, folder, steps, name=name, keep=keep, extra=extra)


def list_checkpoints(folder: str | Path, name: str = "ckpt") -> list[tuple[int, Path]]:
    """(steps, manifest path) of every sealed checkpoint `name_<steps>` in `folder`, oldest first."""
    from .checkpoints import list_checkpoints as _list

    return _list(folder, name)


# ---- progress ------------------------------------------------------------------------------------

class TqdmCallback(BaseCallback):
    """A plain tqdm progress bar over agent-steps (SB3's own needs `rich` too). Pass `bar` to
    share one bar across several `learn` calls (roles trained in alternation)."""

    def __init__(self, total: int = 0, desc: str = "train", bar: Any = None) -> None:
        super().__init__(0)
        self.total = int(total)
        self.desc = desc
        self.bar = bar
        self._own = bar is None

    @staticmethod
    def make_bar(total: int, initial: int = 0, desc: str = "train") -> Any:
        from ..eval.progress import progress_bar

        return progress_bar(int(total), initial=min(int(initial), int(total)), desc=desc, unit="step",
                            unit_scale=True, dynamic_ncols=True, smoothing=0.1)

    def _on_training_start(self) -> None:
        if self.bar is None:
            self.bar = self.make_bar(self.total, self.num_timesteps, self.desc)
        self._seen = self.num_timesteps

    def _on_step(self) -> bool:
        n = self.num_timesteps - self._seen
        if n > 0:
            self._seen = self.num_timesteps
            self.bar.update(n)
        return True

    def _on_rollout_end(self) -> None:
        if self.model.ep_info_buffer:
            self.bar.set_postfix(ep_rew=f"{np.mean([e['r'] for e in self.model.ep_info_buffer]):.3g}", refresh=False)

    def _on_training_end(self) -> None:
        if self._own and self.bar is not None:
            self.bar.close()
            self.bar = None


__all__ = ["MarketMetricsCallback", "log_hparams", "CheckpointCallback", "TqdmCallback", "TAGS",
           "save_checkpoint", "list_checkpoints", "final_metrics", "market_env"]
