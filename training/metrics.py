"""Market and profit metrics of a training run, one definition for both trainers.

`MarketMetrics` sums, every market step, the market summary and each (kind, learner/baseline)
group's breakdown columns with a few array operations; `pop(episode_steps)` turns the sums
into a dict by TensorBoard tag and starts a new window. The SB3 adapter (`MarketVecEnv`) and
the torch IPPO/MAPPO trainer both write exactly these tags, with the same rule for values
that do not exist in a window: the tag is left out (never NaN). So a clearing price with no
volume, a cost per MWh of a group that bought nothing, or the profit of a group with no agent
in the window are missing, not NaN.

Per-kind tags come from the kind registry (`envs.kinds`): every kind has profit/<kind>/<group>;
kinds that buy (`KIND_ALIASES["buyers"]`) have cost_per_mwh/, kinds that sell revenue_per_mwh/;
profit/all/<group> is the profit per agent and episode over every kind of the group.
Every further good the market trades (certificates; `Scenario.goods[1:]`) adds
market/<good>_volume (units per market step), market/<good>_ref_price (mean per step) and
market/<good>_clearing_price (volume-weighted; left out without volume).
"""

from __future__ import annotations

import numpy as np

from ..envs.settlement import BREAKDOWN_FIELDS
from ..envs.state import KIND_ALIASES, KIND_NAMES
from ..envs.sums import column_sums

# Market-summary fields averaged per market step into `market/<tag>`.
SUMMARY_METRICS = (
    "ref_price", "volume", "supply", "demand", "trades", "negotiations", "failed_payments", "partial_payments",
    "active_channels", "unserved", "curtailed", "grid_bought", "grid_sold", "welfare",
)
_TAG = {"unserved": "unserved_energy", "curtailed": "curtailed_energy"}
MARKET_TAGS = tuple(f"market/{_TAG.get(k, k)}" for k in SUMMARY_METRICS) + (
    "market/clearing_price", "market/supply_demand_balance", "market/shock_share", "market/failed_payment_share")
GROUP_NAMES = ("baseline", "learner")
# Breakdown columns summed per (kind, learner/baseline) group.
GROUP_FIELDS = ("profit", "revenue", "cost", "sold", "bought", "grid_sold", "grid_bought", "unserved")
_GROUP_COLS = np.array([BREAKDOWN_FIELDS.index(k) for k in GROUP_FIELDS])
_G = {k: i for i, k in enumerate(GROUP_FIELDS)}
_S = {k: i for i, k in enumerate(SUMMARY_METRICS)}
_BUYERS = frozenset(KIND_ALIASES["buyers"])
_SELLERS = frozenset(KIND_ALIASES["sellers"])


def agent_groups(kind: np.ndarray, is_learner: np.ndarray) -> np.ndarray:
    """Group of every agent: 2 x kind + (1 if it learns) — the row of its metrics."""
    return 2 * np.asarray(kind, dtype=np.int64) + np.asarray(is_learner, dtype=np.int64)


class MarketMetrics:
    """Running sums over a window of market steps (of one or many markets)."""

    def __init__(self, goods: "tuple[str, ...]" = ()) -> None:
        self.goods = tuple(goods)   # further goods (after energy) whose market/<good>_* tags are written
        self.reset()

    def reset(self) -> None:
        n_groups = 2 * len(KIND_NAMES)
        self.summary = np.zeros(len(SUMMARY_METRICS))
        self.vwap = 0.0                 # clearing price x volume
        self.imbalance = 0.0            # (D - S) / (D + S), summed
        self.shock_steps = 0
        self.steps = 0                  # market steps in the window (summed over markets)
        self.groups = np.zeros((n_groups, len(GROUP_FIELDS)))
        self.agent_steps = np.zeros(n_groups)
        self.good_sums = np.zeros((len(self.goods), 3))   # per further good: volume, value, reference price

    def record(self, info: dict, group: np.ndarray) -> None:
        """Add one market step: `info` of `MarketCore.step`, `group` from `agent_groups`."""
        s = info["summary"]
        self.summary += [s[k] for k in SUMMARY_METRICS]
        self.vwap += s["clearing_price"] * s["volume"]
        sup, dem = s["supply"], s["demand"]
        self.imbalance += (dem - sup) / (dem + sup) if dem + sup > 0 else 0.0
        self.shock_steps += s["shock"] != "NONE"
        self.steps += 1
        for i, g in enumerate(self.goods):
            vol = s[f"{g}_volume"]
            self.good_sums[i] += (vol, vol * s[f"{g}_clearing_price"], s[f"{g}_ref_price"])
        n_groups, nf = self.groups.shape
        cell = (group[:, None] * nf + np.arange(nf)).ravel()
        self.groups += np.bincount(cell, weights=info["breakdown"][:, _GROUP_COLS].ravel(),
                                   minlength=n_groups * nf).reshape(n_groups, nf)
        self.agent_steps += np.bincount(group, minlength=n_groups)

    def record_batch(self, core, group: np.ndarray) -> None:
        """Add one step of every market of a batch (`MarketCore(..., n_markets=M)` after `step`):
        the same sums as M calls of `record`, from the batch's per-market arrays; `group` [M*N]."""
        b, res = core.batch, core.last_result
        st = res.settlement
        bd = st.breakdown
        col = {k: i for i, k in enumerate(BREAKDOWN_FIELDS)}
        tot = column_sums(x=bd)   # in row order, not through BLAS threads (envs/sums.py)
        S, D, V = b.supply[:, 0], b.demand_total[:, 0], b.volume[:, 0]
        vals = {"ref_price": b.ref_price[:, 0].sum(), "volume": V.sum(), "supply": S.sum(), "demand": D.sum(),
                "trades": float((st.paid_qty > 0).sum()), "negotiations": float(res.trades.negotiations),
                "failed_payments": float(st.failed.sum()), "partial_payments": float(st.partial.sum()),
                "active_channels": float(b.open.sum()), "unserved": tot[col["unserved"]],
                "curtailed": tot[col["curtailed"]], "grid_bought": tot[col["grid_bought"]],
                "grid_sold": tot[col["grid_sold"]], "welfare": tot[col["profit"]]}
        self.summary += [vals[k] for k in SUMMARY_METRICS]
        self.vwap += float((b.clearing_price[:, 0] * V).sum())
        with np.errstate(divide="ignore", invalid="ignore"):
            self.imbalance += float(np.where(S + D > 0, (D - S) / (S + D), 0.0).sum())
        self.shock_steps += int((b.shock_kind != 0).sum())
        self.steps += int(b.t.shape[0])
        for i, _ in enumerate(self.goods):
            g = i + 1
            vol = b.volume[:, g]
            self.good_sums[i] += (vol.sum(), (vol * b.clearing_price[:, g]).sum(), b.ref_price[:, g].sum())
        n_groups, nf = self.groups.shape
        cell = (group[:, None] * nf + np.arange(nf)).ravel()
        self.groups += np.bincount(cell, weights=bd[:, _GROUP_COLS].ravel(),
                                   minlength=n_groups * nf).reshape(n_groups, nf)
        self.agent_steps += np.bincount(group, minlength=n_groups)

    def values(self, episode_steps: int) -> dict[str, float]:
        """The window's metrics by tag (profits per agent and episode: per-step rate x
        `episode_steps`); a value whose denominator is zero is left out."""
        n = self.steps
        out: dict[str, float] = {}
        if n == 0:
            return out
        s = self.summary
        for i, k in enumerate(SUMMARY_METRICS):
            out[f"market/{_TAG.get(k, k)}"] = float(s[i] / n)
        if s[_S["volume"]] > 0:
            out["market/clearing_price"] = float(self.vwap / s[_S["volume"]])
        out["market/supply_demand_balance"] = float(self.imbalance / n)
        out["market/shock_share"] = float(self.shock_steps / n)
        att = s[_S["trades"]] + s[_S["failed_payments"]]
        out["market/failed_payment_share"] = float(s[_S["failed_payments"]] / att) if att > 0 else 0.0
        for (vol, value, ref), good in zip(self.good_sums, self.goods):
            out[f"market/{good}_volume"] = float(vol / n)
            out[f"market/{good}_ref_price"] = float(ref / n)
            if vol > 0:
                out[f"market/{good}_clearing_price"] = float(value / vol)
        g = self.groups
        for k, kname in enumerate(KIND_NAMES):
            for c, cname in enumerate(GROUP_NAMES):
                gi = 2 * k + c
                cnt = self.agent_steps[gi]
                if cnt == 0:
                    continue
                out[f"profit/{kname}/{cname}"] = float(g[gi, _G["profit"]] / cnt * episode_steps)
                if kname in _BUYERS:
                    served = g[gi, _G["bought"]] + g[gi, _G["grid_bought"]]
                    if served > 0:
                        out[f"cost_per_mwh/{kname}/{cname}"] = float(g[gi, _G["cost"]] / served)
                if kname in _SELLERS:
                    sold = g[gi, _G["sold"]] + g[gi, _G["grid_sold"]]
                    if sold > 0:
                        out[f"revenue_per_mwh/{kname}/{cname}"] = float(g[gi, _G["revenue"]] / sold)
        for c, cname in enumerate(GROUP_NAMES):
            cnt = self.agent_steps[c::2].sum()
            if cnt:
                out[f"profit/all/{cname}"] = float(g[c::2, _G["profit"]].sum() / cnt * episode_steps)
        return out

    def pop(self, episode_steps: int) -> dict[str, float]:
        """`values(episode_steps)`, then start a new window."""
        out = self.values(episode_steps)
        self.reset()
        return out

    # ---- checkpoints: a plain list of numbers and arrays (`state_codec` encodes it) ----
    def state(self) -> list:
        return [self.summary, self.vwap, self.imbalance, self.shock_steps, self.steps, self.groups, self.agent_steps,
                self.good_sums]

    def load_state(self, state: list) -> None:
        (self.summary, self.vwap, self.imbalance, self.shock_steps, self.steps, self.groups,
         self.agent_steps) = state[:7]
        if len(state) > 7:   # checkpoints written before per-good tags have none
            self.good_sums = state[7]


__all__ = ["MarketMetrics", "agent_groups", "SUMMARY_METRICS", "MARKET_TAGS", "GROUP_NAMES", "GROUP_FIELDS"]
