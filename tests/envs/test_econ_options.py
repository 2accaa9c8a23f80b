"""The g-econ scenario options (issue 10): channel sizing by spend, regular-partner channels, the
per-channel negotiation probability, the eps-auction's own prices; each validated, each off by
default (the legacy market), each conserving money."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channelmarket import MarketCore
from channelmarket.envs.channels import expected_spend, update_partners
from channelmarket.envs.scenario import PRESETS, SEED000, SOUND_MARKET, get_scenario
from channelmarket.policies.rollout import run_episode
from channelmarket.policies.simple import Truthful


def test_spend_sizing_scales_channels_with_the_endpoints_turnover():
    core = MarketCore("energy_default", channel_sizing="spend", channel_sizing_steps=8.0)
    core.reset(seed=0)
    s, ag = core.state, core.agents
    spend = expected_spend(core.scenario, ag)
    big = np.maximum(spend[s.u], spend[s.v]) * 8.0
    rel = s.capacity / big   # the draw's relative spread around 1: uniform(50, 200) / 125
    assert rel.min() >= 50 / 125 - 1e-12 and rel.max() <= 200 / 125 + 1e-12
    legacy = MarketCore("energy_default")
    legacy.reset(seed=0)
    assert np.array_equal(legacy.state.u, s.u)      # sizing draws nothing more: same graph
    assert np.allclose(legacy.state.capacity / 125.0, rel)


def test_partners_track_the_largest_counterparty():
    partner = np.full(4, -1, np.int32)
    value = np.zeros(4)
    seller, buyer, paid = np.array([0, 1, 0]), np.array([2, 2, 3]), np.array([5.0, 9.0, 1.0])
    p, v = update_partners(4, seller, buyer, paid, partner, value)
    assert p.tolist() == [2, 2, 1, 0] and v.tolist() == [5.0, 9.0, 9.0, 1.0]
    # a smaller payment to someone else does not displace the partner; the same one accumulates
    p2, v2 = update_partners(4, np.array([3]), np.array([2]), np.array([2.0]), p, v)
    assert p2[2] == 1 and v2[2] == pytest.approx(0.9 * 9.0)
    p3, v3 = update_partners(4, np.array([1]), np.array([2]), np.array([2.0]), p, v)
    assert p3[2] == 1 and v3[2] == pytest.approx(0.9 * 9.0 + 2.0)


def test_reopenings_go_to_regular_partners():
    kw = dict(channel_close_rate=0.3, channel_open_rate=0.6, episode_steps=30)
    core = MarketCore("energy_default", partner_channel_share=1.0, **kw)
    run_episode(core, Truthful(), seed=1)
    s = core.state
    has = s.partner >= 0
    assert has.sum() > 20
    idx = np.flatnonzero(has)
    pairs = {(int(a), int(b)) for a, b in zip(s.u[s.open], s.v[s.open])}
    linked = np.mean([(int(i), int(s.partner[i])) in pairs or (int(s.partner[i]), int(i)) in pairs for i in idx])
    base = MarketCore("energy_default", **kw)
    run_episode(base, Truthful(), seed=1)
    b = base.state
    bpairs = {(int(a), int(c)) for a, c in zip(b.u[b.open], b.v[b.open])}
    blinked = np.mean([(int(i), int(s.partner[i])) in bpairs or (int(s.partner[i]), int(i)) in bpairs for i in idx])
    assert linked > blinked


def test_negotiation_probability_thins_the_negotiations():
    def negotiations(p):
        core = MarketCore("energy_default", negotiation_probability=p, episode_steps=12, start_hour=10.0)
        ep = []
        run_episode(core, Truthful(), seed=4, callback=lambda c, prev: ep.append(c.summary()["negotiations"]))
        return sum(ep)

    full, seed = negotiations(1.0), negotiations(0.3)
    assert 0.15 * full < seed < 0.5 * full
    assert negotiations(0.0) == 0


def test_auction_pricing_settles_within_ask_and_bid_and_conserves_money():
    for pricing in ("auction", "midpoint"):
        core = MarketCore("energy_default", mechanism="eps_auction", auction_pricing=pricing, episode_steps=16,
                          start_hour=9.0)
        core.reset(seed=0)
        m0 = core.money_total()
        prices = []
        rng = np.random.default_rng(0)
        while not core.done:
            core.step(rng.uniform(-1, 1, (core.n_agents, 4)))
            res = core.last_result
            tr, off = res.trades, res.offers
            if tr.qty.size:
                ask, bid = off.ask[tr.seller], off.bid[tr.buyer]
                assert (tr.price >= ask - 1e-9).all() and (tr.price <= bid + 1e-9).all()
                prices.append(tr.price - 0.5 * (ask + bid))
        assert abs(core.money_total() - m0) <= 1e-9 * m0
        gap = np.abs(np.concatenate(prices))
        assert (gap.max() > 1e-6) if pricing == "auction" else (gap.max() < 1e-9)


def test_presets_carry_the_sound_market_and_the_seed():
    for name in ("energy_lightning", "energy_lightning_10k", "energy_lightning_scale_free", "energy_lightning_real"):
        sc = PRESETS[name]
        assert all(getattr(sc, k) == v or k == "topology" for k, v in SOUND_MARKET.items())
    assert PRESETS["energy_lightning_scale_free"].topology == "scale_free"
    assert PRESETS["energy_lightning_real"].topology == "file"
    assert all(getattr(PRESETS["seed000"], k) == v for k, v in SEED000.items())


@pytest.mark.parametrize("field, value, match", [
    ("channel_sizing", "huge", "channel_sizing"), ("channel_sizing_steps", 0.0, "channel_sizing_steps"),
    ("partner_channel_share", 1.5, "partner_channel_share"), ("grid_billing", "card", "grid_billing"),
    ("value_of_lost_load", -1.0, "value_of_lost_load"), ("network_charge", float("nan"), "network_charge"),
    ("auction_pricing", "vickrey", "auction_pricing"), ("negotiation_probability", 2.0, "negotiation_probability"),
])
def test_econ_fields_are_validated_and_round_trip(field, value, match):
    with pytest.raises((ValueError, TypeError), match=match):
        get_scenario("energy_small", **{field: value})
    sc = PRESETS["energy_lightning"]
    from channelmarket.envs.scenario import Scenario

    assert Scenario.from_yaml(sc.to_yaml()) == sc and Scenario.from_json(sc.to_json()) == sc


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**31), steps=st.integers(4, 20), charge=st.floats(0, 50), voll=st.floats(0, 5000),
       share=st.floats(0, 1), p=st.floats(0, 1), topo=st.sampled_from(["random", "kind_aware", "scale_free"]),
       billing=st.sampled_from(["wallet", "energy_account"]), sizing=st.sampled_from(["uniform", "spend"]))
def test_money_and_energy_are_conserved_under_any_econ_options(seed, steps, charge, voll, share, p, topo, billing,
                                                               sizing):
    from channelmarket.envs.breakdown import BREAKDOWN_INDEX as C

    core = MarketCore("energy_small", network_charge=charge, value_of_lost_load=voll, partner_channel_share=share,
                      negotiation_probability=p, topology=topo, grid_billing=billing, channel_sizing=sizing,
                      channel_close_rate=0.2, channel_open_rate=0.4, episode_steps=steps)
    core.reset(seed=seed)
    rng = np.random.default_rng(seed)
    m0 = core.money_total()
    while not core.done:
        core.step(rng.uniform(-1, 1, (core.n_agents, 4)))
        res = core.last_result
        b = res.settlement.breakdown
        assert abs(core.money_total() - m0) <= 1e-9 * max(1.0, abs(m0))
        gen, cons = core.agents.is_generator, core.agents.is_consumer
        sold_side = b[:, C["sold"]] + b[:, C["grid_sold"]] + b[:, C["curtailed"]]
        assert np.allclose(sold_side[gen], np.maximum(res.sellable[gen], b[gen, C["sold"]]), atol=1e-9)
        need_side = b[:, C["bought"]] + b[:, C["grid_bought"]] + b[:, C["unserved"]]
        assert np.allclose(need_side[cons], np.maximum(res.needed[cons], b[cons, C["bought"]]), atol=1e-9)
