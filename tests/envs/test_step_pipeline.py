"""The step pipeline's fast paths keep the contract: the lazily computed step summary, one market
as a batch of one (cached views, the step's own batch state reused), the fused channel lifecycle,
MarketState built from a field dict, and the shared index checks of both cores."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from channelmarket.envs import channels, core as core_mod, kernels
from channelmarket.envs.core import MarketCore, StepInfo
from channelmarket.envs.state import MarketState


def _acts(core, seed):
    return np.random.default_rng(seed).uniform(-1, 1, (core.n_agents, 4))


def test_step_summary_is_computed_only_when_read(monkeypatch):
    calls = []
    real = core_mod.summary
    monkeypatch.setattr(core_mod, "summary", lambda *a: calls.append(1) or real(*a))
    core = MarketCore("energy_small", episode_steps=8)
    core.reset(0)
    info = core.step(_acts(core, 0))[-1]
    assert calls == [] and isinstance(info, StepInfo)
    assert "summary" in info and sorted(info) == ["breakdown", "summary"]
    assert info["summary"]["t"] == 1 and len(calls) == 1
    assert core.summary() is info["summary"] and len(calls) == 1   # one computation, shared


def test_a_step_summary_read_later_is_the_summary_of_its_step():
    eager, lazy = MarketCore("energy_small", episode_steps=8), MarketCore("energy_small", episode_steps=8)
    eager.reset(3)
    lazy.reset(3)
    infos, expected = [], []
    for i in range(4):
        a = _acts(eager, i)
        expected.append(eager.step(a)[-1]["summary"])
        infos.append(lazy.step(a)[-1])
        if i == 1:
            eager.inject_shock("supply_shortage", 2)
            lazy.inject_shock("supply_shortage", 2)
    assert [info["summary"] for info in infos] == expected
    assert lazy.summary() == eager.summary()   # after the shock: the current state's summary
    info = infos[0]
    plain = pickle.loads(pickle.dumps(info))
    assert type(plain) is dict and plain["summary"] == expected[0]
    assert dict(info).keys() == {"summary", "breakdown"} and {**info}["summary"] == expected[0]
    json.dumps(info["summary"])


def test_step_info_summary_can_be_replaced_before_it_is_read():
    info = StepInfo(lambda: pytest.fail("computed"), breakdown=1)
    info["summary"] = {"t": 9}
    assert info["summary"] == {"t": 9} and info.get("summary") == {"t": 9} and len(info) == 2


def test_observation_after_a_shock_sees_the_shock_not_the_steps_cached_state():
    core = MarketCore("energy_small", episode_steps=8)
    core.reset(1)
    obs = core.step(_acts(core, 1))[0]
    col = core.obs_schema["shock_supply_shortage"]
    assert not obs[:, col].any()
    core.inject_shock("supply_shortage", 3)
    assert (core.observe()[:, col] == 1.0).all()


def test_agent_params_pickle_without_the_pipelines_caches():
    core = MarketCore("energy_small", episode_steps=4)
    core.reset(0)
    core.step(_acts(core, 0))
    assert "_as_batch" in core.agents.__dict__
    again = pickle.loads(pickle.dumps(core.agents))
    assert "_as_batch" not in again.__dict__
    np.testing.assert_array_equal(again.kind, core.agents.kind)


def test_market_state_from_fields_is_the_dataclass_and_names_missing_fields():
    core = MarketCore("energy_small", episode_steps=4)
    core.reset(0)
    st = core.state
    d = dict(st.__dict__)
    again = MarketState.from_fields(d)
    assert again == st and type(again) is MarketState
    with pytest.raises(Exception):
        again.t = 3   # still frozen
    del d["wallet"]
    with pytest.raises(KeyError, match="wallet"):
        MarketState.from_fields(d)


def test_fused_lifecycle_equals_the_stepwise_lifecycle():
    """`kernels.lifecycle_uniform` (one pass) against the pieces `channels.apply_lifecycle` runs
    for other topologies: close kernel, `reopen_candidates`, `size_capacity`, `funding`, openings."""
    for preset, seed in (("energy_default", 0), ("energy_lightning", 1)):
        core = MarketCore(preset, episode_steps=12)
        core.reset(seed)
        for i in range(4):
            core.step(_acts(core, i))
        sc, ag, st = core.scenario, core.agents, core.state
        e, n = st.u.shape[0], ag.n
        rng = np.random.default_rng(seed)
        draw, cand = rng.random(e), rng.random((2, e))
        active = st.active.copy()
        active[::9] = False
        wallet = st.wallet * rng.uniform(0.0, 1.5, n)
        zeros = np.zeros(e, dtype=np.int64)
        is_open, w, closed, slots = kernels.close_channels(
            u=st.u, v=st.v, capacity=st.capacity, balance_u=st.balance_u, is_open=st.open, active=active,
            wallet=wallet, draw=draw, close_rate=sc.channel_close_rate, open_rate=sc.channel_open_rate,
            fee=sc.onchain_fee)
        nu, nv, cap = channels.reopen_candidates(sc, n, cand[:, slots])
        cap = channels.size_capacity(sc, ag, nu, nv, cap)
        fu, fv = channels.funding(cap, sc.initial_split)
        want = kernels.open_channels(slots=slots, nu=nu, nv=nv, cap=cap, fund_u=fu, fund_v=fv, fee=sc.onchain_fee,
                                     u=st.u, v=st.v, capacity=st.capacity, balance_u=st.balance_u, is_open=is_open,
                                     active=active, wallet=w, slot_market=zeros, m=1)
        lo, hi = sc.channel_capacity
        got = kernels.lifecycle_uniform(
            u=st.u, v=st.v, capacity=st.capacity, balance_u=st.balance_u, is_open=st.open, active=active,
            wallet=wallet, draw=draw, cand=cand, cand_stream=np.zeros((0, 4), dtype=np.uint64),
            close_rate=float(sc.channel_close_rate), open_rate=float(sc.channel_open_rate), fee=float(sc.onchain_fee),
            n=n, offset=zeros, slot_market=zeros,
            m=1, lo=float(lo), hi=float(hi), split=float(sc.initial_split),
            spend=channels.expected_spend(sc, ag) if sc.channel_sizing == "spend" else np.zeros(0),
            sizing_steps=float(sc.channel_sizing_steps), mean_cap=0.5 * (lo + hi), parts=1 + seed % 3)
        u, v, capacity, balance_u, now_open, wallet_after, n_closed, n_opened, opened = got
        assert opened.shape[0] > 0 and n_closed[0] == closed
        for x, y in zip((u, v, capacity, balance_u, wallet_after, n_opened, opened), want):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(now_open, is_open)


@pytest.mark.parametrize("batch", [False, True])
def test_both_cores_check_agent_indices_and_channel_slots_alike(batch):
    core = MarketCore("energy_small", n_markets=2) if batch else MarketCore("energy_small")
    core.reset(0)
    before = (core.batch if batch else core.state).wallet.copy()
    with pytest.raises(ValueError, match=f"agent index {core.n_agents} out of range; allowed: 0..{core.n_agents - 1}"):
        core.remove_agents(np.array([0, core.n_agents]))
    with pytest.raises(TypeError, match="agents must be a 1-D integer array of agent indices"):
        core.remove_agents(np.array([[1]]))
    with pytest.raises(TypeError, match="close_channels = 'no'; allowed: True or False"):
        core.remove_agents(np.array([1]), close_channels="no")
    e = (core.batch if batch else core.state).u.shape[0]
    with pytest.raises(ValueError, match=f"channel slot -1 out of range; allowed: 0..{e - 1}"):
        core.fail_channels(np.array([-1]))
    with pytest.raises(TypeError, match="channels must be a 1-D integer array of channel slots"):
        core.fail_channels(np.array([0.5]))
    np.testing.assert_array_equal((core.batch if batch else core.state).wallet, before)
    assert (core.batch if batch else core.state).active.all()


def test_observation_twin_fills_uninitialized_buffers_without_float_warnings(monkeypatch):
    """The observation buffer is np.empty (every row is written): the NumPy twin must not read it
    (np.take(out=) of another dtype copied its garbage in and warned on signaling NaNs)."""
    import warnings

    core = MarketCore("energy_small", episode_steps=6)
    core.reset(2)
    core.step(_acts(core, 2))
    seen = []
    k = kernels.observation_rows
    monkeypatch.setattr(k, "impl", lambda *a: seen.append(a) or k.twin(*a))
    want = core.observe().copy()
    buf, *rest = seen[0]
    snan = np.full(buf.shape, np.uint32(0x7FA00000)).view(np.float32)   # signaling NaNs
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        k.twin(snan, *rest)
    np.testing.assert_array_equal(snan.T, want)
