"""Sound accounting (issue 10): the energy account, network charges and the value of lost load
are booked by the env and priced alike by the welfare and the optimum."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from channelmarket.envs.core import MarketCore
from channelmarket.envs.settlement import BREAKDOWN_FIELDS
from channelmarket.eval.optimum import solve_interval
from channelmarket.eval.welfare import optimal_welfare, realized_welfare
from channelmarket.policies.simple import Truthful

COL = {k: i for i, k in enumerate(BREAKDOWN_FIELDS)}
SOUND = dict(grid_billing="energy_account", network_charge=6.0, value_of_lost_load=2000.0)


def test_optimum_prices_network_charge_and_lost_load_by_hand():
    base = _hand()
    res0 = solve_interval(base)
    # a charge of 6 EUR per P2P MWh: the 6 P2P MWh still trade (every pair gains far more), W falls by 36
    res1 = solve_interval(dataclasses.replace(base, network_charge=6.0))
    assert res1.welfare == pytest.approx(res0.welfare - 36.0, abs=1e-7)
    # VoLL 1000: b0 (need 4) and b1 (need 2) are fully served in the optimum: W unchanged
    res2 = solve_interval(dataclasses.replace(base, value_of_lost_load=1000.0))
    assert res2.welfare == pytest.approx(res0.welfare, abs=1e-6)
    # with no supply and no grid the whole need is lost: W = -VoLL x need
    dry = dataclasses.replace(base, sellable=np.zeros(4), grid_limit=np.zeros(4), value_of_lost_load=1000.0)
    assert solve_interval(dry).welfare == pytest.approx(-6000.0)


def _hand():
    from channelmarket.envs.state import Kind
    from channelmarket.eval.optimum import MarketInterval

    s, c = int(Kind.SOLAR), int(Kind.CONSUMER)
    kind = np.array([s, s, c, c], dtype=np.int8)
    u, v = np.array([0, 1, 3, 0]), np.array([2, 2, 1, 3])
    cap = np.full(4, 1e6)
    return MarketInterval(
        kind=kind, sells_good=np.array([0, 0, -1, -1], np.int8), buys_good=np.array([-1, -1, 0, 0], np.int8),
        sellable=np.array([3.0, 4, 0, 0]), needed=np.array([0, 0, 4.0, 2]), marginal_cost=np.array([2.0, 6, 0, 0]),
        reserve=np.array([2.0, 6, 0, 0]), limit=np.array([0, 0, 100.0, 120]), efficiency=np.ones(4),
        grid_limit=np.array([1.0, 1, 5, 1]), active=np.ones(4, bool), u=u, v=v,
        open=np.array([True, True, True, False]), capacity=cap, balance_u=cap / 2, feed_in=10.0, retail=100.0)


def test_env_books_charges_and_lost_load_and_conserves_money():
    core = MarketCore("energy_small", shock_schedule=({"step": 2, "kind": "DEMAND_SURGE", "duration": 6},),
                      grid_import_share=0.6, **SOUND)
    core.reset(seed=3)
    pol = Truthful()
    pol.bind(core, np.arange(core.n_agents), seed=3)
    m0 = core.money_total()
    charged = lost = 0.0
    grid0 = core.state.grid_account
    while not core.done:
        prev = core.state
        core.step(pol.act(core.observe()))
        bd = core.last_result.settlement.breakdown
        assert bd[:, COL["network_charges"]] == pytest.approx(6.0 * bd[:, COL["bought"]])
        cons = core.agents.is_consumer
        assert bd[:, COL["lost_load"]] == pytest.approx(np.where(cons, 2000.0 * bd[:, COL["unserved"]], 0.0))
        charged += bd[:, COL["network_charges"]].sum()
        lost += bd[:, COL["lost_load"]].sum()
        assert abs(core.money_total() - m0) <= 1e-9 * abs(m0)
        real, opt = realized_welfare(core), optimal_welfare(core, prev).welfare
        assert real <= opt + 1e-7 * (1 + abs(opt))
    assert charged > 0 and lost > 0
    # grid bills never touched the wallets: wallets move only by channel opens and closes
    assert (core.state.energy_account < 0).any()
    assert core.state.grid_account > grid0


def test_grid_bills_do_not_strand_channels():
    """Legacy billing drains industrial consumers' wallets until they cannot open channels; the
    energy account keeps the wallet for channels (the issue's 14 of 15 negative wallets by step 72)."""
    def negative(billing):
        core = MarketCore("energy_default", grid_billing=billing, episode_steps=72)
        core.reset(seed=0)
        pol = Truthful()
        pol.bind(core, np.arange(core.n_agents), seed=0)
        while not core.done:
            core.step(pol.act(core.observe()))
        return int((core.state.wallet[core.agents.is_consumer] < 0).sum())

    assert negative("wallet") > 0
    assert negative("energy_account") == 0


def test_legacy_defaults_leave_the_new_columns_zero():
    core = MarketCore("energy_small")
    core.reset(seed=0)
    core.step(np.zeros((core.n_agents, 4)))
    bd = core.last_result.settlement.breakdown
    assert not bd[:, COL["network_charges"]].any() and not bd[:, COL["lost_load"]].any()
    assert not core.state.energy_account.any()


def test_lightning_report_runs_and_writes_its_numbers(tmp_path, capsys):
    import json

    from channelmarket.eval.lightning_report import main

    out = tmp_path / "l.json"
    assert main(["--markets", "energy_small", "--populations", "truthful", "--seeds", "1", "--episode-steps", "12",
                 "--shocks", "energy_small", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| energy_small | truthful |" in text and "DEMAND_SURGE" in text
    data = json.loads(out.read_text())
    r = data["results"]["energy_small"]["truthful"]
    assert 0.0 <= r["p2p_share"] <= 1.0 and 0.0 < r["eff_channels"] <= 1.0 + 1e-9
    assert r["eff_complete"] <= r["eff_channels"] + 1e-9


def test_lightning_report_refuses_no_seeds(capsys):
    """`--seeds` counts seeds; 0 is a usage error naming the flag (it was an IndexError after the runs)."""
    from channelmarket.eval.lightning_report import main

    with pytest.raises(SystemExit) as exc:
        main(["--markets", "energy_small", "--populations", "truthful", "--seeds", "0", "--no-optimum", "--shocks", ""])
    assert exc.value.code == 2 and "--seeds = 0" in capsys.readouterr().err
