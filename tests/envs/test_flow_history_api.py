"""The bounded per-channel flow history (issue 10) through the public read API and the recorder:
`MarketCore.channel_states()["flow_history"]` and the frames' `channels.flow_history`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from channelmarket import MarketCore
from channelmarket.envs.recording import Recorder, read_recording, validate_frame
from channelmarket.envs.state import FLOW_HISTORY


def _run(core: MarketCore, steps: int, seed: int = 0) -> list[np.ndarray]:
    core.reset(seed=seed)
    rng = np.random.default_rng(seed)
    flows = []
    for _ in range(steps):
        core.step(rng.uniform(-1, 1, size=(core.n_agents, core.n_actions)))
        flows.append(core.channel_states()["flow"].astype(np.float32))
    return flows


def test_channel_states_carry_the_last_steps_of_flow_oldest_first():
    core = MarketCore("energy_lightning")
    core.reset(seed=0)
    ch = core.channel_states()
    assert ch["flow_history"].shape == (core.scenario.n_channels, FLOW_HISTORY)
    assert not ch["flow_history"].any() and not ch["flow_history"].flags.writeable
    flows = _run(core, 11)
    hist = core.channel_states()["flow_history"]
    with pytest.raises(ValueError):
        hist[0, 0] = 1.0
    core2 = MarketCore("energy_lightning")
    opened_at = np.full(core.scenario.n_channels, -1)
    core2.reset(seed=0)
    rng = np.random.default_rng(0)
    for t in range(11):
        before = core2.channel_states()["open"].copy()
        core2.step(rng.uniform(-1, 1, size=(core2.n_agents, 4)))
        opened_at[core2.channel_states()["open"] & ~before] = t
    stable = opened_at < 11 - FLOW_HISTORY   # slots that did not reopen within the last 8 steps
    expect = np.stack(flows[-FLOW_HISTORY:], axis=1)
    assert np.array_equal(hist[stable], expect[stable])
    assert np.array_equal(hist[:, -1], flows[-1])
    assert np.any(hist[stable] != 0)


def test_fewer_steps_than_the_history_leave_zeros_in_front():
    core = MarketCore("energy_small")
    flows = _run(core, 3)
    hist = core.channel_states()["flow_history"]
    assert not hist[:, :FLOW_HISTORY - 3].any()
    assert np.array_equal(hist[:, -1], flows[-1])


def test_the_recorder_samples_the_flow_history_with_the_channels(tmp_path):
    core = MarketCore("energy_small")
    path = tmp_path / "ep.jsonl"
    rec = Recorder(path, max_channels=5)
    core.reset(seed=0)
    rec.add(core)
    for _ in range(10):
        core.step(np.zeros((core.n_agents, 4)))
        frame = rec.add(core)
    rec.close()
    slots = frame["channels"]["slot"]
    fh = np.asarray(frame["channels"]["flow_history"])
    assert fh.shape == (len(slots), FLOW_HISTORY)
    assert np.allclose(fh, core.channel_states()["flow_history"][slots], atol=1e-4)
    _, frames = read_recording(path)
    assert frames[-1]["channels"]["flow_history"] == frame["channels"]["flow_history"]
    # a recording from before the field still reads; a bad one is refused by name
    old = json.loads(json.dumps(frame))
    del old["channels"]["flow_history"]
    validate_frame(old, 3)
    for bad in ([[0.0] * FLOW_HISTORY] * (len(slots) + 1), [[float("nan")] * FLOW_HISTORY] * len(slots),
                [["x"] * FLOW_HISTORY] * len(slots), "flows"):
        f = json.loads(json.dumps(frame))
        f["channels"]["flow_history"] = bad
        with pytest.raises(ValueError, match="flow_history"):
            validate_frame(f, 3)


def test_a_step_shares_the_older_flow_columns_and_leaves_the_old_state_alone():
    # the history is per-step columns shared between states: a step makes one new column (no [E, H]
    # copy) and writes nothing of the state before it
    core = MarketCore("energy_lightning")
    core.reset(seed=1)
    rng = np.random.default_rng(1)
    for _ in range(5):
        core.step(rng.uniform(-1, 1, size=(core.n_agents, 4)))
    old = core.state
    ring, cols = old.flow_history.copy(), [c.copy() for c in old.flow_columns]
    core.step(rng.uniform(-1, 1, size=(core.n_agents, 4)))
    new = core.state
    assert all(a is b for a, b in zip(new.flow_columns[:-1], old.flow_columns[1:]))
    assert np.array_equal(old.flow_history, ring) and all(np.array_equal(a, b) for a, b in zip(old.flow_columns, cols))
    assert np.array_equal(new.flow_columns[-1], new.flow.astype(np.float32) * ~np.isin(np.arange(new.u.shape[0]),
                                                                                        new.flow_reopened[-1]))


@pytest.mark.parametrize("steps", [3, 8, 13])
def test_a_state_dict_holds_the_ring_and_a_restored_core_continues_with_the_same_history(steps):
    # the state dict keeps the ring buffer `flow_history` (the format before the per-step columns), so
    # dicts written before load unchanged; a restored core's history and steps match the original's
    a, b = MarketCore("energy_lightning"), MarketCore("energy_lightning")
    a.reset(seed=2)
    rng = np.random.default_rng(2)
    for _ in range(steps):
        a.step(rng.uniform(-1, 1, size=(a.n_agents, 4)))
    d = a.state_dict()
    assert d["state"]["flow_history"].shape == (a.scenario.n_channels, FLOW_HISTORY)
    assert "flow_columns" not in d["state"] and "flow_reopened" not in d["state"]
    b.load_state_dict(d)
    assert np.array_equal(b.channel_states()["flow_history"], a.channel_states()["flow_history"])
    for _ in range(FLOW_HISTORY + 2):
        acts = rng.uniform(-1, 1, size=(a.n_agents, 4))
        a.step(acts)
        b.step(acts)
        assert np.array_equal(b.state.flow_history, a.state.flow_history)
        assert np.array_equal(b.channel_states()["flow_history"], a.channel_states()["flow_history"])
