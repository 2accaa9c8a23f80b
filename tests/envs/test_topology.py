"""Channel topologies (envs/topology.py): connected graphs of the right size for every topology,
kind-aware channels join a seller and a buyer, the describegraph reader validates its input, and
the bundled example is what its generator writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channelmarket.envs.core import MarketCore
from channelmarket.envs.scenario import get_scenario
from channelmarket.envs.topology import (TOPOLOGIES, example_graph_path, generate_example_graph,
                                         load_describegraph, parse_describegraph, roles)


def _components(n, u, v):
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    return connected_components(coo_matrix((np.ones(u.shape[0]), (u, v)), shape=(n, n)), directed=False)[0]


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("n", [12, 100, 700])
def test_every_topology_is_connected_with_the_scenario_slots(topology, n):
    core = MarketCore("energy_default", topology=topology, n_agents=n, episode_steps=6)
    core.reset(seed=5)
    st_ = core.state
    assert st_.u.shape == (core.scenario.n_channels,)
    o = st_.open
    assert (st_.u != st_.v).all()
    assert _components(n, st_.u[o], st_.v[o]) == 1
    m0 = core.money_total()
    rng = np.random.default_rng(0)
    while not core.done:
        core.step(rng.uniform(-1, 1, (n, 4)))
    assert abs(core.money_total() - m0) <= 1e-9 * m0
    # same seed, same graph
    again = MarketCore("energy_default", topology=topology, n_agents=n, episode_steps=6)
    again.reset(seed=5)
    assert np.array_equal(again.state.u, st_.u) and np.array_equal(again.state.v, st_.v)


def test_kind_aware_channels_join_a_seller_and_a_buyer():
    core = MarketCore("energy_default", topology="kind_aware", channel_close_rate=0.3, channel_open_rate=0.5)
    core.reset(seed=1)
    sell, buy = roles(core.agents)
    for _ in range(10):
        s = core.state
        o = s.open
        ok = (sell[s.u] & buy[s.v]) | (buy[s.u] & sell[s.v])
        assert ok[o].all()
        core.step(np.zeros((core.n_agents, 4)))


def test_scale_free_has_hubs_and_geometric_uses_positions():
    sf = MarketCore("energy_default", topology="scale_free", n_agents=1000)
    sf.reset(seed=0)
    rnd = MarketCore("energy_default", n_agents=1000)
    rnd.reset(seed=0)

    def maxdeg(c):
        s = c.state
        return np.bincount(np.r_[s.u[s.open], s.v[s.open]]).max()

    assert maxdeg(sf) > 4 * maxdeg(rnd)
    geo = MarketCore("energy_default", topology="geometric")
    geo.reset(seed=0)
    s, xy = geo.state, geo.agents.xy
    length = np.linalg.norm(xy[s.u] - xy[s.v], axis=1).mean()
    rlen = np.linalg.norm(rnd.agents.xy[rnd.state.u] - rnd.agents.xy[rnd.state.v], axis=1).mean()
    assert length < 0.5 * rlen


def test_file_topology_keeps_relative_capacities():
    core = MarketCore("energy_default", topology="file")
    core.reset(seed=0)
    cap = core.state.capacity[core.state.open]
    assert np.median(cap) == pytest.approx(125.0, rel=0.2)
    assert cap.max() / cap.min() > 20   # log-normal capacities, not the uniform 50-200


def test_bundled_example_is_what_the_generator_writes():
    data = example_graph_path().read_bytes()
    assert data == generate_example_graph()
    lf = load_describegraph()
    assert 200 <= len(lf.pub_key) <= 500 and lf.node1.shape[0] > len(lf.pub_key)


def _graph():
    return json.loads(generate_example_graph(n_nodes=6, seed=1))


@pytest.mark.parametrize("break_it, field", [
    (lambda d: d.pop("edges"), "'edges'"),
    (lambda d: d["nodes"][0].pop("pub_key"), "nodes[0].pub_key"),
    (lambda d: d["nodes"].append(dict(d["nodes"][1])), "listed twice"),
    (lambda d: d["edges"][2].update(node1_pub="02nope"), "edges[2].node1_pub"),
    (lambda d: d["edges"][1].update(node2_pub=d["edges"][1]["node1_pub"]), "edges[1]: node1_pub == node2_pub"),
    (lambda d: d["edges"][0].update(capacity="-5"), "edges[0].capacity"),
    (lambda d: d["edges"][0].update(capacity="12abc"), "edges[0].capacity"),
    (lambda d: d["edges"][0].pop("capacity"), "edges[0].capacity is missing"),
    (lambda d: d["edges"][3]["node2_policy"].update(fee_base_msat="x"), "edges[3].node2_policy.fee_base_msat"),
    (lambda d: d["edges"][0].update(node1_policy=[1]), "edges[0].node1_policy"),
])
def test_describegraph_errors_name_the_field(break_it, field):
    d = _graph()
    break_it(d)
    with pytest.raises(ValueError, match=None) as err:
        parse_describegraph(d)
    assert field in str(err.value)


def test_topology_fields_are_validated(tmp_path):
    with pytest.raises(ValueError, match="scenario.topology = 'ring'"):
        get_scenario("energy_small", topology="ring")
    with pytest.raises(ValueError, match="topology_file"):
        get_scenario("energy_small", topology_file="g.json")
    bad = tmp_path / "g.json"
    bad.write_text('{"nodes": [], "edges": []}')
    core = MarketCore("energy_small", topology="file", topology_file=str(bad))
    with pytest.raises(ValueError, match="lists 0 node"):
        core.reset(seed=0)
    good = tmp_path / "small.json"
    good.write_bytes(generate_example_graph(n_nodes=8, seed=3))
    core = MarketCore("energy_small", topology="file", topology_file=str(good))   # 12 agents on 8 nodes
    core.reset(seed=0)
    s = core.state
    assert _components(core.n_agents, s.u[s.open], s.v[s.open]) == 1


@settings(max_examples=25, deadline=None)
@given(n=st.integers(5, 60), degree=st.floats(2.0, 9.0), topo=st.sampled_from(TOPOLOGIES[1:5]),
       seed=st.integers(0, 2**31))
def test_generated_graphs_are_connected_without_self_loops(n, degree, topo, seed):
    from channelmarket.envs.physics import sample_agents
    from channelmarket.envs.topology import build

    sc = get_scenario("energy_default", topology=topo, mean_degree=degree, n_agents=n)
    rng = np.random.default_rng(seed)
    g = build(sc, sample_agents(sc, rng), rng)
    assert g.u.shape == (sc.n_channels,) and (g.u != g.v).all()
    assert g.u.min() >= 0 and g.v.max() < n
    assert _components(n, g.u[g.open], g.v[g.open]) == 1


def test_file_fee_policies_become_the_channels_routing_fees():
    core = MarketCore("energy_lightning_real")
    assert core.scenario.routing_fees_on
    core.reset(seed=0)
    s = core.state
    rates = s.fee_rate[s.open] * 1e6   # ppm: the mean of the two directions' policies in the file
    lf = load_describegraph()
    allowed = set(((lf.fee_rate_ppm[:, 0] + lf.fee_rate_ppm[:, 1]) / 2).tolist())
    assert set(np.round(rates, 6).tolist()) <= {round(x, 6) for x in allowed}
    assert (s.fee_base[s.open] >= 0).all() and (s.fee_base[s.open] < 0.01).all()
