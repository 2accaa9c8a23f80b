"""The baseline table's measures: the step LP bounds every channel mechanism's realized surplus."""

from __future__ import annotations

import numpy as np
import pytest

from channelmarket.envs import MarketCore
from channelmarket.eval.baseline_table import build_table, mean_ci, optimal_surplus, realized_surplus
from channelmarket.policies import make, run_episode


@pytest.mark.parametrize("name, mechanism", [("truthful", "bilateral"), ("eps_auction", "bilateral"),
                                             ("zero_intelligence", "eps_auction")])
def test_realized_surplus_never_exceeds_the_step_optimum(name, mechanism):
    core = MarketCore("energy_small", mechanism=mechanism)
    pairs = []
    run_episode(core, make(name), seed=4,
                callback=lambda c, prev: pairs.append((realized_surplus(c), optimal_surplus(c, prev))))
    real, opt = np.array(pairs).T
    assert (real <= opt + 1e-6 * (1 + opt)).all()
    assert real.sum() > 0.2 * opt.sum()


def test_optimum_of_a_hand_made_step():
    """One generator (2 MWh, grid takes 1) and one consumer (needs 0.5) on one channel."""
    core = MarketCore("energy_small")
    core.reset(0)
    ag = core.agents
    g = int(np.flatnonzero(ag.is_generator)[0])
    c = int(np.flatnonzero(ag.is_consumer)[0])
    st = core.state
    st = st.replace(u=np.array([g]), v=np.array([c]), open=np.array([True]), capacity=np.array([100.0]),
                    balance_u=np.array([50.0]))

    class Result:  # the fields optimal_surplus reads
        sellable = np.where(np.arange(ag.n) == g, 2.0, 0.0)
        needed = np.where(np.arange(ag.n) == c, 0.5, 0.0)

    core.last_result = Result()
    grid = min(ag.grid_limit[g], 1.5)
    expect = 0.5 * (ag.limit[c] - ag.reserve[g]) + grid * (core.scenario.feed_in_tariff - ag.reserve[g])
    assert optimal_surplus(core, st) == pytest.approx(expect)


def test_table_has_a_row_per_population_and_the_references():
    table = build_table(seeds=2, scenario="energy_small", names=("truthful", "random"))
    lines = table.splitlines()
    assert lines[0].startswith("| population | solar EUR/agent")
    rows = [ln.split(" | ")[0].strip("| ") for ln in lines[2:]]
    assert rows == ["truthful", "random", "truthful, `double_auction` clearing", "truthful, `eps_auction` clearing"]
    assert "1.000 ± 0.000" in lines[4]          # the reference against itself


def test_mean_ci_uses_student_t():
    m, h = mean_ci(np.array([1.0, 2.0, 3.0]))
    assert m == 2.0 and h == pytest.approx(4.302653 * 1.0 / np.sqrt(3), rel=1e-5)
