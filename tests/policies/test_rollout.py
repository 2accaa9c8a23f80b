"""Episode runner: mixed populations through both faces, assignment checks, bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest

from channelmarket import channel_market_v0
from channelmarket.envs import MarketCore
from channelmarket.envs.state import Kind
from channelmarket.policies import (BASELINES, EpsAuctionBaseline, Policy, RiskFactor, Truthful, ZeroIntelligence,
                                    make, register, run_episode, run_episode_dict)
from channelmarket.policies.rollout import TOTAL_FIELDS, resolve_assignments


def mixed() -> dict:
    """Solar truthful, wind zero-intelligence, storage eps-auction, consumers risk-factor."""
    return {"solar": Truthful(), "wind": ZeroIntelligence(), "storage": EpsAuctionBaseline(), "consumer": RiskFactor()}


class Counting(Policy):
    """Truthful actions; counts its act calls and the row counts it was given."""

    name = "counting"

    def __init__(self) -> None:
        super().__init__()
        self.inner = Truthful()
        self.calls: list[int] = []
        self.updates = 0

    def bind(self, core, agents, seed=None):
        super().bind(core, agents, seed)
        self.inner.bind(core, agents, seed)

    def act(self, obs):
        self.calls.append(obs.shape[0])
        return self.inner.act(obs)

    def update(self, core):
        self.updates += 1


def test_both_faces_give_identical_totals_for_a_mixed_population():
    seed = 7
    arr = run_episode("energy_small", mixed(), seed=seed)
    env = channel_market_v0.parallel_env(scenario="energy_small")
    dic = run_episode_dict(env, mixed(), seed=seed)
    assert arr.n_steps == dic.n_steps == env.scenario.episode_steps
    np.testing.assert_array_equal(arr.rewards, dic.rewards)
    for k in TOTAL_FIELDS:
        np.testing.assert_array_equal(arr.totals[k], dic.totals[k], err_msg=k)
    for k in arr.steps:
        np.testing.assert_array_equal(arr.steps[k], dic.steps[k], err_msg=k)
    assert arr.by_kind == dic.by_kind
    # the mix really traded peer-to-peer and every kind took part
    assert arr.totals["bought"].sum() > 0
    assert set(arr.by_kind) == {"solar", "wind", "storage", "consumer"}


def test_same_seed_same_episode_different_seed_different_episode():
    a = run_episode("energy_small", mixed(), seed=3)
    b = run_episode("energy_small", mixed(), seed=3)
    c = run_episode("energy_small", mixed(), seed=4)
    np.testing.assert_array_equal(a.rewards, b.rewards)
    assert not np.array_equal(a.rewards, c.rewards)


def test_one_act_call_per_policy_per_step_with_its_rows():
    core = MarketCore("energy_small")
    pols = [Counting(), Counting()]
    kind = core.reset(0) is not None and core.agents.kind
    sellers = np.flatnonzero(kind != Kind.CONSUMER)
    buyers = np.flatnonzero(kind == Kind.CONSUMER)
    res = run_episode(core, [(pols[0], sellers), (pols[1], buyers)], seed=0)
    for pol, idx in zip(pols, (sellers, buyers)):
        assert pol.calls == [idx.size] * res.n_steps
        assert pol.updates == res.n_steps


def test_totals_and_aggregates_are_consistent():
    res = run_episode("energy_small", make("truthful"), seed=1)
    np.testing.assert_allclose(res.totals["profit"], res.rewards.sum(axis=0))
    assert res.welfare == pytest.approx(res.rewards.sum())
    # money paid peer-to-peer arrives on the other side
    assert res.totals["p2p_paid"].sum() == pytest.approx(res.totals["p2p_received"].sum())
    assert res.totals["p2p_paid"].sum() > 0
    np.testing.assert_allclose(res.totals["grid_use"], res.totals["grid_sold"] + res.totals["grid_bought"])
    total = sum(agg["profit"] for agg in res.by_kind.values())
    assert total == pytest.approx(res.welfare)
    for name, agg in res.by_kind.items():
        mask = res.kind == Kind[name.upper()]
        assert agg["agents"] == mask.sum()
        assert agg["profit_mean"] == pytest.approx(res.totals["profit"][mask].mean())
    assert res.steps["welfare"].sum() == pytest.approx(res.welfare)


def test_callback_sees_the_state_the_step_started_from():
    seen = []
    res = run_episode("energy_small", make("truthful"), seed=2,
                      callback=lambda core, prev: seen.append((prev.t, core.state.t)))
    assert seen == [(t, t + 1) for t in range(res.n_steps)]


def test_max_steps_stops_early():
    res = run_episode("energy_small", make("random"), seed=0, max_steps=5)
    assert res.n_steps == 5


def test_uncovered_agents_are_named():
    core = MarketCore("energy_small")
    core.reset(0)
    kind = core.agents.kind
    with pytest.raises(ValueError, match=r"not covered.*consumer"):
        resolve_assignments(kind, {"solar": Truthful(), "wind": Truthful(), "storage": Truthful()})
    with pytest.raises(ValueError, match=r"not covered by any policy: 3 \(wind\)"):
        resolve_assignments(kind, [(Truthful(), np.delete(np.arange(kind.size), 3))])


def test_duplicated_agents_are_named():
    n = MarketCore("energy_small").n_agents
    kind = np.repeat(np.arange(4), [3, 2, 2, n - 7])
    with pytest.raises(ValueError, match=r"more than once: 0 \(solar\), 1 \(solar\)"):
        resolve_assignments(kind, [(Truthful(), np.arange(n)), (Truthful(), np.array([0, 1]))])


def test_bad_assignments_are_rejected():
    kind = np.repeat(np.arange(4), [3, 2, 2, 5])
    pol = Truthful()
    with pytest.raises(ValueError, match="two agent subsets"):
        resolve_assignments(kind, [(pol, np.arange(6)), (pol, np.arange(6, 12))])
    with pytest.raises(ValueError, match="not an agent kind"):
        resolve_assignments(kind, {"farmer": Truthful()})
    with pytest.raises(ValueError, match="outside"):
        resolve_assignments(kind, [(Truthful(), np.arange(13))])
    with pytest.raises(TypeError, match="not a Policy"):
        resolve_assignments(kind, [("truthful", np.arange(12))])
    with pytest.raises(TypeError):
        resolve_assignments(kind, "truthful")


def test_masks_all_key_and_single_policy_are_accepted():
    kind = np.repeat(np.arange(4), [3, 2, 2, 5])
    out = resolve_assignments(kind, [(Truthful(), kind == 3), (Truthful(), kind != 3)])
    assert [idx.tolist() for _, idx in out] == [list(range(7, 12)), list(range(7))]
    out = resolve_assignments(kind, {"consumer": Truthful(), "all": ZeroIntelligence()})
    assert out[1][1].tolist() == list(range(7))
    out = resolve_assignments(kind, Truthful())
    assert out[0][1].tolist() == list(range(12))


def test_registry_makes_every_baseline_and_names_the_allowed_ones():
    for name in BASELINES:
        pol = make(name)
        assert isinstance(pol, Policy) and pol.name == name
    with pytest.raises(ValueError, match="allowed: truthful, fixed_markup"):
        make("greedy")
    with pytest.raises(TypeError, match="'truthful'"):
        make("truthful", markup=0.1)
    assert make("fixed_markup", markup=0.3).markup == 0.3
    with pytest.raises(ValueError, match="already registered"):
        register("truthful", Truthful)


def test_every_baseline_runs_a_whole_episode_with_finite_actions():
    for name in BASELINES:
        res = run_episode("energy_small", make(name), seed=0)
        assert np.isfinite(res.rewards).all(), name
