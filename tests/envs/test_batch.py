"""Batched markets: every market of a batch is bit-identical to the same market run alone."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from channelmarket import MarketCore
from channelmarket.envs.batch_core import BatchCore, market_seeds


def _alone(name, seeds, **kw):
    cores = [MarketCore(name, **kw) for _ in seeds]
    obs = [c.reset(seed=s) for c, s in zip(cores, seeds)]
    return cores, obs


def _assert_same(batch, singles, obs, outs, n):
    for i, c in enumerate(singles):
        rows = slice(i * n, (i + 1) * n)
        assert np.array_equal(obs[rows], outs[i][0]), f"market {i}: observation"
        ms, s = batch.market_state(i), c.state
        for f in ("soc", "wallet", "balance_u", "u", "v", "open", "capacity", "ref_price", "clearing_price",
                  "price_history", "holdings", "owed", "utilization", "active", "flow", "fee_base", "fee_rate",
                  "energy_account", "partner", "partner_value", "flow_history"):
            assert np.array_equal(getattr(ms, f), getattr(s, f)), f"market {i}: {f}"
        for f in ("t", "shock_kind", "shock_remaining", "fee_sink", "grid_account", "topology_version"):
            assert getattr(ms, f) == getattr(s, f), f"market {i}: {f}"


CASES = [("energy_small", dict(mechanism="bilateral", shock_rate=0.2)),
         ("energy_small", dict(mechanism="double_auction", shock_rate=0.2)),
         ("energy_small", dict(mechanism="eps_auction", shock_rate=0.2)),
         ("energy_rec", dict(n_solar=4, n_wind=2, n_storage=2, n_residential=4, n_industrial=2, mean_degree=3,
                             episode_steps=10)),
         ("energy_ev", dict(n_solar=4, n_wind=2, n_storage=1, n_ev=3, n_residential=4, n_industrial=2,
                            mean_degree=3, episode_steps=30))]


@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}-{k.get('mechanism', '')}" for n, k in CASES])
def test_each_market_matches_itself_alone(name, kw):
    m = 3
    batch = MarketCore(name, n_markets=m, **kw)
    seeds = market_seeds(11, m)
    obs = batch.reset(seed=11)
    singles, obs1 = _alone(name, seeds, **kw)
    n = singles[0].n_agents
    assert isinstance(batch, BatchCore) and batch.n_agents == m * n
    assert np.array_equal(obs, np.concatenate(obs1))
    rng = np.random.default_rng(0)
    steps = min(batch.scenario.episode_steps, 12)
    for k in range(steps):
        if k == 3:  # a shock in one market only
            batch.inject_shock("demand_surge", 4, market=1)
            singles[1].inject_shock("demand_surge", 4)
        a = rng.uniform(-1.2, 1.2, (m * n, 4))
        obs, r, te, tr, info = batch.step(a)
        outs = [c.step(a[i * n:(i + 1) * n]) for i, c in enumerate(singles)]
        _assert_same(batch, singles, obs, outs, n)
        assert np.array_equal(r, np.concatenate([o[1] for o in outs]))
        assert np.array_equal(tr, np.concatenate([o[3] for o in outs]))
    np.testing.assert_allclose(batch.money_total(), [c.money_total() for c in singles], rtol=0, atol=1e-6)
    for i, c in enumerate(singles):   # per-market summary: the single market's, up to float summation order
        got, want = batch.summary(i), c.summary()
        for k, v in got.items():
            assert v == (want[k] if isinstance(v, str) else pytest.approx(want[k], rel=1e-9, abs=1e-9)), (i, k)


def test_list_of_seeds_and_seedless_resets_follow_each_market():
    batch = MarketCore("energy_small", n_markets=2)
    batch.reset(seed=[5, 9])
    a, b = MarketCore("energy_small"), MarketCore("energy_small")
    a.reset(seed=5), b.reset(seed=9)
    obs = batch.reset()  # each market's next seedless episode
    assert np.array_equal(obs, np.concatenate([a.reset(), b.reset()]))


def test_auto_reset_at_different_steps():
    """Market 1 starts two steps late: it ends two steps after market 0, each reset on its own."""
    kw = dict(episode_steps=5)
    batch = MarketCore("energy_small", n_markets=2, auto_reset=True, **kw)
    batch.reset(seed=[1, 2])
    a, b = MarketCore("energy_small", **kw), MarketCore("energy_small", **kw)
    a.reset(seed=1), b.reset(seed=2)
    n = a.n_agents
    rng = np.random.default_rng(3)
    for _ in range(2):  # market 1 restarts after two steps: its episode ends later
        act = rng.uniform(-1, 1, (2 * n, 4))
        batch.step(act), a.step(act[:n]), b.step(act[n:])
    batch.reset_markets([1], seeds=[7])
    ob = b.reset(seed=7)
    assert np.array_equal(batch.observe()[n:], ob)
    ended_at = []
    for k in range(9):
        act = rng.uniform(-1, 1, (2 * n, 4))
        obs, r, te, tr, info = batch.step(act)
        out_a, out_b = a.step(act[:n]), b.step(act[n:])
        assert np.array_equal(r, np.concatenate([out_a[1], out_b[1]]))
        if info["ended"].any():
            ended_at.append((k, info["reset_markets"].tolist()))
            for i, out in enumerate((out_a, out_b)):
                if info["ended"][i]:  # the ended market's last observation, before its reset
                    assert np.array_equal(info["final_observation"][i * n:(i + 1) * n], out[0])
            assert tr[info["ended"][batch.market_of]].all() and not tr[~info["ended"][batch.market_of]].any()
        for i, (c, out) in enumerate(((a, out_a), (b, out_b))):
            if c.done:
                out = (c.reset(),)
            assert np.array_equal(obs[i * n:(i + 1) * n], out[0]), (k, i)
    assert ended_at[0] == (2, [0]) and ended_at[1] == (4, [1])


def test_stepping_an_ended_market_without_auto_reset_raises():
    batch = MarketCore("energy_small", n_markets=2, episode_steps=2)
    batch.reset(seed=0)
    n = batch.n_agents
    for _ in range(2):
        batch.step(np.zeros((n, 4)))
    assert batch.dones.all() and batch.done
    with pytest.raises(RuntimeError, match="reset_markets"):
        batch.step(np.zeros((n, 4)))
    batch.reset_markets(np.array([True, False]))
    assert batch.dones.tolist() == [False, True]


def test_state_dict_round_trip_continues_exactly():
    batch = MarketCore("energy_small", n_markets=3, shock_rate=0.3)
    batch.reset(seed=4)
    n = batch.n_agents
    rng = np.random.default_rng(0)
    for _ in range(3):
        batch.step(rng.uniform(-1, 1, (n, 4)))
    d = batch.state_dict()
    other = MarketCore("energy_small", n_markets=3, shock_rate=0.3)
    other.load_state_dict(d)
    a = rng.uniform(-1, 1, (n, 4))
    assert np.array_equal(batch.step(a)[0], other.step(a)[0])
    with pytest.raises(ValueError, match="n_markets"):
        MarketCore("energy_small", n_markets=2).load_state_dict(d)


def test_bad_input_names_the_field():
    with pytest.raises(ValueError, match="n_markets"):
        MarketCore("energy_small", n_markets=0)
    batch = MarketCore("energy_small", n_markets=2)
    batch.reset(seed=0)
    with pytest.raises(ValueError, match="market index 5"):
        batch.inject_shock("demand_surge", 2, market=5)
    with pytest.raises(ValueError, match="list of 3 seeds"):
        batch.reset(seed=[1, 2, 3])
    with pytest.raises(ValueError, match=r"expected \(24, 4\)"):
        batch.step(np.zeros((12, 4)))


@settings(max_examples=6, deadline=None)
@given(m=st.integers(1, 4), seed=st.integers(0, 2**32 - 1), shock_market=st.integers(0, 3))
def test_hypothesis_any_market_of_any_batch_matches_alone(m, seed, shock_market):
    kw = dict(episode_steps=6, shock_rate=0.1)
    batch = MarketCore("energy_small", n_markets=m, **kw)
    obs = batch.reset(seed=seed)
    j = shock_market % m
    single = MarketCore("energy_small", **kw)
    ob1 = single.reset(seed=market_seeds(seed, m)[j])
    n = single.n_agents
    assert np.array_equal(obs[j * n:(j + 1) * n], ob1)
    batch.inject_shock("supply_shortage", 3, market=j)
    single.inject_shock("supply_shortage", 3)
    rng = np.random.default_rng(seed)
    for _ in range(6):
        a = rng.uniform(-1, 1, (m * n, 4))
        obs, r, *_ = batch.step(a)
        o1, r1, *_ = single.step(a[j * n:(j + 1) * n])
        assert np.array_equal(obs[j * n:(j + 1) * n], o1) and np.array_equal(r[j * n:(j + 1) * n], r1)


# ---- the Lightning market (issue 10) in a batch --------------------------------------------------
# Channels close and reopen often enough that topology rules, partner channels and reopened
# channels' fee draws happen within a few steps; faults and background payments draw from each
# market's exogenous generator.
CHURN = dict(channel_close_rate=0.05, channel_open_rate=0.3)
LIGHTNING = [("energy_lightning", dict(agent_fault_rate=0.01, channel_fault_rate=0.02, background_payment_rate=0.2,
                                       splice_above=0.9, **CHURN)),
             ("energy_lightning_scale_free", dict(background_payment_rate=0.1, **CHURN)),
             ("energy_lightning_real", dict(n_solar=8, n_wind=4, n_storage=4, n_residential=12, n_industrial=4,
                                            **CHURN)),
             ("seed000", dict()),
             ("energy_lightning", dict(mechanism="eps_auction", **CHURN))]


def _lightning_case(name, kw):
    m = 3
    batch = MarketCore(name, n_markets=m, episode_steps=10, **kw)
    seeds = market_seeds(23, m)
    obs = batch.reset(seed=23)
    singles, obs1 = _alone(name, seeds, episode_steps=10, **kw)
    n = singles[0].n_agents
    assert np.array_equal(obs, np.concatenate(obs1))
    money0 = batch.money_total().copy()
    np.testing.assert_allclose(money0, [c.money_total() for c in singles], rtol=0, atol=1e-9)
    rng = np.random.default_rng(1)
    seen = dict(opened=0, routed=0, background=0, faults=0)
    while not batch.dones.all():
        a = rng.uniform(-1, 1, (m * n, 4))
        obs, r, te, tr, info = batch.step(a)
        outs = [c.step(a[i * n:(i + 1) * n]) for i, c in enumerate(singles)]
        _assert_same(batch, singles, obs, outs, n)
        assert np.array_equal(r, np.concatenate([o[1] for o in outs]))
        assert np.array_equal(te, np.concatenate([o[2] for o in outs]))
        # money is conserved in every market of the batch
        np.testing.assert_allclose(batch.money_total(), money0, rtol=1e-9)
        _assert_same_reports(batch, singles)
        for i, c in enumerate(singles):
            got, want = batch.summary(i), c.summary()
            assert got.keys() == want.keys() - {"negotiations"}
            for k, v in got.items():
                assert v == (want[k] if isinstance(v, str) else pytest.approx(want[k], rel=1e-9, abs=1e-9)), (i, k)
            seen["opened"] += got["channels_opened"]
            seen["routed"] += got["routed_payments"]
            seen["background"] += got["background_payments"]
            seen["faults"] += got["agent_faults"] + got["channel_faults"]
    return seen


def _assert_same_reports(batch, singles):
    """Each market's payment report, split off the batch's one settlement and aftermath
    (`payments.markets`), is bit for bit the report of the market alone (counts, hops, fees)."""
    got = batch.last_result.payments
    for i, c in enumerate(singles):
        want = c.last_result.settlement.payments
        if want is None:
            assert got is None
            continue
        for k in ("failures", "routed", "hops", "fees_paid", "earned", "background", "background_failed", "rebalances",
                  "splices_in", "splices_out", "agent_faults", "channel_faults"):
            a, b = np.asarray(getattr(got[i], k)), np.asarray(getattr(want, k))
            assert a.dtype.kind == b.dtype.kind and a.shape == b.shape and a.tobytes() == b.tobytes(), (i, k, a, b)
            assert type(getattr(got[i], k)) is type(getattr(want, k)) or isinstance(getattr(want, k), np.ndarray), k


@pytest.mark.parametrize("name,kw", LIGHTNING, ids=[f"{n}-{k.get('mechanism', 'bilateral')}" for n, k in LIGHTNING])
def test_lightning_markets_match_themselves_alone(name, kw):
    seen = _lightning_case(name, kw)
    assert seen["opened"] > 0   # reopenings (topology rule, partners, fee draws) happened
    if kw.get("agent_fault_rate"):
        assert seen["faults"] > 0 and seen["background"] > 0 and seen["routed"] > 0


def test_channel_market_v1_face_matches_a_batch_market():
    """The PettingZoo face of the sound market steps market m of a batch of its scenario exactly."""
    from channelmarket.envs.channel_market_v1 import ChannelMarketV1

    kw = dict(episode_steps=6, channel_open_rate=0.3, channel_close_rate=0.05)
    envs = [ChannelMarketV1("energy_small", **kw) for _ in range(2)]
    batch = MarketCore(envs[0].core.scenario, n_markets=2)
    obs = batch.reset(seed=[4, 8])
    got = [e.reset(seed=s)[0] for e, s in zip(envs, (4, 8))]
    n = envs[0].core.n_agents
    for i, (e, o) in enumerate(zip(envs, got)):
        assert np.array_equal(obs[i * n:(i + 1) * n], np.stack([o[a] for a in e.possible_agents]))
    rng = np.random.default_rng(2)
    while not batch.dones.all():
        a = rng.uniform(-1, 1, (2 * n, 4))
        obs, r, *_ = batch.step(a)
        for i, e in enumerate(envs):
            o, rew, *_ = e.step({ag: a[i * n + j] for j, ag in enumerate(e.possible_agents)})
            rows = slice(i * n, (i + 1) * n)
            assert np.array_equal(obs[rows], np.stack([o[ag] for ag in e.possible_agents])), f"market {i}"
            assert np.array_equal(r[rows], np.array([rew[ag] for ag in e.possible_agents])), f"market {i}"


def test_remove_agents_and_fail_channels_close_per_market():
    """Force-closes by API land in their own market (fee sink, wallets), as in the market alone."""
    kw = dict(episode_steps=6, agent_fault_rate=0.0)
    batch = MarketCore("energy_lightning", n_markets=2, **kw)
    batch.reset(seed=[3, 5])
    singles, _ = _alone("energy_lightning", [3, 5], **kw)
    n, e = singles[0].n_agents, singles[0].state.u.shape[0]
    batch.remove_agents(np.array([n + 2]), close_channels=True)
    singles[1].remove_agents(np.array([2]), close_channels=True)
    batch.fail_channels(np.array([1, e + 4]))
    singles[0].fail_channels(np.array([1]))
    singles[1].fail_channels(np.array([4]))
    rng = np.random.default_rng(5)
    for _ in range(3):
        a = rng.uniform(-1, 1, (2 * n, 4))
        obs, *_ = batch.step(a)
        outs = [c.step(a[i * n:(i + 1) * n]) for i, c in enumerate(singles)]
        _assert_same(batch, singles, obs, outs, n)
    with pytest.raises(ValueError, match="channel slot"):
        batch.fail_channels(np.array([2 * e]))
    with pytest.raises(TypeError, match="close_channels"):
        batch.remove_agents(np.array([0]), close_channels="yes")
