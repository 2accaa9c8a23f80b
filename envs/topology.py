"""Channel topologies: which agents share a payment channel at reset, and between whom closed slots reopen.

`scenario.topology` picks the graph (all vectorized NumPy/SciPy, drawn from the state's channel
generator `rng` at reset; nothing here runs inside a step except `reopen_pairs`):

| topology      | graph at reset                                                                      | reopenings |
|---------------|-------------------------------------------------------------------------------------|------------|
| `random`      | today's graph: a random recursive spanning tree plus uniform extra edges (default)   | uniform    |
| `kind_aware`  | every channel joins a seller and a buyer (storage counts as both): a random bipartite recursive tree plus random seller-buyer edges | seller-buyer |
| `scale_free`  | preferential attachment like the public Lightning graph: a recursive tree whose parents are drawn by weight plus Chung-Lu extra edges (power-law weights, exponent 2.3) | by degree + 1 |
| `geometric`   | agents' positions (`AgentParams.xy`) finally used: the minimum spanning tree of the k-nearest-neighbour graph, then the shortest remaining edges | uniform |
| `small_world` | Watts-Strogatz: a ring over a random order, each agent joined to its k next, the non-ring edges rewired with probability 0.1 | uniform |
| `file`        | a real channel graph in `lncli describegraph` JSON (`topology_file`, default the bundled example of 300 nodes), validated and mapped onto the agents | by degree + 1 |

Every graph is connected and has exactly `scenario.n_channels` slots: the spanning tree comes
first, further edges fill the slots, and slots left over start closed (the lifecycle may open
them). A `file` graph keeps the file's relative channel capacities (scaled so the median is the
mean of `channel_capacity`) and its routing policies (`Graph.fee_base`, `fee_rate_ppm`, per
direction): with routing fees on, a file channel's fee policy is the mean of its two directions,
the base fee converted to EUR at the capacities' scale (the reset draws no fees for it). Mapping a file of M nodes onto N agents: the N nodes first
reached by a breadth-first search from the best-connected node are kept (M >= N), or every node
is kept and the N - M further agents attach by one channel each to an endpoint drawn by degree.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

TOPOLOGIES = ("random", "kind_aware", "scale_free", "geometric", "small_world", "file")
SCALE_FREE_EXPONENT = 2.3   # degree exponent of the scale-free weights (the public Lightning graph: ~2.1-2.5)
SMALL_WORLD_REWIRING = 0.1  # Watts-Strogatz rewiring probability
EXAMPLE_GRAPH = "lightning_example.json"   # the bundled file (envs/data/), `generate_example_graph()`


class Graph(NamedTuple):
    """A topology's channels at reset, [E] each. `capacity` is None when the scenario's sizing draws it;
    the fee arrays are None unless the graph came from a file (msat, and parts per million)."""

    u: np.ndarray
    v: np.ndarray
    open: np.ndarray
    capacity: "np.ndarray | None" = None      # relative capacity (median 1) from a file
    fee_base: "np.ndarray | None" = None       # [E, 2] base fee in the same relative unit as capacity: u -> v, v -> u
    fee_rate_ppm: "np.ndarray | None" = None   # [E, 2] proportional fee, parts per million


# ---- building at reset ---------------------------------------------------------------------------

def build(sc: Any, agents: Any, rng: np.random.Generator) -> Graph:
    """The reset graph of `sc.topology` over `agents` with `sc.n_channels` slots."""
    n, e = sc.n_agents, sc.n_channels
    if sc.topology == "random":
        u, v = build_graph(n, e, rng)
        return Graph(u, v, np.ones(e, dtype=bool))
    if sc.topology == "kind_aware":
        u, v = _kind_aware(agents, e, rng)
    elif sc.topology == "scale_free":
        u, v = _scale_free(n, e, rng)
    elif sc.topology == "geometric":
        u, v = _geometric(agents.xy, e, rng)
    elif sc.topology == "small_world":
        u, v = _small_world(n, e, sc.mean_degree, rng)
    else:
        return _from_file(sc, n, e, rng)
    return _slots(u, v, n, e, rng)


def build_graph(n: int, n_slots: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Endpoints of a connected random graph: a random recursive spanning tree on a shuffled
    order plus uniform random extra edges (no self-loops; parallel channels allowed)."""
    perm = rng.permutation(n)
    parent_pos = np.floor(rng.random(n - 1) * np.arange(1, n)).astype(np.int64)
    u_tree = perm[1:]
    v_tree = perm[parent_pos]
    extra = n_slots - (n - 1)
    u_x = rng.integers(0, n, size=extra)
    v_x = (u_x + 1 + rng.integers(0, n - 1, size=extra)) % n
    return np.concatenate([u_tree, u_x]).astype(np.int32), np.concatenate([v_tree, v_x]).astype(np.int32)


def _slots(u, v, n: int, e: int, rng, extra: "tuple | None" = None):
    """Exactly e slots: the first e edges open (tree first), closed random pairs after them."""
    k = min(u.shape[0], e)
    pad = e - k
    pu = rng.integers(0, n, size=pad)
    pv = (pu + 1 + rng.integers(0, n - 1, size=pad)) % n
    is_open = np.zeros(e, dtype=bool)
    is_open[:k] = True
    uu = np.concatenate([u[:k], pu]).astype(np.int32)
    vv = np.concatenate([v[:k], pv]).astype(np.int32)
    if extra is None:
        return Graph(uu, vv, is_open)
    cap, fb, fr = extra
    pad_cap = np.ones(pad)
    return Graph(uu, vv, is_open, np.concatenate([cap[:k], pad_cap]),
                 np.concatenate([fb[:k], np.zeros((pad, 2))]), np.concatenate([fr[:k], np.zeros((pad, 2))]))


def roles(agents: Any) -> tuple[np.ndarray, np.ndarray]:
    """(can sell [N], can buy [N]) from the goods each agent sells and buys (storage: both)."""
    return np.asarray(agents.sells_good) >= 0, np.asarray(agents.buys_good) >= 0


def _sides(agents: Any) -> tuple[np.ndarray, np.ndarray]:
    """Two agent sets such that any cross pair can trade: sellers (with storage) and pure buyers;
    storage moves to the empty side when one is empty."""
    sell, buy = roles(agents)
    s_only, b_only, both = np.flatnonzero(sell & ~buy), np.flatnonzero(buy & ~sell), np.flatnonzero(sell & buy)
    if b_only.size and (s_only.size or both.size):
        return np.concatenate([s_only, both]), b_only
    if s_only.size and both.size:
        return s_only, both
    half = both.size // 2
    if half == 0:
        raise ValueError("topology = 'kind_aware' needs at least one seller and one buyer that are not the same agent")
    return both[:half], both[half:]


def _kind_aware(agents: Any, e: int, rng) -> tuple[np.ndarray, np.ndarray]:
    side1, side2 = _sides(agents)
    a, b = side1.shape[0], side2.shape[0]
    p1, p2 = rng.permutation(side1), rng.permutation(side2)
    # a random interleaving that starts with one of side 2 then one of side 1
    seq = np.concatenate([[1, 0], rng.permutation(np.concatenate([np.zeros(a - 1), np.ones(b - 1)]))]).astype(np.int64)
    is2 = seq == 1
    pos1 = np.cumsum(~is2) - 1   # index into p1 of each side-1 position
    pos2 = np.cumsum(is2) - 1
    node = np.where(is2, p2[np.maximum(pos2, 0)], p1[np.maximum(pos1, 0)])
    n2_before = np.cumsum(is2) - is2   # side-2 nodes strictly before
    n1_before = np.cumsum(~is2) - ~is2
    r = rng.random(seq.shape[0])
    opp_count = np.where(is2, n1_before, n2_before)
    pick = np.floor(r * np.maximum(opp_count, 1)).astype(np.int64)
    parent = np.where(is2, p1[np.minimum(pick, a - 1)], p2[np.minimum(pick, b - 1)])
    tu, tv = node[1:], parent[1:]
    # extra edges: a seller-capable and a buyer-capable agent
    sell, buy = roles(agents)
    pool_s, pool_b = np.flatnonzero(sell), np.flatnonzero(buy)
    k = max(e - (tu.shape[0]), 0)
    xs = pool_s[rng.integers(0, pool_s.shape[0], size=k)]
    jb = rng.integers(0, pool_b.shape[0], size=k)
    xb = pool_b[jb]
    same = xs == xb
    xb = np.where(same, pool_b[(jb + 1) % pool_b.shape[0]], xb)
    ok = xs != xb
    return np.concatenate([tu, xs[ok]]), np.concatenate([tv, xb[ok]])


def _scale_free(n: int, e: int, rng) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(n)
    w = (np.arange(1, n + 1, dtype=np.float64)) ** (-1.0 / (SCALE_FREE_EXPONENT - 1.0))
    w = w[rng.permutation(n)]   # weights by position in the attachment order, shuffled
    cum = np.cumsum(w)
    r = rng.random(n - 1)
    # node at position k >= 1 attaches to an earlier position drawn by weight
    parent_pos = np.searchsorted(cum, r * cum[:-1], side="right")
    parent_pos = np.minimum(parent_pos, np.arange(n - 1))
    tu, tv = order[1:], order[parent_pos]
    k = max(e - (n - 1), 0)
    p = w / w.sum()
    xu = order[np.minimum(np.searchsorted(np.cumsum(p), rng.random(k), side="right"), n - 1)]
    xv = order[np.minimum(np.searchsorted(np.cumsum(p), rng.random(k), side="right"), n - 1)]
    xv = np.where(xu == xv, (xv + 1 + rng.integers(0, n - 1, size=k)) % n, xv)
    return np.concatenate([tu, xu]), np.concatenate([tv, xv])


def _geometric(xy: np.ndarray, e: int, rng) -> tuple[np.ndarray, np.ndarray]:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components, minimum_spanning_tree
    from scipy.spatial import cKDTree

    n = xy.shape[0]
    k = int(min(n - 1, max(2, np.ceil(2.0 * e / n) + 1)))
    dist, nbr = cKDTree(xy).query(xy, k=k + 1)
    a = np.repeat(np.arange(n), k)
    b = nbr[:, 1:].ravel()
    d = dist[:, 1:].ravel()
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    key, first = np.unique(lo.astype(np.int64) * n + hi, return_index=True)
    lo, hi, d = lo[first], hi[first], d[first]
    g = coo_matrix((d + 1e-12, (lo, hi)), shape=(n, n)).tocsr()
    mst = minimum_spanning_tree(g).tocoo()
    tu, tv = mst.row.astype(np.int64), mst.col.astype(np.int64)
    ncomp, label = connected_components(g, directed=False)
    if ncomp > 1:   # far-apart clusters: chain one agent of each
        reps = np.unique(label, return_index=True)[1]
        tu, tv = np.concatenate([tu, reps[:-1]]), np.concatenate([tv, reps[1:]])
    in_tree = np.isin(lo * n + hi, np.minimum(tu, tv) * n + np.maximum(tu, tv))
    rest = np.flatnonzero(~in_tree)
    rest = rest[np.argsort(d[rest], kind="stable")]
    return np.concatenate([tu, lo[rest]]), np.concatenate([tv, hi[rest]])


def _small_world(n: int, e: int, mean_degree: float, rng) -> tuple[np.ndarray, np.ndarray]:
    k = max(1, int(round(mean_degree / 2)))
    order = rng.permutation(n)
    i = np.arange(n)
    ring_u, ring_v = order[i[:-1]], order[i[1:]]   # a path: the spanning tree (never rewired)
    j = np.repeat(np.arange(1, k + 1), n)
    base = np.tile(i, k)
    keep = ~((j == 1) & (base < n - 1))             # the path edges are already in
    xu, xv = order[base[keep]], order[(base[keep] + j[keep]) % n]
    rewire = rng.random(xu.shape[0]) < SMALL_WORLD_REWIRING
    target = (xu + 1 + rng.integers(0, n - 1, size=xu.shape[0])) % n
    xv = np.where(rewire, target, xv)
    ok = xu != xv
    return np.concatenate([ring_u, xu[ok]]), np.concatenate([ring_v, xv[ok]])


# ---- reopenings in the lifecycle -------------------------------------------------------------------

def reopen_pairs(sc: Any, agents: Any, n: int, k: int, rng: np.random.Generator, u, v, is_open
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Endpoints (nu, nv) of k reopening slots. The legacy rule (two integer draws) for `random`,
    `geometric`, `small_world`; a seller and a buyer for `kind_aware`; endpoints by degree + 1 for
    `scale_free` and `file` (preferential attachment)."""
    topo = sc.topology
    if topo == "kind_aware" and agents is not None:
        pools = getattr(agents, "trade_pools", None)   # AgentParams keeps them for the episode
        if pools is None:
            sell, buy = roles(agents)
            pools = np.flatnonzero(sell), np.flatnonzero(buy)
        pool_s, pool_b = pools
        nu = pool_s[rng.integers(0, pool_s.shape[0], size=k)]
        jb = rng.integers(0, pool_b.shape[0], size=k)
        nv = pool_b[jb]
        nv = np.where(nu == nv, pool_b[(jb + 1) % pool_b.shape[0]], nv)
        nv = np.where(nu == nv, (nu + 1) % n, nv)
        return nu.astype(np.int64), nv.astype(np.int64)
    if topo in ("scale_free", "file"):
        deg = np.bincount(u[is_open], minlength=n) + np.bincount(v[is_open], minlength=n) + 1.0
        cum = np.cumsum(deg)
        nu = np.minimum(np.searchsorted(cum, rng.random(k) * cum[-1], side="right"), n - 1)
        nv = np.minimum(np.searchsorted(cum, rng.random(k) * cum[-1], side="right"), n - 1)
        nv = np.where(nu == nv, (nu + 1 + rng.integers(0, n - 1, size=k)) % n, nv)
        return nu.astype(np.int64), nv.astype(np.int64)
    nu = rng.integers(0, n, size=k)
    nv = (nu + 1 + rng.integers(0, n - 1, size=k)) % n
    return nu, nv


# ---- lncli describegraph files -------------------------------------------------------------------

class LightningFile(NamedTuple):
    """A validated `lncli describegraph` graph: node keys [M], channels [C] by node index."""

    pub_key: tuple
    node1: np.ndarray          # [C] int64
    node2: np.ndarray          # [C] int64
    capacity_sat: np.ndarray   # [C] float64
    fee_base_msat: np.ndarray  # [C, 2] node1's policy, node2's policy (0 where absent)
    fee_rate_ppm: np.ndarray   # [C, 2]


def _number(x: Any, where: str, integer: bool = True) -> float:
    """lncli prints numbers as decimal strings; accept those and JSON numbers, nothing else."""
    if isinstance(x, bool) or not isinstance(x, (str, int, float)):
        raise ValueError(f"{where} = {x!r}; allowed: a non-negative number (lncli prints a decimal string)")
    try:
        val = int(x) if isinstance(x, str) and integer else float(x)
    except ValueError:
        raise ValueError(f"{where} = {x!r}; allowed: a non-negative {'integer' if integer else 'number'}") from None
    if not np.isfinite(val) or val < 0:
        raise ValueError(f"{where} = {x!r}; allowed: a finite non-negative number")
    return float(val)


def parse_describegraph(data: Any, source: str = "describegraph JSON") -> LightningFile:
    """Validate parsed `lncli describegraph` JSON; ValueError naming the field otherwise.

    Needs `nodes` (each with a unique string `pub_key`) and `edges` (each with `node1_pub` and
    `node2_pub` naming two different listed nodes and a positive `capacity`); `node1_policy` /
    `node2_policy` may be null or hold `fee_base_msat` and `fee_rate_milli_msat` (numbers >= 0).
    Other fields are ignored."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: top level must be an object with 'nodes' and 'edges', got {type(data).__name__}")
    for key in ("nodes", "edges"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"{source}: field '{key}' must be a list, got {type(data.get(key)).__name__}")
    keys: list[str] = []
    index: dict[str, int] = {}
    for i, nd in enumerate(data["nodes"]):
        pk = nd.get("pub_key") if isinstance(nd, dict) else None
        if not isinstance(pk, str) or not pk:
            raise ValueError(f"{source}: nodes[{i}].pub_key = {pk!r}; allowed: a non-empty string")
        if pk in index:
            raise ValueError(f"{source}: nodes[{i}].pub_key = {pk!r} is listed twice")
        index[pk] = i
        keys.append(pk)
    if len(keys) < 2:
        raise ValueError(f"{source}: field 'nodes' lists {len(keys)} node(s); a channel graph needs at least 2")
    c = len(data["edges"])
    n1, n2, cap = np.zeros(c, np.int64), np.zeros(c, np.int64), np.zeros(c)
    fb, fr = np.zeros((c, 2)), np.zeros((c, 2))
    for j, ed in enumerate(data["edges"]):
        w = f"{source}: edges[{j}]"
        if not isinstance(ed, dict):
            raise ValueError(f"{w} must be an object, got {type(ed).__name__}")
        for side, name in enumerate(("node1_pub", "node2_pub")):
            pk = ed.get(name)
            if pk not in index:
                raise ValueError(f"{w}.{name} = {pk!r}; allowed: a pub_key listed in 'nodes'")
            (n1 if side == 0 else n2)[j] = index[pk]
        if n1[j] == n2[j]:
            raise ValueError(f"{w}: node1_pub == node2_pub ({ed['node1_pub']!r}); a channel joins two different nodes")
        if "capacity" not in ed:
            raise ValueError(f"{w}.capacity is missing; allowed: a positive number of satoshis")
        cap[j] = _number(ed["capacity"], f"{w}.capacity")
        if cap[j] <= 0:
            raise ValueError(f"{w}.capacity = {ed['capacity']!r}; allowed: a positive number of satoshis")
        for side, name in enumerate(("node1_policy", "node2_policy")):
            pol = ed.get(name)
            if pol is None:
                continue
            if not isinstance(pol, dict):
                raise ValueError(f"{w}.{name} = {pol!r}; allowed: null or an object")
            fb[j, side] = _number(pol.get("fee_base_msat", 0), f"{w}.{name}.fee_base_msat")
            fr[j, side] = _number(pol.get("fee_rate_milli_msat", 0), f"{w}.{name}.fee_rate_milli_msat")
    if c == 0:
        raise ValueError(f"{source}: field 'edges' is empty; a channel graph needs at least one channel")
    return LightningFile(tuple(keys), n1, n2, cap, fb, fr)


def load_describegraph(path: "str | Path | None" = None) -> LightningFile:
    """Read and validate a describegraph file (JSON only; nothing in it runs). None: the bundled example."""
    if path is None or str(path) == "":
        text = resources.files("channelmarket.envs").joinpath("data", EXAMPLE_GRAPH).read_text(encoding="utf-8")
        source = f"bundled {EXAMPLE_GRAPH}"
    else:
        p = Path(path)
        source = f"topology_file {str(p)!r}"
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ValueError(f"{source}: no such file") from None
        except UnicodeDecodeError as err:
            raise ValueError(f"{source}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{source}: line {err.lineno}, column {err.colno}: {err.msg} (not valid JSON)") from None
    return parse_describegraph(data, source)


def _from_file(sc: Any, n: int, e: int, rng) -> Graph:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import breadth_first_order, connected_components, minimum_spanning_tree

    lf = load_describegraph(sc.topology_file or None)
    m = len(lf.pub_key)
    deg = np.bincount(lf.node1, minlength=m) + np.bincount(lf.node2, minlength=m)
    adj = coo_matrix((np.ones(lf.node1.shape[0]), (lf.node1, lf.node2)), shape=(m, m)).tocsr()
    adj = adj + adj.T
    # node order: breadth first from the best-connected node, then the other components by degree
    ncomp, label = connected_components(adj, directed=False)
    comp_best = np.full(ncomp, -1)
    by_deg = np.argsort(-deg, kind="stable")
    comp_best[label[by_deg[::-1]]] = by_deg[::-1]   # last write wins: the highest degree
    comp_order = np.argsort(-deg[comp_best], kind="stable")
    order = np.concatenate([breadth_first_order(adj, int(comp_best[c]), directed=False,
                                                return_predecessors=False) for c in comp_order])
    kept = order[:min(n, m)]
    agent_of = np.full(m, -1, dtype=np.int64)
    agents_perm = rng.permutation(n)
    agent_of[kept] = agents_perm[:kept.shape[0]]
    both = (agent_of[lf.node1] >= 0) & (agent_of[lf.node2] >= 0)
    eu, ev = agent_of[lf.node1[both]], agent_of[lf.node2[both]]
    med_sat = np.median(lf.capacity_sat)
    cap_rel = lf.capacity_sat[both] / med_sat
    fb, fr = lf.fee_base_msat[both] / 1000.0 / med_sat, lf.fee_rate_ppm[both]   # msat -> relative capacity units
    if n > m:   # the further agents attach by one channel each to an endpoint drawn by degree
        extra = agents_perm[m:]
        d_agent = np.bincount(np.concatenate([eu, ev]), minlength=n).astype(np.float64)
        cum = np.cumsum(d_agent)   # only mapped agents have channels, so only they are drawn
        pick = np.minimum(np.searchsorted(cum, rng.random(extra.shape[0]) * cum[-1], side="right"), n - 1)
        eu, ev = np.concatenate([eu, extra]), np.concatenate([ev, pick])
        cap_rel = np.concatenate([cap_rel, np.ones(extra.shape[0])])
        med = np.median(lf.fee_base_msat) / 1000.0 / med_sat, np.median(lf.fee_rate_ppm)
        fb = np.concatenate([fb, np.full((extra.shape[0], 2), med[0])])
        fr = np.concatenate([fr, np.full((extra.shape[0], 2), med[1])])
    # spanning forest first (so trimming to the slots keeps the graph connected), linked into a tree
    lo, hi = np.minimum(eu, ev), np.maximum(eu, ev)
    _, first = np.unique(lo * n + hi, return_index=True)   # one entry per agent pair (parallel channels)
    g = coo_matrix((first + 1.0, (lo[first], hi[first])), shape=(n, n)).tocsr()
    mst = minimum_spanning_tree(g).tocoo()
    tree_idx = np.unique((mst.data - 1).astype(np.int64))
    rest = np.setdiff1d(np.arange(eu.shape[0]), tree_idx)
    idx = np.concatenate([tree_idx, rest])
    u, v, cap_rel, fb, fr = eu[idx], ev[idx], cap_rel[idx], fb[idx], fr[idx]
    ncomp, label = connected_components(g, directed=False)
    if ncomp > 1:
        reps = np.unique(label, return_index=True)[1]
        k = reps.shape[0] - 1
        u = np.concatenate([u[:tree_idx.shape[0]], reps[:-1], u[tree_idx.shape[0]:]])
        v = np.concatenate([v[:tree_idx.shape[0]], reps[1:], v[tree_idx.shape[0]:]])
        ins = lambda a, fill: np.concatenate([a[:tree_idx.shape[0]], fill, a[tree_idx.shape[0]:]])  # noqa: E731
        cap_rel = ins(cap_rel, np.ones(k))
        fb, fr = ins(fb, np.zeros((k, 2))), ins(fr, np.zeros((k, 2)))
    return _slots(u, v, n, e, rng, (cap_rel, fb, fr))


# ---- the bundled example -----------------------------------------------------------------------------

def generate_example_graph(n_nodes: int = 300, seed: int = 2024) -> bytes:
    """A `lncli describegraph` JSON document of a synthetic Lightning-like graph (preferential
    attachment, log-normal capacities in satoshis, typical fee policies), deterministic in
    (n_nodes, seed): the bundled `envs/data/lightning_example.json` is `generate_example_graph()`."""
    rng = np.random.default_rng(seed)
    e = int(round(n_nodes * 2.5))
    u, v = _scale_free(n_nodes, e, rng)
    cap = np.round(np.exp(rng.normal(np.log(2_000_000), 1.0, size=u.shape[0])) / 1000) * 1000 + 20_000
    fee_base = rng.choice(np.array([0, 1, 1000, 1000, 1000, 2000]), size=(u.shape[0], 2))
    fee_rate = rng.choice(np.array([1, 10, 50, 100, 200, 500, 1000]), size=(u.shape[0], 2))
    keys = ["0" + str(2 + (i % 2)) + hashlib.sha256(f"channelmarket-node-{seed}-{i}".encode()).hexdigest()
            for i in range(n_nodes)]
    nodes = [{"pub_key": k, "alias": f"node{i:04d}"} for i, k in enumerate(keys)]

    def policy(j: int, side: int) -> dict:
        return {"time_lock_delta": 80, "fee_base_msat": str(int(fee_base[j, side])),
                "fee_rate_milli_msat": str(int(fee_rate[j, side])), "disabled": False}

    edges = [{"channel_id": str(800_000 * 2**40 + j), "node1_pub": keys[int(a)], "node2_pub": keys[int(b)], "capacity": str(int(cap[j])),
              "node1_policy": policy(j, 0), "node2_policy": policy(j, 1)}
             for j, (a, b) in enumerate(zip(u.tolist(), v.tolist()))]
    # one node or channel per line: a small file that still diffs line by line
    lines = ['{"nodes": ['] + [" " + json.dumps(x, sort_keys=True) + "," for x in nodes]
    lines[-1] = lines[-1][:-1]
    lines += ['], "edges": ['] + [" " + json.dumps(x, sort_keys=True) + "," for x in edges]
    lines[-1] = lines[-1][:-1]
    return ("\n".join(lines + ["]}"]) + "\n").encode("utf-8")


def example_graph_path() -> Path:
    """Path of the bundled example file inside the installed package."""
    return Path(str(resources.files("channelmarket.envs").joinpath("data", EXAMPLE_GRAPH)))


__all__ = ["TOPOLOGIES", "Graph", "build", "reopen_pairs", "roles", "LightningFile", "parse_describegraph",
           "load_describegraph", "generate_example_graph", "example_graph_path", "EXAMPLE_GRAPH"]
