"""Episodes to MP4 (matplotlib's FFMpegWriter over ffmpeg) and GIF by file name, and the observer
reading the market through the core's public read API only."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from channelmarket import channel_market_v0
from channelmarket.envs.core import MarketCore
from channelmarket.envs.dashboard import Dashboard, ffmpeg_exe, write_mp4, write_video
from channelmarket.envs.frames import Observer
from channelmarket.envs.recording import record_episode, replay


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    env = channel_market_v0.parallel_env(scenario="energy_small")
    return record_episode(env, tmp_path_factory.mktemp("rec") / "ep.jsonl", seed=0, max_steps=1)


SMALL = Dashboard(width=480, height=300)


def _have_ffmpeg() -> bool:
    try:
        ffmpeg_exe()
        return True
    except RuntimeError:
        return False


@pytest.mark.skipif(not _have_ffmpeg(), reason="no ffmpeg (imageio-ffmpeg or the ffmpeg program)")
def test_write_mp4(tmp_path, recording):
    out = tmp_path / "ep.MP4"
    assert write_video(out, replay(recording), fps=2, dashboard=SMALL) == 2
    data = out.read_bytes()
    assert data[4:8] == b"ftyp" and len(data) > 1000            # an ISO media file
    assert [p.name for p in tmp_path.iterdir()] == ["ep.MP4"]   # no temporary left behind


def test_write_video_by_suffix(tmp_path, recording):
    assert write_video(tmp_path / "ep.gif", replay(recording), dashboard=SMALL) == 2
    assert (tmp_path / "ep.gif").read_bytes()[:6] == b"GIF89a"
    with pytest.raises(ValueError, match=r"\.gif, \.mp4"):
        write_video(tmp_path / "ep.avi", replay(recording))
    with pytest.raises(ValueError, match="fps"):
        write_mp4(tmp_path / "x.mp4", replay(recording), fps=0)


class PublicOnly:
    """A market seen only through MarketCore's public read API (no state, view or agents)."""

    def __init__(self, core):
        self._core = core
        self.n_agents, self.scenario = core.n_agents, core.scenario

    def channel_states(self):
        return self._core.channel_states()

    def agent_states(self):
        return self._core.agent_states()

    def summary(self):
        return self._core.summary()


def test_observer_reads_only_the_public_api():
    core = MarketCore("energy_small")
    core.reset(seed=0)
    core.step(np.zeros((core.n_agents, 4)))
    assert Observer(seed=1).frame(PublicOnly(core)) == Observer(seed=1).frame(core)


def test_public_read_api_is_read_only_and_matches_the_market():
    core = MarketCore("energy_small")
    with pytest.raises(RuntimeError, match="reset"):
        core.channel_states()
    core.reset(seed=0)
    core.step(np.zeros((core.n_agents, 4)))
    ch, ag = core.channel_states(), core.agent_states()
    assert set(ch) == {"u", "v", "open", "capacity", "balance_u", "utilization", "flow", "flow_history"}
    assert set(ag) == {"kind", "capacity", "active", "wallet", "generation", "demand", "soc"}
    for a in (*ch.values(), *ag.values()):
        assert not a.flags.writeable
        with pytest.raises(ValueError):
            a[0] = a[0]
    assert all(a.shape == (core.n_agents,) for a in ag.values())
    assert int(ch["open"].sum()) == core.summary()["active_channels"]
    # the episode's own parameter arrays until the next reset (the observer's new-episode signal)
    assert core.agent_states()["kind"].base is ag["kind"].base
    core.reset(seed=1)
    assert core.agent_states()["kind"].base is not ag["kind"].base


def test_observer_samples_10k_agents_connected_and_capped():
    core = MarketCore("energy_10k")
    core.reset(seed=0)
    f = Observer(max_nodes=300, max_channels=2000).frame(core)
    assert len(f["nodes"]["id"]) == 300 and f["channels"]["sampled"]
    ids = set(f["nodes"]["id"])
    assert {*f["channels"]["u"], *f["channels"]["v"]} <= ids
    assert 0 < len(f["channels"]["u"]) <= 2000


def test_refresh_sample_swaps_lonely_agents_for_neighbours():
    from channelmarket.envs.frames import refresh_sample

    # a path 0-1-2-3 sampled as {0, 1, 5}: 5 has no channel inside the sample, 2 is a neighbour
    u, v = np.array([0, 1, 2, 4]), np.array([1, 2, 3, 5])
    chosen = np.zeros(6, bool)
    chosen[[0, 1, 5]] = True
    out = refresh_sample(chosen, u, v, np.random.default_rng(0))
    assert np.flatnonzero(out).tolist() == [0, 1, 2]
    alone = np.zeros(6, bool)
    alone[[3, 5]] = True               # nobody has a channel inside: unchanged
    assert np.array_equal(refresh_sample(alone, u, v, np.random.default_rng(0)), alone)


def test_live_observer_keeps_the_sample_connected():
    core = MarketCore("energy_1k")
    core.reset(seed=0)
    fixed, live = Observer(max_nodes=100, seed=0), Observer(max_nodes=100, seed=0, refresh=True)
    rng = np.random.default_rng(0)
    for _ in range(20):
        core.step(rng.uniform(-1, 1, (core.n_agents, 4)))
        a, b = fixed.frame(core), live.frame(core)
    ids = b["nodes"]["id"]
    assert len(ids) == 100 and ids == sorted(set(ids))
    assert len(b["channels"]["u"]) > len(a["channels"]["u"])
    touched = {*b["channels"]["u"], *b["channels"]["v"]}
    assert len(touched) > len({*a["channels"]["u"], *a["channels"]["v"]})
