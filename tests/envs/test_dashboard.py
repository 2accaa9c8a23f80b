"""The dashboard render modes (PettingZoo's render_test over ansi, rgb_array and human is in
test_channel_market.py): frame shape and dtype, the seed's colours,
edge states, topology sampling, human mode headless, GIF writing, and envs importing without matplotlib."""

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")
import matplotlib

matplotlib.use("Agg")

from channelmarket import channel_market_v0
from channelmarket.envs.dashboard import EDGE_COLORS, Dashboard, edge_states, kind_colors, write_gif
from channelmarket.envs.frames import Observer, sample_nodes


def _run(env, steps, seed=0):
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    for _ in range(steps):
        env.step({a: rng.uniform(-1, 1, 4).astype(np.float32) for a in env.agents})


@pytest.mark.parametrize("scenario", ["energy_small", "energy_default"])
def test_rgb_frame_shape_dtype_and_content(scenario):
    env = channel_market_v0.parallel_env(scenario=scenario, render_mode="rgb_array")
    _run(env, 3)
    env.inject_shock("DEMAND_SURGE", 2)
    img = env.render()
    assert isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.shape == (760, 1280, 3)
    assert img.min() < img.max()
    # the seed's node colours are on the frame (solar orange, consumer green)
    for hex_ in ("#ff9f1c", "#38b000"):
        rgb = np.array([int(hex_[i:i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(img.astype(int) - rgb).sum(axis=2) < 10).any(), hex_


def test_rgb_before_reset_and_each_step_differs():
    env = channel_market_v0.parallel_env(scenario="energy_small", render_mode="rgb_array")
    assert env.render().dtype == np.uint8      # before reset: an empty chart, no error
    _run(env, 1)
    a = env.render()
    env.step({x: np.zeros(4, np.float32) for x in env.agents})
    assert not np.array_equal(a, env.render())


def test_human_mode_headless_returns_none():
    env = channel_market_v0.parallel_env(scenario="energy_small", render_mode="human")
    _run(env, 2)
    assert env.render() is None


def test_render_does_not_change_the_market():
    a = channel_market_v0.parallel_env(scenario="energy_small", render_mode="rgb_array")
    b = channel_market_v0.parallel_env(scenario="energy_small")
    for env in (a, b):
        env.reset(seed=3)
    rng = np.random.default_rng(1)
    for _ in range(4):
        act = {x: rng.uniform(-1, 1, 4).astype(np.float32) for x in a.agents}
        a.render()
        oa = a.step(act)[0]
        ob = b.step(act)[0]
        assert all(np.array_equal(oa[k], ob[k]) for k in oa)


def test_kind_colors_seed_and_extra():
    assert kind_colors(["solar", "wind", "storage", "consumer"]) == ["#ff9f1c", "#3a86ff", "#9d4edd", "#38b000"]
    extra = kind_colors(["solar", "ev", "heat"])
    assert len(set(extra)) == 3


def test_edge_states_priority():
    ch = {"utilization": [0.9, 0.1, 0.1, 0.1], "flow": [1.0, 2.0, 0.0, 0.0], "new": [True, True, True, False]}
    assert list(edge_states(ch)) == ["high", "active", "new", "idle"]
    assert set(EDGE_COLORS) == {"high", "active", "new", "idle"}


def test_observer_samples_large_markets():
    rng = np.random.default_rng(0)
    n = 5000
    u = rng.integers(0, n, 15000)
    v = (u + rng.integers(1, n, 15000)) % n
    nodes = sample_nodes(u, v, n, 300, rng)
    assert nodes.size == 300 and np.all(np.diff(nodes) > 0)
    inside = np.isin(u, nodes) & np.isin(v, nodes)
    assert inside.sum() > 30      # grown along channels, not 300 random strangers
    assert np.array_equal(sample_nodes(u, v, 50, 300, rng), np.arange(50))


def test_observer_caps_channels_and_marks_new():
    env = channel_market_v0.parallel_env(scenario="energy_default")
    _run(env, 0)
    obs = Observer(max_nodes=40, max_channels=5)
    f = obs.frame(env.core)
    assert len(f["nodes"]["id"]) == 40 and len(f["channels"]["u"]) <= 5 and f["channels"]["sampled"]
    assert not any(f["channels"]["new"])       # nothing is new at the start of an episode
    with pytest.raises(ValueError, match="max_channels"):
        Observer(max_channels=0)


def test_write_gif(tmp_path):
    pytest.importorskip("PIL")
    env = channel_market_v0.parallel_env(scenario="energy_small")
    env.reset(seed=0)
    obs, frames, hist = Observer(), [], [env.core.summary()]
    frames.append((list(hist), obs.frame(env.core)))
    for _ in range(2):
        env.step({a: np.zeros(4, np.float32) for a in env.agents})
        hist.append(env.core.summary())
        frames.append((list(hist), obs.frame(env.core)))
    out = tmp_path / "ep.gif"
    assert write_gif(out, frames, fps=2, dashboard=Dashboard(width=480, height=300)) == 3
    from PIL import Image

    with Image.open(out) as im:
        assert im.format == "GIF" and im.n_frames == 3
    with pytest.raises(ValueError, match="fps"):
        write_gif(tmp_path / "x.gif", frames, fps=0)
    with pytest.raises(ValueError, match="no frames"):
        write_gif(tmp_path / "x.gif", [])
    assert not (tmp_path / "x.gif").exists()


def test_envs_import_without_matplotlib():
    code = ("import sys; sys.modules['matplotlib'] = None; sys.modules['networkx'] = None\n"
            "import channelmarket.envs.dashboard, channelmarket.envs.recording, channelmarket.envs.frames\n"
            "from channelmarket import channel_market_v0\n"
            "env = channel_market_v0.parallel_env(scenario='energy_small', render_mode='ansi'); env.reset(seed=0)\n"
            "print(env.render())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "price" in out.stdout


def test_layout_without_networkx_is_a_circle(monkeypatch):
    from channelmarket.envs.dashboard import spring_positions

    monkeypatch.setitem(sys.modules, "networkx", None)
    pos = spring_positions(np.arange(6), np.array([0, 1]), np.array([1, 2]))
    assert pos.shape == (6, 2)
    np.testing.assert_allclose(np.hypot(pos[:, 0], pos[:, 1]), 1.0)


def test_layout_computed_once_per_episode(monkeypatch):
    import channelmarket.envs.dashboard as dashboard_mod

    calls = []
    real = dashboard_mod.spring_positions
    monkeypatch.setattr(dashboard_mod, "spring_positions", lambda *a, **k: calls.append(1) or real(*a, **k))
    env = channel_market_v0.parallel_env(scenario="energy_small", render_mode="rgb_array", episode_steps=3)
    for seed in (0, 1):
        env.reset(seed=seed)
        env.render()
        while env.agents:
            env.step({a: np.zeros(4, np.float32) for a in env.agents})
            env.render()
    assert len(calls) == 2


from hypothesis import given, settings, strategies as st


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 400), k=st.integers(1, 120), e=st.integers(0, 800), seed=st.integers(0, 2 ** 16))
def test_sample_nodes_invariants(n, k, e, seed):
    rng = np.random.default_rng(seed)
    u = rng.integers(0, n, e)
    v = rng.integers(0, n, e)
    nodes = sample_nodes(u, v, n, k, rng)
    assert nodes.size == min(n, k) and nodes.dtype == np.int64
    assert np.all(np.diff(nodes) > 0) and (nodes.size == 0 or (nodes[0] >= 0 and nodes[-1] < n))


def test_human_mode_with_display_but_agg_backend_shows_nothing(monkeypatch):
    from channelmarket.envs.dashboard import show

    monkeypatch.setenv("DISPLAY", ":99")
    state = {}
    show(np.zeros((10, 10, 3), np.uint8), state)
    assert state == {}        # no window was opened on a non-interactive backend
