"""Observations stay inside the declared Box for every valid scenario (issue 8, item 6)."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channelmarket.envs.core import MarketCore
from channelmarket.envs.observations import OBS_HIGH, OBS_LOW, OBS_NAMES
from channelmarket.envs.scenario import MECHANISMS, Scenario
from channelmarket.envs.shocks import SHOCK_NAMES

SPACE = spaces.Box(OBS_LOW, OBS_HIGH, dtype=np.float32)


def assert_in_space(obs: np.ndarray, where: str) -> None:
    assert obs.dtype == np.float32 and obs.shape[1] == len(OBS_NAMES)
    bad = ~(np.isfinite(obs) & (obs >= OBS_LOW) & (obs <= OBS_HIGH))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise AssertionError(f"{where}: obs[{i}, {OBS_NAMES[j]}] = {obs[i, j]} outside "
                             f"[{OBS_LOW[j]}, {OBS_HIGH[j]}] ({int(bad.any(axis=1).sum())} agents)")
    assert all(SPACE.contains(row) for row in np.ascontiguousarray(obs[:3]))


def test_issue_example_expensive_generators_stay_in_bounds():
    """feed_in=1, retail=6, base=3: wind costs (2, 8) put 4 of 100 reserves above the retail tariff."""
    core = MarketCore("energy_default", feed_in_tariff=1, retail_tariff=6, base_price=3)
    obs = core.reset(seed=0)
    assert (core.agents.reserve > 6).sum() > 0  # the case exists
    assert_in_space(obs, "reset")
    i = OBS_NAMES.index("reserve")
    assert obs[core.agents.reserve > 6, i].min() == 1.0
    for _ in range(3):
        obs, *_ = core.step(np.random.default_rng(0).uniform(-1, 1, (core.n_agents, 4)))
        assert_in_space(obs, "step")


def _pair(draw, lo, hi):
    a = draw(st.floats(lo, hi))
    return (a, draw(st.floats(a, hi)))


@st.composite
def scenarios(draw):
    counts = {k: draw(st.integers(0, 4)) for k in ("n_solar", "n_wind", "n_storage", "n_residential", "n_industrial")}
    counts["n_solar"] = max(counts["n_solar"], draw(st.integers(0, 1)))
    if counts["n_solar"] + counts["n_wind"] + counts["n_storage"] == 0:
        counts["n_wind"] = 1
    if counts["n_residential"] + counts["n_industrial"] + counts["n_storage"] == 0:
        counts["n_industrial"] = 1
    feed_in = draw(st.one_of(st.just(0.0), st.floats(0.0, 1e4)))
    retail = draw(st.one_of(st.floats(feed_in, feed_in + 10.0), st.floats(feed_in, 1e6)).filter(lambda r: r > feed_in))
    episode_steps = draw(st.integers(1, 40))
    schedule = draw(st.lists(st.tuples(st.integers(0, episode_steps - 1), st.sampled_from(SHOCK_NAMES[1:]),
                                       st.integers(1, 1000)), max_size=3))
    return Scenario(
        **counts,
        mean_degree=draw(st.floats(2.0, 20.0)),
        channel_capacity=_pair(draw, 1e-9, 1e9),
        initial_split=draw(st.floats(0.0, 1.0)),
        channel_open_rate=draw(st.floats(0.0, 1.0)),
        channel_close_rate=draw(st.floats(0.0, 1.0)),
        initial_wallet=draw(st.one_of(st.just(0.0), st.floats(0.0, 1e12))),
        step_minutes=draw(st.floats(1e-3, 1440.0)),
        episode_steps=episode_steps,
        start_hour=draw(st.floats(0.0, 24.0, exclude_max=True)),
        feed_in_tariff=feed_in, retail_tariff=retail, base_price=draw(st.floats(feed_in, retail)),
        price_volatility=draw(st.floats(0.0, 1.0)),
        price_imbalance_gain=draw(st.floats(0.0, 10.0)),
        mechanism=draw(st.sampled_from(MECHANISMS)),
        negotiation_rounds=draw(st.integers(1, 20)),
        grid_export_share=draw(st.floats(0.0, 100.0)),
        grid_import_share=draw(st.floats(0.0, 100.0)),
        solar_capacity=_pair(draw, 1e-9, 1e6),
        wind_capacity=_pair(draw, 1e-9, 1e6),
        storage_energy=_pair(draw, 1e-9, 1e6),
        storage_c_rate=draw(st.floats(1e-6, 100.0)),
        storage_efficiency=_pair(draw, 1e-6, 1.0),
        residential_load=_pair(draw, 1e-9, 1e6),
        industrial_load=_pair(draw, 1e-9, 1e6),
        solar_cost=_pair(draw, 0.0, 1e6),
        wind_cost=_pair(draw, 0.0, 1e6),
        wind_mean=draw(st.floats(0.0, 100.0)),
        load_noise=draw(st.floats(0.0, 1.0)),
        shock_schedule=schedule,
        shock_rate=draw(st.floats(0.0, 1.0)),
    )


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenarios(), st.integers(0, 2**32 - 1), st.sampled_from([None, *SHOCK_NAMES[1:]]))
def test_observations_stay_in_the_space_for_every_valid_scenario(sc, seed, shock):
    core = MarketCore(sc)
    assert_in_space(core.reset(seed=seed), "reset")
    rng = np.random.default_rng(seed)
    for k in range(min(4, sc.episode_steps)):
        if shock is not None and k == 1:
            core.inject_shock(shock, int(rng.integers(1, 2 * sc.episode_steps + 2)))
            assert_in_space(core.observe(), "after a shock")
        acts = rng.choice([-1.0, 1.0], (core.n_agents, 4)) if k % 2 else rng.uniform(-3, 3, (core.n_agents, 4))
        obs, rew, *_ = core.step(acts)
        assert_in_space(obs, f"step {k}")
        assert np.isfinite(rew).all()
