"""Rendering from recorded market summaries only (never from inside the step).

`ansi`: one text line per step. `rgb_array`: a matplotlib figure of the price path with shock
periods shaded and the traded volume below, as an RGB array (matplotlib imported lazily).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def render_ansi(s: dict[str, Any]) -> str:
    shock = "" if s["shock"] == "NONE" else f"  shock {s['shock']} ({s['shock_remaining']} left)"
    return (
        f"t={s['t']:4d} {s['hour']:05.2f}h  price {s['clearing_price']:7.2f} EUR/MWh (ref {s['ref_price']:7.2f})  "
        f"volume {s['volume']:8.3f} MWh  supply {s['supply']:8.3f}  demand {s['demand']:8.3f}  "
        f"trades {s['trades']:5d}  failed {s['failed_payments']:4d}  channels {s['active_channels']:6d}{shock}"
    )


def render_rgb(history: Sequence[dict[str, Any]], title: str = "channel market", width: int = 800,
               height: int = 500) -> np.ndarray:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    dpi = 100
    fig, (ax_p, ax_v) = plt.subplots(2, 1, figsize=(width / dpi, height / dpi), dpi=dpi, sharex=True,
                                     gridspec_kw={"height_ratios": [2, 1]})
    try:
        t = np.array([s["t"] for s in history])
        if len(history):
            ax_p.plot(t, [s["clearing_price"] for s in history], label="clearing price (VWAP)")
            ax_p.plot(t, [s["ref_price"] for s in history], "--", label="reference price")
            ax_v.bar(t, [s["volume"] for s in history], width=0.8, color="tab:green", label="P2P volume")
            shocked = np.array([s["shock"] != "NONE" for s in history])
            for i in np.flatnonzero(shocked):
                ax_p.axvspan(t[i] - 0.5, t[i] + 0.5, color="orange", alpha=0.25, lw=0)
        ax_p.set_ylabel("EUR/MWh")
        ax_p.set_title(title)
        if len(history):
            ax_p.legend(loc="upper left", fontsize=8)
        ax_v.set_ylabel("MWh")
        ax_v.set_xlabel("step")
        fig.tight_layout()
        fig.canvas.draw()
        img = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    finally:
        plt.close(fig)
    return img
