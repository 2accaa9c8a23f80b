"""The installed package: one import namespace `channelmarket`, version, no top-level leaks, CLI."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOP_LEVEL_FOLDERS = ("envs", "policies", "training", "eval")


def run_python(args: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """The test interpreter in a clean environment (no PYTHONPATH), from a directory outside the repo."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env["PYTHONNOUSERSITE"] = "1"
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_import_and_version_matches_pyproject():
    import channelmarket

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "channelmarket"
    static = pyproject["project"].get("version")
    if static is not None:
        assert channelmarket.__version__ == static
    else:  # dynamic: read from the attribute pyproject names
        assert "version" in pyproject["project"]["dynamic"]
        attr = pyproject["tool"]["setuptools"]["dynamic"]["version"]["attr"]
        mod, _, name = attr.rpartition(".")
        assert getattr(__import__(mod, fromlist=[name]), name) == channelmarket.__version__
    assert importlib.metadata.version("channelmarket") == channelmarket.__version__
    parts = channelmarket.__version__.split(".")
    assert len(parts) >= 2 and all(p.isdigit() for p in parts[:2])


def test_public_face():
    import channelmarket
    from channelmarket import channel_market_v0
    from channelmarket.envs import MarketCore

    for name in ("env", "parallel_env", "raw_env"):
        assert callable(getattr(channel_market_v0, name)), name
    assert channelmarket.channel_market_v0 is channel_market_v0
    assert channelmarket.MarketCore is MarketCore
    assert "energy_small" in channelmarket.PRESETS
    env = channel_market_v0.parallel_env(scenario="energy_small")
    assert env.metadata["name"] == "channel_market_v0"
    assert isinstance(env, channel_market_v0.raw_env)


def test_subpackages_live_under_the_namespace():
    import channelmarket.envs
    import channelmarket.envs.channel_market_v0 as v0

    assert channelmarket.envs.__name__ == "channelmarket.envs"
    assert v0.__name__ == "channelmarket.envs.channel_market_v0"
    assert "envs" not in sys.modules or not hasattr(sys.modules["envs"], "MarketCore")


def test_top_level_folders_do_not_leak(tmp_path: Path):
    """`import envs` (or policies, training, eval) fails outside the repo: only `channelmarket` is installed."""
    code = (
        "import importlib, sys\n"
        f"for name in {TOP_LEVEL_FOLDERS!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "        print(name, 'IMPORTED')\n"
        "    except ModuleNotFoundError as e:\n"
        "        print(name, 'ModuleNotFoundError', e.name)\n"
        "import channelmarket.envs\n"
        "print('envs' in sys.modules)\n"
    )
    r = run_python(["-c", code], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:-1] == [f"{n} ModuleNotFoundError {n}" for n in TOP_LEVEL_FOLDERS], r.stdout
    assert lines[-1] == "False"  # importing the namespace does not register a top-level `envs`
    # and the plain statement fails with ModuleNotFoundError
    r = run_python(["-c", "import envs"], cwd=tmp_path)
    assert r.returncode != 0 and "ModuleNotFoundError: No module named 'envs'" in r.stderr, r.stderr


def test_namespace_imports_from_outside_the_repo(tmp_path: Path):
    code = (
        "import channelmarket, channelmarket.envs\n"
        "from channelmarket import channel_market_v0\n"
        "e = channel_market_v0.parallel_env(scenario='energy_small')\n"
        "o, _ = e.reset(seed=0)\n"
        "print(channelmarket.__version__, len(o))\n"
    )
    r = run_python(["-c", code], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    import channelmarket

    assert r.stdout.split() == [channelmarket.__version__, "12"]


@pytest.mark.parametrize("name", TOP_LEVEL_FOLDERS)
def test_existing_subpackages_import_under_namespace(tmp_path: Path, name: str):
    if not (ROOT / name / "__init__.py").exists():
        pytest.skip(f"{name}/ has no __init__.py yet")
    r = run_python(["-c", f"import channelmarket.{name} as m; print(m.__name__)"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"channelmarket.{name}"


@pytest.mark.parametrize("args", [["--help"], ["-h"], []])
def test_module_cli_help(tmp_path: Path, args: list[str]):
    r = run_python(["-m", "channelmarket", *args], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "usage" in r.stdout.lower() and "demo" in r.stdout


def test_module_cli_unknown_command_fails(tmp_path: Path):
    r = run_python(["-m", "channelmarket", "frobnicate"], cwd=tmp_path)
    assert r.returncode != 0
    assert "frobnicate" in r.stderr


def test_console_script_help(tmp_path: Path):
    script = Path(sys.executable).parent / "channelmarket"
    if not script.exists():
        pytest.skip("console script not installed next to the interpreter")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([str(script), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "usage" in r.stdout.lower()


def test_pyproject_lists_every_subpackage_and_only_package_data_that_exists():
    """A wheel holds every package folder (e.g. envs/mechanisms), and package data globs match files."""
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs = tool["package-dir"]
    found = set()
    for pkg, folder in dirs.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([pkg, *rel.parts]))
    assert found <= set(tool["packages"]), sorted(found - set(tool["packages"]))
    def folder_of(pkg: str) -> Path:   # the nearest mapped parent's folder, then the rest of the name
        parts = pkg.split(".")
        for i in range(len(parts), 0, -1):
            if ".".join(parts[:i]) in dirs:
                return ROOT / dirs[".".join(parts[:i])] / Path(*parts[i:])
        raise AssertionError(f"{pkg}: no package-dir entry above it")
    for pkg in tool["packages"]:
        assert folder_of(pkg).is_dir(), f"package {pkg}: no folder {folder_of(pkg)}"
    for pkg, globs in tool.get("package-data", {}).items():
        assert pkg in tool["packages"], f"package data of {pkg}, which is not a listed package"
        for g in globs:
            assert list(folder_of(pkg).glob(g)), f"package data {pkg}: {g} matches no file"
