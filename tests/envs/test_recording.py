"""Episode recordings: round trip (plain and gzip), replay into the dashboard, channel sampling,
atomic writes, and bad files refused with errors naming line and field."""

import gzip
import json

import numpy as np
import pytest

from channelmarket import channel_market_v0
from channelmarket.envs.recording import Recorder, read_recording, record_episode, replay


def _record(path, steps=4, **kw):
    env = channel_market_v0.parallel_env(scenario="energy_small", episode_steps=steps)
    rng = np.random.default_rng(0)
    return record_episode(env, path, actions=lambda e: {a: rng.uniform(-1, 1, 4).astype(np.float32) for a in e.agents},
                          seed=1, **kw), env


@pytest.mark.parametrize("name", ["ep.jsonl", "ep.jsonl.gz"])
def test_round_trip(tmp_path, name):
    path, env = _record(tmp_path / name)
    if name.endswith(".gz"):
        assert path.read_bytes()[:2] == b"\x1f\x8b"
    header, frames = read_recording(path)
    assert header["format"] == "channelmarket-recording" and header["max_channels"] == 2000
    assert [f["summary"]["t"] for f in frames] == [0, 1, 2, 3, 4]
    assert frames[-1]["summary"]["trades"] == env.market_summary()["trades"]
    ch = frames[-1]["channels"]
    assert ch["total"] == env.market_summary()["active_channels"] == len(ch["u"])
    assert len({len(ch[k]) for k in ("slot", "u", "v", "capacity", "balance_u", "utilization", "flow", "new")}) == 1
    assert frames[-1]["agents"] is not None     # a small market records per-agent resources
    assert not list(tmp_path.glob(".*.tmp"))    # written atomically, no leftovers


def test_recording_matches_the_market(tmp_path):
    path, env = _record(tmp_path / "ep.jsonl", steps=2)
    _, frames = read_recording(path)
    st = env.core.state
    ch = frames[-1]["channels"]
    slots = np.array(ch["slot"])
    assert np.array_equal(st.u[slots], ch["u"]) and st.open[slots].all()
    np.testing.assert_allclose(st.capacity[slots], ch["capacity"], atol=1e-4)
    np.testing.assert_allclose(st.flow[slots], ch["flow"], atol=1e-4)


def test_channels_sampled_above_the_cap(tmp_path):
    path, _ = _record(tmp_path / "ep.jsonl", steps=1, max_nodes=6, max_channels=3)
    _, frames = read_recording(path)
    for f in frames:
        assert len(f["nodes"]["id"]) == 6 and len(f["channels"]["u"]) <= 3 and f["channels"]["sampled"]


def test_replay_feeds_the_dashboard(tmp_path):
    pytest.importorskip("matplotlib")
    from channelmarket.envs.dashboard import Dashboard

    path, _ = _record(tmp_path / "ep.jsonl.gz", steps=3)
    dash = Dashboard(width=480, height=300)
    seen = []
    for summaries, frame in replay(path):
        assert summaries[-1] is frame["summary"]
        img = dash.draw(summaries, frame)
        assert img.shape == (300, 480, 3) and img.dtype == np.uint8
        seen.append(len(summaries))
    assert seen == [1, 2, 3, 4]


def test_replay_restarts_history_per_episode(tmp_path):
    env = channel_market_v0.parallel_env(scenario="energy_small", episode_steps=2)
    with Recorder(tmp_path / "two.jsonl") as rec:
        for seed in (0, 1):
            env.reset(seed=seed)
            rec.add(env.core)
            while env.agents:
                env.step({a: np.zeros(4, np.float32) for a in env.agents})
                rec.add(env.core)
    assert [len(s) for s, _ in replay(tmp_path / "two.jsonl")] == [1, 2, 3, 1, 2, 3]
    with pytest.raises(RuntimeError, match="closed"):
        rec.add(env.core)


def _lines(path):
    return path.read_text().splitlines()


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("mutate, match", [
    (lambda f: f.pop("channels"), "misses"),
    (lambda f: f.update(v=99), "version"),
    (lambda f: f["summary"].update(clearing_price="cheap"), "summary.clearing_price"),
    (lambda f: f["channels"].update(u=f["channels"]["u"][:-1]), r"channels\.slot has \d+ entries; expected \d+"),
    (lambda f: f["channels"]["v"].__setitem__(0, 10 ** 6), "agent index outside"),
    (lambda f: f["channels"]["new"].__setitem__(0, 1), "channels.new"),
    (lambda f: f["nodes"].update(id=[3, 2, 1]), "nodes"),
    (lambda f: f["kinds"].update(money=[1.0]), "kinds.money"),
    (lambda f: f.update(n_agents=True), "n_agents"),
    (lambda f: f["agents"].update(kind=[0] * 3), "agents.kind"),
])
def test_bad_frames_refused(tmp_path, mutate, match):
    path, _ = _record(tmp_path / "ep.jsonl", steps=1)
    lines = _lines(path)
    f = json.loads(lines[2])
    mutate(f)
    bad = _write(tmp_path / "bad.jsonl", lines[:2] + [json.dumps(f)])
    with pytest.raises(ValueError, match=match) as ei:
        read_recording(bad)
    assert "line 3" in str(ei.value)


@pytest.mark.parametrize("content, match", [
    (b"", "empty"),
    (b"\x80\x81 not text", "UTF-8"),
    (b"{not json\n", "not JSON"),
    (b'{"format": "something-else", "version": 1}\n', "header"),
    (b'{"format": "channelmarket-recording", "version": 7}\n', "version"),
    (b'{"format": "channelmarket-recording", "version": 1}\n', "no frames"),
    (b'{"format": "channelmarket-recording", "version": 1}\n[1, 2]\n', "JSON object"),
    (b'{"format": "channelmarket-recording", "version": 1}\n{"v": NaN}\n', "non-finite"),
    (b"\x1f\x8b\x08garbage", "gzip"),
])
def test_bad_files_refused(tmp_path, content, match):
    p = tmp_path / "bad.jsonl"
    p.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        read_recording(p)


def test_gzip_of_bad_content_refused(tmp_path):
    p = tmp_path / "bad.jsonl.gz"
    p.write_bytes(gzip.compress(b"hello\n"))
    with pytest.raises(ValueError, match="not JSON"):
        read_recording(p)


def test_recorder_over_the_array_api(tmp_path):
    from channelmarket.envs.core import MarketCore

    core = MarketCore("energy_small")
    rng = np.random.default_rng(0)
    with Recorder(tmp_path / "core.jsonl") as rec:
        core.reset(seed=0)
        rec.add(core)
        for _ in range(3):
            core.step(rng.uniform(-1, 1, (core.n_agents, 4)))
            rec.add(core)
    _, frames = read_recording(tmp_path / "core.jsonl")
    assert [f["summary"]["t"] for f in frames] == [0, 1, 2, 3]
    assert sum(f["summary"]["trades"] for f in frames) > 0


def test_recording_does_not_change_the_market(tmp_path):
    a = channel_market_v0.parallel_env(scenario="energy_small", episode_steps=3)
    b = channel_market_v0.parallel_env(scenario="energy_small", episode_steps=3)
    record_episode(a, tmp_path / "a.jsonl", actions=lambda e: {x: np.full(4, 0.3, np.float32) for x in e.agents}, seed=5)
    b.reset(seed=5)
    while b.agents:
        b.step({x: np.full(4, 0.3, np.float32) for x in b.agents})
    assert a.market_summary() == b.market_summary()
