"""The suite's warning filters (pyproject's `filterwarnings`): third-party warnings we cannot fix are
ignored one by one, and a RuntimeWarning, ResourceWarning or DeprecationWarning raised from a
`channelmarket.` module fails the test that provoked it (unless the test asserts it with pytest.warns)."""

from __future__ import annotations

import re
import sys
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pytest
from _pytest.config import parse_warning_filter

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_FOLDERS = ("envs", "policies", "training", "eval", "channelmarket")
OURS = (RuntimeWarning, ResourceWarning, DeprecationWarning)


@pytest.fixture
def configured(request) -> None:
    """Skip when the command line's -W filters run on top of pyproject's (pytest applies them later)."""
    if request.config.getoption("pythonwarnings"):
        pytest.skip(f"-W {request.config.getoption('pythonwarnings')} on the command line overrides pyproject's filters")


def config_filters() -> list[tuple]:
    lines = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["filterwarnings"]
    return [parse_warning_filter(line, escape=False) for line in lines]


def test_ignores_are_narrow_and_our_warnings_are_errors_after_them():
    filters = config_filters()
    ignores = [i for i, f in enumerate(filters) if f[0] == "ignore"]
    for i in ignores:                     # one warning each: its message, its category and the library raising it
        action, message, category, module, _ = filters[i]
        assert message and module and category is not Warning, f"blanket ignore: {filters[i]}"
        assert not re.match(module, "channelmarket.envs.core"), f"an ignore that covers our own modules: {filters[i]}"
    for cat in OURS:
        errors = [i for i, f in enumerate(filters) if f[0] == "error" and f[2] is cat and not f[1]]
        assert errors, f"no error line for {cat.__name__}"
        module = filters[errors[-1]][3]
        assert errors[-1] > max(ignores, default=-1)        # later lines take precedence
        for name in ("channelmarket", "channelmarket.envs.core", "channelmarket.envs.mechanisms.bilateral"):
            assert re.match(module, name), (module, name)
        for name in ("channelmarketplace", "tests.envs.test_core", "numpy.core", "envs.core"):
            assert not re.match(module, name), (module, name)


@pytest.mark.parametrize("category", OURS, ids=lambda c: c.__name__)
def test_the_error_lines_are_in_effect_inside_a_test(category, configured):
    """What the warnings machinery does with a warning attributed to one of our modules, and to a module
    of someone else's, under the filters pytest installed for this test."""
    with pytest.raises(category, match="probe"):
        warnings.warn_explicit("probe", category, str(ROOT / "envs" / "core.py"), 1, module="channelmarket.envs.core")
    with warnings.catch_warnings(record=True):                 # shown or ignored, never raised
        warnings.warn_explicit("probe", category, "elsewhere.py", 1, module="elsewhere")


def test_a_numpy_warning_on_a_line_of_our_module_fails(configured):
    """NumPy attributes a floating-point warning to the Python frame that called it: a division by zero
    evaluated in the namespace of `channelmarket.envs.prices` is an error; the same in this module is not."""
    from channelmarket.envs import prices

    code = compile("np.float64(1.0) / np.float64(0.0)", prices.__file__, "eval")
    with pytest.raises(RuntimeWarning, match="divide by zero"):
        eval(code, vars(prices))
    with warnings.catch_warnings(record=True) as seen:                  # the same filters, shown not raised
        assert np.float64(1.0) / np.float64(0.0) == np.inf
    assert [w.category for w in seen] == [RuntimeWarning]


def test_a_warning_our_checkpoint_reader_raises_fails_unless_asserted(tmp_path, configured):
    """A real path: `latest_checkpoint` (channelmarket.training.ippo_checkpoint) warns about a damaged
    checkpoint through `checkpoints.latest_valid`, attributed to its own module."""
    pytest.importorskip("torch")
    from channelmarket.training.ippo_checkpoint import CHECKPOINT_DIR, latest_checkpoint

    (tmp_path / CHECKPOINT_DIR).mkdir()
    (tmp_path / CHECKPOINT_DIR / "ckpt_8.manifest.json").write_text("{not json")
    with pytest.raises(RuntimeWarning, match="no intact checkpoint"):
        latest_checkpoint(tmp_path)
    with pytest.warns(RuntimeWarning, match="no intact checkpoint"):
        assert latest_checkpoint(tmp_path) is None


def test_our_modules_are_imported_under_the_channelmarket_name():
    """The error lines match module names: a module of ours loaded under another name (`envs.core`)
    would escape them."""
    import channelmarket.envs  # noqa: F401
    import channelmarket.eval  # noqa: F401
    import channelmarket.policies  # noqa: F401

    folders = [ROOT / f for f in PACKAGE_FOLDERS]
    ours = {name: Path(m.__file__).resolve() for name, m in list(sys.modules.items())
            if getattr(m, "__file__", None) and any(Path(m.__file__).resolve().is_relative_to(f) for f in folders)}
    assert "channelmarket.envs.core" in ours
    wrong = sorted(name for name in ours if not re.match(r"channelmarket(\.|$)", name))
    assert not wrong, f"modules of the package imported under other names: {wrong}"
