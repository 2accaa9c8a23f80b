"""The mean-field equilibrium reference of the evaluation; the solver lives in
`channelmarket.policies.equilibrium` because `MeanFieldPolicy` needs it too (imports run
envs <- policies <- eval)."""

from ..policies.equilibrium import *  # noqa: F401,F403
from ..policies.equilibrium import __all__  # noqa: F401
