"""Goods end to end (envs/goods, envs/goods_trading.py): renewable-energy certificates as a second
good — issue, quota, clearing per good over the same channels, per-good prices, conservation of
certificates and money, observations, summary, the PettingZoo API on `energy_rec`."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channelmarket import channel_market_v0
from channelmarket.envs import BREAKDOWN_FIELDS, PRESETS, MarketCore, Scenario
from channelmarket.envs.goods import GOOD_NAMES
from channelmarket.envs.goods.rec import obligated
from channelmarket.envs.observations import OBS_NAMES, obs_fields
from channelmarket.envs.state import Kind
from channelmarket.policies import make, run_episode

COL = {k: i for i, k in enumerate(BREAKDOWN_FIELDS)}
SMALL_REC = Scenario(name="rec_small", goods=("energy", "rec"), n_solar=4, n_wind=2, n_storage=2, n_residential=3,
                     n_industrial=3, mean_degree=5.0, step_minutes=60.0, episode_steps=24, rec_quota=0.6)


def test_registry_and_scenario():
    assert GOOD_NAMES[:2] == ("energy", "rec")
    assert PRESETS["energy_rec"].goods == ("energy", "rec") and PRESETS["energy_default"].goods == ("energy",)
    sc = PRESETS["energy_rec"]
    assert Scenario.from_yaml(sc.to_yaml()) == sc
    for bad in (("rec",), ("energy", "coal"), ("energy", "energy"), ()):
        with pytest.raises(ValueError, match="scenario.goods"):
            Scenario(goods=bad)
    with pytest.raises(ValueError, match="rec_penalty"):
        Scenario(rec_penalty=-1.0)


def test_single_good_markets_keep_their_layout():
    core = MarketCore("energy_default")
    obs = core.reset(seed=0)
    assert obs.shape[1] == len(OBS_NAMES) == 30 and core.state.holdings.shape == (core.n_agents, 1)
    assert not any(k.startswith("rec_") for k in core.summary())


@settings(max_examples=6, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31 - 1), mechanism=st.sampled_from(["bilateral", "double_auction", "eps_auction"]))
def test_certificates_and_money_are_conserved(seed, mechanism, rollout):
    sc = SMALL_REC.replace(mechanism=mechanism)
    m0 = None
    for core, prev, res in rollout(sc, seed):
        s = core.state
        m0 = prev.money_total() if m0 is None else m0
        assert abs(core.money_total() - m0) <= 1e-9 * max(1.0, abs(m0))
        # issued = held + retired, nobody holds a negative stock
        assert abs(s.issued[1] - s.holdings[:, 1].sum() - s.retired[1]) <= 1e-9 * max(1.0, s.issued[1])
        assert (s.holdings[:, 1] >= -1e-12).all() and (s.owed[:, 1] >= -1e-12).all()
        # channels never pay more than they hold, whichever goods they carried
        assert ((s.balance_u >= 0) & (s.balance_u <= s.capacity)).all()
        # only renewable generators are issued certificates, for the energy they delivered
        b = res.settlement.breakdown
        gen = np.isin(core.agents.kind, [Kind.SOLAR, Kind.WIND]) & prev.active
        np.testing.assert_allclose(s.issued[1] - prev.issued[1], (b[gen, COL["sold"]] + b[gen, COL["grid_sold"]]).sum(),
                                   rtol=1e-9, atol=1e-9)
    assert s.issued[1] > 0


def test_per_good_prices_trades_and_quota_penalty(rollout):
    sc = SMALL_REC
    rec_trades = 0
    for core, prev, res in rollout(sc, 4, "truthful"):
        s = core.state
        assert 0.0 <= s.ref_price[1] <= sc.rec_penalty
        assert sc.feed_in_tariff <= s.ref_price[0] <= sc.retail_tariff
        g = res.goods
        for tr, paid in zip(g.trades, g.paid_qty):
            assert (tr.good == 1).all()
            rec_trades += int((paid > 0).sum())
            assert ((tr.price >= 0) & (tr.price <= sc.rec_penalty)).all()
    assert rec_trades > 0
    # the last step: obligations retired against holdings, the rest penalised at rec_penalty each
    ob = obligated(sc, core.agents)
    owed_before = prev.owed[:, 1] + sc.rec_quota * (res.settlement.breakdown[:, COL["bought"]]
                                                    + res.settlement.breakdown[:, COL["grid_bought"]]) * ob
    assert (s.owed[~ob, 1] == 0).all()
    assert np.isclose(g.penalty, (s.owed[ob, 1] * sc.rec_penalty).sum())
    assert (s.holdings[ob, 1] * s.owed[ob, 1] == 0).all(), "an obligated consumer retires before it is penalised"
    assert s.retired[1] > 0 and (owed_before[ob] >= s.owed[ob, 1] - 1e-12).all()


def test_buying_certificates_lowers_the_penalty():
    """Obligated consumers that bid for certificates pay fewer penalties than ones that do not."""
    def penalty(quantity):
        core = MarketCore(SMALL_REC)
        core.reset(seed=9)
        a = np.zeros((core.n_agents, 4))
        a[:, 0], a[:, 1], a[:, 3] = -1.0, 1.0, 1.0   # asks low, bids high, full concession
        a[:, 2] = 1.0
        ob = obligated(SMALL_REC, core.agents)
        a[ob, 2] = quantity
        while not core.done:
            core.step(a)
        return core.last_result.goods.penalty

    assert penalty(1.0) < penalty(-1.0)


def test_observation_shows_own_goods(rollout):
    sc = SMALL_REC
    names = [f[0] for f in obs_fields(sc)]
    assert names[:30] == list(OBS_NAMES) and names[30:] == ["rec_ref_price", "rec_clearing_price", "rec_held", "rec_owed"]
    for core, prev, res in rollout(sc, 1):
        pass
    obs = core.observe()
    assert obs.shape == (sc.n_agents, 34)
    low, high = core.obs_low, core.obs_high
    assert ((obs >= low) & (obs <= high)).all()
    storage = core.agents.kind == Kind.STORAGE   # trades no certificates: sees none of their columns
    assert (obs[storage, 30:] == 0).all()
    solar = core.agents.kind == Kind.SOLAR
    assert np.allclose(obs[solar, 30], core.state.ref_price[1] / sc.rec_penalty)


def test_summary_per_good():
    core = MarketCore(SMALL_REC)
    core.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(10):
        core.step(rng.uniform(-1, 1, (core.n_agents, 4)))
    s = core.summary()
    for k in ("rec_ref_price", "rec_clearing_price", "rec_volume", "rec_supply", "rec_demand", "rec_held",
              "rec_owed", "rec_issued", "rec_retired"):
        assert k in s and np.isfinite(s[k])
    assert np.isclose(s["rec_held"], core.state.holdings[:, 1].sum())


def test_baselines_run_in_a_market_with_certificates():
    for policy in ("risk_factor", "zero_intelligence", "eps_auction"):
        res = run_episode(SMALL_REC, {"all": make(policy)}, seed=2)
        assert np.isfinite(res.totals["profit"]).all()


@pytest.mark.filterwarnings(r"ignore:reset options \['options'\] are unknown and ignored:UserWarning")  # PettingZoo's test passes reset(options={"options": 1})
def test_pettingzoo_parallel_api_on_energy_rec():
    from pettingzoo.test import parallel_api_test

    env = channel_market_v0.parallel_env(scenario="energy_rec", episode_steps=12)
    parallel_api_test(env, num_cycles=12)
    assert env.observation_space(env.possible_agents[0]).shape == (34,)
