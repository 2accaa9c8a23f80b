"""Payment channels: a connected sparse graph of two-sided balances, opening and closing.

A channel locks `capacity` EUR split between its endpoints; paying moves balance from the
payer's side to the payee's. Closing settles both sides to the on-chain wallets; a closed slot
reopens between a fresh random pair, funded from both wallets. An on-chain fee per open and
per close goes to the fee sink. Everything is arrays over the E channel slots.
"""

from __future__ import annotations

import numpy as np

from . import kernels, streams
from .scenario import Scenario
from .topology import build_graph, reopen_pairs  # noqa: F401 - build_graph: the legacy graph, re-exported


def draw_capacity(sc: Scenario, size: int, rng: np.random.Generator) -> np.ndarray:
    lo, hi = sc.channel_capacity
    return rng.uniform(lo, hi, size=size)


def expected_spend(sc: Scenario, agents) -> np.ndarray:
    """[N] EUR an agent turns over in one step at full rating and the base price: generators
    their rating, consumers their base load, stores their power (what a channel must carry)."""
    mw = np.where(agents.is_store, agents.power, agents.capacity)
    return mw * sc.step_hours * sc.base_price


def size_capacity(sc: Scenario, agents, u, v, drawn: np.ndarray) -> np.ndarray:
    """Channel capacities in the scenario's sizing: `uniform` keeps the drawn EUR; `spend` makes a
    channel `channel_sizing_steps` steps of its larger endpoint's expected spend, times the draw's
    relative spread (draw / mean of `channel_capacity`)."""
    if sc.channel_sizing == "uniform" or agents is None:
        return drawn
    spend = expected_spend(sc, agents)
    mean = 0.5 * (sc.channel_capacity[0] + sc.channel_capacity[1])
    return np.maximum(drawn / mean * sc.channel_sizing_steps * np.maximum(spend[u], spend[v]), 1e-9)


def update_partners(n: int, seller, buyer, paid, partner, partner_value, decay: float = 0.9):
    """Each agent's regular partner: the counterparty of its largest payment this step (as buyer or
    seller) takes over when it beats the decayed value of the current partner (EUR, an EMA)."""
    value = decay * partner_value
    partner = partner.copy()
    ok = paid > 0
    if ok.any():
        who = np.concatenate([buyer[ok], seller[ok]])
        other = np.concatenate([seller[ok], buyer[ok]])
        amt = np.concatenate([paid[ok], paid[ok]])
        best = np.zeros(n)
        np.maximum.at(best, who, amt)              # O(T): each agent's largest payment this step
        top = amt == best[who]
        pick = np.full(n, -1, dtype=np.int64)
        pick[who[top]] = other[top]                # ties: one of the tied counterparties (deterministic)
        w = np.flatnonzero(pick >= 0)
        o, a = pick[w], best[w]
        same = partner[w] == o
        take = same | (a > value[w])
        value[w] = np.where(same, value[w] + a, np.where(take, a, value[w]))
        partner[w] = np.where(take, o, partner[w])
    return partner, value


def funding(capacity: np.ndarray, split: float) -> tuple[np.ndarray, np.ndarray]:
    """Each endpoint's contribution to a channel's capacity (u side, v side)."""
    bu = capacity * split
    return bu, capacity - bu


# Draws of one step of the lifecycle: a fixed block of uniforms per slot (see `lifecycle`).
LIFECYCLE_DRAWS = 3


def lifecycle_draws(rngs, e: int) -> tuple[np.ndarray, streams.Rows]:
    """Each market's block of the step (`rngs`: one channel generator per market, E = `e` slots
    each): row 0, every slot's event draw, drawn ([M * E], market-major); rows 1-2, the reopening
    candidates, reserved (`streams.claim_rows`): only the few reopening slots' doubles are computed
    later. Each generator ends where `rng.random((LIFECYCLE_DRAWS, e))` leaves it. Row 0 is computed
    in compiled code from the generators' live states with the reservation (`streams.draw_and_claim`;
    NumPy draws it when the rows are too small to reserve)."""
    return streams.draw_and_claim(rngs, LIFECYCLE_DRAWS, e)


def reopen_candidates(sc: Scenario, n: int, r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u, v, capacity) of the channel each slot would reopen as, from its two uniforms `r` [2, k]:
    the first picks an ordered pair of distinct agents uniformly (one of N (N - 1), exact in a
    double for N up to ~10^7), the second the capacity uniformly in the scenario's range."""
    pairs = n * (n - 1)
    idx = np.minimum((r[0] * pairs).astype(np.int64), pairs - 1)
    nu = idx // (n - 1)
    nv = (nu + 1 + idx % (n - 1)) % n
    lo, hi = sc.channel_capacity
    return nu, nv, lo + (hi - lo) * r[1]


_NO_HANDLES = np.zeros((0, 4), dtype=np.uint64)

# Topologies whose closed slots reopen between a uniformly drawn pair (`topology.reopen_pairs`'
# legacy rule): their endpoints come from the lifecycle's fixed block; the others draw their own.
UNIFORM_REOPEN = ("random", "geometric", "small_world")


def lifecycle(sc: Scenario, u, v, capacity, balance_u, is_open, active, wallet, fee_sink: float,
              rng: np.random.Generator, agents=None, partner=None):
    """One step of channel closes and opens. Returns new (u, v, capacity, balance_u, open,
    wallet, fee_sink, n_closed, opened slot indices).

    Draws one fixed block per step: `rng.random((LIFECYCLE_DRAWS, E))`. Row 0 decides each slot's
    event (an open channel closes when it is under the close rate, a closed slot reopens when it
    is under the open rate); rows 1-2 are the slot's reopening candidate (`reopen_candidates`:
    endpoints by the uniform rule, capacity), used only when it reopens. A fixed-size block per
    step keeps the stream layout independent of how many slots reopen, so a batch of markets draws
    it per market (`envs.batch`); rows 1-2 are only reserved, and the reopening slots' doubles
    computed from the generator's state (`lifecycle_draws`, `streams`: the same numbers).
    Topologies with their own reopening rule (`kind_aware`, `scale_free`, `file`:
    `topology.reopen_pairs`) draw the endpoints of the k reopening slots after the block; with
    `partner_channel_share` > 0 one more uniform array of k decides which reopenings go from the
    first endpoint to its regular partner (`partner`, -1 for none) instead. An opening is refused,
    as a whole, when either funder's wallet cannot cover all channels it would fund this step plus
    fees.
    """
    e = u.shape[0]
    draw, candidates = lifecycle_draws((rng,), e)
    out = apply_lifecycle(sc, u, v, capacity, balance_u, is_open, active, wallet, np.array([fee_sink]), draw,
                          candidates, wallet.shape[0], np.zeros(e, dtype=np.int64), (rng,), agents,
                          None if agents is None else (agents,), partner)
    u, v, capacity, balance_u, is_open, wallet, fee_sink, n_closed, _, opened = out
    return u, v, capacity, balance_u, is_open, wallet, float(fee_sink[0]), int(n_closed[0]), opened


def apply_lifecycle(sc: Scenario, u, v, capacity, balance_u, is_open, active, wallet, fee_sink, draw: np.ndarray,
                    candidates: "np.ndarray | streams.Rows", n: int, offset: np.ndarray, rngs: tuple = (), agents=None,
                    markets: "tuple | None" = None, partner: "np.ndarray | None" = None):
    """The lifecycle of M markets (slots market-major, E/M each) with their fixed draws given:
    `draw` [E] decisions, `candidates` [2, E] reopening draws (or `streams.Rows`: the markets'
    reserved rows, `lifecycle_draws`), `n` agents per market, `offset` [E]
    the first agent index of each slot's market, `fee_sink` [M]. `rngs` are the markets' channel
    generators (the draws after the block), `agents` the batch's agent parameters (capacity
    sizing), `markets` each market's own (topology rules), `partner` [M*N] global agent indices.
    Returns (u, v, capacity, balance_u, open, wallet, fee_sink [M], n_closed [M], n_opened [M],
    opened slots)."""
    fee = sc.onchain_fee
    m = fee_sink.shape[0]
    e_m = u.shape[0] // m
    if not isinstance(candidates, streams.Rows):
        candidates = streams.Rows(np.asarray(candidates, dtype=np.float64), _NO_HANDLES, LIFECYCLE_DRAWS - 1, e_m)
    slot_market = offset // n if m > 1 else offset   # one market: its offsets are all 0
    own_rule = sc.topology not in UNIFORM_REOPEN and markets is not None
    use_partner = sc.partner_channel_share > 0 and partner is not None
    if not (own_rule or use_partner):   # no draws after the block: the whole lifecycle in one compiled pass
        spend = expected_spend(sc, agents) if sc.channel_sizing == "spend" and agents is not None else np.zeros(0)
        lo, hi = sc.channel_capacity
        u, v, capacity, balance_u, is_open, wallet, n_closed, n_opened, opened = kernels.lifecycle_uniform(
            u=u, v=v, capacity=capacity, balance_u=balance_u, is_open=is_open, active=active, wallet=wallet,
            draw=draw, cand=candidates.values, cand_stream=candidates.handles,
            close_rate=float(sc.channel_close_rate), open_rate=float(sc.channel_open_rate),
            fee=float(fee), n=int(n), offset=offset, slot_market=slot_market, m=m, lo=float(lo), hi=float(hi),
            split=float(sc.initial_split), spend=spend, sizing_steps=float(sc.channel_sizing_steps),
            mean_cap=0.5 * (lo + hi), parts=kernels.parts_for(kernels.lifecycle_uniform, u.shape[0]))
        fee_sink = fee_sink + fee * n_closed
        if opened.shape[0]:
            fee_sink = fee_sink + fee * n_opened
        return u, v, capacity, balance_u, is_open, wallet, fee_sink, n_closed, n_opened, opened
    was_open = is_open
    is_open, wallet, closed, slots = kernels.close_channels(
        u=u, v=v, capacity=capacity, balance_u=balance_u, is_open=is_open, active=active, wallet=wallet, draw=draw,
        close_rate=sc.channel_close_rate, open_rate=sc.channel_open_rate, fee=fee)
    n_closed = np.array([closed]) if m == 1 else np.bincount(slot_market[was_open & ~is_open], minlength=m)
    fee_sink = fee_sink + fee * n_closed
    k = slots.shape[0]
    nu, nv, cap = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
    if k:
        nu, nv, cap = reopen_candidates(sc, n, candidates.at(slots))
        nu, nv = nu + offset[slots], nv + offset[slots]
        if own_rule or use_partner:   # further draws, market by market (each from its own generator)
            sm = slot_market[slots]
            order = np.argsort(sm, kind="stable")   # each market's slots, ascending: one sort, not M scans
            markets_hit = np.unique(sm)
            ends = np.searchsorted(sm[order], markets_hit, side="right")
            for i, start, end in zip(markets_hit, np.concatenate([[0], ends[:-1]]), ends):
                sel = order[start:end]
                off, es = int(i) * n, slice(int(i) * e_m, (int(i) + 1) * e_m)
                if own_rule:
                    lu, lv = reopen_pairs(sc, markets[i], n, sel.shape[0], rngs[i], u[es] - off, v[es] - off,
                                          is_open[es])
                    nu[sel], nv[sel] = lu + off, lv + off
                if use_partner:
                    p = partner[nu[sel]]
                    use = (rngs[i].random(sel.shape[0]) < sc.partner_channel_share) & (p >= 0) & (p != nu[sel])
                    nv[sel] = np.where(use, p, nv[sel])
        cap = size_capacity(sc, agents, nu, nv, cap)
    fu, fv = funding(cap, sc.initial_split)
    u, v, capacity, balance_u, wallet, n_opened, opened = kernels.open_channels(
        slots=slots, nu=nu, nv=nv, cap=cap, fund_u=fu, fund_v=fv, fee=fee, u=u, v=v, capacity=capacity,
        balance_u=balance_u, is_open=is_open, active=active, wallet=wallet,
        slot_market=slot_market, m=m)
    if opened.shape[0]:
        fee_sink = fee_sink + fee * n_opened
    return u, v, capacity, balance_u, is_open, wallet, fee_sink, n_closed, n_opened, opened


def partner_openings(sc: Scenario, asks, partner, active, u, v, capacity, balance_u, is_open, was_open, wallet,
                     fee_sink, n: int, agents=None):
    """The channels agents ask for with the `open_partner` action (`scenario.partner_action`), for a
    batch of M markets (slots market-major, E/M each; agents N = `n` each, global indices; `fee_sink`
    [M]). Each asking active agent whose regular partner (same market, active) shares no open
    channel with it gets one, in a slot of its market closed before this step and not reopened in it
    (`was_open`, `is_open`: before and after this step's lifecycle; lowest slots first, askers in
    index order; two agents asking each other share one, opened by the lower index). No sorts:
    gathers and counts over the slots and agents. Sized like a reopening at the mean drawn
    capacity and funded by `initial_split` plus half the on-chain fee each; refused when either
    funder's wallet cannot cover all it funds. No draws: the generators are untouched. Writes
    `u, v, capacity, balance_u, is_open` in place (the lifecycle's fresh copies); returns (opened
    slots, wallet, fee_sink [M], n_opened [M])."""
    total, m = wallet.shape[0], fee_sink.shape[0]
    e_m = u.shape[0] // m
    none = (np.zeros(0, dtype=np.int64), wallet, fee_sink, np.zeros(m, dtype=np.int64))
    a = np.flatnonzero(asks & active & (partner >= 0))
    b = partner[a].astype(np.int64)
    keep = (b != a) & (b // n == a // n) & active[b]
    a, b = a[keep], b[keep]
    if a.shape[0] == 0:
        return none
    mutual = asks[b] & (partner[b] == a) & (b < a)   # a asks b and b asks a: one channel, b's
    a, b = a[~mutual], b[~mutual]
    o = np.flatnonzero(is_open)                      # an open channel joins an agent to its partner?
    ou, ov = u[o].astype(np.int64), v[o].astype(np.int64)
    linked = np.zeros(total, dtype=bool)
    linked[ou[partner[ou] == ov]] = True
    linked[ov[partner[ov] == ou]] = True
    fresh = ~linked[a]
    a, b = a[fresh], b[fresh]
    free = np.flatnonzero(~is_open & ~was_open)   # market-major, lowest first
    per = np.bincount(free // e_m, minlength=m)
    start = np.cumsum(per) - per
    cm = a // n                                   # each pair's market (askers ascending: market-major)
    rank = np.arange(cm.shape[0]) - np.searchsorted(cm, cm)
    take = rank < per[cm]
    if not take.any():
        return none
    a, b, s = a[take], b[take], free[start[cm[take]] + rank[take]]
    fee = sc.onchain_fee
    cap = size_capacity(sc, agents, a, b, np.full(a.shape[0], 0.5 * (sc.channel_capacity[0] + sc.channel_capacity[1])))
    fu, fv = funding(cap, sc.initial_split)
    need = np.bincount(a, weights=fu + fee / 2, minlength=total) + np.bincount(b, weights=fv + fee / 2, minlength=total)
    solvent = wallet >= need
    ok = solvent[a] & solvent[b]
    if not ok.any():
        return none
    a, b, s, cap, fu, fv = a[ok], b[ok], s[ok], cap[ok], fu[ok], fv[ok]
    u[s], v[s], capacity[s], balance_u[s] = a, b, cap, fu
    is_open[s] = True
    wallet = wallet - np.bincount(a, weights=fu + fee / 2, minlength=total)
    wallet -= np.bincount(b, weights=fv + fee / 2, minlength=total)
    n_opened = np.bincount(s // e_m, minlength=m)
    return s, wallet, fee_sink + fee * n_opened, n_opened


def liquidity(n: int, u, v, capacity, balance_u, is_open) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per agent: open channel count, EUR it can pay out (own sides), EUR it can receive."""
    return kernels.liquidity(n=n, u=u, v=v, capacity=capacity, balance_u=balance_u, is_open=is_open)


def adjacency(n: int, u, v, is_open):
    """Symmetric CSR adjacency (scipy) of the open channels; data holds the channel slot index."""
    from scipy.sparse import csr_matrix

    idx = np.flatnonzero(is_open)
    rows = np.concatenate([u[idx], v[idx]])
    cols = np.concatenate([v[idx], u[idx]])
    data = np.concatenate([idx, idx]).astype(np.int64)
    # parallel channels: keep them all by building from COO without summing duplicates
    order = np.lexsort((cols, rows))
    rows, cols, data = rows[order], cols[order], data[order]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return csr_matrix((data, cols, indptr), shape=(n, n))
