"""Every compiled kernel against its NumPy twin, on real market states (and the whole step with
numba switched off in a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from channelmarket.envs import kernels
from channelmarket.envs.clearing import bilateral_agreements_numpy, ration
from channelmarket.envs.core import MarketCore
from channelmarket.envs.settlement import book_agents_numpy, pay_trades_numpy
from channelmarket.envs.step import current_tradable
from channelmarket.envs.offers import decode

pytestmark = pytest.mark.skipif(not kernels.HAVE_NUMBA, reason="numba not installed: only the NumPy twins run")


def states(scenario: str, seed: int, steps: int):
    core = MarketCore(scenario, episode_steps=max(steps + 1, 2))
    core.reset(seed)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        acts = rng.uniform(-1, 1, (core.n_agents, 4))
        acts[rng.random(acts.shape) < 0.15] = rng.choice([-1.0, 0.0, 1.0])
        yield core, acts
        core.step(acts)


def close(a, b):
    for x, y in zip(a, b):
        np.testing.assert_allclose(np.asarray(x, dtype=float), np.asarray(y, dtype=float), rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("scenario, seed", [("energy_small", 0), ("energy_default", 1), ("energy_default", 2)])
def test_kernels_equal_their_numpy_twins(scenario, seed):
    from channelmarket.envs import clearing

    checked = 0
    for core, acts in states(scenario, seed, 30):
        sc, ag, st = core.scenario, core.agents, core.state
        sellable, needed = current_tradable(sc, ag, st)
        off = decode(sc, ag, core.check_actions(acts), st.ref_price, sellable, needed, st.active)
        # agreements: identical (same float expressions)
        k = clearing.bilateral_agreements(sc, ag, st, off)
        n_ = bilateral_agreements_numpy(sc, ag, st, off)
        for x, y in zip(k[:4], n_[:4]):
            np.testing.assert_array_equal(x, y)
        assert k[4] == n_[4]
        channel, seller, buyer, price, _ = k
        # rationing within channel balances
        qty_k, capped_k, side_k = kernels.ration_pairs(channel, seller, buyer, price, st.u, st.balance_u,
                                                       st.capacity, off.sell_qty, off.buy_qty, ag.n)
        side = np.where(st.u[channel] == buyer, st.balance_u[channel], st.capacity[channel] - st.balance_u[channel])
        with np.errstate(divide="ignore", invalid="ignore"):
            payable = np.where(price > 0, side / price, np.inf)
        qty_n, capped_n = ration(seller, buyer, off.sell_qty, off.buy_qty, ag.n, payable)
        close([qty_k, side_k], [qty_n, side])
        np.testing.assert_array_equal(capped_k, capped_n)
        # payments and booking
        tr = clearing.clear(sc, ag, st, off)
        cut = tr.cut if tr.cut is not None else np.zeros(tr.qty.shape[0], dtype=np.int8)
        args = (tr.channel, tr.seller, tr.buyer, tr.qty, tr.price, cut, st.u, st.capacity, st.balance_u, ag.n, 1e-9)
        close(kernels.pay_trades(*args), pay_trades_numpy(*args))
        paid = pay_trades_numpy(*args)
        book = (ag.is_storage, ag.is_generator, ag.is_consumer, ag.efficiency, ag.capacity, ag.grid_limit,
                ag.marginal_cost, ag.limit, sellable, needed, st.soc, st.wallet, paid[5], paid[6], paid[7],
                paid[8], paid[11], paid[12], sc.feed_in_tariff, sc.retail_tariff)
        bk, bn = kernels.book_agents(*book), book_agents_numpy(*book)
        close(bk[:2], bn[:2])
        assert bk[2] == pytest.approx(bn[2], rel=1e-12, abs=1e-9)
        close([bk[3]], [bn[3]])
        # channel closes, liquidity, utilization
        draw = np.random.default_rng(checked).random(st.u.shape[0])
        active = st.active.copy()
        if checked % 3 == 2:
            active[::7] = False
        cargs = (st.u, st.v, st.capacity, st.balance_u, st.open, active, st.wallet, draw, 0.3, 0.4, 0.05)
        ck, cn = kernels.close_channels(*cargs), kernels.close_channels_numpy(*cargs)
        np.testing.assert_array_equal(ck[0], cn[0])
        close([ck[1]], [cn[1]])
        assert ck[2] == cn[2]
        np.testing.assert_array_equal(ck[3], cn[3])
        opened = np.flatnonzero(draw < 0.05)
        aargs = (st.utilization, st.flow, st.capacity, opened, 0.9, ag.n, st.u, st.v, st.capacity, st.balance_u, st.open)
        close(kernels.channel_aftermath(*aargs), kernels.channel_aftermath_numpy(*aargs))
        checked += 1
    assert checked == 30


_TRAJECTORY = """
import json, sys
import numpy as np
from channelmarket.envs.core import MarketCore
core = MarketCore(sys.argv[1]); core.reset(int(sys.argv[2]))
rng = np.random.default_rng(5)
out = []
for _ in range(int(sys.argv[3])):
    obs, rew, *_ = core.step(rng.uniform(-1, 1, (core.n_agents, 4)))
    out.append([float(obs.astype(float).sum()), float(rew.sum()), float(core.state.wallet.sum()),
                float(core.state.balance_u.sum()), float(core.state.ref_price[0]), int(core.state.open.sum())])
print(json.dumps(out))
"""


def test_whole_episode_is_the_same_without_numba():
    def run(numba: str):
        env = dict(os.environ, CHANNELMARKET_NUMBA=numba)
        out = subprocess.run([sys.executable, "-c", _TRAJECTORY, "energy_default", "3", "40"], env=env,
                             capture_output=True, text=True, timeout=300, check=True)
        return np.array(json.loads(out.stdout))

    with_numba, without = run("1"), run("0")
    np.testing.assert_allclose(with_numba, without, rtol=1e-9, atol=1e-6)


def test_observation_kernel_equals_numpy(monkeypatch):
    for core, acts in states("energy_default", 4, 12):
        if core.state.t == 6:
            core.remove_agents(np.arange(0, core.n_agents, 9))
        with_kernel = core.observe()
        monkeypatch.setattr(kernels, "agent_rows", None)
        without = core.observe()
        monkeypatch.undo()
        np.testing.assert_array_equal(with_kernel, without)
        assert with_kernel.dtype == np.float32 and with_kernel.shape == (core.n_agents, 30)
