"""The house's import rules, read from the source: no import circle inside ``emojax``, and no
module importing from a layer above its own.

The graph is built with :mod:`ast` from every ``import`` statement of every module, those
inside functions included (a lazy import is still a dependency), and from
``importlib.import_module("emojax....")`` calls with a literal name. An edge goes to the
module named, or to the package when a name is an attribute of it; a package's own
``__init__`` being run on the way is not counted (as grimp and import-linter count).
Run it alone with ``python -m pytest tests/test_import_graph.py -q``.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "emojax"

# The layers, lowest first: a module may import from its own layer or one below it.
# Data flows world -> data -> models -> train -> rl -> studies; benchmarks read everything.
LAYERS = {
    "": 0, "taxonomy": 0, "config": 0, "checkpoint": 0, "tracking": 0, "metrics": 0,
    "workdir": 0, "interrupt": 0, "progress": 0, "compile_cache": 0, "hf": 6,
    "world": 1, "data": 2, "models": 3, "train": 4, "rl": 5, "studies": 6, "bench": 7, "launch": 8,
}  # fmt: skip
# Layers that must not depend on each other although the order would allow it.
FORBIDDEN = {("rl", "train"), ("rl", "data")}


def _modules(root: pathlib.Path) -> dict[str, pathlib.Path]:
    out = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _resolve(name: str, modules) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(root: pathlib.Path = ROOT) -> dict[str, set[str]]:
    """``{module: modules it imports}`` over the package at ``root`` (see the module doc)."""
    modules = _modules(root)
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        targets = []
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                targets += [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr == "import_module" and node.args
                  and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                targets.append(node.args[0].value)
        for t in targets:
            if t.split(".")[0] == root.name:
                r = _resolve(t, modules)
                if r and r != mod:
                    edges[mod].add(r)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_the_graph_sees_lazy_relative_and_literal_imports(tmp_path):
    """The reader finds imports inside functions, relative ones and importlib calls (a
    circle made of them is found), else a clean result would prove nothing."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from . import c\n")
    (pkg / "sub" / "c.py").write_text("import importlib\nimportlib.import_module('pkg.a')\n")
    edges = import_graph(pkg)
    assert edges["pkg.a"] == {"pkg.sub.b"} and edges["pkg.sub.b"] == {"pkg.sub.c"} and edges["pkg.sub.c"] == {"pkg.a"}
    assert cycles(edges) == [["pkg.a", "pkg.sub.b", "pkg.sub.c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle(graph):
    assert len(graph) > 50 and all(m.startswith("emojax") for m in graph)
    assert cycles(graph) == []


def test_no_module_imports_from_a_layer_above(graph):
    unknown = {_layer(m) for m in graph} - set(LAYERS)
    assert not unknown, f"add the new subpackages {sorted(unknown)} to LAYERS"
    upward = [(m, t) for m, ts in graph.items() for t in ts if LAYERS[_layer(t)] > LAYERS[_layer(m)]]
    assert upward == []
    crossing = [(m, t) for m, ts in graph.items() for t in ts if (_layer(m), _layer(t)) in FORBIDDEN]
    assert crossing == []
