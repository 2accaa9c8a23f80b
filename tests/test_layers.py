"""The package's imports run one way and have no cycles.

Every module's imports are read from its source (ast, function-local imports included; imports
under `if TYPE_CHECKING:` are left out, they never run). Layers, lowest first:

    channelmarket._version  <  envs  <  policies  <  eval  <  training  <  channelmarket (the faces:
    __init__, cli, demo)

A module may import its own layer and the layers below it, never above: envs never imports
policies, eval or training; policies never imports eval or training; eval never imports training
(best-response trainers register into `eval.best_response`); training may use eval (its
evaluation helpers and statistics). Shared types (trades, breakdown columns, status codes) live
in leaf modules, so no two modules import each other, directly or through others.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGES = ["channelmarket", "channelmarket.envs", "channelmarket.policies", "channelmarket.eval",
            "channelmarket.training"]
LAYER = {"channelmarket._version": 0, "channelmarket.envs": 1, "channelmarket.policies": 2, "channelmarket.eval": 3,
         "channelmarket.training": 4, "channelmarket": 5}


def modules() -> dict[str, Path]:
    """Module name -> source file of every module of the package (subpackages included)."""
    out: dict[str, Path] = {}

    def walk(pkg: str, folder: Path) -> None:
        for f in sorted(folder.glob("*.py")):
            out[pkg if f.stem == "__init__" else f"{pkg}.{f.stem}"] = f
        for sub in sorted(p for p in folder.iterdir() if (p / "__init__.py").is_file()):
            if f"{pkg}.{sub.name}" not in PACKAGES:
                walk(f"{pkg}.{sub.name}", sub)

    for pkg in PACKAGES:
        mod = importlib.import_module(pkg)
        folder = Path(mod.__file__).parent
        for f in sorted(folder.glob("*.py")):
            out[pkg if f.stem == "__init__" else f"{pkg}.{f.stem}"] = f
        for sub in sorted(p for p in folder.iterdir() if (p / "__init__.py").is_file()):
            if f"{pkg}.{sub.name}" not in PACKAGES:
                walk(f"{pkg}.{sub.name}", sub)
    return out


def _type_checking_only(node: ast.AST, parents: dict) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of the package that `name` imports (edges to submodules, not to the package that holds them)."""
    tree = ast.parse(path.read_text(), str(path))
    parents = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
    is_pkg = path.name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)) or _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                up = here[: len(here) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            targets = []
            for a in node.names:
                sub = f"{base}.{a.name}"
                targets.append(sub if sub in known else base)
        for t in targets:
            while t and t not in known:  # `import channelmarket.envs.x.y` of a name inside a module
                t = t.rpartition(".")[0]
            if t and t.startswith("channelmarket") and t != name:
                out.add(t)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {m: imports_of(m, p, known) for m, p in mods.items()}


def layer_of(module: str) -> int:
    best = max((k for k in LAYER if module == k or module.startswith(k + ".")), key=len)
    return LAYER[best]


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_the_walker_sees_every_layer_and_local_imports():
    g = graph()
    assert {"channelmarket.envs.step", "channelmarket.envs.mechanisms.bilateral", "channelmarket.eval.exploitability",
            "channelmarket.training.ippo", "channelmarket.cli"} <= set(g)
    assert "channelmarket.envs.channels" in g["channelmarket.envs.step"]
    assert "channelmarket.envs.batch" in g["channelmarket.envs.step"]   # a function-local import
    assert "channelmarket.eval.cli" in g["channelmarket.cli"]  # a function-local import
    # imports only for type checkers are not edges (the mechanisms sit below the scenario)
    assert "channelmarket.envs.scenario" not in g["channelmarket.envs.mechanisms.bilateral"]


def test_no_import_cycles():
    found = cycles(graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_imports_run_one_way():
    upward = [f"{m} ({layer_of(m)}) imports {t} ({layer_of(t)})" for m, ts in graph().items() for t in sorted(ts)
              if layer_of(t) > layer_of(m)]
    assert not upward, "upward imports:\n" + "\n".join(upward)


@pytest.mark.parametrize("edges, want", [({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),
                                         ({"a": {"b"}, "b": set()}, [])])
def test_cycle_finder(edges, want):
    assert cycles(edges) == want
