"""The dashboard frame: the seed's market view drawn with matplotlib from recorded frames only.

    dash = Dashboard()
    img = dash.draw(summaries, frame)     # [H, W, 3] uint8; summaries: this episode's so far
    write_gif(path, episode)              # an episode of (summaries, frame) pairs to an animated GIF
    write_video("ep.mp4", episode)        # ... or to an MP4 (ffmpeg) / GIF, by the file name

Panels: a statistics bar (agents, active channels, trades cumulative and this step, supply and
demand, market price, simulated time, active shock), the price chart (clearing and reference
price, shocks shaded, an orange frame while a shock is on), the resource monitor (energy and
money by kind; per agent in small markets) and the channel topology in the seed's colours:
nodes by kind (solar orange, wind blue, storage purple, consumer green, other kinds further
colours) sized by capacity; channels white when highly utilized (> 70 %), green when they
carried a payment this step, yellow when opened since the last frame, grey when idle, width by
capacity. Node positions come from a spring layout computed once per episode on the sampled
topology (`frames.Observer`), so drawing a frame is only scatter and line collections.
matplotlib (and networkx, optional) are imported on first use; the drawing uses an Agg canvas
and never changes the pyplot backend.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

SEED_KIND_COLORS = {"solar": "#ff9f1c", "wind": "#3a86ff", "storage": "#9d4edd", "consumer": "#2ec4b6"}
SEED_KIND_COLORS["consumer"] = "#38b000"
EXTRA_KIND_COLORS = ("#ff006e", "#00bbf9", "#d4a373", "#e9ff70")
EDGE_COLORS = {"high": "#ffffff", "active": "#38b000", "new": "#ffd60a", "idle": "#6c757d"}
HIGH_UTILIZATION = 0.7
BG, PANEL, FG = "#0d1117", "#161b22", "#e6edf3"


def kind_colors(names: Sequence[str]) -> list[str]:
    """One colour per kind name: the seed's four, then further colours for other registered kinds."""
    out, extra = [], 0
    for name in names:
        if name in SEED_KIND_COLORS:
            out.append(SEED_KIND_COLORS[name])
        else:
            out.append(EXTRA_KIND_COLORS[extra % len(EXTRA_KIND_COLORS)])
            extra += 1
    return out


def spring_positions(nodes: np.ndarray, u: np.ndarray, v: np.ndarray, seed: int = 0) -> np.ndarray:
    """[M, 2] positions of `nodes` in [-1, 1]²: networkx's spring layout when it is installed,
    else a circle (the fallback keeps rendering dependency-light)."""
    m = len(nodes)
    if m == 0:
        return np.zeros((0, 2))
    try:
        import networkx as nx
    except ImportError:
        ang = np.linspace(0, 2 * np.pi, m, endpoint=False)
        return np.stack([np.cos(ang), np.sin(ang)], axis=1)
    g = nx.Graph()
    g.add_nodes_from(range(m))
    idx = {int(a): i for i, a in enumerate(nodes)}
    g.add_edges_from((idx[a], idx[b]) for a, b in zip(u.tolist(), v.tolist()) if a in idx and b in idx)
    pos = nx.spring_layout(g, seed=seed, iterations=50, k=1.5 / np.sqrt(m))
    xy = np.array([pos[i] for i in range(m)], dtype=np.float64)
    span = np.abs(xy).max() or 1.0
    return xy / span


def edge_states(ch: dict[str, Any]) -> np.ndarray:
    """[E] state names per channel: high utilization, active (paid this step), new, idle."""
    util = np.asarray(ch["utilization"], dtype=np.float64)
    flow = np.asarray(ch["flow"], dtype=np.float64)
    new = np.asarray(ch["new"], dtype=bool)
    st = np.full(util.shape, "idle", dtype=object)
    st[new] = "new"
    st[flow != 0] = "active"
    st[util > HIGH_UTILIZATION] = "high"
    return st


def _hhmm(hour: float) -> str:
    minutes = int(round(float(hour) * 60)) % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


class Dashboard:
    """Draws dashboard frames; caches the node layout of the current episode's topology sample."""

    def __init__(self, width: int = 1280, height: int = 760, dpi: int = 100) -> None:
        self.width, self.height, self.dpi = int(width), int(height), int(dpi)
        self._layout_key: Any = None
        self._pos = np.zeros((0, 2))
        self._slot_of: dict[int, int] = {}

    # ---- layout (once per episode) ------------------------------------------------------------------
    def _positions(self, frame: dict[str, Any]) -> np.ndarray:
        nodes = np.asarray(frame["nodes"]["id"], dtype=np.int64)
        key = (frame.get("episode"), frame.get("scenario"), nodes.size, int(nodes.sum()) if nodes.size else 0)
        if key != self._layout_key:
            ch = frame["channels"]
            self._pos = spring_positions(nodes, np.asarray(ch["u"], np.int64), np.asarray(ch["v"], np.int64))
            self._layout_key = key
        return self._pos

    # ---- drawing -------------------------------------------------------------------------------------
    def draw(self, summaries: Sequence[dict[str, Any]], frame: dict[str, Any]) -> np.ndarray:
        """The dashboard for `frame` with the price history of `summaries` (this episode), as RGB."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(self.width / self.dpi, self.height / self.dpi), dpi=self.dpi, facecolor=BG)
        FigureCanvasAgg(fig)
        gs = fig.add_gridspec(3, 2, height_ratios=[0.55, 2.2, 2.0], width_ratios=[1.0, 1.05],
                              left=0.06, right=0.985, top=0.985, bottom=0.07, hspace=0.38, wspace=0.12)
        self._stats(fig.add_subplot(gs[0, :]), summaries, frame)
        self._prices(fig.add_subplot(gs[1, 0]), summaries, frame)
        sub = gs[2, 0].subgridspec(1, 2, wspace=0.38)
        self._resources(fig.add_subplot(sub[0, 0]), fig.add_subplot(sub[0, 1]), frame)
        self._topology(fig.add_subplot(gs[1:, 1]), frame)
        fig.canvas.draw()
        return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()

    @staticmethod
    def _style(ax: Any, title: str) -> None:
        ax.set_facecolor(PANEL)
        ax.set_title(title, color=FG, fontsize=9, loc="left")
        ax.tick_params(colors=FG, labelsize=7)
        for sp in ax.spines.values():
            sp.set_color("#30363d")

    def _stats(self, ax: Any, summaries: Sequence[dict[str, Any]], frame: dict[str, Any]) -> None:
        s = frame["summary"]
        total_trades = sum(int(x.get("trades", 0)) for x in summaries) if summaries else int(s.get("trades", 0))
        shock = s.get("shock", "NONE")
        items = [("AGENTS", f"{frame['n_agents']:,}"), ("CHANNELS", f"{int(s.get('active_channels', 0)):,}"),
                 ("TRADES", f"{total_trades:,} (+{int(s.get('trades', 0))})"),
                 ("SUPPLY/DEMAND", f"{s.get('supply', 0):.1f}/{s.get('demand', 0):.1f} MWh"),
                 ("PRICE", f"{s.get('clearing_price', float('nan')):.2f} EUR/MWh"),
                 ("SIM TIME", _hhmm(s.get("hour", 0.0))),
                 ("SHOCK", shock if shock == "NONE" else f"{shock} ({s.get('shock_remaining', 0)})")]
        ax.set_facecolor(PANEL)
        ax.set_xticks([])
        ax.set_yticks([])
        for sp in ax.spines.values():
            sp.set_color("#30363d")
        for i, (label, value) in enumerate(items):
            x = (i + 0.5) / len(items)
            ax.text(x, 0.72, label, ha="center", va="center", color="#8b949e", fontsize=7, transform=ax.transAxes)
            color = "#ff9f1c" if label == "SHOCK" and shock != "NONE" else FG
            ax.text(x, 0.3, value, ha="center", va="center", color=color, fontsize=10, weight="bold",
                    transform=ax.transAxes)

    def _prices(self, ax: Any, summaries: Sequence[dict[str, Any]], frame: dict[str, Any]) -> None:
        self._style(ax, "market price (EUR/MWh)")
        hist = list(summaries) or [frame["summary"]]
        t = np.array([x["t"] for x in hist], dtype=np.float64)
        ax.plot(t, [x["clearing_price"] for x in hist], color="#58a6ff", lw=1.4, label="clearing price")
        ax.plot(t, [x["ref_price"] for x in hist], "--", color="#8b949e", lw=1.0, label="reference price")
        shocked = np.array([x.get("shock", "NONE") != "NONE" for x in hist])
        for i in np.flatnonzero(shocked):
            ax.axvspan(t[i] - 0.5, t[i] + 0.5, color="#ff9f1c", alpha=0.25, lw=0)
        if frame["summary"].get("shock", "NONE") != "NONE":
            for sp in ax.spines.values():
                sp.set_color("#ff9f1c")
                sp.set_linewidth(2.0)
        ax.legend(loc="upper left", fontsize=7, facecolor=PANEL, labelcolor=FG, edgecolor="#30363d")
        ax.set_xlabel("step", color=FG, fontsize=7)

    def _resources(self, ax_e: Any, ax_m: Any, frame: dict[str, Any]) -> None:
        k = frame["kinds"]
        colors = kind_colors(k["names"])
        agents = frame.get("agents")
        if agents is not None:   # a small market: one bar per agent
            self._style(ax_e, "energy per agent (MWh)")
            self._style(ax_m, "money per agent (k EUR)")
            kind = np.asarray(agents["kind"], dtype=np.int64)
            col = [colors[i] for i in kind]
            x = np.arange(kind.size)
            ax_e.bar(x, agents["energy"], color=col)
            ax_e.bar(x, -np.asarray(agents["demand"], dtype=float), color=col, alpha=0.45)
            ax_m.bar(x, np.asarray(agents["money"], dtype=float) / 1e3, color=col)
            for ax in (ax_e, ax_m):
                ax.set_xticks([])
            return
        self._style(ax_e, "energy by kind (MWh)")
        self._style(ax_m, "money by kind (k EUR)")
        present = [i for i, c in enumerate(k["count"]) if c > 0]
        names = [k["names"][i] for i in present]
        x = np.arange(len(present))
        w = 0.27
        for j, (field, alpha) in enumerate((("generation", 1.0), ("stored", 0.7), ("demand", 0.4))):
            vals = [k[field][i] for i in present]
            ax_e.bar(x + (j - 1) * w, vals, width=w, color=[colors[i] for i in present], alpha=alpha,
                     label=field)
        ax_e.legend(fontsize=6, facecolor=PANEL, labelcolor=FG, edgecolor="#30363d")
        ax_m.bar(x, [k["money"][i] / 1e3 for i in present], color=[colors[i] for i in present])
        for ax in (ax_e, ax_m):
            ax.set_xticks(x)
            ax.set_xticklabels(names, fontsize=6, rotation=30)

    def _topology(self, ax: Any, frame: dict[str, Any]) -> None:
        from matplotlib.collections import LineCollection

        ch = frame["channels"]
        nodes = frame["nodes"]
        sampled = " (sample)" if ch.get("sampled") else ""
        self._style(ax, f"channel topology{sampled}: {len(nodes['id'])} agents, {len(ch['u'])} of "
                        f"{ch['total']:,} channels")
        ax.set_xticks([])
        ax.set_yticks([])
        pos = self._positions(frame)
        ids = np.asarray(nodes["id"], dtype=np.int64)
        if ids.size:
            # agent index -> row of `pos` (sorted ids: searchsorted, no Python loop)
            u = np.asarray(ch["u"], dtype=np.int64)
            v = np.asarray(ch["v"], dtype=np.int64)
            iu, iv = np.searchsorted(ids, u), np.searchsorted(ids, v)
            ok = (iu < ids.size) & (iv < ids.size)
            ok[ok] &= (ids[iu[ok]] == u[ok]) & (ids[iv[ok]] == v[ok])
            if ok.any():
                states = edge_states(ch)[ok]
                cap = np.asarray(ch["capacity"], dtype=np.float64)[ok]
                widths = 0.4 + 2.2 * cap / (cap.max() or 1.0)
                segs = np.stack([pos[iu[ok]], pos[iv[ok]]], axis=1)
                order = np.argsort([("idle", "new", "active", "high").index(s) for s in states], kind="stable")
                ax.add_collection(LineCollection(segs[order], colors=[EDGE_COLORS[s] for s in states[order]],
                                                 linewidths=widths[order], alpha=0.8, zorder=1))
            names = frame["kinds"]["names"]
            colors = np.array(kind_colors(names), dtype=object)
            kind = np.asarray(nodes["kind"], dtype=np.int64)
            cap_n = np.asarray(nodes["capacity"], dtype=np.float64)
            sizes = 12 + 110 * np.sqrt(cap_n / (cap_n.max() or 1.0))
            if ids.size > 150:
                sizes = sizes * 0.5
            ax.scatter(pos[:, 0], pos[:, 1], s=sizes, c=list(colors[kind]), edgecolors="#0d1117", linewidths=0.5,
                       zorder=2)
            from matplotlib.lines import Line2D

            handles = [Line2D([], [], marker="o", ls="", color=colors[i], label=names[i])
                       for i in np.unique(kind)]
            handles += [Line2D([], [], color=c, label={"high": "> 70% utilized", "active": "paid this step",
                                                       "new": "new", "idle": "idle"}[s])
                        for s, c in EDGE_COLORS.items()]
            ax.legend(handles=handles, loc="lower left", fontsize=6, ncol=3, facecolor=PANEL, labelcolor=FG,
                      edgecolor="#30363d")
        ax.set_xlim(-1.1, 1.1)
        ax.set_ylim(-1.25, 1.1)


def show(img: np.ndarray, state: dict[str, Any]) -> None:
    """Show `img` in a matplotlib window when an interactive backend and a display exist; else nothing."""
    if os.name != "nt" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return
    import matplotlib

    if matplotlib.get_backend().lower() in ("agg", "pdf", "ps", "svg", "cairo", "template", "module://matplotlib_inline.backend_inline"):
        return
    import matplotlib.pyplot as plt

    if state.get("fig") is None or not plt.fignum_exists(state["fig"].number):
        state["fig"], ax = plt.subplots(figsize=(img.shape[1] / 100, img.shape[0] / 100), dpi=100)
        ax.set_axis_off()
        state["fig"].subplots_adjust(0, 0, 1, 1)
        state["im"] = ax.imshow(img)
    else:
        state["im"].set_data(img)
    plt.pause(0.001)


def write_gif(path: "str | os.PathLike", episode: Iterable[tuple[Sequence[dict[str, Any]], dict[str, Any]]],
              fps: int = 4, dashboard: "Dashboard | None" = None) -> int:
    """Draw every (summaries, frame) of `episode` and write an animated GIF atomically; returns the
    frame count. Needs pillow (`pip install channelmarket[plot]`)."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("write_gif needs pillow; install it with `pip install 'channelmarket[plot]'`") from None
    from .files import atomic_writer

    if isinstance(fps, bool) or not isinstance(fps, (int, np.integer)) or not 1 <= fps <= 60:
        raise ValueError(f"write_gif fps = {fps!r}; allowed: an integer in 1..60")
    dash = dashboard or Dashboard(width=960, height=570)
    images = [Image.fromarray(dash.draw(s, f)).convert("P", palette=Image.Palette.ADAPTIVE, colors=128)
              for s, f in episode]
    if not images:
        raise ValueError("write_gif: the episode has no frames")
    with atomic_writer(path, "wb") as fh:
        images[0].save(fh, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return len(images)


def ffmpeg_exe() -> str:
    """The ffmpeg program MP4 writing uses: imageio-ffmpeg's bundled binary when that package is
    installed (`pip install 'channelmarket[plot]'`), else `ffmpeg` on the PATH (Debian: apt-get install ffmpeg)."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        pass
    import shutil

    exe = shutil.which("ffmpeg")
    if exe is None:
        raise RuntimeError("writing MP4 needs ffmpeg: `pip install 'channelmarket[plot]'` (imageio-ffmpeg) or "
                           "install the ffmpeg program")
    return exe


def write_mp4(path: "str | os.PathLike", episode: Iterable[tuple[Sequence[dict[str, Any]], dict[str, Any]]],
              fps: int = 4, dashboard: "Dashboard | None" = None) -> int:
    """Draw every (summaries, frame) of `episode` and write an H.264 MP4 atomically (matplotlib's
    FFMpegWriter into a temporary file, then `files.atomic_write_bytes`); returns the frame count."""
    import tempfile

    from matplotlib import rc_context
    from matplotlib.animation import FFMpegWriter
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .files import atomic_write_bytes

    if isinstance(fps, bool) or not isinstance(fps, (int, np.integer)) or not 1 <= fps <= 60:
        raise ValueError(f"write_mp4 fps = {fps!r}; allowed: an integer in 1..60")
    dash = dashboard or Dashboard(width=960, height=570)
    target = Path(path)
    n = 0
    with rc_context({"animation.ffmpeg_path": ffmpeg_exe()}), \
            tempfile.TemporaryDirectory(dir=target.parent if target.parent.exists() else None) as tmp:
        fig = Figure(figsize=(dash.width / dash.dpi, dash.height / dash.dpi), dpi=dash.dpi)
        FigureCanvasAgg(fig)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        image = None
        out = Path(tmp) / "episode.mp4"
        writer = FFMpegWriter(fps=int(fps), codec="h264", extra_args=["-pix_fmt", "yuv420p"])
        with writer.saving(fig, str(out), dash.dpi):
            for summaries, frame in episode:
                img = dash.draw(summaries, frame)
                if image is None:
                    image = ax.imshow(img, interpolation="none")
                else:
                    image.set_data(img)
                writer.grab_frame()
                n += 1
        if n == 0:
            raise ValueError("write_mp4: the episode has no frames")
        atomic_write_bytes(target, out.read_bytes())
    return n


def write_video(path: "str | os.PathLike", episode: Iterable[tuple[Sequence[dict[str, Any]], dict[str, Any]]],
                fps: int = 4, dashboard: "Dashboard | None" = None) -> int:
    """An episode to `.gif` (pillow) or `.mp4` (ffmpeg), chosen by the file name; returns the frame count."""
    suffix = Path(path).suffix.lower()
    if suffix == ".gif":
        return write_gif(path, episode, fps=fps, dashboard=dashboard)
    if suffix == ".mp4":
        return write_mp4(path, episode, fps=fps, dashboard=dashboard)
    raise ValueError(f"write_video: file name {str(path)!r} ends in {suffix or 'nothing'!r}; allowed: .gif, .mp4")


__all__ = ["Dashboard", "write_gif", "write_mp4", "write_video", "ffmpeg_exe", "show", "kind_colors", "spring_positions", "edge_states", "EDGE_COLORS",
           "SEED_KIND_COLORS"]
