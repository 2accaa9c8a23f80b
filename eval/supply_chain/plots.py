"""Plots of the supply-chain experiments: positions coloured by kind, price curves, transaction
rasters, movement traces, population curves and the risk sweep. matplotlib (Agg) is imported
lazily; every figure is written atomically as PNG."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np

from ...envs.files import atomic_write_bytes
from ...envs.supply_chain.scenario import GOOD_NAMES, KIND_NAMES, KINDS

COLOURS = tuple(k.traits["colour"] for k in KINDS)      # Farmer green, Miller gold, Baker red, Seller blue


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: "str | Path", dpi: int = 90) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    _plt().close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def draw_positions(ax, h, day: int, title: str = "", label_sellers: bool = True) -> None:
    """Agents alive on `day` as dots coloured by kind; Sellers numbered as in the paper (1-based)."""
    sc = h.scenario
    xy, alive = h.xy[min(day, len(h.xy) - 1)], h.alive_agents[min(day, len(h.alive_agents) - 1)]
    for k, (name, col) in enumerate(zip(KIND_NAMES, COLOURS)):
        m = alive & (h.kind == k)
        ax.scatter(xy[m, 0], xy[m, 1], s=28 if k == 3 else 16, c=col, edgecolors="black", linewidths=0.3,
                   label=name, zorder=3 if k == 3 else 2)
        if k == 3 and label_sellers:
            for i in np.flatnonzero(m):
                ax.annotate(str(i + 1), xy[i], fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xlim(0, sc.width)
    ax.set_ylim(0, sc.height)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or f"day {day} ({int(alive.sum())} alive)", fontsize=8)


def snapshots(h, days: Sequence[int], path, suptitle: str = "") -> Path:
    plt = _plt()
    days = [d for d in days if d < len(h.xy)] or [len(h.xy) - 1]
    cols = min(len(days), 3)
    rows = int(np.ceil(len(days) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    for ax, d in zip(axes.ravel(), days):
        draw_positions(ax, h, d)
    for ax in axes.ravel()[len(days):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=6, loc="lower left")
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    return save(fig, path)


def prices(h, path) -> Path:
    """Figure 11: (A) mean offered price per good, (B) mean transaction price per good."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    off, tra = h.array("offered"), h.array("transacted")
    days = np.arange(1, len(off) + 1)
    gc = COLOURS
    for g, name in enumerate(GOOD_NAMES):
        axes[0].plot(days, off[:, g], color=gc[g], label=name, lw=1)
        axes[1].plot(days, tra[:, g], ".", color=gc[g], ms=2, label=name)
    axes[0].set_title("(A) average offered price", fontsize=9)
    axes[1].set_title("(B) average transaction price", fontsize=9)
    for ax in axes:
        ax.set_xlabel("day")
    axes[0].set_ylabel("price per unit")
    axes[0].legend(fontsize=7)
    return save(fig, path)


def raster(h, path) -> Path:
    """Figures 17 and 18: each transaction at (day, seller kind) coloured by buyer kind; totals per
    day with a moving average over 16 days."""
    plt = _plt()
    tx = h.tx_array()
    fig, axes = plt.subplots(2, 1, figsize=(9, 4.5), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    rng = np.random.default_rng(0)
    if tx.size:
        jit = rng.uniform(-0.3, 0.3, len(tx))
        for k, col in enumerate(COLOURS):
            m = tx[:, 2] == k
            axes[0].scatter(tx[m, 0], tx[m, 1] + jit[m], s=3, c=col, label=f"buyer {KIND_NAMES[k]}", alpha=0.6)
    axes[0].set_yticks(range(len(KIND_NAMES)))
    axes[0].set_yticklabels([f"{k} sells" for k in KIND_NAMES], fontsize=7)
    axes[0].legend(fontsize=6, loc="upper right", markerscale=3)
    per_day = np.bincount(tx[:, 0], minlength=h.days) if tx.size else np.zeros(h.days)
    axes[1].plot(per_day, lw=0.6, color="grey")
    w = 16
    if len(per_day) >= w:
        ma = np.convolve(per_day, np.ones(w) / w, mode="valid")
        axes[1].plot(np.arange(w - 1, len(per_day)), ma, lw=2.2, color="black", label="moving average (16 days)")
        axes[1].legend(fontsize=7)
    axes[1].set_xlabel("day")
    axes[1].set_ylabel("transactions")
    return save(fig, path)


def traces(hists: dict, path, days: int = 60) -> Path:
    """Figure 15: the path of every agent over the first `days`, coloured by kind, one panel per run."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(hists), figsize=(4 * len(hists), 4), squeeze=False)
    for ax, (label, h) in zip(axes.ravel(), hists.items()):
        xy = np.array(h.xy[: days + 1])
        for i in range(xy.shape[1]):
            ax.plot(xy[:, i, 0], xy[:, i, 1], lw=0.7, color=COLOURS[h.kind[i]])
            ax.plot(xy[-1, i, 0], xy[-1, i, 1], "o", ms=2.5, color=COLOURS[h.kind[i]])
        ax.set_xlim(0, h.scenario.width)
        ax.set_ylim(0, h.scenario.height)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{label}: path {h.path_per_day():.2f} per agent-day", fontsize=8)
    return save(fig, path)


def population(hists: dict, path, title: str = "") -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3))
    for label, h in hists.items():
        ax.plot(h.array("alive").sum(axis=1), label=label, lw=1.2)
    ax.set_xlabel("day")
    ax.set_ylabel("agents alive")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return save(fig, path)


def sweep(rows: list, path) -> Path:
    """Risk sweep: mean lifespan, extinction rate and path per agent-day against r."""
    plt = _plt()
    r = np.array([x["r"] for x in rows])
    fig, axes = plt.subplots(1, 3, figsize=(11, 3))
    axes[0].errorbar(r, [x["lifespan_mean"] for x in rows], yerr=[x["lifespan_sd"] for x in rows], marker="o")
    axes[0].set_ylabel("mean lifespan (days)")
    axes[1].plot(r, [x["extinct_rate"] for x in rows], "o-", label="population extinct")
    axes[1].plot(r, [x["chain_broken_rate"] for x in rows], "s--", label="loop broken (a kind gone)")
    axes[1].set_ylabel("share of runs")
    axes[1].legend(fontsize=7)
    axes[2].plot(r, [x["path_per_day"] for x in rows], "o-")
    axes[2].set_ylabel("path per agent-day")
    for ax in axes:
        ax.set_xlabel("risk factor r")
    return save(fig, path)


__all__ = ["snapshots", "prices", "raster", "traces", "population", "sweep", "draw_positions", "save", "COLOURS"]
