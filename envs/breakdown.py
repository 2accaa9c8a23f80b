"""The per-agent breakdown of a step's settlement: its columns, in order.

A leaf module (no imports): settlement fills the breakdown, the compiled booking kernel writes
its columns by position, and rollouts, metrics and evaluation read them by name.
"""

# Per-agent breakdown columns, in the order of `Settlement.breakdown`.
BREAKDOWN_FIELDS = (
    "profit", "revenue", "cost", "sold", "bought", "grid_sold", "grid_bought",
    "curtailed", "unserved", "charged", "discharged", "failed_payments", "partial_payments",
    "storage_value", "routing_fees", "network_charges", "lost_load",
)
BREAKDOWN_INDEX = {name: i for i, name in enumerate(BREAKDOWN_FIELDS)}

__all__ = ["BREAKDOWN_FIELDS", "BREAKDOWN_INDEX"]
