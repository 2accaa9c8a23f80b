"""Plain baselines and the action encoding: what each policy asks for is what the env decodes."""

from __future__ import annotations

import numpy as np

from channelmarket.envs.offers import MIN_QUANTITY, price_span
import pytest

from channelmarket.envs import MarketCore
from channelmarket.envs.state import Kind
from channelmarket.policies import FixedMarkup, RandomPolicy, Truthful, ZeroIntelligence, run_episode
from channelmarket.policies.simple import encode_actions, opening_ask, opening_bid, price_window, storage_direction


def offers_over_episode(policy, scenario="energy_default", seed=0, steps=None):
    """(core, list of (prev state, offers, sellable, needed)) for a whole population run by `policy`."""
    core = MarketCore(scenario)
    seen = []
    run_episode(core, policy, seed=seed, max_steps=steps,
                callback=lambda c, prev: seen.append((prev, c.last_result.offers, c.last_result.sellable,
                                                      c.last_result.needed)))
    return core, seen


def dust_free(q):
    """Offers under MIN_QUANTITY are dropped at decoding."""
    return np.where(q >= MIN_QUANTITY, q, 0.0)


def window(core, prev):
    sc = core.scenario
    span = price_span(sc)
    ref = prev.ref_price[0]
    return ref - span, ref + span


def test_truthful_asks_at_reserve_and_bids_at_limit():
    core, seen = offers_over_episode(Truthful())
    ag = core.agents
    sellers = ag.sells_good >= 0
    buyers = ag.buys_good >= 0
    exact_asks = exact_bids = 0
    for prev, off, sellable, needed in seen:
        lo, hi = window(core, prev)
        # the opening ask is the reserve wherever the window reaches it, else the window's floor
        expect_ask = np.maximum(ag.reserve, lo)
        np.testing.assert_array_equal(off.ask[sellers], expect_ask[sellers])
        at_res = sellers & (ag.reserve >= lo)
        np.testing.assert_array_equal(off.ask[at_res], ag.reserve[at_res])
        exact_asks += at_res.sum()
        expect_bid = np.minimum(ag.limit, hi)
        np.testing.assert_array_equal(off.bid[buyers], expect_bid[buyers])
        at_lim = buyers & (ag.limit <= hi)
        np.testing.assert_array_equal(off.bid[at_lim], ag.limit[at_lim])
        exact_bids += at_lim.sum()
        # full concession: by round K asks reach the reserve and bids the limit
        np.testing.assert_array_equal(off.concession, np.ones(ag.n))
        gen = ag.is_generator
        np.testing.assert_array_equal(off.sell_qty[gen], dust_free(sellable[gen]))
        np.testing.assert_array_equal(off.buy_qty[ag.is_consumer], dust_free(needed[ag.is_consumer]))
    assert exact_asks > 100 and exact_bids > 100


def test_encoding_inverts_decode_inside_the_window():
    core = MarketCore("energy_default")
    core.reset(0)
    ag = core.agents
    idx = np.arange(core.n_agents)
    rng = np.random.default_rng(0)
    sell_ref, buy_ref, span = price_window(core, idx)
    ask_t = np.maximum(ag.reserve, sell_ref - span) + rng.random(idx.size) * span
    bid_t = np.minimum(ag.limit, buy_ref + span) * rng.random(idx.size)
    bid_t = np.maximum(bid_t, buy_ref - span)
    act = encode_actions(core, idx, ask_t, bid_t, 0.3, 0.6, 0.25)
    ask_ok = (ask_t <= np.minimum(sell_ref + span, core.scenario.retail_tariff))
    np.testing.assert_allclose(opening_ask(core, idx, act[:, 0])[ask_ok], ask_t[ask_ok], rtol=1e-12)
    bid_ok = bid_t <= ag.limit
    np.testing.assert_allclose(opening_bid(core, idx, act[:, 1])[bid_ok], bid_t[bid_ok], rtol=1e-12)
    core.step(act)
    off = core.last_result.offers
    np.testing.assert_allclose(off.ask[ask_ok], ask_t[ask_ok], rtol=1e-12)
    np.testing.assert_allclose(off.concession, 0.25)
    gen = ag.is_generator
    np.testing.assert_allclose(off.sell_qty[gen], 0.3 * core.last_result.sellable[gen])
    np.testing.assert_allclose(off.buy_qty[ag.is_consumer], 0.6 * core.last_result.needed[ag.is_consumer])


def test_storage_direction_buys_cheap_sells_dear_and_empties_before_the_end():
    core = MarketCore("energy_default")
    core.reset(0)
    idx = np.flatnonzero(core.agents.kind == Kind.STORAGE)
    base = core.scenario.base_price
    st = core.state
    cheap = st.replace(ref_price=np.array([base - 10.0]))
    dear = st.replace(ref_price=np.array([base + 10.0]))
    late = cheap.replace(t=core.scenario.episode_steps - 1)
    core.state = cheap
    assert (storage_direction(core, idx) == -1).all()
    core.state = dear
    assert (storage_direction(core, idx) == 1).all()
    core.state = late
    assert (storage_direction(core, idx) == 1).all()
    # non-storage agents have no direction
    core.state = st
    assert (storage_direction(core, np.flatnonzero(core.agents.kind != Kind.STORAGE)) == 0).all()


def test_fixed_markup_sellers_post_the_markup_and_hold_it():
    m = 0.2
    core, seen = offers_over_episode(FixedMarkup(markup=m, basis="ref"), steps=30)
    ag = core.agents
    gen = ag.is_generator
    cons = ag.is_consumer
    for prev, off, _, _ in seen:
        lo, hi = window(core, prev)
        ref = prev.ref_price[0]
        target = np.clip(np.maximum(ag.reserve, ref * (1 + m)), lo, hi)
        np.testing.assert_allclose(off.ask[gen], target[gen], rtol=1e-12)
        assert (off.concession[gen] == 0).all()
        np.testing.assert_allclose(off.bid[cons], ref, rtol=1e-12)   # buyers open at the reference price
        assert (off.concession[cons] == 1).all()                     # and take any posted price up to the limit
    core, seen = offers_over_episode(FixedMarkup(markup=0.5, basis="reserve"), steps=5)
    ag = core.agents
    st_idx = ag.is_storage
    for prev, off, _, _ in seen:
        lo, hi = window(core, prev)
        np.testing.assert_allclose(off.ask[st_idx], np.clip(1.5 * ag.reserve[st_idx], lo, hi), rtol=1e-12)
    with pytest.raises(ValueError, match="basis"):
        FixedMarkup(basis="cost")


def test_zero_intelligence_draws_uniformly_within_values():
    core, seen = offers_over_episode(ZeroIntelligence(), seed=3)
    ag = core.agents
    sellers, cons = ag.sells_good >= 0, ag.is_consumer
    rel_ask, rel_bid = [], []
    for prev, off, _, _ in seen:
        lo, hi = window(core, prev)
        assert (off.ask[sellers] >= ag.reserve[sellers]).all()
        assert (off.ask[sellers] <= core.scenario.retail_tariff + 1e-9).all()
        assert (off.bid[cons] <= ag.limit[cons]).all() and (off.bid[cons] >= 0).all()
        a_lo = np.maximum(ag.reserve, lo)
        a_hi = np.minimum(core.scenario.retail_tariff, hi)
        rel_ask.append(((off.ask - a_lo) / (a_hi - a_lo))[sellers])
        b_lo, b_hi = max(lo, 0.0), np.minimum(ag.limit[cons], hi)
        rel_bid.append((off.bid[cons] - b_lo) / (b_hi - b_lo))
    rel_ask, rel_bid = np.concatenate(rel_ask), np.concatenate(rel_bid)
    # uniform on the feasible interval: mean 1/2, variance 1/12, all deciles populated
    for rel in (rel_ask, rel_bid):
        assert rel.min() >= -1e-9 and rel.max() <= 1 + 1e-9
        assert abs(rel.mean() - 0.5) < 0.03 and abs(rel.var() - 1 / 12) < 0.01
        assert (np.histogram(rel, bins=10, range=(0, 1))[0] > 0.07 * rel.size).all()
    # reproducible per seed, different across seeds
    a = run_episode("energy_small", ZeroIntelligence(), seed=5).rewards
    b = run_episode("energy_small", ZeroIntelligence(), seed=5).rewards
    np.testing.assert_array_equal(a, b)


def test_random_policy_is_uniform_in_the_action_box():
    pol = RandomPolicy()
    core = MarketCore("energy_small")
    obs = core.reset(0)
    pol.bind(core, np.arange(core.n_agents), seed=0)
    acts = np.concatenate([pol.act(obs) for _ in range(200)])
    assert acts.shape == (200 * core.n_agents, 4)
    assert acts.min() >= -1 and acts.max() <= 1
    assert np.abs(acts.mean(axis=0)).max() < 0.05
    assert np.abs(acts.var(axis=0) - 1 / 3).max() < 0.03
