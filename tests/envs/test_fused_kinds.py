"""The built-in kinds' weather and energy hooks as two compiled passes (`kinds.fused`): the same
numbers as the hooks, bit for bit, and the hooks whenever a kind is not a built-in one."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from channelmarket.envs import compiled
from channelmarket.envs.batch import BatchAgents, NormalBlock, _blocks, _next_interval, one_market
from channelmarket.envs.core import MarketCore
from channelmarket.envs.kinds import consumer, fused, solar, wind

needs_numba = pytest.mark.skipif(not compiled.USE_NUMBA, reason="the fused passes run with numba on")


def _hooks_off(ba: BatchAgents, sc) -> None:
    ba.__dict__["_fused"] = (sc, None)   # the step's plan cache: None runs the hooks


def _states_equal(a, b) -> None:
    for f in ("cloud", "wind_speed", "generation", "demand", "soc", "wallet", "balance_u", "last_profit"):
        assert getattr(a, f).tobytes() == getattr(b, f).tobytes(), f


@needs_numba
@pytest.mark.parametrize("name", ["energy_small", "energy_default", "energy_ev"])
def test_a_market_steps_the_same_with_the_passes_and_with_the_hooks(name):
    cores = [MarketCore(name, episode_steps=40), MarketCore(name, episode_steps=40)]
    rng = np.random.default_rng(5)
    for c in cores:
        c.reset(seed=11)
    for c in cores:
        c.step(np.zeros((c.n_agents, c.n_actions)))   # builds the market's batch view
    _hooks_off(cores[1].agents.__dict__["_as_batch"][1], cores[1].scenario)
    for t in range(30):
        acts = rng.uniform(-1.2, 1.2, (cores[0].n_agents, cores[0].n_actions))
        for c in cores:
            c.step(acts)
        _states_equal(cores[0].state, cores[1].state)
        assert np.array_equal(cores[0].observe(), cores[1].observe())


@needs_numba
def test_a_batch_on_different_clocks_steps_the_same_with_the_passes_and_with_the_hooks():
    cores = [MarketCore("energy_small", n_markets=3, episode_steps=40),
             MarketCore("energy_small", n_markets=3, episode_steps=40)]
    rng = np.random.default_rng(6)
    for c in cores:
        c.reset(seed=2)
    for t in range(12):
        if t == 4:
            for c in cores:
                c.reset_markets([1])   # market 1 back to step 0: the markets' clocks differ from here on
        acts = rng.uniform(-1, 1, (cores[0].n_agents, 4))
        _hooks_off(cores[1].bagents, cores[1].scenario)
        for c in cores:
            c.step(acts)
        for f in ("cloud", "wind_speed", "generation", "demand", "wallet", "soc"):
            assert getattr(cores[0].batch, f).tobytes() == getattr(cores[1].batch, f).tobytes(), f
    assert len(set(cores[0].batch.t.tolist())) > 1


@needs_numba
def test_the_passes_equal_the_hooks_at_every_hour_and_from_any_normals_column():
    core = MarketCore("energy_default", episode_steps=200)
    core.reset(seed=3)
    core.step(np.zeros((core.n_agents, 4)))
    sc = core.scenario
    ba, bs, _, k = one_market(sc, core.agents, core.state)
    p = fused.plan(_blocks(ba))
    z = np.random.default_rng(0).normal(0, 3, (1, k + 2))
    for t in range(0, 96, 5):
        t_next = np.array([t])
        a = _next_interval(sc, ba, bs, t_next, NormalBlock(z, 2))
        _hooks_off(ba, sc)
        b = _next_interval(sc, ba, bs, t_next, NormalBlock(z, 2))
        ba.__dict__.pop("_fused")
        assert ba.__dict__.get("_fused") is None and p is not None
        for x, y in zip(a, b):
            assert x.tobytes() == y.tobytes()


def test_a_kind_with_its_own_hooks_goes_through_them():
    core = MarketCore("energy_default")
    core.reset(seed=0)
    blocks = core.agents.blocks
    assert fused.plan(blocks) is not None
    # a built-in kind given another energy hook (a custom kind): the step runs the hooks
    custom = [(dataclasses.replace(spec, energy=lambda *a: None) if spec is solar.SPEC else spec, sl)
              for spec, sl in blocks]
    assert fused.plan(custom) is None
    # the same hooks in two blocks (a second kind declaring wind's hooks): the hooks too
    twice = list(blocks) + [(wind.SPEC, slice(blocks[-1][1].stop, blocks[-1][1].stop + 3))]
    assert fused.plan(twice) is None
    # consumer's energy hook with a weather hook of its own is not the built-in consumer
    odd = [(dataclasses.replace(spec, weather=solar.weather) if spec is consumer.SPEC else spec, sl)
           for spec, sl in blocks]
    assert fused.plan(odd) is None


def test_the_plan_draws_the_weather_normals_first_in_block_order():
    core = MarketCore("energy_default")
    core.reset(seed=0)
    p = fused.plan(core.agents.blocks)
    sizes = {spec.name: sl.stop - sl.start for spec, sl in core.agents.blocks}
    assert p.weather[:, 3].tolist() == [0, sizes["solar"]]
    assert p.consumer[2] == sizes["solar"] + sizes["wind"]
    assert p.normals == sizes["solar"] + sizes["wind"] + sizes["consumer"]
