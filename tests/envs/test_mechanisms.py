"""Clearing mechanisms are plug-ins: a mechanism defined in this test module (one declaration, no
edit anywhere else) runs a whole episode; scenario validation, the step and evaluation ask the
registry, and no code outside a mechanism's own module compares its name."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest

import channelmarket
from channelmarket.envs import MarketCore, Scenario, mechanisms
from channelmarket.envs.trades import ON_CHAIN, Trades
from channelmarket.eval.optimum import default_network


def clear_posted_price(sc, agents, state, offers) -> Trades:
    """Posted price: everyone trades at the reference price, through the exchange; sellers asking
    at most that price fill buyers bidding at least that price, in agent order."""
    p = float(state.ref_price[0])
    s = np.flatnonzero((offers.sell_qty > 0) & (offers.ask <= p) & (agents.sells_good == 0))
    b = np.flatnonzero((offers.buy_qty > 0) & (offers.bid >= p) & (agents.buys_good == 0))
    if s.size == 0 or b.size == 0:
        return Trades.empty()
    cs, cb = np.cumsum(offers.sell_qty[s]), np.cumsum(offers.buy_qty[b])
    top = min(cs[-1], cb[-1])
    edges = np.unique(np.concatenate([cs[cs < top], cb[cb < top], [top]]))
    starts = np.concatenate([[0.0], edges[:-1]])
    mid = 0.5 * (starts + edges)
    si = np.minimum(np.searchsorted(cs, mid), s.size - 1)
    bi = np.minimum(np.searchsorted(cb, mid), b.size - 1)
    q = edges - starts
    t = q.shape[0]
    return Trades(np.full(t, ON_CHAIN, dtype=np.int64), s[si].astype(np.int64), b[bi].astype(np.int64),
                  np.zeros(t, dtype=np.int64), q, np.full(t, p), 0)


POSTED = mechanisms.Mechanism(name="posted_price", clear=clear_posted_price, settles="exchange",
                              optimum_network="complete", description="everyone trades at the reference price")
NO_TRADE = mechanisms.Mechanism(name="no_trade", clear=lambda sc, agents, state, offers: Trades.empty())


@pytest.fixture
def registered():
    for m in (POSTED, NO_TRADE):
        mechanisms.register(m)
    yield
    for m in (POSTED, NO_TRADE):
        mechanisms.unregister(m.name)


def episode(mechanism: str, seed: int = 0):
    core = MarketCore("energy_small", mechanism=mechanism, episode_steps=24)
    core.reset(seed=seed)
    money0 = core.money_total()
    rng = np.random.default_rng(seed)
    trades = []
    while not core.done:
        core.step(rng.uniform(-1, 1, (core.n_agents, 4)))
        trades.append(core.last_result.trades)
    assert core.money_total() == pytest.approx(money0, rel=1e-12)
    return core, trades


def test_a_mechanism_defined_in_a_test_module_runs_an_episode(registered):
    core, trades = episode("posted_price")
    assert sum(t.qty.shape[0] for t in trades) > 0
    for t in trades:
        assert (t.channel == ON_CHAIN).all()
    assert default_network(core) == "complete"
    core, trades = episode("no_trade")
    assert all(t.qty.shape[0] == 0 for t in trades)
    assert default_network(core) == "channels"
    assert core.summary()["volume"] == 0.0


def test_scenario_validation_asks_the_registry(registered):
    assert Scenario(mechanism="posted_price").mechanism == "posted_price"
    mechanisms.unregister("posted_price")
    with pytest.raises(ValueError, match=r"scenario.mechanism = 'posted_price'; allowed: bilateral, double_auction, "
                                         r"eps_auction, no_trade"):
        Scenario(mechanism="posted_price")
    mechanisms.register(POSTED)


def test_a_mechanism_may_check_its_parameters(registered):
    def needs_rounds(sc):
        if sc.negotiation_rounds < 4:
            raise ValueError(f"scenario.negotiation_rounds = {sc.negotiation_rounds}; mechanism 'picky' needs >= 4")

    mechanisms.register(dataclasses.replace(NO_TRADE, name="picky", parameters=("negotiation_rounds",),
                                            validate=needs_rounds))
    try:
        Scenario(mechanism="picky", negotiation_rounds=4)
        with pytest.raises(ValueError, match="negotiation_rounds = 2; mechanism 'picky' needs >= 4"):
            Scenario(mechanism="picky", negotiation_rounds=2)
    finally:
        mechanisms.unregister("picky")


def test_declarations_are_checked():
    with pytest.raises(ValueError, match="settles = 'wire'; allowed: channels, exchange"):
        mechanisms.Mechanism(name="x", clear=lambda *a: None, settles="wire")
    with pytest.raises(ValueError, match="optimum_network = 'grid'"):
        mechanisms.Mechanism(name="x", clear=lambda *a: None, optimum_network="grid")
    with pytest.raises(ValueError, match="already registered"):
        mechanisms.register(dataclasses.replace(mechanisms.get("bilateral"), description="another"))
    with pytest.raises(ValueError, match="mechanism = 'nope'; allowed: bilateral"):
        mechanisms.get("nope")


def test_built_in_mechanisms_declare_what_evaluation_needs():
    fields = {f.name for f in dataclasses.fields(Scenario)}
    assert mechanisms.names()[:3] == ("bilateral", "double_auction", "eps_auction")
    for name in mechanisms.names():
        m = mechanisms.get(name)
        assert set(m.parameters) <= fields, name
        assert m.description, name
    assert mechanisms.get("double_auction").settles == "exchange"
    assert mechanisms.get("double_auction").optimum_network == "complete"
    assert {mechanisms.get(n).optimum_network for n in ("bilateral", "eps_auction")} == {"channels"}


def test_no_code_outside_a_mechanism_compares_its_name():
    names = set(mechanisms.names())
    root = Path(channelmarket.__file__).parent
    folders = [root] + [Path(__import__(f"channelmarket.{p}", fromlist=["x"]).__file__).parent
                        for p in ("envs", "policies", "training", "eval")]
    own = Path(mechanisms.__file__).parent
    found = []
    for folder in folders:
        for path in folder.rglob("*.py"):
            if own in path.parents:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Compare):
                    for side in [node.left, *node.comparators]:
                        items = side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
                        for c in items:
                            if isinstance(c, ast.Constant) and c.value in names:
                                found.append(f"{path.name}:{node.lineno} compares {c.value!r}")
    assert not found, found
