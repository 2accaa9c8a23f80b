"""The payment layer between clearing and settlement: routes, HTLC-style payments, fees, liquidity.

One module, one idea: `reasons` (failure codes), `fees` (per-channel policies, what a route
costs), `routes` (widest routes within H hops, vectorized over the channel graph), `htlc` (atomic
multi-hop payments), `rebalance` (circular payments that refill a depleted side), `splice`
(on-chain splices in and out), `background` (payments without energy), `faults` (agents and
channels that fail), `layer` (what the step calls). Every default of the scenario's payment
block leaves the market's direct one-hop payments exactly as in channel_market_v0.
"""
