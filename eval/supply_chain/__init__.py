"""The paper's experiments on the supply-chain economy (`supply_chain_v0`): runs, plots, tables.

    channelmarket supply-chain experiment {1,2,3,4,5,risk-sweep,stability} [--out DIR] [--seed S] [--quick]

`record` runs one economy and keeps its daily series; `plots` draws positions coloured by kind,
price curves and transaction rasters; `experiments` is one function per experiment, each
writing its plots, a summary table (CSV and Markdown) and a manifest into its output folder.
`policies` runs the energy market's policies here (`run_policies`, `compare`); `runs` is the
tournament's episode job on a supply-chain cell (`SupplyChainJob`, `eval.tournament`).
"""
